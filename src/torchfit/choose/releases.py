"""Data only: which torchvision/torchaudio release goes with which torch, and the
variants each torch release was published for.

torchfit reads companion pins from the wheels' own metadata; this table is the
fallback when no metadata can be had (``--offline`` over the bundled snapshots),
and a hint for which variant pages to ask first.

Source: torch_release_compat_matrix.csv, assembled from pytorch/pytorch.github.io
``_get_started/previous-versions.md`` (1.0.0-2.3.1), the March-2021 ``torch_stable.html``
(1.0-1.8 variants), pytorch/test-infra ``generate_binary_build_matrix.py`` history
(1.13.1-2.13.0), the pytorch/vision README and pytorch/audio installation docs, plus
the variants seen in public lock files. torch 1.8.2 (LTS, its own index) is left out.
"""

from __future__ import annotations

from dataclasses import dataclass

from torchfit.variants import Variant


@dataclass(frozen=True)
class Release:
    torch: str
    torchvision: str | None
    torchaudio: str | None
    variants: tuple[str, ...]


def _r(torch: str, vision: str | None, audio: str | None, variants: str) -> Release:
    return Release(torch, vision, audio, tuple(variants.split()))


# Oldest first. Add a row per torch release (and one CHANGELOG line).
RELEASES: tuple[Release, ...] = (
    _r("1.0.0", "0.2.1", None, "cpu cu100 cu80 cu90"),
    _r("1.0.1", "0.2.2", None, "cpu cu100 cu80 cu90"),
    _r("1.1.0", "0.3.0", None, "cpu cu100 cu90"),
    _r("1.2.0", "0.4.0", None, "cpu cu100 cu92"),
    _r("1.3.0", "0.4.1", None, "cpu cu100 cu101 cu92"),  # torchvision pairing inferred
    _r("1.3.1", "0.4.2", None, "cpu cu100 cu101 cu92"),  # torchvision pairing inferred
    _r("1.4.0", "0.5.0", "0.4.0", "cpu cu100 cu101 cu92"),
    _r("1.5.0", "0.6.0", "0.5.0", "cpu cu101 cu102 cu92"),
    _r("1.5.1", "0.6.1", "0.5.1", "cpu cu101 cu102 cu92"),
    _r("1.6.0", "0.7.0", "0.6.0", "cpu cu101 cu102 cu92"),
    _r("1.7.0", "0.8.0", "0.7.0", "cpu cu101 cu102 cu110 cu92"),
    _r("1.7.1", "0.8.2", "0.7.2", "cpu cu101 cu102 cu110 cu92 rocm3.7 rocm3.8"),
    _r("1.8.0", "0.9.0", "0.8.0", "cpu cu101 cu102 cu111 rocm3.10 rocm4.0.1"),
    _r("1.8.1", "0.9.1", "0.8.1", "cpu cu101 cu102 cu111 rocm3.10 rocm4.0.1"),
    _r("1.9.0", "0.10.0", "0.9.0", "cpu cu102 cu111 rocm4.0.1 rocm4.1 rocm4.2"),
    _r("1.9.1", "0.10.1", "0.9.1", "cpu cu102 cu111 rocm4.0.1 rocm4.1 rocm4.2"),
    _r("1.10.0", "0.11.0", "0.10.0", "cpu cu102 cu111 rocm4.0.1 rocm4.1 rocm4.2"),
    _r("1.10.1", "0.11.2", "0.10.1", "cpu cu102 cu111 rocm4.0.1 rocm4.1 rocm4.2"),
    _r("1.11.0", "0.12.0", "0.11.0", "cpu cu102 cu113 rocm4.5.2"),
    _r("1.12.0", "0.13.0", "0.12.0", "cpu cu102 cu113 cu116 rocm5.1.1"),
    _r("1.12.1", "0.13.1", "0.12.1", "cpu cu102 cu113 cu116 rocm5.1.1"),
    _r("1.13.0", "0.14.0", "0.13.0", "cpu cu116 cu117 rocm5.2"),
    _r("1.13.1", "0.14.1", "0.13.1", "cpu cu116 cu117 rocm5.2"),
    _r("2.0.0", "0.15.1", "2.0.1", "cpu cu117 cu118 rocm5.3 rocm5.4.2"),
    _r("2.0.1", "0.15.2", "2.0.2", "cpu cu117 cu118 rocm5.3 rocm5.4.2"),
    _r("2.1.0", "0.16.0", "2.1.0", "cpu cu118 cu121 rocm5.5 rocm5.6"),
    _r("2.1.1", "0.16.1", "2.1.1", "cpu cu118 cu121 rocm5.5 rocm5.6"),
    _r("2.1.2", "0.16.2", "2.1.2", "cpu cu118 cu121 rocm5.5 rocm5.6"),
    _r("2.2.0", "0.17.0", "2.2.0", "cpu cu118 cu121 rocm5.6 rocm5.7"),
    _r("2.2.1", "0.17.1", "2.2.1", "cpu cu118 cu121 rocm5.6 rocm5.7"),
    _r("2.2.2", "0.17.2", "2.2.2", "cpu cu118 cu121 rocm5.6 rocm5.7"),
    _r("2.3.0", "0.18.0", "2.3.0", "cpu cu118 cu121 rocm5.7 rocm6.0"),
    _r("2.3.1", "0.18.1", "2.3.1", "cpu cu118 cu121 rocm5.7 rocm6.0"),
    _r("2.4.0", "0.19.0", "2.4.0", "cpu cu118 cu121 cu124 rocm6.0 rocm6.1"),
    _r("2.4.1", "0.19.1", "2.4.1", "cpu cu118 cu121 cu124 rocm6.0 rocm6.1"),
    _r("2.5.0", "0.20.0", "2.5.0", "cpu cu118 cu121 cu124 rocm6.1 rocm6.2"),
    _r("2.5.1", "0.20.1", "2.5.1", "cpu cu118 cu121 cu124 rocm6.1 rocm6.2"),
    _r("2.6.0", "0.21.0", "2.6.0", "cpu cu118 cu124 cu126 rocm6.1 rocm6.2.4"),
    _r("2.7.0", "0.22.0", "2.7.0", "cpu cu118 cu126 cu128 rocm6.2.4 rocm6.3"),
    _r("2.7.1", "0.22.1", "2.7.1", "cpu cu118 cu126 cu128 rocm6.2.4 rocm6.3 xpu"),
    _r("2.8.0", "0.23.0", "2.8.0", "cpu cu126 cu128 cu129 rocm6.3 rocm6.4 xpu"),
    _r("2.9.0", "0.24.0", "2.9.0", "cpu cu126 cu128 cu129 cu130 rocm6.3 rocm6.4"),
    _r("2.9.1", "0.24.1", "2.9.1", "cpu cu126 cu128 cu129 cu130 rocm6.3 rocm6.4"),
    _r("2.10.0", "0.25.0", "2.10.0", "cpu cu126 cu128 cu129 cu130 rocm7.0 rocm7.1"),
    _r("2.11.0", "0.26.0", "2.11.0", "cpu cu126 cu128 cu129 cu130 rocm7.1 rocm7.2"),
    _r("2.12.0", "0.27.0", None, "cpu cu126 cu130 cu132 rocm7.1 rocm7.2"),
    _r("2.12.1", "0.27.1", "2.11.0", "cpu cu126 cu129 cu130 cu132 rocm7.1 rocm7.2"),
    _r("2.13.0", "0.28.0", None, "cpu cu126 cu129 cu130 cu132 rocm7.1 rocm7.2 xpu"),
)

_BY_TORCH = {release.torch: release for release in RELEASES}


def release_of(torch_version: str) -> Release | None:
    """The release row of an exact torch version (local label ignored)."""
    return _BY_TORCH.get(torch_version.split("+")[0])


def cuda_builds(torch_version: str) -> tuple[Variant, ...]:
    """The CUDA variants a torch release was published for, best first (empty if unknown).

    >>> [v.tag for v in cuda_builds("1.7.1")]
    ['cu110', 'cu102', 'cu101', 'cu92']
    """
    release = release_of(torch_version)
    variants = (Variant.parse(tag) for tag in (release.variants if release else ()))
    return tuple(
        sorted((v for v in variants if v.kind == "cuda"), key=Variant.sort_key, reverse=True)
    )


def companion_pin(project: str, version: str) -> str | None:
    """The torch version a torchvision/torchaudio release was published with.

    >>> companion_pin("torchvision", "0.8.2")
    '1.7.1'
    """
    base = version.split("+")[0]
    for release in RELEASES:
        if getattr(release, project, None) == base:
            return release.torch
    return None
