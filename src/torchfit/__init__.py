"""torchfit: install the PyTorch build that fits this machine, and prove it works.

The public API is what ``__all__`` lists; everything else is private. Names are imported on
first use, so ``import torchfit`` (and ``torchfit --version``) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from torchfit._version import __version__
from torchfit.errors import (
    IndexFetchError,
    InstallerMissing,
    InstallFailed,
    InstallInterrupted,
    NoCompatibleWheel,
    ResolutionConflict,
    TorchfitError,
    UsageError,
    VerificationFailed,
)

if TYPE_CHECKING:
    from torchfit._api import detect, doctor, install, plan, verify
    from torchfit.session import Session
    from torchfit.types import (
        Check,
        Detection,
        Diagnosis,
        Finding,
        Gpu,
        InstallResult,
        Overrides,
        Plan,
        PlannedWheel,
        Probe,
        Settings,
        Target,
        Variant,
        Verification,
    )

_LAZY = {
    **dict.fromkeys(("detect", "doctor", "install", "plan", "verify"), "torchfit._api"),
    "Session": "torchfit.session",
    **dict.fromkeys(
        (
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
        ),
        "torchfit.types",
    ),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'torchfit' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "Check",
    "Detection",
    "Diagnosis",
    "Finding",
    "Gpu",
    "IndexFetchError",
    "InstallFailed",
    "InstallInterrupted",
    "InstallResult",
    "InstallerMissing",
    "NoCompatibleWheel",
    "Overrides",
    "Plan",
    "PlannedWheel",
    "Probe",
    "ResolutionConflict",
    "Session",
    "Settings",
    "Target",
    "TorchfitError",
    "UsageError",
    "Variant",
    "Verification",
    "VerificationFailed",
    "__version__",
    "detect",
    "doctor",
    "install",
    "plan",
    "verify",
]
