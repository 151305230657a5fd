"""End to end with the real thing: the CPU build of torch 2.13.0, installed by torchfit from a
loopback index into a fresh virtual environment, then verified by importing it.

Runs where this machine's pip can provide that wheel (CPython 3.11); skips elsewhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from support import make_venv, serve_directory, sha256_of

pytestmark = pytest.mark.integration

VERSION = "2.13.0"


@pytest.fixture(scope="module")
def real_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if sys.version_info[:2] != (3, 11):
        pytest.skip(f"the available real torch {VERSION} wheel is for CPython 3.11")
    folder = tmp_path_factory.mktemp("real")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            f"torch=={VERSION}",
            "--no-deps",
            "-d",
            str(folder),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    wheels = list(folder.glob("torch-*.whl"))
    if done.returncode != 0 or not wheels or "+cpu" not in wheels[0].name:
        pytest.skip(f"pip here cannot provide the CPU build of torch {VERSION}")
    return wheels[0]


def test_real_cpu_torch_installs_and_verifies(real_wheel: Path, tmp_path: Path) -> None:
    folder = tmp_path / "whl" / "cpu"
    (folder / "torch").mkdir(parents=True)
    os.link(real_wheel, folder / real_wheel.name)
    href = f"/whl/cpu/{quote(real_wheel.name)}#sha256={sha256_of(real_wheel)}"
    (folder / "torch" / "index.html").write_text(f'<a href="{href}">{real_wheel.name}</a><br/>\n')
    venv = make_venv(tmp_path / "venv")
    # torch's own dependencies come from this machine's pip settings, as they would for a user.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    with serve_directory(tmp_path) as server:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "torchfit",
                "install",
                f"torch=={VERSION}",
                "--variant",
                "cpu",
                "--python",
                str(venv),
                "--pytorch-index",
                f"{server.url}/whl",
                "--json",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=900,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    verification = json.loads(done.stdout)["verification"]
    checks = {c["name"]: c["status"] for c in verification["checks"]}
    assert verification["torch_version"] == f"{VERSION}+cpu"
    assert verification["torch_cuda"] is None
    assert checks["import"] == "pass" and checks["variant"] == "pass"
    # And independently of torchfit: the real torch computes in that environment.
    script = "import torch; print(int((torch.ones(3) * 2).sum()))"
    assert subprocess.check_output([str(venv), "-c", script], text=True).strip() == "6"
