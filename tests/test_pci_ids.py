"""Compute capability from the PCI device id: the table against NVIDIA's per-board values,
the id parsers, and the two sources that use it (nvidia-smi's pci.device_id, NVML's PCI info)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from torchfit.machine.nvml import probe_nvml
from torchfit.machine.pci_ids import (
    CHIPS,
    capability_for,
    infer_capability,
    parse_smi_device_id,
    pci_id_from_nvml,
)
from torchfit.machine.record import Gpu
from torchfit.machine.smi import parse_nvidia_smi_query, parse_nvidia_smi_rows
from torchfit.settings import parse_arch

DATA = Path(__file__).parent / "data" / "nvidia"
BOARDS = json.loads((Path(__file__).parent / "cases" / "nvidia" / "pci_ids.json").read_text())


@pytest.mark.parametrize("case", BOARDS["cases"], ids=[c["board"] for c in BOARDS["cases"]])
def test_board_capability(case: dict[str, Any]) -> None:
    found = capability_for(case["pci_id"])
    expected = case["compute_capability"]
    assert (found[0] if found else None) == (parse_arch(expected) if expected else None)


def test_every_generation_has_boards_in_the_case_file() -> None:
    majors = {
        c["compute_capability"].split(".")[0] for c in BOARDS["cases"] if c["compute_capability"]
    }
    assert majors == {"2", "3", "5", "6", "7", "8"}


# The CUDA Programming Guide: the major revision is the architecture (2 Fermi, 3 Kepler,
# 5 Maxwell, 6 Pascal, 7 Volta and Turing (7.5), 8 Ampere); NVIDIA's chip names begin with it.
ARCHITECTURE = {"GF": {2}, "GK": {3}, "GM": {5}, "GP": {6}, "GV": {7}, "TU": {7}, "GA": {8}}


def test_the_table_agrees_with_the_architectures() -> None:
    seen: set[str] = set()
    for chip, capability, board, devices in CHIPS:
        assert capability[0] in ARCHITECTURE[chip[:2]], chip
        assert board and re.fullmatch(r"[A-Z]{2}[0-9]{3}", chip)
        ids = devices.split()
        assert all(re.fullmatch(r"[0-9a-f]{4}", d) for d in ids), chip
        assert not seen & set(ids), chip  # a device id belongs to one chip
        seen |= set(ids)
    assert all(cc == (7, 5) for chip, cc, _, _ in CHIPS if chip.startswith("TU"))


@pytest.mark.parametrize(
    ("text", "pci_id"),
    [
        ("0x1B8010DE", "10de:1b80"),
        (" 0x1eb810de ", "10de:1eb8"),
        ("0x744C1002", "1002:744c"),
        ("[N/A]", None),
        ("1B8010DE", None),
        ("0x1B8010D", None),
        ("", None),
    ],
)
def test_parse_smi_device_id(text: str, pci_id: str | None) -> None:
    assert parse_smi_device_id(text) == pci_id


@pytest.mark.parametrize(
    ("value", "pci_id"),
    [(0x1B8010DE, "10de:1b80"), (0, None), (-1, None), (1 << 32, None), (True, None), ("x", None)],
)
def test_pci_id_from_nvml(value: object, pci_id: str | None) -> None:
    assert pci_id_from_nvml(value) == pci_id


@pytest.mark.parametrize("text", ["10DE:1B80", "10de:1b80 "])
def test_capability_for_reads_any_case(text: str) -> None:
    assert capability_for(text) == ((6, 1), "GP104")


@pytest.mark.parametrize("text", ["10de:zzzz", "10de1b80", "", "1002:1b80"])
def test_capability_for_unknown(text: str) -> None:
    assert capability_for(text) is None


def test_infer_capability() -> None:
    reported = Gpu("Tesla K80", (3, 7), pci_id="10de:1b80")
    assert infer_capability(reported) is reported  # what the driver says wins
    assert infer_capability(Gpu("x", None)) == Gpu("x", None)
    assert infer_capability(Gpu("x", None, pci_id="10de:2b85")).compute_capability is None
    inferred = infer_capability(Gpu("Tesla K80", None, pci_id="10de:102d"))
    assert inferred.compute_capability == (3, 7)
    assert inferred.capability_source == "inferred from the device id 10de:102d (GK210)"


# --- nvidia-smi's extra fields ------------------------------------------------------------


def test_smi_rows_with_uuid_and_pci_id() -> None:
    text = (DATA / "smi-query-ids-gtx1080-rtx5090.txt").read_text()
    assert parse_nvidia_smi_rows(text) == [
        (
            "570.124.06",
            "NVIDIA GeForce GTX 1080",
            (6, 1),
            "GPU-a4668849-8693-dced-f317-c7af17e8c6ee",
            "10de:1b80",
        ),
        (
            "570.124.06",
            "NVIDIA GeForce RTX 5090",
            (12, 0),
            "GPU-e764ef97-32d7-4981-c348-029983c64073",
            "10de:2b85",
        ),
    ]
    assert parse_nvidia_smi_query(text)[0] == ("570.124.06", "NVIDIA GeForce GTX 1080", (6, 1))


def test_smi_rows_without_compute_cap() -> None:
    text = (DATA / "smi-query-ids-old-driver-k80-t4.txt").read_text()
    rows = parse_nvidia_smi_rows(text)
    assert [(name, cc, pci) for _, name, cc, _, pci in rows] == [
        ("Tesla K80", None, "10de:102d"),
        ("Tesla T4", None, "10de:1eb8"),
    ]


def test_smi_rows_of_the_older_queries_are_unchanged() -> None:
    text = (DATA / "smi-query-cc-multi-gpu.txt").read_text()
    assert [row[3:] for row in parse_nvidia_smi_rows(text)] == [(None, None), (None, None)]
    assert parse_nvidia_smi_rows("535.104.05, NVIDIA A100-SXM4-80GB, [N/A], GPU-1, 0x20B210DE") == [
        ("535.104.05", "NVIDIA A100-SXM4-80GB", None, "GPU-1", "10de:20b2")
    ]


# --- NVML on an old driver ----------------------------------------------------------------


class PciInfo:
    def __init__(self, value: int) -> None:
        self.pciDeviceId = value


class OldDriverNVML:
    """NVML of an old driver: nvmlDeviceGetCudaComputeCapability is not supported."""

    class NVMLError(Exception):
        pass

    def __init__(self) -> None:
        self.devices = [
            ("Tesla K80", "GPU-d57ec7e8-ab97-8612-54ac-9d53a183f818", 0x102D10DE),
            ("Tesla T4", "GPU-0650a168-e770-3ea8-8ac3-8a1d419763e0", 0x1EB810DE),
        ]

    def nvmlInit(self) -> None: ...
    def nvmlShutdown(self) -> None: ...

    def nvmlSystemGetDriverVersion(self) -> str:
        return "470.82.01"

    def nvmlSystemGetCudaDriverVersion_v2(self) -> int:
        return 11040

    def nvmlDeviceGetCount(self) -> int:
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetName(self, handle: int) -> bytes:
        return self.devices[handle][0].encode()

    def nvmlDeviceGetCudaComputeCapability(self, handle: int) -> tuple[int, int]:
        raise self.NVMLError("Not Supported")

    def nvmlDeviceGetUUID(self, handle: int) -> str:
        return self.devices[handle][1]

    def nvmlDeviceGetPciInfo(self, handle: int) -> PciInfo:
        return PciInfo(self.devices[handle][2])


def test_nvml_infers_the_capability_from_the_pci_info() -> None:
    found = probe_nvml(OldDriverNVML(), "linux", timeout=None)
    assert found.driver == "470.82.01"
    assert [(g.name, g.compute_capability, g.uuid, g.pci_id) for g in found.gpus] == [
        ("Tesla K80", (3, 7), "GPU-d57ec7e8-ab97-8612-54ac-9d53a183f818", "10de:102d"),
        ("Tesla T4", (7, 5), "GPU-0650a168-e770-3ea8-8ac3-8a1d419763e0", "10de:1eb8"),
    ]
    assert found.gpus[1].capability_source == "inferred from the device id 10de:1eb8 (TU104)"
    assert "nvmlDeviceGetCudaComputeCapability: Not Supported" in (found.probe.raw or "")
