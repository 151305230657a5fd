"""Which GPU architectures each torch CUDA wheel carries kernels for, each row with its source.

A build *serves* compute capability X.Y when it holds SASS ``sm_XZ`` of the same major with
Z <= Y, or PTX ``compute_AB`` with (A, B) <= (X, Y) (the driver JIT-compiles PTX for newer GPUs).
``None`` means "not known": a caller must never read it as "compatible".

Sources (see shared reference "Item 4"): pytorch/builder release-branch build scripts (torch
1.8-2.5), pytorch/pytorch ``.ci/manywheel/build_cuda.sh`` main-branch snapshots, the
pytorch/test-infra build helper, and runtime ``torch.cuda.get_arch_list()`` output or "supports
CUDA capabilities ..." warnings quoted in public files and GitHub issues.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.version import Version

from torchfit.choose.releases import RELEASES
from torchfit.variants import Variant

Arch = tuple[int, int]
PLATFORMS = ("linux", "linux-aarch64", "windows", "macos")  # "linux" is x86_64

_BUILD_TOKEN = re.compile(r"(\d+)\.(\d+)([af]?)(\+ptx)?", re.IGNORECASE)
_RUNTIME_TOKEN = re.compile(r"(sm|compute)_(\d+)(\d)([af]?)", re.IGNORECASE)


@dataclass(frozen=True)
class ArchList:
    """The kernel architectures of one build: SASS cubins and PTX, ascending."""

    sass: tuple[Arch, ...]
    ptx: tuple[Arch, ...]
    source: str
    note: str = ""  # why this list was chosen where sources conflict

    def serves(self, cc: Arch) -> bool:
        """True when a GPU of compute capability ``cc`` can run this build's kernels."""
        return any(major == cc[0] and minor <= cc[1] for major, minor in self.sass) or any(
            arch <= cc for arch in self.ptx
        )

    def __str__(self) -> str:
        """``sm_75 sm_80 ... compute_120``, as ``torch.cuda.get_arch_list()`` writes it."""
        return " ".join(
            [f"sm_{a}{b}" for a, b in self.sass] + [f"compute_{a}{b}" for a, b in self.ptx]
        )


def parse_arch_list(text: str) -> tuple[tuple[Arch, ...], tuple[Arch, ...]]:
    """(SASS, PTX) architectures of a build-script or runtime arch list, sorted and unique.

    Accepts ``TORCH_CUDA_ARCH_LIST`` text ("3.7+PTX;5.0", ``;``/space/comma separated) and
    ``get_arch_list()`` text ("sm_75 compute_120"). Arch-specific cubins ("9.0a", "sm_100a")
    run on that exact GPU only and are left out, so the result never over-claims.
    Raises ValueError for any other token.

    >>> parse_arch_list("3.7+PTX;5.0;6.0")
    (((3, 7), (5, 0), (6, 0)), ((3, 7),))
    >>> parse_arch_list("sm_75 sm_120 compute_120")
    (((7, 5), (12, 0)), ((12, 0),))
    """
    sass: set[Arch] = set()
    ptx: set[Arch] = set()
    for token in re.split(r"[;,\s]+", text.strip()):
        if not token:
            continue
        if build := _BUILD_TOKEN.fullmatch(token):
            arch = (int(build.group(1)), int(build.group(2)))
            if not build.group(3):
                sass.add(arch)
                if build.group(4):
                    ptx.add(arch)
        elif runtime := _RUNTIME_TOKEN.fullmatch(token):
            arch = (int(runtime.group(2)), int(runtime.group(3)))
            if not runtime.group(4):
                (sass if runtime.group(1).lower() == "sm" else ptx).add(arch)
        else:
            raise ValueError(f"not a CUDA architecture: {token!r} in {text!r}")
    return tuple(sorted(sass)), tuple(sorted(ptx))


@dataclass(frozen=True)
class ArchRow:
    """One table row: torch minor series ``first``..``last`` (inclusive) x variants x platform."""

    first: Version
    last: Version
    variants: frozenset[str]
    platform: str
    archs: ArchList


