"""The public API is small and locked: a change to it is a deliberate change to this test."""

from __future__ import annotations

import torchfit
from torchfit import Overrides, Settings, Variant


def test_public_names_are_locked() -> None:
    assert sorted(torchfit.__all__) == [
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
    for name in torchfit.__all__:
        assert hasattr(torchfit, name), name


def test_every_error_is_a_torchfit_error() -> None:
    for name in torchfit.__all__:
        value = getattr(torchfit, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, torchfit.TorchfitError), name


def test_library_plan_returns_typed_values() -> None:
    plan = torchfit.plan(
        "torch==1.7.1",
        Settings(overrides=Overrides(cuda=(10, 1)), offline=True, cache_dir=None),
        python_version="3.8",
        platforms=("win_amd64",),
    )
    assert isinstance(plan, torchfit.Plan)
    assert plan.variant == Variant.parse("cu101")
    (torch,) = plan.packages
    assert isinstance(torch, torchfit.PlannedWheel)
    assert torch.filename == "torch-1.7.1+cu101-cp38-cp38-win_amd64.whl"


def test_library_detect_honours_overrides() -> None:
    detection = torchfit.detect(Settings(overrides=Overrides(driver="450.80.02")))
    assert detection.max_cuda == (11, 0)
    assert detection.source == "override"
