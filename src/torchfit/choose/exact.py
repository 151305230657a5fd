"""The one wheel of an exact version (local label and all) for a target: what ``restore``
reinstalls when its record names a version but no file."""

from __future__ import annotations

from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from torchfit.choose.candidates import PageSource
from torchfit.environment.target import Target
from torchfit.variants import Variant


def exact_wheel(
    source: PageSource, project: str, version: str, target: Target
) -> tuple[str, str | None] | None:
    """(URL, sha256) of the best-tagged wheel of ``project`` ``version`` for ``target``, from
    the variant folder its local label names; None without a label (it came from the user's
    own index, where pip finds it) or without such a file."""
    variant = Variant.from_label(version.partition("+")[2])
    try:
        wanted = Version(version)
    except InvalidVersion:
        return None
    if variant is None:
        return None
    best: tuple[int, str, str | None] | None = None
    for link in source.links(project, variant):
        try:
            _, found, _, tags = parse_wheel_filename(link.filename)
        except InvalidWheelFilename:
            continue
        rank = target.tag_rank(tags)
        if found == wanted and rank is not None and (best is None or rank < best[0]):
            best = (rank, link.url, link.sha256)
    return (best[1], best[2]) if best else None
