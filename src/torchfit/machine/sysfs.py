"""Source: ``/sys/module/nvidia/version``, the loaded kernel module's version alone (Linux).

The kernel writes it for the proprietary and the open module alike; it is visible in
containers that see the module but carry no NVIDIA user-space tools (uv reads it first).
"""

from __future__ import annotations

from pathlib import Path

from torchfit.machine.drivers import parse_driver_version
from torchfit.machine.proc import probe_module_file
from torchfit.machine.record import SYS_VERSION, Found


def parse_sys_module_version(text: str) -> str | None:
    """The driver version in ``/sys/module/nvidia/version``, or None.

    The file holds the version and a newline; anything else is not trusted.

    >>> parse_sys_module_version("550.144.03\\n")
    '550.144.03'
    """
    version = text.strip()
    return version if parse_driver_version(version) is not None else None


def sys_version_file(root: Path) -> Path:
    """Where the module's version is, under the machine's ``root``."""
    return root / SYS_VERSION.lstrip("/")


def probe_sys_module(path: Path, os: str) -> Found:
    """Read ``path`` as ``/sys/module/nvidia/version``; never raises."""
    return probe_module_file(path, SYS_VERSION, parse_sys_module_version, os)
