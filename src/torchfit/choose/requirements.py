"""The user's requirements, split: torch-family ones for the resolver, the rest for the
installer as written (each with where it came from)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from torchfit.choose.candidates import FAMILY, FamilyRequirement
from torchfit.choose.reqfile import FileLine
from torchfit.environment.target import Target
from torchfit.errors import UsageError
from torchfit.variants import Variant

COMMAND_LINE = "command line"


@dataclass(frozen=True)
class Passed:
    """A line handed to the installer unchanged: a requirement, an option or a constraint."""

    line: str  # as the user wrote it
    origin: str  # "FILE:LINE", or "command line"
    constraint: bool = False
    installer_line: str = ""  # what the installer reads: relative paths made absolute

    def __str__(self) -> str:
        return self.installer_line or self.line

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "origin": self.origin, "constraint": self.constraint}


@dataclass(frozen=True)
class Asked:
    """What the requirements ask: the torch family (constraints applied), the lines for the
    installer, and what the family lines add: extras, ``--hash`` values, a variant label."""

    family: tuple[FamilyRequirement, ...]
    passthrough: tuple[Passed, ...]
    extras: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    hashes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # name -> "sha256:…"
    hash_origins: Mapping[str, str] = field(default_factory=dict)
    variant: Variant | None = None  # the local label of a pin such as torch==2.8.0+cu126
    variant_origin: str = ""


def split_requirements(
    requirements: Sequence[str], target: Target
) -> tuple[list[FamilyRequirement], list[str]]:
    """Torch-family requirements for the resolver; everything else goes to pip as written.

    A torch-family requirement whose marker does not hold for the target is dropped.
    """
    asked = ask(requirements, target)
    return list(asked.family), [passed.line for passed in asked.passthrough]


def ask(requirements: Sequence[str], target: Target, lines: Sequence[FileLine] = ()) -> Asked:
    """Split the command line's ``requirements`` and the lines of ``-r``/``-c`` files.

    Constraints narrow the family requirements (torch's always: every family member pulls
    it in); a constraint on a family member nobody asked for adds nothing, as in pip.
    Raises UsageError for a malformed requirement, a family requirement torchfit cannot
    plan (a URL, ``-e``), two local labels, and no family requirement at all.
    """
    wanted: dict[str, list[tuple[Requirement, str]]] = {}
    constraints: list[tuple[Requirement, str]] = []
    passthrough: list[Passed] = []
    for text in requirements:
        _check_size(text)
        requirement = _parse(text, f"invalid requirement {text!r}")
        if not _is_family(requirement):
            passthrough.append(Passed(text, COMMAND_LINE, installer_line=text))
        elif _planned(requirement, text, target):
            name = canonicalize_name(requirement.name)
            wanted.setdefault(name, []).append((requirement, COMMAND_LINE))
    hashes: dict[str, tuple[str, ...]] = {}
    hash_origins: dict[str, str] = {}
    for line in lines:
        family = _family_line(line, target)
        if family is None:
            passthrough.append(Passed(line.text, line.origin, line.constraint, str(line)))
        elif family is not _SKIPPED:
            name = canonicalize_name(family.name)
            if line.hashes:
                hashes[name] = (*hashes.get(name, ()), *line.hashes)
                hash_origins.setdefault(name, line.origin)
            if line.constraint:
                constraints.append((family, line.origin))
            else:
                wanted.setdefault(name, []).append((family, line.origin))
    if not wanted:
        raise UsageError(
            "no torch-family requirement given (or none whose marker holds for this target)",
            hint="e.g. torchfit plan torch==2.8.0 torchvision",
        )
    return _asked(wanted, constraints, passthrough, hashes, hash_origins)


def _asked(
    wanted: dict[str, list[tuple[Requirement, str]]],
    constraints: list[tuple[Requirement, str]],
    passthrough: list[Passed],
    hashes: dict[str, tuple[str, ...]],
    hash_origins: dict[str, str],
) -> Asked:
    for constraint, origin in constraints:
        name = canonicalize_name(constraint.name)
        if constraint.extras:
            raise UsageError(f"{origin}: a constraint cannot have extras ({constraint})")
        if name in wanted or name == "torch":
            wanted.setdefault(name, []).append((constraint, origin))
    family = []
    extras: dict[str, tuple[str, ...]] = {}
    for member in sorted(wanted, key=FAMILY.index):
        specifier = SpecifierSet()
        for requirement, _ in wanted[member]:
            specifier &= requirement.specifier  # pip's rule: every requirement holds
        family.append(FamilyRequirement(member, specifier, "user"))
        named = sorted({extra for requirement, _ in wanted[member] for extra in requirement.extras})
        if named:
            extras[member] = tuple(named)
    variant, variant_origin = _label(
        (requirement, origin) for pairs in wanted.values() for requirement, origin in pairs
    )
    return Asked(
        tuple(family), tuple(passthrough), extras, hashes, hash_origins, variant, variant_origin
    )


_SKIPPED: Any = object()  # a family line whose marker does not hold for the target


def _family_line(line: FileLine, target: Target) -> Requirement | None:
    """The family requirement a file's line makes; None for a line the installer gets."""
    if line.kind in ("path", "url"):
        if _names_family(line.requirement):
            raise UsageError(
                f"{line.origin}: {line.text!r}: torchfit chooses the file for the torch family",
                hint="write a version requirement such as torch==X.Y.Z",
            )
        return None
    if line.kind != "named":
        return None  # an option, or -e: a folder's or a repository's name says nothing sure
    name = _LEADING_NAME.match(line.requirement)
    if name and canonicalize_name(name.group(0)) not in FAMILY:
        return None  # the installer parses it, as it would the user's own file (and fast)
    _check_size(line.requirement)
    requirement = _parse(line.requirement, f"{line.origin}: invalid requirement")
    if not _is_family(requirement):
        return None
    return requirement if _planned(requirement, line.text, target, line.origin) else _SKIPPED


