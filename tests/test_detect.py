"""Detection: pure parsers on recorded outputs, then detect() over fakes and a real subprocess."""

from __future__ import annotations

import json
import os
import shlex
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from torchfit._runner import Completed, run
from torchfit.machine.detect import detect
from torchfit.machine.nvml import parse_nvml_cuda_version
from torchfit.machine.proc import parse_proc_driver_version
from torchfit.machine.record import Detection, Gpu, Overrides, Probe
from torchfit.machine.smi import parse_compute_capability, parse_nvidia_smi_query

DATA = Path(__file__).parent / "data" / "nvidia"
# Where nvidia-smi is in the trace: after the override, NVML, the two files and libcuda.
SMI = 5
SMI_FIELDS = "driver_version,name,compute_cap,uuid,pci.device_id"
SMI_ARGV = ["nvidia-smi", f"--query-gpu={SMI_FIELDS}", "--format=csv,noheader"]
SMI_ARGV_NO_CC = ["nvidia-smi", "--query-gpu=driver_version,name,uuid,pci.device_id"]
SMI_ARGV_NO_CC.append("--format=csv,noheader")
EXIT9_MESSAGE = (
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."
    " Make sure that the latest NVIDIA driver is installed and running."
)
posix_only = pytest.mark.skipif(
    sys.platform == "win32", reason="the fake nvidia-smi is a POSIX shell script"
)


def read(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


# --- fakes ----------------------------------------------------------------------------


class FakeNVMLError(Exception):
    """Carries an NVML return code in ``value``, like pynvml's NVMLError."""

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        names = {9: "Driver Not Loaded", 12: "NVML Shared Library Not Found"}
        return names.get(self.value, "Function Not Found")


class FakeNVML:
    """The pynvml functions detect() uses; ``fail`` maps a function name to an NVML code."""

    NVMLError = FakeNVMLError

    def __init__(
        self,
        *,
        driver: Any = b"550.54.14",
        cuda: int = 12040,
        devices: Sequence[tuple[Any, tuple[int, int]]] = (
            (b"NVIDIA GeForce RTX 3090", (8, 6)),
            ("NVIDIA GeForce GTX 1060 6GB", (6, 1)),
        ),
        fail: dict[str, int] | None = None,
    ) -> None:
        self.driver, self.cuda, self.devices = driver, cuda, list(devices)
        self.fail = fail or {}
        self.calls: list[str] = []

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if name in self.fail:
            raise FakeNVMLError(self.fail[name])

    def nvmlInit(self) -> None:
        self._call("nvmlInit")

    def nvmlShutdown(self) -> None:
        self._call("nvmlShutdown")

    def nvmlSystemGetDriverVersion(self) -> Any:
        self._call("nvmlSystemGetDriverVersion")
        return self.driver

    def nvmlSystemGetCudaDriverVersion_v2(self) -> int:
        self._call("nvmlSystemGetCudaDriverVersion_v2")
        return self.cuda

    def nvmlDeviceGetCount(self) -> int:
        self._call("nvmlDeviceGetCount")
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        self._call("nvmlDeviceGetHandleByIndex")
        return index

    def nvmlDeviceGetName(self, handle: int) -> Any:
        self._call("nvmlDeviceGetName")
        return self.devices[handle][0]

    def nvmlDeviceGetCudaComputeCapability(self, handle: int) -> tuple[int, int]:
        self._call("nvmlDeviceGetCudaComputeCapability")
        return self.devices[handle][1]


class FakeRunner:
    """Answers nvidia-smi calls in order, as the runner contract says: Completed values."""

    def __init__(self, *answers: Completed) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[list[str], float | None]] = []

    def __call__(self, argv: Sequence[str], *, timeout: float | None = None, **_: Any) -> Completed:
        self.calls.append((list(argv), timeout))
        return self.answers.pop(0)


def must_not_run(argv: Sequence[str], **_: Any) -> Completed:
    raise AssertionError(f"nvidia-smi should not run: {argv}")


class MustNotLoad:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"NVML should not be used: {name}")


def no_smi() -> FakeRunner:
    return FakeRunner(Completed(127, "", "", "not found"))


def outcomes(detection: Detection) -> list[tuple[str, str]]:
    return [(probe.source, probe.outcome) for probe in detection.trace]


# --- parsers on recorded output -------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("proc-515.76.txt", "515.76"),
        ("proc-440.95.01.txt", "440.95.01"),
        ("proc-418.56.txt", "418.56"),
        ("proc-open-550.144.03.txt", "550.144.03"),
        ("proc-open-575.57.08.txt", "575.57.08"),
        ("proc-open-aarch64-580.65.06.txt", "580.65.06"),
        ("proc-garbage-truncated.txt", None),
    ],
)
def test_parse_proc_driver_version(name: str, expected: str | None) -> None:
    assert parse_proc_driver_version(read(name)) == expected


