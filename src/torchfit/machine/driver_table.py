"""Data only: CUDA toolkit <-> NVIDIA driver minimums, each row with its source.

Pure functions over these rows live in ``drivers.py``. Versions stay strings here,
exactly as NVIDIA prints them; ``drivers.parse_driver_version`` compares them.
"""

from __future__ import annotations

from dataclasses import dataclass

NVIDIA_TABLE3 = (
    "NVIDIA CUDA Toolkit Release Notes, Table 3 (13.2 Update 2 page, "
    "https://docs.nvidia.com/cuda/archive/13.2.2/cuda-toolkit-release-notes/index.html)"
)
NVIDIA_TABLE2 = (
    "NVIDIA CUDA Toolkit Release Notes, Table 2 and "
    "https://docs.nvidia.com/deploy/cuda-compatibility/minor-version-compatibility.html"
)
UV_BACKEND = "astral-sh/uv crates/uv-torch/src/backend.rs @26a9dd4b"
LTT_CB = "pmeier/light-the-torch light_the_torch/_cb.py @33397cbe"


@dataclass(frozen=True)
class DriverRow:
    """One row of NVIDIA's "CUDA Toolkit and Corresponding Driver Versions" table.

    ``linux``/``windows`` are minimum driver versions; ``None`` where NVIDIA says N/A.
    """

    cuda: tuple[int, int]
    release: str
    linux: str | None
    windows: str | None
    source: str


@dataclass(frozen=True)
class CompatFloor:
    """The lowest driver that runs every toolkit of one CUDA major (minor version compatibility)."""

    major: int
    linux: str | None
    windows: str | None
    source: str


