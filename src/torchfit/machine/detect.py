"""Find the NVIDIA driver and the highest CUDA it supports, with a trace of every probe.

Sources, in order: overrides, NVML, ``nvidia-smi``, ``/proc/driver/nvidia/version``; the
first that yields a driver or CUDA version answers. No failure aborts detection: a missing
tool, a non-zero exit, garbage or a hang becomes one line of the trace. The only module
that runs subprocesses, reads driver files or loads NVML; its parsers are pure.
"""

from __future__ import annotations

import importlib
import logging
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torchfit._runner import Runner, run_command
from torchfit.machine.drivers import OSES, max_cuda_for_driver, parse_driver_version

logger = logging.getLogger(__name__)

OVERRIDE = "override"
NVML = "nvml"
NVIDIA_SMI = "nvidia-smi"
PROC_VERSION = "/proc/driver/nvidia/version"

_RAW_LIMIT = 500
_TAIL_LIMIT = 200
_SMI_FIELDS = ("driver_version", "name", "compute_cap")
_NVML_ERROR_LIBRARY_NOT_FOUND = 12  # nvml.h
_PROC_LINE = re.compile(r"Kernel Module(?:\s+for\s+\S+)?\s+(\d+(?:\.\d+)+)(?:\s|$)")
_CAPABILITY = re.compile(r"\s*(\d+)\.(\d+)\s*")
_Errors = tuple[type[BaseException], ...]


@dataclass(frozen=True)
class Gpu:
    """One GPU; ``compute_capability`` is None when the source cannot tell (old drivers)."""

    name: str | None
    compute_capability: tuple[int, int] | None

    def to_json(self) -> dict[str, Any]:
        cc = self.compute_capability
        return {"name": self.name, "compute_capability": _dotted(cc) if cc else None}


@dataclass(frozen=True)
class Probe:
    """One line of the detection trace: a source, what it saw, and what came of it."""

    source: str
    raw: str | None
    outcome: str

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "raw": self.raw, "outcome": self.outcome}


@dataclass(frozen=True)
class Overrides:
    """Values the user gave (``--cuda``, ``--driver``, ``--gpu-arch`` or ``TORCHFIT_*``)."""

    cuda: tuple[int, int] | None = None
    driver: str | None = None
    gpu_arch: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class Detection:
    """What detection found; ``max_cuda`` is the driver's maximum supported CUDA."""

    driver_version: str | None
    max_cuda: tuple[int, int] | None
    gpus: tuple[Gpu, ...]
    source: str | None
    suspected_gpu: bool
    trace: tuple[Probe, ...]
    os: str

    @property
    def has_nvidia(self) -> bool:
        # A driver older than every known CUDA release still means an NVIDIA GPU is there.
        return self.max_cuda is not None or self.driver_version is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "driver_version": self.driver_version,
            "max_cuda": _dotted(self.max_cuda) if self.max_cuda else None,
            "gpus": [gpu.to_json() for gpu in self.gpus],
            "source": self.source,
            "suspected_gpu": self.suspected_gpu,
            "trace": [probe.to_json() for probe in self.trace],
            "os": self.os,
        }


@dataclass(frozen=True)
class _Found:
    """A probe's result before detect() assembles the Detection."""

    probe: Probe
    driver: str | None = None
    max_cuda: tuple[int, int] | None = None
    gpus: tuple[Gpu, ...] = ()
    suspected: bool = False

    @property
    def answered(self) -> bool:
        return self.driver is not None or self.max_cuda is not None


_NO_OVERRIDES = Overrides()
_IMPORT_NVML: Any = object()  # detect()'s default: import pynvml when it is needed
_PROC_PATH = Path(PROC_VERSION)