def _row(
    first: str, last: str, variants: str, platform: str, arch_text: str, source: str, note: str = ""
) -> ArchRow:
    sass, ptx = parse_arch_list(arch_text)
    archs = ArchList(sass, ptx, source, note)
    return ArchRow(Version(first), Version(last), frozenset(variants.split()), platform, archs)


# pytorch/builder release branches (lts/release/1.8, release/1.9 ... release/2.5), as read.
_BUILDER = {
    "1.8": "7e44027ebad0",
    "1.9": "0877fd10dd14",
    "1.10": "f0f41b25781a",
    "1.11": "e77e5d077c18",
    "1.12": "049415d44cf3",
    "1.13": "d08f22640ad6",
    "2.0": "9f0fad92f342",
    "2.1": "55d40b1b0637",
    "2.2": "af60d1144744",
    "2.3": "ba10bae9fe9b",
    "2.4": "4ce1afeb2262",
    "2.5": "aec5fb5de238",
}


def _pb(first: str, last: str, variants: str, platform: str, arch_text: str) -> ArchRow:
    """A row read from the pytorch/builder release branches ``first``..``last``."""
    lo, hi = Version(first), Version(last)
    commits = "/".join(sha for minor, sha in _BUILDER.items() if lo <= Version(minor) <= hi)
    if platform == "windows":
        script = "windows/cudaNNN.bat"
    else:
        script = "manywheel/build.sh" if lo < Version("1.11") else "manywheel/build_cuda.sh"
    branches = f"release/{first}" if first == last else f"release/{first}..{last}"
    source = f"pytorch/builder {branches} @{commits} {script}"
    return _row(first, last, variants, platform, arch_text, source)


_MAIN = "pytorch/pytorch main @00c7a380, @799d09f2 .ci/manywheel/build_cuda.sh"
_CU126 = (
    f"{_MAIN}; pytorch/test-infra @93dacaeab01d pytorch_pkg_helpers/cuda.py (12.6); "
    "runtime warning in remsky/Kokoro-FastAPI#306 (cu12x, pre-2.7)"
)
_CU126_NOTE = (
    "release branches for 2.6+ were not readable; both main snapshots, the test-infra 12.6 "
    "helper and the runtime warning agree. builder main @7aafdf05c402^ (2024-10-18) had "
    "9.0+PTX for cu124: not taken, no runtime report shows compute_90 (and without it we "
    "never over-claim)"
)
_WIN26 = "runtime warning in lllyasviel/FramePack#702 (torch 2.6 cu126, Windows)"
_CU128_27 = (
    "runtime get_arch_list() quoted in public files (ids 57372906612, 69138811924, 53200278653)"
)
_CU128_27_NOTE = (
    "a doc's unverified 'expected output' (id 33623286120) adds sm_50 sm_60 sm_70: rejected, "
    "three runtime reports and the 12.8 build-script comment dropping sm_50-sm_60 disagree; "
    "sm_70 came back only in 2.8 (pytorch/pytorch#157517)"
)
_CU128_28 = (
    "runtime arch lists quoted in public files "
    "(2.8.0: id 70326904370; 2.9.1: 63196451440; 2.10.0: 66624334109)"
)
_CU128_28_NOTE = "sm_70 re-added for 2.8 (pytorch/pytorch#157517); main build_cuda.sh agrees"
_CU128_211 = "runtime warning quoted in public files (2.11.0: ids 69482294272, 53069264577)"
_CU128_211_NOTE = "sm_70 dropped again (the 2.11 warning lists sm_75 and up)"
_CU129_NOTE = (
    "main snapshots of the 2.8 era and later (release branches not readable); the cu128 "
    "wheels of 2.8-2.10 also carry sm_70"
)
_CU130 = (
    "runtime arch lists quoted in public files "
    "(2.10.0: id 57474956770; 2.13.0: 61369557095; 2.14.1: 71324464928)"
)
_CU130_NOTE = (
    "build_cuda.sh says 12.0+PTX, runtime lists show no compute_120: runtime taken (PTX "
    "would only serve a future major); 2.9 from the 13.0 main snapshot's SASS list"
)
_CU132 = "runtime get_arch_list() quoted in a public file (2.13.0+cu132: id 59672454506)"
_CU132_NOTE = "as cu130, runtime over build script; 2.12 and 2.14 assumed like 2.13"
_ARM = (
    "pytorch/pytorch main @799d09f2 .ci/manywheel/build_cuda.sh; "
    "pytorch/test-infra @27bde84066fb pytorch_pkg_helpers/cuda.py"
)
_ARM_NOTE = "build script is the only source (PTX kept); bounded like x86_64 cu130"

