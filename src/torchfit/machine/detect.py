"""Find the NVIDIA driver and the highest CUDA it supports, with a trace of every source.

Sources, in order: overrides, NVML, ``nvidia-smi``, ``/proc/driver/nvidia/version``, then,
when no driver answered, a container image's variables (``NVIDIA_REQUIRE_CUDA``,
``CUDA_VERSION``, ``CONDA_OVERRIDE_CUDA``; see ``container``); the first that yields a driver
or CUDA version answers. No failure aborts detection: a missing tool, a non-zero exit,
garbage or a hang becomes one line of the trace. NVML and each run of
nvidia-smi have ``timeout`` seconds: a wedged driver can block either for ever.
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
from torchfit.machine.container import probe_image
from torchfit.machine.drivers import OSES, max_cuda_for_driver
from torchfit.machine.nvml import IMPORT_NVML, probe_nvml
from torchfit.machine.proc import probe_proc
from torchfit.machine.record import (
    NVIDIA_SMI,
    NVML,
    OVERRIDE,
    PROC_VERSION,
    Detection,
    Found,
    Gpu,
    Overrides,
    Probe,
    describe,
    dotted,
)
from torchfit.machine.smi import probe_nvidia_smi

logger = logging.getLogger(__name__)

_NO_OVERRIDES = Overrides()
#: The file the kernel module writes; read at call time (tests point it elsewhere).
DRIVER_VERSION_FILE = Path(PROC_VERSION)


def detect(
    overrides: Overrides = _NO_OVERRIDES,
    *,
    nvml: Any = IMPORT_NVML,
    runner: Runner = run,
    proc_version: Path | None = None,
    os: str | None = None,
    timeout: float = 10.0,
    env: Mapping[str, str] | None = None,
) -> Detection:
    """Detect the driver, its maximum CUDA and the GPUs; never raises for a failed source.

    ``nvml`` is a pynvml-like module (None disables NVML); ``runner`` runs nvidia-smi;
    ``proc_version`` replaces ``/proc/driver/nvidia/version``;
    ``os`` is "linux", "windows" or "macos" (None: this machine's); ``timeout`` bounds
    NVML (its thread is abandoned at the deadline) and each nvidia-smi run; ``env`` holds
    the image's variables (None: this process's environment).
    Raises ValueError for an unknown ``os``.
    """
    os_name = os if os is not None else current_os()
    if os_name not in OSES:
        raise ValueError(f"unknown os {os_name!r}; expected one of {', '.join(OSES)}")
    given = _from_overrides(overrides, os_name)
    trace = [given.probe]
    answer = given if given.answered else None
    suspected = False
    sources: tuple[tuple[str, Callable[[], Found]], ...] = (
        (NVML, lambda: probe_nvml(nvml, os_name, timeout)),
        (NVIDIA_SMI, lambda: probe_nvidia_smi(runner, timeout, os_name)),
        (PROC_VERSION, lambda: probe_proc(proc_version or DRIVER_VERSION_FILE, os_name)),
    )
    for name, ask in sources:
        if answer is not None:
            skipped = "skipped: overridden" if answer is given else "not needed"
            trace.append(Probe(name, None, skipped))
            continue
        found = ask()
        logger.debug("%s: %s", name, found.probe.outcome)
        trace.append(
            dataclasses.replace(found.probe, failed=True) if found.suspected else found.probe
        )
        suspected = suspected or found.suspected
        answer = found if found.answered else None
    if answer is None:  # no driver: what the image says it was built for (a docker build)
        for found in probe_image(_os.environ if env is None else env):
            logger.debug("%s: %s", found.probe.source, found.probe.outcome)
            trace.append(found.probe)
            answer = found if found.answered else None
    gpus = given.gpus if overrides.gpu_arch else (answer.gpus if answer else ())
    if answer is None:
        return Detection(None, None, gpus, None, suspected, tuple(trace), os_name)
    source = answer.probe.source
    return Detection(answer.driver, answer.max_cuda, gpus, source, False, tuple(trace), os_name)


def _from_overrides(overrides: Overrides, os: str) -> Found:
    if overrides == _NO_OVERRIDES:
        return Found(Probe(OVERRIDE, None, "none given"))
    given: list[str] = []
    if overrides.cuda is not None:
        given.append(f"cuda={dotted(overrides.cuda)}")
    if overrides.driver is not None:
        given.append(f"driver={overrides.driver}")
    if overrides.gpu_arch:
        given.append("gpu_arch=" + ",".join(dotted(cc) for cc in overrides.gpu_arch))
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
