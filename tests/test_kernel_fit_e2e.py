"""The kernel fit end to end, through a loopback PyTorch-shaped index of small real wheels:
aarch64 Blackwell (GB200), Windows, an explicit --variant that misses a GPU, and a torch
release newer than the release table (its variants read from the index pages)."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.version import Version

import torchfit
from support import build_wheel, serve_directory, write_index
from torchfit.choose import releases
from torchfit.variants import Variant

ARM = "manylinux_2_28_aarch64"
X86 = "manylinux_2_28_x86_64"
WIN = "win_amd64"


def _index(root: Path, builds: dict[str, list[str]], platform: str) -> Path:
    """``/whl/<variant>/torch/`` pages holding a torch wheel per version, for ``platform``."""
    for tag, versions in builds.items():
        folder = root / "whl" / tag / "torch"
        folder.mkdir(parents=True)
        for version in versions:
            build_wheel(folder, "torch", f"{version}+{tag}", tag=f"cp312-cp312-{platform}")
        write_index(folder, "torch")
    return root


def _plan(
    url: str, platform: str, gpu: tuple[int, int], cuda: tuple[int, int], *req: str, **kw: object
) -> torchfit.Plan:
    return torchfit.plan(
        list(req) or "torch",
        python_version="3.12",
        platforms=(platform,),
        overrides=torchfit.Overrides(cuda=cuda, gpu_arch=(gpu,)),
        index=f"{url}/whl",
        cache_dir=None,
        **kw,  # type: ignore[arg-type]
    )


def test_gb200_on_a_cuda_12_8_driver_gets_cu128_not_cu126(tmp_path: Path) -> None:
    index = _index(tmp_path, {"cu126": ["2.12.1", "2.13.0"], "cu128": ["2.11.0"]}, ARM)
    with serve_directory(index) as server:
        plan = _plan(server.url, ARM, (10, 0), (12, 8))
        pinned = None
        with pytest.raises(torchfit.TorchfitError) as caught:
            pinned = _plan(server.url, ARM, (10, 0), (12, 8), "torch==2.13.0")
    assert plan.variant == Variant.parse("cu128")
    assert {p.name: p.version for p in plan.packages} == {"torch": "2.11.0+cu128"}
    assert any("serves GPU 0 (sm_100)" in r for r in plan.reasons)
    assert pinned is None and "kernels for GPU 0 (sm_100)" in caught.value.message


def test_windows_blackwell_gets_the_build_that_serves_it(tmp_path: Path) -> None:
    index = _index(tmp_path, {"cu126": ["2.12.1"], "cu128": ["2.10.0", "2.11.0"]}, WIN)
    with serve_directory(index) as server:
        blackwell = _plan(server.url, WIN, (12, 0), (12, 8))
        pascal = _plan(server.url, WIN, (6, 1), (12, 8))
    assert {p.name: p.version for p in blackwell.packages} == {"torch": "2.11.0+cu128"}
    assert not [w for w in blackwell.warnings if "kernel" in w]
    # The Windows cu126 builds keep Pascal: the newest torch wins.
    assert {p.name: p.version for p in pascal.packages} == {"torch": "2.12.1+cu126"}


def test_an_explicit_variant_that_misses_the_gpu_is_planned_with_a_warning(
    tmp_path: Path,
) -> None:
    index = _index(tmp_path, {"cu126": ["2.12.1"], "cu128": ["2.11.0"]}, ARM)
    with serve_directory(index) as server:
        plan = _plan(server.url, ARM, (10, 0), (12, 8), variant=Variant.parse("cu126"))
    assert {p.name: p.version for p in plan.packages} == {"torch": "2.12.1+cu126"}
    (warning,) = [w for w in plan.warnings if "no kernels" in w]
    assert "GPU 0 (sm_100)" in warning and "no kernel image is available" in warning
    assert "cu128" in warning  # what would serve it


def test_an_explicit_variant_prefers_its_builds_that_serve_the_gpu(tmp_path: Path) -> None:
    # V100 (sm_70) with --variant cu128: 2.11.0+cu128 dropped Volta, 2.10.0+cu128 has it.
    index = _index(tmp_path, {"cu128": ["2.10.0", "2.11.0"]}, X86)
    with serve_directory(index) as server:
        plan = _plan(server.url, X86, (7, 0), (12, 8), variant=Variant.parse("cu128"))
    assert {p.name: p.version for p in plan.packages} == {"torch": "2.10.0+cu128"}
    assert not [w for w in plan.warnings if "no kernels" in w]


FRESH = "2.14.0"


def test_a_release_newer_than_the_table_is_read_from_the_index(tmp_path: Path) -> None:
    assert releases.release_of(FRESH) is None and Version(FRESH) > Version(releases.newest().torch)
    # cu128 is retired in the table (last release 2.11), so its candidates wait behind
    # cu126's 2.13.0 unless a fresh release is seen: the index has 2.14.0 there too.
    builds = {"cu126": ["2.13.0", FRESH], "cu128": ["2.11.0", FRESH]}
    with serve_directory(_index(tmp_path / "fresh", builds, X86)) as server:
        plan = _plan(server.url, X86, (8, 6), (12, 8))
        asked = server.requests
    assert {p.name: p.version for p in plan.packages} == {"torch": f"{FRESH}+cu128"}
    (warning,) = [w for w in plan.warnings if "release table" in w]
    assert f"ends at torch {releases.newest().torch}" in warning
    assert f"{FRESH} on cu128, cu126" in warning and f"plan uses {FRESH}+cu128" in warning
    # A fresh release costs the pages of the other retired variants (cu124 ... cu80).
    assert any(path.startswith("/whl/cu124/torch") for path in asked)
    # Without one, they are not asked: the table bounds what they can hold.
    stale = {"cu126": ["2.13.0"], "cu128": ["2.11.0"]}
    with serve_directory(_index(tmp_path / "known", stale, X86)) as server:
        known = _plan(server.url, X86, (8, 6), (12, 8))
        asked = server.requests
    assert {p.name: p.version for p in known.packages} == {"torch": "2.13.0+cu126"}
    assert not [w for w in known.warnings if "release table" in w]
    assert not any(path.startswith("/whl/cu124/") for path in asked)


def test_a_fresh_release_keeps_the_kernel_check(tmp_path: Path) -> None:
    # 2.14.0 has no kernel lists: cu126's are assumed from 2.13 (no sm_100) and the CUDA
    # floor agrees, so a GB200 gets the fresh cu128 build, with the warning.
    builds = {"cu126": [FRESH], "cu128": ["2.11.0", FRESH]}
    with serve_directory(_index(tmp_path, builds, ARM)) as server:
        plan = _plan(server.url, ARM, (10, 0), (12, 8))
    assert {p.name: p.version for p in plan.packages} == {"torch": f"{FRESH}+cu128"}
    assert [w for w in plan.warnings if "release table" in w]
