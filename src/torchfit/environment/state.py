"""The restore point: which torch family an environment had before torchfit last changed it.

Before the installer runs, torchfit writes ``<sys.prefix>/torchfit-state.json`` in the
target environment: it lives and dies with the environment (deleting a venv deletes its
record), ``--python PATH`` alone finds it, and two environments never share one. Where the
prefix is not writable (a system Python; pip then installs into the user's site), the record
goes to torchfit's cache folder instead, under a name derived from the prefix.

The file says what to put back: each of torch, torchvision and torchaudio as it was (exact
version, and the wheel's URL and sha256 where known), or absent. It is written again only
after a change that finished: while one was cut short, the record of the last whole state
is kept, however often the install is tried again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from torchfit._probes import probe_answer, probe_command
from torchfit._runner import Runner, run
from torchfit.errors import InstallerMissing, TorchfitError

log = logging.getLogger(__name__)

FAMILY = ("torch", "torchvision", "torchaudio")
STATE_FILE = "torchfit-state.json"
_FORMAT = 1


@dataclass(frozen=True)
class Held:
    """One installed torch-family package: its version and the wheel it came from."""

    name: str
    version: str
    url: str | None = None  # http(s) or file URL of the wheel, when known
    sha256: str | None = None
    intact: bool = True  # the installer finished it: its own RECORD, no file missing

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "url": self.url, "sha256": self.sha256}


@dataclass(frozen=True)
class EnvironmentState:
    """What the target interpreter says about itself, read before and after a change."""

    prefix: str
    writable: bool
    distributions: Mapping[str, str]  # lower-cased name -> version
    family: Mapping[str, Held]
    leftovers: tuple[str, ...] = ()  # what a stopped pip uninstall moved aside ("~orch")

    def broken(self) -> set[str]:
        """Torch-family packages that an installer did not finish."""
        return {name for name, held in self.family.items() if not held.intact}


@dataclass(frozen=True)
class Record:
    """The restore point of one environment."""

    python: str
    prefix: str
    installer: str  # "pip" or "uv": the one that made the change, and that puts it back
    recorded: str  # when, ISO 8601 UTC
    before: Mapping[str, Held | None]  # each family name: what was there, or None (absent)
    complete: bool = False  # the change after this record finished
    installed: Mapping[str, Held] = field(default_factory=dict)  # torchfit's own, with URLs

    def to_json(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "python": self.python,
            "prefix": self.prefix,
            "installer": self.installer,
            "recorded": self.recorded,
            "complete": self.complete,
            "before": {n: h.to_json() if h else None for n, h in sorted(self.before.items())},
            "installed": {n: h.to_json() for n, h in sorted(self.installed.items())},
        }

    @classmethod
    def from_json(cls, data: Any) -> Record:
        """Raises ValueError (or KeyError, TypeError) for a file that is not a record."""
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError("not a torchfit state record")

        def held(name: str, value: Any) -> Held:
            return Held(name, str(value["version"]), value.get("url"), value.get("sha256"))

        return cls(
            python=str(data["python"]),
            prefix=str(data["prefix"]),
            installer=str(data["installer"]),
            recorded=str(data["recorded"]),
            complete=bool(data["complete"]),
            before={n: held(n, v) if v else None for n, v in dict(data["before"]).items()},
            installed={n: held(n, v) for n, v in dict(data["installed"]).items()},
        )


def read_state(python: str, runner: Runner = run) -> EnvironmentState:
    """Ask ``python`` for its prefix, its distributions and its torch family.

    Raises InstallerMissing when it does not answer like a Python interpreter.
    """
    done = runner(probe_command(python, "installed", "state"), timeout=120)
    if done.returncode != 0:
        raise InstallerMissing(f"cannot run the target interpreter {python}: {done.tail()}")
    try:
        data = probe_answer(done.stdout)
        family = {
            str(name): Held(
                str(name),
                str(facts["version"]),
                facts.get("url"),
                facts.get("sha256"),
                bool(facts.get("intact", True)),
            )
            for name, facts in data["family"].items()
        }
        return EnvironmentState(
            prefix=str(data["prefix"]),
            writable=bool(data["writable"]),
            distributions={str(k): str(v) for k, v in data["distributions"].items()},
            family=family,
            leftovers=tuple(str(path) for path in data.get("leftovers", ())),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InstallerMissing(f"{python} did not answer like a Python interpreter") from exc


def record_paths(state: EnvironmentState, cache_dir: Path | None) -> list[Path]:
    """Where the record of this environment is kept, first choice first."""
    paths = [Path(state.prefix) / STATE_FILE]
    if cache_dir is not None:
        digest = hashlib.sha256(os.path.normcase(state.prefix).encode()).hexdigest()[:16]
        paths.append(Path(cache_dir) / "state" / f"{digest}.json")
    if not state.writable:
        paths.reverse()
    return paths


def load_record(paths: Sequence[Path]) -> tuple[Record, Path] | None:
    """The record (and where it is), or None when there is none.

    Raises TorchfitError when a record exists but cannot be read.
    """
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise TorchfitError(f"cannot read the torchfit record {path}: {exc}") from exc
        try:
            return Record.from_json(json.loads(text)), path
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise TorchfitError(
                f"the torchfit record {path} is damaged: {exc}",
                hint=f"delete {path}; the next `torchfit install` records afresh",
            ) from exc
    return None


def save_record(paths: Sequence[Path], record: Record) -> Path:
    """Write the record to the first place that takes it (atomically); return that place.

    Raises TorchfitError when none does: torchfit changes nothing it cannot put back.
    """
    text = json.dumps(record.to_json(), indent=2) + "\n"
    problems = []
    for path in paths:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=".torchfit-state.", dir=path.parent)
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(temporary, path)
        except OSError as exc:
            problems.append(f"{path}: {exc}")
            continue
        for other in paths:  # one record per environment: never an older one beside it
            if other != path and other.exists():
                other.unlink()
        return path
    raise TorchfitError(
        "cannot write the torchfit record, so nothing was changed",
        details=tuple(problems),
        hint="make the environment (or TORCHFIT_CACHE_DIR) writable",
    )


def new_record(
    python: str, installer: str, state: EnvironmentState, previous: Record | None
) -> Record:
    """The record to write before a change: what is there now, unless the last change was
    cut short (then the state before that one is still the one to go back to)."""
    if previous is not None and not previous.complete:
        log.info("the last change did not finish: keeping the record from %s", previous.recorded)
        return previous
    installed = previous.installed if previous else {}
    before: dict[str, Held | None] = {
        name: _with_origin(state.family[name], installed) if name in state.family else None
        for name in FAMILY
    }
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return Record(python, state.prefix, installer, now, before, False, installed)


def finished(record: Record, installed: Sequence[Held] = ()) -> Record:
    """The record once the change after it has finished; ``installed`` is what torchfit put
    there (their URLs answer a later record's question of where each came from)."""
    known = {**record.installed, **{held.name: held for held in installed}}
    return replace(record, complete=True, installed=known)


def _with_origin(held: Held, installed: Mapping[str, Held]) -> Held:
    """``held`` with the URL of the wheel it came from: torchfit's own record of it first
    (pip recorded only the temporary file torchfit gave it), else its direct_url.json."""
    ours = installed.get(held.name)
    if ours is not None and ours.version == held.version and ours.url:
        return replace(held, url=ours.url, sha256=ours.sha256)
    if held.url and held.url.startswith(("https://", "http://", "file:")):
        return held
    return replace(held, url=None, sha256=None)


@dataclass(frozen=True)
class RestoreSteps:
    """What puts an environment back: uninstall ``remove``, install ``install``, then
    delete ``leftovers`` (pip's, from an uninstall it did not finish)."""

    remove: tuple[str, ...]
    install: tuple[Held, ...]
    leftovers: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.remove or self.install or self.leftovers)


def restore_steps(record: Record, state: EnvironmentState) -> RestoreSteps:
    """The steps from ``state`` back to the record.

    A package that was absent is removed; one whose version differs, or whose files are
    incomplete, is removed (when incomplete) and installed at the recorded version.
    """
    remove, install = [], []
    for name in FAMILY:
        wanted, have = record.before.get(name), state.family.get(name)
        now = have.version if have is not None else None
        if have is not None and not have.intact:
            remove.append(name)
            now = None
        elif wanted is None and now is not None:
            remove.append(name)
        if wanted is not None and now != wanted.version:
            install.append(wanted)
    return RestoreSteps(tuple(remove), tuple(install), tuple(state.leftovers))


def remove_leftovers(paths: Sequence[str]) -> list[str]:
    """Delete what a stopped pip uninstall moved aside (the names begin with ``~``); return
    the names removed. Only called once the recorded packages are back in place."""
    removed = []
    for text in paths:
        path = Path(text)
        if not path.name.startswith("~"):
            continue  # never anything else, whatever the caller passes
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        if not path.exists():
            removed.append(path.name)
    return removed
