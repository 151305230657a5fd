"""Pure functions over the CUDA <-> driver tables in ``driver_table``.

Driver versions are compared as numeric tuples ("570.26" < "570.124.06"), never as text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache

from torchfit.machine.driver_table import COMPAT_FLOORS, DRIVER_ROWS, DriverRow

OSES = ("linux", "windows", "macos")

# NVIDIA writes at most four parts of a few digits (550.144.03); anything longer is no driver.
_VERSION = re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,6}){0,3}")  # ASCII: \d takes any script's digits


def parse_driver_version(text: str) -> tuple[int, ...] | None:
    """The numeric parts of a driver version, or None for anything that is not one.

    >>> parse_driver_version("550.144.03")
    (550, 144, 3)
    """
    match = _VERSION.fullmatch(text.strip())
    if not match:
        return None
    return tuple(int(part) for part in match.group(0).split("."))


def minor_compat_floor(major: int, os: str) -> str | None:
    """The lowest driver that runs every CUDA ``major``.x toolkit, or None.

    None for majors without minor version compatibility (before 11) and for macOS.
    Raises ValueError for an unknown ``os``.

    >>> minor_compat_floor(12, "linux")
    '525.60.13'
    """
    _check_os(os)
    for floor in COMPAT_FLOORS:
        if floor.major == major:
            return _pick(floor.linux, floor.windows, os)
    return None


def min_driver_for_cuda(cuda: tuple[int, int], os: str) -> str | None:
    """The minimum driver for a CUDA (major, minor) on ``os`` (its GA row), or None if unknown.

    Raises ValueError for an unknown ``os``.

    >>> min_driver_for_cuda((12, 8), "windows")
    '570.65'
    """
    return _minimums(os).get(cuda)


def max_cuda_for_driver(driver: str, os: str) -> tuple[int, int] | None:
    """The highest CUDA (major, minor) that ``driver`` supports on ``os``.

    None when the driver is older than every known toolkit, unparsable, or on macOS.
    A driver newer than the table still maps to the newest known CUDA.
    Raises ValueError for an unknown ``os``.

    >>> max_cuda_for_driver("550.144.03", "linux")
    (12, 4)
    """
    version = parse_driver_version(driver)
    if version is None:
        return None
    best: tuple[int, int] | None = None
    for cuda, minimum in _minimums(os).items():
        if _key(minimum) <= version and (best is None or cuda > best):
            best = cuda
    return best


@cache
def _minimums(os: str) -> Mapping[tuple[int, int], str]:
    # Each CUDA version's lowest listed minimum: its GA row (or an earlier RC/build row).
    _check_os(os)
    table: dict[tuple[int, int], str] = {}
    for row in DRIVER_ROWS:
        value = _row_minimum(row, os)
        if value is None:
            continue
        current = table.get(row.cuda)
        if current is None or _key(value) < _key(current):
            table[row.cuda] = value
    return table


def _row_minimum(row: DriverRow, os: str) -> str | None:
    if os != "windows" or row.windows is not None:
        return _pick(row.linux, row.windows, os)
    if row.linux is None:
        return None
    # NVIDIA lists Windows as N/A for 13.x (the toolkit no longer bundles a display driver).
    # Driver branches share their leading number across systems (12.8: 570.26 / 570.65), so a
    # Windows driver supports a toolkit from the Linux minimum's branch on, and never below
    # the major's minor-compat floor: 13.0 -> 580, 13.1 -> 590, 13.2 -> 595.
    branch = str(_key(row.linux)[0])
    floor = minor_compat_floor(row.cuda[0], "windows")
    if floor is None or _key(branch) >= _key(floor):
        return branch
    return floor


def _pick(linux: str | None, windows: str | None, os: str) -> str | None:
    if os == "linux":
        return linux
    if os == "windows":
        return windows
    return None  # NVIDIA stopped shipping CUDA for macOS after 10.2; no wheel uses it.


def _key(version: str) -> tuple[int, ...]:
    parsed = parse_driver_version(version)
    if parsed is None:
        raise ValueError(f"bad driver version in the tables: {version!r}")
    return parsed


def _check_os(os: str) -> None:
    if os not in OSES:
        raise ValueError(f"unknown os {os!r}; expected one of {', '.join(OSES)}")
