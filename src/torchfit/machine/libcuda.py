"""Source: the CUDA driver library itself (``libcuda.so.1``, ``nvcuda.dll``) through ctypes.

It is there wherever CUDA can run at all, WSL2 included (``/usr/lib/wsl/lib``, where no
``/proc`` or ``/sys`` file of the driver exists). ``cuDriverGetVersion`` gives the highest
CUDA the driver supports (``1000*major + 10*minor``, as NVML encodes it); after ``cuInit``,
each device's name and compute capability. It cannot tell the driver's version.

The library is a parameter: :data:`LOAD_LIBCUDA` loads the real one, tests pass an object
with the same functions (each takes ctypes pointers and returns a ``CUresult``). A wedged
driver can block ``cuInit`` for ever, so the probe runs in a daemon thread with a deadline.
"""

from __future__ import annotations

import ctypes
import logging
import os as _os
import threading
from pathlib import Path
from typing import Any

from torchfit.machine.nvml import MAX_GPUS, parse_nvml_cuda_version
from torchfit.machine.record import LIBCUDA, Found, Gpu, Probe, clip, dotted

logger = logging.getLogger(__name__)

#: detect()'s default: load the driver's library when it is needed.
LOAD_LIBCUDA: Any = object()
#: What the loader is asked for by name, on this machine's root only.
LIBRARY_NAMES = {"linux": ("libcuda.so.1",), "windows": ("nvcuda.dll",)}
#: WSL2 maps the Windows driver's Linux libraries here (NVIDIA's CUDA on WSL User Guide).
WSL_LIBRARY = "usr/lib/wsl/lib/libcuda.so.1"

# cuda.h: CUresult codes, and the two CUdevice_attribute values of the compute capability.
CUDA_SUCCESS = 0
_RESULTS = {
    3: "CUDA_ERROR_NOT_INITIALIZED",
    34: "CUDA_ERROR_STUB_LIBRARY",
    35: "CUDA_ERROR_INSUFFICIENT_DRIVER",
    100: "CUDA_ERROR_NO_DEVICE",
    101: "CUDA_ERROR_INVALID_DEVICE",
    304: "CUDA_ERROR_OPERATING_SYSTEM",
    803: "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH",
    999: "CUDA_ERROR_UNKNOWN",
    -1: "missing from the library",
}
CUDA_ERROR_NO_DEVICE = 100
COMPUTE_CAPABILITY_MAJOR = 75
COMPUTE_CAPABILITY_MINOR = 76
_NAME_BYTES = 256

# Probes whose thread never came back, by the id of their library (as for NVML).
_stuck: dict[int, threading.Thread] = {}
_stuck_lock = threading.Lock()


def result_name(code: int) -> str:
    """A ``CUresult`` as cuda.h names it.

    >>> result_name(100)
    'CUDA_ERROR_NO_DEVICE'
    """
    return _RESULTS.get(code, f"CUresult {code}")


def candidates(root: Path, os: str) -> list[str]:
    """What to load, in order: the loader's own search (only when ``root`` is this
    machine's ``/``: a recorded root's libraries are not this machine's), then WSL's path
    under ``root`` when that file exists."""
    names = list(LIBRARY_NAMES.get(os, ())) if root == Path(root.anchor) else []
    wsl = root / WSL_LIBRARY
    if os == "linux" and _is_file(wsl):
        names.append(str(wsl))
    return names


def probe_libcuda(library: Any, root: Path, os: str, timeout: float | None = None) -> Found:
    """Ask the CUDA driver library for its CUDA version and the devices; never raises.

    ``library`` is a loaded library (or a fake with its functions), None to skip, or
    :data:`LOAD_LIBCUDA`; ``timeout`` None waits in this thread as long as it takes.
    """
    if library is None:
        return Found(Probe(LIBCUDA, None, "disabled"))
    if os == "macos":
        return Found(Probe(LIBCUDA, None, "skipped: no CUDA driver on macOS"))
    if timeout is None:
        return _guarded(library, root, os)
    key = id(library)
    with _stuck_lock:
        earlier = _stuck.pop(key, None)
        if earlier is not None and earlier.is_alive():
            _stuck[key] = earlier
            outcome = "skipped: an earlier libcuda probe has not returned"
            return Found(Probe(LIBCUDA, None, outcome), suspected=True)
    answer: list[Found] = []
    worker = threading.Thread(
        target=lambda: answer.append(_guarded(library, root, os)),
        name="torchfit-libcuda",
        daemon=True,
    )
    try:
        worker.start()
    except RuntimeError as exc:
        return Found(Probe(LIBCUDA, None, f"not asked: {exc}"))
    worker.join(timeout)
    if answer:
        return answer[0]
    with _stuck_lock:
        _stuck[key] = worker
    return Found(Probe(LIBCUDA, None, f"timed out after {timeout:g}s"), suspected=True)


