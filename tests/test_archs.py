"""Kernel architectures per torch build: the parser, the serving rule and real facts."""

from __future__ import annotations

import doctest

import pytest

from torchfit.choose import archs as _archs
from torchfit.choose import kernels as _kernels
from torchfit.choose.archs import ArchList, arch_list, min_torch_for, parse_arch_list
from torchfit.choose.releases import RELEASES
from torchfit.variants import Variant


def served(torch: str, tag: str, cc: tuple[int, int], platform: str = "linux") -> bool | None:
    archs = arch_list(torch, Variant.parse(tag), platform)
    return None if archs is None else archs.serves(cc)


def archs(text: str) -> ArchList:
    sass, ptx = parse_arch_list(text)
    return ArchList(sass, ptx, source="test")


def test_doctests() -> None:
    assert doctest.testmod(_archs).failed == 0
    assert doctest.testmod(_kernels).failed == 0


def test_parse_build_script_notation() -> None:
    assert parse_arch_list("5.0;6.0;7.0;7.5;8.0;8.6;3.7;9.0") == (
        ((3, 7), (5, 0), (6, 0), (7, 0), (7, 5), (8, 0), (8, 6), (9, 0)),
        (),
    )
    assert parse_arch_list("3.7+PTX;5.0") == (((3, 7), (5, 0)), ((3, 7),))
    assert parse_arch_list("7.0 7.5, 12.0+ptx") == (((7, 0), (7, 5), (12, 0)), ((12, 0),))


def test_parse_runtime_notation() -> None:
    text = "sm_50 sm_60 sm_61 sm_70 sm_75 sm_80 sm_86 sm_37 sm_90 compute_37"
    sass, ptx = parse_arch_list(text)
    assert sass == ((3, 7), (5, 0), (6, 0), (6, 1), (7, 0), (7, 5), (8, 0), (8, 6), (9, 0))
    assert ptx == ((3, 7),)
    assert parse_arch_list("sm_100 sm_120 compute_120") == (((10, 0), (12, 0)), ((12, 0),))


def test_parse_drops_arch_specific_and_rejects_junk() -> None:
    assert parse_arch_list("9.0a;sm_100a;8.0") == (((8, 0),), ())
    assert parse_arch_list("") == ((), ())
    with pytest.raises(ValueError, match="Kepler"):
        parse_arch_list("Kepler;5.0")


def test_str_is_runtime_notation_and_round_trips() -> None:
    build = archs("3.7+PTX;5.0;6.1")
    assert str(build) == "sm_37 sm_50 sm_61 compute_37"
    assert parse_arch_list(str(build)) == (build.sass, build.ptx)


@pytest.mark.parametrize(
    ("text", "cc", "expected"),
    [
        ("sm_86", (8, 9), True),  # same major, 6 <= 9
        ("sm_86", (8, 0), False),  # a cubin never runs on an older minor
        ("sm_80", (9, 0), False),  # SASS never crosses majors
        ("compute_120", (12, 1), True),  # PTX is JIT-compiled for newer GPUs
        ("compute_120", (13, 0), True),
        ("compute_120", (10, 0), False),
        ("sm_120", (10, 0), False),
        ("sm_120", (12, 1), True),
    ],
)
def test_serving_rule(text: str, cc: tuple[int, int], expected: bool) -> None:
    assert archs(text).serves(cc) is expected


def test_gtx_1080() -> None:
    assert served("2.8.0+cu126", "cu126", (6, 1)) is True
    assert served("2.8.0+cu128", "cu128", (6, 1)) is False


def test_rtx_5090() -> None:
    assert served("2.6.0+cu126", "cu126", (12, 0)) is False
    assert served("2.7.0+cu128", "cu128", (12, 0)) is True


def test_v100() -> None:
    assert served("2.10.0", "cu128", (7, 0)) is True
    assert served("2.11.0+cu128", "cu128", (7, 0)) is False
    assert served("2.11.0", "cu130", (7, 0)) is False
    assert served("2.11.0", "cu126", (7, 0)) is True
    assert served("2.11.0", "cu129", (7, 0)) is None