@pytest.mark.parametrize("text", ["", "\n", "GCC version:  gcc version 7.5.0\n", "garbage"])
def test_parse_proc_driver_version_absent(text: str) -> None:
    assert parse_proc_driver_version(text) is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "smi-query-cc-multi-gpu.txt",
            [
                ("550.54.14", "NVIDIA GeForce RTX 3090", (8, 6)),
                ("550.54.14", "NVIDIA GeForce GTX 1060 6GB", (6, 1)),
            ],
        ),
        ("smi-query-cc-v100.txt", [("570.124.06", "Tesla V100-SXM2-32GB", (7, 0))]),
        (
            "smi-query-cc-na-fields.txt",
            [
                (None, "NVIDIA A100-SXM4-80GB", (8, 0)),
                ("535.104.05", None, (8, 0)),
                ("535.104.05", "NVIDIA A100-SXM4-80GB", None),
            ],
        ),
        ("smi-query-h100-no-cc.txt", [("570.211.01", "NVIDIA H100 80GB HBM3", None)]),
        ("smi-query-old-driver-no-cc.txt", [("450.80.02", "Tesla T4", None)]),
        ("smi-garbage-r610-header.txt", []),
        ("smi-invalid-field-compute-cap.txt", []),
        ("smi-failed-exit9.txt", []),
    ],
)
def test_parse_nvidia_smi_query(
    name: str, expected: list[tuple[str | None, str | None, tuple[int, int] | None]]
) -> None:
    assert parse_nvidia_smi_query(read(name)) == expected


def test_parse_nvidia_smi_query_odd_lines() -> None:
    text = "driver_version, name, compute_cap\n\n560.94, Some, Name, 8.9\n560.94, A, B\n"
    assert parse_nvidia_smi_query(text) == [
        ("560.94", "Some, Name", (8, 9)),
        ("560.94", "A, B", None),
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(11020, (11, 2)), (12040, (12, 4)), (12080, (12, 8)), (13000, (13, 0)), (0, None)],
)
def test_parse_nvml_cuda_version(value: int, expected: tuple[int, int] | None) -> None:
    assert parse_nvml_cuda_version(value) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("8.6", (8, 6)), (" 12.0 ", (12, 0)), ("[N/A]", None), ("", None), ("8", None)],
)
def test_parse_compute_capability(text: str, expected: tuple[int, int] | None) -> None:
    assert parse_compute_capability(text) == expected


# --- detect(): NVML --------------------------------------------------------------------


def test_nvml_answers_and_later_sources_are_not_run(tmp_path: Path) -> None:
    nvml = FakeNVML()
    found = detect(nvml=nvml, runner=must_not_run, proc_version=tmp_path / "missing", os="linux")
    assert found.driver_version == "550.54.14"
    assert found.max_cuda == (12, 4)
    assert found.has_nvidia
    assert found.gpus == (
        Gpu("NVIDIA GeForce RTX 3090", (8, 6)),
        Gpu("NVIDIA GeForce GTX 1060 6GB", (6, 1)),
    )
    assert found.source == "nvml"
    assert not found.suspected_gpu
    assert outcomes(found) == [
        ("override", "none given"),
        ("nvml", "driver 550.54.14, CUDA 12.4"),
        ("/sys/module/nvidia/version", "not needed"),
        ("/proc/driver/nvidia/version", "not needed"),
        ("libcuda", "not needed"),
        ("nvidia-smi", "not needed"),
    ]
    assert nvml.calls[0] == "nvmlInit"
    assert nvml.calls[-1] == "nvmlShutdown"
    raw = found.trace[1].raw
    assert raw is not None and "nvmlSystemGetCudaDriverVersion_v2=12040" in raw


def test_detection_to_json(tmp_path: Path) -> None:
    found = detect(nvml=FakeNVML(), runner=must_not_run, proc_version=tmp_path, os="linux")
    data = found.to_json()
    assert json.loads(json.dumps(data)) == data
    assert {k: v for k, v in data.items() if k != "trace"} == {
        "driver_version": "550.54.14",
        "max_cuda": "12.4",
        "gpus": [
            {"name": "NVIDIA GeForce RTX 3090", "compute_capability": "8.6"},
            {"name": "NVIDIA GeForce GTX 1060 6GB", "compute_capability": "6.1"},
        ],
        "source": "nvml",
        "suspected_gpu": False,
        "os": "linux",
    }
    assert data["trace"][SMI] == {
        "source": "nvidia-smi",
        "raw": None,
        "outcome": "not needed",
        "failed": False,
    }


