"""Run pip (or uv) in the target interpreter, and read back what got installed.

Command builders are pure; ``run`` is the seam tests and callers can replace.
"""

from __future__ import annotations

import json
import shlex
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from torchfit._runner import Completed, Runner, run_reporting
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


def find_uv() -> str:
    found = shutil.which("uv")
    if found is None:
        raise InstallerMissing("uv is not on PATH", hint="install uv, or use --installer pip")
    return found


# Runs in the target interpreter, which may be as old as Python 3.6 (no importlib.metadata
# before 3.8), so it reads dist-info folders itself there. The first one on sys.path wins, as
# for an import.
DISTRIBUTIONS_SNIPPET = r"""
import os, sys
def installed_distributions():
    found = {}
    try:
        from importlib.metadata import distributions
    except ImportError:
        distributions = None
    if distributions is not None:
        for dist in distributions():
            if dist.metadata["Name"]:
                found.setdefault(dist.metadata["Name"].lower(), dist.version)
        return found
    for folder in sys.path:
        if not os.path.isdir(folder):
            continue
        for entry in sorted(os.listdir(folder)):
            path = os.path.join(folder, entry, "METADATA")
            if not entry.endswith(".dist-info") or not os.path.isfile(path):
                continue
            fields = {}
            with open(path, encoding="utf-8", errors="replace") as lines:
                for line in lines:
                    if not line.strip():
                        break
                    key, _, value = line.partition(":")
                    fields.setdefault(key.strip().lower(), value.strip())
            if fields.get("name"):
                found.setdefault(fields["name"].lower(), fields.get("version", ""))
    return found
"""


def installed_versions(python: str, run: Runner = run_reporting) -> dict[str, str]:
    """Distribution name -> version in the target interpreter (reads metadata only)."""
    script = DISTRIBUTIONS_SNIPPET + "import json\nprint(json.dumps(installed_distributions()))\n"
    done = run([python, "-c", script], 120)
    if done.returncode != 0:
        raise InstallerMissing(f"cannot run the target interpreter {python}: {done.tail()}")
    try:
        result: dict[str, str] = json.loads(done.stdout)
    except ValueError as exc:
        raise InstallerMissing(f"{python} did not answer like a Python interpreter") from exc
    return result


def ensure_pip(python: str, run: Runner = run_reporting) -> None:
    done = run([python, "-m", "pip", "--version"], 120)
    if done.returncode != 0:
        raise InstallerMissing(
            f"{python} has no pip",
            hint=f"run `{python} -m ensurepip`, or use --installer uv",
        )


def run_install(command: Sequence[str], run: Runner = run_reporting) -> Completed:
    done = run(command, None)
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
