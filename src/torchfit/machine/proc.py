"""Source: ``/proc/driver/nvidia/version``, written by the loaded kernel module (Linux)."""

from __future__ import annotations

import re
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
    if os != "linux":
        return Found(Probe(PROC_VERSION, None, "skipped: not Linux"))
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, NotADirectoryError):
        return Found(Probe(PROC_VERSION, None, "not present"))
    except OSError as exc:
        # It exists, so a driver is (or was) loaded.
        return Found(Probe(PROC_VERSION, None, f"unreadable: {exc}"), suspected=True)
    raw = clip(text)
    driver = parse_proc_driver_version(text)
    if driver is None:
        return Found(Probe(PROC_VERSION, raw, "unparsable output"), suspected=True)
    cuda = max_cuda_for_driver(driver, os)
    return Found(Probe(PROC_VERSION, raw, describe(driver, cuda)), driver, cuda)
