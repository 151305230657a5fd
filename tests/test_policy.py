"""The variant policy, rule by rule (the README's policy table)."""

from __future__ import annotations

import pytest

from torchfit.choose.policy import choose_variants, cuda_runs
from torchfit.choose.releases import known_variants
from torchfit.errors import NoCompatibleWheel, UsageError
from torchfit.machine.record import Detection
from torchfit.variants import Variant, parse_cuda


def machine(
    cuda: str | None = None,
    driver: str | None = None,
    *,
    os: str = "linux",
    suspected: bool = False,
) -> Detection:
    return Detection(
        driver_version=driver,
        max_cuda=parse_cuda(cuda) if cuda else None,
        gpus=(),
        source="nvidia-smi" if cuda else None,
        suspected_gpu=suspected,
        trace=(),
        os=os,
    )


def tags(detection: Detection, **options: object) -> list[str]:
    choice = choose_variants(detection, target_os=options.pop("target_os", "linux"), **options)  # type: ignore[arg-type]
    return [v.tag for v in choice.variants]


# Rule 1: strict -- cuXY runs when X.Y <= the driver's maximum CUDA.
@pytest.mark.parametrize(
    ("cuda", "best"),
    [
        ("9.2", "cu92"),
        ("10.1", "cu101"),
        ("10.2", "cu102"),
        ("11.0", "cu110"),
        ("12.8", "cu128"),
        ("12.9", "cu129"),
        ("13.0", "cu130"),
        ("13.3", "cu132"),
    ],
)
def test_strict_best_variant(cuda: str, best: str) -> None:
    assert tags(machine(cuda))[0] == best


def test_strict_never_admits_newer_minor() -> None:
    assert not cuda_runs(Variant.parse("cu128"), machine("12.4", "550.54.14"), "strict")


# Rule 1: --compat minor -- same major, driver at or above that major's floor.
def test_minor_admits_same_major_above_floor() -> None:
    detection = machine("12.4", "550.54.14")
    assert cuda_runs(Variant.parse("cu129"), detection, "minor")
    assert not cuda_runs(Variant.parse("cu130"), detection, "minor")  # another major


def test_minor_needs_the_floor() -> None:
    # CUDA 11.0's own driver (450.36.06) is below 11.x's floor 450.80.02.
    assert not cuda_runs(Variant.parse("cu118"), machine("11.0", "450.36.06"), "minor")
    assert cuda_runs(Variant.parse("cu118"), machine("11.0", "450.80.02"), "minor")


def test_minor_with_only_a_cuda_version_uses_that_cudas_driver() -> None:
    assert cuda_runs(Variant.parse("cu128"), machine("12.2"), "minor")
    assert not cuda_runs(Variant.parse("cu118"), machine("11.0"), "minor")


def test_minor_never_applies_before_cuda_11() -> None:
    assert not cuda_runs(Variant.parse("cu102"), machine("10.1", "418.39"), "minor")


# Rule 2 (order) is the resolver's: tests/cases/ and test_resolve.py.
def test_runnable_variants_are_best_first() -> None:
    found = tags(machine("11.0"))
    assert found[:3] == ["cu110", "cu102", "cu101"]
    assert "cpu" not in found  # never a silent CPU fallback on a GPU machine


# Rule 3: no NVIDIA GPU -> cpu; a GPU that is too old -> an error with a way out.
def test_no_gpu_means_cpu() -> None:
    assert tags(machine()) == ["cpu"]


def test_a_gpu_we_could_not_read_is_not_silently_cpu() -> None:
    with pytest.raises(NoCompatibleWheel) as caught:
        tags(machine(suspected=True))
    assert "--cuda" in (caught.value.hint or "") and "--variant cpu" in (caught.value.hint or "")


def test_driver_older_than_every_build() -> None:
    with pytest.raises(NoCompatibleWheel) as caught:
        tags(machine("7.5"))
    assert "--variant cpu" in (caught.value.hint or "")


def test_macos_targets_are_cpu() -> None:
    assert tags(machine("12.8"), target_os="macos") == ["cpu"]


