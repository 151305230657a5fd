"""Data: one row per torch release, and what torchfit derives from the rows.

A row holds the torchvision/torchaudio published with that torch, the lowest Python its
wheels were built for, the variants it was published for, and the kernel arch list of each
CUDA build per platform (named lists from ``kernels.py``). Everything else is derived here,
from the table as it is at call time: the known variants, the variants still published, the
versions each variant page can hold, companion pins, kernel lookups (``archs.py``).
Add a torch release by adding its row (and one CHANGELOG line).

torchfit reads companion pins from the wheels' own metadata; the table is the fallback when
no metadata can be had (``--offline`` over the bundled snapshots), and a hint for which
variant pages to ask first.

Source: torch_release_compat_matrix.csv, assembled from pytorch/pytorch.github.io
``_get_started/previous-versions.md`` (1.0.0-2.3.1), the March-2021 ``torch_stable.html``
(1.0-1.8 variants), pytorch/test-infra ``generate_binary_build_matrix.py`` history
(1.13.1-2.13.0), the pytorch/vision README and pytorch/audio installation docs, plus
the variants seen in public lock files. torch 1.8.2 (LTS, its own index) is left out.
Python: the lowest version in that file's python_versions column, as a lower bound only
(wheels for newer Pythons were added later: 2.5 lists 3.9-3.12, lock files show cp313).
Kernel lists: see ``kernels.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from packaging.version import Version

from torchfit.choose import kernels as k
from torchfit.choose.kernels import ArchList
from torchfit.variants import Variant


@dataclass(frozen=True)
class Release:
    """One torch release: its companions, Python floor, variants and kernel lists.

    ``kernels`` may name builds ``variants`` lacks (the build scripts had a case for them,
    e.g. Windows cu112 for 1.8): their lists judge such a wheel should an index hold one,
    and never make a variant known.
    """

    torch: str
    torchvision: str | None
    torchaudio: str | None
    variants: tuple[str, ...]
    requires_python: str | None = None  # e.g. ">=3.10"; None where the sources say nothing
    kernels: tuple[tuple[str, str, ArchList], ...] = ()  # (platform, variant tag, list)

    def arch_list(self, tag: str, platform: str) -> ArchList | None:
        """The kernel list of this release's ``tag`` build on ``platform``, or None."""
        return next((a for p, t, a in self.kernels if p == platform and t == tag), None)

    def version_of(self, project: str) -> str | None:
        """The version of ``project`` (torch, torchvision, torchaudio) in this release."""
        versions = {
            "torch": self.torch,
            "torchvision": self.torchvision,
            "torchaudio": self.torchaudio,
        }
        return versions.get(project)


Kernels = Mapping[str, ArchList]  # "cu101 cu102" -> the list those builds carry


def release(
    torch: str,
    torchvision: str | None,
    torchaudio: str | None,
    requires_python: str | None,
    variants: str,
    *,
    linux: Kernels | None = None,
    linux_aarch64: Kernels | None = None,
    windows: Kernels | None = None,
) -> Release:
    """A table row. ``variants`` is space separated; kernel keys may name several tags.

    >>> row = release("2.99.0", "0.99.0", None, ">=3.10", "cpu cu135",
    ...               linux={"cu135": k.arch_list_of("9.0;12.0", source="a test")})
    >>> str(row.arch_list("cu135", "linux")), row.arch_list("cu135", "windows")
    ('sm_90 sm_120', None)
    """
    given = {"linux": linux, "linux-aarch64": linux_aarch64, "windows": windows}
    kernels = tuple(
        (platform, tag, archs)
        for platform, mapping in given.items()
        for tags, archs in (mapping or {}).items()
        for tag in tags.split()
    )
    return Release(
        torch, torchvision, torchaudio, tuple(variants.split()), requires_python, kernels
    )


_r = release  # short, for the table
_PY27 = ">=2.7,!=3.0.*,!=3.1.*,!=3.2.*,!=3.3.*,!=3.4.*"  # "2.7, 3.5-3.7"

