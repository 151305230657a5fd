"""Safety net: every kernel lookup gives what it gave before the release table held the
kernel lists (recorded from the former per-series arch table, one run, checked in here).

Each line: platform, variant, the torch minor series it holds for, then the SASS/PTX list
and a digest of list, source and note (so a moved source or note is caught too). Every
release of a listed series, and an unreleased patch of it (X.Y.99), must give that answer;
every other (version, CUDA variant, platform) must give None. Releases newer than the
recording (torch 2.14 on) are not checked: a new row cannot change an older answer.
"""

from __future__ import annotations

import hashlib

import pytest
from packaging.version import Version

from torchfit.choose import archs, releases
from torchfit.choose.archs import ArchList
from torchfit.variants import Variant

ARCH_LISTS = """
linux cu101 1.8: 37,50,60,70 e01fa565ba
linux cu102 1.8: 37,50,60,70 e01fa565ba
linux cu102 1.9: 37,50,60,70 b82f13991f
linux cu102 1.10: 37,50,60,70 681acaebc5
linux cu102 1.11: 37,50,60,70 deb1f4de41
linux cu102 1.12: 37,50,60,70 2da3a3409c
linux cu110 1.8: 37,50,60,70,75,80 321d30d03e
linux cu111 1.8: 37,50,60,70,75,80,86 077db26e64
linux cu111 1.9: 37,50,60,70,75,80,86 714d9cf74d
linux cu111 1.10: 37,50,60,70,75,80,86 8b46495872
linux cu113 1.10: 37,50,60,70,75,80,86 8b46495872
linux cu113 1.11: 37,50,60,70,75,80,86 9928ddb1b5
linux cu113 1.12: 37,50,60,70,75,80,86 0abf6339cf
linux cu115 1.11: 37,50,60,70,75,80,86 9928ddb1b5
linux cu116 1.12: 37,50,60,70,75,80,86 0abf6339cf
linux cu116 1.13: 37,50,60,70,75,80,86 aee24a810e
linux cu117 1.13: 37,50,60,70,75,80,86 aee24a810e
linux cu117 2.0: 37,50,60,70,75,80,86 f04ba39fd1
linux cu118 2.0: 37,50,60,70,75,80,86,90 f4acccde86
linux cu118 2.1-2.5: 37,50,60,70,75,80,86,90 9bb89f93a1
linux cu121 2.1-2.5: 50,60,70,75,80,86,90 8936dd9085
linux cu124 2.4-2.5: 50,60,70,75,80,86,90 e4cdcea347
linux cu124 2.6: 50,60,70,75,80,86,90 d06970d301
linux cu126 2.6-2.13: 50,60,70,75,80,86,90 d06970d301
linux cu128 2.7: 75,80,86,90,100,120/120 aaa20ad811
linux cu128 2.8-2.10: 70,75,80,86,90,100,120 b4396fa7a4
linux cu128 2.11: 75,80,86,90,100,120 c5a526c1ef
linux cu129 2.8-2.10: 70,75,80,86,90,100,120/120 5a5755aa0b
linux cu130 2.9-2.13: 75,80,86,90,100,120 19e956f3f8
linux cu132 2.12-2.13: 75,80,86,90,100,120 a092260df6
linux-aarch64 cu124 2.4-2.5: 90 3621c183de
linux-aarch64 cu126 2.6-2.7: 90 f47f9212a2
linux-aarch64 cu126 2.9-2.13: 80,90 3a58b85e68
linux-aarch64 cu128 2.7: 90,100,120 c10c7299f8
linux-aarch64 cu128 2.9-2.11: 80,90,100,120 d0c1b7eefe
linux-aarch64 cu129 2.8: 80,90,100,120 8a0a7d2551
linux-aarch64 cu130 2.9-2.13: 80,90,100,110,120/120 a39ce9584a
linux-aarch64 cu132 2.12-2.13: 80,90,100,110,120/120 ff68409225
windows cu92 1.8: 37,50,60,61,70/37 9912eeb86d
windows cu92 1.9-1.11: 37,50,60,61,70/37 b7d704bac5
windows cu101 1.8: 37,50,60,61,70,75/37 870a384712
windows cu101 1.9-1.11: 37,50,60,61,70,75/37 42780b7287
windows cu102 1.8: 37,50,60,61,70,75/37 870a384712
windows cu102 1.9-1.11: 37,50,60,61,70,75/37 42780b7287
windows cu102 1.12-1.13: 37,50,60,61,70,75/37 644ea33346
windows cu110 1.8: 37,50,60,61,70,75,80/37 93e04fa948
windows cu110 1.9-1.11: 37,50,60,61,70,75,80/37 4395acb77b
windows cu111 1.8: 37,50,60,61,70,75,80,86/37 005e2799a2
windows cu111 1.9-1.11: 37,50,60,61,70,75,80,86/37 24e20107c5
windows cu112 1.8: 37,50,60,61,70,75,80,86/37 005e2799a2
windows cu112 1.9-1.11: 37,50,60,61,70,75,80,86/37 24e20107c5
windows cu113 1.9-1.11: 37,50,60,61,70,75,80,86/37 24e20107c5
windows cu113 1.12-1.13: 37,50,60,61,70,75,80,86/37 38adc152c9
windows cu115 1.9-1.11: 37,50,60,61,70,75,80,86/37 24e20107c5
windows cu115 1.12-1.13: 37,50,60,61,70,75,80,86/37 38adc152c9
windows cu116 1.12-1.13: 37,50,60,61,70,75,80,86/37 38adc152c9
windows cu116 2.0: 37,50,60,61,70,75,80,86/37 fd700e48f8
windows cu117 1.12-1.13: 37,50,60,61,70,75,80,86/37 38adc152c9
windows cu117 2.0: 37,50,60,61,70,75,80,86/37 fd700e48f8
windows cu118 2.0-2.5: 37,50,60,61,70,75,80,86,90/37 2209ea3840
windows cu121 2.1-2.5: 50,60,61,70,75,80,86,90 a6b5fb10d7
windows cu124 2.4-2.5: 50,60,61,70,75,80,86,90 b63d009a54
windows cu126 2.6: 50,60,61,70,75,80,86,90 97de02fd02
windows cu126 2.7-2.13: 50,60,61,70,75,80,86,90 4922dbcfdb
windows cu128 2.7: 75,80,86,90,100,120 ef9f3a7741
windows cu128 2.9-2.10: 70,75,80,86,90,100,120 93b8b538d7
windows cu128 2.11: 75,80,86,90,100,120 05f6d13514
windows cu130 2.9-2.13: 75,80,86,90,100,120 fdf648f62c
windows cu132 2.12-2.13: 75,80,86,90,100,120 fdf648f62c
"""
LAST_KNOWN = """
linux cu101 1.9-2.13: 1.8 e01fa565ba
linux cu102 1.13-2.13: 1.12 2da3a3409c
linux cu110 1.9-2.13: 1.8 321d30d03e
linux cu111 1.11-2.13: 1.10 8b46495872
linux cu113 1.13-2.13: 1.12 0abf6339cf
linux cu115 1.12-2.13: 1.11 9928ddb1b5
linux cu116 2.0-2.13: 1.13 aee24a810e
linux cu117 2.1-2.13: 2.0 f04ba39fd1
linux cu118 2.6-2.13: 2.5 9bb89f93a1
linux cu121 2.6-2.13: 2.5 8936dd9085
linux cu124 2.7-2.13: 2.6 d06970d301
linux cu128 2.12-2.13: 2.11 c5a526c1ef
linux cu129 2.11-2.13: 2.10 5a5755aa0b
linux-aarch64 cu124 2.6-2.13: 2.5 3621c183de
linux-aarch64 cu126 2.8: 2.7 f47f9212a2
linux-aarch64 cu128 2.8: 2.7 c10c7299f8
linux-aarch64 cu128 2.12-2.13: 2.11 d0c1b7eefe
linux-aarch64 cu129 2.9-2.13: 2.8 8a0a7d2551
windows cu92 1.12-2.13: 1.11 b7d704bac5
windows cu101 1.12-2.13: 1.11 42780b7287
windows cu102 2.0-2.13: 1.13 644ea33346
windows cu110 1.12-2.13: 1.11 4395acb77b
windows cu111 1.12-2.13: 1.11 24e20107c5
windows cu112 1.12-2.13: 1.11 24e20107c5
windows cu113 2.0-2.13: 1.13 38adc152c9
windows cu115 2.0-2.13: 1.13 38adc152c9
windows cu116 2.1-2.13: 2.0 fd700e48f8
windows cu117 2.1-2.13: 2.0 fd700e48f8
windows cu118 2.6-2.13: 2.5 2209ea3840
windows cu121 2.6-2.13: 2.5 a6b5fb10d7
windows cu124 2.6-2.13: 2.5 b63d009a54
windows cu128 2.8: 2.7 ef9f3a7741
windows cu128 2.12-2.13: 2.11 05f6d13514
"""
MIN_TORCH_FOR = """
linux 3.7: 1.8/cu101 1.8/cu102 1.8/cu111 1.11/cu113 1.12/cu116 1.13/cu117 2.0/cu118
linux 5.0: 1.8/cu101 1.8/cu102 1.8/cu111 1.11/cu113 1.12/cu116 1.13/cu117 2.0/cu118
    2.1/cu121 2.4/cu124 2.6/cu126
linux 6.1: 1.8/cu101 1.8/cu102 1.8/cu111 1.11/cu113 1.12/cu116 1.13/cu117 2.0/cu118
    2.1/cu121 2.4/cu124 2.6/cu126
linux 7.0: 1.8/cu101 1.8/cu102 1.8/cu111 1.11/cu113 1.12/cu116 1.13/cu117 2.0/cu118
    2.1/cu121 2.4/cu124 2.6/cu126 2.8/cu128 2.8/cu129
linux 7.5: 1.8/cu101 1.8/cu102 1.8/cu111 1.11/cu113 1.12/cu116 1.13/cu117 2.0/cu118
    2.1/cu121 2.4/cu124 2.6/cu126 2.7/cu128 2.8/cu129 2.9/cu130 2.12/cu132
linux 8.0: 1.8/cu111 1.11/cu113 1.12/cu116 1.13/cu117 2.0/cu118 2.1/cu121 2.4/cu124
    2.6/cu126 2.7/cu128 2.8/cu129 2.9/cu130 2.12/cu132
linux 8.6: 1.8/cu111 1.11/cu113 1.12/cu116 1.13/cu117 2.0/cu118 2.1/cu121 2.4/cu124
    2.6/cu126 2.7/cu128 2.8/cu129 2.9/cu130 2.12/cu132
linux 9.0: 2.0/cu118 2.1/cu121 2.4/cu124 2.6/cu126 2.7/cu128 2.8/cu129 2.9/cu130 2.12/cu132
linux 10.0: 2.7/cu128 2.8/cu129 2.9/cu130 2.12/cu132
linux 11.0:
linux 12.0: 2.7/cu128 2.8/cu129 2.9/cu130 2.12/cu132
linux 13.0: 2.7/cu128 2.8/cu129
linux-aarch64 3.7:
linux-aarch64 5.0:
linux-aarch64 6.1:
linux-aarch64 7.0:
linux-aarch64 7.5:
linux-aarch64 8.0: 2.8/cu129 2.9/cu126 2.9/cu128 2.9/cu130 2.12/cu132
linux-aarch64 8.6: 2.8/cu129 2.9/cu126 2.9/cu128 2.9/cu130 2.12/cu132
linux-aarch64 9.0: 2.4/cu124 2.6/cu126 2.7/cu128 2.8/cu129 2.9/cu130 2.12/cu132
linux-aarch64 10.0: 2.7/cu128 2.8/cu129 2.9/cu130 2.12/cu132
linux-aarch64 11.0: 2.9/cu130 2.12/cu132
linux-aarch64 12.0: 2.7/cu128 2.8/cu129 2.9/cu130 2.12/cu132
linux-aarch64 13.0: 2.9/cu130 2.12/cu132
windows 3.7: 1.8/cu101 1.8/cu102 1.8/cu111 1.11/cu113 1.12/cu116 1.13/cu117 2.0/cu118
windows 5.0: 1.8/cu101 1.8/cu102 1.8/cu111 1.11/cu113 1.12/cu116 1.13/cu117 2.0/cu118
    2.1/cu121 2.4/cu124 2.6/cu126
windows 6.1: 1.8/cu101 1.8/cu102 1.8/cu111 1.11/cu113 1.12/cu116 1.13/cu117 2.0/cu118
    2.1/cu121 2.4/cu124 2.6/cu126
windows 7.0: 1.8/cu101 1.8/cu102 1.8/cu111 1.11/cu113 1.12/cu116 1.13/cu117 2.0/cu118
    2.1/cu121 2.4/cu124 2.6/cu126 2.9/cu128
windows 7.5: 1.8/cu101 1.8/cu102 1.8/cu111 1.11/cu113 1.12/cu116 1.13/cu117 2.0/cu118
    2.1/cu121 2.4/cu124 2.6/cu126 2.7/cu128 2.9/cu130 2.12/cu132
windows 8.0: 1.8/cu101 1.8/cu102 1.8/cu111 1.11/cu113 1.12/cu116 1.13/cu117 2.0/cu118
    2.1/cu121 2.4/cu124 2.6/cu126 2.7/cu128 2.9/cu130 2.12/cu132
windows 8.6: 1.8/cu101 1.8/cu102 1.8/cu111 1.11/cu113 1.12/cu116 1.13/cu117 2.0/cu118
    2.1/cu121 2.4/cu124 2.6/cu126 2.7/cu128 2.9/cu130 2.12/cu132
windows 9.0: 1.8/cu101 1.8/cu102 1.8/cu111 1.11/cu113 1.12/cu116 1.13/cu117 2.0/cu118
    2.1/cu121 2.4/cu124 2.6/cu126 2.7/cu128 2.9/cu130 2.12/cu132
windows 10.0: 1.8/cu101 1.8/cu102 1.8/cu111 1.11/cu113 1.12/cu116 1.13/cu117 2.0/cu118
    2.7/cu128 2.9/cu130 2.12/cu132
windows 11.0: 1.8/cu101 1.8/cu102 1.8/cu111 1.11/cu113 1.12/cu116 1.13/cu117 2.0/cu118
windows 12.0: 1.8/cu101 1.8/cu102 1.8/cu111 1.11/cu113 1.12/cu116 1.13/cu117 2.0/cu118
    2.7/cu128 2.9/cu130 2.12/cu132
windows 13.0: 1.8/cu101 1.8/cu102 1.8/cu111 1.11/cu113 1.12/cu116 1.13/cu117 2.0/cu118
macos 3.7:
macos 5.0:
macos 6.1:
macos 7.0:
macos 7.5:
macos 8.0:
macos 8.6:
macos 9.0:
macos 10.0:
macos 11.0:
macos 12.0:
macos 13.0:
"""