def test_nvml_without_libcuda_uses_the_driver_table(tmp_path: Path) -> None:
    nvml = FakeNVML(driver="535.104.05", fail={"nvmlSystemGetCudaDriverVersion_v2": 12})
    found = detect(nvml=nvml, runner=must_not_run, proc_version=tmp_path / "missing", os="linux")
    assert (found.driver_version, found.max_cuda, found.source) == ("535.104.05", (12, 2), "nvml")
    assert found.trace[1].outcome == "driver 535.104.05, CUDA 12.2 (CUDA from the driver table)"


def test_nvml_device_query_failure_keeps_the_driver(tmp_path: Path) -> None:
    nvml = FakeNVML(fail={"nvmlDeviceGetCudaComputeCapability": 13})
    found = detect(nvml=nvml, runner=must_not_run, proc_version=tmp_path / "missing", os="linux")
    assert found.max_cuda == (12, 4)
    assert [gpu.compute_capability for gpu in found.gpus] == [None, None]
    assert [gpu.name for gpu in found.gpus] == [
        "NVIDIA GeForce RTX 3090",
        "NVIDIA GeForce GTX 1060 6GB",
    ]


def test_nvml_library_missing_falls_through_to_nvidia_smi(tmp_path: Path) -> None:
    run = FakeRunner(Completed(0, read("smi-query-cc-v100.txt"), ""))
    found = detect(
        nvml=FakeNVML(fail={"nvmlInit": 12}),
        runner=run,
        proc_version=tmp_path / "missing",
        os="linux",
        timeout=3.0,
    )
    assert run.calls == [(SMI_ARGV, 3.0)]
    assert (found.driver_version, found.max_cuda, found.source) == (
        "570.124.06",
        (12, 8),
        "nvidia-smi",
    )
    assert found.gpus == (Gpu("Tesla V100-SXM2-32GB", (7, 0)),)
    assert outcomes(found)[1:] == [
        ("nvml", "NVML library not found"),
        ("/sys/module/nvidia/version", "not present"),
        ("/proc/driver/nvidia/version", "not present"),
        ("libcuda", "not found (nothing to try)"),
        ("nvidia-smi", "driver 570.124.06, CUDA 12.8"),
    ]


def test_nvml_library_missing_and_nothing_else_is_not_suspicious(tmp_path: Path) -> None:
    found = detect(
        nvml=FakeNVML(fail={"nvmlInit": 12}),
        runner=no_smi(),
        proc_version=tmp_path / "missing",
        os="linux",
    )
    assert (found.source, found.max_cuda, found.has_nvidia) == (None, None, False)
    assert not found.suspected_gpu
    assert outcomes(found)[1:] == [
        ("nvml", "NVML library not found"),
        ("/sys/module/nvidia/version", "not present"),
        ("/proc/driver/nvidia/version", "not present"),
        ("libcuda", "not found (nothing to try)"),
        ("nvidia-smi", "not installed"),
    ]


def test_nvml_driver_not_loaded_is_suspicious(tmp_path: Path) -> None:
    found = detect(
        nvml=FakeNVML(fail={"nvmlInit": 9}),
        runner=no_smi(),
        proc_version=tmp_path / "missing",
        os="linux",
    )
    assert found.suspected_gpu
    assert found.trace[1].outcome == "nvmlInit failed: Driver Not Loaded"


def test_nvml_initialised_but_calls_fail(tmp_path: Path) -> None:
    nvml = FakeNVML(
        fail={
            "nvmlSystemGetDriverVersion": 999,
            "nvmlSystemGetCudaDriverVersion_v2": 999,
            "nvmlDeviceGetCount": 999,
        }
    )
    found = detect(nvml=nvml, runner=no_smi(), proc_version=tmp_path / "missing", os="linux")
    assert (found.source, found.driver_version, found.max_cuda) == (None, None, None)
    assert found.suspected_gpu
    assert found.trace[1].outcome == "initialised, but no driver version"
    assert nvml.calls[-1] == "nvmlShutdown"


def test_nvml_disabled(tmp_path: Path) -> None:
    found = detect(nvml=None, runner=no_smi(), proc_version=tmp_path / "missing", os="linux")
    assert found.trace[1] == Probe("nvml", None, "disabled")