def detect(
    overrides: Overrides = _NO_OVERRIDES,
    *,
    nvml: Any = _IMPORT_NVML,
    run: Runner = run_command,
    proc_version: Path = _PROC_PATH,
    os: str | None = None,
    timeout: float = 10.0,
) -> Detection:
    """Detect the driver, its maximum CUDA and the GPUs; never raises for a failed probe.

    ``nvml`` is a pynvml-like module (None disables NVML); ``run`` runs nvidia-smi;
    ``os`` is "linux", "windows" or "macos" (None: this machine's).
    Raises ValueError for an unknown ``os``.
    """
    os_name = os if os is not None else _current_os()
    if os_name not in OSES:
        raise ValueError(f"unknown os {os_name!r}; expected one of {', '.join(OSES)}")
    given = _from_overrides(overrides, os_name)
    trace = [given.probe]
    answer = given if given.answered else None
    suspected = False
    probes: tuple[tuple[str, Callable[[], _Found]], ...] = (
        (NVML, lambda: _probe_nvml(nvml, os_name)),
        (NVIDIA_SMI, lambda: _probe_nvidia_smi(run, timeout, os_name)),
        (PROC_VERSION, lambda: _probe_proc(proc_version, os_name)),
    )
    for name, probe in probes:
        if answer is not None:
            skipped = "skipped: overridden" if answer is given else "not needed"
            trace.append(Probe(name, None, skipped))
            continue
        found = probe()
        logger.debug("%s: %s", name, found.probe.outcome)
        trace.append(found.probe)
        suspected = suspected or found.suspected
        answer = found if found.answered else None
    gpus = given.gpus if overrides.gpu_arch else (answer.gpus if answer else ())
    if answer is None:
        return Detection(None, None, gpus, None, suspected, tuple(trace), os_name)
    source = answer.probe.source
    return Detection(answer.driver, answer.max_cuda, gpus, source, False, tuple(trace), os_name)


def parse_nvidia_smi_query(
    text: str,
) -> list[tuple[str | None, str | None, tuple[int, int] | None]]:
    """(driver, name, compute capability) per GPU line of ``nvidia-smi --query-gpu=...``.

    Reads ``driver_version,name[,compute_cap]`` with ``--format=csv,noheader``; ``[N/A]``
    fields become None; lines that do not start with a driver version are skipped.

    >>> parse_nvidia_smi_query("550.54.14, NVIDIA GeForce RTX 3090, 8.6\\n")
    [('550.54.14', 'NVIDIA GeForce RTX 3090', (8, 6))]
    """
    rows: list[tuple[str | None, str | None, tuple[int, int] | None]] = []
    for line in text.splitlines():
        fields = [field.strip() for field in line.split(",")]
        driver = _field(fields[0])
        if driver is None and not (fields[0] and len(fields) > 1):
            continue
        if driver is not None and parse_driver_version(driver) is None:
            continue  # a header, an error message, garbage
        capability: tuple[int, int] | None = None
        names = fields[1:]
        # A third field is compute_cap; a name with a comma in it must not be mistaken for one.
        if len(names) >= 2 and (_field(names[-1]) is None or parse_compute_capability(names[-1])):
            capability = parse_compute_capability(names.pop())
        rows.append((driver, _field(", ".join(names)) if names else None, capability))
    return rows


def parse_proc_driver_version(text: str) -> str | None:
    """The kernel module version from ``/proc/driver/nvidia/version``, or None.

    Handles the proprietary ("Kernel Module  515.76  ...") and the open
    ("Open Kernel Module for x86_64  550.144.03  Release Build ...") first lines.

    >>> parse_proc_driver_version("NVRM version: NVIDIA UNIX x86_64 Kernel Module  515.76  Mon")
    '515.76'
    """
    lines = text.splitlines()
    match = _PROC_LINE.search(lines[0]) if lines else None
    return match.group(1) if match else None


