"""Users installing the built wheel get the bundled snapshots: build the wheel, install it for real,
plan offline from it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from support import find_python, make_venv

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_snapshots_and_plans_offline(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        env=env,
        timeout=600,
    )
    (wheel,) = tmp_path.glob("torchfit_cli-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert "torchfit/_snapshots/MANIFEST.json" in names
    assert "torchfit/_snapshots/cu101/torch/index.html" in names
    assert "torchfit/py.typed" in names
    # The name `torchfit` on PyPI is another project's: the distribution is torchfit-cli, the
    # command and the import stay `torchfit`.
    with zipfile.ZipFile(wheel) as archive:
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(info).decode()
        points = archive.read(info.replace("METADATA", "entry_points.txt")).decode()
    assert "\nName: torchfit-cli\n" in metadata
    assert "torchfit = torchfit.cli.main:entrypoint" in points

    python = make_venv(tmp_path / "venv")
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", str(wheel)],
        check=True,
        capture_output=True,
        env=env,
        timeout=600,
    )
    done = subprocess.run(
        [
            str(python),
            "-m",
            "torchfit",
            "plan",
            "torch==1.7.1",
            "--cuda",
            "10.2",
            "--offline",
            "--python-version",
            "3.8",
            "--platform",
            "linux_x86_64",
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**env, "TORCHFIT_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["variant"] == "cu102"
    assert plan["pages"][0]["origin"] == "snapshot"


def test_the_oldest_supported_python_runs_torchfit(tmp_path: Path) -> None:
    """requires-python says 3.9: a module-level `X | None` or a 3.10 stdlib call breaks it there
    while every test on a newer Python passes."""
    oldest = find_python("3.9")
    if oldest is None:
        pytest.skip("no Python 3.9 runs on this machine")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    python = make_venv(tmp_path / "venv", python=oldest)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", str(ROOT)],
        check=True,
        capture_output=True,
        env=env,
        timeout=600,
    )
    argv = ["plan", "torch==1.7.1", "--cuda", "10.2", "--offline", "--python-version", "3.8"]
    done = subprocess.run(
        [str(python), "-m", "torchfit", *argv, "--platform", "linux_x86_64", "--json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**env, "TORCHFIT_CACHE_DIR": str(tmp_path / "cache")},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["variant"] == "cu102"
