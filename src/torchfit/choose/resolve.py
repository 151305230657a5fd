"""Resolve the torch family (torch, torchvision, torchaudio) over one variant.

resolvelib does the search. Every candidate depends on a virtual ``<variant>``
requirement, so all packages of a plan come from the same variant folder (the
same trick as uv's synthetic ``cuda==X`` dependency). Candidates are ordered by
torch version first and variant second: the newest torch any runnable variant
offers wins, then the newest variant that has it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Union

from packaging.specifiers import SpecifierSet
from resolvelib import (
    AbstractProvider,
    BaseReporter,
    ResolutionImpossible,
    ResolutionTooDeep,
    Resolver,
)
from resolvelib.resolvers import RequirementInformation

from torchfit.choose.candidates import (
    FAMILY,
    Candidate,
    CandidateFinder,
    FamilyRequirement,
    PageSource,
    exact_pin,
    match_version,
)
from torchfit.choose.gpu_fit import GpuFit
from torchfit.environment.target import Target
from torchfit.errors import NoCompatibleWheel, ResolutionConflict
from torchfit.variants import Variant

VARIANT = "<variant>"


@dataclass(frozen=True)
class VariantRequirement:
    variant: Variant
    origin: str


@dataclass(frozen=True)
class VariantCandidate:
    variant: Variant


Req = Union[FamilyRequirement, VariantRequirement]
Cand = Union[Candidate, VariantCandidate]


class Provider(AbstractProvider):  # type: ignore[type-arg]
    """resolvelib's protocol over a :class:`CandidateFinder` and the variants to consider."""

    def __init__(self, finder: CandidateFinder, variants: Sequence[Variant]) -> None:
        self.finder = finder
        self.variants = tuple(variants)

    def identify(self, requirement_or_candidate: Req | Cand) -> str:
        if isinstance(requirement_or_candidate, (VariantRequirement, VariantCandidate)):
            return VARIANT
        return requirement_or_candidate.name

    def get_preference(
        self,
        identifier: str,
        resolutions: Mapping[str, Cand],
        candidates: Mapping[str, Iterator[Cand]],
        information: Mapping[str, Iterator[RequirementInformation[Req, Cand]]],
        backtrack_causes: Sequence[RequirementInformation[Req, Cand]],
    ) -> tuple[bool, bool, bool]:
        pinned = any(
            isinstance(info.requirement, FamilyRequirement)
            and exact_pin(info.requirement.specifier)
            for info in information[identifier]
        )
        # Exact pins first, then torch (its version decides), then the variant, then companions.
        return (not pinned, identifier != "torch", identifier != VARIANT)

    def find_matches(
        self,
        identifier: str,
        requirements: Mapping[str, Iterator[Req]],
        incompatibilities: Mapping[str, Iterator[Cand]],
    ) -> Callable[[], Iterator[Cand]]:
        bad = set(incompatibilities.get(identifier, ()))
        allowed = set(self.variants)
        for requirement in requirements.get(VARIANT, ()):
            assert isinstance(requirement, VariantRequirement)
            allowed &= {requirement.variant}
        if identifier == VARIANT:
            found = [VariantCandidate(v) for v in self.variants if v in allowed]
            return lambda: (c for c in found if c not in bad)
        specifier = SpecifierSet()
        for requirement in requirements[identifier]:
            assert isinstance(requirement, FamilyRequirement)
            specifier &= requirement.specifier
        variants = [v for v in self.variants if v in allowed]
        torch_pin = None
        if identifier != "torch":
            torch_specifier = SpecifierSet()
            for requirement in requirements.get("torch", ()):
                assert isinstance(requirement, FamilyRequirement)
                torch_specifier &= requirement.specifier
            torch_pin = exact_pin(torch_specifier)
        return lambda: (
            c
            for c in self.finder.candidates(identifier, specifier, variants, torch_pin)
            if c not in bad
        )

    def is_satisfied_by(self, requirement: Req, candidate: Cand) -> bool:
        if isinstance(requirement, VariantRequirement):
            return (
                isinstance(candidate, VariantCandidate) and candidate.variant == requirement.variant
            )
        assert isinstance(candidate, Candidate)
        version = match_version(candidate.version, candidate.variant)
        return requirement.specifier.contains(version, prereleases=True)

    def get_dependencies(self, candidate: Cand) -> Iterator[Req]:
        if isinstance(candidate, VariantCandidate):
            return
        # The variant first: a candidate from the wrong variant is turned away before its
        # metadata is fetched (resolvelib stops reading at the first conflict).
        yield VariantRequirement(candidate.variant, f"{candidate.name} {candidate.version}")
        yield from self.finder.dependencies(candidate)