def test_old_and_windows_builds() -> None:
    assert served("1.8.1", "cu102", (3, 7)) is True  # K80
    windows = arch_list("2.4.1", Variant.parse("cu121"), "windows")
    assert windows is not None and (6, 1) in windows.sass and windows.serves((6, 1))
    linux = arch_list("2.4.1", Variant.parse("cu121"), "linux")
    assert linux is not None and (6, 1) not in linux.sass
    assert served("2.5.1", "cu124", (9, 0), "linux-aarch64") is True
    assert served("2.5.1", "cu124", (8, 0), "linux-aarch64") is False


def test_conflicts_resolved_as_documented() -> None:
    cu128 = arch_list("2.7.1", Variant.parse("cu128"), "linux")
    assert cu128 is not None and (5, 0) not in cu128.sass and cu128.ptx == ((12, 0),)
    assert "expected output" in cu128.note
    cu130 = arch_list("2.13.0", Variant.parse("cu130"), "linux")
    assert cu130 is not None and cu130.ptx == () and cu130.note


def test_unknown_is_none() -> None:
    assert arch_list("1.7.1", Variant.parse("cu110"), "linux") is None
    assert arch_list("2.8.0", Variant.parse("cpu"), "linux") is None
    assert arch_list("2.8.0", Variant.parse("rocm6.4"), "linux") is None
    assert arch_list("2.8.0", Variant.parse("cu128"), "macos") is None
    assert arch_list("2.7.0", Variant.parse("cu128"), "windows") is None
    assert arch_list("2.15.0", Variant.parse("cu130"), "linux") is None
    with pytest.raises(ValueError, match="platform"):
        arch_list("2.8.0", Variant.parse("cu128"), "Linux")


def test_min_torch_for() -> None:
    rtx_5090 = min_torch_for((12, 0), "linux")
    assert rtx_5090[0] == ("2.7", "cu128")
    assert ("2.8", "cu129") in rtx_5090 and ("2.9", "cu130") in rtx_5090
    assert min_torch_for((3, 7), "linux")[0] == ("1.8", "cu101")
    assert ("2.8", "cu128") in min_torch_for((7, 0), "linux")
    # Only builds that were published: the Windows cu115 script sat on the 1.9 branch too.
    for minor, tag in min_torch_for((8, 6), "windows"):
        assert any(r.torch.startswith(f"{minor}.") and tag in r.variants for r in RELEASES), (
            minor,
            tag,
        )
    assert min_torch_for((12, 0), "macos") == []


def test_kernel_lists_have_sources() -> None:
    named = [v for v in vars(_kernels).values() if isinstance(v, ArchList)]
    assert len(named) >= 40
    for kernels in named + [a for r in RELEASES for _, _, a in r.kernels]:
        assert kernels.source.strip(), kernels
        assert kernels.sass or kernels.ptx


def test_each_release_names_one_list_per_build() -> None:
    for release in RELEASES:
        builds = [(platform, tag) for platform, tag, _ in release.kernels]
        assert len(builds) == len(set(builds)), release.torch
        for platform, tag in builds:
            assert platform in _archs.PLATFORMS and platform != "macos", (release.torch, platform)
            assert Variant.parse(tag).kind == "cuda", (release.torch, tag)


def test_a_patch_release_without_a_row_takes_its_series_row() -> None:
    assert arch_list("2.8.1", Variant.parse("cu128"), "linux") is arch_list(
        "2.8.0", Variant.parse("cu128"), "linux"
    )
    # A series with no row has no list of its own; the newest older one is the best guess.
    cu130 = Variant.parse("cu130")
    assert arch_list("2.98.0", cu130, "linux") is None
    older = _archs.last_known_arch_list("2.98.0", cu130, "linux")
    assert older is not None and older[1] is arch_list(f"{older[0]}.0", cu130, "linux")