# Windows builds shared by several rows: pytorch/builder release/1.9..1.11 and 1.12..1.13
# each read one set of windows/cudaNNN.bat scripts.
_W19: Kernels = {
    "cu92": k.W1_9_CU92,
    "cu101 cu102": k.W1_9_CU101,
    "cu110": k.W1_9_CU110,
    "cu111 cu112 cu113 cu115": k.W1_9_CU111,
}
_W112: Kernels = {"cu102": k.W1_12_CU102, "cu113 cu115 cu116 cu117": k.W1_12_CU113}
# Windows and Linux aarch64 builds of 2.7+ (see kernels.py for the sources of each list).
_W27: Kernels = {"cu126": k.W2_7_CU126, "cu128": k.W2_7_CU128}
_W29: Kernels = {"cu126": k.W2_7_CU126, "cu128": k.W2_9_CU128, "cu130": k.W2_9_CU130}
_W211: Kernels = {"cu126": k.W2_7_CU126, "cu128": k.W2_11_CU128, "cu130": k.W2_9_CU130}
_W212: Kernels = {"cu126": k.W2_7_CU126, "cu130 cu132": k.W2_9_CU130}
_A27: Kernels = {"cu126": k.A2_6_CU126, "cu128": k.A2_7_CU128}
_A29: Kernels = {"cu126": k.A2_9_CU126, "cu128": k.A2_9_CU128, "cu130": k.A2_9_CU130}
_A212: Kernels = {"cu126": k.A2_9_CU126, "cu130": k.A2_9_CU130, "cu132": k.A2_12_CU132}

