"""The variant policy: which wheel variants this machine can run, best first.

Pure functions over a :class:`~torchfit.machine.record.Detection`; the README's policy
table is the prose form of this module.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from torchfit.choose.releases import known_variants
from torchfit.errors import NoCompatibleWheel
from torchfit.machine.drivers import min_driver_for_cuda, minor_compat_floor, parse_driver_version
from torchfit.machine.record import Detection
from torchfit.variants import Variant, format_cuda

Compat = Literal["strict", "minor"]


@dataclass(frozen=True)
class Choice:
    """The variants to consider, best first, and why."""

    variants: tuple[Variant, ...]
    reasons: tuple[str, ...]
    explicit: bool = False


def _driver_at_least(driver: str | None, floor: str | None) -> bool:
    have, need = parse_driver_version(driver or ""), parse_driver_version(floor or "")
    return have is not None and need is not None and have >= need


def cuda_runs(variant: Variant, detection: Detection, compat: Compat) -> bool:
    """Whether the detected driver can run a CUDA variant's wheels."""
    cuda, limit = variant.cuda, detection.max_cuda
    if cuda is None or limit is None:
        return False
    if cuda <= limit:
        return True
    if compat != "minor" or cuda[0] != limit[0]:
        return False
    # NVIDIA minor-version compatibility: same major, driver at or above that major's floor.
    # With only a CUDA version known, the least driver that reports it stands in.
    driver = detection.driver_version or min_driver_for_cuda(limit, detection.os)
    return _driver_at_least(driver, minor_compat_floor(cuda[0], detection.os))


def choose_variants(
    detection: Detection,
    *,
    compat: Compat = "strict",
    explicit: Variant | None = None,
    force: bool = False,
    target_os: str,
    candidates: Iterable[Variant] | None = None,
) -> Choice:
    """The variants to search, best first.

    Raises NoCompatibleWheel when a GPU is present but nothing fits, or when an
    explicit variant is newer than the driver (unless ``force``).
    """
    if explicit is not None:
        return _check_explicit(explicit, detection, compat, force)
    candidates = known_variants() if candidates is None else candidates
    if target_os == "macos":
        return Choice((Variant("cpu"),), ("macOS wheels are CPU builds (MPS is built in)",))
    if not detection.has_nvidia:
        if detection.suspected_gpu:
            raise NoCompatibleWheel(
                "an NVIDIA driver seems present but its CUDA version could not be read"
                " (see `torchfit detect`)",
                hint="pass --cuda X.Y (the driver's maximum CUDA) or --variant cpu",
            )
        return Choice((Variant("cpu"),), ("no NVIDIA GPU found: CPU wheels",))
    if detection.max_cuda is None:
        raise NoCompatibleWheel(
            f"NVIDIA driver {detection.driver_version} is older than every CUDA release"
            " torchfit knows",
            hint="update the NVIDIA driver, or pass --variant cpu to install CPU wheels",
        )
    runnable = tuple(v for v in candidates if cuda_runs(v, detection, compat))
    limit = format_cuda(detection.max_cuda)
    if not runnable:
        raise NoCompatibleWheel(
            f"the NVIDIA driver supports CUDA {limit}, older than every known CUDA build",
            hint="update the NVIDIA driver, or pass --variant cpu to install CPU wheels",
        )
    rule = "same-major minor-version compatibility" if compat == "minor" else "CUDA <= driver"
    reason = (
        f"driver supports CUDA {limit} ({detection.source}); variants allowed by {rule}: "
        + ", ".join(v.tag for v in runnable)
    )
    return Choice(runnable, (reason,))


def _check_explicit(variant: Variant, detection: Detection, compat: Compat, force: bool) -> Choice:
    reason = f"variant {variant.tag} given explicitly"
    if variant.kind != "cuda" or detection.max_cuda is None:
        if variant.kind == "cuda":
            reason += " (no driver known: accepted as given)"
        return Choice((variant,), (reason,), explicit=True)
    if cuda_runs(variant, detection, compat):
        return Choice((variant,), (reason + ", and the driver can run it",), explicit=True)
    assert variant.cuda is not None
    needed = min_driver_for_cuda(variant.cuda, detection.os)
    message = (
        f"variant {variant.tag} needs CUDA {format_cuda(variant.cuda)}, but the driver"
        f" supports only CUDA {format_cuda(detection.max_cuda)}"
    )
    if not force:
        need = f"update the driver to >= {needed}, " if needed else "update the driver, "
        raise NoCompatibleWheel(message, hint=need + "or pass --force to install it anyway")
    return Choice((variant,), (reason + f"; forced although {message}",), explicit=True)


def driver_needed(variants: Iterable[Variant], os: str) -> str | None:
    """The lowest driver that runs any of these CUDA variants, for error messages."""
    floors = [min_driver_for_cuda(v.cuda, os) for v in variants if v.cuda is not None]
    known = [f for f in floors if f and parse_driver_version(f)]
    return min(known, key=lambda f: parse_driver_version(f) or ()) if known else None
