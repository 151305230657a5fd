"""The variant policy: which wheel variants this machine can run, best first.

Pure functions over a :class:`~torchfit.machine.record.Detection`; the README's policy
table is the prose form of this module.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from packaging.version import Version

from torchfit.choose.candidates import FamilyRequirement
from torchfit.choose.releases import RELEASES, cuda_builds, known_variants, newest
from torchfit.choose.rocm import fitting_rocm, known_gfx, rocm_archs
from torchfit.errors import NoCompatibleWheel
from torchfit.machine.amd import KFD
from torchfit.machine.amd import TOOLS as AMD_TOOLS
from torchfit.machine.drivers import min_driver_for_cuda, minor_compat_floor, parse_driver_version
from torchfit.machine.intel import SOURCE as PCI_SOURCE
from torchfit.machine.record import IMAGE_VARIABLES, OVERRIDE, VISIBLE_DEVICES, Detection
from torchfit.variants import Variant, format_cuda

Compat = Literal["strict", "minor"]


@dataclass(frozen=True)
class Choice:
    """The variants to consider, best first, and why."""

    variants: tuple[Variant, ...]
    reasons: tuple[str, ...]
    explicit: bool = False
    warnings: tuple[str, ...] = ()


#: Said once when a plan is CPU only because nothing named a GPU (a docker build).
NO_GPU_WARNING = (
    "no NVIDIA GPU is visible, so this plan is for CPU; to build for GPU machines (a docker"
    " build, another host), pass their driver's maximum CUDA (--cuda X.Y) or its version"
    " (--driver VERSION), with --gpu-arch X.Y for their GPUs, or pass --variant"
)


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
    """The variants to search, best first, with the warnings the plan must carry.

    Raises NoCompatibleWheel when a GPU is present but nothing fits, or when an
    explicit variant is newer than the driver (unless ``force``).
    """
    choice = _choose(detection, compat, explicit, force, target_os, candidates)
    unread = tuple(
        f"{p.source}={p.raw!r} {p.outcome}"  # "...='cuda~12' ignored: no cuda>=X.Y term"
        for p in detection.trace
        if p.source in IMAGE_VARIABLES and p.failed
    )
    return dataclasses.replace(choice, warnings=unread + choice.warnings) if unread else choice


def _choose(
    detection: Detection,
    compat: Compat,
    explicit: Variant | None,
    force: bool,
    target_os: str,
    candidates: Iterable[Variant] | None,
) -> Choice:
    if explicit is not None:
        return _check_explicit(explicit, detection, compat, force)
    candidates = known_variants() if candidates is None else candidates
    if target_os == "macos":
        return Choice((Variant("cpu"),), ("macOS wheels are CPU builds (MPS is built in)",))
    if not detection.has_nvidia and detection.amd_gfx:
        return _choose_rocm(detection, target_os, tuple(candidates))
    if not detection.has_nvidia and detection.intel_gpus:
        return _choose_xpu(detection, target_os)
    if not detection.has_nvidia:
        if detection.suspected_gpu:
            raise NoCompatibleWheel(
                "an NVIDIA driver seems present but its CUDA version could not be read"
                " (see `torchfit detect`)",
                hint="pass --cuda X.Y (the driver's maximum CUDA) or --variant cpu",
            )
        hidden = next((p for p in detection.trace if p.source == VISIBLE_DEVICES), None)
        if hidden is not None:
            said = f"{VISIBLE_DEVICES}={hidden.raw}" if hidden.raw else f"{VISIBLE_DEVICES} empty"
            return Choice((Variant("cpu"),), (f"no GPU will be visible ({said}): CPU wheels",))
        return Choice(
            (Variant("cpu"),), ("no NVIDIA GPU found: CPU wheels",), warnings=(NO_GPU_WARNING,)
        )
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
    allowed = f"variants allowed by {rule}: " + ", ".join(v.tag for v in runnable)
    if detection.from_image:
        # The image's CUDA is what its runtime needs: every host it runs on has at least it.
        reason = (
            f"CUDA {limit} from {detection.source} (the image's CUDA, no driver visible):"
            f" planned as if the driver's maximum CUDA were {limit}; {allowed}"
        )
    else:
        reason = f"driver supports CUDA {limit} ({detection.source}); {allowed}"
    return Choice(runnable, (reason,))


def _gpu_source(detection: Detection, vendor: str) -> str:
    """Which source named the machine's AMD or Intel GPUs, for ``why``."""
    given = [p for p in detection.trace if p.source == OVERRIDE and p.raw and "gfx" in p.raw]
    if vendor == "amd" and given:
        return "--gpu-arch"
    names = (KFD, *AMD_TOOLS) if vendor == "amd" else (PCI_SOURCE,)
    found = [p.source for p in detection.trace if p.source in names and p.outcome[:4] == "GPUs"]
    return found[-1] if found else PCI_SOURCE if vendor == "intel" else "detection"


