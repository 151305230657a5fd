"""From a machine, a target and requirements to a :class:`Plan`: the variant, the exact wheels
and the reasons. Pure over its inputs; the page source is the only I/O, and it is handed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from torchfit.choose.candidates import FamilyRequirement, PageSource
from torchfit.choose.gpu_fit import GpuFit
from torchfit.choose.policy import Choice, Compat, driver_needed
from torchfit.choose.releases import cuda_builds
from torchfit.choose.resolve import resolve
from torchfit.environment.target import Target
from torchfit.errors import IndexFetchError, NoCompatibleWheel
from torchfit.index.urls import check_url
from torchfit.machine.record import Detection
from torchfit.variants import Variant, format_cuda


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


def make_plan(
    family: Sequence[FamilyRequirement],
    passthrough: Sequence[str],
    *,
    choice: Choice,
    detection: Detection,
    target: Target,
    source: PageSource,
    index: str,
    compat: Compat = "strict",
    force: bool = False,
    trusted_hosts: Sequence[str] = (),
    require_hashes: bool = False,
) -> Plan:
    """Resolve ``family`` over the variants of ``choice`` into a Plan.

    Raises NoCompatibleWheel (with the driver or GPU that stands in the way, where that is
    the reason) and ResolutionConflict.
    """
    # --force with --variant means "I know better": no kernel check either. Alone, it waives
    # nothing: it only ever accepts an explicit variant the driver is too old for.
    waived = force and choice.explicit
    gpu_fit = GpuFit() if waived else GpuFit.for_machine(detection, target, choice.variants)
    try:
        resolution = resolve(
            family, source=source, target=target, variants=choice.variants, gpu_fit=gpu_fit
        )
    except NoCompatibleWheel as exc:
        error = _explain_no_wheel(exc, family, detection, choice.explicit)
        empty: list[str] = getattr(source, "pages_without_wheels", list)()
        error.details += tuple(f"listed no wheel at all: {url}" for url in empty)
        if _snapshot_warning(source):
            offline = (
                "the bundled snapshots may not list every build: drop --offline to ask the index"
            )
            error.hint = f"{error.hint}; {offline}" if error.hint else offline
        raise error from None
    packages = []
    for candidate in resolution.candidates:
        check_url(candidate.link.url, trusted_hosts, error=IndexFetchError)
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
        # A source that is there but failed (a hung NVML, a broken nvidia-smi) is a reason too.
        *(
            f"{p.source} failed ({p.outcome}); the next source was asked"
            for p in detection.trace
            if p.failed
        ),
        *choice.reasons,
        f"chose {torch.name} {torch.version} from {resolution.variant.tag}: the newest version"
        " with a wheel for this target, then the newest variant that has it"
        + (" and serves every GPU" if gpu_fit.gpus and chosen.fit == 2 else ""),
        *([fit] if fit and not warnings else []),
        *resolution.notes,
    )
    unhashed = [p.filename for p in packages if not p.sha256]
    if unhashed and require_hashes:
        raise IndexFetchError(
            f"the index gives no sha256 for {', '.join(unhashed)}",
            hint="use an index that lists hashes, or drop --require-hashes",
        )
    warnings += [
        f"the index gives no sha256 for {name}: it is installed unchecked" for name in unhashed
    ]
    records = tuple(r.to_json() for r in getattr(source, "records", ()))
    stale = _snapshot_warning(source)
    if stale:
        warnings.append(stale)
    return Plan(
        resolution.variant,
        tuple(packages),
        tuple(passthrough),
        target,
        detection,
        reasons,
        index,
        records,
        tuple(warnings),
        compat,
        waived,
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
