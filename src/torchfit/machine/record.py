"""The machine record: what detection found, with a trace of every source it asked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

OVERRIDE = "override"
NVML = "nvml"
NVIDIA_SMI = "nvidia-smi"
PROC_VERSION = "/proc/driver/nvidia/version"
SYS_VERSION = "/sys/module/nvidia/version"
LIBCUDA = "libcuda"
#: The sources that see a driver (the rest are given values or the image's variables).
PROBES = (NVML, SYS_VERSION, PROC_VERSION, LIBCUDA, NVIDIA_SMI)
#: The sources that are files: they know the driver, never the GPUs.
FILE_SOURCES = (SYS_VERSION, PROC_VERSION)
# A container image's variables (machine/container.py), asked in this order.
REQUIRE_CUDA = "NVIDIA_REQUIRE_CUDA"
CUDA_VERSION = "CUDA_VERSION"
CONDA_OVERRIDE_CUDA = "CONDA_OVERRIDE_CUDA"
IMAGE_VARIABLES = (REQUIRE_CUDA, CUDA_VERSION, CONDA_OVERRIDE_CUDA)
VISIBLE_DEVICES = "NVIDIA_VISIBLE_DEVICES"
CUDA_VISIBLE = "CUDA_VISIBLE_DEVICES"


@dataclass(frozen=True)
class Gpu:
    """One GPU; ``compute_capability`` is None when the source cannot tell (old drivers)."""

    name: str | None
    compute_capability: tuple[int, int] | None
    vendor: str = "nvidia"  # "amd" and "intel" GPUs come from machine/amd.py, intel.py
    gfx: str | None = None  # an AMD GPU's target, e.g. "gfx1100"
    uuid: str | None = None  # "GPU-…", as nvidia-smi and NVML give it
    pci_id: str | None = None  # "10de:1b80": PCI vendor and device id
    # None when the source reported the compute capability; else how it was found
    # ("inferred from the device id 10de:1b80").
    capability_source: str | None = None

    def to_json(self) -> dict[str, Any]:
        cc = self.compute_capability
        found = {"name": self.name, "compute_capability": dotted(cc) if cc else None}
        if self.vendor != "nvidia":
            found.update(vendor=self.vendor, gfx=self.gfx)
        extra = {"uuid": self.uuid, "pci_id": self.pci_id}
        extra["capability_source"] = self.capability_source
        found.update({key: value for key, value in extra.items() if value is not None})
        return found


@dataclass(frozen=True)
class Probe:
    """One line of the detection trace: a source, what it saw, and what came of it."""

    source: str
    raw: str | None
    outcome: str
    failed: bool = False  # the source is there (a driver seems present) but did not answer

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "raw": self.raw,
            "outcome": self.outcome,
            "failed": self.failed,
        }


@dataclass(frozen=True)
class Overrides:
    """Values the user gave (``--cuda``, ``--driver``, ``--gpu-arch`` or ``TORCHFIT_*``)."""

    cuda: tuple[int, int] | None = None
    driver: str | None = None
    gpu_arch: tuple[tuple[int, int], ...] = ()
    gfx: tuple[str, ...] = ()  # AMD targets given as --gpu-arch gfx1100


@dataclass(frozen=True)
class Detection:
    """What detection found; ``max_cuda`` is the driver's maximum supported CUDA."""

    driver_version: str | None
    max_cuda: tuple[int, int] | None
    gpus: tuple[Gpu, ...]
    source: str | None
    suspected_gpu: bool
    trace: tuple[Probe, ...]
    os: str
    rocm: tuple[int, ...] | None = None  # the ROCm installed (/opt/rocm/.info/version)
    # The source the GPU list came from, when not the one the driver came from (a file).
    gpus_from: str | None = None
    # GPUs the visible-devices variables left out (machine/visible.py), and the lines the
    # plan's why repeats: which were left out and by which variable, capabilities inferred.
    hidden: tuple[Gpu, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def amd_gfx(self) -> tuple[str, ...]:
        """The gfx targets of the AMD GPUs, one per GPU."""
        return tuple(g.gfx for g in self.gpus if g.vendor == "amd" and g.gfx)

    @property
    def intel_gpus(self) -> tuple[Gpu, ...]:
        """The discrete Intel GPUs (integrated graphics are never listed)."""
        return tuple(g for g in self.gpus if g.vendor == "intel")

    @property
    def has_nvidia(self) -> bool:
        # A driver older than every known CUDA release still means an NVIDIA GPU is there.
        return self.max_cuda is not None or self.driver_version is not None

    @property
    def probed(self) -> bool:
        """Whether a driver was seen on this machine (not given, not read from the image):
        only then is there a GPU to ask."""
        return self.has_nvidia and self.source in PROBES

    @property
    def from_image(self) -> bool:
        """Whether the CUDA came from a container image's variables (no driver visible)."""
        return self.source in IMAGE_VARIABLES

    def to_json(self) -> dict[str, Any]:
        return {
            "driver_version": self.driver_version,
            "max_cuda": dotted(self.max_cuda) if self.max_cuda else None,
            "gpus": [gpu.to_json() for gpu in self.gpus],
            "source": self.source,
            "suspected_gpu": self.suspected_gpu,
            "trace": [probe.to_json() for probe in self.trace],
            "os": self.os,
            **({"rocm": ".".join(map(str, self.rocm))} if self.rocm else {}),
            **({"gpus_from": self.gpus_from} if self.gpus_from else {}),
            **({"hidden_gpus": [gpu.to_json() for gpu in self.hidden]} if self.hidden else {}),
            **({"notes": list(self.notes)} if self.notes else {}),
        }


@dataclass(frozen=True)
class Found:
    """One source's answer, before detect() assembles the Detection."""

    probe: Probe
    driver: str | None = None
    max_cuda: tuple[int, int] | None = None
    gpus: tuple[Gpu, ...] = ()
    suspected: bool = False

    @property
    def answered(self) -> bool:
        return self.driver is not None or self.max_cuda is not None


def dotted(pair: tuple[int, int]) -> str:
    return f"{pair[0]}.{pair[1]}"


def describe(driver: str | None, cuda: tuple[int, int] | None) -> str:
    """A trace outcome: ``driver 550.54.14, CUDA 12.4``."""
    cuda_text = f"CUDA {dotted(cuda)}" if cuda else "older than every CUDA toolkit in the table"
    return f"driver {driver}, {cuda_text}" if driver else cuda_text


_RAW_LIMIT = 500


def clip(text: str) -> str | None:
    """What a source printed, bounded, for the trace."""
    text = text.strip()
    return (text[:_RAW_LIMIT] + "..." if len(text) > _RAW_LIMIT else text) or None
