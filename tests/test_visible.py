"""Visible devices: CUDA_VISIBLE_DEVICES and NVIDIA_VISIBLE_DEVICES over recorded nvidia-smi
output, case by case, then the plan end to end through a fake nvidia-smi on PATH."""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torchfit._runner import Completed
from torchfit.machine.detect import detect
from torchfit.machine.record import Detection, Gpu
from torchfit.machine.visible import (
    keep_visible,
    parse_cuda_visible_devices,
    parse_nvidia_visible_devices,
    visible_gpus,
)

DATA = Path(__file__).parent / "data" / "nvidia"
CASES = json.loads(
    (Path(__file__).parent / "cases" / "nvidia" / "visible_devices.json").read_text()
)
TWO_GPUS = "smi-query-ids-gtx1080-rtx5090.txt"
OLD_DRIVER = "smi-query-ids-old-driver-k80-t4.txt"
REJECTED = 'Field "compute_cap" is not a valid field to query.\n'
posix_only = pytest.mark.skipif(
    sys.platform == "win32", reason="the fake nvidia-smi is a POSIX shell script"
)


class RecordedSmi:
    """Answers nvidia-smi with a recorded output; one without compute_cap rejects that field,
    as drivers before 510 do."""

    def __init__(self, name: str) -> None:
        self.text = (DATA / name).read_text(encoding="utf-8")
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str], *, timeout: float | None = None, **_: Any) -> Completed:
        self.calls.append(list(argv))
        if not argv[0].endswith("nvidia-smi"):
            return Completed(127, "", "", "not found")
        first = self.text.splitlines()[0]
        if "compute_cap" in argv[1] and first.count(",") < 4:
            return Completed(2, REJECTED, "")
        return Completed(0, self.text, "")


def detect_recorded(tmp_path: Path, name: str, env: dict[str, str], **kwargs: Any) -> Detection:
    return detect(
        nvml=None,
        runner=RecordedSmi(name),
        proc_version=tmp_path / "no-proc-version",
        root=tmp_path,
        libcuda=None,
        os="linux",
        env=env,
        **kwargs,
    )


@pytest.mark.parametrize("case", CASES["cases"], ids=[c["description"] for c in CASES["cases"]])
def test_visible_devices_case(tmp_path: Path, case: dict[str, Any]) -> None:
    all_gpus = case.get("all_gpus", False)
    found = detect_recorded(tmp_path, case["smi"], case["env"], all_gpus=all_gpus)
    assert [gpu.name for gpu in found.gpus] == case["kept"], case["rule"]
    listed = [line.split(",")[1].strip() for line in (DATA / case["smi"]).read_text().splitlines()]
    assert sorted(gpu.name or "" for gpu in found.hidden) == sorted(set(listed) - set(case["kept"]))
    asked = [
        name for name in ("NVIDIA_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES") if name in case["env"]
    ]
    lines = [p for p in found.trace if p.source.endswith("VISIBLE_DEVICES")]
    assert [p.source for p in lines] == ([] if all_gpus else asked)
    if "says" in case:
        assert any(case["says"] in p.outcome for p in lines), [p.outcome for p in lines]


def test_every_documented_form_has_a_case() -> None:
    values = [v for case in CASES["cases"] for v in case["env"].values()]
    for form in ("", "-1", "GPU-e764ef97", "MIG-GPU-", "MIG-c6d4", "all", "void", "1:0"):
        assert any(value.startswith(form) for value in values), form


# --- the pure parts ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "entries", "invalid"),
    [
        ("0,2,-1,1", ("0", "2"), "-1"),
        ("", (), ""),
        ("GPU-8932f937,1", ("GPU-8932f937", "1"), None),
        (
            "MIG-GPU-8932f937-d72c-4106-c12f-20bd9faed9f6/1/2",
            ("MIG-GPU-8932f937-d72c-4106-c12f-20bd9faed9f6/1/2",),
            None,
        ),
        ("0,,1", ("0",), ""),
        ("GPU-", (), "GPU-"),
        ("1.5", (), "1.5"),
    ],
)
def test_parse_cuda_visible_devices(
    text: str, entries: tuple[str, ...], invalid: str | None
) -> None:
    assert parse_cuda_visible_devices(text) == (entries, invalid)


@pytest.mark.parametrize(
    ("text", "named"),
    [("all", None), ("ALL ", None), ("none", ()), ("void", ()), ("", ()), ("0, 1", ("0", "1"))],
)
def test_parse_nvidia_visible_devices(text: str, named: tuple[str, ...] | None) -> None:
    assert parse_nvidia_visible_devices(text) == named


def gpu(name: str, uuid: str | None) -> Gpu:
    return Gpu(name, (8, 6), uuid=uuid)


