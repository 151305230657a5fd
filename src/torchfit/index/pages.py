"""Pure parsers for index pages: PEP 503 HTML, PEP 691 JSON, and flat find-links pages.

No I/O here: the index client hands in the page text and the URL it came from. Both
parsers run in time linear in the page: PyTorch's flat pages reach tens of megabytes.
"""

from __future__ import annotations

import json
import logging
import posixpath
import re
from dataclasses import dataclass
from typing import Any, Union
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

from torchfit.errors import IndexFetchError
from torchfit.index.tags import start_tags

log = logging.getLogger(__name__)

#: PEP 658 metadata: the file's sha256, or True when offered without a hash.
MetadataHint = Union[str, bool, None]

JSON_CONTENT_TYPE = "application/vnd.pypi.simple.v1+json"


@dataclass(frozen=True)
class Link:
    """One file offered by an index page."""

    filename: str
    url: str  # absolute, without the hash fragment
    sha256: str | None = None
    requires_python: str | None = None
    yanked: bool = False
    metadata: MetadataHint = None
    folder: str | None = None  # the directory the file sits in (a flat page's variant folder)


# -- from hrefs to links, for both formats ------------------------------------------

_SHA256 = re.compile(r"[0-9a-f]{64}")


def _sha256_or_none(value: str, what: str, page_url: str) -> str | None:
    value = value.lower()
    if _SHA256.fullmatch(value):
        return value
    log.warning("ignoring a malformed sha256 for %s on %s: %r", what, page_url, value[:80])
    return None


def _metadata_hint(value: str | None, filename: str, page_url: str) -> MetadataHint:
    if value is None:
        return None
    if value[:7].lower() == "sha256=":
        return _sha256_or_none(value[7:], f"{filename}.metadata", page_url) or True
    return value.lower() != "false"


class _Resolver:
    """Turns hrefs into ``(url, filename, folder, fragment)`` against one page URL.

    urljoin is the slow part of a large page; the folder part of an href repeats from one
    link to the next, so it is joined once and the file name appended to it.
    """

    def __init__(self, base: str) -> None:
        self.base = base
        self._folders: dict[str, tuple[str, str | None]] = {}

    def __call__(self, href: str) -> tuple[str, str, str | None, str]:
        part, _, fragment = href.strip().partition("#")
        head, slash, name = part.rpartition("/")
        if not self._fast(part) or name in ("", ".", ".."):
            url, fragment = urldefrag(urljoin(self.base, href.strip()))
            path = unquote(urlsplit(url).path)
            folder = posixpath.basename(posixpath.dirname(path)) or None
            return url, posixpath.basename(path), folder, fragment
        key = head + slash if slash else "./"
        if key not in self._folders:
            folder_url = urljoin(self.base, key)
            folder = posixpath.basename(unquote(urlsplit(folder_url).path).rstrip("/")) or None
            self._folders[key] = folder_url, folder
        folder_url, folder = self._folders[key]
        filename = unquote(name) if "%" in name else name
        return folder_url + name, filename, folder, fragment

    @staticmethod
    def _fast(part: str) -> bool:
        """Whether the last path segment of ``part`` is the file name (no query, no
        scheme-relative trick, no authority that ends where the name starts)."""
        if "?" in part or "\t" in part or "\n" in part or "\r" in part:
            return False
        if part.startswith(("https://", "http://")):
            return part.find("/", part.index("//") + 2) >= 0
        return not part.startswith("//") and ":" not in part.split("/", 1)[0]


def _make_link(resolve: _Resolver, href: str, page_url: str, **fields: Any) -> Link | None:
    try:
        url, filename, folder, fragment = resolve(href)
    except ValueError as exc:  # urllib on a broken host part, e.g. "http://[::1/x.whl"
        raise IndexFetchError(f"malformed link {href!r} on {page_url}: {exc}") from exc
    if not filename.endswith(".whl") or "/" in filename:
        return None  # sdists and other files are never a torchfit candidate
    sha256 = fields.pop("sha256", None)
    if sha256 is None and fragment[:7] == "sha256=":
        sha256 = _sha256_or_none(fragment[7:], filename, page_url)
    return Link(filename=filename, url=url, sha256=sha256, folder=folder, **fields)


# -- HTML (PEP 503, flat find-links pages) ------------------------------------------


