"""torchfit: install the PyTorch build that fits this machine, and prove it works.

The public API is what ``__all__`` lists; everything else is private.
"""

from __future__ import annotations

from torchfit._api import detect, install, plan, verify
from torchfit._version import __version__
from torchfit.check.verify import Check, Verification
from torchfit.errors import (
    IndexFetchError,
    InstallerMissing,
    InstallFailed,
    NoCompatibleWheel,
    ResolutionConflict,
    TorchfitError,
    UsageError,
    VerificationFailed,
)
from torchfit.machine.detect import Detection, Gpu, Overrides, Probe
from torchfit.session import InstallResult, Plan, PlannedWheel, Settings
from torchfit.variants import Variant

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
