"""Run pip (or uv) in the target interpreter, and read back what got installed.

Command builders are pure; the runner is the seam tests and callers can replace.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from torchfit._probes import probe_command
from torchfit._runner import Completed, Runner, run
from torchfit.errors import InstallerMissing, InstallFailed

Installer = Literal["pip", "uv"]


@dataclass(frozen=True)
class WheelPin:
    """One exact wheel to install: a direct reference with the hash the index gave."""

    name: str
    url: str
    sha256: str | None

    def requirement(self) -> str:
        # A direct URL reference: no other index can offer a same-named file instead, and
        # pip checks the #sha256 fragment of a user-given URL before installing it.
        fragment = f"#sha256={self.sha256}" if self.sha256 else ""
        return f"{self.name} @ {self.url}{fragment}"


def install_command(
    python: str,
    pins: Sequence[WheelPin],
    passthrough: Sequence[str] = (),
    extra_args: Sequence[str] = (),
    *,
    installer: Installer = "pip",
    uv: str | None = None,
) -> list[str]:
    """The installer's argument list.

    >>> install_command("py", [WheelPin("torch", "https://h/torch-1.whl", "ab")])
    ['py', '-m', 'pip', 'install', 'torch @ https://h/torch-1.whl#sha256=ab']
    """
    requirements = [pin.requirement() for pin in pins] + list(passthrough)
    if installer == "uv":
        return [uv or "uv", "pip", "install", "--python", python, *requirements, *extra_args]
    return [python, "-m", "pip", "install", *requirements, *extra_args]


def find_uv(python: str = sys.executable) -> str:
    """The uv executable: beside ``python`` (``pip install uv`` or ``uv tool install`` put it
    there), then where the ``uv`` package says, then on PATH.

    Raises InstallerMissing when there is none.
    """
    scripts = Path(python).parent
    for name in ("uv", "uv.exe"):
        if (scripts / name).is_file():
            return str(scripts / name)
    try:
        from uv import find_uv_bin  # the uv package's own lookup

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        pass
    found = shutil.which("uv")
    if found is None:
        raise InstallerMissing("uv was not found", hint="pip install uv, or use --installer pip")
    return found


def installed_versions(python: str, runner: Runner = run) -> dict[str, str]:
    """Distribution name -> version in the target interpreter (reads metadata only)."""
    done = runner(probe_command(python, "installed", "distributions"), timeout=120)
    if done.returncode != 0:
        raise InstallerMissing(f"cannot run the target interpreter {python}: {done.tail()}")
    try:
        result = json.loads(done.stdout)
    except ValueError:
        result = None
    if not isinstance(result, dict):
        raise InstallerMissing(f"{python} did not answer like a Python interpreter")
    return {str(name): str(version) for name, version in result.items()}


def ensure_pip(python: str, runner: Runner = run) -> None:
    done = runner([python, "-m", "pip", "--version"], timeout=120)
    if done.returncode != 0:
        raise InstallerMissing(
            f"{python} has no pip",
            hint=f"run `{python} -m ensurepip`, or use --installer uv",
        )


def run_install(
    command: Sequence[str], runner: Runner = run, on_output: Callable[[str], None] | None = None
) -> Completed:
    done = runner(command, on_output=on_output)
    if done.returncode != 0:
        raise InstallFailed(
            f"the installer failed (exit {done.returncode}): {shlex.join(command)}",
            details=tuple(done.tail(12).splitlines()),
        )
    return done


def describe_changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Human lines for what an install changed, and how to go back.

    >>> describe_changes({"torch": "1.6.0"}, {"torch": "1.7.1+cu101", "numpy": "1.19.5"})
    ['numpy: (none) -> 1.19.5', 'torch: 1.6.0 -> 1.7.1+cu101']
    """
    lines = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old != new:
            lines.append(f"{name}: {old or '(none)'} -> {new or '(none)'}")
    return lines