def _digest(kernels: ArchList) -> str:
    text = f"{kernels}|{kernels.source}|{kernels.note}"
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def _short(kernels: ArchList) -> str:
    sass = ",".join(f"{a}{b}" for a, b in kernels.sass)
    ptx = ",".join(f"{a}{b}" for a, b in kernels.ptx)
    return f"{sass}/{ptx}" if ptx else sass


RECORDED = Version("2.13")  # the newest series in the recording


def _series() -> list[str]:
    seen: list[str] = []
    for release in releases.RELEASES:
        minor = ".".join(release.torch.split(".")[:2])
        if minor not in seen and Version(minor) <= RECORDED:
            seen.append(minor)
    return seen


def _expected(text: str) -> dict[tuple[str, str, str], str]:
    """(platform, tag, series) -> answer, series ranges ("2.1-2.5") spelled out."""
    series = _series()
    table = {}
    for line in text.strip().splitlines():
        key, answer = line.split(": ")
        platform, tag, *spans = key.split()
        for span in spans:
            first, _, last = span.partition("-")
            lo, hi = series.index(first), series.index(last or first)
            for minor in series[lo : hi + 1]:
                table[(platform, tag, minor)] = answer
    return table


def _versions(minor: str) -> list[str]:
    return [r.torch for r in releases.RELEASES if r.torch.startswith(f"{minor}.")] + [f"{minor}.99"]


