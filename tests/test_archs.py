"""Kernel architectures per torch build: the parser, the serving rule and real facts."""

from __future__ import annotations

import doctest

import pytest

from torchfit.choose import archs as _archs
from torchfit.choose import kernels as _kernels
from torchfit.choose.archs import ArchList, arch_list, floor_miss, min_torch_for, parse_arch_list
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
    assert arch_list("2.8.0", Variant.parse("cu128"), "windows") is None
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


def test_aarch64_builds() -> None:
    # GB200 / B200 (sm_100) on SBSA: no cu126 build carries Blackwell kernels, cu128 does.
    for torch in ("2.6.0", "2.9.1", "2.12.1", "2.13.0"):
        assert served(torch, "cu126", (10, 0), "linux-aarch64") is False, torch
    assert served("2.7.1", "cu128", (10, 0), "linux-aarch64") is True
    assert served("2.11.0", "cu128", (10, 0), "linux-aarch64") is True
    # The 2.9.1+cu128 aarch64 runtime list quoted in OpenRAL/openral#167.
    assert str(arch_list("2.9.1", Variant.parse("cu128"), "linux-aarch64")) == (
        "sm_80 sm_90 sm_100 sm_120"
    )
    # GH200 (sm_90) is served from the first SBSA builds on; A100 (sm_80) only from 2.8.
    assert served("2.6.0", "cu126", (9, 0), "linux-aarch64") is True
    assert served("2.7.1", "cu128", (8, 0), "linux-aarch64") is False
    assert served("2.8.0", "cu129", (8, 0), "linux-aarch64") is True
    # Jetson Thor (sm_110 under CUDA 13): only the CUDA 13 builds.
    assert served("2.11.0", "cu128", (11, 0), "linux-aarch64") is False
    assert served("2.13.0", "cu132", (11, 0), "linux-aarch64") is True
    assert min_torch_for((10, 0), "linux-aarch64")[0] == ("2.7", "cu128")


def test_windows_builds_of_2_7_on() -> None:
    assert served("2.11.0", "cu128", (12, 0), "windows") is True
    assert served("2.10.0", "cu128", (7, 0), "windows") is True  # Volta kept through 2.10
    assert served("2.11.0", "cu128", (7, 0), "windows") is False
    assert served("2.13.0", "cu126", (6, 1), "windows") is True
    cu130 = arch_list("2.13.0", Variant.parse("cu130"), "windows")
    assert cu130 is not None and cu130.ptx == ()  # +PTX is on Linux builds only
    assert arch_list("2.13.0", Variant.parse("cu130"), "linux") != cu130


@pytest.mark.parametrize(
    ("torch", "tag", "cc", "missed"),
    [
        ("2.13.0", "cu126", (10, 0), True),  # sm_100 needs >= 12.8
        ("2.13.0", "cu126", (12, 1), True),  # sm_121 too
        ("2.13.0", "cu126", (10, 3), True),
        ("2.11.0", "cu128", (10, 0), False),
        ("2.11.0", "cu128", (11, 0), True),  # Thor under CUDA 13 names itself sm_110
        ("2.13.0", "cu130", (11, 0), False),
        ("2.0.0", "cu117", (9, 0), True),  # sm_90 needs >= 11.8
        ("2.0.0", "cu117", (8, 9), True),  # sm_89 needs >= 11.8
        ("2.0.0", "cu118", (8, 9), False),
        ("1.7.1", "cu110", (8, 6), True),  # sm_86 needs >= 11.1
        ("1.8.0", "cu111", (8, 6), False),
        ("1.7.1", "cu102", (8, 0), True),  # sm_80 needs >= 11.0
        ("1.7.1", "cu110", (8, 0), False),
        ("1.2.0", "cu92", (7, 5), True),  # sm_75 needs >= 10.0
        ("1.2.0", "cu100", (7, 5), False),
        ("2.13.0", "cu130", (7, 0), True),  # CUDA 13 removed Volta and older
        ("2.7.0", "cu128", (6, 1), True),  # cu128 builds dropped Pascal from 2.7 on
        ("2.6.0", "cu126", (6, 1), False),
        ("2.11.0", "cu128", (7, 0), True),  # and Volta from 2.11 on
        ("2.10.0", "cu128", (7, 0), False),
        ("2.11.0", "cu129", (7, 0), False),  # the 2.11 Volta drop names cu128 only
        ("2.1.0", "cu121", (3, 7), True),  # CUDA 12 removed Kepler
        ("2.1.0", "cu118", (3, 7), False),
    ],
)
def test_cuda_floors_and_drops(torch: str, tag: str, cc: tuple[int, int], missed: bool) -> None:
    reason = floor_miss(torch, Variant.parse(tag), cc)
    assert (reason is not None) is missed, reason
    if reason:
        assert f"sm_{cc[0]}{cc[1]}" in reason


def test_floors_and_drops_have_sources() -> None:
    for row in (*_kernels.FLOORS, *_kernels.DROPS):
        assert row.source.strip()
    arches = [f.arch for f in _kernels.FLOORS]
    assert arches == sorted(arches)


def test_a_build_without_a_list_is_judged_by_the_floors() -> None:
    from packaging.version import Version

    from torchfit.choose.gpu_fit import GpuFit

    # torch 1.7.1 cu110 (Linux) has no kernel list and no older one to assume from.
    cu110 = Variant.parse("cu110")
    assert arch_list("1.7.1", cu110, "linux") is None
    rtx_3090 = GpuFit((("RTX 3090", (8, 6)),), "linux")
    assert rtx_3090.judge(Version("1.7.1"), cu110) is False
    assert rtx_3090.unserved(Version("1.7.1"), cu110) == ["RTX 3090 (sm_86)"]
    a100 = GpuFit((("A100", (8, 0)),), "linux")
    assert a100.judge(Version("1.7.1"), cu110) is None  # the floor allows it; nothing proves it
    line = a100.describe(Version("1.7.1"), cu110)
    assert line is not None and line.startswith("warning:") and "floors" in line
    # An assumed list (2.14 has no row) is vetoed by the floors too: 2.13's cu126 list has
    # no sm_100, and the floor agrees.
    gb200 = GpuFit((("GB200", (10, 0)),), "linux-aarch64")
    assert gb200.judge(Version("2.14.0"), Variant.parse("cu126")) is False
