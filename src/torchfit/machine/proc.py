"""Source: ``/proc/driver/nvidia/version``, written by the loaded kernel module (Linux)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from torchfit.machine.drivers import max_cuda_for_driver
from torchfit.machine.record import PROC_VERSION, Found, Probe, clip, describe

_PROC_LINE = re.compile(r"Kernel Module(?:\s+for\s+\S+)?\s+(\d+(?:\.\d+)+)(?:\s|$)")


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


def proc_version_file(root: Path) -> Path:
    """Where the module's version text is, under the machine's ``root``."""
    return root / PROC_VERSION.lstrip("/")


def probe_proc(path: Path, os: str) -> Found:
    """Read ``path`` as ``/proc/driver/nvidia/version``; never raises."""
    return probe_module_file(path, PROC_VERSION, parse_proc_driver_version, os)


def probe_module_file(
    path: Path, source: str, parse: Callable[[str], str | None], os: str
) -> Found:
    """Read ``path`` as the kernel module's file ``source`` (its driver version found by
    ``parse``); never raises. A file that is there but cannot be read or parsed means the
    module is (or was) loaded: a suspected GPU."""
    if os != "linux":
        return Found(Probe(source, None, "skipped: not Linux"))
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, NotADirectoryError):
        return Found(Probe(source, None, "not present"))
    except OSError as exc:
        return Found(Probe(source, None, f"unreadable: {exc}"), suspected=True)
    raw = clip(text)
    driver = parse(text)
    if driver is None:
        return Found(Probe(source, raw, "unparsable output"), suspected=True)
    cuda = max_cuda_for_driver(driver, os)
    return Found(Probe(source, raw, describe(driver, cuda)), driver, cuda)