def _cuda_tags() -> list[str]:
    tags = {v.tag for v in releases.known_variants() if v.kind == "cuda"}
    tags |= {tag for r in releases.RELEASES for _, tag, _ in r.kernels}
    return sorted(tags, key=lambda t: Variant.parse(t).sort_key())


@pytest.mark.parametrize("platform", archs.PLATFORMS)
def test_arch_lists_unchanged(platform: str) -> None:
    expected = _expected(ARCH_LISTS)
    for tag in _cuda_tags():
        for minor in _series():
            want = expected.get((platform, tag, minor))
            for version in _versions(minor):
                kernels = archs.arch_list(version, Variant.parse(tag), platform)
                got = None if kernels is None else f"{_short(kernels)} {_digest(kernels)}"
                assert got == want, (version, tag, platform)


@pytest.mark.parametrize("platform", archs.PLATFORMS)
def test_last_known_lists_unchanged(platform: str) -> None:
    expected = _expected(LAST_KNOWN)
    for tag in _cuda_tags():
        for minor in _series():
            if (platform, tag, minor) in _expected(ARCH_LISTS):
                continue  # a build with a list of its own never asks for an older one
            want = expected.get((platform, tag, minor))
            for version in _versions(minor):
                older = archs.last_known_arch_list(version, Variant.parse(tag), platform)
                got = None if older is None else f"{older[0]} {_digest(older[1])}"
                assert got == want, (version, tag, platform)


def test_min_torch_for_unchanged() -> None:
    lines = MIN_TORCH_FOR.strip().replace("\n    ", " ").splitlines()
    assert len(lines) == len(archs.PLATFORMS) * 12
    for line in lines:
        key, _, pairs = line.partition(":")
        platform, cc = key.split()
        major, minor = map(int, cc.split("."))
        found = archs.min_torch_for((major, minor), platform)
        got = " ".join(f"{a}/{b}" for a, b in found if Version(a) <= RECORDED)
        assert got == pairs.strip(), line
