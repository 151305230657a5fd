"""Which GPU architectures each torch CUDA build carries kernels for: lookups over the
release table (``releases.py``), whose rows name the lists defined in ``kernels.py``.

``None`` means "not known": a caller must never read it as "compatible".
"""

from __future__ import annotations

from packaging.version import Version

from torchfit.choose import releases as _releases
from torchfit.choose.kernels import DROPS, FLOORS, PLATFORMS, Arch, ArchList, parse_arch_list
from torchfit.variants import Variant

__all__ = [
    "PLATFORMS",
    "Arch",
    "ArchList",
    "arch_list",
    "floor_miss",
    "last_known_arch_list",
    "min_torch_for",
    "parse_arch_list",
]


def _series(torch_version: str) -> Version:
    version = Version(torch_version)
    return Version(f"{version.major}.{version.minor}")


def _check_platform(platform: str) -> None:
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r}; expected one of {PLATFORMS}")


def _row_for(torch_version: str) -> _releases.Release | None:
    """The row of ``torch_version``, else the newest row of its minor series (2.8.1 -> 2.8.0)."""
    series = _series(torch_version)  # validates the version first
    exact = _releases.release_of(torch_version)
    if exact is not None:
        return exact
    same = [r for r in _releases.RELEASES if _series(r.torch) == series]
    return max(same, key=lambda r: Version(r.torch)) if same else None


def arch_list(torch_version: str, variant: Variant, platform: str) -> ArchList | None:
    """The arch list of torch ``torch_version`` built for ``variant`` on ``platform``.

    ``torch_version`` may carry a local label ("2.8.0+cu128"); ``variant`` decides the build.
    A version without a row of its own takes the newest row of its minor series.
    ``platform`` is "linux" (x86_64), "linux-aarch64", "windows" or "macos". Returns None
    when unknown (and for CPU, ROCm and XPU builds). Raises ValueError for an unknown
    platform and packaging's InvalidVersion (a ValueError) for a malformed version.

    >>> str(arch_list("2.7.1+cu128", Variant.parse("cu128"), "linux"))
    'sm_75 sm_80 sm_86 sm_90 sm_100 sm_120 compute_120'
    """
    _check_platform(platform)
    if variant.kind != "cuda":
        return None
    row = _row_for(torch_version)
    return row.arch_list(variant.tag, platform) if row is not None else None


def last_known_arch_list(
    torch_version: str, variant: Variant, platform: str
) -> tuple[str, ArchList] | None:
    """The newest known list of the same variant and platform from an older release series.

    Lists rarely grow back (2.8 re-adding sm_70 to cu128 is the one known case), so for a
    build with no list of its own this is the best guess: a torch series and its list.

    >>> series, kernels = last_known_arch_list("2.13.0", Variant.parse("cu129"), "linux")
    >>> series, str(kernels).split()[0]
    ('2.10', 'sm_70')
    """
    _check_platform(platform)
    series = _series(torch_version)
    older = [
        (Version(r.torch), archs)
        for r in _releases.RELEASES
        if _series(r.torch) < series and (archs := r.arch_list(variant.tag, platform))
    ]
    if not older:
        return None
    version, archs = max(older, key=lambda item: item[0])
    return f"{version.major}.{version.minor}", archs


def min_torch_for(cc: Arch, platform: str) -> list[tuple[str, str]]:
    """(first torch minor, variant tag) pairs whose builds serve ``cc``, oldest first.

    One pair per variant: the first release whose variants include it and whose known arch
    list serves the GPU. For error messages ("RTX 5090 needs torch >= 2.7 with cu128").
    Raises ValueError for an unknown platform.

    >>> min_torch_for((12, 0), "linux")[0]
    ('2.7', 'cu128')
    """
    _check_platform(platform)
    first: dict[str, tuple[Version, Variant]] = {}
    for release in sorted(_releases.RELEASES, key=lambda r: Version(r.torch)):
        for tag in release.variants:
            variant = Variant.from_label(tag)
            if variant is None or tag in first:
                continue
            archs = release.arch_list(tag, platform)
            if archs is not None and archs.serves(cc):
                first[tag] = (_series(release.torch), variant)
    ordered = sorted(first.values(), key=lambda item: (item[0], item[1].sort_key()))
    return [(str(series), variant.tag) for series, variant in ordered]


def floor_miss(torch_version: str, variant: Variant, cc: Arch) -> str | None:
    """Why a CUDA build cannot serve a GPU of capability ``cc`` whatever its (unknown) list
    holds: its CUDA is below the GPU's floor, or builds like it dropped such GPUs. None when
    neither rule excludes it (which proves nothing: the list is still unknown).

    >>> floor_miss("2.13.0", Variant.parse("cu126"), (10, 0))
    'sm_100 needs a CUDA >= 12.8 build'
    >>> floor_miss("2.13.0", Variant.parse("cu128"), (10, 0)) is None
    True
    """
    if variant.cuda is None:
        return None
    floors = [f for f in FLOORS if f.arch <= cc]
    floor = max(floors, key=lambda f: f.arch) if floors else None
    if floor is not None and variant.cuda < floor.cuda:
        return f"sm_{cc[0]}{cc[1]} needs a CUDA >= {floor.cuda[0]}.{floor.cuda[1]} build"
    series = _series(torch_version)
    for drop in DROPS:
        if (
            cc < drop.below
            and variant.cuda >= drop.cuda
            and series >= Version(drop.since)
            and (not drop.tags or variant.tag in drop.tags)
        ):
            since = f" of torch >= {drop.since}" if drop.since != "1.0" else ""
            return f"{variant.tag} builds{since} carry no sm_{cc[0]}{cc[1]}"
    return None