_LEADING_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(?=\s*(\[|@|[<>=!~;(]|$))")
_ARCHIVE = re.compile(
    r"([A-Za-z0-9._]+?)-[0-9][^/\\]*\.(whl|zip|tar\.gz|tgz|tar\.bz2|tar\.xz)$", re.I
)


def _names_family(text: str) -> bool:
    """Whether a path or URL names a distribution file of the family (torch-2.8.0-….whl)."""
    found = _ARCHIVE.search(text.split(";", 1)[0].strip().split("#", 1)[0])
    return found is not None and canonicalize_name(found.group(1)) in FAMILY


def _parse(text: str, prefix: str) -> Requirement:
    try:
        return Requirement(text)
    except InvalidRequirement as exc:
        detail = str(exc).splitlines()[0]
        raise UsageError(f"{prefix}: {detail}") from None


def _is_family(requirement: Requirement) -> bool:
    return canonicalize_name(requirement.name) in FAMILY


def _planned(requirement: Requirement, text: str, target: Target, origin: str = "") -> bool:
    """Whether a family requirement takes part (its marker holds); raises for a URL."""
    where = f"{origin}: " if origin else ""
    if requirement.url:
        name = canonicalize_name(requirement.name)
        raise UsageError(
            f"{where}{text!r}: torchfit chooses the file for {name} itself",
            hint=f"write a version requirement such as {name}==X.Y.Z",
        )
    return _marker_holds(requirement, target)


def _label(pairs: Iterable[tuple[Requirement, str]]) -> tuple[Variant | None, str]:
    """The variant the local labels of ``==`` pins name (``torch==2.8.0+cu126``), if any."""
    found: dict[Variant, str] = {}
    for requirement, origin in pairs:
        for spec in requirement.specifier:
            if spec.operator != "==" or "+" not in spec.version:
                continue
            label = spec.version.split("+", 1)[1]
            where = "" if origin == COMMAND_LINE else f"{origin}: "
            try:
                variant = Variant.parse(label)
            except UsageError as error:
                raise UsageError(
                    f"{where}the local label of {requirement} names no variant: {error.message}",
                    hint=error.hint,
                ) from None
            found.setdefault(variant, f"{requirement}" + (f" ({origin})" if where else ""))
    if len(found) > 1:
        raise UsageError(
            "the local labels of the requirements name two variants: " + ", ".join(found.values()),
            hint="one variant serves the whole torch family: label the pins alike",
        )
    for variant, origin in found.items():
        return variant, origin
    return None, ""


def _marker_holds(requirement: Requirement, target: Target) -> bool:
    if requirement.marker is None:
        return True
    # packaging fills what the environment lacks from the running interpreter: for another
    # machine, the host's kernel would answer. Say so instead.
    unknown = [name for name in _HOST_ONLY if name in str(requirement.marker)]
    if unknown and target.interpreter is None:
        raise UsageError(
            f"cannot evaluate the marker of {str(requirement)!r}: {unknown[0]} is not known"
            " for a --python-version/--platform target",
            hint="drop the marker, or plan with --python on that machine",
        )
    try:
        return requirement.marker.evaluate(target.marker_environment())
    except Exception as exc:  # packaging raises several types for markers it cannot evaluate
        raise UsageError(f"cannot evaluate the marker of {str(requirement)!r}: {exc}") from None


_HOST_ONLY = ("platform_release", "platform_version")
_LONGEST = 1000
_LONG_NUMBER = re.compile(r"\d{31,}")


def _check_size(text: str) -> None:
    # packaging turns each number into an int: thousands of digits are a ValueError deep
    # inside it (and no version has them), so say so here, in the user's words.
    if len(text) > _LONGEST:
        raise UsageError(f"a requirement of {len(text)} characters is too long: {text[:40]!r}…")
    if _LONG_NUMBER.search(text):
        raise UsageError(f"a version number in {text[:60]!r} is too long", hint="e.g. torch==2.8.0")


def requested_variant(flag: Variant | None, asked: Asked) -> Variant | None:
    """The explicit variant: ``--variant``, or the one the local labels name; both must agree.

    Raises UsageError when they do not.
    """
    if asked.variant is None:
        return flag
    if flag is not None and flag != asked.variant:
        raise UsageError(
            f"--variant {flag.tag} disagrees with the local label of {asked.variant_origin}",
            hint="drop one of them, or make them name the same variant",
        )
    return asked.variant
