"""The data tables agree with each other: adding a CUDA release or a torch release is one row,
and a missing row fails here rather than in a user's plan."""

from __future__ import annotations

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from torchfit.choose.releases import (
    RELEASES,
    companion_pin,
    current_variants,
    known_variants,
    known_versions,
    release_of,
)
from torchfit.machine.driver_table import DRIVER_ROWS
from torchfit.machine.drivers import min_driver_for_cuda
from torchfit.variants import Variant


def test_every_cuda_variant_has_a_driver_row() -> None:
    for variant in known_variants():
        if variant.cuda is not None:
            assert min_driver_for_cuda(variant.cuda, "linux"), variant.tag


def test_driver_rows_have_sources_and_are_newest_first() -> None:
    assert all(row.source for row in DRIVER_ROWS)
    cudas = [row.cuda for row in DRIVER_ROWS]
    assert cudas == sorted(cudas, reverse=True)


def test_releases_are_oldest_first_and_unique() -> None:
    versions = [Version(release.torch) for release in RELEASES]
    assert versions == sorted(versions)
    assert len(set(versions)) == len(versions)


def test_companion_pins_round_trip() -> None:
    for release in RELEASES:
        assert release_of(release.torch) is release
        if release.torchvision:
            assert companion_pin("torchvision", release.torchvision) == release.torch


def test_python_floors_parse_and_never_fall() -> None:
    def floor(spec: str) -> Version:
        return min(Version(s.version) for s in SpecifierSet(spec) if s.operator == ">=")

    floors = [floor(r.requires_python) for r in RELEASES if r.requires_python]
    assert floors == sorted(floors)
    assert floors[0] == Version("2.7")
    assert SpecifierSet(RELEASES[0].requires_python or "").contains("3.5")
    assert not SpecifierSet(RELEASES[0].requires_python or "").contains("3.4")


def test_derived_views() -> None:
    assert current_variants() == set(max(RELEASES, key=lambda r: Version(r.torch)).variants)
    variants = known_variants()
    assert list(variants) == sorted(variants, key=lambda v: v.sort_key(), reverse=True)
    assert {v.tag for v in variants} == {t for r in RELEASES for t in r.variants}
    cu110 = Variant.parse("cu110")
    assert known_versions("torch", cu110) == [Version("1.7.0"), Version("1.7.1")]
    assert known_versions("torchaudio", cu110) == [Version("0.7.0"), Version("0.7.2")]
    assert known_versions("numpy", cu110) == []


def test_known_facts() -> None:
    release = release_of("1.7.1+cu101")
    assert release is not None
    assert (release.torchvision, release.torchaudio) == ("0.8.2", "0.7.2")
    assert "cu102" in release.variants and "cu111" not in release.variants
    assert release.requires_python == ">=3.6"  # the matrix lists 3.6-3.9
