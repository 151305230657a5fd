"""Kernel architecture lists of torch CUDA builds: the value, its parser, and every list
torchfit knows (data), each defined once with its source.

The release table (``releases.py``) names these lists per release, variant and platform.
A build *serves* compute capability X.Y when it holds SASS ``sm_XZ`` of the same major with
Z <= Y, or PTX ``compute_AB`` with (A, B) <= (X, Y) (the driver JIT-compiles PTX for newer GPUs).

Sources (see shared reference "Item 4"): pytorch/builder release-branch build scripts (torch
1.8-2.5), pytorch/pytorch ``.ci/manywheel/build_cuda.sh`` main-branch snapshots, the
pytorch/test-infra build helper, and runtime ``torch.cuda.get_arch_list()`` output or "supports
CUDA capabilities ..." warnings quoted in public files and GitHub issues.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.version import Version

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


def arch_list_of(text: str, source: str, note: str = "") -> ArchList:
    """An :class:`ArchList` from arch-list text (see :func:`parse_arch_list`) and its source.

    >>> str(arch_list_of("8.0;9.0+PTX", source="a build script"))
    'sm_80 sm_90 compute_90'
    """
    sass, ptx = parse_arch_list(text)
    return ArchList(sass, ptx, source, note)


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


def _pb(first: str, last: str, platform: str, arch_text: str) -> ArchList:
    """A list read from the pytorch/builder release branches ``first``..``last``."""
    lo, hi = Version(first), Version(last)
    commits = "/".join(sha for minor, sha in _BUILDER.items() if lo <= Version(minor) <= hi)
    if platform == "windows":
        script = "windows/cudaNNN.bat"
    else:
        script = "manywheel/build.sh" if lo < Version("1.11") else "manywheel/build_cuda.sh"
    branches = f"release/{first}" if first == last else f"release/{first}..{last}"
    return arch_list_of(arch_text, f"pytorch/builder {branches} @{commits} {script}")


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

# The lists. Name: platform (L linux x86_64, A linux-aarch64, W windows), the first torch
# series read, the first variant; the comment names the variants and series that use it.

# --- Linux x86_64, pytorch/builder release branches
L1_8_CU101 = _pb("1.8", "1.8", "linux", _L37)  # cu101 cu102
L1_8_CU110 = _pb("1.8", "1.8", "linux", "3.7;5.0;6.0;7.0;7.5;8.0")
L1_8_CU111 = _pb("1.8", "1.8", "linux", _L86)
L1_9_CU102 = _pb("1.9", "1.9", "linux", _L37)
L1_9_CU111 = _pb("1.9", "1.9", "linux", _L86)
L1_10_CU102 = _pb("1.10", "1.10", "linux", _L37)
L1_10_CU111 = _pb("1.10", "1.10", "linux", _L86)  # cu111 cu113
L1_11_CU102 = _pb("1.11", "1.11", "linux", _L37)
L1_11_CU113 = _pb("1.11", "1.11", "linux", _L86)  # cu113 cu115
L1_12_CU102 = _pb("1.12", "1.12", "linux", _L37)
L1_12_CU113 = _pb("1.12", "1.12", "linux", _L86)  # cu113 cu116
L1_13_CU116 = _pb("1.13", "1.13", "linux", _L86)  # cu116 cu117
L2_0_CU117 = _pb("2.0", "2.0", "linux", _L86)
L2_0_CU118 = _pb("2.0", "2.0", "linux", "3.7;5.0;6.0;7.0;7.5;8.0;8.6;9.0")
L2_1_CU118 = _pb("2.1", "2.5", "linux", "5.0;6.0;7.0;7.5;8.0;8.6;3.7;9.0")  # 2.1-2.5
L2_1_CU121 = _pb("2.1", "2.5", "linux", _L12)  # 2.1-2.5
L2_4_CU124 = _pb("2.4", "2.5", "linux", _L12)  # 2.4-2.5
A2_4_CU124 = _pb("2.4", "2.5", "linux-aarch64", "9.0")  # 2.4-2.5, GPU_ARCH_TYPE=cuda-aarch64

# --- Windows, pytorch/builder release branches (3.7+PTX: sm_37 and compute_37)
W1_8_CU92 = _pb("1.8", "1.8", "windows", "3.7+PTX;5.0;6.0;6.1;7.0")
W1_8_CU101 = _pb("1.8", "1.8", "windows", _W75)  # cu101 cu102
W1_8_CU110 = _pb("1.8", "1.8", "windows", "3.7+PTX;5.0;6.0;6.1;7.0;7.5;8.0")
W1_8_CU111 = _pb("1.8", "1.8", "windows", _W86)  # cu111 cu112
W1_9_CU92 = _pb("1.9", "1.11", "windows", "3.7+PTX;5.0;6.0;6.1;7.0")  # 1.9-1.11
W1_9_CU101 = _pb("1.9", "1.11", "windows", _W75)  # 1.9-1.11 cu101 cu102
W1_9_CU110 = _pb("1.9", "1.11", "windows", "3.7+PTX;5.0;6.0;6.1;7.0;7.5;8.0")  # 1.9-1.11
W1_9_CU111 = _pb("1.9", "1.11", "windows", _W86)  # 1.9-1.11 cu111 cu112 cu113 cu115
W1_12_CU102 = _pb("1.12", "1.13", "windows", _W75)  # 1.12-1.13
W1_12_CU113 = _pb("1.12", "1.13", "windows", _W86)  # 1.12-1.13 cu113 cu115 cu116 cu117
W2_0_CU116 = _pb("2.0", "2.0", "windows", _W86)  # cu116 cu117
W2_0_CU118 = _pb("2.0", "2.5", "windows", "3.7+PTX;5.0;6.0;6.1;7.0;7.5;8.0;8.6;9.0")  # 2.0-2.5
W2_1_CU121 = _pb("2.1", "2.5", "windows", _W12)  # 2.1-2.5
W2_4_CU124 = _pb("2.4", "2.5", "windows", _W12)  # 2.4-2.5
W2_6_CU126 = arch_list_of("sm_50 sm_60 sm_61 sm_70 sm_75 sm_80 sm_86 sm_90", _WIN26)

# --- Linux, torch 2.6+ (release branches of pytorch/pytorch were not readable)
L2_6_CU126 = arch_list_of(_L12, _CU126, _CU126_NOTE)  # 2.6 cu124, 2.6-2.13 cu126
L2_7_CU128 = arch_list_of(f"{_SM75} compute_120", _CU128_27, _CU128_27_NOTE)
L2_8_CU128 = arch_list_of(f"sm_70 {_SM75}", _CU128_28, _CU128_28_NOTE)  # 2.8-2.10
L2_11_CU128 = arch_list_of(_SM75, _CU128_211, _CU128_211_NOTE)
# cu129 for 2.11+ stays unknown: cu128 dropped sm_70 in 2.11, so the main snapshot's 7.0
# cannot be assumed for cu129 there.
L2_8_CU129 = arch_list_of("7.0;7.5;8.0;8.6;9.0;10.0;12.0+PTX", _MAIN, _CU129_NOTE)  # 2.8-2.10
L2_9_CU130 = arch_list_of(_SM75, _CU130, _CU130_NOTE)  # 2.9-2.13
L2_12_CU132 = arch_list_of(_SM75, _CU132, _CU132_NOTE)  # 2.12-2.13
A2_9_CU130 = arch_list_of("8.0;9.0;10.0;11.0;12.0+PTX", _ARM, _ARM_NOTE)  # 2.9-2.13

# --- Windows and Linux aarch64 (SBSA), torch 2.6+. The RELEASE.md "PyTorch CUDA Support
# Matrix" of pytorch/pytorch lists per release the architectures of the "Linux x86 and
# Windows" builds (+PTX on Linux only) and of the Linux aarch64 builds.
_RELEASE_MD = "pytorch/pytorch RELEASE.md CUDA support matrix"
_RM_29 = f"{_RELEASE_MD} for 2.9 and 2.10 (pytorch/pytorch#164471, removed lines of #175253)"
_RM_211 = f"{_RELEASE_MD} for 2.11 (pytorch/pytorch#175253; RFC pytorch/pytorch#172663)"
_RM_212 = f"{_RELEASE_MD} for 2.12-2.14 (pytorch/pytorch#182849)"
_WIN_BAT = "pytorch/pytorch .ci/pytorch/windows/cuda{}.bat @{} (main snapshot)"
_SM60_NOTE = (
    "RELEASE.md names Pascal(6.0) only; the Windows script adds 6.1: sm_60 serves a 6.1 GPU "
    "either way, so the script's list is kept"
)
_ARM_EARLY = (
    "pytorch/pytorch#140844 (SBSA builds limited to sm_90); maintainer comment in "
    "pytorch/pytorch#148169 (2025-02-28): aarch64 'only supporting sm_90 for 12.6 and "
    "sm_90, sm_100, sm_120 for 12.8'"
)
_ARM_29 = (
    f"{_RM_211}; {_RM_212}; pytorch/pytorch#162364 (sbsa 12.6 and 12.8 builds, "
    "'same arch support as x86', before the 2.9 branch cut)"
)
_ARM_29_128 = f"{_ARM_29}; runtime get_arch_list() of 2.9.1+cu128 aarch64 in OpenRAL/openral#167"
_ARM_28 = (
    "pytorch/pytorch .ci/aarch64_linux/aarch64_ci_build.sh, the 12.9-only version (upstream "
    "side of a merge in ROCm/pytorch @10b22ea5c6a6); pytorch/pytorch#162364: 12.9 was the "
    "only sbsa build before 2.9"
)

W2_7_CU126 = arch_list_of(  # 2.7-2.13
    "5.0;6.0;6.1;7.0;7.5;8.0;8.6;9.0",
    f"{_WIN_BAT.format('126', '18f79c00d673')}; {_RM_29}; {_RM_212}; {_WIN26}",
    _SM60_NOTE,
)
W2_7_CU128 = arch_list_of(
    "7.5;8.0;8.6;9.0;10.0;12.0",
    f"{_WIN_BAT.format('128', '07619f946d86')}; Git-Hub-Chris/PyTorch @e9e622cb862f, same file",
    "script date unknown: its list is 2.7's Linux cu128 list less the Linux-only PTX; 2.8 "
    "stays unknown (sm_70 came back on Linux for 2.8)",
)
W2_9_CU128 = arch_list_of("7.0;7.5;8.0;8.6;9.0;10.0;12.0", _RM_29)  # 2.9-2.10
W2_11_CU128 = arch_list_of("7.5;8.0;8.6;9.0;10.0;12.0", _RM_211)
W2_9_CU130 = arch_list_of(  # 2.9-2.13, cu132 2.12-2.13
    "7.5;8.0;8.6;9.0;10.0;12.0",
    f"{_RM_29}; {_RM_211}; {_RM_212}",
    "no PTX: the matrix says +PTX is on Linux builds only",
)
A2_6_CU126 = arch_list_of("9.0", _ARM_EARLY)  # 2.6-2.7
A2_7_CU128 = arch_list_of("9.0;10.0;12.0", _ARM_EARLY)
A2_8_CU129 = arch_list_of(
    "8.0;9.0;10.0;12.0", _ARM_28, "cu129 for 2.9+ stays unknown (its last known list is this one)"
)
A2_9_CU126 = arch_list_of("8.0;9.0", _ARM_29)  # 2.9-2.13
A2_9_CU128 = arch_list_of("8.0;9.0;10.0;12.0", _ARM_29_128)  # 2.9-2.11
A2_12_CU132 = arch_list_of("8.0;9.0;10.0;11.0;12.0+PTX", _RM_212)  # 2.12-2.13


@dataclass(frozen=True)
class Floor:
    """The lowest CUDA whose builds can carry kernels for GPUs of ``arch`` and above (up to
    the next floor): used only for builds whose kernel list is unknown."""

    arch: Arch
    cuda: tuple[int, int]
    source: str


_NV_NOTES = "NVIDIA CUDA Toolkit release notes"
#: Oldest first. A GPU takes the floor of the highest ``arch`` at or below its capability.
FLOORS = (
    Floor((7, 5), (10, 0), f"{_NV_NOTES} 10.0 (Turing)"),
    Floor((8, 0), (11, 0), f"{_NV_NOTES} 11.0 (sm_80)"),
    Floor((8, 6), (11, 1), f"{_NV_NOTES} 11.1 (sm_86)"),
    Floor((8, 9), (11, 8), f"{_NV_NOTES} 11.8 (sm_89, sm_90)"),
    Floor((10, 0), (12, 8), f"{_NV_NOTES} 12.8 (sm_100, sm_120; sm_103, sm_121 served by them)"),
    Floor(
        (11, 0),
        (13, 0),
        f"{_NV_NOTES} 13.0 (sm_101 renamed sm_110); cu128 fails on Thor: OpenRAL/openral#167",
    ),
    Floor((12, 0), (12, 8), f"{_NV_NOTES} 12.8 (sm_120)"),
)


@dataclass(frozen=True)
class Drop:
    """GPUs below ``below`` that builds of CUDA >= ``cuda`` (only ``tags``, when given) from
    torch series ``since`` on no longer carry: the toolkit removed them, or PyTorch did."""

    cuda: tuple[int, int]
    since: str
    below: Arch
    source: str
    tags: tuple[str, ...] = ()


DROPS = (
    Drop((12, 0), "1.0", (5, 0), f"{_NV_NOTES} 12.0: Kepler (sm_35, sm_37) removed"),
    Drop((13, 0), "1.0", (7, 5), f"{_NV_NOTES} 13.0: Maxwell, Pascal, Volta removed"),
    Drop(
        (12, 8),
        "2.7",
        (7, 0),
        "build_cuda.sh: 'removing sm_50-sm_60 as these architectures are deprecated in CUDA "
        "12.8/9' (cu128 from 2.7, cu129 from 2.8)",
    ),
    Drop(
        (12, 8),
        "2.11",
        (7, 5),
        f"{_RM_211}: Volta dropped from CUDA 12.8 builds for 2.11",
        tags=("cu128",),
    ),
)
