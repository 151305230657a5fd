"""Source: Intel GPUs on the PCI bus (``<root>/sys/bus/pci/devices/*/{vendor,device,class}``),
told apart into discrete cards, which the ``xpu`` build is for, and integrated graphics.

A device is an Intel GPU when its vendor is 0x8086 and its base class is 0x03 (display
controller); this much is uv's rule too (crates/uv-torch/src/accelerator.rs). Which of them
are discrete comes from the device ids the Linux kernel lists per platform in
``include/drm/intel/pciids.h`` (i915/xe): DG2 (Arc A-series), ATS-M (Data Center GPU Flex),
PVC (Data Center GPU Max) and BMG (Arc B-series). An Intel display device with an id not in
that list counts as discrete only when it is not at 00:02.0, the slot Intel's integrated
graphics always take; DG1 (Iris Xe MAX) is discrete but PyTorch's XPU build does not list
it among its GPUs, so it is reported and not used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torchfit.machine.record import Gpu, Probe

PCI_DEVICES = "sys/bus/pci/devices"
SOURCE = "/sys/bus/pci/devices"
INTEL = 0x8086
_DISPLAY_CLASS = 0x03
_INTEGRATED_SLOT = "00:02.0"

# include/drm/intel/pciids.h (Linux, drm-intel): INTEL_DG2_G10/G11/G12_IDS, INTEL_ATS_M_IDS,
# INTEL_PVC_IDS, INTEL_BMG_IDS (with 0xE209 from kernel commit ccfb15b8158c and the BMG G21
# ids 0xE220-0xE222); public copies, ids 27155758, 45468338907, 10290357236, 25779230191.
_FAMILIES = {
    "Arc A-series (DG2)": (
        "5690 5691 5692 56a0 56a1 56a2 56be 56bf 5693 5694 5695 56a5 56a6 56b0 56b1 56ba"
        " 56bb 56bc 56bd 5696 5697 56a3 56a4 56b2 56b3"
    ),
    "Data Center GPU Flex (ATS-M)": "56c0 56c2 56c1",
    "Data Center GPU Max (PVC)": "0b69 0b6e 0bd4 0bd5 0bd6 0bd7 0bd8 0bd9 0bda 0bdb 0be0 0be1 0be5",
    "Arc B-series (BMG)": "e202 e209 e20b e20c e20d e210 e211 e212 e215 e216 e220 e221 e222",
}
DISCRETE = {int(i, 16): family for family, ids in _FAMILIES.items() for i in ids.split()}
#: INTEL_DG1_IDS: discrete, but not a GPU the xpu build serves.
DG1 = frozenset(range(0x4905, 0x490A))


def parse_hex(text: str) -> int | None:
    """A sysfs hex field (``0x8086``, ``0x030000``); None when it is not one.

    >>> parse_hex("0x56a0\\n"), parse_hex("junk")
    (22176, None)
    """
    try:
        return int(text.strip(), 16)
    except ValueError:
        return None


@dataclass(frozen=True)
class PciGpu:
    slot: str  # "0000:03:00.0"
    device: int
    family: str | None  # the discrete family, None when integrated (or DG1)
    why: str

    @property
    def pci_id(self) -> str:
        return f"8086:{self.device:04x}"


def classify(slot: str, device: int) -> PciGpu:
    """Whether an Intel display device is a discrete GPU the xpu build serves, and why.

    >>> classify("0000:03:00.0", 0x56A0).family, classify("0000:00:02.0", 0x7D55).family
    ('Arc A-series (DG2)', None)
    """
    if device in DISCRETE:
        family = DISCRETE[device]
        return PciGpu(slot, device, family, f"{family} by its device id")
    if device in DG1:
        return PciGpu(slot, device, None, "DG1 (Iris Xe MAX): not a GPU of the xpu build")
    if slot.endswith(_INTEGRATED_SLOT):
        return PciGpu(slot, device, None, f"integrated graphics (at {_INTEGRATED_SLOT})")
    why = f"unknown id, not at {_INTEGRATED_SLOT} where integrated graphics sit: taken as discrete"
    return PciGpu(slot, device, "discrete Intel GPU", why)


def read_intel_gpus(root: Path) -> list[PciGpu]:
    """Every Intel display device under ``root``, in slot order."""
    try:
        devices = sorted((root / PCI_DEVICES).iterdir())
    except OSError:
        return []
    found = []
    for device in devices:
        try:
            vendor = parse_hex((device / "vendor").read_text(encoding="ascii", errors="replace"))
            if vendor != INTEL:
                continue
            pci_class = parse_hex((device / "class").read_text(encoding="ascii", errors="replace"))
            number = parse_hex((device / "device").read_text(encoding="ascii", errors="replace"))
        except OSError:
            continue
        if pci_class is not None and number is not None and pci_class >> 16 == _DISPLAY_CLASS:
            found.append(classify(device.name, number))
    return found


def probe_intel(root: Path) -> tuple[tuple[Gpu, ...], Probe | None]:
    """The discrete Intel GPUs under ``root`` as Gpu values (vendor "intel"), and one trace
    line naming every Intel display device and what it was taken for (None when none)."""
    seen = read_intel_gpus(root)
    if not seen:
        return (), None
    raw = "; ".join(f"{g.slot} {g.pci_id}: {g.why}" for g in seen)
    discrete = [g for g in seen if g.family]
    gpus = tuple(Gpu(f"Intel {g.family} {g.pci_id}", None, vendor="intel") for g in discrete)
    if discrete:
        outcome = "discrete Intel GPU: " + ", ".join(f"{g.family} {g.pci_id}" for g in discrete)
    else:
        outcome = "integrated Intel graphics only: not used (pass --variant xpu to use it)"
    return gpus, Probe(SOURCE, raw, outcome)
