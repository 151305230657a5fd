"""`torchfit doctor` and deep verification on machines set up to show each problem: a fake
nvidia-smi (and nvcc) on PATH printing real-shaped output, stand-in torch builds in real venvs."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from support import FakeGpu, build_wheel, isolated_env, make_venv, standin_torch

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sys.platform == "win32", reason="fake tools are POSIX shell scripts"),
]

SM_CU126 = ("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90")
SM_CU128 = ("sm_70", "sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120")
NO_KERNEL = "CUDA error: no kernel image is available for execution on the device"


def fake_tool(folder: Path, name: str, output: str) -> None:
    script = folder / name
    script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{output}EOF\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def machine(tmp_path: Path, smi: str, nvcc: str | None = None) -> dict[str, str]:
    """An environment whose PATH has a fake nvidia-smi (and nvcc) first."""
    tools = tmp_path / "tools"
    tools.mkdir()
    fake_tool(tools, "nvidia-smi", smi)
    if nvcc:
        fake_tool(tools, "nvcc", nvcc)
    env = isolated_env()
    env["PATH"] = f"{tools}{os.pathsep}{env['PATH']}"
    env.pop("CUDA_HOME", None)
    return env


def venv_with(tmp_path: Path, version: str, cuda: str | None, gpu: FakeGpu) -> Path:
    python = make_venv(tmp_path / "venv")
    wheel = standin_torch(tmp_path, version, cuda=cuda, gpu=gpu)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
        env=isolated_env(),
    )
    return python


def torchfit(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "torchfit", *args], capture_output=True, text=True, env=env
    )


def test_the_seed_question_cuda_10_2_build_on_a_10_1_driver(tmp_path: Path) -> None:
    """pip's default torch 1.7.1 is built for CUDA 10.2; the driver supports 10.1."""
    env = machine(
        tmp_path,
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
    assert "  fix: torchfit install torch==1.7.1 --variant cu101" in out
    assert "  or: update the NVIDIA driver to >= 440.33" in out
    # The system toolkit says 10.2, which is exactly what misleads people: say it does not matter.
    assert "note: CUDA toolkit 10.2 (nvcc) is installed." in out
    assert "does not matter to them" in out


def test_a_healthy_environment(tmp_path: Path) -> None:
    env = machine(tmp_path, "570.133.07, NVIDIA GeForce GTX 1080, 6.1\n")
    gpu = FakeGpu(True, SM_CU126, (("NVIDIA GeForce GTX 1080", (6, 1)),), 90100)
    python = venv_with(tmp_path, "2.8.0+cu126", "12.6", gpu)
    done = torchfit("doctor", "--python", str(python), "--json", env=env)
    assert done.returncode == 0, done.stdout
    diagnosis = json.loads(done.stdout)
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


def test_no_kernel_image_for_a_pascal_gpu(tmp_path: Path) -> None:
    """torch 2.8 cu128 on a GTX 1080: installs, imports, is_available() True, then fails."""
    env = machine(tmp_path, "570.133.07, NVIDIA GeForce GTX 1080, 6.1\n")
    gpu = FakeGpu(True, SM_CU128, (("NVIDIA GeForce GTX 1080", (6, 1)),), 90100, NO_KERNEL)
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
    assert "  fix: torchfit install torch==2.8.0 --variant cu126" in done.stdout


def test_cpu_build_on_a_gpu_machine(tmp_path: Path) -> None:
    env = machine(tmp_path, "550.54.14, NVIDIA GeForce RTX 3090, 8.6\n")
    python = venv_with(tmp_path, "2.5.1+cpu", None, FakeGpu())
    done = torchfit("doctor", "--python", str(python), env=env)
    assert done.returncode == 1
    assert (
        "problem: torch 2.5.1+cpu is a CPU build, but this machine has an NVIDIA GPU" in done.stdout
    )
    assert "  fix: torchfit install torch==2.5.1" in done.stdout


def test_a_torch_whose_import_crashes_still_reports_what_it_is(tmp_path: Path) -> None:
    env = machine(tmp_path, "550.54.14, NVIDIA GeForce RTX 3090, 8.6\n")
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
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
        env=isolated_env(),
    )
    done = torchfit("doctor", "--python", str(python), "--json", env=env)
    assert done.returncode == 1
    torch = json.loads(done.stdout)["torch"]
    assert (torch["torch_version"], torch["torch_cuda"]) == ("2.5.1+cu124", "12.4")
    checks = {c["name"]: c for c in torch["checks"]}
    assert checks["import"]["status"] == "fail"
    assert "the interpreter died importing torch" in checks["import"]["detail"]