def _choose_rocm(detection: Detection, target_os: str, candidates: tuple[Variant, ...]) -> Choice:
    """Rule: the ROCm builds whose gfx lists hold every AMD GPU's target, newest first (the
    resolver then takes the newest torch among them). See ``choose/rocm.py`` for why the
    installed ROCm does not limit the choice."""
    gfx = tuple(dict.fromkeys(detection.amd_gfx))
    names = ", ".join(gfx)
    source = _gpu_source(detection, "amd")
    if target_os != "linux":
        return Choice(
            (Variant("cpu"),),
            (
                f"AMD GPU {names} ({source}): the PyTorch index has ROCm builds for Linux only;"
                " CPU wheels",
            ),
        )
    serving, unknown = fitting_rocm(gfx, candidates)
    if not serving:
        strange = [g for g in gfx if g not in known_gfx()]
        message = (
            f"no ROCm build of torch carries kernels for {', '.join(strange)}"
            f" (the AMD GPU {source} found)"
            if strange
            else f"no single ROCm build of torch carries kernels for every GPU here ({names})"
        )
        raise NoCompatibleWheel(
            message,
            hint=f"targets the ROCm builds carry: {' '.join(sorted(known_gfx()))}"
            "; pass --variant rocmX.Y to install one anyway (kernels for a missing target"
            " fail at run time), --gpu-arch gfxNNNN if the target was misread, or"
            " --variant cpu",
        )
    installed = (
        f"; ROCm {'.'.join(map(str, detection.rocm))} is installed under /opt/rocm, which"
        " does not limit the choice: each ROCm wheel brings its own ROCm libraries"
        if detection.rocm
        else ""
    )
    unread = (
        f" ({len(unknown)} older builds, {unknown[-1].tag} to {unknown[0].tag}, have no known"
        " list and are left out)"
        if unknown
        else ""
    )
    return Choice(
        serving,
        (
            f"AMD GPU {names} ({source}); ROCm builds that carry kernels for every GPU:"
            f" {', '.join(v.tag for v in serving)}{unread}{installed}",
        ),
    )


def _choose_xpu(detection: Detection, target_os: str) -> Choice:
    """Rule: a discrete Intel GPU takes the ``xpu`` build (published from torch 2.5 on, for
    Linux and Windows); integrated graphics alone never get here (``machine/intel.py``)."""
    names = ", ".join(g.name or "Intel GPU" for g in detection.intel_gpus)
    if target_os not in ("linux", "windows"):
        return Choice((Variant("cpu"),), (f"{names}: xpu builds are for Linux and Windows",))
    return Choice(
        (Variant("xpu"),),
        (f"{names} ({_gpu_source(detection, 'intel')}): the xpu build (torch >= 2.5)",),
    )


def _check_explicit(variant: Variant, detection: Detection, compat: Compat, force: bool) -> Choice:
    reason = f"variant {variant.tag} given explicitly"
    if variant.kind == "rocm" and detection.amd_gfx:
        archs = rocm_archs(variant)
        missing = [g for g in dict.fromkeys(detection.amd_gfx) if archs and not archs.serves(g)]
        if missing:  # asked for, so planned; but the plan says which GPU will fail
            warning = (
                f"{variant.tag} carries no kernels for {', '.join(missing)} ({archs}):"
                " torch will fail on that GPU"
            )
            return Choice((variant,), (reason,), explicit=True, warnings=(warning,))
    if variant.kind != "cuda" or detection.max_cuda is None:
        if variant.kind == "cuda":
            reason += " (no driver known: accepted as given)"
        return Choice((variant,), (reason,), explicit=True)
    if cuda_runs(variant, detection, compat):
        return Choice((variant,), (reason + ", and the driver can run it",), explicit=True)
    assert variant.cuda is not None
    if detection.from_image:  # the image's CUDA is a floor of the hosts' drivers, not a ceiling
        image = f"CUDA {format_cuda(detection.max_cuda)} from {detection.source}"
        needed = min_driver_for_cuda(variant.cuda, detection.os)
        hosts = f"a driver >= {needed}" if needed else "a newer driver"
        reason += f" (above the image's {image}: the machines it runs on need {hosts})"
        return Choice((variant,), (reason,), explicit=True)
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


def minor_compat_warning(variant: Variant, detection: Detection, compat: Compat) -> str | None:
    """The warning a plan carries when only ``--compat minor`` let its variant in."""
    limit = detection.max_cuda
    if compat != "minor" or variant.cuda is None or limit is None or variant.cuda <= limit:
        return None
    if not cuda_runs(variant, detection, "minor"):
        return None  # forced, or an image's floor: not minor-version compatibility
    return (
        f"{variant.tag} is newer than the driver's CUDA {format_cuda(limit)}: it relies on CUDA"
        " minor-version compatibility (--compat minor); kernels JIT-compiled from PTX, and some"
        " features, may fail on this driver"
    )


