"""Resolve the torch family (torch, torchvision, torchaudio) over one variant.

resolvelib does the search. Every candidate depends on a virtual ``<variant>``
requirement, so all packages of a plan come from the same variant folder (the
same trick as uv's synthetic ``cuda==X`` dependency). Candidates are ordered by
torch version first and variant second: the newest torch any runnable variant
offers wins, then the newest variant that has it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from email.parser import BytesParser
from typing import Protocol, Union

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version
from resolvelib import AbstractProvider, BaseReporter, ResolutionImpossible, Resolver
from resolvelib.resolvers import RequirementInformation

from torchfit.choose.policy import GpuFit
from torchfit.choose.releases import RELEASES, companion_pin, release_of
from torchfit.environment.target import Target
from torchfit.errors import NoCompatibleWheel, ResolutionConflict
from torchfit.index.pages import Link
from torchfit.variants import Variant

log = logging.getLogger(__name__)

FAMILY = ("torch", "torchvision", "torchaudio")
VARIANT = "<variant>"


class PageSource(Protocol):
    """What the resolver needs from an index (IndexClient, or a test double)."""

    def links(self, project: str, variant: Variant) -> list[Link]: ...

    def prefetch(self, project: str, variants: Iterable[Variant]) -> None: ...

    def metadata(self, link: Link) -> bytes | None: ...


@dataclass(frozen=True)
class FamilyRequirement:
    name: str
    specifier: SpecifierSet
    origin: str  # "user" or the candidate that asked for it

    def __str__(self) -> str:
        return f"{self.name}{self.specifier}"


@dataclass(frozen=True)
class VariantRequirement:
    variant: Variant
    origin: str


@dataclass(frozen=True)
class Candidate:
    name: str
    version: Version
    variant: Variant
    link: Link
    fit: int = 1  # 2: its kernels are known to serve every GPU; 1: unknown or nothing to check

    @property
    def sort_key(self) -> tuple[Version, int, tuple[int, tuple[int, ...]]]:
        return (Version(self.version.public), self.fit, self.variant.sort_key())


@dataclass(frozen=True)
class VariantCandidate:
    variant: Variant


Req = Union[FamilyRequirement, VariantRequirement]
Cand = Union[Candidate, VariantCandidate]


def _match_version(version: Version, variant: Variant) -> Version:
    # An unlabeled wheel in the cu102 folder is 1.7.1+cu102 for matching purposes.
    return version if version.local else Version(f"{version}+{variant.tag}")


def _is_exact(specifier: SpecifierSet) -> Version | None:
    """The version an ``==X`` specifier pins (local label dropped), if any."""
    for spec in specifier:
        if spec.operator == "==" and "*" not in spec.version:
            try:
                return Version(Version(spec.version).public)
            except InvalidVersion:
                return None
    return None


def _python_fits(requires_python: str, python: str) -> bool:
    try:
        return SpecifierSet(requires_python).contains(python, prereleases=True)
    except InvalidSpecifier:
        log.debug("ignoring unparsable Requires-Python %r", requires_python)
        return True  # as pip does: a broken constraint is no constraint


def _known_versions(project: str, variant: Variant) -> list[Version]:
    return [
        Version(getattr(release, project))
        for release in RELEASES
        if getattr(release, project, None) and variant.tag in release.variants
    ]


class Provider(AbstractProvider):  # type: ignore[type-arg]
    def __init__(
        self,
        source: PageSource,
        target: Target,
        variants: Sequence[Variant],
        gpu_fit: GpuFit | None = None,
    ) -> None:
        self.source = source
        self.target = target
        self.variants = tuple(variants)
        self.gpu_fit = gpu_fit or GpuFit()
        # torch builds turned away for missing kernels: (version, variant) -> GPUs not served
        self.unserved: dict[tuple[str, str], list[str]] = {}
        # Why a candidate's dependencies are what they are, kept for the chosen ones' reasons.
        self.notes: dict[Candidate, str] = {}

    # -- resolvelib protocol -------------------------------------------------

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
            and _is_exact(info.requirement.specifier)
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
            torch_pin = _is_exact(torch_specifier)
        return lambda: (
            c for c in self._candidates(identifier, specifier, variants, torch_pin) if c not in bad
        )

    def is_satisfied_by(self, requirement: Req, candidate: Cand) -> bool:
        if isinstance(requirement, VariantRequirement):
            return (
                isinstance(candidate, VariantCandidate) and candidate.variant == requirement.variant
            )
        assert isinstance(candidate, Candidate)
        version = _match_version(candidate.version, candidate.variant)
        return requirement.specifier.contains(version, prereleases=True)

    def get_dependencies(self, candidate: Cand) -> Iterator[Req]:
        if isinstance(candidate, VariantCandidate):
            return
        # The variant first: a candidate from the wrong variant is turned away before its
        # metadata is fetched (resolvelib stops reading at the first conflict).
        yield VariantRequirement(candidate.variant, f"{candidate.name} {candidate.version}")
        yield from self._family_dependencies(candidate)

    # -- candidates ----------------------------------------------------------

    def _candidates(
        self,
        project: str,
        specifier: SpecifierSet,
        variants: list[Variant],
        torch_pin: Version | None = None,
    ) -> Iterator[Candidate]:
        exact = _is_exact(specifier)
        if exact is not None:
            # One version: the order is the variant order, so pages can be asked one at a time,
            # those the release table says carry the version first. For torch, builds known to
            # serve every GPU come before builds whose kernel list is unknown.
            def rank(v: Variant) -> tuple[bool, int]:
                fit = self.gpu_fit.judge(exact, v) if project == "torch" else None
                return (exact in _known_versions(project, v), 2 if fit else 1)

            ordered = sorted(variants, key=rank, reverse=True)  # stable: variant order kept
            for variant in ordered:
                yield from sorted(
                    self._from_page(project, variant, specifier),
                    key=lambda c: c.sort_key,
                    reverse=True,
                )
            return
        release = release_of(str(torch_pin)) if torch_pin is not None else None
        paired = getattr(release, project, None) if release else None
        tried: set[Candidate] = set()
        if paired and specifier.contains(paired, prereleases=True):
            # Try first the companion release the table pairs with the pinned torch: each wrong
            # guess costs a metadata download. The metadata still decides.
            for candidate in self._candidates(
                project, specifier & SpecifierSet(f"=={paired}"), variants
            ):
                tried.add(candidate)
                yield candidate
        yield from (c for c in self._in_order(project, specifier, variants) if c not in tried)

    def _in_order(
        self, project: str, specifier: SpecifierSet, variants: list[Variant]
    ) -> Iterator[Candidate]:
        """Candidates best first, asking a variant's page only when it could hold a better one.

        The release table bounds what a retired variant's page can hold (nothing newer than
        its last known release); variants still published for the newest known release, or
        unknown to the table, have no bound and are asked up front, in parallel.
        """
        current = set(RELEASES[-1].variants)
        bounded: list[tuple[Version, Variant]] = []
        open_ended: list[Variant] = []
        for variant in variants:
            known = _known_versions(project, variant)
            matching = [v for v in known if specifier.contains(v, prereleases=True)]
            if variant.tag in current or not known:
                open_ended.append(variant)
            elif matching:
                bounded.append((max(matching), variant))
            # else: a retired variant with no matching release: nothing to find there
        bounded.sort(key=lambda item: (item[0], item[1].sort_key()), reverse=True)
        self.source.prefetch(project, open_ended)
        ready = [c for v in open_ended for c in self._from_page(project, v, specifier)]
        ready.sort(key=lambda c: c.sort_key, reverse=True)
        while ready or bounded:
            while bounded and (
                not ready or (bounded[0][0], 2, bounded[0][1].sort_key()) > ready[0].sort_key
            ):
                _, variant = bounded.pop(0)
                ready += self._from_page(project, variant, specifier)
                ready.sort(key=lambda c: c.sort_key, reverse=True)
            if ready:
                yield ready.pop(0)

    def _from_page(
        self, project: str, variant: Variant, specifier: SpecifierSet
    ) -> list[Candidate]:
        best: dict[Version, tuple[tuple[int, int], Candidate]] = {}
        for link in self.source.links(project, variant):
            candidate = self._candidate(project, variant, link, specifier)
            if candidate is None:
                continue
            _, _, build, wheel_tags = parse_wheel_filename(link.filename)
            rank = self.target.tag_rank(wheel_tags)
            assert rank is not None
            # The best tag for this target wins; among equal tags the highest build number.
            key = (rank, -(build[0] if build else -1))
            if candidate.version not in best or key < best[candidate.version][0]:
                best[candidate.version] = (key, candidate)
        return [candidate for _, candidate in best.values()]

    def _candidate(
        self, project: str, variant: Variant, link: Link, specifier: SpecifierSet
    ) -> Candidate | None:
        try:
            name, version, _, wheel_tags = parse_wheel_filename(link.filename)
        except InvalidWheelFilename:
            return None
        if name != project or link.yanked:
            return None
        label = Variant.from_label(version.local)
        if version.local and label != variant:
            return None  # a +cu118 file in another folder is not this variant's build
        if not specifier.contains(_match_version(version, variant), prereleases=None):
            return None
        if self.target.tag_rank(wheel_tags) is None:
            return None
        if link.requires_python and not _python_fits(
            link.requires_python, self.target.python_full_version
        ):
            return None
        fit = self.gpu_fit.judge(version, variant) if project == "torch" else None
        if fit is False:
            self.unserved[(str(version), variant.tag)] = self.gpu_fit.unserved(version, variant)
            return None
        return Candidate(project, version, variant, link, 2 if fit else 1)

    def _family_dependencies(self, candidate: Candidate) -> list[FamilyRequirement]:
        if candidate.name == "torch":
            return []  # torch's own dependencies are not torch-family: pip takes them from PyPI
        origin = f"{candidate.name} {candidate.version}"
        metadata = self.source.metadata(candidate.link)
        if metadata is None:
            pin = companion_pin(candidate.name, str(candidate.version))
            if pin is None:
                self.notes[candidate] = f"{origin}: no metadata and no release-table row"
                return []
            self.notes[candidate] = (
                f"{origin} needs torch {pin} (release table: no wheel metadata to read)"
            )
            return [FamilyRequirement("torch", SpecifierSet(f"=={pin}"), origin)]
        return list(self._requires_family(metadata, origin))

    def _requires_family(self, metadata: bytes, origin: str) -> Iterator[FamilyRequirement]:
        message = BytesParser().parsebytes(metadata, headersonly=True)
        environment = self.target.marker_environment()
        for line in message.get_all("Requires-Dist") or []:
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                log.debug("%s: unparsable Requires-Dist %r", origin, line)
                continue
            name = canonicalize_name(requirement.name)
            if name not in FAMILY:
                continue
            if requirement.marker and not requirement.marker.evaluate(environment):
                continue
            yield FamilyRequirement(name, requirement.specifier, origin)


@dataclass(frozen=True)
class Resolution:
    variant: Variant
    candidates: tuple[Candidate, ...]
    notes: tuple[str, ...]


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
    provider = Provider(source, target, variants, gpu_fit)
    resolver: Resolver[Req, Cand, str] = Resolver(provider, BaseReporter())
    try:
        result = resolver.resolve(requirements, max_rounds=500)
    except ResolutionImpossible as exc:
        error = _explain(exc, variants, target)
        if provider.unserved and isinstance(error, NoCompatibleWheel):
            error = provider.gpu_fit.explain(provider.unserved)
        raise error from None
    variant = next(c.variant for c in result.mapping.values() if isinstance(c, VariantCandidate))
    chosen = tuple(
        sorted(
            (c for c in result.mapping.values() if isinstance(c, Candidate)),
            key=lambda c: FAMILY.index(c.name),
        )
    )
    notes = tuple(provider.notes[c] for c in chosen if c in provider.notes)
    return Resolution(variant, chosen, notes)


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
        return NoCompatibleWheel(
            f"no wheel of {wanted} for {where}",
            hint="relax the version, or check the Pythons and platforms that release was built for",
        )
    lines = "; ".join(
        f"{c.requirement} (from {c.parent.name} {c.parent.version})"
        if isinstance(c.parent, Candidate)
        else str(c.requirement)
        for c in causes
        if isinstance(c.requirement, FamilyRequirement)
    )
    return ResolutionConflict(f"the requirements conflict: {lines}")
