"""Candidates of one project from the index pages, best first, and their torch-family needs.

Pages are asked lazily: a variant's page only when it could hold a better candidate than
those already in hand (the release table bounds what a retired variant can hold).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from torchfit.choose.gpu_fit import GpuFit
from torchfit.choose.releases import (
    companion_pin,
    current_variants,
    known_versions,
    newest_version,
    release_of,
)
from torchfit.environment.target import Target
from torchfit.index.pages import Link
from torchfit.variants import Variant

log = logging.getLogger(__name__)

FAMILY = ("torch", "torchvision", "torchaudio")


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
class Candidate:
    name: str
    version: Version
    variant: Variant
    link: Link
    # 2: its kernels are known to serve every GPU; 1: unknown or nothing to check; 0: it misses
    # a GPU (kept only for an explicit --variant, and then after every build that does not)
    fit: int = 1

    @property
    def sort_key(self) -> tuple[bool, Version, int, tuple[int, tuple[int, ...]]]:
        return (self.fit > 0, Version(self.version.public), self.fit, self.variant.sort_key())


def match_version(version: Version, variant: Variant) -> Version:
    # An unlabeled wheel in the cu102 folder is 1.7.1+cu102 for matching purposes.
    return version if version.local else Version(f"{version}+{variant.tag}")


def exact_pin(specifier: SpecifierSet) -> Version | None:
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


class CandidateFinder:
    """Reads candidates for the resolver; remembers why some were turned away."""

    def __init__(self, source: PageSource, target: Target, gpu_fit: GpuFit) -> None:
        self.source = source
        self.target = target
        self.gpu_fit = gpu_fit
        # torch builds turned away for missing kernels: (version, variant) -> GPUs not served
        self.unserved: dict[tuple[str, str], list[str]] = {}
        # Why a candidate's dependencies are what they are, kept for the chosen ones' reasons.
        self.notes: dict[Candidate, str] = {}
        # Versions newer than the release table knows, per project: version -> variant tags
        # whose pages list a wheel of it for this target.
        self.fresh: dict[str, dict[Version, set[str]]] = {}

    def prefetch_first_pages(
        self, requirements: Sequence[FamilyRequirement], variants: Sequence[Variant]
    ) -> None:
        """Ask, all at once, the pages the resolution will surely start with: torch's first
        variant page (or every open-ended one, unpinned) and each companion's page there."""
        if not variants:
            return
        pins = {r.name: exact_pin(r.specifier) for r in requirements}
        torch_pin = pins.get("torch")
        first = (
            self._pinned_order("torch", torch_pin, list(variants))[0]
            if torch_pin is not None
            else variants[0]
        )
        pages = {(name, first) for name in pins}
        if "torch" in pins and torch_pin is None:
            pages |= {("torch", v) for v in self._open_ended("torch", list(variants))}
        if len(pages) == 1:
            self.source.links(*pages.pop())
            return
        with ThreadPoolExecutor(max_workers=min(8, len(pages))) as pool:
            list(pool.map(lambda page: self.source.links(*page), sorted(pages, key=str)))

    def _pinned_order(self, project: str, exact: Version, variants: list[Variant]) -> list[Variant]:
        """Variants to ask for one version: those the release table says carry it first; for
        torch, builds known to serve every GPU before builds whose kernels are unknown."""

        def rank(v: Variant) -> tuple[bool, int]:
            fit = self.gpu_fit.judge(exact, v) if project == "torch" else None
            return (exact in known_versions(project, v), 2 if fit else 1)

        return sorted(variants, key=rank, reverse=True)  # stable: variant order kept

    def _open_ended(self, project: str, variants: list[Variant]) -> list[Variant]:
        """Variants with no bound from the table: still published, or unknown to it."""
        current = current_variants()
        return [v for v in variants if v.tag in current or not known_versions(project, v)]

    def candidates(
        self,
        project: str,
        specifier: SpecifierSet,
        variants: list[Variant],
        torch_pin: Version | None = None,
    ) -> Iterator[Candidate]:
        exact = exact_pin(specifier)
        if exact is not None:
            # One version: the order is the variant order, so pages can be asked one at a time,
            # those the release table says carry the version first. For torch, builds known to
            # serve every GPU come before builds whose kernel list is unknown.
            for variant in self._pinned_order(project, exact, variants):
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
            for candidate in self.candidates(
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
        current = current_variants()
        bounded: list[tuple[Version, Variant]] = []
        open_ended: list[Variant] = []
        for variant in variants:
            known = known_versions(project, variant)
            matching = [v for v in known if specifier.contains(v, prereleases=True)]
            if variant.tag in current or not known:
                open_ended.append(variant)
            elif matching:
                bounded.append((max(matching), variant))
            # else: a retired variant with no matching release: nothing to find there
        bounded.sort(key=lambda item: (item[0], item[1].sort_key()), reverse=True)
        self.source.prefetch(project, open_ended)
        ready = [c for v in open_ended for c in self._from_page(project, v, specifier)]
        if self.fresh.get(project) and bounded:
            # The index has a release the table lacks: the table's bounds on retired variants
            # are stale (the new release may be on their pages too), so they are all asked.
            retired = [variant for _, variant in bounded]
            self.source.prefetch(project, retired)
            ready += [c for v in retired for c in self._from_page(project, v, specifier)]
            bounded = []
        ready.sort(key=lambda c: c.sort_key, reverse=True)
        while ready or bounded:
            while bounded and (
                not ready or (True, bounded[0][0], 2, bounded[0][1].sort_key()) > ready[0].sort_key
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
        if not self.target.may_accept(link.filename):
            return None
        try:
            name, version, _, wheel_tags = parse_wheel_filename(link.filename)
        except InvalidWheelFilename:
            return None
        if name != project or link.yanked:
            return None
        label = Variant.from_label(version.local)
        if version.local and label != variant:
            return None  # a +cu118 file in another folder is not this variant's build
        if not specifier.contains(match_version(version, variant), prereleases=None):
            return None
        if self.target.tag_rank(wheel_tags) is None:
            return None
        if link.requires_python and not _python_fits(
            link.requires_python, self.target.python_full_version
        ):
            return None
        newest = newest_version(project)
        if newest is not None and Version(version.public) > newest:
            self.fresh.setdefault(project, {}).setdefault(Version(version.public), set()).add(
                variant.tag
            )
        fit = self.gpu_fit.judge(version, variant) if project == "torch" else None
        if fit is False:
            self.unserved[(str(version), variant.tag)] = self.gpu_fit.unserved(version, variant)
            if self.gpu_fit.enforce:
                return None
        return Candidate(project, version, variant, link, {True: 2, None: 1, False: 0}[fit])

    def fresh_warnings(self, chosen: Sequence[Candidate]) -> list[str]:
        """Say so when the index holds releases newer than the table: which were seen, on which
        variant pages, and that the chosen build's facts come from the pages themselves."""
        lines = []
        for project, seen in sorted(self.fresh.items()):
            newest = newest_version(project)
            versions = sorted(seen, reverse=True)
            found = "; ".join(
                f"{v} on {', '.join(sorted(seen[v], key=_tag_order, reverse=True))}"
                for v in versions
            )
            used = [c for c in chosen if c.name == project and Version(c.version.public) in seen]
            plan = (
                f"; the plan uses {used[0].version}, its variants read from the index pages"
                " and its kernel lists assumed from older releases"
                if used
                else ""
            )
            lines.append(
                f"torchfit's release table ends at {project} {newest}, but the index lists"
                f" newer releases ({found}){plan}: update torchfit for exact facts"
            )
        return lines

    def dependencies(self, candidate: Candidate) -> list[FamilyRequirement]:
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
        from email.parser import BytesParser  # only here: most plans read no metadata

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


def _tag_order(tag: str) -> tuple[int, tuple[int, ...]]:
    return Variant.parse(tag).sort_key()