def explain_no_wheel(
    error: NoCompatibleWheel,
    family: Sequence[FamilyRequirement],
    detection: Detection,
    *,
    compat: Compat,
    explicit: bool,
) -> NoCompatibleWheel:
    """A "no wheel" error that leads somewhere, when the driver is what stands in the way.

    A pinned torch whose every CUDA build is newer than the driver names those builds,
    ``--compat minor`` where it would admit one, and the driver that serves the lowest.
    An unpinned request on a driver too old for the newest torch names the newest torch
    this driver can run, and the driver the newest torch needs. Else ``error`` as it is.
    """
    if explicit or not detection.has_nvidia or detection.max_cuda is None:
        return error
    torch = next((r for r in family if r.name == "torch"), None)
    exact = [s.version for s in torch.specifier if s.operator == "=="] if torch else []
    if exact:
        return _newer_builds_only(error, exact[0].split("+")[0], detection, compat)
    if any(str(r.specifier) for r in family):
        return error
    return _driver_too_old_for_newest(error, detection, compat)


def _newer_builds_only(
    error: NoCompatibleWheel, version: str, detection: Detection, compat: Compat
) -> NoCompatibleWheel:
    assert detection.max_cuda is not None
    limit = format_cuda(detection.max_cuda)
    builds = cuda_builds(version)
    # Nearest first: the lowest CUDA above the driver is the smallest step.
    newer = sorted(
        (v for v in builds if v.cuda and v.cuda > detection.max_cuda), key=Variant.sort_key
    )
    if not newer or len(newer) != len(builds):
        return error
    lowest = newer[0]
    needed = driver_needed([lowest], detection.os)
    ways = []
    minor = [v.tag for v in newer if compat == "strict" and cuda_runs(v, detection, "minor")]
    if minor:
        ways.append(
            f"pass --compat minor to use {_either(minor)} through CUDA minor-version"
            " compatibility (some features may not work)"
        )
    assert lowest.cuda is not None
    if detection.from_image:
        hosts = f" (drivers >= {needed})" if needed else ""
        ways.append(
            f"pass --cuda {format_cuda(lowest.cuda)} if the machines this image runs on"
            f" support it{hosts}"
        )
        machine = f"the image's CUDA is {limit} ({detection.source}) and no driver is visible"
    else:
        driver = f"update the NVIDIA driver to >= {needed}" if needed else "update the driver"
        ways.append(f"{driver} for {lowest.tag}")
        machine = f"this driver supports CUDA {limit}"
    ways.append("pass --variant cpu for the CPU build")
    ways += _nearest_runnable(version, detection, compat)
    return NoCompatibleWheel(
        f"torch {version} has CUDA builds for {', '.join(v.tag for v in newer)} only; {machine}",
        hint=", or ".join(ways),
        details=error.details,
    )


def _nearest_runnable(version: str, detection: Detection, compat: Compat) -> list[str]:
    """The hints ``pin torch==X (cuXY)`` for the nearest releases, below and above
    ``version``, with a CUDA build this driver runs (its best such build)."""
    pinned = Version(version)
    runs: list[tuple[Version, str]] = []
    for row in RELEASES:
        fitting = [v.tag for v in cuda_builds(row.torch) if cuda_runs(v, detection, compat)]
        if fitting:
            runs.append((Version(row.torch), fitting[0]))
    below = [r for r in runs if r[0] < pinned]
    above = [r for r in runs if r[0] > pinned]
    nearest = [*([max(below)] if below else []), *([min(above)] if above else [])]
    if not nearest:
        return []
    pins = " or ".join(f"torch=={v} ({tag})" for v, tag in nearest)
    return [f"pin {pins}, the nearest release this driver runs"]


def _driver_too_old_for_newest(
    error: NoCompatibleWheel, detection: Detection, compat: Compat
) -> NoCompatibleWheel:
    latest = newest()
    latest_builds = cuda_builds(latest.torch)
    if any(cuda_runs(v, detection, compat) for v in latest_builds):
        return error  # the driver is not what stands in the way
    lowest = min(latest_builds, key=Variant.sort_key) if latest_builds else None
    needed = driver_needed([lowest], detection.os) if lowest else None
    runnable = next(
        (
            (row.torch, v.tag)
            for row in sorted(RELEASES, key=lambda r: Version(r.torch), reverse=True)
            for v in cuda_builds(row.torch)
            if cuda_runs(v, detection, compat)
        ),
        None,
    )
    update = (
        f"update the NVIDIA driver to >= {needed} for torch {latest.torch} ({lowest.tag})"
        if needed and lowest
        else f"update the NVIDIA driver for torch {latest.torch}"
    )
    if runnable:
        head = (
            f"the newest torch this driver can run is {runnable[0]} ({runnable[1]}): pin"
            f" torch=={runnable[0]} for a Python and platform it was built for, or "
        )
    else:
        head = "no torch build runs on this driver: "
    return NoCompatibleWheel(
        error.message, hint=head + update + ", or pass --variant cpu", details=error.details
    )


def _either(tags: Sequence[str]) -> str:
    return tags[0] if len(tags) == 1 else ", ".join(tags[:-1]) + " or " + tags[-1]
