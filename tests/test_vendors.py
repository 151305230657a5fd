"""AMD ROCm and Intel XPU machines: recorded sysfs trees under a root, ROCm's tools as fake
executables on PATH, and one case table per vendor (tests/cases/vendors/*.json) planned
from the bundled snapshots."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from torchfit import TorchfitError, Variant, plan
from torchfit._runner import Completed, run
from torchfit.check.verify import verify
from torchfit.errors import UsageError
from torchfit.machine.amd import gfx_name, parse_agent_list, parse_kfd_properties, probe_amd
from torchfit.machine.detect import detect
from torchfit.machine.intel import classify, probe_intel
from torchfit.machine.record import Overrides
from torchfit.settings import parse_gpu_arch, resolve_settings

HERE = Path(__file__).parent
AMD = HERE / "data" / "amd"
CASES = HERE / "cases" / "vendors"
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="the fake tool is a shell script")


class Calls:
    """A runner that answers "not found" and records what it was asked to run."""

    def __init__(self) -> None:
        self.argv: list[list[str]] = []

    def __call__(self, argv: Sequence[str], **_: Any) -> Completed:
        self.argv.append(list(argv))
        return Completed(127, "", "", "not found")


def write_amd(root: Path, nodes: Sequence[str], rocm: str | None = None, dev_kfd: bool = False):
    for number, name in enumerate(nodes):
        node = root / "sys/class/kfd/kfd/topology/nodes" / str(number)
        node.mkdir(parents=True)
        (node / "properties").write_text((AMD / name).read_text(encoding="utf-8"))
    if rocm:
        (root / "opt/rocm/.info").mkdir(parents=True)
        (root / "opt/rocm/.info/version").write_text((AMD / rocm).read_text(encoding="utf-8"))
    if dev_kfd:
        (root / "dev").mkdir(parents=True, exist_ok=True)
        (root / "dev/kfd").write_text("")


def write_pci(root: Path, devices: Sequence[Sequence[str]]) -> None:
    for slot, vendor, device, pci_class in devices:
        folder = root / "sys/bus/pci/devices" / slot
        folder.mkdir(parents=True)
        for name, value in (("vendor", vendor), ("device", device), ("class", pci_class)):
            (folder / name).write_text(value + "\n")


def fake_tool(folder: Path, name: str, output: Path) -> None:
    folder.mkdir(exist_ok=True)
    script = folder / name
    script.write_text(f"#!/bin/sh\ncat '{output}'\n", encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


# --- parsers on recorded output -------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "name"),
    [
        (110000, "gfx1100"),
        (90402, "gfx942"),
        (90010, "gfx90a"),
        (110501, "gfx1151"),
        (120001, "gfx1201"),
        (100300, "gfx1030"),
        (90006, "gfx906"),
        (0, None),
        (1, None),
    ],
)
def test_gfx_target_version_decodes_as_rocm_does(version: int, name: str | None) -> None:
    assert gfx_name(version) == name


@pytest.mark.parametrize(
    ("file", "gfx"),
    [
        ("mi325x-gpu-node-properties.txt", "gfx942"),
        ("rx7900xtx-gpu-node-properties.txt", "gfx1100"),
        ("cpu-node-properties.txt", None),
        ("gfx1151-gpu-node-properties-excerpt.txt", "gfx1151"),
    ],
)
def test_kfd_properties_recorded(file: str, gfx: str | None) -> None:
    assert parse_kfd_properties((AMD / file).read_text(encoding="utf-8")) == gfx


@pytest.mark.parametrize("text", ["", "gfx_target_version\n", "gfx_target_version x\n", "junk"])
def test_kfd_properties_garbage_is_absent(text: str) -> None:
    assert parse_kfd_properties(text) is None


def test_agent_list_skips_the_cpu_agent() -> None:
    recorded = (AMD / "rocm_agent_enumerator-rx6800.txt").read_text(encoding="utf-8")
    assert parse_agent_list(recorded) == ["gfx1030"]
    assert parse_agent_list("error: no HSA agents\n") == []


@pytest.mark.parametrize(
    ("slot", "device", "discrete"),
    [
        ("0000:03:00.0", 0x56A0, True),
        ("0000:03:00.0", 0xE20B, True),
        ("0000:29:00.0", 0x0BD5, True),
        ("0000:00:02.0", 0x7D55, False),
        ("0000:00:02.0", 0x4680, False),
        ("0000:03:00.0", 0x4905, False),
        ("0000:04:00.0", 0xFFFF, True),
    ],
)
def test_intel_discrete_or_integrated(slot: str, device: int, discrete: bool) -> None:
    assert (classify(slot, device).family is not None) is discrete


def test_gpu_arch_takes_gfx_and_says_what_is_wrong() -> None:
    assert parse_gpu_arch("gfx90a:sramecc+:xnack-") == "gfx90a"
    with pytest.raises(UsageError, match="invalid AMD GPU architecture"):
        parse_gpu_arch("gfx10x")
    settings = resolve_settings({}, {"TORCHFIT_GPU_ARCH": "gfx1100,8.6"})
    assert settings.overrides == Overrides(gpu_arch=((8, 6),), gfx=("gfx1100",))
    given = resolve_settings({"gpu_arch": ["gfx942"]}, {"TORCHFIT_GPU_ARCH": "8.6"})
    assert given.overrides == Overrides(gpu_arch=(), gfx=("gfx942",))


# --- sources under a root ---------------------------------------------------------------


def test_kfd_answers_without_a_subprocess(tmp_path: Path) -> None:
    write_amd(tmp_path, ["cpu-node-properties.txt", "rx7900xtx-gpu-node-properties.txt"])
    calls = Calls()
    found = detect(nvml=None, runner=calls, os="linux", root=tmp_path, env={})
    assert found.amd_gfx == ("gfx1100",)
    assert [argv[0] for argv in calls.argv] == ["nvidia-smi"]  # no ROCm tool was run


def test_no_amd_and_no_intel_runs_nothing_and_says_nothing(tmp_path: Path) -> None:
    calls = Calls()
    found = detect(nvml=None, runner=calls, os="linux", root=tmp_path, env={})
    assert found.gpus == () and [argv[0] for argv in calls.argv] == ["nvidia-smi"]
    vendor_sources = ("/sys/class/kfd", "/sys/bus/pci/devices", "rocm_agent_enumerator")
    assert not any(p.source in vendor_sources for p in found.trace)


@posix_only
def test_rocm_agent_enumerator_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_amd(tmp_path / "root", ["cpu-node-properties.txt"], dev_kfd=True)
    fake_tool(tmp_path / "bin", "rocm_agent_enumerator", AMD / "rocm_agent_enumerator-rx6800.txt")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    found = probe_amd(tmp_path / "root", run, 10.0)
    assert [g.gfx for g in found.gpus] == ["gfx1030"]
    assert [(p.source, p.outcome) for p in found.trace][-2:] == [
        ("rocm_agent_enumerator", "GPUs gfx1030"),
        ("/opt/rocm/.info/version", "not present"),
    ]


def test_missing_tools_are_trace_lines(tmp_path: Path) -> None:
    write_amd(tmp_path, [], dev_kfd=True)
    found = probe_amd(tmp_path, Calls(), 10.0)
    assert found.gpus == ()
    assert [(p.source, p.outcome) for p in found.trace] == [
        ("rocm_agent_enumerator", "not found"),
        ("amdgpu-arch", "not found"),
    ]


def test_intel_integrated_only_is_traced_not_used(tmp_path: Path) -> None:
    write_pci(tmp_path, [("0000:00:02.0", "0x8086", "0x7d55", "0x030000")])
    gpus, line = probe_intel(tmp_path)
    assert gpus == () and line is not None and "8086:7d55" in (line.raw or "")


# --- the case tables ----------------------------------------------------------------------


def _rows() -> list[tuple[str, dict[str, Any]]]:
    rows = []
    for table in sorted(CASES.glob("*.json")):
        data = json.loads(table.read_text(encoding="utf-8"))
        rows += [(data["vendor"], case) for case in data["cases"]]
    return rows


ROWS = _rows()


@pytest.mark.parametrize(("vendor", "case"), ROWS, ids=[f"{v}-{c['name']}" for v, c in ROWS])
def test_vendor_case(
    vendor: str, case: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    write_amd(root, case.get("nodes", ()), case.get("rocm"), case.get("dev_kfd", False))
    write_pci(root, case.get("pci", ()))
    runner: Any = Calls()
    if "tool" in case:
        fake_tool(tmp_path / "bin", "rocm_agent_enumerator", AMD / case["tool"])
        monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
        runner = run
    settings = resolve_settings(
        {
            "gpu_arch": case.get("gpu_arch"),
            "variant": case.get("variant"),
            "offline": True,
            "cache_dir": None,
            "python_version": case.get("python_version", "3.12"),
            "platforms": case.get("platforms", ["manylinux_2_28_x86_64"]),
        },
        {},
    )
    os_name = case.get("os", "linux")
    found = detect(settings.overrides, nvml=None, runner=runner, os=os_name, root=root, env={})
    if "error" in case:
        with pytest.raises(TorchfitError) as caught:
            plan(case["requirements"], settings, detection=found)
        assert type(caught.value).__name__ == case["error"]["type"]
        assert case["error"]["contains"] in caught.value.message
        assert caught.value.hint
        return
    result = plan(case["requirements"], settings, detection=found)
    expected = case["expect"]
    if "gfx" in expected:
        assert list(found.amd_gfx) == expected["gfx"]
    if "intel" in expected:
        assert len(found.intel_gpus) == expected["intel"]
    assert result.variant == Variant.parse(expected["variant"])
    assert {p.name: p.version for p in result.packages} == expected["packages"]
    if "why" in expected:
        assert any(expected["why"] in reason for reason in result.reasons), result.reasons
    if "warning" in expected:
        assert any(expected["warning"] in w for w in result.warnings), result.warnings
    if "trace" in expected:
        assert any(expected["trace"] in p.outcome for p in found.trace)


def test_every_vendor_has_a_table() -> None:
    assert {v for v, _ in ROWS} == {"amd", "intel"} and len(ROWS) >= 15


# --- end to end, and verify -----------------------------------------------------------------


def test_cli_plans_rocm_for_a_given_gfx() -> None:
    argv = [
        sys.executable,
        "-m",
        "torchfit",
        "plan",
        "torch==2.7.1",
        "--gpu-arch",
        "gfx1201",
        "--offline",
        "--python-version",
        "3.12",
        "--platform",
        "manylinux_2_28_x86_64",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "torch-2.7.1+rocm6.3-cp312-cp312-manylinux_2_28_x86_64.whl" in done.stdout
    assert "AMD GPU gfx1201 (--gpu-arch)" in done.stdout


def test_cli_unknown_gfx_is_one_error_line() -> None:
    argv = [
        sys.executable,
        "-m",
        "torchfit",
        "plan",
        "torch",
        "--gpu-arch",
        "gfx803",
        "--offline",
        "--python-version",
        "3.12",
        "--platform",
        "manylinux_2_28_x86_64",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1
    assert done.stderr.startswith("error: no ROCm build of torch carries kernels for gfx803")
    assert "hint:" in done.stderr and "Traceback" not in done.stderr


def _probe_runner(facts: dict[str, Any]) -> Any:
    """The target interpreter, answering the torch probe with ``facts`` (the subprocess seam)."""

    def answer(argv: Sequence[str], **_: Any) -> Completed:
        return Completed(0, json.dumps(facts), "")

    return answer


def _torch_facts(**more: Any) -> dict[str, Any]:
    return {
        "version": "2.9.1+rocm6.4",
        "cuda": None,
        "hip": "6.4.43482",
        "import_error": None,
        "cuda_available": None,
        **more,
    }


def test_verify_a_rocm_build_on_an_amd_gpu(tmp_path: Path) -> None:
    write_amd(tmp_path, ["cpu-node-properties.txt", "mi325x-gpu-node-properties.txt"])
    found = detect(nvml=None, runner=Calls(), os="linux", root=tmp_path, env={})
    device = {"name": "AMD Instinct MI325X", "capability": [9, 4], "gfx": "gfx942:sramecc+:xnack-"}
    good = _torch_facts(
        cuda_available=True, arch_list=["gfx90a", "gfx942"], devices=[device], kernel=2.0
    )
    checks = verify(
        "python", found, expected_variant=Variant.parse("rocm6.4"), runner=_probe_runner(good)
    ).checks
    assert {c.name: c.status for c in checks} == {
        "installed": "pass",
        "variant": "pass",
        "import": "pass",
        "driver": "pass",
        "gpu_available": "pass",
        "arch": "pass",
        "kernel": "pass",
    }
    bad = _torch_facts(cuda_available=True, arch_list=["gfx1100"], devices=[device], kernel=2.0)
    result = verify("python", found, runner=_probe_runner(bad))
    assert not result.ok and "no kernels for gfx942" in str(result.to_json())


def test_verify_an_xpu_build(tmp_path: Path) -> None:
    write_pci(tmp_path, [("0000:03:00.0", "0x8086", "0x56a0", "0x030000")])
    found = detect(nvml=None, runner=Calls(), os="linux", root=tmp_path, env={})
    facts = {
        "version": "2.8.0+xpu",
        "cuda": None,
        "hip": None,
        "xpu": "20250101",
        "import_error": None,
        "cuda_available": None,
    }
    unavailable = verify(
        "python",
        found,
        expected_variant=Variant("xpu"),
        runner=_probe_runner({**facts, "xpu_available": False}),
    )
    assert [c.name for c in unavailable.checks if c.status == "fail"] == ["gpu_available"]
    working = {
        **facts,
        "xpu_available": True,
        "devices": [{"name": "Intel Arc A770"}],
        "kernel": 2.0,
    }
    assert verify(
        "python", found, expected_variant=Variant("xpu"), runner=_probe_runner(working)
    ).ok
