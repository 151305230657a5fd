"""The machine record: what detection found, with a trace of every source it asked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

OVERRIDE = "override"
NVML = "nvml"
NVIDIA_SMI = "nvidia-smi"
PROC_VERSION = "/proc/driver/nvidia/version"
#: The sources that see a driver (the rest are given values or the image's variables).
PROBES = (NVML, NVIDIA_SMI, PROC_VERSION)
# A container image's variables (machine/container.py), asked in this order.
REQUIRE_CUDA = "NVIDIA_REQUIRE_CUDA"
CUDA_VERSION = "CUDA_VERSION"
CONDA_OVERRIDE_CUDA = "CONDA_OVERRIDE_CUDA"
IMAGE_VARIABLES = (REQUIRE_CUDA, CUDA_VERSION, CONDA_OVERRIDE_CUDA)
VISIBLE_DEVICES = "NVIDIA_VISIBLE_DEVICES"


@dataclass(frozen=True)
class Gpu:
    """One GPU; ``compute_capability`` is None when the source cannot tell (old drivers)."""

    name: str | None
    compute_capability: tuple[int, int] | None

    def to_json(self) -> dict[str, Any]:
        cc = self.compute_capability
        return {"name": self.name, "compute_capability": dotted(cc) if cc else None}


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
