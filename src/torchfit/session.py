"""Orchestration: detect -> choose variants -> resolve -> install -> verify. No parsing here."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from torchfit._runner import Runner, run_reporting
from torchfit.check.verify import Verification, verify
from torchfit.choose.policy import Compat, GpuFit, choose_variants, driver_needed
from torchfit.choose.releases import cuda_builds
from torchfit.choose.resolve import FAMILY, FamilyRequirement, PageSource, resolve
from torchfit.environment import target as targets
from torchfit.environment.install import (
    Installer,
    WheelPin,
    describe_changes,
    ensure_pip,
    find_uv,
    install_command,
    installed_versions,
    run_install,
)
from torchfit.environment.target import Target
from torchfit.errors import IndexFetchError, InstallFailed, NoCompatibleWheel, UsageError
from torchfit.index.client import (
    DEFAULT_INDEX,
    IndexClient,
    bundled_snapshots,
    check_url,
    default_cache_dir,
)
from torchfit.machine.detect import Detection, Overrides, detect
from torchfit.variants import Variant, format_cuda

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlannedWheel:
    name: str
    version: str
    filename: str
    url: str
    sha256: str | None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Plan:
    """What torchfit would install, and why."""

    variant: Variant
    packages: tuple[PlannedWheel, ...]
    passthrough: tuple[str, ...]  # requirements that are not torch-family, for pip as written
    target: Target
    detection: Detection
    reasons: tuple[str, ...]
    index: str
    pages: tuple[dict[str, Any], ...] = field(default=())
    warnings: tuple[str, ...] = field(default=())
    compat: Compat = "strict"
    forced: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "variant": self.variant.tag,
            "packages": [p.to_json() for p in self.packages],
            "passthrough": list(self.passthrough),
            "target": self.target.to_json(),
            "index": self.index,
            "reasons": list(self.reasons),
            "pages": list(self.pages),
            "warnings": list(self.warnings),
            "compat": self.compat,
            "detection": self.detection.to_json(),
        }


@dataclass(frozen=True)
class Settings:
    """Everything a run needs to know, read once (by the CLI or a library caller)."""

    overrides: Overrides = field(default_factory=Overrides)
    variant: Variant | None = None
    compat: Compat = "strict"
    force: bool = False
    index: str = DEFAULT_INDEX
    offline: bool = False
    cache_dir: Path | None = field(default_factory=default_cache_dir)
    trusted_hosts: tuple[str, ...] = ()
    python: str | None = None
    python_version: str | None = None
    platforms: tuple[str, ...] = ()


def split_requirements(
    requirements: Sequence[str], target: Target
) -> tuple[list[FamilyRequirement], list[str]]:
    """Torch-family requirements for the resolver; everything else goes to pip as written.

    A torch-family requirement whose marker does not hold for the target is dropped.
    """
    family, others = [], []
    for text in requirements:
        try:
            requirement = Requirement(text)
        except InvalidRequirement as exc:
            detail = str(exc).splitlines()[0]
            raise UsageError(f"invalid requirement {text!r}: {detail}") from None
        name = canonicalize_name(requirement.name)
        if name not in FAMILY:
            others.append(text)
        elif requirement.url or requirement.extras:
            raise UsageError(
                f"{text!r}: torchfit chooses the file for {name} itself",
                hint=f"write a version requirement such as {name}==X.Y.Z",
            )
        elif _marker_holds(requirement, target):
            family.append(FamilyRequirement(name, requirement.specifier, "user"))
    if not family:
        raise UsageError(
            "no torch-family requirement given (or none whose marker holds for this target)",
            hint="e.g. torchfit plan torch==2.8.0 torchvision",
        )
    return family, others


def _marker_holds(requirement: Requirement, target: Target) -> bool:
    if requirement.marker is None:
        return True
    try:
        return requirement.marker.evaluate(target.marker_environment())
    except Exception as exc:  # packaging raises several types for markers it cannot evaluate
        raise UsageError(f"cannot evaluate the marker of {str(requirement)!r}: {exc}") from None


def resolve_target(settings: Settings) -> Target:
    if settings.python_version or settings.platforms:
        if settings.python:
            raise UsageError("--python cannot be combined with --python-version/--platform")
        return targets.from_spec(settings.python_version or "", settings.platforms)
    if settings.python:
        return targets.from_interpreter(settings.python)
    return targets.current()


def make_plan(
    requirements: Sequence[str],
    settings: Settings,
    *,
    detection: Detection | None = None,
    source: PageSource | None = None,
) -> Plan:
    target = resolve_target(settings)
    family, others = split_requirements(requirements, target)
    if detection is None:
        detection = detect(settings.overrides, os=target.os)
    choice = choose_variants(
        detection,
        compat=settings.compat,
        explicit=settings.variant,
        force=settings.force,
        target_os=target.os,
    )
    client: PageSource = source or IndexClient(
        settings.index,
        offline=settings.offline,
        cache_dir=settings.cache_dir,
        snapshots=bundled_snapshots(),
        trusted_hosts=settings.trusted_hosts,
    )
    try:
        # --force means "I know better": no kernel check either.
        gpu_fit = (
            GpuFit() if settings.force else GpuFit.for_machine(detection, target, choice.variants)
        )
        resolution = resolve(
            family, source=client, target=target, variants=choice.variants, gpu_fit=gpu_fit
        )
    except NoCompatibleWheel as exc:
        error = _explain_no_wheel(exc, family, detection, choice.explicit)
        if _snapshot_warning(client):
            offline = (
                "the bundled snapshots may not list every build: drop --offline to ask the index"
            )
            error.hint = f"{error.hint}; {offline}" if error.hint else offline
        raise error from None
    finally:
        if isinstance(client, IndexClient) and source is None:
            client.close()
    packages = []
    for candidate in resolution.candidates:
        check_url(candidate.link.url, settings.trusted_hosts, error=IndexFetchError)
        packages.append(
            PlannedWheel(
                candidate.name,
                str(candidate.version),
                candidate.link.filename,
                candidate.link.url,
                candidate.link.sha256,
            )
        )
    torch = next((p for p in packages if p.name == "torch"), packages[0])
    chosen = next(c for c in resolution.candidates if c.name == torch.name)
    fit = gpu_fit.describe(chosen.version, chosen.variant) if torch.name == "torch" else None
    warnings = [fit[len("warning: ") :]] if fit and fit.startswith("warning: ") else []
    reasons = (
        *choice.reasons,
        f"chose {torch.name} {torch.version} from {resolution.variant.tag}: the newest version"
        " with a wheel for this target, then the newest variant that has it"
        + (" and serves every GPU" if gpu_fit.gpus and chosen.fit == 2 else ""),
        *([fit] if fit and not warnings else []),
        *resolution.notes,
    )
    records = tuple(r.to_json() for r in getattr(client, "records", ()))
    stale = _snapshot_warning(client)
    if stale:
        warnings.append(stale)
    return Plan(
        resolution.variant,
        tuple(packages),
        tuple(others),
        target,
        detection,
        reasons,
        settings.index,
        records,
        tuple(warnings),
        settings.compat,
        settings.force,
    )


def _snapshot_warning(client: PageSource) -> str | None:
    """Say so when an answer rests on the bundled snapshots, which age."""
    records = getattr(client, "records", ())
    dates = sorted({r.date for r in records if r.origin == "snapshot" and r.date})
    if not any(r.origin.startswith(("snapshot", "absent (not in")) for r in records):
        return None
    newest = dates[-1] if dates else "an unknown date"
    return (
        f"planned from the snapshots bundled with torchfit (data up to {newest}), which may lack"
        " newer releases and list only part of the index; drop --offline to ask the index"
    )


def _explain_no_wheel(
    exc: NoCompatibleWheel,
    family: Sequence[FamilyRequirement],
    detection: Detection,
    explicit: bool,
) -> NoCompatibleWheel:
    """Turn "no wheel" into "driver too old" when a newer driver would have found one."""
    if explicit or not detection.has_nvidia or detection.max_cuda is None:
        return exc
    torch = next((r for r in family if r.name == "torch"), None)
    exact = [s.version for s in torch.specifier if s.operator == "=="] if torch else []
    builds = cuda_builds(exact[0]) if exact else ()
    newer = [v for v in builds if v.cuda and v.cuda > detection.max_cuda]
    if not newer or len(newer) != len(builds):
        return exc
    needed = driver_needed(newer, detection.os)
    return NoCompatibleWheel(
        f"torch {exact[0].split('+')[0]} has CUDA builds for"
        f" {', '.join(v.tag for v in newer)} only;"
        f" this driver supports CUDA {format_cuda(detection.max_cuda)}",
        hint=(f"update the NVIDIA driver to >= {needed}" if needed else "update the NVIDIA driver")
        + ", or pass --variant cpu for the CPU build",
    )


@dataclass(frozen=True)
class InstallResult:
    plan: Plan
    command: tuple[str, ...]
    changes: tuple[str, ...]
    verification: Verification | None

    def to_json(self) -> dict[str, Any]:
        return {
            "plan": self.plan.to_json(),
            "command": list(self.command),
            "changes": list(self.changes),
            "verification": self.verification.to_json() if self.verification else None,
        }


def install_plan(
    plan: Plan,
    *,
    installer: Installer = "pip",
    extra_args: Sequence[str] = (),
    dry_run: bool = False,
    run: Runner = run_reporting,
) -> InstallResult:
    """Install exactly the planned wheels into the plan's interpreter, then verify them."""
    python = plan.target.interpreter
    if python is None:
        raise UsageError(
            "a --python-version/--platform plan cannot be installed here",
            hint="use `torchfit plan` for another machine, or --python PATH to install",
        )
    pins = [WheelPin(p.name, p.url, p.sha256) for p in plan.packages]
    uv = find_uv() if installer == "uv" else None
    command = install_command(
        python, pins, plan.passthrough, extra_args, installer=installer, uv=uv
    )
    if dry_run:
        return InstallResult(plan, tuple(command), (), None)
    if installer == "pip":
        ensure_pip(python, run)
    before = installed_versions(python, run)
    try:
        run_install(command, run)
    except InstallFailed as failure:
        changes = describe_changes(before, installed_versions(python, run))
        failure.details += ("changed: " + ("; ".join(changes) or "nothing"),)
        raise
    changes = describe_changes(before, installed_versions(python, run))
    torch = next((p for p in plan.packages if p.name == "torch"), None)
    verification = verify(
        python,
        plan.detection,
        expected_version=torch.version if torch else None,
        expected_variant=plan.variant if torch else None,
        compat=plan.compat,
        forced=plan.forced,
        run=run,
    )
    return InstallResult(plan, tuple(command), tuple(changes), verification)
