"""Run pip (or uv) in the target interpreter, and read back what got installed.

Command builders are pure; the runner is the seam tests and callers can replace. The
planned wheels are downloaded and hash-checked first (:func:`fetch_wheels`), so the
installer starts only when every file is here and right, and the window in which an
interrupt can leave a half-changed environment is the installer's own run.
"""

from __future__ import annotations

import json
import logging
import shlex
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from torchfit._probes import probe_command
from torchfit._runner import Completed, Runner, run, signal_name, sigterm_raises
from torchfit._terminal import progress_of
from torchfit.environment.state import (
    EnvironmentState,
    Record,
    finished,
    read_state,
    restore_steps,
    save_record,
)
from torchfit.errors import InstallerMissing, InstallFailed, InstallInterrupted

log = logging.getLogger(__name__)

Installer = Literal["pip", "uv"]

#: Streams ``url`` into a file and returns the sha256 (hex) of what it wrote; raises
#: IndexFetchError when it cannot. The index layer's ``Http.download`` is the real one.
Download = Callable[[str, Path], str]


@dataclass(frozen=True)
class WheelPin:
    """One exact wheel to install: a direct reference with the hash the index gave."""

    name: str
    url: str
    sha256: str | None

    def requirement(self, extras: Sequence[str] = ()) -> str:
        # A direct URL reference: no other index can offer a same-named file instead, and
        # pip checks the #sha256 fragment of a user-given URL before installing it.
        fragment = f"#sha256={self.sha256}" if self.sha256 else ""
        asked = f"[{','.join(extras)}]" if extras else ""
        return f"{self.name}{asked} @ {self.url}{fragment}"


def install_command(
    python: str,
    pins: Sequence[WheelPin],
    passthrough: Sequence[str] = (),
    extra_args: Sequence[str] = (),
    *,
    installer: Installer = "pip",
    uv: str | None = None,
    extras: Mapping[str, Sequence[str]] | None = None,
) -> list[str]:
    """The installer's argument list; ``passthrough`` are arguments (see
    :func:`passthrough_args`), ``extras`` the extras asked for a pinned name.

    >>> install_command("py", [WheelPin("torch", "https://h/torch-1.whl", "ab")])
    ['py', '-m', 'pip', 'install', 'torch @ https://h/torch-1.whl#sha256=ab']
    """
    asked = extras or {}
    requirements = [pin.requirement(asked.get(pin.name, ())) for pin in pins] + list(passthrough)
    if installer == "uv":
        return [uv or "uv", "pip", "install", "--python", python, *requirements, *extra_args]
    return [python, "-m", "pip", "install", *requirements, *extra_args]


PASSTHROUGH_FILES = ("torchfit-requirements.txt", "torchfit-constraints.txt")


def passthrough_args(
    requirements: Sequence[str],
    constraints: Sequence[str] = (),
    folder: Path | None = None,
    *,
    as_files: bool = True,
) -> list[str]:
    """The installer arguments that hand it the pass-through lines.

    Plain requirements from the command line (``as_files`` false) are arguments. Lines of
    requirement files (options, ``--hash``) are written to a requirements file and a
    constraints file in ``folder``, which pip and uv read as they would the user's own;
    with no ``folder`` (a dry run) the files are named, not written.

    >>> passthrough_args(["numpy<2"], as_files=False)
    ['numpy<2']
    >>> passthrough_args(["numpy<2 --hash=sha256:ab"], ["scipy<2"])
    ['-r', 'torchfit-requirements.txt', '-c', 'torchfit-constraints.txt']
    """
    if not as_files:
        return list(requirements)
    args = []
    for option, lines, name in zip(("-r", "-c"), (requirements, constraints), PASSTHROUGH_FILES):
        if lines:
            path = name if folder is None else str(folder / name)
            if folder is not None:
                (folder / name).write_text("".join(f"{line}\n" for line in lines), "utf-8")
            args += [option, path]
    return args


def find_links_args(folders: Sequence[Path], *, offline: bool) -> list[str]:
    """The installer options that let it take torch's dependencies from the wheelhouse
    ``folders`` too, or (``offline``) from them alone; pip and uv spell them alike.

    >>> find_links_args([Path("wheels")], offline=True)
    ['--no-index', '--find-links', 'wheels']
    """
    args = ["--no-index"] if offline and folders else []
    for folder in folders:
        args += ["--find-links", str(folder)]
    return args


