"""`torchfit doctor` and deep verification on machines set up to show each problem: a fake
nvidia-smi (and nvcc) on PATH printing real-shaped output, stand-in torch builds in real venvs,
and a loopback PyTorch-shaped index that the fixes are planned from.

Every ``torchfit`` fix doctor prints is then run, with the same environment: as ``plan`` (it
must answer exactly the build the fix names), and where the stand-in wheels allow it, as the
real ``install``, after which doctor must find the environment healthy.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version

from support import (
    FakeGpu,
    IndexServer,
    build_wheel,
    isolated_env,
    make_venv,
    serve_directory,
    standin_torch,
    write_index,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sys.platform == "win32", reason="fake tools are POSIX shell scripts"),
]

SM_CU124 = ("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90")
SM_CU126 = ("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90")
SM_CU128 = ("sm_70", "sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120")
NO_KERNEL = "CUDA error: no kernel image is available for execution on the device"
RTX_3090 = (("NVIDIA GeForce RTX 3090", (8, 6)),)
GTX_1080 = (("NVIDIA GeForce GTX 1080", (6, 1)),)
TESLA_T4 = (("Tesla T4", (7, 5)),)
SMI_3090 = "550.54.14, NVIDIA GeForce RTX 3090, 8.6\n"  # CUDA 12.4
SMI_1080 = "570.133.07, NVIDIA GeForce GTX 1080, 6.1\n"  # CUDA 12.8


def fake_tool(folder: Path, name: str, output: str) -> None:
    script = folder / name
    script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{output}EOF\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexServer]:
    """Stand-in CUDA builds that work on the GPU of the machine each test describes."""
    root = tmp_path_factory.mktemp("index")
    build = tmp_path_factory.mktemp("build")
    on_3090 = FakeGpu(True, SM_CU124, RTX_3090, 90100)
    builds = [
        ("cu101", "1.7.1+cu101", "10.1", FakeGpu(True, ("sm_75",), TESLA_T4, 7605)),
        ("cu124", "2.5.1+cu124", "12.4", on_3090),
        ("cu124", "2.6.0+cu124", "12.4", on_3090),
        ("cu126", "2.8.0+cu126", "12.6", FakeGpu(True, SM_CU126, GTX_1080, 90100)),
        ("cu126", "2.13.0+cu126", "12.6", FakeGpu(True, SM_CU126, RTX_3090, 90100)),
        ("cu128", "2.8.0+cu128", "12.8", FakeGpu(True, SM_CU128, GTX_1080, 90100)),
    ]
    for variant, version, cuda, gpu in builds:
        folder = root / "whl" / variant / "torch"
        folder.mkdir(parents=True, exist_ok=True)
        wheel = standin_torch(build, version, cuda=cuda, gpu=gpu)
        shutil.move(str(wheel), folder / wheel.name)
    for folder in (root / "whl").glob("*/torch"):
        write_index(folder, "torch")
    with serve_directory(root) as server:
        yield server


def machine(tmp_path: Path, index: str, smi: str, nvcc: str | None = None) -> dict[str, str]:
    """An environment whose PATH has a fake nvidia-smi (and nvcc) first, and whose
    PyTorch index is ``index``."""
    tools = tmp_path / "tools"
    tools.mkdir()
    fake_tool(tools, "nvidia-smi", smi)
    if nvcc:
        fake_tool(tools, "nvcc", nvcc)
    env = isolated_env()
    env["PATH"] = f"{tools}{os.pathsep}{env['PATH']}"
    env["TORCHFIT_PYTORCH_INDEX"] = index
    env.pop("CUDA_HOME", None)
    return env


def venv_with(tmp_path: Path, version: str, cuda: str | None, gpu: FakeGpu) -> Path:
    python = make_venv(tmp_path / "venv")
    wheel = standin_torch(tmp_path, version, cuda=cuda, gpu=gpu)
    pip_install(python, wheel)
    return python


def pip_install(python: Path, wheel: Path) -> None:
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
        env=isolated_env(),
    )


def torchfit(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "torchfit", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def doctor(*args: str, env: dict[str, str]) -> dict[str, Any]:
    done = torchfit("doctor", "--json", *args, env=env)
    assert done.returncode in (0, 1), done.stderr
    diagnosis: dict[str, Any] = json.loads(done.stdout)
    return diagnosis


def commands(diagnosis: dict[str, Any]) -> list[str]:
    """The torchfit commands among the problems' fixes, in order."""
    return [
        fix
        for finding in diagnosis["findings"]
        for fix in finding["fixes"]
        if fix.startswith("torchfit ")
    ]


