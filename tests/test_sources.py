"""Detection's sources in their order: NVML, the /sys and /proc files, libcuda, nvidia-smi.

Machines are recorded files under a root folder (``--root``), a fake libcuda object (its
functions take ctypes pointers, as the real library's do) and a fake or real nvidia-smi;
the case table is tests/cases/sources/nvidia.json.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from torchfit._runner import Completed, run
from torchfit.errors import UsageError
from torchfit.machine.detect import detect
from torchfit.machine.libcuda import (
    COMPUTE_CAPABILITY_MAJOR,
    LOAD_LIBCUDA,
    candidates,
    probe_libcuda,
    result_name,
)
from torchfit.machine.record import Overrides
from torchfit.machine.smi import known_paths
from torchfit.machine.sysfs import parse_sys_module_version
from torchfit.settings import parse_arch, resolve_settings

HERE = Path(__file__).parent
DATA = HERE / "data" / "nvidia"
CASES = json.loads((HERE / "cases" / "sources" / "nvidia.json").read_text(encoding="utf-8"))
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="the fake tools are shell scripts")


class FakeLibcuda:
    """The driver API functions detection calls, writing through ctypes pointers."""

    def __init__(
        self,
        cuda: int = 12080,
        init: int = 0,
        devices: Sequence[tuple[str, Sequence[int]]] = (),
        block: threading.Event | None = None,
    ) -> None:
        self.cuda, self.init, self.devices, self.block = cuda, init, list(devices), block
        self.calls: list[str] = []

    def cuDriverGetVersion(self, version: Any) -> int:
        self.calls.append("cuDriverGetVersion")
        version.contents.value = self.cuda
        return 0

    def cuInit(self, flags: int) -> int:
        self.calls.append("cuInit")
        if self.block is not None:
            self.block.wait()
        return self.init

    def cuDeviceGetCount(self, count: Any) -> int:
        count.contents.value = len(self.devices)
        return 0

    def cuDeviceGet(self, device: Any, ordinal: int) -> int:
        device.contents.value = ordinal
        return 0

    def cuDeviceGetName(self, buffer: Any, length: int, device: ctypes.c_int) -> int:
        buffer.value = self.devices[device.value][0].encode()[: length - 1]
        return 0

    def cuDeviceGetAttribute(self, value: Any, attribute: int, device: ctypes.c_int) -> int:
        major, minor = self.devices[device.value][1]
        value.contents.value = major if attribute == COMPUTE_CAPABILITY_MAJOR else minor
        return 0


class Programs:
    """A runner: nvidia-smi answers from a recording at ``at`` (or on PATH when None)."""

    def __init__(self, output: str | None, at: Path | None) -> None:
        self.output, self.at = output, at
        self.started: list[str] = []

    def __call__(self, argv: Sequence[str], **_: Any) -> Completed:
        self.started.append(argv[0])
        here = str(self.at) if self.at else "nvidia-smi"
        if self.output is None or argv[0] != here:
            return Completed(127, "", "", "not found")
        return Completed(0, self.output, "")


def no_subprocess(argv: Sequence[str], **_: Any) -> Completed:
    raise AssertionError(f"a child process was started: {list(argv)}")


def machine(root: Path, files: dict[str, str | None]) -> Path:
    for relative, recording in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text((DATA / recording).read_text(encoding="utf-8") if recording else "")
    return root


# --- the case table -------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES["cases"], ids=[c["name"] for c in CASES["cases"]])
def test_source_case(case: dict[str, Any], tmp_path: Path) -> None:
    root = machine(tmp_path, dict(case.get("files", {})))
    if "smi_at" in case:
        machine(root, {case["smi_at"]: None})
    smi = (DATA / case["smi"]).read_text(encoding="utf-8") if "smi" in case else None
    runner = Programs(smi, root / case["smi_at"] if "smi_at" in case else None)
    spec = case.get("libcuda")
    libcuda = FakeLibcuda(**spec) if spec else None
    env = {name: str(root / value) for name, value in case.get("env", {}).items()}
    overrides = Overrides(gpu_arch=tuple(parse_arch(arch) for arch in case.get("gpu_arch", ())))
    found = detect(
        overrides,
        nvml=None,
        libcuda=libcuda,
        runner=runner,
        os=case.get("os", "linux"),
        root=root,
        env=env,
        timeout=5,
    )
    expect = case["expect"]
    cuda = f"{found.max_cuda[0]}.{found.max_cuda[1]}" if found.max_cuda else None
    assert (found.driver_version, cuda, found.source) == (
        expect["driver"],
        expect["max_cuda"],
        expect["source"],
    )
    assert found.gpus_from == expect["gpus_from"]
    shown = [f"{g.compute_capability[0]}.{g.compute_capability[1]}" if g.compute_capability
             else None for g in found.gpus]  # fmt: skip
    assert shown == expect["gpus"]
    assert found.suspected_gpu == expect["suspected"]
    started = [
        Path(p).relative_to(root).as_posix() if p != "nvidia-smi" else p for p in runner.started
    ]
    assert started == expect["runs"]
    assert [p.source for p in found.trace if p.failed] == expect.get("failed", [])
    if found.gpus_from:  # the trace says which source gave the GPUs, and why it was asked
        line = next(p for p in found.trace if p.source == found.gpus_from)
        assert line.outcome.startswith("asked for the GPUs only: ")
        assert found.to_json()["gpus_from"] == found.gpus_from


# --- no child process where a file answers ---------------------------------------------


def test_a_file_and_libcuda_answer_without_any_child_process(tmp_path: Path) -> None:
    root = machine(tmp_path, {"sys/module/nvidia/version": "sys-module-580.65.06.txt"})
    libcuda = FakeLibcuda(13000, devices=[("NVIDIA GB200", (10, 0))])
    found = detect(nvml=None, libcuda=libcuda, runner=no_subprocess, os="linux", root=root)
    assert (found.driver_version, found.source, found.gpus_from) == (
        "580.65.06",
        "/sys/module/nvidia/version",
        "libcuda",
    )
    assert [(g.name, g.compute_capability) for g in found.gpus] == [("NVIDIA GB200", (10, 0))]
    outcomes = {p.source: p.outcome for p in found.trace}
    assert outcomes["/proc/driver/nvidia/version"] == "not needed"
    assert outcomes["nvidia-smi"] == "not needed"


def test_given_gpus_and_a_file_ask_neither_libcuda_nor_a_child_process(tmp_path: Path) -> None:
    root = machine(tmp_path, {"proc/driver/nvidia/version": "proc-515.76.txt"})
    libcuda = FakeLibcuda()
    found = detect(
        Overrides(gpu_arch=((8, 0),)), nvml=None, libcuda=libcuda, runner=no_subprocess, root=root
    )
    assert (found.driver_version, found.gpus_from) == ("515.76", None)
    assert libcuda.calls == []


# --- the parsers and the pieces --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ((DATA / "sys-module-550.144.03.txt").read_text(), "550.144.03"),
        ((DATA / "sys-module-580.65.06.txt").read_text(), "580.65.06"),
        ("  535.104.05  \n", "535.104.05"),
        ((DATA / "proc-515.76.txt").read_text(), None),  # the /proc layout is not this file's
        ("", None),
        ("\x00\xff", None),
    ],
)
def test_parse_sys_module_version(text: str, expected: str | None) -> None:
    assert parse_sys_module_version(text) == expected


def test_a_sys_file_that_is_a_folder_is_a_failed_source(tmp_path: Path) -> None:
    (tmp_path / "sys" / "module" / "nvidia" / "version").mkdir(parents=True)
    found = detect(nvml=None, libcuda=None, runner=Programs(None, None), root=tmp_path, os="linux")
    line = next(p for p in found.trace if p.source == "/sys/module/nvidia/version")
    assert line.failed and line.outcome.startswith("unreadable: ")
    assert found.suspected_gpu and found.source is None


def test_file_sources_are_skipped_off_linux(tmp_path: Path) -> None:
    root = machine(tmp_path, {"sys/module/nvidia/version": "sys-module-550.144.03.txt"})
    found = detect(nvml=None, libcuda=None, runner=Programs(None, None), root=root, os="windows")
    line = next(p for p in found.trace if p.source == "/sys/module/nvidia/version")
    assert line.outcome == "skipped: not Linux"
    assert found.source is None


def test_libcuda_is_looked_for_by_name_only_on_this_machines_root(tmp_path: Path) -> None:
    assert candidates(Path("/"), "linux")[0] == "libcuda.so.1"
    assert candidates(Path("/"), "windows") == ["nvcuda.dll"]
    assert candidates(tmp_path, "linux") == []  # a recorded root's libraries are not ours
    machine(tmp_path, {"usr/lib/wsl/lib/libcuda.so.1": None})
    assert candidates(tmp_path, "linux") == [str(tmp_path / "usr/lib/wsl/lib/libcuda.so.1")]
    assert candidates(tmp_path, "macos") == []


def test_a_file_that_is_not_a_library_is_not_found_and_not_suspected(tmp_path: Path) -> None:
    # ctypes itself tries to load it: an empty file is no shared object.
    machine(tmp_path, {"usr/lib/wsl/lib/libcuda.so.1": None})
    found = probe_libcuda(LOAD_LIBCUDA, tmp_path, "linux", timeout=10)
    assert found.probe.outcome == f"not found ({tmp_path / 'usr/lib/wsl/lib/libcuda.so.1'})"
    assert not found.suspected and not found.answered


def test_a_library_without_the_functions_is_a_failure(tmp_path: Path) -> None:
    found = probe_libcuda(object(), tmp_path, "linux", timeout=10)
    assert found.probe.outcome == "no CUDA version"
    assert found.suspected
    assert "cuDriverGetVersion=missing from the library" in (found.probe.raw or "")


def test_a_library_that_raises_is_a_failure(tmp_path: Path) -> None:
    class Broken(FakeLibcuda):
        def cuInit(self, flags: int) -> int:
            raise OSError("exception: access violation")

    found = probe_libcuda(Broken(), tmp_path, "linux", timeout=10)
    assert found.probe.outcome == "failed: OSError: exception: access violation"
    assert found.suspected


def test_a_hung_cuinit_times_out_and_is_not_asked_again(tmp_path: Path) -> None:
    release = threading.Event()
    libcuda = FakeLibcuda(block=release)
    try:
        first = probe_libcuda(libcuda, tmp_path, "linux", timeout=0.2)
        second = probe_libcuda(libcuda, tmp_path, "linux", timeout=0.2)
    finally:
        release.set()
    assert (first.probe.outcome, first.suspected) == ("timed out after 0.2s", True)
    assert second.probe.outcome == "skipped: an earlier libcuda probe has not returned"
    assert libcuda.calls.count("cuInit") == 1


def test_result_names_follow_cuda_h() -> None:
    assert result_name(100) == "CUDA_ERROR_NO_DEVICE"
    assert result_name(34) == "CUDA_ERROR_STUB_LIBRARY"
    assert result_name(12345) == "CUresult 12345"


def test_nvidia_smi_known_paths() -> None:
    assert known_paths("linux", Path("/r"), {}) == [Path("/r/usr/lib/wsl/lib/nvidia-smi")]
    windows = known_paths("windows", Path("/"), {"SystemRoot": "D:\\Win", "ProgramW6432": "P"})
    assert [p.as_posix() for p in windows] == [
        "D:\\Win/System32/nvidia-smi.exe",
        "P/NVIDIA Corporation/NVSMI/nvidia-smi.exe",
    ]
    assert known_paths("macos", Path("/"), {}) == []


@posix_only
def test_a_real_nvidia_smi_under_the_wsl_path_runs(tmp_path: Path) -> None:
    smi = tmp_path / "usr" / "lib" / "wsl" / "lib" / "nvidia-smi"
    smi.parent.mkdir(parents=True)
    smi.write_text(f"#!/bin/sh\ncat '{DATA / 'smi-query-cc-v100.txt'}'\n")
    smi.chmod(0o755)
    found = detect(nvml=None, libcuda=None, runner=run, root=tmp_path, os="linux")
    assert (found.driver_version, found.source) == ("570.124.06", "nvidia-smi")
    line = next(p for p in found.trace if p.source == "nvidia-smi")
    assert line.outcome.endswith(f"(not on PATH; ran {smi})")


# --- --root and TORCHFIT_ROOT -------------------------------------------------------------


def test_root_setting_from_the_flag_and_the_variable(tmp_path: Path) -> None:
    assert resolve_settings({}, {}).root is None
    assert resolve_settings({}, {"TORCHFIT_ROOT": str(tmp_path)}).root == tmp_path
    other = tmp_path / "other"
    other.mkdir()
    given = resolve_settings({"root": str(other)}, {"TORCHFIT_ROOT": str(tmp_path)})
    assert given.root == other
    with pytest.raises(UsageError, match="is not a folder"):
        resolve_settings({}, {"TORCHFIT_ROOT": str(tmp_path / "missing")})


@posix_only
@pytest.mark.parametrize("how", ["flag", "variable"])
def test_torchfit_detect_reads_a_recorded_machine(tmp_path: Path, how: str) -> None:
    import subprocess

    root = machine(tmp_path / "machine", {"sys/module/nvidia/version": "sys-module-550.144.03.txt"})
    env = {**os.environ, **({"TORCHFIT_ROOT": str(root)} if how == "variable" else {})}
    argv = [sys.executable, "-m", "torchfit", "detect", "--json"]
    argv += ["--root", str(root)] if how == "flag" else []
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert (data["driver_version"], data["max_cuda"], data["source"]) == (
        "550.144.03",
        "12.4",
        "/sys/module/nvidia/version",
    )


def test_a_root_that_is_not_a_folder_is_a_usage_error(tmp_path: Path) -> None:
    import subprocess

    argv = [sys.executable, "-m", "torchfit", "detect", "--root", str(tmp_path / "nowhere")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("error: --root ")
    assert "hint: " in done.stderr and "Traceback" not in done.stderr


def test_the_benchmark_reports_the_file_sources_figure(capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "bench_plan", HERE.parent / "scripts" / "bench_plan.py"
    )
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.report_detection(1)
    out = capsys.readouterr().out
    assert "bound: 5 ms together" in out
    assert re.search(
        r"a recorded machine +[\d.]+/[\d.]+/[\d.]+ \((met|MISSED)\); child processes started: 0",
        out,
    )
    assert "detect(), the /sys file answering (580.65.06, GPUs given)" in out


@posix_only
def test_plan_says_which_source_gave_the_driver_and_which_the_gpus(tmp_path: Path) -> None:
    import subprocess

    root = machine(
        tmp_path / "machine", {"proc/driver/nvidia/version": "proc-open-aarch64-580.65.06.txt"}
    )
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "nvidia-smi").write_text(f"#!/bin/sh\ncat '{DATA / 'smi-query-cc-multi-gpu.txt'}'\n")
    (tools / "nvidia-smi").chmod(0o755)
    env = {**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}"}
    argv = [sys.executable, "-m", "torchfit", "plan", "torch", "--offline", "--root", str(root)]
    argv += ["--python-version", "3.12", "--platform", "manylinux_2_28_x86_64"]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "the driver from /proc/driver/nvidia/version, the GPUs from nvidia-smi" in done.stdout
    assert "driver supports CUDA 13.0 (/proc/driver/nvidia/version)" in done.stdout
    assert "GeForce GTX 1060 6GB (sm_61)" in done.stdout


def test_gpus_listed_by_libcuda_are_not_narrowed_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CUDA applies CUDA_VISIBLE_DEVICES itself: with "1", it lists one device, as ordinal 0.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    root = machine(tmp_path, {"sys/module/nvidia/version": "sys-module-550.144.03.txt"})
    libcuda = FakeLibcuda(12040, devices=[("NVIDIA GeForce RTX 3090", (8, 6))])
    found = detect(
        nvml=None, libcuda=libcuda, runner=no_subprocess, root=root, env=dict(os.environ)
    )
    assert [g.compute_capability for g in found.gpus] == [(8, 6)]
    line = next(p for p in found.trace if p.source == "libcuda")
    assert line.outcome.endswith("(as CUDA_VISIBLE_DEVICES='1' shows them)")
