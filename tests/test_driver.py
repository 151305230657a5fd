"""The CUDA <-> driver tables and the pure functions over them."""

from __future__ import annotations

import doctest

import pytest

from torchfit.machine import drivers as _driver
from torchfit.machine.driver_table import COMPAT_FLOORS, DRIVER_ROWS, NVIDIA_TABLE3
from torchfit.machine.drivers import (
    max_cuda_for_driver,
    min_driver_for_cuda,
    minor_compat_floor,
    parse_driver_version,
)

NEWEST = DRIVER_ROWS[0].cuda


def test_doctests() -> None:
    assert doctest.testmod(_driver).failed == 0


def test_table_shape() -> None:
    assert len(DRIVER_ROWS) == 64
    assert (DRIVER_ROWS[0].cuda, DRIVER_ROWS[0].release) == ((13, 2), "CUDA 13.2 Update 2")
    assert (DRIVER_ROWS[-1].cuda, DRIVER_ROWS[-1].linux) == ((7, 0), "346.46")
    cudas = [row.cuda for row in DRIVER_ROWS]
    assert cudas == sorted(cudas, reverse=True), "newest first"
    assert all(row.source == NVIDIA_TABLE3 for row in DRIVER_ROWS)
    assert {floor.major for floor in COMPAT_FLOORS} == {11, 12, 13}


def test_every_table_version_parses() -> None:
    versions = [v for row in DRIVER_ROWS for v in (row.linux, row.windows) if v is not None]
    versions += [v for f in COMPAT_FLOORS for v in (f.linux, f.windows) if v is not None]
    assert all(parse_driver_version(v) for v in versions)


def test_windows_is_na_exactly_for_13x() -> None:
    assert {row.cuda[0] for row in DRIVER_ROWS if row.windows is None} == {13}
    assert all(row.linux is not None for row in DRIVER_ROWS)


def test_windows_drivers_share_the_linux_branch() -> None:
    # The assumption behind the Windows fallback for 13.x: a toolkit's Windows minimum is
    # never below the leading number of its Linux minimum.
    for row in DRIVER_ROWS:
        if row.windows is not None and row.linux is not None:
            windows, linux = parse_driver_version(row.windows), parse_driver_version(row.linux)
            assert windows is not None and linux is not None
            assert windows[0] >= linux[0], row


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("550.144.03", (550, 144, 3)),
        ("570.26", (570, 26)),
        (" 560.94\n", (560, 94)),
        ("[N/A]", None),
        ("", None),
        ("550.144.03a", None),
        ("550..1", None),
        ("Driver Version: 550.144.03", None),
    ],
)
def test_parse_driver_version(text: str, expected: tuple[int, ...] | None) -> None:
    assert parse_driver_version(text) == expected


@pytest.mark.parametrize(
    ("driver", "os", "expected"),
    [
        # Boundaries: each is a toolkit's minimum from NVIDIA's Table 3.
        ("418.39", "linux", (10, 1)),
        ("418.38", "linux", (10, 0)),
        ("410.47", "linux", (9, 2)),
        ("440.33", "linux", (10, 2)),
        ("450.80.02", "linux", (11, 0)),
        ("455.23", "linux", (11, 1)),
        ("525.60.13", "linux", (12, 0)),
        ("525.60.12", "linux", (11, 8)),
        ("535.54.03", "linux", (12, 2)),
        ("570.26", "linux", (12, 8)),
        ("570.25", "linux", (12, 6)),
        ("580.65.06", "linux", (13, 0)),
        ("580.65.05", "linux", (12, 9)),
        ("595.45.04", "linux", (13, 2)),
        ("346.46", "linux", (7, 0)),
        ("340.108", "linux", None),
        ("441.22", "windows", (10, 2)),
        ("441.21", "windows", (10, 1)),
        ("570.65", "windows", (12, 8)),
        ("527.41", "windows", (12, 0)),
        # 13.x has no Windows minimum in the table: branch floors 580 / 590 / 595.
        ("580.88", "windows", (13, 0)),
        ("576.57", "windows", (12, 9)),
        # R610+ drivers are newer than the table: still the newest known CUDA.
        ("610.57.04", "linux", NEWEST),
        ("610.88", "windows", NEWEST),
        ("616.92", "windows", NEWEST),
        ("550.144.03", "macos", None),
        ("garbage", "linux", None),
    ],
)
def test_max_cuda_for_driver(driver: str, os: str, expected: tuple[int, int] | None) -> None:
    assert max_cuda_for_driver(driver, os) == expected


