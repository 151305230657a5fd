"""A wheel's METADATA: the PEP 658 sidecar, else read out of the wheel itself.

A CUDA torch wheel is gigabytes, its METADATA a few kilobytes. Like pip's lazy wheel and
uv, read only the zip's central directory and the METADATA member with HTTP range
requests; the stdlib zipfile does the zip work (stored, deflated, zip64) over a file
object that fetches the bytes it is asked for. Only a server that refuses ranges costs
the whole download, which is then checked against the sha256 the index gives.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import logging
import re
import zipfile
import zlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from torchfit.errors import IndexFetchError
from torchfit.index.http import Reply
from torchfit.index.pages import Link

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

log = logging.getLogger(__name__)

Get = Callable[[str, Mapping[str, str]], Reply]

# The first request reads this much of the wheel's end, and each later one at least this
# much: the end-of-central-directory record (<= 64 KiB with its comment), most central
# directories, and then a METADATA member with its header, one request each.
CHUNK = 64 * 1024
# A sane wheel needs three (end, rest of the directory, METADATA); past this, stop.
MAX_RANGE_REQUESTS = 12
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+)", re.I)
# A compressed range would make byte offsets meaningless.
_RANGE_HEADERS = {"Accept-Encoding": "identity"}


def sidecar_metadata(link: Link, get: Get) -> bytes | None:
    """The PEP 658 ``<wheel>.metadata`` file, or None when the index does not serve it.

    Raises IndexFetchError when it does not match the hash the index gives.
    """
    reply = get(link.url + ".metadata", {})
    if reply.status != 200:
        log.debug("no metadata sidecar for %s (HTTP %s)", link.url, reply.status)
        return None
    if isinstance(link.metadata, str) and _sha256(reply.content) != link.metadata:
        raise IndexFetchError(f"metadata of {link.filename} does not match its hash")
    return reply.content


def wheel_metadata(link: Link, get: Get) -> bytes | None:
    """METADATA read out of the wheel at ``link``: by byte ranges where the server allows.

    Ranges of a large wheel cannot be checked against its sha256 (as with pip and uv);
    the installer checks the file it downloads. None when the index lists a file it does
    not serve (404/410). Raises IndexFetchError for other HTTP failures, a whole wheel that
    does not match its sha256, or a file that is no wheel.
    """
    reply = get(link.url, {"Range": f"bytes=-{CHUNK}", **_RANGE_HEADERS})
    if reply.status == 206:
        try:
            return _by_ranges(link, get, reply)
        except _RangesRefused as refused:
            log.info("%s: reading the whole wheel (%s)", link.filename, refused)
            reply = refused.reply if refused.reply is not None else get(link.url, {})
    elif reply.status == 416:  # an empty file, or a server that mishandles suffixes
        reply = get(link.url, {})
    if reply.status in (404, 410):
        log.warning("%s is listed but not served (HTTP %s)", link.url, reply.status)
        return None
    if reply.status != 200:
        raise IndexFetchError(f"could not download {link.filename}: HTTP {reply.status}")
    return _checked_member(reply.content, link)


class _RangesRefused(Exception):
    """The server stopped answering ranges; ``reply`` is its answer if that was the file."""

    def __init__(self, why: str, reply: Reply | None = None) -> None:
        super().__init__(why)
        self.reply = reply if reply is not None and reply.status == 200 else None


def _content_range(reply: Reply) -> tuple[int, int, int]:
    """``(first, last, size)`` of a 206 answer; raises _RangesRefused when it is not one."""
    if reply.status != 206:
        raise _RangesRefused(f"HTTP {reply.status} to a range request", reply)
    match = _CONTENT_RANGE.fullmatch(reply.headers.get("content-range", "").strip())
    if match is None:
        raise _RangesRefused("a 206 answer without a usable Content-Range")
    first, last, size = (int(group) for group in match.groups())
    if not first <= last < size or len(reply.content) != last - first + 1:
        raise _RangesRefused("a 206 answer whose body does not fit its Content-Range")
    return first, last, size


def _by_ranges(link: Link, get: Get, tail: Reply) -> bytes:
    first, _, size = _content_range(tail)
    if first == 0 and link.sha256:  # a small wheel came whole: it can be checked
        return _checked_member(tail.content, link)
    headers = dict(_RANGE_HEADERS)
    # If the file changes between requests, the server answers the new one whole (200).
    etag, modified = tail.headers.get("etag", ""), tail.headers.get("last-modified")
    if etag and not etag.startswith("W/"):
        headers["If-Range"] = etag
    elif modified:
        headers["If-Range"] = modified
    requests = 1

    def fetch(start: int, stop: int) -> bytes:
        nonlocal requests
        requests += 1
        if requests > MAX_RANGE_REQUESTS:
            raise _RangesRefused(f"more than {MAX_RANGE_REQUESTS} range requests")
        reply = get(link.url, {"Range": f"bytes={start}-{stop - 1}", **headers})
        got_first, got_last, got_size = _content_range(reply)
        if got_size != size or got_first != start or got_last < stop - 1:
            raise _RangesRefused("the file changed, or the server sent another range")
        return reply.content[: stop - start]

    return _read_member(_RangeFile(size, fetch, first, tail.content), link)


def _checked_member(body: bytes, link: Link) -> bytes:
    if link.sha256 and _sha256(body) != link.sha256:
        raise IndexFetchError(f"{link.filename} does not match the sha256 the index gives")
    return _read_member(io.BytesIO(body), link)


def _read_member(file: io.RawIOBase | io.BytesIO, link: Link) -> bytes:
    try:
        with zipfile.ZipFile(file) as wheel:
            names = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
            # The wheel's own dist-info sits at the top; a vendored one lies deeper.
            names.sort(key=lambda n: n.count("/"))
            if not names:
                raise IndexFetchError(f"{link.filename} has no .dist-info/METADATA")
            return wheel.read(names[0])
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError, RuntimeError) as exc:
        # RuntimeError: encrypted members; NotImplementedError: unknown compression.
        raise IndexFetchError(f"{link.filename} is not a readable wheel: {exc}") from exc


class _RangeFile(io.RawIOBase):
    """A read-only, seekable view of a remote file that fetches bytes on demand.

    ``fetch(start, stop)`` returns bytes ``start..stop-1``. What was fetched is kept as
    sorted, disjoint segments; a miss fetches at least CHUNK bytes, never what is held.
    """

    def __init__(
        self, size: int, fetch: Callable[[int, int], bytes], first: int, data: bytes
    ) -> None:
        super().__init__()
        self._size = size
        self._fetch = fetch
        self._starts = [first]
        self._data = [data]
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        origin = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if origin + offset < 0:
            raise OSError("seek before the start of the file")
        self._pos = origin + offset
        return self._pos

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self._read(self._pos, len(view))
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def _read(self, start: int, count: int) -> bytes:
        stop = min(start + count, self._size)
        while start < stop:
            index = bisect.bisect_right(self._starts, start) - 1
            held_to = self._starts[index] + len(self._data[index]) if index >= 0 else -1
            if index >= 0 and stop <= held_to:
                offset = start - self._starts[index]
                return self._data[index][offset : offset + stop - start]
            gap = max(start, held_to)
            following = self._starts[index + 1] if index + 1 < len(self._starts) else self._size
            self._hold(gap, self._fetch(gap, min(max(stop, gap + CHUNK), following)))
        return b""

    def _hold(self, start: int, data: bytes) -> None:
        index = bisect.bisect_left(self._starts, start)
        self._starts.insert(index, start)
        self._data.insert(index, data)
        # Join neighbours that now touch, so each read finds one segment.
        for i in (index, index - 1):
            touching = 0 <= i < len(self._starts) - 1
            if touching and self._starts[i] + len(self._data[i]) == self._starts[i + 1]:
                self._data[i] += self._data.pop(i + 1)
                self._starts.pop(i + 1)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