# Oldest first.
# fmt: off
RELEASES: tuple[Release, ...] = (
    _r("1.0.0", "0.2.1", None, _PY27, "cpu cu100 cu80 cu90"),
    _r("1.0.1", "0.2.2", None, _PY27, "cpu cu100 cu80 cu90"),
    _r("1.1.0", "0.3.0", None, _PY27, "cpu cu100 cu90"),
    _r("1.2.0", "0.4.0", None, _PY27, "cpu cu100 cu92"),
    _r("1.3.0", "0.4.1", None, _PY27, "cpu cu100 cu101 cu92"),  # torchvision pairing inferred
    _r("1.3.1", "0.4.2", None, _PY27, "cpu cu100 cu101 cu92"),  # torchvision pairing inferred
    _r("1.4.0", "0.5.0", "0.4.0", _PY27, "cpu cu100 cu101 cu92"),
    _r("1.5.0", "0.6.0", "0.5.0", ">=3.5", "cpu cu101 cu102 cu92"),
    _r("1.5.1", "0.6.1", "0.5.1", ">=3.5", "cpu cu101 cu102 cu92"),
    _r("1.6.0", "0.7.0", "0.6.0", ">=3.6", "cpu cu101 cu102 cu92"),
    _r("1.7.0", "0.8.0", "0.7.0", ">=3.6", "cpu cu101 cu102 cu110 cu92"),
    _r("1.7.1", "0.8.2", "0.7.2", ">=3.6", "cpu cu101 cu102 cu110 cu92 rocm3.7 rocm3.8"),
    _r("1.8.0", "0.9.0", "0.8.0", ">=3.6", "cpu cu101 cu102 cu111 rocm3.10 rocm4.0.1",
       linux={"cu101 cu102": k.L1_8_CU101, "cu110": k.L1_8_CU110, "cu111": k.L1_8_CU111},
       windows={"cu92": k.W1_8_CU92, "cu101 cu102": k.W1_8_CU101, "cu110": k.W1_8_CU110,
                "cu111 cu112": k.W1_8_CU111}),
    _r("1.8.1", "0.9.1", "0.8.1", ">=3.6", "cpu cu101 cu102 cu111 rocm3.10 rocm4.0.1",
       linux={"cu101 cu102": k.L1_8_CU101, "cu110": k.L1_8_CU110, "cu111": k.L1_8_CU111},
       windows={"cu92": k.W1_8_CU92, "cu101 cu102": k.W1_8_CU101, "cu110": k.W1_8_CU110,
                "cu111 cu112": k.W1_8_CU111}),
    _r("1.9.0", "0.10.0", "0.9.0", ">=3.6", "cpu cu102 cu111 rocm4.0.1 rocm4.1 rocm4.2",
       linux={"cu102": k.L1_9_CU102, "cu111": k.L1_9_CU111}, windows=_W19),
    _r("1.9.1", "0.10.1", "0.9.1", ">=3.6", "cpu cu102 cu111 rocm4.0.1 rocm4.1 rocm4.2",
       linux={"cu102": k.L1_9_CU102, "cu111": k.L1_9_CU111}, windows=_W19),
    _r("1.10.0", "0.11.0", "0.10.0", ">=3.6", "cpu cu102 cu111 rocm4.0.1 rocm4.1 rocm4.2",
       linux={"cu102": k.L1_10_CU102, "cu111 cu113": k.L1_10_CU111}, windows=_W19),
    _r("1.10.1", "0.11.2", "0.10.1", ">=3.6", "cpu cu102 cu111 rocm4.0.1 rocm4.1 rocm4.2",
       linux={"cu102": k.L1_10_CU102, "cu111 cu113": k.L1_10_CU111}, windows=_W19),
    _r("1.11.0", "0.12.0", "0.11.0", ">=3.7", "cpu cu102 cu113 rocm4.5.2",
       linux={"cu102": k.L1_11_CU102, "cu113 cu115": k.L1_11_CU113}, windows=_W19),
    _r("1.12.0", "0.13.0", "0.12.0", ">=3.7", "cpu cu102 cu113 cu116 rocm5.1.1",
       linux={"cu102": k.L1_12_CU102, "cu113 cu116": k.L1_12_CU113}, windows=_W112),
    _r("1.12.1", "0.13.1", "0.12.1", ">=3.7", "cpu cu102 cu113 cu116 rocm5.1.1",
       linux={"cu102": k.L1_12_CU102, "cu113 cu116": k.L1_12_CU113}, windows=_W112),
    _r("1.13.0", "0.14.0", "0.13.0", ">=3.7", "cpu cu116 cu117 rocm5.2",
       linux={"cu116 cu117": k.L1_13_CU116}, windows=_W112),
    _r("1.13.1", "0.14.1", "0.13.1", ">=3.7", "cpu cu116 cu117 rocm5.2",
       linux={"cu116 cu117": k.L1_13_CU116}, windows=_W112),
    _r("2.0.0", "0.15.1", "2.0.1", ">=3.8", "cpu cu117 cu118 rocm5.3 rocm5.4.2",
       linux={"cu117": k.L2_0_CU117, "cu118": k.L2_0_CU118},
       windows={"cu116 cu117": k.W2_0_CU116, "cu118": k.W2_0_CU118}),
    _r("2.0.1", "0.15.2", "2.0.2", ">=3.8", "cpu cu117 cu118 rocm5.3 rocm5.4.2",
       linux={"cu117": k.L2_0_CU117, "cu118": k.L2_0_CU118},
       windows={"cu116 cu117": k.W2_0_CU116, "cu118": k.W2_0_CU118}),
    _r("2.1.0", "0.16.0", "2.1.0", ">=3.8", "cpu cu118 cu121 rocm5.5 rocm5.6",
       linux={"cu118": k.L2_1_CU118, "cu121": k.L2_1_CU121},
       windows={"cu118": k.W2_0_CU118, "cu121": k.W2_1_CU121}),
    _r("2.1.1", "0.16.1", "2.1.1", ">=3.8", "cpu cu118 cu121 rocm5.5 rocm5.6",
       linux={"cu118": k.L2_1_CU118, "cu121": k.L2_1_CU121},
       windows={"cu118": k.W2_0_CU118, "cu121": k.W2_1_CU121}),
    _r("2.1.2", "0.16.2", "2.1.2", ">=3.8", "cpu cu118 cu121 rocm5.5 rocm5.6",
       linux={"cu118": k.L2_1_CU118, "cu121": k.L2_1_CU121},
       windows={"cu118": k.W2_0_CU118, "cu121": k.W2_1_CU121}),
    _r("2.2.0", "0.17.0", "2.2.0", ">=3.8", "cpu cu118 cu121 rocm5.6 rocm5.7",
       linux={"cu118": k.L2_1_CU118, "cu121": k.L2_1_CU121},
       windows={"cu118": k.W2_0_CU118, "cu121": k.W2_1_CU121}),
    _r("2.2.1", "0.17.1", "2.2.1", ">=3.8", "cpu cu118 cu121 rocm5.6 rocm5.7",
       linux={"cu118": k.L2_1_CU118, "cu121": k.L2_1_CU121},
       windows={"cu118": k.W2_0_CU118, "cu121": k.W2_1_CU121}),
    _r("2.2.2", "0.17.2", "2.2.2", ">=3.8", "cpu cu118 cu121 rocm5.6 rocm5.7",
       linux={"cu118": k.L2_1_CU118, "cu121": k.L2_1_CU121},
       windows={"cu118": k.W2_0_CU118, "cu121": k.W2_1_CU121}),
    _r("2.3.0", "0.18.0", "2.3.0", ">=3.8", "cpu cu118 cu121 rocm5.7 rocm6.0",
       linux={"cu118": k.L2_1_CU118, "cu121": k.L2_1_CU121},
       windows={"cu118": k.W2_0_CU118, "cu121": k.W2_1_CU121}),
    _r("2.3.1", "0.18.1", "2.3.1", ">=3.8", "cpu cu118 cu121 rocm5.7 rocm6.0",
       linux={"cu118": k.L2_1_CU118, "cu121": k.L2_1_CU121},
       windows={"cu118": k.W2_0_CU118, "cu121": k.W2_1_CU121}),
    _r("2.4.0", "0.19.0", "2.4.0", ">=3.8", "cpu cu118 cu121 cu124 rocm6.0 rocm6.1",
       linux={"cu118": k.L2_1_CU118, "cu121": k.L2_1_CU121, "cu124": k.L2_4_CU124},
       linux_aarch64={"cu124": k.A2_4_CU124},
       windows={"cu118": k.W2_0_CU118, "cu121": k.W2_1_CU121, "cu124": k.W2_4_CU124}),
    _r("2.4.1", "0.19.1", "2.4.1", ">=3.8", "cpu cu118 cu121 cu124 rocm6.0 rocm6.1",
       linux={"cu118": k.L2_1_CU118, "cu121": k.L2_1_CU121, "cu124": k.L2_4_CU124},
       linux_aarch64={"cu124": k.A2_4_CU124},
       windows={"cu118": k.W2_0_CU118, "cu121": k.W2_1_CU121, "cu124": k.W2_4_CU124}),
    _r("2.5.0", "0.20.0", "2.5.0", ">=3.9", "cpu cu118 cu121 cu124 rocm6.1 rocm6.2",
       linux={"cu118": k.L2_1_CU118, "cu121": k.L2_1_CU121, "cu124": k.L2_4_CU124},
       linux_aarch64={"cu124": k.A2_4_CU124},
       windows={"cu118": k.W2_0_CU118, "cu121": k.W2_1_CU121, "cu124": k.W2_4_CU124}),
    _r("2.5.1", "0.20.1", "2.5.1", ">=3.9", "cpu cu118 cu121 cu124 rocm6.1 rocm6.2",
       linux={"cu118": k.L2_1_CU118, "cu121": k.L2_1_CU121, "cu124": k.L2_4_CU124},
       linux_aarch64={"cu124": k.A2_4_CU124},
       windows={"cu118": k.W2_0_CU118, "cu121": k.W2_1_CU121, "cu124": k.W2_4_CU124}),
    _r("2.6.0", "0.21.0", "2.6.0", ">=3.9", "cpu cu118 cu124 cu126 rocm6.1 rocm6.2.4",
       linux={"cu124 cu126": k.L2_6_CU126}, linux_aarch64={"cu126": k.A2_6_CU126},
       windows={"cu126": k.W2_6_CU126}),
    _r("2.7.0", "0.22.0", "2.7.0", ">=3.9", "cpu cu118 cu126 cu128 rocm6.2.4 rocm6.3",
       linux={"cu126": k.L2_6_CU126, "cu128": k.L2_7_CU128}, linux_aarch64=_A27, windows=_W27),
    _r("2.7.1", "0.22.1", "2.7.1", ">=3.9", "cpu cu118 cu126 cu128 rocm6.2.4 rocm6.3 xpu",
       linux={"cu126": k.L2_6_CU126, "cu128": k.L2_7_CU128}, linux_aarch64=_A27, windows=_W27),
    _r("2.8.0", "0.23.0", "2.8.0", ">=3.9", "cpu cu126 cu128 cu129 rocm6.3 rocm6.4 xpu",
       linux={"cu126": k.L2_6_CU126, "cu128": k.L2_8_CU128, "cu129": k.L2_8_CU129},
       linux_aarch64={"cu129": k.A2_8_CU129}, windows={"cu126": k.W2_7_CU126}),
    _r("2.9.0", "0.24.0", "2.9.0", ">=3.10", "cpu cu126 cu128 cu129 cu130 rocm6.3 rocm6.4",
       linux={"cu126": k.L2_6_CU126, "cu128": k.L2_8_CU128, "cu129": k.L2_8_CU129,
              "cu130": k.L2_9_CU130},
       linux_aarch64=_A29, windows=_W29),
    _r("2.9.1", "0.24.1", "2.9.1", ">=3.10", "cpu cu126 cu128 cu129 cu130 rocm6.3 rocm6.4",
       linux={"cu126": k.L2_6_CU126, "cu128": k.L2_8_CU128, "cu129": k.L2_8_CU129,
              "cu130": k.L2_9_CU130},
       linux_aarch64=_A29, windows=_W29),
    _r("2.10.0", "0.25.0", "2.10.0", ">=3.10", "cpu cu126 cu128 cu129 cu130 rocm7.0 rocm7.1",
       linux={"cu126": k.L2_6_CU126, "cu128": k.L2_8_CU128, "cu129": k.L2_8_CU129,
              "cu130": k.L2_9_CU130},
       linux_aarch64=_A29, windows=_W29),
    # cu129 from 2.11 on: no list (see kernels.L2_8_CU129)
    _r("2.11.0", "0.26.0", "2.11.0", ">=3.10", "cpu cu126 cu128 cu129 cu130 rocm7.1 rocm7.2",
       linux={"cu126": k.L2_6_CU126, "cu128": k.L2_11_CU128, "cu130": k.L2_9_CU130},
       linux_aarch64=_A29, windows=_W211),
    _r("2.12.0", "0.27.0", None, ">=3.10", "cpu cu126 cu130 cu132 rocm7.1 rocm7.2",
       linux={"cu126": k.L2_6_CU126, "cu130": k.L2_9_CU130, "cu132": k.L2_12_CU132},
       linux_aarch64=_A212, windows=_W212),
    _r("2.12.1", "0.27.1", "2.11.0", ">=3.10", "cpu cu126 cu129 cu130 cu132 rocm7.1 rocm7.2",
       linux={"cu126": k.L2_6_CU126, "cu130": k.L2_9_CU130, "cu132": k.L2_12_CU132},
       linux_aarch64=_A212, windows=_W212),
    _r("2.13.0", "0.28.0", None, ">=3.10", "cpu cu126 cu129 cu130 cu132 rocm7.1 rocm7.2 xpu",
       linux={"cu126": k.L2_6_CU126, "cu130": k.L2_9_CU130, "cu132": k.L2_12_CU132},
       linux_aarch64=_A212, windows=_W212),
    # torch 2.14: runtime cu130 lists are quoted (kernels.L2_9_CU130), but the release is not
    # in the reference matrix yet; its row waits for its companions.
)
# fmt: on


