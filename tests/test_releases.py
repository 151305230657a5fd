"""A torch release is one table row: add a fictional one and torchfit knows and plans it.

The row is added the way a maintainer would (``releases.release(...)`` in ``RELEASES``);
nothing else is edited: no variant list, no kernel table, no "newest release" constant.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.version import Version

import torchfit
import torchfit.session  # loaded before any row is added (see below)
from support import build_wheel, serve_directory, write_index
from torchfit.choose import archs, releases
from torchfit.choose.kernels import arch_list_of
from torchfit.variants import Variant

CU135 = Variant.parse("cu135")
FICTIONAL = releases.release(
    "2.99.0",
    "0.99.0",
    None,
    ">=3.10",
    "cpu cu135",
    linux={"cu135": arch_list_of("9.0;10.0;12.0+PTX", source="fictional, for this test")},
)
PLATFORM = "manylinux_2_28_x86_64"

# torchfit.session (so every module of a plan) is imported above, before the fixture adds the
# row: a module that copied the table at import instead of asking ``releases`` at call time
# fails here.


@pytest.fixture
def fictional_release(monkeypatch: pytest.MonkeyPatch) -> Iterator[releases.Release]:
    monkeypatch.setattr(releases, "RELEASES", releases.with_rows(FICTIONAL))
    yield FICTIONAL


def test_the_table_alone_does_not_know_it() -> None:
    assert releases.release_of("2.99.0") is None
    assert CU135 not in releases.known_variants()
    assert releases.known_versions("torch", CU135) == []
    assert archs.arch_list("2.99.0", CU135, "linux") is None


@pytest.mark.usefixtures("fictional_release")
def test_every_derived_fact_sees_the_new_row() -> None:
    assert releases.newest() is FICTIONAL
    assert releases.release_of("2.99.0+cu135") is FICTIONAL
    assert releases.cuda_builds("2.99.0") == (CU135,)
    assert releases.current_variants() == {"cpu", "cu135"}
    assert releases.known_variants()[0] == CU135
    assert releases.known_versions("torch", CU135) == [Version("2.99.0")]
    assert releases.known_versions("torchvision", CU135) == [Version("0.99.0")]
    assert releases.companion_pin("torchvision", "0.99.0+cu135") == "2.99.0"
    kernels = archs.arch_list("2.99.0+cu135", CU135, "linux")
    assert kernels is not None and str(kernels) == "sm_90 sm_100 sm_120 compute_120"
    assert archs.arch_list("2.99.1", CU135, "linux") is kernels  # a patch takes its series' row
    assert archs.arch_list("2.99.0", CU135, "windows") is None
    assert ("2.99", "cu135") in archs.min_torch_for((9, 0), "linux")
    assert archs.last_known_arch_list("2.100.0", CU135, "linux") == ("2.99", kernels)


def test_rows_are_added_in_order_and_once() -> None:
    table = releases.with_rows(FICTIONAL)
    assert table[-1] is FICTIONAL and table[:-1] == releases.RELEASES
    with pytest.raises(ValueError, match=r"2\.13\.0"):
        releases.with_rows(releases.release("2.13.0", None, None, None, "cpu"))


def _index(root: Path) -> Path:
    """A loopback PyTorch-shaped index: the fictional cu135 build and a real-shaped cu130 one."""
    for version, tag in (("2.99.0", "cu135"), ("2.13.0", "cu130")):
        folder = root / "whl" / tag / "torch"
        folder.mkdir(parents=True)
        build_wheel(folder, "torch", f"{version}+{tag}", tag=f"cp312-cp312-{PLATFORM}")
        write_index(folder, "torch")
    return root


def _plan(url: str, gpu: tuple[int, int]) -> torchfit.Plan:
    return torchfit.plan(
        "torch",
        python_version="3.12",
        platforms=(PLATFORM,),
        overrides=torchfit.Overrides(cuda=(13, 5), gpu_arch=(gpu,)),
        index=f"{url}/whl",
        cache_dir=None,
    )


@pytest.mark.usefixtures("fictional_release")
def test_torchfit_plans_the_new_release(tmp_path: Path) -> None:
    with serve_directory(_index(tmp_path)) as server:
        hopper = _plan(server.url, (9, 0))
        ampere = _plan(server.url, (8, 0))
    assert hopper.variant == CU135
    assert {p.name: p.version for p in hopper.packages} == {"torch": "2.99.0+cu135"}
    # The row's kernel list decides too: it has no sm_80, so an A100 gets the older build.
    assert ampere.variant == Variant.parse("cu130")
    assert {p.name: p.version for p in ampere.packages} == {"torch": "2.13.0+cu130"}
