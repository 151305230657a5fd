"""A wheelhouse: local folders of wheels (pip's ``--find-links DIR``) read as index pages,
and filled from a lock, every file hash-checked.

The expected hashes come from the lock written beside the wheels (``DIR/pylock.toml``):
offline there is nothing else to trust. The lock also tells unlabeled wheels apart (torch
1.7.1's CUDA 10.2 build has no ``+cu102``): the folder of the URL it was fetched from is
their variant, as on the index.
"""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from torchfit._terminal import progress_of
from torchfit.environment.install import Download, WheelPin, file_path, wheel_filename
from torchfit.environment.pylock import LockedWheel, for_environment, parse_pylock
from torchfit.environment.target import Target
from torchfit.errors import IndexFetchError, InstallFailed, NoCompatibleWheel, UsageError
from torchfit.index.client import PageRecord
from torchfit.index.pages import Link
from torchfit.variants import Variant

__all__ = [
    "LOCK_NAME",
    "Wheelhouse",
    "fill",
    "lock_pins",
    "make_folder",
    "sha256_file",
    "write_lock",
]

log = logging.getLogger(__name__)

#: The lock a wheelhouse keeps beside its wheels (PEP 751's default name).
LOCK_NAME = "pylock.toml"


def sha256_file(path: Path) -> str:
    """The hex sha256 of the file at ``path``, read in blocks (wheels reach gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class _Entry:
    path: Path
    locked: LockedWheel | None  # None: the folder's lock does not name it (or there is none)


class Wheelhouse:
    """Folders of wheels as a page source for the resolver (see ``PageSource``).

    A wheel's variant is its local label (``+cu126``), else the folder of the URL the
    lock names for it, else (a macOS wheel) ``cpu``; an unlabeled wheel the lock does not
    place is offered for no variant.
    """

    #: Its links are ``file:`` URLs of its own folders, which the planner accepts from it.
    serves_local_files = True

    def __init__(self, folders: Iterable[Path]) -> None:
        self.folders = tuple(Path(folder) for folder in folders)
        self.records: list[PageRecord] = []
        self._entries: dict[str, list[_Entry]] | None = None  # project -> its wheels

    def links(self, project: str, variant: Variant) -> list[Link]:
        """The wheels of ``project`` in the folders that may be ``variant``'s builds."""
        links = []
        for entry in self._read().get(canonicalize_name(project), []):
            folder = self._variant_folder(entry)
            if folder is None:
                continue
            label = Variant.from_label(folder)
            if label is not None and label != variant:
                continue
            links.append(
                Link(
                    filename=entry.path.name,
                    url=entry.path.resolve().as_uri(),
                    sha256=entry.locked.sha256 if entry.locked else None,
                    folder=folder,
                )
            )
        return links

    def prefetch(self, project: str, variants: Iterable[Variant]) -> None:
        """Nothing to fetch: the folders were read at once."""

    def metadata(self, link: Link) -> bytes | None:
        """The METADATA inside the local wheel (None when it has none)."""
        if not link.url.startswith("file:"):
            return None
        path = file_path(link.url)
        try:
            with zipfile.ZipFile(path) as wheel:
                names = sorted(
                    (n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")),
                    key=lambda n: n.count("/"),  # the wheel's own, not a vendored one
                )
                return wheel.read(names[0]) if names else None
        except (OSError, zipfile.BadZipFile, zlib.error, EOFError, ValueError) as exc:
            raise IndexFetchError(f"{path} is not a readable wheel: {exc}") from exc

    def check(self, require_hashes: bool = False) -> list[str]:
        """Check every wheel in the folders against the sha256 its folder's lock gives,
        before an installer may read any of them; return warnings for wheels no lock names
        (pip may still pick them for a dependency).

        Raises InstallFailed for a wheel whose bytes differ from its lock's hash (nothing is
        installed), and, with ``require_hashes``, for a wheel no lock names.
        """
        unchecked = []
        for entries in self._read().values():
            for entry in entries:
                expected = entry.locked.sha256 if entry.locked else None
                if expected is None:
                    unchecked.append(entry.path)
                    continue
                found = sha256_file(entry.path)
                if found != expected:
                    raise InstallFailed(
                        f"{entry.path} does not match the sha256 in"
                        f" {entry.path.parent / LOCK_NAME}: nothing was installed",
                        details=(f"expected sha256 {expected}", f"     got sha256 {found}"),
                        hint="the wheel was changed after it was downloaded;"
                        " run `torchfit download` again to replace it",
                    )
        if unchecked and require_hashes:
            raise InstallFailed(
                f"no {LOCK_NAME} beside {unchecked[0]} gives its sha256: nothing was installed",
                hint="fill the folder with `torchfit download`, or drop --require-hashes",
            )
        return [
            f"{path} is not in {path.parent / LOCK_NAME}: it is installed unchecked if chosen"
            for path in unchecked
        ]

    # -- reading the folders -------------------------------------------------------

    def _read(self) -> dict[str, list[_Entry]]:
        if self._entries is None:
            entries: dict[str, list[_Entry]] = {}
            for folder in self.folders:
                if not folder.is_dir():
                    raise UsageError(
                        f"--find-links {folder}: no such folder",
                        hint="give the folder `torchfit download -d DIR` filled",
                    )
                locked = _lock_of(folder)
                for path in sorted(folder.glob("*.whl")):
                    try:
                        name = parse_wheel_filename(path.name)[0]
                    except InvalidWheelFilename:
                        log.debug("ignoring %s: not a wheel file name", path)
                        continue
                    entries.setdefault(name, []).append(_Entry(path, locked.get(path.name)))
                self.records.append(PageRecord(folder.resolve().as_uri(), "wheelhouse"))
            self._entries = entries
        return self._entries

    @staticmethod
    def _variant_folder(entry: _Entry) -> str | None:
        """The variant folder ``entry`` belongs to, as an index would list it."""
        version = parse_wheel_filename(entry.path.name)[1]
        if version.local:
            return version.local
        url = entry.locked.url if entry.locked else None
        if url:
            folder = url.rsplit("/", 2)[-2] if url.count("/") >= 3 else ""
            if Variant.from_label(folder) is not None:
                return folder
        if "macosx" in entry.path.name:
            return "cpu"  # as on the flat page: unlabeled macOS wheels are CPU builds
        return None


def _lock_of(folder: Path) -> dict[str, LockedWheel]:
    """File name -> what the folder's lock says of it (empty when it has no lock)."""
    path = folder / LOCK_NAME
    if not path.is_file():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    return {wheel.filename: wheel for p in parse_pylock(text, str(path)) for wheel in p.wheels}


def lock_pins(text: str, target: Target, where: str = LOCK_NAME) -> list[WheelPin]:
    """The wheel of each package in the lock ``text`` that ``target`` installs: packages
    whose marker holds, each one's best wheel for the target's tags.

    Raises NoCompatibleWheel for a package with no wheel for the target (an air-gapped
    install could not complete), UsageError for a lock that is not PEP 751.
    """
    pins = []
    for package in for_environment(parse_pylock(text, where), target.marker_environment()):
        ranked = []
        for wheel in package.wheels:
            try:
                tags = parse_wheel_filename(wheel.filename)[3]
            except InvalidWheelFilename:
                continue
            rank = target.tag_rank(tags)
            if rank is not None and wheel.url:
                ranked.append((rank, wheel.url, wheel.sha256))
        if not ranked:
            raise NoCompatibleWheel(
                f"the lock has no wheel of {package.name} {package.version or ''}".rstrip()
                + " for this target: an offline install could not complete",
                hint="a source distribution or a local path cannot be downloaded into a"
                " wheelhouse; pin a version that has a wheel",
            )
        _, url, sha256 = min(ranked)
        pins.append(WheelPin(package.name, url, sha256))
    return pins


def write_lock(folder: Path, text: str) -> Path:
    """Write ``text`` as ``folder``'s lock, whole or not at all; return its path.

    Raises UsageError when it cannot be written.
    """
    path = folder / LOCK_NAME
    partial = folder / f".{LOCK_NAME}.part"
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def make_folder(folder: Path) -> Path:
    """``folder``, created if missing. Raises UsageError when it cannot be."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"cannot create the folder {folder}: {exc.strerror or exc}",
            hint="give -d a folder you can write to",
        ) from None
    return folder


def fill(
    pins: Sequence[WheelPin],
    dest: Path,
    download: Download,
    on_output: Callable[[str], None] | None = None,
    require_hashes: bool = False,
) -> list[tuple[Path, str]]:
    """Put every pinned wheel into ``dest``, hash-checked: a file already there with the
    right sha256 is kept, any other is fetched to a private name and moved into place only
    once its hash is right. Return ``(path, "kept" | "fetched")`` per pin.

    Raises IndexFetchError when a download does not match its sha256 (what ``dest`` held
    is left as it was) or cannot be fetched; InstallFailed for a pin without a sha256
    under ``require_hashes``.
    """
    done = []
    for pin in pins:
        path = dest / wheel_filename(pin.url)
        expected = pin.sha256.lower() if pin.sha256 else None
        if expected is None and require_hashes:
            raise InstallFailed(
                f"the lock gives no sha256 for {path.name}",
                hint="drop --require-hashes to fetch it unchecked",
            )
        if expected and path.is_file() and sha256_file(path) == expected:
            done.append((path, "kept"))
            continue
        partial = dest / f".{path.name}.part"
        if on_output is not None:
            on_output(f"torchfit: downloading {pin.url}")
        try:
            with progress_of(partial, on_output):  # a terminal sees it grow
                digest = download(pin.url, partial)
            if expected and digest != expected:
                raise IndexFetchError(
                    f"{path.name} from {pin.url} does not match the sha256 the lock gives",
                    details=(f"expected sha256 {expected}", f"     got sha256 {digest}"),
                    hint="the index or a proxy served other bytes; try again",
                )
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
        done.append((path, "fetched"))
    return done
