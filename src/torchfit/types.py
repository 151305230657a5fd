"""The public value types, in one place: what torchfit's functions take and return."""

from __future__ import annotations

from torchfit.check.doctor import Diagnosis, Finding
from torchfit.check.verify import Check, Verification
from torchfit.choose.plan import Plan, PlannedWheel
from torchfit.environment.target import Target
from torchfit.machine.record import Detection, Gpu, Overrides, Probe
from torchfit.results import InstallResult
from torchfit.settings import Settings
from torchfit.variants import Variant

__all__ = [
    "Check",
    "Detection",
    "Diagnosis",
    "Finding",
    "Gpu",
    "InstallResult",
    "Overrides",
    "Plan",
    "PlannedWheel",
    "Probe",
    "Settings",
    "Target",
    "Variant",
    "Verification",
]