def uninstall_command(
    python: str, names: Sequence[str], *, installer: Installer = "pip", uv: str | None = None
) -> list[str]:
    """The installer's argument list that removes ``names``.

    >>> uninstall_command("py", ["torchaudio"])
    ['py', '-m', 'pip', 'uninstall', '-y', 'torchaudio']
    """
    if installer == "uv":
        return [uv or "uv", "pip", "uninstall", "--python", python, *names]
    return [python, "-m", "pip", "uninstall", "-y", *names]


def wheel_filename(url: str) -> str:
    """The file name a wheel URL ends in, checked to be a plain ``*.whl`` name.

    >>> wheel_filename("https://h/whl/cu101/torch-1.7.1%2Bcu101-cp38-cp38-linux_x86_64.whl")
    'torch-1.7.1+cu101-cp38-cp38-linux_x86_64.whl'
    """
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    if not name.endswith(".whl") or name.startswith(".") or "/" in name or "\\" in name:
        raise InstallFailed(f"not a wheel URL: {url}")
    return name


def file_path(url: str) -> Path:
    """The local path a ``file:`` URL names."""
    return Path(url2pathname(urlsplit(url).path))


def fetch_wheels(
    pins: Sequence[WheelPin],
    folder: Path,
    download: Download,
    on_output: Callable[[str], None] | None = None,
) -> list[WheelPin]:
    """Download every pinned wheel into ``folder`` and check its sha256; return pins of the
    local files, for the installer. A ``file:`` pin whose file exists is used where it is.

    Raises InstallFailed, before anything is installed, when any file's hash differs from
    the one its index page (or the record) gave; IndexFetchError when one cannot be fetched.
    """
    local = []
    for pin in pins:
        if pin.url.startswith("file:"):
            path = file_path(pin.url)
            if not path.is_file():
                raise InstallFailed(f"the wheel {path} is gone", hint="fetch it again")
            local.append(WheelPin(pin.name, path.as_uri(), pin.sha256))
            continue
        path = folder / wheel_filename(pin.url)
        if on_output is not None:
            on_output(f"torchfit: downloading {pin.url}")
        with progress_of(path, on_output):  # a terminal sees it grow
            digest = download(pin.url, path)
        if pin.sha256 and digest != pin.sha256.lower():
            raise InstallFailed(
                f"{path.name} does not match the sha256 its index page gives:"
                " nothing was installed",
                details=(f"expected sha256 {pin.sha256}", f"     got sha256 {digest}"),
                hint="the index or a proxy served other bytes; try again, or check the mirror",
            )
        # The installer checks the hash again as it reads the file (pip and uv both do).
        local.append(WheelPin(pin.name, path.as_uri(), digest))
    return local


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


def describe_changes(
    before: Mapping[str, str],
    after: Mapping[str, str],
    broken: frozenset[str] = frozenset(),
    repaired: frozenset[str] = frozenset(),
) -> list[str]:
    """Human lines for what an install changed; ``broken`` names packages it left half
    installed, ``repaired`` those that were and are whole again.

    >>> describe_changes({"torch": "1.6.0"}, {"torch": "1.7.1+cu101", "numpy": "1.19.5"})
    ['numpy: (none) -> 1.19.5', 'torch: 1.6.0 -> 1.7.1+cu101']
    """
    lines = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        suffix = ""
        if name in broken:
            suffix = " (incomplete: the installer did not finish it)"
        elif name in repaired and new is not None:
            suffix = " (reinstalled: it was incomplete)"
        if old != new or suffix:
            lines.append(f"{name}: {old or '(none)'} -> {new or '(none)'}{suffix}")
    return lines


def state_changes(before: EnvironmentState, after: EnvironmentState) -> list[str]:
    """:func:`describe_changes` between two states of one environment."""
    broken, repaired = after.broken() - before.broken(), before.broken() - after.broken()
    return describe_changes(
        before.distributions, after.distributions, frozenset(broken), frozenset(repaired)
    )


