"""Source: NVML through nvidia-ml-py (``pynvml``), loaded only when asked.

A wedged driver can make ``nvmlInit``, or any call after it, block for ever: with a
``timeout``, the whole probe (the import included) runs in a daemon thread that is abandoned
at the deadline, and a daemon thread cannot keep the process from exiting. Whatever the
bindings raise becomes a line of the trace, and whatever they return is bounded before it
is kept (a count of a million GPUs, a name of a megabyte).
"""

from __future__ import annotations

import importlib
import logging
import threading
from typing import Any

from torchfit.machine.drivers import max_cuda_for_driver, parse_driver_version
from torchfit.machine.pci_ids import infer_capability, pci_id_from_nvml
from torchfit.machine.record import NVML, Found, Gpu, Probe, clip, describe

logger = logging.getLogger(__name__)

#: detect()'s default: import pynvml when it is needed.
IMPORT_NVML: Any = object()

#: More GPUs than one machine holds; a larger count is read only this far.
MAX_GPUS = 64
_LIBRARY_NOT_FOUND = 12  # NVML_ERROR_LIBRARY_NOT_FOUND in nvml.h
_TEXT_LIMIT = 100  # a GPU name or a driver version, as kept
_NOTE_LIMIT = 200  # one call's entry in the trace's raw text
_CUDA_VALUE_LIMIT = 100_000  # 1000*major + 10*minor: CUDA 99.x at most

# Probes whose thread never came back, by the id of their NVML module: asking again would
# only leave another thread behind, blocked on the same driver lock.
_stuck: dict[int, threading.Thread] = {}
_stuck_lock = threading.Lock()