def plans_as_said(fix: str, env: dict[str, str]) -> dict[str, Any]:
    """Run ``fix`` as ``torchfit plan`` (what it installs is what plan answers); assert it
    succeeds with exactly the build the command names."""
    argv = shlex.split(fix)
    assert argv[:2] == ["torchfit", "install"], fix
    planned = argv[2 : argv.index("--")] if "--" in argv else argv[2:]
    done = torchfit("plan", *planned, "--json", env=env)
    assert done.returncode == 0, (fix, done.stderr)
    plan: dict[str, Any] = json.loads(done.stdout)
    (torch,) = [p for p in plan["packages"] if p["name"] == "torch"]
    pin = next(a for a in planned if a.startswith("torch=="))
    assert Version(torch["version"]).public == pin.split("==")[1]
    assert plan["variant"] == planned[planned.index("--variant") + 1]
    return plan


def installs(fix: str, env: dict[str, str]) -> None:
    """Run ``fix`` as it is written: a real install, verified."""
    argv = shlex.split(fix)
    done = torchfit(*argv[1:], env=env)
    assert done.returncode == 0, (fix, done.stdout, done.stderr)


def test_the_seed_question_cuda_10_2_build_on_a_10_1_driver(
    tmp_path: Path, index: IndexServer
) -> None:
    """pip's default torch 1.7.1 is built for CUDA 10.2; the driver supports 10.1."""
    env = machine(
        tmp_path,
        f"{index.url}/whl",
        "418.39, Tesla T4, 7.5\n",
        nvcc="Cuda compilation tools, release 10.2, V10.2.89\n",
    )
    python = venv_with(tmp_path, "1.7.1", "10.2", FakeGpu(available=False))
    done = torchfit("doctor", "--python", str(python), env=env)
    assert done.returncode == 1, done.stderr
    out = done.stdout
    assert "NVIDIA driver 418.39: CUDA up to 10.1" in out
    assert (
        "problem: torch 1.7.1 (an unlabeled wheel: the default build pip takes from PyPI) is"
        " built for CUDA 10.2, but this NVIDIA driver (418.39) supports CUDA up to 10.1, so"
        " torch.cuda.is_available() is False." in out
    )
    fix = shlex.join(["torchfit", "install", "torch==1.7.1", "--variant", "cu101"])
    assert f"  fix: {fix} --python {shlex.quote(str(python))}" in out
    assert "  or: update the NVIDIA driver to >= 440.33" in out
    # The system toolkit says 10.2, which is exactly what misleads people: say it does not matter.
    assert "note: CUDA toolkit 10.2 (nvcc) is installed." in out
    assert "does not matter to them" in out
    (command,) = commands(doctor("--python", str(python), env=env))
    installs(command, env)
    assert doctor("--python", str(python), env=env)["healthy"] is True


def test_a_healthy_environment_asks_no_index(tmp_path: Path, index: IndexServer) -> None:
    env = machine(tmp_path, f"{index.url}/whl", SMI_1080)
    gpu = FakeGpu(True, SM_CU126, GTX_1080, 90100)
    python = venv_with(tmp_path, "2.8.0+cu126", "12.6", gpu)
    asked = len(index.requests)
    diagnosis = doctor("--python", str(python), env=env)
    assert diagnosis["healthy"] is True
    assert diagnosis["findings"][0]["severity"] == "ok"
    checks = {c["name"]: c["status"] for c in diagnosis["torch"]["checks"]}
    assert checks == {
        "installed": "pass",
        "import": "pass",
        "driver": "pass",
        "cuda_available": "pass",
        "arch": "pass",
        "cudnn": "pass",
        "kernel": "pass",
    }
    assert len(index.requests) == asked  # nothing to fix: no fix was planned


def test_no_kernel_image_for_a_pascal_gpu(tmp_path: Path, index: IndexServer) -> None:
    """torch 2.8 cu128 on a GTX 1080: installs, imports, is_available() True, then fails."""
    env = machine(tmp_path, f"{index.url}/whl", SMI_1080)
    gpu = FakeGpu(True, SM_CU128, GTX_1080, 90100, NO_KERNEL)
    python = venv_with(tmp_path, "2.8.0+cu128", "12.8", gpu)
    done = torchfit("verify", "--python", str(python), "--json", env=env)
    assert done.returncode == 1
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["cuda_available"]["status"] == "pass"
    assert checks["arch"]["status"] == "fail"
    assert "NVIDIA GeForce GTX 1080 (sm_61)" in checks["arch"]["detail"]
    assert checks["kernel"]["status"] == "fail" and NO_KERNEL in checks["kernel"]["detail"]
    done = torchfit("doctor", "--python", str(python), env=env)
    assert done.returncode == 1
    assert "  fix: torchfit install torch==2.8.0 --variant cu126 --python " in done.stdout
    (command,) = commands(doctor("--python", str(python), env=env))
    plans_as_said(command, env)
    installs(command, env)
    assert doctor("--python", str(python), env=env)["healthy"] is True


