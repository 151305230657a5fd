"""The library's functions: one-liners over a :class:`~torchfit.session.Session`.

Each reads its settings as the command line does: the ``settings`` given, else the keyword
``options`` over the ``TORCHFIT_*`` variables (and pip's timeout, CA bundle and netrc
conventions) over the defaults; an option given always wins over its variable. Options are
:class:`~torchfit.Settings` fields or ``cuda``/``driver``/``gpu_arch``; None means "not
given". The commonest:

- ``cuda=(12, 4)`` or ``"12.4"``, ``driver="550.54.14"``, ``gpu_arch=[(8, 6)]``: the machine,
  instead of probing it (``TORCHFIT_CUDA``, ``TORCHFIT_DRIVER``, ``TORCHFIT_GPU_ARCH``);
- ``variant="cu126"`` or ``Variant.parse("cpu")`` (``TORCHFIT_VARIANT``), ``compat="minor"``,
  ``force=True``;
- ``index="https://mirror.example.org/pytorch/whl"`` (``TORCHFIT_PYTORCH_INDEX``): the PyTorch
  index's base URL, or a flat ``.html`` find-links page; ``offline=True``, ``refresh=True``,
  ``cache_dir`` (``TORCHFIT_CACHE_DIR``), ``timeout`` (``TORCHFIT_TIMEOUT``, ``PIP_TIMEOUT``),
  ``trusted_hosts``, ``ca_bundle``, ``netrc``, ``require_hashes=True``;
- ``python="/path/to/python"``: the interpreter to install into and check; without it, the
  active environment (``VIRTUAL_ENV``, else ``CONDA_PREFIX``), else this interpreter;
  ``python_version="3.12"`` with ``platforms=["manylinux_2_28_x86_64"]``: plan for another
  machine.

A complete ``settings`` value is taken as it is (no variable is read); options given beside
it replace its fields.
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
    """Plan the wheels for ``requirements`` on this machine, without changing anything.

    Args:
        requirements: PEP 508 requirements, e.g. ``"torch==1.7.1"`` or
            ``["torch>=2.6", "torchvision"]``; requirements for other projects are passed
            through, as written, in ``Plan.passthrough``.
        settings: a complete :class:`~torchfit.Settings` (no variable is read), or None.
        detection: the machine to plan for instead of probing this one (from
            :func:`detect` elsewhere, or built by hand).
        **options: Settings fields or ``cuda``/``driver``/``gpu_arch`` (see the module's
            docstring); e.g. ``index=`` the PyTorch index to read, ``offline=True``.

    Returns the :class:`~torchfit.Plan`: variant, exact wheels (URL and sha256), reasons.
    Raises a :class:`~torchfit.TorchfitError` subclass when there is no fitting plan
    (NoCompatibleWheel, ResolutionConflict), the index cannot be read (IndexFetchError) or
    an option is malformed (UsageError).
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
    """Plan, install exactly the planned (hash-checked) wheels, and verify them.

    Args:
        requirements: as for :func:`plan`.
        settings: as for :func:`plan`.
        installer: ``"pip"`` (the target's own ``python -m pip``) or ``"uv"``
            (``uv pip install --python …``).
        extra_args: arguments handed to the installer untouched, e.g. ``["--no-cache-dir"]``.
        **options: as for :func:`plan`; ``python=`` names the interpreter to install into
            (default: the active ``VIRTUAL_ENV``, else ``CONDA_PREFIX``, else this one).

    Returns the :class:`~torchfit.InstallResult` (plan, command, changes, verification).
    Raises InstallFailed when a download does not match its hash or the installer fails,
    InstallInterrupted on SIGINT/SIGTERM, VerificationFailed (after the install) when what
    got installed does not work, and what :func:`plan` raises.
    """
    with Session(settings, **options) as session:
        result = session.install(requirements, installer=installer, extra_args=extra_args)
    assert result.verification is not None
    result.verification.raise_for_failure()
    return result


def detect(settings: Settings | None = None, **options: Any) -> Detection:
    """What this machine's NVIDIA driver supports, with the trace of every source asked.

    Args:
        settings: as for :func:`plan`.
        **options: as for :func:`plan`; ``cuda``, ``driver`` and ``gpu_arch`` replace what
            would be probed (``source`` is then ``"override"``).

    Returns the :class:`~torchfit.Detection`; a source that fails is a line of its trace,
    not an error. Raises UsageError for a malformed option or variable.
    """
    with Session(settings, **options) as session:
        return session.detect()


def verify(
    python: str | None = None, settings: Settings | None = None, **options: Any
) -> Verification:
    """Check the torch installed in ``python`` against this machine; change nothing.

    Args:
        python: the interpreter to check; None: the active ``VIRTUAL_ENV``, else
            ``CONDA_PREFIX``, else this interpreter (``options["python"]`` works too).
        settings: as for :func:`plan`.
        **options: as for :func:`plan`; ``compat="minor"`` judges the driver as
            ``install(compat="minor")`` chose.

    Returns the :class:`~torchfit.Verification` (``ok`` and each check); a failed check is
    not raised: call ``raise_for_failure()`` for that. Raises UsageError when ``python``
    cannot be run.
    """
    with Session(settings, python=python, **options) as session:
        return session.verify()


def doctor(
    python: str | None = None, settings: Settings | None = None, **options: Any
) -> Diagnosis:
    """Explain the torch installed in ``python`` and how to fix it; change nothing.

    Args:
        python: as for :func:`verify`.
        settings: as for :func:`plan`.
        **options: as for :func:`plan`; the index options (``index=``, ``offline=``) are
            where each suggested ``torchfit install`` fix is planned before it is offered.

    Returns the :class:`~torchfit.Diagnosis`: ``healthy``, and findings with causes and
    fixes; each ``torchfit`` fix is a command that ``torchfit plan`` answers with the same
    settings (it carries ``--python`` and ``--compat minor`` where they apply). Raises
    UsageError when ``python`` cannot be run.
    """
    with Session(settings, python=python, **options) as session:
        return session.doctor()