def with_rows(*rows: Release) -> tuple[Release, ...]:
    """The table with ``rows`` added, oldest first: how a test adds a release.

    Raises ValueError for a torch version the table already has.
    """
    have = {Version(r.torch) for r in RELEASES}
    for row in rows:
        if Version(row.torch) in have:
            raise ValueError(f"torch {row.torch} already has a row")
        have.add(Version(row.torch))
    return tuple(sorted((*RELEASES, *rows), key=lambda r: Version(r.torch)))


def release_of(torch_version: str) -> Release | None:
    """The release row of an exact torch version (local label ignored)."""
    base = torch_version.split("+")[0]
    return next((r for r in RELEASES if r.torch == base), None)


def newest() -> Release:
    """The newest release the table knows."""
    return max(RELEASES, key=lambda r: Version(r.torch))


def newest_version(project: str) -> Version | None:
    """The newest version of ``project`` (torch, torchvision, torchaudio) any row names.

    >>> str(newest_version("torch")) == newest().torch
    True
    """
    versions = [Version(v) for r in RELEASES if (v := r.version_of(project))]
    return max(versions) if versions else None


def current_variants() -> frozenset[str]:
    """The variants of the newest release: pages that may still gain versions.

    >>> "cu130" in current_variants(), "cu118" in current_variants()
    (True, False)
    """
    return frozenset(newest().variants)