def parse_nvml_cuda_version(value: int) -> tuple[int, int] | None:
    """Decode NVML's / cuDriverGetVersion's ``1000*major + 10*minor``; None if not positive.

    >>> parse_nvml_cuda_version(12040)
    (12, 4)
    """
    if value <= 0:
        return None
    return (value // 1000, value % 1000 // 10)


def probe_nvml(nvml: Any, os: str, timeout: float | None = None) -> Found:
    """Ask NVML for the driver, its CUDA version and each GPU, within ``timeout`` seconds.

    ``nvml`` is a pynvml-like module, None to skip, or :data:`IMPORT_NVML`; ``timeout``
    None waits as long as NVML takes, in this thread. Never raises: a failed import or
    call, and a deadline passed, are the probe's outcome.
    """
    if nvml is None:
        return Found(Probe(NVML, None, "disabled"))
    if timeout is None:
        return _guarded(nvml, os)
    key = id(nvml)
    with _stuck_lock:
        earlier = _stuck.pop(key, None)
        if earlier is not None and earlier.is_alive():
            _stuck[key] = earlier
            outcome = "skipped: an earlier NVML probe has not returned"
            return Found(Probe(NVML, None, outcome), suspected=True)
    answer: list[Found] = []
    worker = threading.Thread(
        target=_work, args=(nvml, os, answer), name="torchfit-nvml", daemon=True
    )
    try:
        worker.start()
    except RuntimeError as exc:  # no thread to be had: better no NVML than no deadline
        return Found(Probe(NVML, None, f"not asked: {_reason(exc)}"))
    worker.join(timeout)
    if answer:
        return answer[0]
    with _stuck_lock:
        _stuck[key] = worker
    logger.debug("NVML did not answer within %gs; its thread is left behind", timeout)
    return Found(Probe(NVML, None, f"timed out after {timeout:g}s"), suspected=True)


def _work(nvml: Any, os: str, answer: list[Found]) -> None:
    try:
        answer.append(_guarded(nvml, os))
    except BaseException as exc:  # a SystemExit from the bindings ends only this thread
        answer.append(Found(Probe(NVML, None, f"failed: {_reason(exc)}"), suspected=True))


def _guarded(nvml: Any, os: str) -> Found:
    try:
        return _probe(nvml, os)
    except Exception as exc:  # bindings that break in ways _probe does not foresee
        return Found(Probe(NVML, None, f"failed: {_reason(exc)}"), suspected=True)


def _probe(nvml: Any, os: str) -> Found:
    if nvml is IMPORT_NVML:
        try:  # lazily: most machines (and every Docker build) have no NVML
            nvml = importlib.import_module("pynvml")
        except ImportError:
            return Found(Probe(NVML, None, "nvidia-ml-py not installed"))
        except Exception as exc:  # a broken install: no sign of a GPU either way
            return Found(Probe(NVML, None, f"import pynvml failed: {_reason(exc)}"))
    error = _attribute(nvml, "NVMLError")
    named = error if isinstance(error, type) and issubclass(error, Exception) else None
    try:
        nvml.nvmlInit()
    except Exception as exc:
        if _attribute(exc, "value") == _LIBRARY_NOT_FOUND:
            return Found(Probe(NVML, None, "NVML library not found"))
        outcome = f"nvmlInit failed: {_reason(exc, named)}"
        return Found(Probe(NVML, None, outcome), suspected=True)
    seen: list[str] = []
    try:
        driver = _text(_call(nvml, named, seen, "nvmlSystemGetDriverVersion"))
        cuda_value = _call(nvml, named, seen, "nvmlSystemGetCudaDriverVersion_v2")
        gpus, gpu_note = _gpus(nvml, named, seen)
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception as exc:
            logger.debug("nvmlShutdown failed: %s", _reason(exc, named))
    raw = clip("; ".join(seen))
    if driver is not None and parse_driver_version(driver) is None:
        driver = None
    cuda = parse_nvml_cuda_version(cuda_value) if _is_int(cuda_value, _CUDA_VALUE_LIMIT) else None
    if driver is None and cuda is None:
        return Found(Probe(NVML, raw, "initialised, but no driver version"), suspected=True)
    note = ""
    if cuda is None and driver is not None:
        # No libcuda (e.g. a container without it): the driver table still knows.
        cuda = max_cuda_for_driver(driver, os)
        note = " (CUDA from the driver table)"
    outcome = describe(driver, cuda) + note + gpu_note
    return Found(Probe(NVML, raw, outcome), driver, cuda, gpus)


def _gpus(nvml: Any, named: type[Exception] | None, seen: list[str]) -> tuple[tuple[Gpu, ...], str]:
    """The GPUs, and a note for the outcome when the count was cut to :data:`MAX_GPUS`."""
    count = _call(nvml, named, seen, "nvmlDeviceGetCount")
    if not _is_int(count):
        count = 0
    note = ""
    if count > MAX_GPUS:
        shown = str(count) if count < 10**12 else "over 10**12"
        note = f"; only the first {MAX_GPUS} of {shown} GPUs read"
        count = MAX_GPUS
    gpus: list[Gpu] = []
    for index in range(count):
        handle = _call(nvml, named, seen, "nvmlDeviceGetHandleByIndex", index)
        name: str | None = None
        cc: Any = None
        uuid: str | None = None
        pci_id: str | None = None
        if handle is not None:
            name = _text(_call(nvml, named, seen, "nvmlDeviceGetName", handle))
            cc = _call(nvml, named, seen, "nvmlDeviceGetCudaComputeCapability", handle)
            uuid = _text(_call(nvml, named, seen, "nvmlDeviceGetUUID", handle))
        valid = isinstance(cc, tuple) and len(cc) == 2 and all(_is_int(n, 100) for n in cc)
        if handle is not None and not valid:  # an old driver: the device id may tell
            info = _call(nvml, named, seen, "nvmlDeviceGetPciInfo", handle)
            pci_id = pci_id_from_nvml(_attribute(info, "pciDeviceId"))
        gpu = Gpu(name, (cc[0], cc[1]) if valid else None, uuid=uuid, pci_id=pci_id)
        gpus.append(infer_capability(gpu))
    return tuple(gpus), note


def _call(nvml: Any, named: type[Exception] | None, seen: list[str], name: str, *args: Any) -> Any:
    """Call one NVML function; None (and a note in ``seen``) when it fails or is missing."""
    function = _attribute(nvml, name)
    if not callable(function):
        seen.append(f"{name}: missing")
        return None
    try:
        value = function(*args)
    except Exception as exc:
        seen.append(f"{name}: {_reason(exc, named)}")
        return None
    if name != "nvmlDeviceGetHandleByIndex":  # handles are opaque pointers
        seen.append(f"{name}={_shown(value)}"[:_NOTE_LIMIT])
    return value


def _attribute(value: Any, name: str) -> Any:
    # A module object can be anything: its __getattr__ may raise what it likes.
    try:
        return getattr(value, name, None)
    except Exception:
        return None


def _reason(exc: BaseException, named: type[Exception] | None = None) -> str:
    """An exception as one bounded line: NVML's own errors by their text, others by type."""
    try:
        text = " ".join(str(exc).split())
    except Exception:
        text = ""
    if named is None or not isinstance(exc, named):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text[:_NOTE_LIMIT] or type(exc).__name__


def _shown(value: Any) -> str:
    if isinstance(value, (str, bytes)):
        value = value[:_NOTE_LIMIT]
    try:
        return repr(value)[:_NOTE_LIMIT]
    except Exception:  # a repr that raises, an int too long to print
        return f"<{type(value).__name__}>"


def _is_int(value: Any, below: int | None = None) -> bool:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        return False
    return below is None or value < below


def _text(value: Any) -> str | None:
    # pynvml returns str, older releases bytes.
    if isinstance(value, bytes):
        value = value[: _TEXT_LIMIT * 4].decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    return value[: _TEXT_LIMIT * 4].strip()[:_TEXT_LIMIT] or None