# Rule 4: an explicit variant newer than the known driver is an error unless forced.
def test_explicit_newer_than_driver_is_refused() -> None:
    with pytest.raises(NoCompatibleWheel) as caught:
        tags(machine("10.1", "418.39"), explicit=Variant.parse("cu110"))
    assert (
        caught.value.hint and ">= 450.36.06" in caught.value.hint and "--force" in caught.value.hint
    )


def test_explicit_newer_than_driver_with_force() -> None:
    assert tags(machine("10.1"), explicit=Variant.parse("cu110"), force=True) == ["cu110"]


def test_explicit_without_driver_is_taken_as_given() -> None:
    choice = choose_variants(machine(), explicit=Variant.parse("cu128"), target_os="linux")
    assert [v.tag for v in choice.variants] == ["cu128"]
    assert "no driver known" in choice.reasons[0]


def test_explicit_cpu_on_a_gpu_machine() -> None:
    assert tags(machine("12.8"), explicit=Variant("cpu")) == ["cpu"]


# The Variant value type.
@pytest.mark.parametrize(
    ("tag", "kind", "version"),
    [
        ("cpu", "cpu", ()),
        ("cu92", "cuda", (9, 2)),
        ("cu101", "cuda", (10, 1)),
        ("cu130", "cuda", (13, 0)),
        ("rocm5.4.2", "rocm", (5, 4, 2)),
        ("xpu", "xpu", ()),
    ],
)
def test_variant_parse_round_trip(tag: str, kind: str, version: tuple[int, ...]) -> None:
    variant = Variant.parse(tag)
    assert (variant.kind, variant.version, variant.tag) == (kind, version, tag)


@pytest.mark.parametrize("text", ["cu", "cuda12", "gpu", "rocm", "cu1", "12.8"])
def test_bad_variants_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        Variant.parse(text)


def test_known_variants_sort_newest_cuda_first() -> None:
    assert known_variants()[0].kind == "cuda"
    cuda = [v.cuda for v in known_variants() if v.cuda]
    assert cuda == sorted(cuda, reverse=True)


# Issue-4 rule: every GPU must be served by the build's kernels.
def test_gpu_fit_known_lists() -> None:
    from packaging.version import Version

    from torchfit.choose.gpu_fit import GpuFit

    pascal = GpuFit((("GTX 1080", (6, 1)),), "linux")
    assert pascal.judge(Version("2.8.0"), Variant.parse("cu126")) is True
    assert pascal.judge(Version("2.8.0"), Variant.parse("cu128")) is False
    assert pascal.unserved(Version("2.8.0"), Variant.parse("cu128")) == ["GTX 1080 (sm_61)"]
    assert pascal.judge(Version("2.8.0"), Variant("cpu")) is None
    mixed = GpuFit((("RTX 3090", (8, 6)), ("GTX 1060", (6, 1))), "linux")
    assert mixed.judge(Version("2.8.0"), Variant.parse("cu128")) is False


def test_gpu_fit_assumes_low_for_builds_without_a_list() -> None:
    from packaging.version import Version

    from torchfit.choose.gpu_fit import GpuFit

    volta = GpuFit((("V100", (7, 0)),), "linux")
    # 2.11 cu129 has no list: 2.10's cu129 list (sm_70+) narrowed by 2.11's cu128 (sm_75+).
    assert volta.judge(Version("2.11.0"), Variant.parse("cu129")) is False
    line = volta.describe(Version("2.10.0"), Variant.parse("cu129"))
    assert line is not None and "serves V100 (sm_70)" in line
    assert (
        GpuFit((("old", (3, 5)),), "linux").judge(Version("1.7.1"), Variant.parse("cu101")) is None
    )


# Messages that lead somewhere: the hints of "nothing fits", end to end over the snapshots.
def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    import os

    from torchfit.cli.main import main

    offline = ["--offline", "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64"]
    code = main([*argv, *offline], env={"TORCHFIT_CACHE_DIR": os.devnull})
    out, err = capsys.readouterr()
    return code, out, err