def parse_html_page(text: str, page_url: str) -> list[Link]:
    """Wheel links of a PEP 503 page or a flat find-links page.

    Raises IndexFetchError for a link whose URL cannot be parsed; a malformed sha256 is
    dropped (the link is kept, without a hash) and logged.

    >>> page = '<a href="/whl/cu101/torch-1.7.1%2Bcu101-cp38-cp38-linux_x86_64.whl#sha256='
    >>> page += 64 * 'A' + '" data-requires-python="&gt;=3.6">x</a>'
    >>> link, = parse_html_page(page, "https://download.pytorch.org/whl/cu101/torch/")
    >>> link.filename, link.folder, link.sha256[:4], link.requires_python
    ('torch-1.7.1+cu101-cp38-cp38-linux_x86_64.whl', 'cu101', 'aaaa', '>=3.6')
    """
    base: str | None = None
    anchors = []
    for tag, attrs in start_tags(text):
        if tag == "a" and attrs.get("href"):
            anchors.append(attrs)
        elif tag == "base" and base is None and attrs.get("href"):
            base = attrs["href"]  # the first <base> counts, wherever it stands
    try:
        resolve = _Resolver(urljoin(page_url, base) if base else page_url)
    except ValueError as exc:
        raise IndexFetchError(f"malformed <base href={base!r}> on {page_url}: {exc}") from exc
    links = []
    for attrs in anchors:
        href = attrs["href"]
        metadata = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
        link = _make_link(
            resolve,
            href,
            page_url,
            requires_python=attrs.get("data-requires-python") or None,
            yanked="data-yanked" in attrs,
            metadata=_metadata_hint(metadata, href.rpartition("/")[2], page_url),
        )
        if link is not None:
            links.append(link)
    return links


# -- JSON (PEP 691) ------------------------------------------------------------------


def parse_json_page(text: str, page_url: str) -> list[Link]:
    """Wheel links of a PEP 691 JSON project page.

    Raises IndexFetchError, naming the page, when the page is not PEP 691-shaped.

    >>> body = '{"files": [{"filename": "torch-2.8.0+cpu-cp312-cp312-win_amd64.whl",'
    >>> body += ' "url": "torch-2.8.0%2Bcpu-cp312-cp312-win_amd64.whl", "hashes": {"sha256": "'
    >>> body += 64 * 'A' + '"}, "core-metadata": {"sha256": "' + 64 * 'c' + '"}}]}'
    >>> link, = parse_json_page(body, "https://example.org/whl/cpu/torch/")
    >>> link.url
    'https://example.org/whl/cpu/torch/torch-2.8.0%2Bcpu-cp312-cp312-win_amd64.whl'
    >>> link.sha256[:4], link.metadata[:4]
    ('aaaa', 'cccc')
    """
    try:
        files = json.loads(text)["files"]
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise IndexFetchError(f"malformed PEP 691 page at {page_url}: {exc!r}") from exc
    if not isinstance(files, list):
        raise IndexFetchError(f"malformed PEP 691 page at {page_url}: 'files' is not a list")
    resolve = _Resolver(page_url)
    links = []
    for index, entry in enumerate(files):
        try:
            link = _json_link(resolve, entry, page_url)
        except _Malformed as exc:
            raise IndexFetchError(
                f"malformed PEP 691 entry #{index} at {page_url}: {exc}"
            ) from None
        if link is not None:
            links.append(link)
    return links


class _Malformed(Exception):
    """A PEP 691 file entry of the wrong shape (the message says which field)."""


def _field(entry: dict[str, Any], key: str, *types: type) -> Any:
    value = entry.get(key)
    if value is not None and not isinstance(value, types):
        raise _Malformed(f"{key!r} is {type(value).__name__}, not {types[0].__name__}")
    return value


def _json_link(resolve: _Resolver, entry: Any, page_url: str) -> Link | None:
    if not isinstance(entry, dict):
        raise _Malformed(f"a file entry is {type(entry).__name__}, not an object")
    href = _field(entry, "url", str)
    if not href:
        raise _Malformed("a file entry has no 'url'")
    _field(entry, "filename", str)
    hashes = _field(entry, "hashes", dict) or {}
    digest = _field(hashes, "sha256", str)
    metadata = _field(entry, "core-metadata", dict, bool)
    if metadata is None:
        metadata = _field(entry, "dist-info-metadata", dict, bool)
    if isinstance(metadata, dict):
        offered = _field(metadata, "sha256", str)
        name = href.rpartition("/")[2]
        metadata = (offered and _sha256_or_none(offered, f"{name}.metadata", page_url)) or True
    yanked = _field(entry, "yanked", bool, str)
    return _make_link(
        resolve,
        href,
        page_url,
        sha256=_sha256_or_none(digest, href.rpartition("/")[2], page_url) if digest else None,
        requires_python=_field(entry, "requires-python", str) or None,
        yanked=bool(yanked),
        metadata=metadata,
    )