@pytest.mark.parametrize(
    ("driver", "os", "reported"),
    [
        # nvidia-smi headers quoted in the reference samples: driver and its "CUDA Version".
        ("450.80.02", "linux", (11, 0)),
        ("570.133.07", "linux", (12, 8)),
        ("570.195.03", "linux", (12, 8)),
        ("570.172.08", "linux", (12, 8)),
        ("570.124.06", "linux", (12, 8)),
        ("442.23", "windows", (10, 2)),
        ("560.94", "windows", (12, 6)),
        ("536.99", "windows", (12, 2)),
        ("573.71", "windows", (12, 8)),
    ],
)
def test_max_cuda_agrees_with_recorded_nvidia_smi(
    driver: str, os: str, reported: tuple[int, int]
) -> None:
    assert max_cuda_for_driver(driver, os) == reported


@pytest.mark.parametrize(
    ("cuda", "os", "expected"),
    [
        ((12, 8), "linux", "570.26"),
        ((12, 8), "windows", "570.65"),
        ((12, 0), "windows", "527.41"),
        ((11, 0), "linux", "450.36.06"),  # the lowest listed row (11.0.1 RC), not 11.0.2 GA
        ((9, 2), "linux", "396.26"),
        ((8, 0), "windows", "369.30"),
        ((13, 0), "linux", "580.65.06"),
        ((13, 0), "windows", "580"),
        ((13, 1), "windows", "590"),
        ((13, 2), "windows", "595"),
        ((12, 7), "linux", None),  # there was no CUDA 12.7
        ((14, 0), "linux", None),
        ((12, 8), "macos", None),
    ],
)
def test_min_driver_for_cuda(cuda: tuple[int, int], os: str, expected: str | None) -> None:
    assert min_driver_for_cuda(cuda, os) == expected


@pytest.mark.parametrize("os", ["linux", "windows"])
def test_min_and_max_agree(os: str) -> None:
    for row in DRIVER_ROWS:
        minimum = min_driver_for_cuda(row.cuda, os)
        assert minimum is not None
        assert max_cuda_for_driver(minimum, os) == row.cuda


@pytest.mark.parametrize("os", ["linux", "windows"])
def test_minimums_rise_with_cuda(os: str) -> None:
    cudas = sorted({row.cuda for row in DRIVER_ROWS})
    minimums = [parse_driver_version(min_driver_for_cuda(c, os) or "") for c in cudas]
    assert all(m is not None for m in minimums)
    assert minimums == sorted(minimums)  # type: ignore[type-var]


@pytest.mark.parametrize(
    ("major", "os", "expected"),
    [
        (11, "linux", "450.80.02"),
        (11, "windows", "452.39"),
        (12, "linux", "525.60.13"),
        (12, "windows", "528.33"),
        (13, "linux", "580.65.06"),
        (13, "windows", "580"),
        (10, "linux", None),
        (14, "linux", None),
        (12, "macos", None),
    ],
)
def test_minor_compat_floor(major: int, os: str, expected: str | None) -> None:
    assert minor_compat_floor(major, os) == expected


def test_unknown_os_is_a_bug() -> None:
    with pytest.raises(ValueError, match="unknown os 'freebsd'"):
        max_cuda_for_driver("550.54.14", "freebsd")
    with pytest.raises(ValueError, match="unknown os"):
        min_driver_for_cuda((12, 4), "Linux")
    with pytest.raises(ValueError, match="unknown os"):
        minor_compat_floor(12, "win32")