_L37 = "3.7;5.0;6.0;7.0"
_L86 = "3.7;5.0;6.0;7.0;7.5;8.0;8.6"
_L12 = "5.0;6.0;7.0;7.5;8.0;8.6;9.0"
_W75 = "3.7+PTX;5.0;6.0;6.1;7.0;7.5"
_W86 = "3.7+PTX;5.0;6.0;6.1;7.0;7.5;8.0;8.6"
_W12 = "5.0;6.0;6.1;7.0;7.5;8.0;8.6;9.0"
_SM75 = "sm_75 sm_80 sm_86 sm_90 sm_100 sm_120"

# The table. One row per (minor series range, variants, platform); rows never overlap.
ROWS: tuple[ArchRow, ...] = (
    # --- Linux x86_64, pytorch/builder release branches
    _pb("1.8", "1.8", "cu101 cu102", "linux", _L37),
    _pb("1.8", "1.8", "cu110", "linux", "3.7;5.0;6.0;7.0;7.5;8.0"),
    _pb("1.8", "1.8", "cu111", "linux", _L86),
    _pb("1.9", "1.9", "cu102", "linux", _L37),
    _pb("1.9", "1.9", "cu111", "linux", _L86),
    _pb("1.10", "1.10", "cu102", "linux", _L37),
    _pb("1.10", "1.10", "cu111 cu113", "linux", _L86),
    _pb("1.11", "1.11", "cu102", "linux", _L37),
    _pb("1.11", "1.11", "cu113 cu115", "linux", _L86),
    _pb("1.12", "1.12", "cu102", "linux", _L37),
    _pb("1.12", "1.12", "cu113 cu116", "linux", _L86),
    _pb("1.13", "1.13", "cu116 cu117", "linux", _L86),
    _pb("2.0", "2.0", "cu117", "linux", _L86),
    _pb("2.0", "2.0", "cu118", "linux", "3.7;5.0;6.0;7.0;7.5;8.0;8.6;9.0"),
    _pb("2.1", "2.5", "cu118", "linux", "5.0;6.0;7.0;7.5;8.0;8.6;3.7;9.0"),
    _pb("2.1", "2.5", "cu121", "linux", _L12),
    _pb("2.4", "2.5", "cu124", "linux", _L12),
    _pb("2.4", "2.5", "cu124", "linux-aarch64", "9.0"),  # GPU_ARCH_TYPE=cuda-aarch64
    # --- Windows, pytorch/builder release branches (3.7+PTX: sm_37 and compute_37)
    _pb("1.8", "1.8", "cu92", "windows", "3.7+PTX;5.0;6.0;6.1;7.0"),
    _pb("1.8", "1.8", "cu101 cu102", "windows", _W75),
    _pb("1.8", "1.8", "cu110", "windows", "3.7+PTX;5.0;6.0;6.1;7.0;7.5;8.0"),
    _pb("1.8", "1.8", "cu111 cu112", "windows", _W86),
    _pb("1.9", "1.11", "cu92", "windows", "3.7+PTX;5.0;6.0;6.1;7.0"),
    _pb("1.9", "1.11", "cu101 cu102", "windows", _W75),
    _pb("1.9", "1.11", "cu110", "windows", "3.7+PTX;5.0;6.0;6.1;7.0;7.5;8.0"),
    _pb("1.9", "1.11", "cu111 cu112 cu113 cu115", "windows", _W86),
    _pb("1.12", "1.13", "cu102", "windows", _W75),
    _pb("1.12", "1.13", "cu113 cu115 cu116 cu117", "windows", _W86),
    _pb("2.0", "2.0", "cu116 cu117", "windows", _W86),
    _pb("2.0", "2.5", "cu118", "windows", "3.7+PTX;5.0;6.0;6.1;7.0;7.5;8.0;8.6;9.0"),
    _pb("2.1", "2.5", "cu121", "windows", _W12),
    _pb("2.4", "2.5", "cu124", "windows", _W12),
    _row(
        "2.6", "2.6", "cu126", "windows", "sm_50 sm_60 sm_61 sm_70 sm_75 sm_80 sm_86 sm_90", _WIN26
    ),
    # --- Linux x86_64, torch 2.6+ (release branches of pytorch/pytorch were not readable)
    _row("2.6", "2.6", "cu124", "linux", _L12, _CU126, _CU126_NOTE),
    _row("2.6", "2.13", "cu126", "linux", _L12, _CU126, _CU126_NOTE),
    _row("2.7", "2.7", "cu128", "linux", f"{_SM75} compute_120", _CU128_27, _CU128_27_NOTE),
    _row("2.8", "2.10", "cu128", "linux", f"sm_70 {_SM75}", _CU128_28, _CU128_28_NOTE),
    _row("2.11", "2.11", "cu128", "linux", _SM75, _CU128_211, _CU128_211_NOTE),
    # cu129 for 2.11+ stays unknown: cu128 dropped sm_70 in 2.11, so the main snapshot's 7.0
    # cannot be assumed for cu129 there.
    _row("2.8", "2.10", "cu129", "linux", "7.0;7.5;8.0;8.6;9.0;10.0;12.0+PTX", _MAIN, _CU129_NOTE),
    _row("2.9", "2.14", "cu130", "linux", _SM75, _CU130, _CU130_NOTE),
    _row("2.12", "2.14", "cu132", "linux", _SM75, _CU132, _CU132_NOTE),
    _row("2.9", "2.14", "cu130", "linux-aarch64", "8.0;9.0;10.0;11.0;12.0+PTX", _ARM, _ARM_NOTE),
)