def test_a_prefix_that_names_two_gpus_is_invalid() -> None:
    gpus = [gpu("a", "GPU-abc1"), gpu("b", "GPU-abc2"), gpu("c", "GPU-ffff")]
    seen = visible_gpus(gpus, {"CUDA_VISIBLE_DEVICES": "GPU-ffff,GPU-abc,0"})
    assert [g.name for g in seen.gpus] == ["c"]
    assert "invalid entry 'GPU-abc'" in seen.trace[0].outcome


def test_a_duplicate_entry_counts_once() -> None:
    seen = visible_gpus([gpu("a", None), gpu("b", None)], {"CUDA_VISIBLE_DEVICES": "1,1"})
    assert [g.name for g in seen.gpus] == ["b"]


def test_uuids_the_source_did_not_give_keep_every_gpu() -> None:
    seen = visible_gpus([gpu("a", None), gpu("b", None)], {"CUDA_VISIBLE_DEVICES": "GPU-12"})
    assert [g.name for g in seen.gpus] == ["a", "b"]
    assert seen.notes == (
        "CUDA_VISIBLE_DEVICES='GPU-12': cannot tell which GPU 'GPU-12' is"
        " (the GPUs' UUIDs are unknown): every GPU kept",
    )


def test_no_gpus_no_trace() -> None:
    assert visible_gpus([], {"CUDA_VISIBLE_DEVICES": "0"}).trace == ()


def test_amd_gpus_are_not_narrowed() -> None:
    amd = Gpu(None, None, vendor="amd", gfx="gfx1100")
    nvidia = gpu("a", "GPU-1")
    machine = Detection("550.54.14", (12, 4), (nvidia, amd), "nvidia-smi", False, (), "linux")
    narrowed = keep_visible(machine, {"CUDA_VISIBLE_DEVICES": ""})
    assert narrowed.gpus == (amd,)
    assert narrowed.hidden == (nvidia,)
    assert keep_visible(machine, {}) is machine


def test_detection_json_names_what_was_left_out(tmp_path: Path) -> None:
    found = detect_recorded(tmp_path, TWO_GPUS, {"CUDA_VISIBLE_DEVICES": "1"}).to_json()
    assert found["gpus"] == [
        {
            "name": "NVIDIA GeForce RTX 5090",
            "compute_capability": "12.0",
            "uuid": "GPU-e764ef97-32d7-4981-c348-029983c64073",
            "pci_id": "10de:2b85",
        }
    ]
    assert [g["name"] for g in found["hidden_gpus"]] == ["NVIDIA GeForce GTX 1080"]
    assert found["notes"] == [
        "CUDA_VISIBLE_DEVICES='1': kept GPU 1 (NVIDIA GeForce RTX 5090);"
        " left out GPU 0 (NVIDIA GeForce GTX 1080)"
    ]


def test_an_old_driver_asks_without_compute_cap_and_infers_it(tmp_path: Path) -> None:
    run = RecordedSmi(OLD_DRIVER)
    found = detect(
        nvml=None,
        runner=run,
        proc_version=tmp_path / "none",
        root=tmp_path,
        libcuda=None,
        os="linux",
        env={},
    )
    fields = [call[1] for call in run.calls]
    assert fields == [
        "--query-gpu=driver_version,name,compute_cap,uuid,pci.device_id",
        "--query-gpu=driver_version,name,uuid,pci.device_id",
    ]
    assert [(g.name, g.compute_capability) for g in found.gpus] == [
        ("Tesla K80", (3, 7)),
        ("Tesla T4", (7, 5)),
    ]
    assert found.notes == (
        "GPU 0 (Tesla K80): compute capability 3.7 inferred from the device id 10de:102d (GK210)",
        "GPU 1 (Tesla T4): compute capability 7.5 inferred from the device id 10de:1eb8 (TU104)",
    )


# --- end to end: torchfit plan with a fake nvidia-smi on PATH --------------------------------

PLAN = ["plan", "torch==2.8.0", "--offline", "--python-version", "3.12"]
PLAN += ["--platform", "manylinux_2_28_x86_64"]


