"""Source: NVML through nvidia-ml-py (``pynvml``), loaded only when asked."""

from __future__ import annotations

import importlib
import logging
from typing import Any

from torchfit.machine.drivers import max_cuda_for_driver, parse_driver_version
from torchfit.machine.record import NVML, Found, Gpu, Probe, clip, describe

logger = logging.getLogger(__name__)

#: detect()'s default: import pynvml when it is needed.
IMPORT_NVML: Any = object()

_LIBRARY_NOT_FOUND = 12  # NVML_ERROR_LIBRARY_NOT_FOUND in nvml.h
_Errors = tuple[type[BaseException], ...]


def parse_nvml_cuda_version(value: int) -> tuple[int, int] | None:
    """Decode NVML's / cuDriverGetVersion's ``1000*major + 10*minor``; None if not positive.

    >>> parse_nvml_cuda_version(12040)
    (12, 4)
    """
    if value <= 0:
        return None
    return (value // 1000, value % 1000 // 10)


def probe_nvml(nvml: Any, os: str) -> Found:
    """Ask NVML for the driver, its CUDA version and each GPU; ``nvml`` is a pynvml-like
    module, None to skip, or :data:`IMPORT_NVML`."""
    if nvml is None:
        return Found(Probe(NVML, None, "disabled"))
    if nvml is IMPORT_NVML:
        try:  # lazily: most machines (and every Docker build) have no NVML
            nvml = importlib.import_module("pynvml")
        except ImportError:
            return Found(Probe(NVML, None, "nvidia-ml-py not installed"))
    error = getattr(nvml, "NVMLError", None)
    errors: _Errors = (Exception,)  # without an NVMLError class: anything is a failed probe
    if isinstance(error, type) and issubclass(error, Exception):
        errors = (error, OSError)
    try:
        nvml.nvmlInit()
    except errors as exc:
        if getattr(exc, "value", None) == _LIBRARY_NOT_FOUND:
            return Found(Probe(NVML, None, "NVML library not found"))
        return Found(Probe(NVML, None, f"nvmlInit failed: {exc}"), suspected=True)
    seen: list[str] = []
    try:
        driver = _text(_call(nvml, errors, seen, "nvmlSystemGetDriverVersion"))
        cuda_value = _call(nvml, errors, seen, "nvmlSystemGetCudaDriverVersion_v2")
        gpus = _gpus(nvml, errors, seen)
    finally:
        try:
            nvml.nvmlShutdown()
        except errors as exc:
            logger.debug("nvmlShutdown failed: %s", exc)
    raw = clip("; ".join(seen))
    if driver is not None and parse_driver_version(driver) is None:
        driver = None
    cuda = parse_nvml_cuda_version(cuda_value) if isinstance(cuda_value, int) else None
    if driver is None and cuda is None:
        return Found(Probe(NVML, raw, "initialised, but no driver version"), suspected=True)
    note = ""
    if cuda is None and driver is not None:
        # No libcuda (e.g. a container without it): the driver table still knows.
        cuda = max_cuda_for_driver(driver, os)
        note = " (CUDA from the driver table)"
    return Found(Probe(NVML, raw, describe(driver, cuda) + note), driver, cuda, gpus)


def _gpus(nvml: Any, errors: _Errors, seen: list[str]) -> tuple[Gpu, ...]:
    gpus: list[Gpu] = []
    count = _call(nvml, errors, seen, "nvmlDeviceGetCount")
    for index in range(count if isinstance(count, int) else 0):
        handle = _call(nvml, errors, seen, "nvmlDeviceGetHandleByIndex", index)
        name: str | None = None
        cc: Any = None
        if handle is not None:
            name = _text(_call(nvml, errors, seen, "nvmlDeviceGetName", handle))
            cc = _call(nvml, errors, seen, "nvmlDeviceGetCudaComputeCapability", handle)
        valid = isinstance(cc, tuple) and len(cc) == 2 and all(isinstance(n, int) for n in cc)
        gpus.append(Gpu(name, (cc[0], cc[1]) if valid else None))
    return tuple(gpus)


def _call(nvml: Any, errors: _Errors, seen: list[str], name: str, *args: Any) -> Any:
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


def _text(value: Any) -> str | None:
    # pynvml returns str, older releases bytes.
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    return value.strip() or None