# Newest first. This is the single place to add the next CUDA release:
# one row here + one CHANGELOG line under "Data".
DRIVER_ROWS: tuple[DriverRow, ...] = (
    DriverRow((13, 2), "CUDA 13.2 Update 2", "595.71.05", None, NVIDIA_TABLE3),
    DriverRow((13, 2), "CUDA 13.2 Update 1", "595.58.03", None, NVIDIA_TABLE3),
    DriverRow((13, 2), "CUDA 13.2 GA", "595.45.04", None, NVIDIA_TABLE3),
    DriverRow((13, 1), "CUDA 13.1 Update 1", "590.48.01", None, NVIDIA_TABLE3),
    DriverRow((13, 1), "CUDA 13.1 GA", "590.44.01", None, NVIDIA_TABLE3),
    DriverRow((13, 0), "CUDA 13.0 Update 2", "580.95.05", None, NVIDIA_TABLE3),
    DriverRow((13, 0), "CUDA 13.0 Update 1", "580.82.07", None, NVIDIA_TABLE3),
    DriverRow((13, 0), "CUDA 13.0 GA", "580.65.06", None, NVIDIA_TABLE3),
    DriverRow((12, 9), "CUDA 12.9 Update 1", "575.57.08", "576.57", NVIDIA_TABLE3),
    DriverRow((12, 9), "CUDA 12.9 GA", "575.51.03", "576.02", NVIDIA_TABLE3),
    DriverRow((12, 8), "CUDA 12.8 Update 1", "570.124.06", "572.61", NVIDIA_TABLE3),
    DriverRow((12, 8), "CUDA 12.8 GA", "570.26", "570.65", NVIDIA_TABLE3),
    DriverRow((12, 6), "CUDA 12.6 Update 3", "560.35.05", "561.17", NVIDIA_TABLE3),
    DriverRow((12, 6), "CUDA 12.6 Update 2", "560.35.03", "560.94", NVIDIA_TABLE3),
    DriverRow((12, 6), "CUDA 12.6 Update 1", "560.35.03", "560.94", NVIDIA_TABLE3),
    DriverRow((12, 6), "CUDA 12.6 GA", "560.28.03", "560.76", NVIDIA_TABLE3),
    DriverRow((12, 5), "CUDA 12.5 Update 1", "555.42.06", "555.85", NVIDIA_TABLE3),
    DriverRow((12, 5), "CUDA 12.5 GA", "555.42.02", "555.85", NVIDIA_TABLE3),
    DriverRow((12, 4), "CUDA 12.4 Update 1", "550.54.15", "551.78", NVIDIA_TABLE3),
    DriverRow((12, 4), "CUDA 12.4 GA", "550.54.14", "551.61", NVIDIA_TABLE3),
    DriverRow((12, 3), "CUDA 12.3 Update 1", "545.23.08", "546.12", NVIDIA_TABLE3),
    DriverRow((12, 3), "CUDA 12.3 GA", "545.23.06", "545.84", NVIDIA_TABLE3),
    DriverRow((12, 2), "CUDA 12.2 Update 2", "535.104.05", "537.13", NVIDIA_TABLE3),
    DriverRow((12, 2), "CUDA 12.2 Update 1", "535.86.09", "536.67", NVIDIA_TABLE3),
    DriverRow((12, 2), "CUDA 12.2 GA", "535.54.03", "536.25", NVIDIA_TABLE3),
    DriverRow((12, 1), "CUDA 12.1 Update 1", "530.30.02", "531.14", NVIDIA_TABLE3),
    DriverRow((12, 1), "CUDA 12.1 GA", "530.30.02", "531.14", NVIDIA_TABLE3),
    DriverRow((12, 0), "CUDA 12.0 Update 1", "525.85.12", "528.33", NVIDIA_TABLE3),
    DriverRow((12, 0), "CUDA 12.0 GA", "525.60.13", "527.41", NVIDIA_TABLE3),
    DriverRow((11, 8), "CUDA 11.8 GA", "520.61.05", "520.06", NVIDIA_TABLE3),
    DriverRow((11, 7), "CUDA 11.7 Update 1", "515.48.07", "516.31", NVIDIA_TABLE3),
    DriverRow((11, 7), "CUDA 11.7 GA", "515.43.04", "516.01", NVIDIA_TABLE3),
    DriverRow((11, 6), "CUDA 11.6 Update 2", "510.47.03", "511.65", NVIDIA_TABLE3),
    DriverRow((11, 6), "CUDA 11.6 Update 1", "510.47.03", "511.65", NVIDIA_TABLE3),
    DriverRow((11, 6), "CUDA 11.6 GA", "510.39.01", "511.23", NVIDIA_TABLE3),
    DriverRow((11, 5), "CUDA 11.5 Update 2", "495.29.05", "496.13", NVIDIA_TABLE3),
    DriverRow((11, 5), "CUDA 11.5 Update 1", "495.29.05", "496.13", NVIDIA_TABLE3),
    DriverRow((11, 5), "CUDA 11.5 GA", "495.29.05", "496.04", NVIDIA_TABLE3),
    DriverRow((11, 4), "CUDA 11.4 Update 4", "470.82.01", "472.50", NVIDIA_TABLE3),
    DriverRow((11, 4), "CUDA 11.4 Update 3", "470.82.01", "472.50", NVIDIA_TABLE3),
    DriverRow((11, 4), "CUDA 11.4 Update 2", "470.57.02", "471.41", NVIDIA_TABLE3),
    DriverRow((11, 4), "CUDA 11.4 Update 1", "470.57.02", "471.41", NVIDIA_TABLE3),
    DriverRow((11, 4), "CUDA 11.4.0 GA", "470.42.01", "471.11", NVIDIA_TABLE3),
    DriverRow((11, 3), "CUDA 11.3.1 Update 1", "465.19.01", "465.89", NVIDIA_TABLE3),
    DriverRow((11, 3), "CUDA 11.3.0 GA", "465.19.01", "465.89", NVIDIA_TABLE3),
    DriverRow((11, 2), "CUDA 11.2.2 Update 2", "460.32.03", "461.33", NVIDIA_TABLE3),
    DriverRow((11, 2), "CUDA 11.2.1 Update 1", "460.32.03", "461.09", NVIDIA_TABLE3),
    DriverRow((11, 2), "CUDA 11.2.0 GA", "460.27.03", "460.82", NVIDIA_TABLE3),
    DriverRow((11, 1), "CUDA 11.1.1 Update 1", "455.32", "456.81", NVIDIA_TABLE3),
    DriverRow((11, 1), "CUDA 11.1 GA", "455.23", "456.38", NVIDIA_TABLE3),
    DriverRow((11, 0), "CUDA 11.0.3 Update 1", "450.51.06", "451.82", NVIDIA_TABLE3),
    DriverRow((11, 0), "CUDA 11.0.2 GA", "450.51.05", "451.48", NVIDIA_TABLE3),
    DriverRow((11, 0), "CUDA 11.0.1 RC", "450.36.06", "451.22", NVIDIA_TABLE3),
    DriverRow((10, 2), "CUDA 10.2.89", "440.33", "441.22", NVIDIA_TABLE3),
    DriverRow(
        (10, 1),
        "CUDA 10.1 (10.1.105 general release, and updates)",
        "418.39",
        "418.96",
        NVIDIA_TABLE3,
    ),
    DriverRow((10, 0), "CUDA 10.0.130", "410.48", "411.31", NVIDIA_TABLE3),
    DriverRow((9, 2), "CUDA 9.2 (9.2.148 Update 1)", "396.37", "398.26", NVIDIA_TABLE3),
    DriverRow((9, 2), "CUDA 9.2 (9.2.88)", "396.26", "397.44", NVIDIA_TABLE3),
    DriverRow((9, 1), "CUDA 9.1 (9.1.85)", "390.46", "391.29", NVIDIA_TABLE3),
    DriverRow((9, 0), "CUDA 9.0 (9.0.76)", "384.81", "385.54", NVIDIA_TABLE3),
    DriverRow((8, 0), "CUDA 8.0 (8.0.61 GA2)", "375.26", "376.51", NVIDIA_TABLE3),
    DriverRow((8, 0), "CUDA 8.0 (8.0.44)", "367.48", "369.30", NVIDIA_TABLE3),
    DriverRow((7, 5), "CUDA 7.5 (7.5.16)", "352.31", "353.66", NVIDIA_TABLE3),
    DriverRow((7, 0), "CUDA 7.0 (7.0.28)", "346.46", "347.62", NVIDIA_TABLE3),
)

# Minor version compatibility starts with CUDA 11; older majors have no floor.
COMPAT_FLOORS: tuple[CompatFloor, ...] = (
    # Linux: the 13.0 GA driver (Table 3), which the project's issue specifies; NVIDIA's
    # Table 2 says only ">= 580". Windows: 580, as uv uses (Table 3 lists 13.x as N/A there).
    CompatFloor(13, "580.65.06", "580", f"{NVIDIA_TABLE3}; {NVIDIA_TABLE2}; {UV_BACKEND}"),
    CompatFloor(12, "525.60.13", "528.33", f"{NVIDIA_TABLE2} (CUDA 12.x); {UV_BACKEND}; {LTT_CB}"),
    CompatFloor(11, "450.80.02", "452.39", f"{NVIDIA_TABLE2} (CUDA 11.8); {UV_BACKEND}; {LTT_CB}"),
)