@dataclass(frozen=True)
class Resolution:
    variant: Variant
    candidates: tuple[Candidate, ...]
    notes: tuple[str, ...]
    warnings: tuple[str, ...] = ()  # the index knows releases the table does not


def resolve(
    requirements: Sequence[FamilyRequirement],
    *,
    source: PageSource,
    target: Target,
    variants: Sequence[Variant],
    gpu_fit: GpuFit | None = None,
) -> Resolution:
    """Pick one wheel per requested family package (and torch), all from one variant.

    Raises NoCompatibleWheel when some requirement has no wheel for the target in any of
    ``variants``, and ResolutionConflict when the requirements contradict each other.
    """
    finder = CandidateFinder(source, target, gpu_fit or GpuFit())
    finder.prefetch_first_pages(requirements, variants)
    provider = Provider(finder, variants)
    resolver: Resolver[Req, Cand, str] = Resolver(provider, BaseReporter())
    try:
        result = resolver.resolve(requirements, max_rounds=500)
    except ResolutionTooDeep:
        raise ResolutionConflict(
            "the requirements could not be resolved within 500 rounds",
            hint="pin torch (e.g. torch==2.8.0) so that fewer versions are tried",
        ) from None
    except ResolutionImpossible as exc:
        error = _explain(exc, variants, target)
        if finder.unserved and isinstance(error, NoCompatibleWheel):
            error = finder.gpu_fit.explain(finder.unserved)
        raise error from None
    variant = next(c.variant for c in result.mapping.values() if isinstance(c, VariantCandidate))
    chosen = tuple(
        sorted(
            (c for c in result.mapping.values() if isinstance(c, Candidate)),
            key=lambda c: FAMILY.index(c.name),
        )
    )
    notes = tuple(finder.notes[c] for c in chosen if c in finder.notes)
    return Resolution(variant, chosen, notes, tuple(finder.fresh_warnings(chosen)))


def _explain(exc: ResolutionImpossible, variants: Sequence[Variant], target: Target) -> Exception:  # type: ignore[type-arg]
    causes = exc.causes
    where = (
        f"Python {target.python_version[0]}.{target.python_version[1]} on {target.platforms[0]}"
        f" in {', '.join(v.tag for v in variants)}"
    )
    user = [
        c.requirement
        for c in causes
        if c.parent is None and isinstance(c.requirement, FamilyRequirement)
    ]
    if len(causes) == len(user) or not causes:
        wanted = ", ".join(str(r) for r in user) or "the requirements"
        # "Relax the version" only where a version was given.
        pinned = any(str(r.specifier) for r in user)
        return NoCompatibleWheel(
            f"no wheel of {wanted} for {where}",
            hint="relax the version, or check the Pythons and platforms that release was built for"
            if pinned
            else "check the Pythons and platforms torch is built for (--python-version,"
            " --platform)",
        )
    lines = "; ".join(
        f"{c.requirement} (from {c.parent.name} {c.parent.version})"
        if isinstance(c.parent, Candidate)
        else str(c.requirement)
        for c in causes
        if isinstance(c.requirement, FamilyRequirement)
    )
    return ResolutionConflict(f"the requirements conflict: {lines}")