def fake_nvidia_smi(folder: Path, recorded: str) -> None:
    """An nvidia-smi that prints a recorded output; the old driver's rejects compute_cap."""
    body = "#!/bin/sh\n"
    if recorded == OLD_DRIVER:
        body += f'case "$*" in *compute_cap*) printf %s {shlex.quote(REJECTED)}; exit 2 ;; esac\n'
    body += f"cat {shlex.quote(str(DATA / recorded))}\n"
    script = folder / "nvidia-smi"
    script.write_text(body, encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def torchfit(
    tmp_path: Path, recorded: str, *argv: str, **variables: str
) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake_nvidia_smi(bin_dir, recorded)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", **variables}
    env["TORCHFIT_CACHE_DIR"] = str(tmp_path / "cache")
    env["TORCHFIT_ROOT"] = str(tmp_path)  # no driver files, no libcuda of this machine
    return subprocess.run(
        [sys.executable, "-m", "torchfit", *argv], capture_output=True, text=True, env=env
    )


@posix_only
def test_one_old_and_one_new_gpu_told_to_use_the_new_one(tmp_path: Path) -> None:
    both = torchfit(tmp_path, TWO_GPUS, *PLAN)
    assert both.returncode == 1, both.stdout
    assert both.stderr.startswith(
        "error: no candidate build has kernels for NVIDIA GeForce GTX 1080"
    )
    new = torchfit(tmp_path, TWO_GPUS, *PLAN, CUDA_VISIBLE_DEVICES="1")
    assert new.returncode == 0, new.stderr
    assert new.stdout.startswith("variant cu128 ")
    assert "  torch 2.8.0+cu128  " in new.stdout
    assert (
        "  - CUDA_VISIBLE_DEVICES='1': kept GPU 1 (NVIDIA GeForce RTX 5090);"
        " left out GPU 0 (NVIDIA GeForce GTX 1080)"
    ) in new.stdout.splitlines()
    old = torchfit(tmp_path, TWO_GPUS, *PLAN, CUDA_VISIBLE_DEVICES="0")
    assert old.returncode == 0, old.stderr
    assert old.stdout.startswith("variant cu126 ")


@posix_only
def test_all_gpus_considers_every_gpu(tmp_path: Path) -> None:
    flag = torchfit(tmp_path, TWO_GPUS, *PLAN, "--all-gpus", CUDA_VISIBLE_DEVICES="1")
    assert flag.returncode == 1
    assert "GTX 1080" in flag.stderr
    variable = torchfit(tmp_path, TWO_GPUS, *PLAN, CUDA_VISIBLE_DEVICES="1", TORCHFIT_ALL_GPUS="1")
    assert variable.returncode == 1
    assert "GTX 1080" in variable.stderr
    bad = torchfit(tmp_path, TWO_GPUS, *PLAN, TORCHFIT_ALL_GPUS="maybe")
    assert bad.returncode == 2
    assert bad.stderr.splitlines() == [
        "error: invalid TORCHFIT_ALL_GPUS 'maybe'",
        "hint: set TORCHFIT_ALL_GPUS=1 or TORCHFIT_ALL_GPUS=0",
    ]


@posix_only
def test_an_old_driver_says_the_capability_was_inferred(tmp_path: Path) -> None:
    found = torchfit(tmp_path, OLD_DRIVER, "detect", "--json", CUDA_VISIBLE_DEVICES="1")
    assert found.returncode == 0, found.stderr
    detection = json.loads(found.stdout)
    assert detection["gpus"] == [
        {
            "name": "Tesla T4",
            "compute_capability": "7.5",
            "uuid": "GPU-0650a168-e770-3ea8-8ac3-8a1d419763e0",
            "pci_id": "10de:1eb8",
            "capability_source": "inferred from the device id 10de:1eb8 (TU104)",
        }
    ]
    plan = torchfit(
        tmp_path,
        OLD_DRIVER,
        "plan",
        "torch==1.7.1",
        "--offline",
        "--python-version",
        "3.8",
        "--platform",
        "linux_x86_64",
        CUDA_VISIBLE_DEVICES="1",
    )
    assert plan.returncode == 0, plan.stderr
    assert (
        "  - GPU 1 (Tesla T4): compute capability 7.5 inferred from the device id 10de:1eb8 (TU104)"
    ) in plan.stdout.splitlines()


# --- any text at all --------------------------------------------------------------------

ENTRY = st.sampled_from(["0", "1", "7", "-1", "GPU-e7", "GPU-a4668849", "MIG-GPU-e764ef97/1/0"])
ENTRY |= st.sampled_from(["MIG-c6d4", "1:0", "all", "void", "", " ", "GPU-"]) | st.text(max_size=12)


@settings(max_examples=300, deadline=None, database=None)
@given(
    cuda=st.none() | st.lists(ENTRY, max_size=5).map(",".join),
    container=st.none() | st.lists(ENTRY, max_size=4).map(",".join),
)
def test_any_value_narrows_without_raising(cuda: str | None, container: str | None) -> None:
    gpus = [gpu("a", "GPU-a4668849-8693"), gpu("b", "GPU-e764ef97-32d7")]
    pairs = (("CUDA_VISIBLE_DEVICES", cuda), ("NVIDIA_VISIBLE_DEVICES", container))
    env = {name: value for name, value in pairs if value is not None}
    seen = visible_gpus(gpus, env)
    assert len(seen.gpus) + len(seen.hidden) == len(gpus)
    assert set(seen.gpus) | set(seen.hidden) == set(gpus)
    assert len(seen.trace) == len(env)
