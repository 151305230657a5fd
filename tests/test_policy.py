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
