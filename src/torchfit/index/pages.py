"""Pure parsers for index pages: PEP 503 HTML, PEP 691 JSON, and flat find-links pages.

No I/O here: the index client hands in the page text and the URL it came from.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any, Union
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

from torchfit.errors import IndexFetchError

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


class _AnchorCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[dict[str, str | None]] = []
        self.base: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.anchors.append(dict(attrs))
        elif tag == "base" and self.base is None:
            self.base = dict(attrs).get("href")


def _metadata_hint(value: str | None) -> MetadataHint:
    if value is None:
        return None
    if value.lower().startswith("sha256="):
        return value[len("sha256=") :].lower()
    return value.lower() != "false"


def _make_link(href: str, page_url: str, **fields: Any) -> Link | None:
    url, fragment = urldefrag(urljoin(page_url, href))
    path = unquote(urlsplit(url).path)
    filename = posixpath.basename(path)
    if not filename.endswith(".whl"):
        return None  # sdists and other files are never a torchfit candidate
    sha256 = fields.pop("sha256", None)
    if sha256 is None and fragment.startswith("sha256="):
        sha256 = fragment[len("sha256=") :].lower()
    folder = posixpath.basename(posixpath.dirname(path)) or None
    return Link(filename=filename, url=url, sha256=sha256, folder=folder, **fields)


def parse_html_page(text: str, page_url: str) -> list[Link]:
    """Wheel links of a PEP 503 page or a flat find-links page.

    >>> page = '<a href="/whl/cu101/torch-1.7.1%2Bcu101-cp38-cp38-linux_x86_64.whl#sha256=ab">x</a>'
    >>> link, = parse_html_page(page, "https://download.pytorch.org/whl/cu101/torch/")
    >>> link.filename, link.folder, link.sha256
    ('torch-1.7.1+cu101-cp38-cp38-linux_x86_64.whl', 'cu101', 'ab')
    """
    parser = _AnchorCollector()
    parser.feed(text)
    base = urljoin(page_url, parser.base) if parser.base else page_url
    links = []
    for attrs in parser.anchors:
        href = attrs.get("href")
        if not href:
            continue
        metadata = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
        link = _make_link(
            href,
            base,
            requires_python=attrs.get("data-requires-python"),
            yanked="data-yanked" in attrs,
            metadata=_metadata_hint(metadata),
        )
        if link is not None:
            links.append(link)
    return links


def parse_json_page(text: str, page_url: str) -> list[Link]:
    """Wheel links of a PEP 691 JSON project page.

    >>> body = '{"files": [{"filename": "torch-2.8.0+cpu-cp312-cp312-win_amd64.whl",'
    >>> body += ' "url": "torch-2.8.0%2Bcpu-cp312-cp312-win_amd64.whl", "hashes": {"sha256": "AB"},'
    >>> body += ' "core-metadata": {"sha256": "cd"}}]}'
    >>> link, = parse_json_page(body, "https://example.org/whl/cpu/torch/")
    >>> link.url, link.sha256, link.metadata
    ('https://example.org/whl/cpu/torch/torch-2.8.0%2Bcpu-cp312-cp312-win_amd64.whl', 'ab', 'cd')
    """
    try:
        files = json.loads(text)["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise IndexFetchError(f"malformed PEP 691 page at {page_url}: {exc}") from exc
    if not isinstance(files, list):
        raise IndexFetchError(f"malformed PEP 691 page at {page_url}: 'files' is not a list")
    links = []
    for entry in files:
        try:
            link = _json_link(entry, page_url)
        except (AttributeError, TypeError, ValueError) as exc:
            raise IndexFetchError(f"malformed PEP 691 entry at {page_url}: {exc}") from exc
        if link is not None:
            links.append(link)
    return links


def _json_link(entry: Any, page_url: str) -> Link | None:
    if not isinstance(entry, dict) or "url" not in entry:
        return None
    hashes = entry.get("hashes") or {}
    metadata = entry.get("core-metadata", entry.get("dist-info-metadata"))
    if isinstance(metadata, dict):
        metadata = metadata.get("sha256", True)
    return _make_link(
        entry["url"],
        page_url,
        sha256=str(hashes.get("sha256", "")).lower() or None,
        requires_python=entry.get("requires-python"),
        yanked=bool(entry.get("yanked")),
        metadata=metadata if isinstance(metadata, (str, bool)) else None,
    )