def test_strict_miss_names_compat_minor_the_variants_and_the_driver(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # torch 2.8.0 was built for cu126, cu128 and cu129; driver 550.54.14 runs CUDA 12.4.
    code, out, err = _cli(capsys, "plan", "torch==2.8.0", "torchvision", "--driver", "550.54.14")
    assert code == 1 and out == ""
    error, hint = err.splitlines()[:2]
    assert error == (
        "error: torch 2.8.0 has CUDA builds for cu126, cu128, cu129 only;"
        " this driver supports CUDA 12.4"
    )
    assert hint.startswith(
        "hint: pass --compat minor to use cu126, cu128 or cu129 through CUDA minor-version"
        " compatibility (some features may not work), or update the NVIDIA driver to"
        " >= 560.28.03 for cu126, or pass --variant cpu for the CPU build"
    )


def test_compat_minor_is_not_offered_across_majors_or_below_the_floor(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # 520.61.05 runs CUDA 11.8: no 12.x build runs on it, minor compatibility or not.
    code, _, err = _cli(capsys, "plan", "torch==2.8.0", "--driver", "520.61.05")
    assert code == 1
    assert "--compat minor" not in err
    assert "update the NVIDIA driver to >= 560.28.03 for cu126" in err
    # Asked with --compat minor already: it is not offered again.
    code, _, err = _cli(capsys, "plan", "torch==2.8.0", "--cuda", "11.8", "--compat", "minor")
    assert code == 1 and "--compat minor" not in err


def test_a_plan_chosen_by_compat_minor_carries_a_warning(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["plan", "torch==2.8.0", "--driver", "550.54.14", "--compat", "minor"]
    code, out, err = _cli(capsys, *argv)
    assert code == 0 and out.startswith("variant cu12")
    warned = [line for line in err.splitlines() if "minor-version compatibility" in line]
    assert len(warned) == 1
    assert "kernels JIT-compiled from PTX, and some features, may fail on this driver" in warned[0]
    # A variant the driver runs by the strict rule carries none.
    code, _, err = _cli(
        capsys, "plan", "torch==2.5.1", "--driver", "550.54.14", "--compat", "minor"
    )
    assert code == 0 and "minor-version compatibility" not in err


def test_an_unpinned_request_on_an_old_driver_names_what_it_can_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = _cli(capsys, "plan", "torch", "--cuda", "8.0")
    assert code == 1
    hint = next(line for line in err.splitlines() if line.startswith("hint: "))
    assert "relax the version" not in hint
    assert hint.startswith(
        "hint: the newest torch this driver can run is 1.0.1 (cu80): pin torch==1.0.1 for a"
        " Python and platform it was built for, or update the NVIDIA driver to >= "
    )
    # A pinned request keeps "relax the version" where it is the fix.
    code, _, err = _cli(capsys, "plan", "torch==1.0.1", "--cuda", "8.0")
    assert code == 1 and "relax the version" in err


def test_no_torch_build_runs_on_a_driver_older_than_every_build() -> None:
    from packaging.specifiers import SpecifierSet

    from torchfit.choose.candidates import FamilyRequirement
    from torchfit.choose.policy import explain_no_wheel
    from torchfit.choose.releases import cuda_builds, newest

    old = machine("7.5", "352.31")
    unpinned = [FamilyRequirement("torch", SpecifierSet(), "user")]
    error = explain_no_wheel(
        NoCompatibleWheel("no wheel of torch"), unpinned, old, compat="strict", explicit=False
    )
    lowest = min(cuda_builds(newest().torch), key=Variant.sort_key)
    assert error.hint is not None and error.hint.startswith("no torch build runs on this driver: ")
    assert f"for torch {newest().torch} ({lowest.tag})" in error.hint
    # A driver that runs the newest torch: the error is left as it was.
    fine = explain_no_wheel(
        NoCompatibleWheel("x", hint="h"),
        unpinned,
        machine("13.0", "580.65.06"),
        compat="strict",
        explicit=False,
    )
    assert fine.hint == "h"