def parse_nvml_cuda_version(value: int) -> tuple[int, int] | None:
    """Decode NVML's / cuDriverGetVersion's ``1000*major + 10*minor``; None if not positive.

    >>> parse_nvml_cuda_version(12040)
    (12, 4)
    """
    if value <= 0:
        return None
    return (value // 1000, value % 1000 // 10)


def parse_compute_capability(text: str) -> tuple[int, int] | None:
    """``"8.6"`` -> (8, 6); anything else (``[N/A]``, empty) -> None.

    >>> parse_compute_capability("12.0")
    (12, 0)
    """
    match = _CAPABILITY.fullmatch(text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _from_overrides(overrides: Overrides, os: str) -> _Found:
    if overrides == _NO_OVERRIDES:
        return _Found(Probe(OVERRIDE, None, "none given"))
    given: list[str] = []
    if overrides.cuda is not None:
        given.append(f"cuda={_dotted(overrides.cuda)}")
    if overrides.driver is not None:
        given.append(f"driver={overrides.driver}")
    if overrides.gpu_arch:
        given.append("gpu_arch=" + ",".join(_dotted(cc) for cc in overrides.gpu_arch))
    gpus = tuple(Gpu(None, cc) for cc in overrides.gpu_arch)
    raw = ", ".join(given)
    if overrides.cuda is None and overrides.driver is None:
        return _Found(Probe(OVERRIDE, raw, "GPU architectures only; probing the driver"), gpus=gpus)
    # A given CUDA wins over the driver table; a given driver is still recorded.
    cuda = overrides.cuda
    if cuda is None and overrides.driver is not None:
        cuda = max_cuda_for_driver(overrides.driver, os)
    outcome = _describe(overrides.driver, cuda)
    return _Found(Probe(OVERRIDE, raw, outcome), overrides.driver, cuda, gpus)


def _probe_nvml(nvml: Any, os: str) -> _Found:
    if nvml is None:
        return _Found(Probe(NVML, None, "disabled"))
    if nvml is _IMPORT_NVML:
        try:  # lazily: most machines (and every Docker build) have no NVML
            nvml = importlib.import_module("pynvml")
        except ImportError:
            return _Found(Probe(NVML, None, "nvidia-ml-py not installed"))
    error = getattr(nvml, "NVMLError", None)
    errors: _Errors = (Exception,)  # without an NVMLError class: anything is a failed probe
    if isinstance(error, type) and issubclass(error, Exception):
        errors = (error, OSError)
    try:
        nvml.nvmlInit()
    except errors as exc:
        if getattr(exc, "value", None) == _NVML_ERROR_LIBRARY_NOT_FOUND:
            return _Found(Probe(NVML, None, "NVML library not found"))
        return _Found(Probe(NVML, None, f"nvmlInit failed: {exc}"), suspected=True)
    seen: list[str] = []
    try:
        driver = _text(_nvml_call(nvml, errors, seen, "nvmlSystemGetDriverVersion"))
        cuda_value = _nvml_call(nvml, errors, seen, "nvmlSystemGetCudaDriverVersion_v2")
        gpus = _nvml_gpus(nvml, errors, seen)
    finally:
        try:
            nvml.nvmlShutdown()
        except errors as exc:
            logger.debug("nvmlShutdown failed: %s", exc)
    raw = _clip("; ".join(seen))
    if driver is not None and parse_driver_version(driver) is None:
        driver = None
    cuda = parse_nvml_cuda_version(cuda_value) if isinstance(cuda_value, int) else None
    if driver is None and cuda is None:
        return _Found(Probe(NVML, raw, "initialised, but no driver version"), suspected=True)
    note = ""
    if cuda is None and driver is not None:
        # No libcuda (e.g. a container without it): the driver table still knows.
        cuda = max_cuda_for_driver(driver, os)
        note = " (CUDA from the driver table)"
    return _Found(Probe(NVML, raw, _describe(driver, cuda) + note), driver, cuda, gpus)


def _nvml_gpus(nvml: Any, errors: _Errors, seen: list[str]) -> tuple[Gpu, ...]:
    gpus: list[Gpu] = []
    count = _nvml_call(nvml, errors, seen, "nvmlDeviceGetCount")
    for index in range(count if isinstance(count, int) else 0):
        handle = _nvml_call(nvml, errors, seen, "nvmlDeviceGetHandleByIndex", index)
        name: str | None = None
        cc: Any = None
        if handle is not None:
            name = _text(_nvml_call(nvml, errors, seen, "nvmlDeviceGetName", handle))
            cc = _nvml_call(nvml, errors, seen, "nvmlDeviceGetCudaComputeCapability", handle)
        valid = isinstance(cc, tuple) and len(cc) == 2 and all(isinstance(n, int) for n in cc)
        gpus.append(Gpu(name, (cc[0], cc[1]) if valid else None))
    return tuple(gpus)


def _nvml_call(nvml: Any, errors: _Errors, seen: list[str], name: str, *args: Any) -> Any:
    """Call one NVML function; None (and a note in ``seen``) when it fails or is missing."""
    function = getattr(nvml, name, None)
    if function is None:
        seen.append(f"{name}: missing")
        return None
    try:
        value = function(*args)
    except errors as exc:
        seen.append(f"{name}: {exc}")
        return None
    if name != "nvmlDeviceGetHandleByIndex":  # handles are opaque pointers
        seen.append(f"{name}={value!r}")
    return value


def _probe_nvidia_smi(run: Runner, timeout: float, os: str) -> _Found:
    fields: tuple[str, ...] = _SMI_FIELDS
    try:
        done = run(_smi_argv(fields), timeout)
        if done.returncode != 0 and "compute_cap" in done.stdout + done.stderr:
            # Drivers older than the compute_cap field reject the whole query.
            fields = _SMI_FIELDS[:2]
            done = run(_smi_argv(fields), timeout)
    except FileNotFoundError:
        return _Found(Probe(NVIDIA_SMI, None, "not installed"))
    except subprocess.TimeoutExpired:
        return _Found(Probe(NVIDIA_SMI, None, f"timed out after {timeout:g}s"), suspected=True)
    except OSError as exc:
        return _Found(Probe(NVIDIA_SMI, None, f"could not run: {exc}"), suspected=True)
    raw = _clip(done.stdout + done.stderr)
    if done.returncode != 0:
        tail = _tail(done.stderr) or _tail(done.stdout)
        outcome = f"exit status {done.returncode}" + (f": {tail}" if tail else "")
        return _Found(Probe(NVIDIA_SMI, raw, outcome), suspected=True)
    rows = parse_nvidia_smi_query(done.stdout)
    if not rows:
        return _Found(Probe(NVIDIA_SMI, raw, "unparsable output"), suspected=True)
    driver = next((row[0] for row in rows if row[0] is not None), None)
    if driver is None:
        return _Found(Probe(NVIDIA_SMI, raw, "no driver version in output"), suspected=True)
    cuda = max_cuda_for_driver(driver, os)
    gpus = tuple(Gpu(name, cc) for _, name, cc in rows)
    outcome = _describe(driver, cuda)
    if "compute_cap" not in fields:
        outcome += "; this nvidia-smi cannot report compute capability"
    return _Found(Probe(NVIDIA_SMI, raw, outcome), driver, cuda, gpus)


def _smi_argv(fields: Sequence[str]) -> list[str]:
    return ["nvidia-smi", "--query-gpu=" + ",".join(fields), "--format=csv,noheader"]


def _probe_proc(path: Path, os: str) -> _Found:
    if os != "linux":
        return _Found(Probe(PROC_VERSION, None, "skipped: not Linux"))
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, NotADirectoryError):
        return _Found(Probe(PROC_VERSION, None, "not present"))
    except OSError as exc:
        # It exists, so a driver is (or was) loaded.
        return _Found(Probe(PROC_VERSION, None, f"unreadable: {exc}"), suspected=True)
    raw = _clip(text)
    driver = parse_proc_driver_version(text)
    if driver is None:
        return _Found(Probe(PROC_VERSION, raw, "unparsable output"), suspected=True)
    cuda = max_cuda_for_driver(driver, os)
    return _Found(Probe(PROC_VERSION, raw, _describe(driver, cuda)), driver, cuda)


def _describe(driver: str | None, cuda: tuple[int, int] | None) -> str:
    cuda_text = f"CUDA {_dotted(cuda)}" if cuda else "older than every CUDA toolkit in the table"
    return f"driver {driver}, {cuda_text}" if driver else cuda_text


def _field(value: str) -> str | None:
    # nvidia-smi prints "[N/A]" or "[Not Supported]" for what it cannot tell.
    if not value or value == "N/A" or (value.startswith("[") and value.endswith("]")):
        return None
    return value


def _text(value: Any) -> str | None:
    # pynvml returns str, older releases bytes.
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _clip(text: str) -> str | None:
    text = text.strip()
    return (text[:_RAW_LIMIT] + "..." if len(text) > _RAW_LIMIT else text) or None


def _tail(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][-_TAIL_LIMIT:] if lines else ""


def _dotted(pair: tuple[int, int]) -> str:
    return f"{pair[0]}.{pair[1]}"


def _current_os() -> str:
    return {"win32": "windows", "darwin": "macos"}.get(sys.platform, "linux")
