"""The data tables agree with each other: adding a CUDA release or a torch release is one row,
and a missing row fails here rather than in a user's plan."""

from __future__ import annotations

from packaging.version import Version

from torchfit.choose.policy import KNOWN_VARIANTS
from torchfit.choose.releases import RELEASES, companion_pin, release_of
from torchfit.machine.driver_table import DRIVER_ROWS
from torchfit.machine.drivers import min_driver_for_cuda


def test_every_cuda_variant_has_a_driver_row() -> None:
    for variant in KNOWN_VARIANTS:
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


def test_known_facts() -> None:
    release = release_of("1.7.1+cu101")
    assert release is not None
    assert (release.torchvision, release.torchaudio) == ("0.8.2", "0.7.2")
    assert "cu102" in release.variants and "cu111" not in release.variants
