"""Containers built with no GPU: the image's CUDA from NVIDIA's base-image variables, the
NVIDIA_VISIBLE_DEVICES values that hide every GPU, and what the plan says about them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from torchfit._runner import Completed
from torchfit.choose.policy import NO_GPU_WARNING, choose_variants
from torchfit.cli.main import main
from torchfit.machine.container import (
    gpus_hidden,
    parse_cuda_version,
    parse_require_cuda,
    probe_image,
)
from torchfit.machine.detect import detect
from torchfit.machine.record import Overrides
from torchfit.session import Session

# Recorded values. NVIDIA_REQUIRE_CUDA of nvidia/cuda:12.4.1-{base,runtime}-ubuntu22.04, from
# gitlab.com/nvidia/container-images/cuda dist/12.4.1/ubuntu2204/base/Dockerfile.
REQUIRE_12_4 = (
    "cuda>=12.4 brand=tesla,driver>=470,driver<471 brand=unknown,driver>=470,driver<471"
    " brand=nvidia,driver>=470,driver<471 brand=nvidiartx,driver>=470,driver<471"
    " brand=geforce,driver>=470,driver<471 brand=geforcertx,driver>=470,driver<471"
    " brand=quadro,driver>=470,driver<471 brand=quadrortx,driver>=470,driver<471"
    " brand=titan,driver>=470,driver<471 brand=titanrtx,driver>=470,driver<471"
    " brand=tesla,driver>=525,driver<526 brand=unknown,driver>=525,driver<526"
    " brand=nvidia,driver>=525,driver<526 brand=nvidiartx,driver>=525,driver<526"
    " brand=geforce,driver>=525,driver<526 brand=geforcertx,driver>=525,driver<526"
    " brand=quadro,driver>=525,driver<526 brand=quadrortx,driver>=525,driver<526"
    " brand=titan,driver>=525,driver<526 brand=titanrtx,driver>=525,driver<526"
    " brand=tesla,driver>=535,driver<536 brand=unknown,driver>=535,driver<536"
    " brand=nvidia,driver>=535,driver<536 brand=nvidiartx,driver>=535,driver<536"
    " brand=geforce,driver>=535,driver<536 brand=geforcertx,driver>=535,driver<536"
    " brand=quadro,driver>=535,driver<536 brand=quadrortx,driver>=535,driver<536"
    " brand=titan,driver>=535,driver<536 brand=titanrtx,driver>=535,driver<536"
)
# nvidia/cuda 10.2 images (dist/10.2/ubuntu18.04-x86_64/base/Dockerfile), with the image's
# ${CUDA_VERSION} expanded as a public build script copies it.
REQUIRE_10_2 = (
    "cuda>=10.2 brand=tesla,driver>=396,driver<397 brand=tesla,driver>=410,driver<411"
    " brand=tesla,driver>=418,driver<419 brand=tesla,driver>=440,driver<441"
)
# nvidia/cuda 9.0 images: the bare constraint (also in the NVIDIA container runtime hook's
# own test cases, beside CUDA_VERSION=9.0.176).
REQUIRE_9_0 = "cuda>=9.0"
# The 12.4.1 image's CUDA_VERSION (dist/12.4.1/ubuntu2204/base/Dockerfile).
DOCKERFILE_12_4_1 = {"NVIDIA_REQUIRE_CUDA": REQUIRE_12_4, "CUDA_VERSION": "12.4.1"}

OFFLINE = ["--offline", "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64"]


def no_smi(argv: Any, **_: Any) -> Completed:
    return Completed(127, "", "", "not found")  # what the runner says for a missing tool


def detect_in(env: dict[str, str], overrides: Overrides | None = None) -> Any:
    """Detection on a machine with no driver at all (a docker build), reading ``env``."""
    return detect(
        overrides or Overrides(),
        nvml=None,
        runner=no_smi,
        proc_version=Path("/nonexistent"),
        os="linux",
        env=env,
    )


def run(capsys: pytest.CaptureFixture[str], *argv: str, **env: str) -> tuple[int, str, str]:
    code = main(list(argv), env={"TORCHFIT_CACHE_DIR": os.devnull, **env})
    out, err = capsys.readouterr()
    return code, out, err


# --- parsers on recorded values --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cuda"),
    [
        (REQUIRE_12_4, (12, 4)),
        (REQUIRE_10_2, (10, 2)),
        (REQUIRE_9_0, (9, 0)),
        ("cuda>=13.0", (13, 0)),  # CUDA 13 images and many FROM-scratch Dockerfiles
        ("cuda>=12", (12, 0)),  # the runtime reads a bare major as X.0
        ("brand=tesla,driver>=470,driver<471 cuda>=11.8", (11, 8)),  # any order
    ],
)
def test_parse_require_cuda(text: str, cuda: tuple[int, int]) -> None:
    assert parse_require_cuda(text) == cuda


@pytest.mark.parametrize(
    "text",
    ["", "garbage", "cuda<12.4", "cuda=12.4", "cuda>=twelve", "cuda>=12.4x", "brand=tesla"],
)
def test_parse_require_cuda_unreadable(text: str) -> None:
    assert parse_require_cuda(text) is None


@pytest.mark.parametrize(
    ("text", "cuda"),
    [("12.4.1", (12, 4)), ("9.0.176", (9, 0)), ("13.0.2", (13, 0)), ("12.4", (12, 4))],
)
def test_parse_cuda_version(text: str, cuda: tuple[int, int]) -> None:
    assert parse_cuda_version(text) == cuda


@pytest.mark.parametrize("text", ["", "v12.4", "12.4.1.5.6", "latest", "١٢.٤"])
def test_parse_cuda_version_unreadable(text: str) -> None:
    assert parse_cuda_version(text) is None


@pytest.mark.parametrize(
    ("value", "hidden"),
    [("void", True), ("none", True), ("", True), ("NONE", True), ("all", False), ("0,1", False)],
)
def test_visible_devices_that_hide_every_gpu(value: str, hidden: bool) -> None:
    assert gpus_hidden(value) is hidden


# --- detection order --------------------------------------------------------------------


def test_require_cuda_comes_first() -> None:
    found = detect_in({**DOCKERFILE_12_4_1, "CONDA_OVERRIDE_CUDA": "11.8"})
    assert (found.max_cuda, found.source, found.driver_version) == (
        (12, 4),
        "NVIDIA_REQUIRE_CUDA",
        None,
    )
    assert found.has_nvidia and found.from_image and not found.probed
    assert found.trace[-1].outcome == "CUDA 12.4: the image's CUDA (no driver visible)"
    assert found.trace[-1].raw is not None and found.trace[-1].raw.startswith("cuda>=12.4 brand=")


def test_cuda_version_then_conda_override() -> None:
    assert detect_in({"CUDA_VERSION": "11.8.0", "CONDA_OVERRIDE_CUDA": "12.4"}).max_cuda == (11, 8)
    found = detect_in({"CONDA_OVERRIDE_CUDA": "12.4"})
    assert (found.max_cuda, found.source) == ((12, 4), "CONDA_OVERRIDE_CUDA")


def test_an_unreadable_require_cuda_is_skipped_with_a_failed_line() -> None:
    found = detect_in({"NVIDIA_REQUIRE_CUDA": "cuda~12", "CUDA_VERSION": "12.4.1"})
    assert (found.max_cuda, found.source) == ((12, 4), "CUDA_VERSION")
    unread = next(p for p in found.trace if p.source == "NVIDIA_REQUIRE_CUDA")
    assert unread.failed and unread.outcome == "ignored: no cuda>=X.Y term"
    assert not found.suspected_gpu


def test_no_image_variables_adds_no_trace_line() -> None:
    found = detect_in({})
    assert [p.source for p in found.trace] == [
        "override",
        "nvml",
        "/sys/module/nvidia/version",
        "/proc/driver/nvidia/version",
        "libcuda",
        "nvidia-smi",
    ]
    assert not found.has_nvidia


def test_overrides_win_over_the_image() -> None:
    found = detect_in(DOCKERFILE_12_4_1, Overrides(cuda=(12, 8)))
    assert (found.max_cuda, found.source) == ((12, 8), "override")
    assert all(p.source != "NVIDIA_REQUIRE_CUDA" for p in found.trace)


@pytest.mark.parametrize("value", ["void", "none", ""])
def test_visible_devices_void_leaves_the_image_unused(value: str) -> None:
    found = detect_in({**DOCKERFILE_12_4_1, "NVIDIA_VISIBLE_DEVICES": value})
    assert (found.max_cuda, found.has_nvidia) == (None, False)
    assert found.trace[-1].source == "NVIDIA_VISIBLE_DEVICES"
    assert found.trace[-1].raw == value


def test_the_session_reads_its_own_environment_not_the_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CUDA_VERSION", "11.8.0")
    given = {"CUDA_VERSION": "12.4.1"}
    seams: dict[str, Any] = {"nvml": None, "runner": no_smi, "proc_version": Path("/nonexistent")}
    assert Session(env=given, **seams).machine.max_cuda == (12, 4)
    assert Session(**seams).machine.max_cuda == (11, 8)  # no mapping given: the process's


# --- the policy: why, warnings ---------------------------------------------------------


def test_the_image_is_named_in_why_and_planned_as_the_drivers_maximum() -> None:
    choice = choose_variants(detect_in(DOCKERFILE_12_4_1), target_os="linux")
    assert choice.variants[0].tag == "cu124"
    assert choice.reasons[0].startswith(
        "CUDA 12.4 from NVIDIA_REQUIRE_CUDA (the image's CUDA, no driver visible): planned as"
        " if the driver's maximum CUDA were 12.4; variants allowed by CUDA <= driver: cu124,"
    )
    assert choice.warnings == ()


def test_nothing_to_go_on_warns_once_and_a_cpu_variant_silences_it() -> None:
    from torchfit.variants import Variant

    choice = choose_variants(detect_in({}), target_os="linux")
    assert [v.tag for v in choice.variants] == ["cpu"]
    assert choice.warnings == (NO_GPU_WARNING,)
    assert "--cuda X.Y" in NO_GPU_WARNING and "--driver VERSION" in NO_GPU_WARNING
    assert choose_variants(detect_in({}), explicit=Variant("cpu"), target_os="linux").warnings == ()
    assert choose_variants(detect_in({}), target_os="macos").warnings == ()


def test_void_is_said_in_why_and_not_warned_about() -> None:
    choice = choose_variants(detect_in({"NVIDIA_VISIBLE_DEVICES": "void"}), target_os="linux")
    assert choice.reasons == ("no GPU will be visible (NVIDIA_VISIBLE_DEVICES=void): CPU wheels",)
    assert choice.warnings == ()


def test_an_explicit_variant_above_the_images_cuda_is_taken() -> None:
    from torchfit.variants import Variant

    choice = choose_variants(
        detect_in(DOCKERFILE_12_4_1), explicit=Variant.parse("cu126"), target_os="linux"
    )
    assert [v.tag for v in choice.variants] == ["cu126"]
    assert "the machines it runs on need a driver >= 560.28.03" in choice.reasons[0]


# --- the command line: the README's Dockerfile -----------------------------------------


def test_dockerfile_from_nvidia_cuda_12_4_1_pinned_torch_2_8_leads_somewhere(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(
        capsys, "plan", "torch==2.8.0", "torchvision", *OFFLINE, **DOCKERFILE_12_4_1
    )
    assert code == 1 and out == ""
    lines = err.splitlines()
    assert lines[0] == (
        "error: torch 2.8.0 has CUDA builds for cu126, cu128, cu129 only; the image's CUDA is"
        " 12.4 (NVIDIA_REQUIRE_CUDA) and no driver is visible"
    )
    assert lines[1].startswith(
        "hint: pass --compat minor to use cu126, cu128 or cu129 through CUDA minor-version"
        " compatibility (some features may not work), or pass --cuda 12.6 if the machines this"
        " image runs on support it (drivers >= 560.28.03), or pass --variant cpu"
    )


def test_dockerfile_with_compat_minor_plans_and_warns(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan", "torch==2.8.0", "torchvision", "--compat", "minor", *OFFLINE]
    code, out, err = run(capsys, *argv, **DOCKERFILE_12_4_1)
    assert code == 0
    assert out.splitlines()[0].startswith("variant cu12")
    assert "  - CUDA 12.4 from NVIDIA_REQUIRE_CUDA (the image's CUDA, no driver visible)" in out
    assert "relies on CUDA minor-version compatibility" in err
    code, out, _ = run(capsys, *argv, "--json", **DOCKERFILE_12_4_1)
    plan = json.loads(out)
    assert plan["detection"]["source"] == "NVIDIA_REQUIRE_CUDA"
    assert sum("minor-version compatibility" in w for w in plan["warnings"]) == 1


def test_dockerfile_unpinned_torch_gets_the_images_cuda(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "plan", "torch", "torchvision", *OFFLINE, "--json", **DOCKERFILE_12_4_1
    )
    assert code == 0
    plan = json.loads(out)
    assert plan["variant"] == "cu124"
    assert not any("no NVIDIA GPU is visible" in w for w in plan["warnings"])


def test_flags_win_over_the_image(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan", "torch==2.8.0", "torchvision", "--cuda", "12.8", *OFFLINE, "--json"]
    code, out, _ = run(capsys, *argv, **DOCKERFILE_12_4_1)
    assert code == 0 and json.loads(out)["variant"] == "cu128"
    argv = ["plan", "torch==2.8.0", "torchvision", *OFFLINE, "--json"]
    code, out, _ = run(capsys, *argv, TORCHFIT_CUDA="12.6", **DOCKERFILE_12_4_1)
    assert code == 0 and json.loads(out)["variant"] == "cu126"


def test_an_unreadable_require_cuda_is_a_warning_not_an_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "plan", "torch", *OFFLINE, NVIDIA_REQUIRE_CUDA="cuda~12")
    assert code == 0
    assert out.splitlines()[0].startswith("variant cpu ")
    assert "warning: NVIDIA_REQUIRE_CUDA='cuda~12' ignored: no cuda>=X.Y term" in err.splitlines()
    assert f"warning: {NO_GPU_WARNING}" in err.splitlines()


def test_a_cpu_build_with_nothing_to_go_on_warns_once(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "plan", "torch", *OFFLINE)
    assert code == 0
    assert err.splitlines().count(f"warning: {NO_GPU_WARNING}") == 1
    code, _, err = run(capsys, "plan", "torch", "--variant", "cpu", *OFFLINE)
    assert code == 0 and "no NVIDIA GPU is visible" not in err
    code, out, err = run(capsys, "plan", "torch", *OFFLINE, "--json")
    assert NO_GPU_WARNING in json.loads(out)["warnings"] and "no NVIDIA GPU" not in err


def test_visible_devices_void_plans_cpu(capsys: pytest.CaptureFixture[str]) -> None:
    env = {**DOCKERFILE_12_4_1, "NVIDIA_VISIBLE_DEVICES": "void"}
    code, out, err = run(capsys, "plan", "torch", *OFFLINE, **env)
    assert code == 0
    assert out.splitlines()[0].startswith("variant cpu ")
    assert "  - no GPU will be visible (NVIDIA_VISIBLE_DEVICES=void): CPU wheels" in out
    assert "no NVIDIA GPU is visible" not in err


def test_the_detect_verb_names_the_image(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "detect", "--json", **DOCKERFILE_12_4_1)
    assert code == 0
    found = json.loads(out)
    assert (found["source"], found["max_cuda"], found["driver_version"]) == (
        "NVIDIA_REQUIRE_CUDA",
        "12.4",
        None,
    )


def test_nothing_raises_for_hostile_values() -> None:
    for value in ("\x00", "cuda>=" + "9" * 5000, "cuda>=12.4\x1b[31m", " \t\n"):
        found = probe_image({"NVIDIA_REQUIRE_CUDA": value, "CUDA_VERSION": value})
        assert all(not f.answered for f in found)