def test_cpu_build_on_a_gpu_machine(tmp_path: Path, index: IndexServer) -> None:
    env = machine(tmp_path, f"{index.url}/whl", SMI_3090)
    python = venv_with(tmp_path, "2.5.1+cpu", None, FakeGpu())
    done = torchfit("doctor", "--python", str(python), env=env)
    assert done.returncode == 1
    assert (
        "problem: torch 2.5.1+cpu is a CPU build, but this machine has an NVIDIA GPU" in done.stdout
    )
    assert "  fix: torchfit install torch==2.5.1 --variant cu124 --python " in done.stdout
    (command,) = commands(doctor("--python", str(python), env=env))
    plans_as_said(command, env)
    installs(command, env)
    assert doctor("--python", str(python), env=env)["healthy"] is True


def test_a_release_with_no_build_for_this_driver_gets_one_that_has(
    tmp_path: Path, index: IndexServer
) -> None:
    """torch 2.13.0 has no CUDA 12.4 build: under the strict rule the fix is the newest torch
    a 12.4 driver runs, not `torch==2.13.0` (which would fail); under `--compat minor` it is
    2.13.0's cu126 build, and the command says `--compat minor`."""
    env = machine(tmp_path, f"{index.url}/whl", SMI_3090)
    python = venv_with(tmp_path, "2.13.0+cpu", None, FakeGpu())
    strict = doctor("--python", str(python), env=env)
    (problem,) = [f for f in strict["findings"] if f["severity"] == "problem"]
    fix, driver = problem["fixes"]
    assert fix == shlex.join(
        ["torchfit", "install", "torch==2.6.0", "--variant", "cu124", "--python", str(python)]
    )
    assert driver.startswith("update the NVIDIA driver to >= 560.28")
    plans_as_said(fix, env)
    minor = doctor("--python", str(python), "--compat", "minor", env=env)
    (command,) = commands(minor)
    assert command.startswith("torchfit install torch==2.13.0 --variant cu126 --python ")
    assert command.endswith(" --compat minor")
    plans_as_said(command, env)
    # Without --compat minor the same plan is refused: the flag is what makes it work.
    done = torchfit("plan", "torch==2.13.0", "--variant", "cu126", "--python", str(python), env=env)
    assert done.returncode != 0


def test_torch_not_installed(tmp_path: Path, index: IndexServer) -> None:
    env = machine(tmp_path, f"{index.url}/whl", SMI_3090)
    python = make_venv(tmp_path / "venv")
    diagnosis = doctor("--python", str(python), env=env)
    (problem,) = diagnosis["findings"]
    assert problem["message"].startswith("torch is not installed in ")
    (command,) = commands(diagnosis)
    assert command.startswith("torchfit install torch==2.6.0 --variant cu124 --python ")
    plans_as_said(command, env)


def test_a_torch_whose_import_crashes_is_reinstalled(tmp_path: Path, index: IndexServer) -> None:
    env = machine(tmp_path, f"{index.url}/whl", SMI_3090)
    python = make_venv(tmp_path / "venv")
    wheel = build_wheel(
        tmp_path,
        "torch",
        "2.5.1+cu124",
        files={
            "torch/__init__.py": "import os\nos.abort()\n",
            "torch/version.py": "__version__ = '2.5.1+cu124'\ncuda = '12.4'\n",
        },
    )
    pip_install(python, wheel)
    diagnosis = doctor("--python", str(python), env=env)
    torch = diagnosis["torch"]
    assert (torch["torch_version"], torch["torch_cuda"]) == ("2.5.1+cu124", "12.4")
    checks = {c["name"]: c for c in torch["checks"]}
    assert checks["import"]["status"] == "fail"
    assert "the interpreter died importing torch" in checks["import"]["detail"]
    (command,) = commands(diagnosis)
    assert command.endswith(" -- --force-reinstall")
    plans_as_said(command, env)
    installs(command, env)
    assert doctor("--python", str(python), env=env)["healthy"] is True


def test_no_fix_is_guessed_when_the_index_does_not_answer(tmp_path: Path) -> None:
    with serve_directory(tmp_path) as gone:
        url = f"{gone.url}/whl"
    env = machine(tmp_path, url, SMI_3090)  # a port nobody listens on any more
    python = venv_with(tmp_path, "2.5.1+cpu", None, FakeGpu())
    diagnosis = doctor("--python", str(python), env=env)
    assert diagnosis["healthy"] is False
    assert commands(diagnosis) == []
    assert any(
        f["severity"] == "note" and "the PyTorch index did not answer" in f["message"]
        for f in diagnosis["findings"]
    )