def test_nvml_not_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` fail
    found = detect(runner=no_smi(), proc_version=tmp_path / "missing", os="linux")
    assert found.trace[1] == Probe("nvml", None, "nvidia-ml-py not installed")


# --- detect(): nvidia-smi through a seam -------------------------------------------------


def test_nvidia_smi_outcomes_via_fake_runner(tmp_path: Path) -> None:
    run = FakeRunner(
        Completed(124, "", "", "timed out after 10s"),
    )
    found = detect(nvml=None, runner=run, proc_version=tmp_path / "missing", os="linux")
    assert found.trace[SMI].outcome == "timed out after 10s"
    assert found.suspected_gpu

    run = FakeRunner(Completed(126, "", "", "could not run: [Errno 13] Permission denied"))
    found = detect(nvml=None, runner=run, proc_version=tmp_path / "missing", os="linux")
    assert found.trace[SMI].outcome == "could not run: [Errno 13] Permission denied"
    assert found.suspected_gpu


def test_nvidia_smi_all_driver_fields_na(tmp_path: Path) -> None:
    run = FakeRunner(Completed(0, "[N/A], NVIDIA A100-SXM4-80GB, 8.0\n", ""))
    found = detect(nvml=None, runner=run, proc_version=tmp_path / "missing", os="linux")
    assert found.trace[SMI].outcome == "no driver version in output"
    assert found.suspected_gpu and not found.has_nvidia


# --- detect(): a real fake nvidia-smi executable ----------------------------------------


def fake_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "nvidia-smi"
    script.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir) + os.pathsep + os.environ.get("PATH", ""))


def cat(name: str) -> str:
    return f"cat {shlex.quote(str(DATA / name))}\n"


def detect_with_smi(tmp_path: Path, **kwargs: Any) -> Detection:
    kwargs.setdefault("proc_version", tmp_path / "no-proc-version")
    return detect(nvml=None, os="linux", **kwargs)


@posix_only
def test_real_smi_multi_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_nvidia_smi(tmp_path, monkeypatch, cat("smi-query-cc-multi-gpu.txt"))
    found = detect_with_smi(tmp_path)
    assert (found.driver_version, found.max_cuda, found.source) == (
        "550.54.14",
        (12, 4),
        "nvidia-smi",
    )
    assert found.gpus == (
        Gpu("NVIDIA GeForce RTX 3090", (8, 6)),
        Gpu("NVIDIA GeForce GTX 1060 6GB", (6, 1)),
    )
    assert not found.suspected_gpu
    assert found.trace[SMI].raw == read("smi-query-cc-multi-gpu.txt").strip()
    # With the kernel module's file there, it gives the driver; nvidia-smi only the GPUs.
    found = detect_with_smi(tmp_path, proc_version=DATA / "proc-515.76.txt")
    assert (found.driver_version, found.source, found.gpus_from) == (
        "515.76",
        "/proc/driver/nvidia/version",
        "nvidia-smi",
    )
    assert [gpu.compute_capability for gpu in found.gpus] == [(8, 6), (6, 1)]
    assert found.trace[SMI].outcome.startswith("asked for the GPUs only: driver 550.54.14")


@posix_only
def test_real_smi_na_fields(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_nvidia_smi(tmp_path, monkeypatch, cat("smi-query-cc-na-fields.txt"))
    found = detect_with_smi(tmp_path)
    assert (found.driver_version, found.max_cuda) == ("535.104.05", (12, 2))
    assert found.gpus == (
        Gpu("NVIDIA A100-SXM4-80GB", (8, 0)),
        Gpu(None, (8, 0)),
        Gpu("NVIDIA A100-SXM4-80GB", None),
    )


@posix_only
def test_real_smi_garbage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_nvidia_smi(tmp_path, monkeypatch, cat("smi-garbage-r610-header.txt"))
    found = detect_with_smi(tmp_path)
    assert (found.source, found.driver_version, found.max_cuda) == (None, None, None)
    assert found.suspected_gpu
    assert found.trace[SMI].outcome == "unparsable output"
    assert (found.trace[SMI].raw or "").startswith("+-----")
    assert found.trace[3].outcome == "not present"


@posix_only
def test_real_smi_exit_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_nvidia_smi(tmp_path, monkeypatch, cat("smi-failed-exit9.txt") + "exit 9\n")
    found = detect_with_smi(tmp_path)
    assert found.trace[SMI].outcome == f"exit status 9: {EXIT9_MESSAGE}"
    assert found.suspected_gpu and not found.has_nvidia


@posix_only
def test_real_smi_hang_times_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_nvidia_smi(tmp_path, monkeypatch, "exec sleep 30\n")
    started = time.monotonic()
    found = detect_with_smi(tmp_path, timeout=0.5)
    assert time.monotonic() - started < 10
    assert found.trace[SMI] == Probe("nvidia-smi", None, "timed out after 0.5s", failed=True)
    assert found.suspected_gpu


@posix_only
def test_real_smi_old_driver_rejects_compute_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "argv.log"
    body = (
        f'echo "$@" >> {shlex.quote(str(log))}\n'
        'case "$*" in *compute_cap*)\n'
        f"  {cat('smi-invalid-field-compute-cap.txt')}"
        "  exit 2 ;;\n"
        "esac\n" + cat("smi-query-old-driver-no-cc.txt")
    )
    fake_nvidia_smi(tmp_path, monkeypatch, body)
    found = detect_with_smi(tmp_path)
    assert log.read_text().splitlines() == [" ".join(SMI_ARGV[1:]), " ".join(SMI_ARGV_NO_CC[1:])]
    assert (found.driver_version, found.max_cuda, found.source) == (
        "450.80.02",
        (11, 0),
        "nvidia-smi",
    )
    assert found.gpus == (Gpu("Tesla T4", None),)
    assert found.trace[SMI].outcome == (
        "driver 450.80.02, CUDA 11.0; this nvidia-smi cannot report compute capability"
    )


@posix_only
def test_real_smi_not_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    found = detect_with_smi(tmp_path)
    assert found.trace[SMI] == Probe("nvidia-smi", None, "not installed")
    assert not found.suspected_gpu


def test_runner_for_real() -> None:
    done = run([sys.executable, "-c", "import sys; print('out'); sys.exit(3)"], timeout=30.0)
    assert done == Completed(3, "out\n", "")
    assert run(["torchfit-no-such-program-here"], timeout=5.0) == Completed(
        127, "", "", "not found"
    )
    slow = run([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)
    assert (slow.returncode, slow.failure) == (124, "timed out after 0.5s")


def test_runner_streams_lines_as_they_come() -> None:
    lines: list[str] = []
    script = "import sys; print('one'); sys.stdout.flush(); print('two', file=sys.stderr)"
    done = run([sys.executable, "-c", script], on_output=lines.append)
    assert lines == ["one", "two"]
    assert (done.returncode, done.stdout) == (0, "one\ntwo\n")


# --- detect(): /proc/driver/nvidia/version -------------------------------------------


@pytest.mark.parametrize(
    ("name", "driver", "cuda"),
    [
        ("proc-515.76.txt", "515.76", (11, 7)),
        ("proc-440.95.01.txt", "440.95.01", (10, 2)),
        ("proc-418.56.txt", "418.56", (10, 1)),
        ("proc-open-550.144.03.txt", "550.144.03", (12, 4)),
        ("proc-open-575.57.08.txt", "575.57.08", (12, 9)),
        ("proc-open-aarch64-580.65.06.txt", "580.65.06", (13, 0)),
    ],
)
def test_proc_answers(name: str, driver: str, cuda: tuple[int, int]) -> None:
    found = detect(nvml=None, runner=no_smi(), proc_version=DATA / name, os="linux")
    assert (found.driver_version, found.max_cuda, found.source) == (
        driver,
        cuda,
        "/proc/driver/nvidia/version",
    )
    assert found.gpus == ()
    assert found.trace[3].outcome == f"driver {driver}, CUDA {cuda[0]}.{cuda[1]}"
    assert found.trace[3].raw == read(name).strip()


def test_proc_unparsable_is_suspicious() -> None:
    found = detect(
        nvml=None, runner=no_smi(), proc_version=DATA / "proc-garbage-truncated.txt", os="linux"
    )
    assert found.trace[3].outcome == "unparsable output"
    assert found.suspected_gpu and found.source is None


def test_proc_unreadable_is_suspicious(tmp_path: Path) -> None:
    found = detect(nvml=None, runner=no_smi(), proc_version=tmp_path, os="linux")  # a directory
    assert found.trace[3].outcome.startswith("unreadable: ")
    assert found.suspected_gpu


def test_proc_is_linux_only() -> None:
    found = detect(nvml=None, runner=no_smi(), proc_version=DATA / "proc-515.76.txt", os="windows")
    assert found.trace[3] == Probe("/proc/driver/nvidia/version", None, "skipped: not Linux")
    assert found.source is None


# --- detect(): overrides ---------------------------------------------------------------


SKIPPED = [
    ("nvml", "skipped: overridden"),
    ("/sys/module/nvidia/version", "skipped: overridden"),
    ("/proc/driver/nvidia/version", "skipped: overridden"),
    ("libcuda", "skipped: overridden"),
    ("nvidia-smi", "skipped: overridden"),
]


def test_override_cuda() -> None:
    found = detect(Overrides(cuda=(12, 8)), nvml=MustNotLoad(), runner=must_not_run, os="linux")
    assert (found.max_cuda, found.driver_version, found.source) == ((12, 8), None, "override")
    assert found.trace[0] == Probe("override", "cuda=12.8", "CUDA 12.8")
    assert outcomes(found)[1:] == SKIPPED


def test_override_driver_uses_the_table() -> None:
    found = detect(
        Overrides(driver="535.54.03"), nvml=MustNotLoad(), runner=must_not_run, os="linux"
    )
    assert (found.max_cuda, found.driver_version) == ((12, 2), "535.54.03")
    assert found.trace[0] == Probe("override", "driver=535.54.03", "driver 535.54.03, CUDA 12.2")
    assert outcomes(found)[1:] == SKIPPED


def test_override_cuda_wins_over_driver() -> None:
    found = detect(
        Overrides(cuda=(12, 1), driver="570.26"),
        nvml=MustNotLoad(),
        runner=must_not_run,
        os="linux",
    )
    assert (found.max_cuda, found.driver_version) == ((12, 1), "570.26")
    assert found.trace[0].raw == "cuda=12.1, driver=570.26"


def test_override_driver_older_than_the_table() -> None:
    found = detect(Overrides(driver="340.108"), nvml=MustNotLoad(), runner=must_not_run, os="linux")
    assert (found.source, found.driver_version, found.max_cuda) == ("override", "340.108", None)
    # A driver is known, so an NVIDIA GPU is there, even if no CUDA release fits it.
    assert found.has_nvidia and not found.suspected_gpu
    assert found.trace[0].outcome == "driver 340.108, older than every CUDA toolkit in the table"


def test_override_gpu_arch_only_still_probes(tmp_path: Path) -> None:
    found = detect(
        Overrides(gpu_arch=((8, 9), (12, 0))),
        nvml=FakeNVML(),
        runner=must_not_run,
        proc_version=tmp_path / "missing",
        os="linux",
    )
    assert (found.source, found.max_cuda) == ("nvml", (12, 4))
    assert found.gpus == (Gpu(None, (8, 9)), Gpu(None, (12, 0)))
    assert found.trace[0].raw == "gpu_arch=8.9,12.0"


def test_os_defaults_to_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    for platform, expected in [("win32", "windows"), ("darwin", "macos"), ("linux", "linux")]:
        monkeypatch.setattr(sys, "platform", platform)
        assert detect(Overrides(cuda=(12, 4))).os == expected


def test_unknown_os_is_a_bug() -> None:
    with pytest.raises(ValueError, match="unknown os 'plan9'"):
        detect(nvml=None, runner=must_not_run, os="plan9")


# --- detect(): NVML bindings that break, hang or answer nonsense ------------------------


class RaisingNVML(FakeNVML):
    """Raises ``exc`` (not an NVMLError) from the function ``where``."""

    def __init__(self, where: str, exc: BaseException, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.where, self.exc = where, exc

    def _call(self, name: str) -> None:
        super()._call(name)
        if name == self.where:
            raise self.exc


class HangingNVML(FakeNVML):
    """Blocks in the function ``where`` until ``release`` is set, as a wedged driver does."""

    def __init__(self, where: str, release: threading.Event) -> None:
        super().__init__()
        self.where, self.release = where, release

    def _call(self, name: str) -> None:
        super()._call(name)
        if name == self.where:
            self.release.wait()


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """An event a hanging fake waits on; set at teardown, so no test leaves a thread behind."""
    event = threading.Event()
    yield event
    event.set()
    for thread in threading.enumerate():
        if thread.name == "torchfit-nvml":
            thread.join(5)


def smi_answers() -> FakeRunner:
    return FakeRunner(Completed(0, read("smi-query-cc-v100.txt"), ""))


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("bad value"),
        TypeError("bad type"),
        RuntimeError("bad state"),
        AttributeError("no such thing"),
        OSError(5, "I/O error"),
        KeyError("gone"),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_nvml_init_raising_anything_falls_through_to_nvidia_smi(
    tmp_path: Path, exc: Exception
) -> None:
    run = smi_answers()
    found = detect(
        nvml=RaisingNVML("nvmlInit", exc),
        runner=run,
        proc_version=tmp_path / "missing",
        os="linux",
        timeout=2.0,
    )
    assert run.calls == [(SMI_ARGV, 2.0)]
    assert found.source == "nvidia-smi"
    outcome = found.trace[1].outcome
    assert outcome.startswith(f"nvmlInit failed: {type(exc).__name__}")


@pytest.mark.parametrize(
    "where",
    [
        "nvmlSystemGetDriverVersion",
        "nvmlSystemGetCudaDriverVersion_v2",
        "nvmlDeviceGetCount",
        "nvmlDeviceGetHandleByIndex",
        "nvmlDeviceGetName",
        "nvmlDeviceGetCudaComputeCapability",
        "nvmlShutdown",
    ],
)
@pytest.mark.parametrize("exc", [ValueError("x"), TypeError("y"), RuntimeError("z")], ids=repr)
def test_nvml_call_raising_anything_is_a_trace_line(
    tmp_path: Path, where: str, exc: Exception
) -> None:
    nvml = RaisingNVML(where, exc)
    found = detect(nvml=nvml, runner=no_smi(), proc_version=tmp_path / "missing", os="linux")
    assert nvml.calls[-1] == "nvmlShutdown"  # always shut down, whatever failed
    if where == "nvmlSystemGetDriverVersion":
        assert found.driver_version is None and found.max_cuda == (12, 4)
    else:
        assert found.driver_version == "550.54.14"
    if where != "nvmlShutdown":
        assert f"{where}: {type(exc).__name__}" in (found.trace[1].raw or "")


def test_nvml_that_raises_on_every_attribute(tmp_path: Path) -> None:
    class Hostile:
        def __getattr__(self, name: str) -> Any:
            raise RuntimeError(f"no {name} for you")

    run = smi_answers()
    found = detect(nvml=Hostile(), runner=run, proc_version=tmp_path / "missing", os="linux")
    assert found.trace[1].outcome.startswith("nvmlInit failed: RuntimeError: no nvmlInit")
    assert found.source == "nvidia-smi" and len(run.calls) == 1


def test_nvml_error_whose_text_cannot_be_printed(tmp_path: Path) -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no text")

    found = detect(
        nvml=RaisingNVML("nvmlInit", Unprintable()),
        runner=no_smi(),
        proc_version=tmp_path / "missing",
        os="linux",
    )
    assert found.trace[1].outcome == "nvmlInit failed: Unprintable"


@pytest.mark.parametrize(
    ("source", "outcome"),
    [
        ("raise OSError('libnvidia-ml.so.1: cannot open')", "OSError: libnvidia-ml.so.1"),
        ("raise RuntimeError('half installed')", "RuntimeError: half installed"),
        ("def (:", "SyntaxError"),
        ("import no_such_module_here", "nvidia-ml-py not installed"),
    ],
)
def test_nvml_import_failing_in_any_way_is_a_trace_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, outcome: str
) -> None:
    (tmp_path / "pynvml.py").write_text(source + "\n", encoding="utf-8")
    monkeypatch.delitem(sys.modules, "pynvml")
    monkeypatch.syspath_prepend(str(tmp_path))
    run = smi_answers()
    found = detect(runner=run, proc_version=tmp_path / "missing", os="linux")
    assert outcome in found.trace[1].outcome
    assert found.source == "nvidia-smi"


def test_nvml_hanging_in_init_times_out_and_nvidia_smi_is_asked(
    tmp_path: Path, release: threading.Event
) -> None:
    nvml = HangingNVML("nvmlInit", release)
    run = smi_answers()
    found = detect(
        nvml=nvml, runner=run, proc_version=tmp_path / "missing", os="linux", timeout=0.5
    )
    assert found.trace[1] == Probe("nvml", None, "timed out after 0.5s", failed=True)
    assert run.calls == [(SMI_ARGV, 0.5)]
    assert (found.source, found.driver_version) == ("nvidia-smi", "570.124.06")
    # The thread is left behind as a daemon: it cannot keep the process from exiting.
    left = [t for t in threading.enumerate() if t.name == "torchfit-nvml"]
    assert left and all(t.daemon for t in left)


def test_nvml_hanging_without_other_sources_is_suspicious(
    tmp_path: Path, release: threading.Event
) -> None:
    nvml = HangingNVML("nvmlDeviceGetName", release)
    found = detect(
        nvml=nvml, runner=no_smi(), proc_version=tmp_path / "missing", os="linux", timeout=0.5
    )
    assert found.trace[1].outcome == "timed out after 0.5s"
    assert found.suspected_gpu and not found.has_nvidia


def test_nvml_still_hanging_is_not_asked_again(tmp_path: Path, release: threading.Event) -> None:
    nvml = HangingNVML("nvmlInit", release)
    first = detect(
        nvml=nvml, runner=no_smi(), proc_version=tmp_path / "missing", os="linux", timeout=0.5
    )
    assert first.trace[1].outcome == "timed out after 0.5s"
    second = detect(
        nvml=nvml, runner=smi_answers(), proc_version=tmp_path / "missing", os="linux", timeout=60
    )
    assert second.trace[1].outcome == "skipped: an earlier NVML probe has not returned"
    assert second.source == "nvidia-smi"
    assert nvml.calls == ["nvmlInit"]  # one thread blocked, not two
    release.set()  # the driver comes back: the next detection asks NVML again
    for thread in threading.enumerate():
        if thread.name == "torchfit-nvml":
            thread.join(5)
    third = detect(nvml=nvml, runner=must_not_run, proc_version=tmp_path / "missing", os="linux")
    assert third.source == "nvml"


def test_nvml_answering_nonsense_stays_bounded(tmp_path: Path) -> None:
    class Huge(FakeNVML):
        def nvmlDeviceGetCount(self) -> int:
            self._call("nvmlDeviceGetCount")
            return 1_000_000

        def nvmlDeviceGetName(self, handle: int) -> Any:
            self._call("nvmlDeviceGetName")
            return "A" * 10_000_000

        def nvmlDeviceGetCudaComputeCapability(self, handle: int) -> Any:
            self._call("nvmlDeviceGetCudaComputeCapability")
            return (10**6, True)

    nvml = Huge(cuda=10**9)
    found = detect(nvml=nvml, runner=must_not_run, proc_version=tmp_path / "missing", os="linux")
    assert len(found.gpus) == 64
    assert nvml.calls.count("nvmlDeviceGetName") == 64
    assert all(gpu.name == "A" * 100 and gpu.compute_capability is None for gpu in found.gpus)
    # CUDA "1000000.0" is no CUDA: the driver table answers instead.
    assert found.max_cuda == (12, 4)
    assert found.trace[1].outcome == (
        "driver 550.54.14, CUDA 12.4 (CUDA from the driver table);"
        " only the first 64 of 1000000 GPUs read"
    )
    assert len(found.trace[1].raw or "") <= 503


@pytest.mark.parametrize(
    "count",
    [-1, "3", 2.0, None, True, 10**5000],
    ids=["-1", "str", "float", "None", "True", "huge"],
)
def test_nvml_count_that_is_no_count(tmp_path: Path, count: Any) -> None:
    class Odd(FakeNVML):
        def nvmlDeviceGetCount(self) -> Any:
            return count

    found = detect(nvml=Odd(), runner=must_not_run, proc_version=tmp_path / "missing", os="linux")
    assert found.source == "nvml"
    assert len(found.gpus) <= 64


def test_nvml_driver_version_that_is_garbage(tmp_path: Path) -> None:
    found = detect(
        nvml=FakeNVML(driver=b"\xff" * 1_000_000, cuda=0),
        runner=no_smi(),
        proc_version=tmp_path / "missing",
        os="linux",
    )
    assert found.trace[1].outcome == "initialised, but no driver version"
    assert len(found.trace[1].raw or "") <= 503


# --- a container image's variables: asked only when no driver answered ----------------

IMAGE_12_4 = {"NVIDIA_REQUIRE_CUDA": "cuda>=12.4 brand=tesla,driver>=470,driver<471"}


def test_a_driver_that_answers_wins_over_the_image(tmp_path: Path) -> None:
    found = detect(
        nvml=FakeNVML(driver=b"570.124.06", cuda=12080),
        runner=must_not_run,
        proc_version=tmp_path / "missing",
        os="linux",
        env={**IMAGE_12_4, "CUDA_VERSION": "12.4.1"},
    )
    assert (found.max_cuda, found.source, found.probed) == ((12, 8), "nvml", True)
    assert [p.source for p in found.trace][-1] == "nvidia-smi"


def test_cdi_sets_void_but_a_probed_driver_still_counts(tmp_path: Path) -> None:
    # CDI mode: the toolkit injects the GPUs and sets NVIDIA_VISIBLE_DEVICES=void itself.
    found = detect(
        nvml=FakeNVML(),
        runner=must_not_run,
        proc_version=tmp_path / "missing",
        os="linux",
        env={"NVIDIA_VISIBLE_DEVICES": "void", **IMAGE_12_4},
    )
    assert (found.driver_version, found.source) == ("550.54.14", "nvml")


def test_the_image_answers_after_every_driver_source_failed(tmp_path: Path) -> None:
    found = detect(
        nvml=FakeNVML(fail={"nvmlInit": 12}),
        runner=no_smi(),
        proc_version=tmp_path / "missing",
        os="linux",
        env=IMAGE_12_4,
    )
    assert outcomes(found)[1:] == [
        ("nvml", "NVML library not found"),
        ("/sys/module/nvidia/version", "not present"),
        ("/proc/driver/nvidia/version", "not present"),
        ("libcuda", "not found (nothing to try)"),
        ("nvidia-smi", "not installed"),
        ("NVIDIA_REQUIRE_CUDA", "CUDA 12.4: the image's CUDA (no driver visible)"),
    ]
    assert (found.max_cuda, found.driver_version, found.probed) == ((12, 4), None, False)


def test_without_a_mapping_detection_reads_the_process_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CONDA_OVERRIDE_CUDA", "11.8")
    found = detect(nvml=None, runner=no_smi(), proc_version=tmp_path / "missing", os="linux")
    assert (found.max_cuda, found.source) == ((11, 8), "CONDA_OVERRIDE_CUDA")