def transact(
    pins: Sequence[WheelPin],
    commands: Callable[[list[WheelPin]], list[list[str]]],
    python: str,
    before: EnvironmentState,
    *,
    record: Record,
    record_paths: Sequence[Path],
    restore: str,
    download: Download,
    runner: Runner = run,
    on_output: Callable[[str], None] | None = None,
) -> tuple[list[list[str]], EnvironmentState]:
    """Download and check ``pins`` into a private temporary folder, save ``record``, then
    run the installer ``commands`` made for the local files (see :func:`run_guarded`).
    Return those commands and the state after them.

    SIGTERM unwinds like Ctrl-C throughout; either, before the installer starts, raises
    InstallInterrupted saying that nothing changed.
    """
    with sigterm_raises(), tempfile.TemporaryDirectory(prefix="torchfit-") as folder:
        try:
            local = fetch_wheels(pins, Path(folder), download, on_output)
        except KeyboardInterrupt as stop:
            raise InstallInterrupted(
                f"interrupted ({signal_name(stop)}) before the installer ran",
                details=("changed: nothing",),
            ) from None
        made = commands(local)
        save_record(record_paths, record)
        after = run_guarded(
            made,
            python,
            before,
            record=record,
            record_paths=record_paths,
            restore=restore,
            runner=runner,
            on_output=on_output,
        )
    record_origins(python, pins, local, runner)
    return made, after


def record_origins(
    python: str, pins: Sequence[WheelPin], local: Sequence[WheelPin], runner: Runner = run
) -> None:
    """Tell the installed packages where their wheels came from (``pins``), not the local
    copies (``local``) the installer was given, so that ``pip freeze`` keeps printing a URL
    that works. A failure to do so is only logged: the install itself is done."""
    entries = [
        {"name": pin.name, "url": pin.url, "sha256": copy.sha256, "local": copy.url}
        for pin, copy in zip(pins, local)
        if copy.url != pin.url
    ]
    if not entries:
        return
    done = runner(probe_command(python, "installed", "origin", json.dumps(entries)), timeout=120)
    if done.returncode != 0:
        log.warning("could not record where the wheels came from: %s", done.tail())


def run_guarded(
    commands: Sequence[Sequence[str]],
    python: str,
    before: EnvironmentState,
    *,
    record: Record,
    record_paths: Sequence[Path],
    restore: str,
    runner: Runner = run,
    on_output: Callable[[str], None] | None = None,
) -> EnvironmentState:
    """Run the installer ``commands`` in turn, with ``record`` already saved; return the
    state after them.

    Raises InstallFailed, or InstallInterrupted on SIGINT/SIGTERM (the installer got the
    signal and has ended), with what changed in ``details`` and, where something did,
    ``restore`` (the command that goes back) as the hint. One that leaves the environment
    as the record has it marks the record finished: there is nothing to go back to.
    """
    try:
        for command in commands:
            run_install(command, runner, on_output)
    except InstallFailed as failure:
        changes, after = _settle(python, before, record, record_paths, runner)
        failure.details += (_changed_line(changes), *_left_line(before, after))
        if changes != []:
            failure.hint = f"to put back what was there before: {restore}"
        raise
    except KeyboardInterrupt as stop:
        # The installer's last words are not shown: after SIGINT they are its traceback.
        changes, after = _settle(python, before, record, record_paths, runner)
        raise InstallInterrupted(
            f"interrupted ({signal_name(stop)}); the installer was stopped and has ended",
            details=(_changed_line(changes), *_left_line(before, after)),
            hint=None if changes == [] else f"to put back what was there before: {restore}",
        ) from None
    return read_state(python, runner)


def _settle(
    python: str,
    before: EnvironmentState,
    record: Record,
    record_paths: Sequence[Path],
    runner: Runner,
) -> tuple[list[str] | None, EnvironmentState | None]:
    """What changed since ``before``, and the state now (None: the environment cannot be
    read, or a second interrupt came while reading it); the record is finished if nothing
    is left to undo."""
    try:
        after = read_state(python, runner)
    except (KeyboardInterrupt, InstallerMissing):
        return None, None
    if not restore_steps(record, after):
        save_record(record_paths, finished(record))
    return state_changes(before, after), after


def _left_line(before: EnvironmentState, after: EnvironmentState | None) -> list[str]:
    left = [path for path in (after.leftovers if after else ()) if path not in before.leftovers]
    if not left:
        return []
    return ["the installer left what it had moved aside: " + ", ".join(left)]


def _changed_line(changes: list[str] | None) -> str:
    if changes is None:
        return "changed: not known (the environment could not be read afterwards)"
    return "changed: " + ("; ".join(changes) or "nothing")