def known_variants() -> tuple[Variant, ...]:
    """Every variant any release names, best first.

    >>> [v.tag for v in known_variants()][:2]
    ['cu132', 'cu130']
    """
    tags = {tag for r in RELEASES for tag in r.variants}
    return tuple(sorted(map(Variant.parse, tags), key=Variant.sort_key, reverse=True))


def known_versions(project: str, variant: Variant) -> list[Version]:
    """The versions of ``project`` the table says ``variant``'s page holds, oldest first.

    >>> [str(v) for v in known_versions("torchvision", Variant.parse("cu110"))]
    ['0.8.0', '0.8.2']
    """
    return [
        Version(version)
        for r in RELEASES
        if variant.tag in r.variants and (version := r.version_of(project))
    ]


def cuda_builds(torch_version: str) -> tuple[Variant, ...]:
    """The CUDA variants a torch release was published for, best first (empty if unknown).

    >>> [v.tag for v in cuda_builds("1.7.1")]
    ['cu110', 'cu102', 'cu101', 'cu92']
    """
    row = release_of(torch_version)
    variants = (Variant.parse(tag) for tag in (row.variants if row else ()))
    return tuple(
        sorted((v for v in variants if v.kind == "cuda"), key=Variant.sort_key, reverse=True)
    )


def companion_pin(project: str, version: str) -> str | None:
    """The torch version a torchvision/torchaudio release was published with.

    >>> companion_pin("torchvision", "0.8.2")
    '1.7.1'
    """
    base = version.split("+")[0]
    return next((r.torch for r in RELEASES if r.version_of(project) == base), None)
