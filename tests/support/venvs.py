"""Throwaway virtual environments with real pip, and other interpreters to build them from."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path


def isolated_env() -> dict[str, str]:
    """Return ``os.environ`` without the user's pip settings, for running pip in tests.

    A developer's ``pip.conf`` or ``PIP_INDEX_URL`` would otherwise send test installs to
    another index or mirror.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
    )
    # PYTHONPATH would leak the outer packages into the venv; uv targets $VIRTUAL_ENV.
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    return env


def venv_python(path: Path) -> Path:
    """Return the interpreter path inside the virtual environment at ``path``."""
    if os.name == "nt":
        return Path(path) / "Scripts" / "python.exe"
    return Path(path) / "bin" / "python"


def make_venv(path: Path, python: str = sys.executable) -> Path:
    """Create a virtual environment with pip (via ensurepip) at ``path``; return its python.

    Raises ``subprocess.CalledProcessError`` (with the output attached) if ``venv`` fails.
    """
    subprocess.run(
        [python, "-m", "venv", str(path)],
        check=True,
        capture_output=True,
        text=True,
        env=isolated_env(),
    )
    return venv_python(path)


def _probe(command: list[str], version: str) -> str | None:
    """Run ``command`` as an interpreter; return its real executable if it is ``version``."""
    script = "import json, sys; print(json.dumps([list(sys.version_info[:2]), sys.executable]))"
    try:
        done = subprocess.run(
            [*command, "-c", script],
            capture_output=True,
            text=True,
            timeout=30,
            env=isolated_env(),
        )
        found, executable = json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        return None  # missing, hanging, or a shim that refuses (pyenv without that version)
    wanted = [int(part) for part in version.split(".")[:2]]
    return str(executable) if found == wanted and executable else None


def find_python(version: str) -> str | None:
    """Return the path of a working Python ``version`` (``"3.9"``), or ``None``.

    Looks for ``python3.9`` on PATH and, on Windows, the ``py -3.9`` launcher; each
    candidate is run to confirm its version, so shims that cannot run it are skipped.
    The returned path is the interpreter itself (``sys.executable``), not the shim.
    """
    if not re.fullmatch(r"\d+\.\d+", version):
        raise ValueError(f"expected a version like '3.9', got {version!r}")
    # Every python3.X on PATH, not only the first: an earlier one may be a broken shim.
    candidates = []
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        exe = shutil.which(f"python{version}", path=directory) if directory else None
        if exe and [exe] not in candidates:
            candidates.append([exe])
    launcher = shutil.which("py") if os.name == "nt" else None
    if launcher:
        candidates.append([launcher, f"-{version}"])
    for command in candidates:
        found = _probe(command, version)
        if found:
            return found
    return None


def pip_freeze(python: Path | str) -> dict[str, str]:
    """Return ``{normalized name: version}`` of what ``python -m pip list`` reports.

    Names are normalized as in PEP 503 (``Typing_Extensions`` -> ``typing-extensions``).
    """
    done = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=json"],
        check=True,
        capture_output=True,
        text=True,
        env=isolated_env(),
    )
    return {
        re.sub(r"[-_.]+", "-", item["name"]).lower(): item["version"]
        for item in json.loads(done.stdout)
    }