def _series(torch_version: str) -> Version:
    version = Version(torch_version)
    return Version(f"{version.major}.{version.minor}")


def _check_platform(platform: str) -> None:
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r}; expected one of {PLATFORMS}")


def arch_list(torch_version: str, variant: Variant, platform: str) -> ArchList | None:
    """The arch list of torch ``torch_version`` built for ``variant`` on ``platform``.

    ``torch_version`` may carry a local label ("2.8.0+cu128"); only its major.minor counts,
    and ``variant`` decides the build. ``platform`` is "linux" (x86_64), "linux-aarch64",
    "windows" or "macos". Returns None when unknown (and for CPU, ROCm and XPU builds).
    Raises ValueError for an unknown platform and packaging's InvalidVersion (a ValueError)
    for a malformed version.

    >>> str(arch_list("2.7.1+cu128", Variant.parse("cu128"), "linux"))
    'sm_75 sm_80 sm_86 sm_90 sm_100 sm_120 compute_120'
    """
    _check_platform(platform)
    if variant.kind != "cuda":
        return None
    series = _series(torch_version)
    for row in ROWS:
        in_range = row.first <= series <= row.last
        if row.platform == platform and variant.tag in row.variants and in_range:
            return row.archs
    return None


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
        row
        for row in ROWS
        if row.platform == platform and variant.tag in row.variants and row.last < series
    ]
    if not older:
        return None
    row = max(older, key=lambda r: r.last)
    return f"{row.last.major}.{row.last.minor}", row.archs


def min_torch_for(cc: Arch, platform: str) -> list[tuple[str, str]]:
    """(first torch minor, variant tag) pairs whose builds serve ``cc``, oldest first.

    One pair per variant: the first published release (``_releases.RELEASES``) whose known
    arch list serves the GPU. For error messages ("RTX 5090 needs torch >= 2.7 with cu128").
    Raises ValueError for an unknown platform.

    >>> min_torch_for((12, 0), "linux")[0]
    ('2.7', 'cu128')
    """
    _check_platform(platform)
    first: dict[str, tuple[Version, Variant]] = {}
    for release in RELEASES:
        for tag in release.variants:
            variant = Variant.from_label(tag)
            if variant is None or tag in first:
                continue
            archs = arch_list(release.torch, variant, platform)
            if archs is not None and archs.serves(cc):
                first[tag] = (_series(release.torch), variant)
    ordered = sorted(first.values(), key=lambda item: (item[0], item[1].sort_key()))
    return [(str(series), variant.tag) for series, variant in ordered]
