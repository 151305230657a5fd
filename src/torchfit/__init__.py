"""torchfit: install the PyTorch build that fits this machine, and prove it works.

The public API is what ``__all__`` lists; everything else is private.
"""

from __future__ import annotations

__version__ = "0.1.0.dev0"

from ._api import detect, install, plan, verify
from ._core import InstallResult, Plan, PlannedWheel, Settings
from .detection import Detection, Gpu, Overrides, Probe
from .errors import (
    IndexFetchError,
    InstallerMissing,
    InstallFailed,
    NoCompatibleWheel,
    ResolutionConflict,
    TorchfitError,
    UsageError,
    VerificationFailed,
)
from .variants import Variant
from .verify import Check, Verification

__all__ = [
    "Check",
    "Detection",
    "Gpu",
    "IndexFetchError",
    "InstallFailed",
    "InstallResult",
    "InstallerMissing",
    "NoCompatibleWheel",
    "Overrides",
    "Plan",
    "PlannedWheel",
    "Probe",
    "ResolutionConflict",
    "Settings",
    "TorchfitError",
    "UsageError",
    "Variant",
    "Verification",
    "VerificationFailed",
    "__version__",
    "detect",
    "install",
    "plan",
    "verify",
]
