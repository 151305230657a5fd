"""Find the NVIDIA driver and the highest CUDA it supports, with a trace of every source.

Sources, fastest and most exact first: overrides, NVML, ``/sys/module/nvidia/version``,
``/proc/driver/nvidia/version``, libcuda (ctypes), ``nvidia-smi``; then, when no driver
answered, a container image's variables (``NVIDIA_REQUIRE_CUDA``, ``CUDA_VERSION``,
``CONDA_OVERRIDE_CUDA``; see ``container``). The first that yields a driver or CUDA version
answers. A file knows the driver but not the GPUs: after one answers, the GPU list comes
from libcuda (in this process), and only when libcuda cannot list them from nvidia-smi; so
no child process runs where a file answers and libcuda (or ``--gpu-arch``) knows the GPUs.
No failure aborts detection: a missing tool, a non-zero exit, garbage or a hang becomes one
line of the trace. NVML, libcuda and each run of nvidia-smi have ``timeout`` seconds: a
wedged driver can block any of them for ever.
"""

from __future__ import annotations

import dataclasses
import logging
import os as _os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from torchfit._runner import Runner, run
from torchfit.machine.amd import probe_amd
from torchfit.machine.container import probe_image
from torchfit.machine.drivers import OSES, max_cuda_for_driver
from torchfit.machine.intel import probe_intel
from torchfit.machine.libcuda import LOAD_LIBCUDA, probe_libcuda
from torchfit.machine.nvml import IMPORT_NVML, probe_nvml
from torchfit.machine.proc import probe_proc, proc_version_file
from torchfit.machine.record import (
    FILE_SOURCES,
    LIBCUDA,
    NVIDIA_SMI,
    NVML,
    OVERRIDE,
    PROC_VERSION,
    SYS_VERSION,
    Detection,
    Found,
    Gpu,
    Overrides,
    Probe,
    describe,
    dotted,
)
from torchfit.machine.smi import probe_nvidia_smi
from torchfit.machine.sysfs import probe_sys_module, sys_version_file
from torchfit.machine.visible import keep_visible

logger = logging.getLogger(__name__)

_NO_OVERRIDES = Overrides()
#: The file the kernel module writes; read at call time (tests point it elsewhere).
DRIVER_VERSION_FILE = Path(PROC_VERSION)
#: Where the file sources read (/sys, /proc, /dev, /opt/rocm, /usr/lib/wsl) when no root is
#: given; tests point it elsewhere.
SYSTEM_ROOT = Path("/")
#: The sources that can list the GPUs after a file gave the driver, cheapest first.
_GPU_LISTERS = (LIBCUDA, NVIDIA_SMI)
_APPLIED_BY_CUDA = ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")


def detect(
    overrides: Overrides = _NO_OVERRIDES,
    *,
    nvml: Any = IMPORT_NVML,
    runner: Runner = run,
    proc_version: Path | None = None,
    os: str | None = None,
    timeout: float = 10.0,
    env: Mapping[str, str] | None = None,
    root: Path | None = None,
    libcuda: Any = LOAD_LIBCUDA,
    all_gpus: bool = False,
) -> Detection:
    """Detect the driver, its maximum CUDA and the GPUs; never raises for a failed source.

    ``nvml`` is a pynvml-like module (None disables NVML); ``runner`` runs nvidia-smi;
    ``proc_version`` replaces ``/proc/driver/nvidia/version``; ``libcuda`` is the CUDA
    driver library, or an object with its functions (None disables it);
    ``os`` is "linux", "windows" or "macos" (None: this machine's); ``timeout`` bounds
    NVML (its thread is abandoned at the deadline) and each nvidia-smi run; ``env`` holds
    the image's variables (None: this process's environment). Every file source reads under
    ``root`` (None: ``/``), and under another root libcuda is loaded only from its files.
    With no NVIDIA driver found, AMD GPUs (KFD topology, then ROCm's tools) and discrete
    Intel GPUs (PCI) are read under ``root`` too, on Linux.
    Last, the NVIDIA GPUs are narrowed to those ``NVIDIA_VISIBLE_DEVICES`` and
    ``CUDA_VISIBLE_DEVICES`` in ``env`` leave visible, unless ``all_gpus`` (see ``visible``).
    Raises ValueError for an unknown ``os``.
    """
    os_name = os if os is not None else current_os()
    if os_name not in OSES:
        raise ValueError(f"unknown os {os_name!r}; expected one of {', '.join(OSES)}")
    given = _from_overrides(overrides, os_name)
    machine_root = root or SYSTEM_ROOT
    proc_file = proc_version or (proc_version_file(root) if root else DRIVER_VERSION_FILE)
    variables = _os.environ if env is None else env
    sources: tuple[tuple[str, Callable[[], Found]], ...] = (
        (NVML, lambda: probe_nvml(nvml, os_name, timeout)),
        (SYS_VERSION, lambda: probe_sys_module(sys_version_file(machine_root), os_name)),
        (PROC_VERSION, lambda: probe_proc(proc_file, os_name)),
        (LIBCUDA, lambda: probe_libcuda(libcuda, machine_root, os_name, timeout)),
        (
            NVIDIA_SMI,
            lambda: probe_nvidia_smi(runner, timeout, os_name, root=machine_root, env=variables),
        ),
    )
    answer, listed, gpus_from, lines, suspected = _ask_nvidia(
        given, sources, gpus_known=bool(overrides.gpu_arch)
    )
    trace = [given.probe, *lines]
    vendor_gpus: tuple[Gpu, ...] = ()
    rocm = None
    if overrides.gfx:
        vendor_gpus = tuple(Gpu(None, None, vendor="amd", gfx=gfx) for gfx in overrides.gfx)
    elif answer is None and os_name == "linux":  # no NVIDIA driver: an AMD or Intel GPU?
        vendor_gpus, rocm, lines = _amd_or_intel(root or SYSTEM_ROOT, runner, timeout)
        trace += lines
    if answer is None and not vendor_gpus:  # what the image was built for (a docker build)
        for found in probe_image(_os.environ if env is None else env):
            logger.debug("%s: %s", found.probe.source, found.probe.outcome)
            trace.append(found.probe)
            answer = found if found.answered else None
    gpus = given.gpus if overrides.gpu_arch else (listed if answer else ())
    gpus += vendor_gpus
    if answer is None:
        detection = Detection(None, None, gpus, None, suspected, tuple(trace), os_name, rocm)
    else:
        detection = Detection(
            answer.driver,
            answer.max_cuda,
            gpus,
            answer.probe.source,
            False,
            tuple(trace),
            os_name,
            rocm,
            gpus_from=gpus_from if gpus else None,
        )
    # One step, last: the GPUs CUDA will see (a list given by --gpu-arch is taken as it is).
    narrow = not (all_gpus or overrides.gpu_arch or overrides.gfx)
    if LIBCUDA in (detection.gpus_from, detection.source):
        # CUDA listed them itself, as this process's CUDA_VISIBLE_DEVICES lets it: not twice.
        variables = {k: v for k, v in variables.items() if k not in _APPLIED_BY_CUDA}
    return keep_visible(detection, variables) if narrow else detection


