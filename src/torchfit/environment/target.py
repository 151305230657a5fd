"""The interpreter and platform wheels are chosen for.

Three ways to name it: an interpreter (``--python``; else the active environment,
``VIRTUAL_ENV`` then ``CONDA_PREFIX``; else the running one), asked in a subprocess when it
is not the running one, or an explicit ``--python-version`` plus ``--platform`` tags (for a
Docker image or another machine).
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from packaging.tags import Tag

from torchfit._probes import probe_answer, probe_command
from torchfit._probes.interpreter import interpreter_facts
from torchfit._runner import Runner, run
from torchfit.errors import UsageError

_MANYLINUX = re.compile(r"manylinux_(\d{1,2})_(\d{1,3})_(\w+)")  # bounded: one tag per minor
_LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


@dataclass(frozen=True)
class Target:
    python_version: tuple[int, int]
    python_full_version: str
    platforms: tuple[str, ...]
    tags: tuple[Tag, ...]  # best first
    interpreter: str | None = None  # the executable to install into, when there is one
    # Why that interpreter: "--python", "VIRTUAL_ENV", "CONDA_PREFIX" or OWN_INTERPRETER.
    chosen_by: str | None = None

    @property
    def os(self) -> str:
        return platform_os(self.platforms[0] if self.platforms else "")

    def tag_rank(self, wheel_tags: frozenset[Tag]) -> int | None:
        """Position of the wheel's best tag in this target's list (lower is better)."""
        ranks = [self._ranks[tag] for tag in wheel_tags if tag in self._ranks]
        return min(ranks) if ranks else None

    def may_accept(self, filename: str) -> bool:
        """A cheap first look at a wheel's file name: False when none of its tags is this
        target's (most links of a big page are for other Pythons and platforms).

        >>> target = from_spec("3.12", ["manylinux_2_28_x86_64"])
        >>> target.may_accept("torch-2.8.0+cu128-cp312-cp312-manylinux_2_28_x86_64.whl")
        True
        >>> target.may_accept("torch-2.8.0+cu128-cp311-cp311-manylinux_2_28_x86_64.whl")
        False
        """
        parts = filename[: -len(".whl")].lower().rsplit("-", 3)
        if len(parts) != 4:
            return True  # not for this look to judge: the full parse will say
        accepted = self._tag_texts
        return any(
            f"{interpreter}-{abi}-{platform}" in accepted
            for interpreter in parts[1].split(".")
            for abi in parts[2].split(".")
            for platform in parts[3].split(".")
        )

    @property
    def _tag_texts(self) -> frozenset[str]:
        cached: frozenset[str] | None = self.__dict__.get("_text_cache")
        if cached is None:
            cached = frozenset(str(tag) for tag in self.tags)
            object.__setattr__(self, "_text_cache", cached)
        return cached

    @property
    def _ranks(self) -> dict[Tag, int]:
        cached: dict[Tag, int] | None = self.__dict__.get("_rank_cache")
        if cached is None:
            cached = {tag: i for i, tag in enumerate(self.tags)}
            object.__setattr__(self, "_rank_cache", cached)
        return cached

    def marker_environment(self) -> dict[str, str]:
        """The PEP 508 marker values that tell targets apart (no extras requested)."""
        return {
            "python_version": "{}.{}".format(*self.python_version),
            "python_full_version": self.python_full_version,
            "sys_platform": {"windows": "win32", "macos": "darwin"}.get(self.os, "linux"),
            "platform_system": {"windows": "Windows", "macos": "Darwin"}.get(self.os, "Linux"),
            "os_name": "nt" if self.os == "windows" else "posix",
            "platform_machine": _machine(self.platforms[0] if self.platforms else ""),
            "implementation_name": "cpython",
            "implementation_version": self.python_full_version,
            "platform_python_implementation": "CPython",
            "extra": "",
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "python_version": f"{self.python_version[0]}.{self.python_version[1]}",
            "platforms": list(self.platforms[:3]) + (["..."] if len(self.platforms) > 3 else []),
            "interpreter": self.interpreter,
            "interpreter_from": self.chosen_by,
        }


def platform_os(platform: str) -> str:
    """The OS a platform tag is for, as the driver tables name it.

    >>> platform_os("win_amd64"), platform_os("macosx_11_0_arm64"), platform_os("linux_x86_64")
    ('windows', 'macos', 'linux')
    """
    if platform.startswith("win"):
        return "windows"
    return "macos" if platform.startswith("macosx") else "linux"


def _machine(platform: str) -> str:
    """platform.machine() as such a system reports it, from a platform tag."""
    if platform.endswith("amd64"):
        return "AMD64"
    if platform.endswith("x86_64"):
        return "x86_64"
    return platform.rsplit("_", 1)[-1]


def expand_platform(platform: str) -> list[str]:
    """The platform tags a system of this tag accepts, best first (as pip does).

    >>> expand_platform("manylinux_2_28_x86_64")[:2], expand_platform("manylinux_2_28_x86_64")[-1]
    (['manylinux_2_28_x86_64', 'manylinux_2_27_x86_64'], 'linux_x86_64')
    """
    for legacy, (major, minor) in _LEGACY_MANYLINUX.items():
        if platform.startswith(legacy + "_"):
            platform = f"manylinux_{major}_{minor}_{platform[len(legacy) + 1 :]}"
    if match := _MANYLINUX.fullmatch(platform):
        major, minor, arch = int(match[1]), int(match[2]), match[3]
        result = []
        for glibc_minor in range(minor, 4, -1):
            result.append(f"manylinux_{major}_{glibc_minor}_{arch}")
            for legacy, version in _LEGACY_MANYLINUX.items():
                if version == (major, glibc_minor):
                    result.append(f"{legacy}_{arch}")
        return [*result, f"linux_{arch}"]
    if match := re.fullmatch(r"macosx_(\d{1,2})_(\d{1,2})_(\w+)", platform):
        version = (int(match[1]), int(match[2]))
        from packaging.tags import mac_platforms

        return list(mac_platforms(version, match[3]))
    return [platform]


def _python_tags(
    version: tuple[int, int], platforms: Sequence[str], abi: str | None
) -> tuple[Tag, ...]:
    from packaging import tags  # here: a plan remembered by the CLI needs no tags

    abis = [abi] if abi else None
    return (
        *tags.cpython_tags(version, abis=abis, platforms=platforms),
        *tags.compatible_tags(version, f"cp{version[0]}{version[1]}", platforms),
    )


def from_spec(python_version: str, platforms: Sequence[str]) -> Target:
    """A target named by ``--python-version X.Y`` and ``--platform TAG`` (repeatable)."""
    if not python_version.strip():
        raise UsageError("--platform needs --python-version", hint="e.g. --python-version 3.12")
    # 3.8.10 as pip takes it (the micro only fills python_full_version); 3.100 is refused.
    match = re.fullmatch(r"\s*3\.([0-9]{1,2})(?:\.([0-9]{1,3}))?\s*", python_version)
    if not match:
        raise UsageError(
            f"invalid --python-version {python_version!r}", hint="write it as 3.X, e.g. 3.11"
        )
    if not platforms:
        raise UsageError(
            "--python-version needs at least one --platform",
            hint="e.g. --platform manylinux_2_28_x86_64, win_amd64 or macosx_11_0_arm64",
        )
    for platform in platforms:
        if not re.fullmatch(r"[a-z0-9_]+", platform):
            raise UsageError(f"invalid --platform {platform!r}", hint="e.g. manylinux_2_28_x86_64")
    version = (3, int(match[1]))
    expanded: list[str] = []
    for platform in platforms:
        expanded += [p for p in expand_platform(platform) if p not in expanded]
    return Target(
        version,
        f"3.{version[1]}.{match[2] or 0}",
        tuple(expanded),
        _python_tags(version, expanded, None),
    )


def from_facts(facts: dict[str, Any], interpreter: str | None) -> Target:
    """A target from what the probe script printed."""
    major, minor, micro = facts["version"]
    version = (int(major), int(minor))
    platform = facts["platform"].replace("-", "_").replace(".", "_")
    if platform.startswith("linux_") and facts["libc"][0] == "glibc":
        glibc = facts["libc"][1].split(".")
        platform = f"manylinux_{glibc[0]}_{glibc[1]}_{platform[len('linux_') :]}"
    elif platform.startswith("macosx_") and facts["mac"]:
        mac = facts["mac"].split(".")
        mac_major = int(mac[0])
        mac_minor = int(mac[1]) if mac_major == 10 and len(mac) > 1 else 0
        platform = f"macosx_{mac_major}_{mac_minor}_{facts['machine']}"
    platforms = expand_platform(platform)
    abi = None
    if facts["implementation"] == "cpython":
        abi = f"cp{major}{minor}{'t' if facts.get('free_threaded') else ''}{facts['abiflags']}"
        abi = abi.replace("tt", "t")
    return Target(
        version,
        f"{major}.{minor}.{micro}",
        tuple(platforms),
        _python_tags(version, platforms, abi),
        interpreter,
    )


def from_interpreter(python: str, runner: Runner = run, *, chosen_by: str | None = None) -> Target:
    """Ask another interpreter what it is (the interpreter probe, in a subprocess).

    Raises UsageError, naming where ``python`` came from, when it does not answer.
    """
    from_variable = chosen_by not in (None, "--python")
    named = f"{python} (from {chosen_by})" if from_variable else f"--python {python}"
    done = runner(probe_command(python, "interpreter"), timeout=60)
    if done.failure:
        raise UsageError(f"cannot run {named}: {done.failure}")
    if done.returncode != 0:
        raise UsageError(f"{named} failed to start: {done.tail(1)}")
    try:
        facts = probe_answer(done.stdout)
        return dataclasses.replace(from_facts(facts, python), chosen_by=chosen_by)
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        raise UsageError(f"{named} did not answer like a Python interpreter") from None


def current() -> Target:
    """The running interpreter (the same probe, in-process)."""
    return from_facts(interpreter_facts(), sys.executable)


#: ``Target.chosen_by`` when no interpreter was named and no environment is active.
OWN_INTERPRETER = "torchfit's interpreter"
#: The variables that name the active environment, in the order ``uv pip`` reads them.
ACTIVE_ENVIRONMENT = ("VIRTUAL_ENV", "CONDA_PREFIX")


def find_interpreter(python: str | None, env: Mapping[str, str]) -> tuple[str, str]:
    """The interpreter installs and checks act on, and why: ``--python``, else the active
    virtual environment (``VIRTUAL_ENV``), else the active conda environment
    (``CONDA_PREFIX``), else the running interpreter. Under ``uvx`` or ``pipx run`` the
    running one is a throwaway environment: the active one is what the user means.

    >>> find_interpreter(None, {}) == (sys.executable, OWN_INTERPRETER)
    True

    An environment that is the running interpreter's own gives ``sys.executable`` (no
    subprocess needed). Raises UsageError when a variable names a folder with no Python in
    it (uv skips such a folder in silence; an install would then land somewhere else).
    """
    if python:
        return python, "--python"
    for variable in ACTIVE_ENVIRONMENT:
        prefix = env.get(variable, "").strip()  # empty means unset, as for uv
        if prefix:
            return _environment_python(prefix, variable), variable
    return sys.executable, OWN_INTERPRETER


def _environment_python(prefix: str, variable: str) -> str:
    if _same_folder(prefix, sys.prefix):
        return sys.executable
    root = Path(prefix)
    if os.name == "nt":  # a venv's Scripts\python.exe; a conda environment's own python.exe
        candidates = [root / "Scripts" / "python.exe", root / "python.exe"]
    else:
        candidates = [root / "bin" / "python", root / "bin" / "python3"]
    for candidate in candidates:
        try:
            if candidate.is_file():
                return str(candidate)
        except OSError:  # a folder we may not look into
            continue
    raise UsageError(
        f"{variable}={prefix} is not a Python environment: {candidates[0]} does not exist",
        hint=f"activate an existing environment, unset {variable}, or pass --python PATH",
    )


def _same_folder(one: str, other: str) -> bool:
    try:
        return os.path.realpath(one) == os.path.realpath(other)
    except (OSError, ValueError):
        return False


def for_interpreter(python: str | None, env: Mapping[str, str], runner: Runner = run) -> Target:
    """The target for the interpreter :func:`find_interpreter` chooses (``env`` is the
    caller's environment mapping, read for ``VIRTUAL_ENV`` and ``CONDA_PREFIX`` only)."""
    path, chosen_by = find_interpreter(python, env)
    if path == sys.executable:
        return dataclasses.replace(current(), chosen_by=chosen_by)
    return from_interpreter(path, runner, chosen_by=chosen_by)
