"""The library entry points: keyword arguments in, typed values out, never printing."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from torchfit.check.verify import Verification
from torchfit.check.verify import verify as _verify
from torchfit.environment.install import Installer
from torchfit.machine.detect import Detection
from torchfit.machine.detect import detect as _detect
from torchfit.session import InstallResult, Plan, Settings, install_plan, make_plan


def plan(
    requirements: Sequence[str] | str,
    settings: Settings | None = None,
    *,
    detection: Detection | None = None,
    **options: Any,
) -> Plan:
    """Plan the wheels for ``requirements`` (e.g. ``"torch==1.7.1"``) on this machine.

    ``options`` are :class:`Settings` fields (``variant=Variant.parse("cpu")``, ``offline=True``);
    ``detection`` replaces probing this machine (plan for another one).
    Raises a :class:`~torchfit.TorchfitError` subclass when there is no fitting plan.
    """
    if isinstance(requirements, str):
        requirements = [requirements]
    base = settings or Settings()
    return make_plan(requirements, Settings(**{**base.__dict__, **options}), detection=detection)


def install(
    requirements: Sequence[str] | str,
    settings: Settings | None = None,
    *,
    installer: Installer = "pip",
    extra_args: Sequence[str] = (),
    **options: Any,
) -> InstallResult:
    """Plan, install into ``settings.python`` (default: this interpreter) and verify.

    Raises VerificationFailed (after the install) when what got installed does not work.
    """
    base = settings or Settings()
    merged = Settings(**{**base.__dict__, **options})
    if merged.python is None and not merged.platforms:
        merged = Settings(**{**merged.__dict__, "python": sys.executable})
    result = install_plan(plan(requirements, merged), installer=installer, extra_args=extra_args)
    if result.verification is not None:
        result.verification.raise_for_failure()
    return result


def detect(settings: Settings | None = None) -> Detection:
    """What this machine's NVIDIA driver supports (see :func:`torchfit.detection.detect`)."""
    return _detect((settings or Settings()).overrides)


def verify(python: str | None = None, settings: Settings | None = None) -> Verification:
    """Check the torch installed in ``python`` (default: this interpreter) against this machine."""
    return _verify(python or sys.executable, detect(settings))
