"""The disk cache of index pages and wheel metadata, with HTTP freshness (RFC 9111).

A page entry keeps its validators (ETag, Last-Modified) and how long it stays fresh:
fresh entries answer without a request, stale ones are revalidated. Files are written
atomically; an entry that does not read back as one (a torn write, another version's
format, a stray file) is a miss, never an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import sys
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Without Cache-Control from the server: long enough that one session's commands
# (plan, then install, then verify) share a page, short enough that a release just
# published is seen within minutes.
DEFAULT_LIFETIME = 600.0


@dataclass(frozen=True)
class CachedPage:
    """A page body and what is needed to trust or revalidate it."""

    url: str
    body: str
    content_type: str = ""
    final_url: str = ""  # where redirects led: relative links resolve against it
    etag: str | None = None
    last_modified: str | None = None
    fetched: str | None = None  # when the body last came from the network (ISO 8601)
    stored_at: float = 0.0  # when it was last fetched or revalidated (epoch seconds)
    lifetime: float | None = None  # seconds it stays fresh after stored_at (None: unknown)

    def is_fresh(self, now: float) -> bool:
        if self.lifetime is None:
            return False
        return 0.0 <= now - self.stored_at < self.lifetime  # a clock turned back: stale

    def validators(self) -> dict[str, str]:
        """The conditional-request headers that ask "has it changed since?"."""
        headers = {}
        # Only what can be sent back: an obs-text byte would fail every later request.
        if self.etag and self.etag.isascii():
            headers["If-None-Match"] = self.etag
        if self.last_modified and self.last_modified.isascii():
            headers["If-Modified-Since"] = self.last_modified
        return headers

    def revalidated(self, headers: Mapping[str, str], lifetime: float, now: float) -> CachedPage:
        """This entry after a 304 carrying ``headers``, fresh for ``lifetime`` from now.

        A 304 updates what it names (RFC 9111 4.3.4): without caching headers of its own,
        the lifetime the page was stored with still holds.
        """
        if self.lifetime is not None and not (
            headers.get("cache-control") or headers.get("expires")
        ):
            lifetime = self.lifetime
        return replace(
            self,
            etag=headers.get("etag") or self.etag,
            last_modified=headers.get("last-modified") or self.last_modified,
            stored_at=now,
            lifetime=lifetime,
        )

    @classmethod
    def from_json(cls, data: Any, url: str) -> CachedPage | None:
        """The entry ``data`` describes, or None when it is not one (for ``url``)."""
        if not isinstance(data, dict) or data.get("url") != url:
            return None
        fields: dict[str, Any] = {}
        for name in _TEXT_FIELDS | _NUMBER_FIELDS:
            value = data.get(name)
            if value is None and name != "body":
                continue
            valid = isinstance(value, str) if name in _TEXT_FIELDS else _is_time(value)
            if not valid:
                return None
            fields[name] = float(value) if isinstance(value, int) else value
        return cls(**fields)


def _is_time(value: object) -> bool:
    # bool is an int to isinstance, but no time; NaN and infinity are no time either.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int past float range (JSON's 1e400 written out)
        return False


_TEXT_FIELDS = frozenset(
    {"url", "body", "content_type", "final_url", "etag", "last_modified", "fetched"}
)
_NUMBER_FIELDS = frozenset({"stored_at", "lifetime"})


def freshness_lifetime(
    headers: Mapping[str, str], now: float, default: float = DEFAULT_LIFETIME
) -> float | None:
    """Seconds a response with ``headers`` stays fresh; None when it must not be stored.

    ``Cache-Control: max-age`` wins over ``Expires``; ``no-cache`` means revalidate every
    time (0); ``no-store`` means None. ``Age`` is what a proxy's copy has already used.

    >>> freshness_lifetime({"cache-control": "public, max-age=60", "age": "15"}, 0.0)
    45.0
    """
    directives: dict[str, str] = {}
    for item in (headers.get("cache-control") or "").split(","):
        key, _, value = item.strip().partition("=")
        directives.setdefault(key.strip().lower(), value.strip().strip('"'))
    if "no-store" in directives:
        return None
    if "no-cache" in directives:
        return 0.0
    age = _seconds(headers.get("age")) or 0.0
    if "max-age" in directives:
        max_age = _seconds(directives["max-age"])
        return max(max_age - age, 0.0) if max_age is not None else 0.0  # unreadable: stale
    if headers.get("expires"):
        expires = _epoch(headers["expires"])
        date = _epoch(headers.get("date") or "") or now
        return max(expires - date - age, 0.0) if expires is not None else 0.0
    return default


# RFC 9111 1.2.2: a delta-seconds too large to hold is taken as 2^31.
_LONGEST_DELTA = 2147483648.0


def _seconds(value: str | None) -> float | None:
    if value is None or not (value.isascii() and value.isdigit()):
        return None
    return min(float(value), _LONGEST_DELTA) if len(value) < 300 else _LONGEST_DELTA


def _epoch(value: str) -> float | None:
    try:
        from email.utils import parsedate_to_datetime  # only for Expires and Date headers

        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def default_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """The per-user cache folder, as each OS expects it (``env``: default ``os.environ``)."""
    env = os.environ if env is None else env
    if sys.platform == "win32":
        root = Path(env.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
        return root / "torchfit" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "torchfit"
    return Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "torchfit"


class DiskCache:
    """Pages and metadata under ``root``, one file per URL; ``root=None`` caches nothing."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    def page(self, url: str) -> CachedPage | None:
        path = self._path("pages", url)
        if path is None or not path.is_file():
            return None
        try:
            entry = CachedPage.from_json(json.loads(path.read_text(encoding="utf-8")), url)
        except (OSError, ValueError, RecursionError) as exc:
            log.debug("unreadable cache entry %s for %s: %s", path, url, exc)
            entry = None
        else:
            if entry is None:
                log.debug("discarding a damaged cache entry %s for %s", path, url)
        if entry is None:
            self._discard(path)
        return entry

    def store_page(self, entry: CachedPage) -> None:
        path = self._path("pages", entry.url)
        if path is not None:
            self._write(path, json.dumps(asdict(entry)).encode())

    def drop_page(self, url: str) -> None:
        path = self._path("pages", url)
        if path is not None:
            self._discard(path)

    def metadata(self, url: str, sha256: str | None = None) -> bytes | None:
        """Cached METADATA for the wheel at ``url``; with ``sha256``, only if it matches."""
        path = self._path("metadata", url)
        if path is None or not path.is_file():
            return None
        try:
            data = path.read_bytes()
        except OSError:
            return None
        if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
            log.debug("discarding cached metadata of %s: its hash does not match", url)
            self._discard(path)
            return None
        return data

    def store_metadata(self, url: str, data: bytes) -> None:
        path = self._path("metadata", url)
        if path is not None:
            self._write(path, data)

    def page_stamp(self, url: str) -> list[int] | None:
        """The page file's modification time and size: what changes when it is rewritten."""
        path = self._path("pages", url)
        try:
            stat = path.stat() if path is not None else None
        except OSError:
            return None
        return [stat.st_mtime_ns, stat.st_size] if stat else None

    def answer(self, digest: str) -> Any:
        """A remembered plan (see ``torchfit.cli.memo``), as the JSON it was stored as."""
        path = self.root / "plans" / digest if self.root is not None else None
        try:
            return json.loads(path.read_bytes()) if path is not None else None
        except (OSError, ValueError, RecursionError):
            return None

    def store_answer(self, digest: str, data: Mapping[str, Any]) -> None:
        if self.root is not None:
            self._write(self.root / "plans" / digest, json.dumps(data).encode())

    def _path(self, kind: str, url: str) -> Path | None:
        if self.root is None:
            return None
        return self.root / kind / hashlib.sha256(url.encode()).hexdigest()

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        # Unique per process and thread: concurrent writers never share a temporary file.
        temporary = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_bytes(data)
            temporary.replace(path)  # atomic: a reader never sees half an entry
        except OSError as exc:
            log.warning("could not write the cache at %s: %s", path, exc)
            DiskCache._discard(temporary)

    @staticmethod
    def _discard(path: Path) -> None:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.debug("could not remove %s: %s", path, exc)
