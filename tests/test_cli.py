"""The command line: exit codes, one-line errors, JSON shapes, flags over environment."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from torchfit.cli.main import main

OFFLINE = ["--offline", "--python-version", "3.8", "--platform", "linux_x86_64"]


def run(capsys: pytest.CaptureFixture[str], *argv: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    code = main(list(argv), env=env or {"TORCHFIT_CACHE_DIR": os.devnull})
    out, err = capsys.readouterr()
    return code, out, err


def test_plan_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plan", "torch==1.7.1", "--cuda", "10.2", *OFFLINE)
    assert code == 0
    assert out.splitlines()[0] == "variant cu102 for Python 3.8 on linux_x86_64"
    assert "torch-1.7.1-cp38-cp38-linux_x86_64.whl" in out


def test_plan_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "plan", "torch==1.7.1", "torchvision", "--cuda", "10.1", *OFFLINE, "--json"
    )
    assert code == 0
    plan = json.loads(out)
    assert plan["variant"] == "cu101"
    assert [p["name"] for p in plan["packages"]] == ["torch", "torchvision"]
    assert set(plan["packages"][0]) == {"name", "version", "filename", "url", "sha256"}
    assert plan["packages"][0]["url"].startswith("https://download.pytorch.org/whl/cu101/")
    assert plan["detection"]["source"] == "override"
    assert plan["reasons"] and plan["pages"][0]["origin"] == "snapshot"


def test_environment_variables_and_flags(capsys: pytest.CaptureFixture[str]) -> None:
    env = {"TORCHFIT_CUDA": "10.1", "TORCHFIT_CACHE_DIR": os.devnull}
    _, out, _ = run(capsys, "plan", "torch==1.7.1", *OFFLINE, "--json", env=env)
    assert json.loads(out)["variant"] == "cu101"
    _, out, _ = run(capsys, "plan", "torch==1.7.1", "--cuda", "10.2", *OFFLINE, "--json", env=env)
    assert json.loads(out)["variant"] == "cu102"  # the flag wins
    env["TORCHFIT_VARIANT"] = "cpu"
    _, out, _ = run(capsys, "plan", "torch==1.7.1", *OFFLINE, "--json", env=env)
    assert json.loads(out)["variant"] == "cpu"


def test_driver_flag_uses_nvidias_table(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "plan", "torch==1.7.1", "--driver", "418.39", *OFFLINE, "--json")
    plan = json.loads(out)
    assert plan["variant"] == "cu101"
    assert plan["detection"]["max_cuda"] == "10.1"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["plan", "torch", "--cuda", "twelve"], "invalid CUDA version 'twelve'"),
        (["plan", "torch", "--driver", "latest"], "invalid driver version 'latest'"),
        (["plan", "torch", "--variant", "cuda12"], "unknown variant 'cuda12'"),
        (["plan", "torch", "--compat", "loose"], "invalid choice: 'loose'"),
        (["plan", "torch>=>1"], "invalid requirement 'torch>=>1'"),
        (["plan", "numpy"], "no torch-family requirement given"),
        (
            ["plan", "torch", "--python-version", "3.8"],
            "--python-version needs at least one --platform",
        ),
        (
            ["plan", "torch", "--pytorch-index", "http://mirror.example.org/whl"],
            "refusing plain http://",
        ),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    lines = err.splitlines()
    assert lines[0].startswith("error: ") and message in lines[0]
    assert all(line.startswith(("error: ", "hint: ")) for line in lines)
    assert out == ""


def test_errors_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "plan", "torch==1.7.1", "--cuda", "9.0", *OFFLINE, "--json")
    assert code == 1 and err == ""
    error = json.loads(out)["error"]
    assert error["type"] == "NoCompatibleWheel"
    assert "396.26" in error["hint"]


def test_dry_run_prints_the_pip_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "install",
        "torch==2.5.1",
        "numpy<2",
        "--cuda",
        "12.4",
        "--offline",
        "--python",
        sys.executable,
        "--dry-run",
        "--",
        "--no-cache-dir",
    )
    assert code == 0
    command = out.splitlines()[-1]
    assert command.startswith(f"would run: {sys.executable} -m pip install 'torch @ https://")
    assert command.endswith("'numpy<2' --no-cache-dir")


def fake_nvidia_smi(folder: Path, output: str) -> None:
    script = folder / "nvidia-smi"
    script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{output}EOF\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


@pytest.mark.skipif(sys.platform == "win32", reason="the fake nvidia-smi is a POSIX shell script")
def test_detect_and_plan_through_a_fake_nvidia_smi(tmp_path: Path) -> None:
    fake_nvidia_smi(tmp_path, "440.33.01, Tesla T4, 7.5\n")
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    env["TORCHFIT_CACHE_DIR"] = str(tmp_path / "cache")
    done = subprocess.run(
        [sys.executable, "-m", "torchfit", "detect", "--json"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    detection = json.loads(done.stdout)
    assert (detection["driver_version"], detection["max_cuda"]) == ("440.33.01", "10.2")
    assert detection["gpus"] == [{"name": "Tesla T4", "compute_capability": "7.5"}]
    done = subprocess.run(
        [sys.executable, "-m", "torchfit", "plan", "torch==1.7.1", *OFFLINE],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("variant cu102")


def test_no_traceback_for_bad_input_as_a_subprocess() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "torchfit", "plan", "torch", "--cuda", "x.y"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[0] == "error: invalid CUDA version 'x.y'"


def test_offline_plans_say_they_rest_on_snapshots(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "plan", "torch==1.7.1", "--cuda", "10.2", *OFFLINE)
    assert code == 0
    warnings = err.splitlines()
    assert "warning: planned from the snapshots bundled with torchfit (data up to" in warnings[-1]
    # The 2021 page gave no hashes: said, not hidden.
    assert warnings[0].startswith("warning: the index gives no sha256 for torch-1.7.1-cp38")
    code, _, err = run(capsys, "plan", "torch==2.99.0", "--cuda", "12.8", *OFFLINE)
    assert code == 1
    assert "the bundled snapshots may not list every build: drop --offline" in err


def test_markers_on_torch_family_requirements_are_evaluated_for_the_target(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(
        capsys,
        "plan",
        "torch==1.7.1; python_version < '3'",
        "torch==1.6.0",
        "--cuda",
        "10.2",
        *OFFLINE,
        "--json",
    )
    assert code == 0
    assert [p["version"] for p in json.loads(out)["packages"]] == ["1.6.0"]


def test_empty_flag_values_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "plan", "torch", "--pytorch-index", "", *OFFLINE)
    assert code == 2 and err.startswith("error: an empty value")
    # An empty environment variable is simply unset.
    env = {"TORCHFIT_CUDA": "", "TORCHFIT_CACHE_DIR": os.devnull}
    code, out, _ = run(capsys, "plan", "torch==1.7.1", *OFFLINE, "--json", env=env)
    assert code == 0 and json.loads(out)["variant"] == "cpu"


def test_python_that_is_not_python(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho '{}'\n")
    fake.chmod(0o755)
    code, _, err = run(capsys, "plan", "torch", "--python", str(fake), "--offline")
    assert code == 2
    assert "did not answer like a Python interpreter" in err


def test_options_and_requirements_mix_as_with_pip(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "plan", "torch==1.7.1", "--cuda", "10.1", "torchvision", *OFFLINE, "--json"
    )
    assert code == 0
    assert [p["name"] for p in json.loads(out)["packages"]] == ["torch", "torchvision"]


def test_installer_arguments_on_a_verb_without_installer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, "plan", "torch==1.7.1", "--cuda", "10.1", *OFFLINE, "--", "-q")
    assert code == 2
    assert err.startswith("error: `torchfit plan` passes nothing to an installer: '-q'")


def test_force_without_variant_waives_no_kernel_check(capsys: pytest.CaptureFixture[str]) -> None:
    machine = ["--cuda", "12.8", "--gpu-arch", "6.1", "--python-version", "3.12"]
    argv = ["plan", "torch==2.8.0", *machine, "--platform", "manylinux_2_28_x86_64", "--offline"]
    code, out, _ = run(capsys, *argv, "--force", "--json")
    assert code == 0
    assert json.loads(out)["variant"] == "cu126"  # cu128 has no sm_61 kernels


def test_a_driver_flag_silences_the_cuda_variable(capsys: pytest.CaptureFixture[str]) -> None:
    env = {"TORCHFIT_CUDA": "11.8", "TORCHFIT_CACHE_DIR": os.devnull}
    code, out, _ = run(capsys, "detect", "--driver", "570.124.06", "--json", env=env)
    assert code == 0
    assert (json.loads(out)["driver_version"], json.loads(out)["max_cuda"]) == (
        "570.124.06",
        "12.8",
    )


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pipe that closes early")
def test_a_closed_pipe_ends_quietly() -> None:
    argv = ["plan", "torch==1.7.1", "--cuda", "10.1", *OFFLINE]
    child = subprocess.Popen(
        [sys.executable, "-m", "torchfit", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "TORCHFIT_CACHE_DIR": os.devnull},
    )
    assert child.stdout is not None
    child.stdout.close()  # the reader is gone before torchfit writes, as `| head -0` would be
    _, err = child.communicate(timeout=60)
    assert "internal error" not in err.decode() and "Traceback" not in err.decode()
    assert child.returncode == 141


def test_a_wheel_without_a_hash_is_said_and_can_be_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from support import serve_directory

    name = "torch-1.7.1%2Bcu101-cp38-cp38-linux_x86_64.whl"
    (tmp_path / "whl" / "cu101" / "torch").mkdir(parents=True)
    (tmp_path / "whl" / "cu101" / "torch" / "index.html").write_text(
        f'<a href="/whl/cu101/{name}">x</a>'
    )
    with serve_directory(tmp_path) as server:
        argv = ["plan", "torch==1.7.1", "--cuda", "10.1", "--python-version", "3.8"]
        argv += ["--platform", "linux_x86_64", "--pytorch-index", f"{server.url}/whl"]
        env = {"TORCHFIT_CACHE_DIR": str(tmp_path / "cache")}
        code, _, err = run(capsys, *argv, env=env)
        assert code == 0
        assert "warning: the index gives no sha256 for torch-1.7.1+cu101-cp38" in err
        code, _, err = run(capsys, *argv, "--require-hashes", env=env)
    assert code == 1
    assert err.startswith("error: the index gives no sha256 for torch-1.7.1+cu101-cp38")


@pytest.mark.skipif(sys.platform == "win32", reason="the fake nvidia-smi is a POSIX shell script")
def test_a_failing_source_is_a_reason_in_why(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "nvidia-smi"
    script.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    code, _, _ = run(capsys, "plan", "torch==1.7.1", *OFFLINE)
    assert code == 1  # a driver seems present, but none answered: no silent CPU plan
    monkeypatch.setenv("TORCHFIT_GPU_ARCH", "7.5")
    # A machine (under --root) whose /sys file cannot be read and whose /proc file answers.
    proc = tmp_path / "machine" / "proc" / "driver" / "nvidia" / "version"
    proc.parent.mkdir(parents=True)
    proc.write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  440.33.01  Wed Nov 13\n")
    (tmp_path / "machine" / "sys" / "module" / "nvidia" / "version").mkdir(parents=True)
    root = ["--root", str(tmp_path / "machine")]
    code, out, _ = run(capsys, "plan", "torch==1.7.1", *OFFLINE, *root, env=dict(os.environ))
    assert code == 0
    assert "  - /sys/module/nvidia/version failed (unreadable: " in out
    assert "the next source was asked" in out
    assert "driver supports CUDA 10.2 (/proc/driver/nvidia/version)" in out
