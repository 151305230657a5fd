"""A reader of PEP 751 lock files (``pylock.toml``): each package's wheels and their sha256.

Pure: it takes the file's text and returns values. Only what installing from a lock needs is
read (names, versions, markers, wheel URLs or paths, hashes); sdists, VCS and directory
sources are listed as having no wheel, so a caller can say so.
"""

from __future__ import annotations

import posixpath
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.markers import InvalidMarker, Marker
from packaging.utils import canonicalize_name

from torchfit.errors import UsageError

__all__ = ["LockedPackage", "LockedWheel", "for_environment", "parse_pylock"]


@dataclass(frozen=True)
class LockedWheel:
    """One wheel a lock names: its file name, where it is (``url`` or ``path``, as written),
    and its sha256 (None when the lock gives no sha256)."""

    filename: str
    url: str | None
    path: str | None
    sha256: str | None


@dataclass(frozen=True)
class LockedPackage:
    name: str  # normalized (PEP 503)
    version: str | None
    marker: str | None
    wheels: tuple[LockedWheel, ...]


def parse_pylock(text: str, where: str = "pylock.toml") -> list[LockedPackage]:
    """The packages of a PEP 751 lock file, in the file's order.

    Raises UsageError, naming ``where``, when the text is not TOML or not shaped as PEP 751
    says (a lock-version other than 1.x, a package without a name, a wheel without a file).

    >>> text = '''lock-version = "1.0"
    ... [[packages]]
    ... name = "Torch"
    ... version = "2.8.0+cu126"
    ... [[packages.wheels]]
    ... url = "https://h/whl/cu126/torch-2.8.0%2Bcu126-py3-none-any.whl"
    ... hashes = { sha256 = "AB12" }'''
    >>> package, = parse_pylock(text)
    >>> package.name, package.wheels[0].filename, package.wheels[0].sha256
    ('torch', 'torch-2.8.0+cu126-py3-none-any.whl', 'ab12')
    """
    document = _loads(text, where)
    version = document.get("lock-version")
    if not isinstance(version, str) or version.split(".")[0] != "1":
        raise UsageError(
            f"{where} is not a PEP 751 lock this torchfit reads: lock-version {version!r}",
            hint="write it with a tool that follows PEP 751 (lock-version 1.0)",
        )
    packages = document.get("packages", [])
    if not isinstance(packages, list):
        raise UsageError(f"{where}: 'packages' is not an array of tables")
    return [_package(entry, index, where) for index, entry in enumerate(packages)]


def for_environment(
    packages: list[LockedPackage], environment: Mapping[str, str]
) -> list[LockedPackage]:
    """The packages whose marker holds in ``environment`` (PEP 508 marker values).

    >>> locked = [LockedPackage("a", "1", 'sys_platform == "win32"', ()),
    ...           LockedPackage("b", "1", None, ())]
    >>> [p.name for p in for_environment(locked, {"sys_platform": "linux"})]
    ['b']
    """
    kept = []
    for package in packages:
        if package.marker is not None:
            try:
                if not Marker(package.marker).evaluate(dict(environment)):
                    continue
            except InvalidMarker as exc:
                raise UsageError(f"invalid marker for {package.name}: {exc}") from None
        kept.append(package)
    return kept


def _loads(text: str, where: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # the same parser, from its backport
        import tomli as tomllib
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{where} is not valid TOML: {exc}") from None


def _package(entry: Any, index: int, where: str) -> LockedPackage:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise UsageError(f"{where}: package #{index + 1} has no name")
    name = canonicalize_name(entry["name"])
    version = entry.get("version")
    marker = entry.get("marker")
    wheels = entry.get("wheels", [])
    if not isinstance(wheels, list):
        raise UsageError(f"{where}: the wheels of {name} are not an array")
    return LockedPackage(
        name=name,
        version=version if isinstance(version, str) else None,
        marker=marker if isinstance(marker, str) else None,
        wheels=tuple(_wheel(wheel, name, where) for wheel in wheels),
    )


def _wheel(entry: Any, package: str, where: str) -> LockedWheel:
    if not isinstance(entry, dict):
        raise UsageError(f"{where}: a wheel of {package} is not a table")
    url, path, filename = entry.get("url"), entry.get("path"), entry.get("name")
    url = url if isinstance(url, str) else None
    path = path if isinstance(path, str) else None
    if not isinstance(filename, str):  # optional in PEP 751: the URL's or path's last part
        located = unquote(urlsplit(url).path) if url else (path or "")
        filename = posixpath.basename(located.replace("\\", "/"))
    if not filename.endswith(".whl") or "/" in filename or filename.startswith("."):
        raise UsageError(f"{where}: a wheel of {package} names no wheel file: {filename!r}")
    hashes = entry.get("hashes")
    sha256 = hashes.get("sha256") if isinstance(hashes, dict) else None
    return LockedWheel(
        filename=filename,
        url=url,
        path=path,
        sha256=sha256.lower() if isinstance(sha256, str) else None,
    )