def _guarded(library: Any, root: Path, os: str) -> Found:
    try:
        return _probe(library, root, os)
    except BaseException as exc:  # a library that breaks in ways _probe does not foresee
        return Found(Probe(LIBCUDA, None, f"failed: {type(exc).__name__}: {exc}"), suspected=True)


def _probe(library: Any, root: Path, os: str) -> Found:
    loaded_from = ""
    if library is LOAD_LIBCUDA:
        library, loaded_from, tried = _load(candidates(root, os))
        if library is None:
            return Found(Probe(LIBCUDA, None, f"not found ({tried or 'nothing to try'})"))
    seen: list[str] = [f"loaded {loaded_from}"] if loaded_from else []
    version = ctypes.c_int(0)
    code = _call(library, "cuDriverGetVersion", ctypes.pointer(version))
    seen.append(f"cuDriverGetVersion={result_name(code)}:{version.value}")
    cuda = parse_nvml_cuda_version(version.value) if code == CUDA_SUCCESS else None
    if cuda is None:
        return Found(Probe(LIBCUDA, clip("; ".join(seen)), "no CUDA version"), suspected=True)
    code = _call(library, "cuInit", 0)
    seen.append(f"cuInit={result_name(code)}")
    if code != CUDA_SUCCESS:
        # The library is installed, but no driver serves it here: no GPU to build for.
        outcome = f"CUDA {dotted(cuda)} in the library, but cuInit: {result_name(code)}"
        faulty = code != CUDA_ERROR_NO_DEVICE  # no device is an answer; the rest are faults
        return Found(Probe(LIBCUDA, clip("; ".join(seen)), outcome), suspected=faulty)
    gpus = _devices(library, seen)
    outcome = f"CUDA {dotted(cuda)}; " + (", ".join(map(_shown, gpus)) or "no device")
    visible = _os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:  # cuInit read it: these are the devices it lets CUDA see
        outcome += f" (as CUDA_VISIBLE_DEVICES={visible!r} shows them)"
    return Found(Probe(LIBCUDA, clip("; ".join(seen)), outcome), None, cuda, gpus)


def _devices(library: Any, seen: list[str]) -> tuple[Gpu, ...]:
    count = ctypes.c_int(0)
    code = _call(library, "cuDeviceGetCount", ctypes.pointer(count))
    seen.append(f"cuDeviceGetCount={result_name(code)}:{count.value}")
    if code != CUDA_SUCCESS:
        return ()
    gpus = []
    for ordinal in range(max(0, min(count.value, MAX_GPUS))):
        device = ctypes.c_int(0)
        if _call(library, "cuDeviceGet", ctypes.pointer(device), ordinal) != CUDA_SUCCESS:
            gpus.append(Gpu(None, None))
            continue
        buffer = ctypes.create_string_buffer(_NAME_BYTES)
        named = _call(library, "cuDeviceGetName", buffer, _NAME_BYTES, device) == CUDA_SUCCESS
        name = (buffer.value.decode("utf-8", "replace").strip() or None) if named else None
        major, minor = ctypes.c_int(-1), ctypes.c_int(-1)
        ok = all(
            _call(library, "cuDeviceGetAttribute", ctypes.pointer(value), attribute, device)
            == CUDA_SUCCESS
            for value, attribute in (
                (major, COMPUTE_CAPABILITY_MAJOR),
                (minor, COMPUTE_CAPABILITY_MINOR),
            )
        )
        valid = ok and 0 < major.value < 100 and 0 <= minor.value < 100
        gpus.append(Gpu(name, (major.value, minor.value) if valid else None))
    return tuple(gpus)


def _shown(gpu: Gpu) -> str:
    cc = gpu.compute_capability
    return f"{gpu.name or 'a GPU'} ({dotted(cc) if cc else 'compute capability unknown'})"


def _call(library: Any, name: str, *args: Any) -> int:
    """One driver call's ``CUresult``; -1 for a function the library lacks."""
    function = getattr(library, name, None)
    if function is None:
        return -1
    code = function(*args)
    return code if isinstance(code, int) and not isinstance(code, bool) else -1


def _load(names: list[str]) -> tuple[Any, str, str]:
    """The first library of ``names`` that loads, its name, and what failed before it."""
    failed = []
    for name in names:
        try:
            return ctypes.CDLL(name), name, ""
        except OSError as exc:
            logger.debug("loading %s failed: %s", name, exc)
            failed.append(name)
    return None, "", ", ".join(failed)


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:
        return False
