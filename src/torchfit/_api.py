"""The library's functions: one-liners over a :class:`~torchfit.session.Session`.

Keyword ``options`` are :class:`~torchfit.Settings` fields (``offline=True``,
``variant=Variant.parse("cpu")``) or ``cuda``/``driver``/``gpu_arch``; what is not given comes
from the ``TORCHFIT_*`` variables, then the defaults, as on the command line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from torchfit.results import InstallResult
from torchfit.session import Session

if TYPE_CHECKING:
    from torchfit.check.doctor import Diagnosis
    from torchfit.check.verify import Verification
    from torchfit.choose.plan import Plan
    from torchfit.environment.install import Installer
    from torchfit.machine.record import Detection
    from torchfit.settings import Settings


def plan(
    requirements: Sequence[str] | str,
    settings: Settings | None = None,
    *,
    detection: Detection | None = None,
    **options: Any,
) -> Plan:
    """Plan the wheels for ``requirements`` (e.g. ``"torch==1.7.1"``) on this machine.

    ``detection`` replaces probing this machine (plan for another one).
    Raises a :class:`~torchfit.TorchfitError` subclass when there is no fitting plan.
    """
    with Session(settings, detection=detection, **options) as session:
        return session.plan(requirements)


def install(
    requirements: Sequence[str] | str,
    settings: Settings | None = None,
    *,
    installer: Installer = "pip",
    extra_args: Sequence[str] = (),
    **options: Any,
) -> InstallResult:
    """Plan, install into ``python`` (default: this interpreter) and verify.

    Raises VerificationFailed (after the install) when what got installed does not work.
    """
    with Session(settings, **options) as session:
        result = session.install(requirements, installer=installer, extra_args=extra_args)
    assert result.verification is not None
    result.verification.raise_for_failure()
    return result


def detect(settings: Settings | None = None, **options: Any) -> Detection:
    """What this machine's NVIDIA driver supports, with the trace of every source asked."""
    return Session(settings, **options).detect()


def verify(
    python: str | None = None, settings: Settings | None = None, **options: Any
) -> Verification:
    """Check the torch installed in ``python`` (default: this interpreter) against this machine."""
    return Session(settings, python=python, **options).verify()


def doctor(
    python: str | None = None, settings: Settings | None = None, **options: Any
) -> Diagnosis:
    """Explain the torch installed in ``python`` (default: this interpreter); change nothing."""
    return Session(settings, python=python, **options).doctor()