def _ask_nvidia(
    given: Found, sources: tuple[tuple[str, Callable[[], Found]], ...], *, gpus_known: bool
) -> tuple[Found | None, tuple[Gpu, ...], str | None, list[Probe], bool]:
    """Ask ``sources`` in order until one knows the driver; when a file answered, go on
    only for the GPU list, to the cheapest source that has one.

    Returns the answer, the GPUs, the source of the GPUs when it is not the answer's, the
    trace lines and whether a source that seems present failed.
    """
    answer = given if given.answered else None
    gpus: tuple[Gpu, ...] = ()
    gpus_from: str | None = None
    trace: list[Probe] = []
    suspected = False
    for name, ask in sources:
        for_gpus = (
            answer is not None
            and answer.probe.source in FILE_SOURCES
            and not (gpus_known or gpus)
            and name in _GPU_LISTERS
        )
        if answer is not None and not for_gpus:
            skipped = "skipped: overridden" if answer is given else "not needed"
            trace.append(Probe(name, None, skipped))
            continue
        found = ask()
        logger.debug("%s: %s", name, found.probe.outcome)
        if for_gpus:
            outcome = f"asked for the GPUs only: {found.probe.outcome}"
            trace.append(dataclasses.replace(found.probe, outcome=outcome, failed=found.suspected))
            if found.gpus:
                gpus, gpus_from = found.gpus, name
            continue
        trace.append(
            dataclasses.replace(found.probe, failed=True) if found.suspected else found.probe
        )
        suspected = suspected or found.suspected
        if found.answered:
            answer, gpus = found, found.gpus
    return answer, gpus, gpus_from, trace, suspected


def _amd_or_intel(
    root: Path, runner: Runner, timeout: float
) -> tuple[tuple[Gpu, ...], tuple[int, ...] | None, list[Probe]]:
    """AMD GPUs, else discrete Intel GPUs; a source with nothing to say adds no trace line."""
    amd = probe_amd(root, runner, timeout)
    for probe in amd.trace:
        logger.debug("%s: %s", probe.source, probe.outcome)
    if amd.gpus:
        return amd.gpus, amd.rocm, list(amd.trace)
    intel, line = probe_intel(root)
    if line is not None:
        logger.debug("%s: %s", line.source, line.outcome)
    return intel, None, [*amd.trace, *([line] if line else [])]


def _from_overrides(overrides: Overrides, os: str) -> Found:
    if overrides == _NO_OVERRIDES:
        return Found(Probe(OVERRIDE, None, "none given"))
    given: list[str] = []
    if overrides.cuda is not None:
        given.append(f"cuda={dotted(overrides.cuda)}")
    if overrides.driver is not None:
        given.append(f"driver={overrides.driver}")
    if overrides.gpu_arch or overrides.gfx:
        archs = [dotted(cc) for cc in overrides.gpu_arch] + list(overrides.gfx)
        given.append("gpu_arch=" + ",".join(archs))
    gpus = tuple(Gpu(None, cc) for cc in overrides.gpu_arch)
    raw = ", ".join(given)
    if overrides.cuda is None and overrides.driver is None:
        return Found(Probe(OVERRIDE, raw, "GPU architectures only; probing the driver"), gpus=gpus)
    # A given CUDA wins over the driver table; a given driver is still recorded.
    cuda = overrides.cuda
    if cuda is None and overrides.driver is not None:
        cuda = max_cuda_for_driver(overrides.driver, os)
    return Found(
        Probe(OVERRIDE, raw, describe(overrides.driver, cuda)), overrides.driver, cuda, gpus
    )


def current_os() -> str:
    """This machine's OS as the driver tables name it."""
    return {"win32": "windows", "darwin": "macos"}.get(sys.platform, "linux")
