"""The user's requirements, split: torch-family ones for the resolver, the rest for pip."""

from __future__ import annotations

import re
from collections.abc import Sequence

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from torchfit.choose.candidates import FAMILY, FamilyRequirement
from torchfit.environment.target import Target
from torchfit.errors import UsageError


def split_requirements(
    requirements: Sequence[str], target: Target
) -> tuple[list[FamilyRequirement], list[str]]:
    """Torch-family requirements for the resolver; everything else goes to pip as written.

    A torch-family requirement whose marker does not hold for the target is dropped.
    """
    family, others = [], []
    for text in requirements:
        _check_size(text)
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
