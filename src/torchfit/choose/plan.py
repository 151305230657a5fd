"""From a machine, a target and requirements to a :class:`Plan`: the variant, the exact wheels
and the reasons. Pure over its inputs; the page source is the only I/O, and it is handed in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from torchfit.choose.candidates import FamilyRequirement, PageSource
from torchfit.choose.gpu_fit import GpuFit
from torchfit.choose.policy import (
    Choice,
    Compat,
    cuda_runs,
    explain_no_wheel,
    minor_compat_warning,
)
from torchfit.choose.releases import known_variants
from torchfit.choose.requirements import COMMAND_LINE, Passed
from torchfit.choose.resolve import resolve
from torchfit.environment.target import Target
from torchfit.errors import IndexFetchError, NoCompatibleWheel
from torchfit.index.urls import check_url
from torchfit.machine.record import Detection
from torchfit.variants import Variant


@dataclass(frozen=True)
class PlannedWheel:
    name: str
    version: str
    filename: str
    url: str
    sha256: str | None
    extras: tuple[str, ...] = ()  # asked for (torch[opt-einsum]): the installer gets them

    def to_json(self) -> dict[str, Any]:
        found = {k: v for k, v in self.__dict__.items() if k != "extras"}
        return {**found, "extras": list(self.extras)} if self.extras else found


@dataclass(frozen=True)
class Plan:
    """What torchfit would install, and why."""

    variant: Variant
    packages: tuple[PlannedWheel, ...]
    passthrough: tuple[Passed, ...]  # lines that are not torch-family: the installer's
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
            "passthrough": [p.to_json() for p in self.passthrough],
            "target": self.target.to_json(),
            "index": self.index,
            "reasons": list(self.reasons),
            "pages": list(self.pages),
            "warnings": list(self.warnings),
            "compat": self.compat,
            "detection": self.detection.to_json(),
        }

    def installer_requirements(self) -> list[str]:
        """The pass-through requirement and option lines, as an installer reads them (in a
        requirements file; those from the command line are plain requirements)."""
        return [str(p) for p in self.passthrough if not p.constraint]

    def installer_constraints(self) -> list[str]:
        """The pass-through constraint lines (for an installer's ``-c`` file)."""
        return [str(p) for p in self.passthrough if p.constraint]

    def from_files(self) -> bool:
        """Whether a pass-through line came from a requirement file: then the installer
        reads them all from files (options and ``--hash`` cannot all be arguments)."""
        return any(p.origin != COMMAND_LINE or p.constraint for p in self.passthrough)


def make_plan(
    family: Sequence[FamilyRequirement],
    passthrough: Sequence[Passed],
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
    extras: Mapping[str, Sequence[str]] | None = None,
    hashes: Mapping[str, tuple[Sequence[str], str]] | None = None,
) -> Plan:
    """Resolve ``family`` over the variants of ``choice`` into a Plan. ``extras`` and
    ``hashes`` (``--hash`` values and where they were given) are the user's, by name.

    Raises NoCompatibleWheel (with the driver or GPU that stands in the way, where that is
    the reason) and ResolutionConflict.
    """
    # --force with --variant means "I know better". Alone, it waives nothing: it only ever
    # accepts an explicit variant the driver is too old for.
    waived = force and choice.explicit
    # An explicit --variant may be a build that misses a GPU (one that serves comes first):
    # then the plan warns which GPU will fail, and hints at the builds this driver can run.
    runnable = choice.variants
    if choice.explicit:
        runnable = tuple(v for v in known_variants() if cuda_runs(v, detection, compat))
    gpu_fit = GpuFit.for_machine(detection, target, runnable, enforce=not choice.explicit)
    try:
        resolution = resolve(
            family, source=source, target=target, variants=choice.variants, gpu_fit=gpu_fit
        )
    except NoCompatibleWheel as exc:
        error = explain_no_wheel(exc, family, detection, compat=compat, explicit=choice.explicit)
        empty: list[str] = getattr(source, "pages_without_wheels", list)()
        error.details += tuple(f"listed no wheel at all: {url}" for url in empty)
        if _snapshot_warning(source):
            offline = (
                "the bundled snapshots may not list every build: drop --offline to ask the index"
            )
            error.hint = f"{error.hint}; {offline}" if error.hint else offline
        raise error from None
    packages = []
    # A wheelhouse's links are its own local files; an index's must be http(s) URLs.
    local = getattr(source, "serves_local_files", False)
    for candidate in resolution.candidates:
        if not (local and candidate.link.url.startswith("file:")):
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
    fit_warned = bool(warnings)
    minor = None if waived else minor_compat_warning(resolution.variant, detection, compat)
    warnings = [*choice.warnings, *([minor] if minor else []), *warnings, *resolution.warnings]
    reasons = (
        # A source that is there but failed (a hung NVML, a broken nvidia-smi) is a reason too.
        *(
            f"{p.source} failed ({p.outcome}); the next source was asked"
            for p in detection.trace
            if p.failed
        ),
        *detection.notes,  # GPUs left out by CUDA_VISIBLE_DEVICES, capabilities inferred
        # A file gave the driver; the GPUs came from the cheapest source that lists them.
        *(
            [f"the driver from {detection.source}, the GPUs from {detection.gpus_from}"]
            if detection.gpus_from
            else []
        ),
        *choice.reasons,
        f"chose {torch.name} {torch.version} from {resolution.variant.tag}: the newest version"
        " with a wheel for this target, then the newest variant that has it"
        + (" and serves every GPU" if gpu_fit.gpus and chosen.fit == 2 else ""),
        *([fit] if fit and not fit_warned else []),
        *resolution.notes,
    )
    packages = [replace(p, extras=tuple((extras or {}).get(p.name, ()))) for p in packages]
    packages = [_check_hashes(p, (hashes or {}).get(p.name)) for p in packages]
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


def _check_hashes(wheel: PlannedWheel, given: tuple[Sequence[str], str] | None) -> PlannedWheel:
    """``wheel``, checked against the user's ``--hash`` values for it. With no sha256 from
    the index, one given sha256 becomes the one its download must match."""
    if given is None:
        return wheel
    values, origin = given
    sha256s = {value.split(":", 1)[1] for value in values if value.startswith("sha256:")}
    if wheel.sha256 and wheel.sha256.lower() in sha256s:
        return wheel
    if not wheel.sha256 and len(sha256s) == 1:
        return replace(wheel, sha256=next(iter(sha256s)))
    found = f"sha256 {wheel.sha256}" if wheel.sha256 else "no sha256 on its index page"
    raise NoCompatibleWheel(
        f"the planned {wheel.filename} has {found}; no --hash of {origin} matches it",
        hint="the hashes are for another build: pin its variant (--variant, or a local label"
        " such as torch==2.8.0+cu126), or update the --hash values",
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
