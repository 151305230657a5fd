"""The index client: fetches PyTorch index pages and wheel metadata.

The only module that talks HTTP. Pages are cached on disk and revalidated with
ETag / Last-Modified; ``offline`` answers from that cache and then from the
snapshots bundled with torchfit.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import json
import logging
import os
import sys
import threading
import time
import zipfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from torchfit._version import __version__
from torchfit.errors import IndexFetchError, TorchfitError, UsageError
from torchfit.index.pages import JSON_CONTENT_TYPE, Link, parse_html_page, parse_json_page
from torchfit.variants import Variant

if TYPE_CHECKING:  # httpx is imported on first use: offline runs never pay for it
    import httpx

log = logging.getLogger(__name__)

DEFAULT_INDEX = "https://download.pytorch.org/whl"
_UPSTREAM_PREFIXES = ("https://download.pytorch.org/whl", "https://download-r2.pytorch.org/whl")
_ACCEPT = f"{JSON_CONTENT_TYPE}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"
_RETRY_STATUSES = {429, 500, 502, 503, 504}


@dataclass(frozen=True)
class PageRecord:
    """Where one page came from, for the plan's record."""

    url: str
    origin: str  # "network", "cache (revalidated)", "cache (offline)", "snapshot", "absent"
    date: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "origin": self.origin, "date": self.date}


def default_cache_dir() -> Path:
    """The per-user cache folder, as each OS expects it."""
    if sys.platform == "win32":
        root = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
        return root / "torchfit" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "torchfit"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "torchfit"


def bundled_snapshots() -> Path | None:
    """The snapshot folder: inside the installed package, or beside the source tree."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "_snapshots", package.parents[1] / "wheel_index_snapshots"):
        if (candidate / "MANIFEST.json").is_file():
            return candidate
    return None


def check_url(
    url: str, trusted_hosts: Iterable[str] = (), *, error: type[TorchfitError] = UsageError
) -> None:
    """Refuse anything but https://, and plain http:// unless the host is loopback or trusted
    (pip's --trusted-host: a host, or host:port). ``error`` is what a refusal raises."""
    try:
        parts = urlsplit(url)
        host, netloc = parts.hostname or "", parts.netloc
        parts.port  # noqa: B018 -- raises ValueError for a port out of range
    except ValueError as exc:
        raise error(f"invalid URL {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise error(f"not an http(s) URL with a host: {url!r}", hint="use an https:// URL")
    if parts.scheme == "https" or host == "localhost" or {host, netloc} & set(trusted_hosts):
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise error(
        f"refusing plain http:// for {host}: {url}",
        hint=f"use https://, or pass --trusted-host {host} if you trust this network",
    )


class IndexClient:
    """Reads ``<base>/<variant>/<project>/`` pages, or one flat ``*.html`` find-links page."""

    def __init__(
        self,
        base: str = DEFAULT_INDEX,
        *,
        offline: bool = False,
        cache_dir: Path | None = None,
        snapshots: Path | None = None,
        trusted_hosts: Iterable[str] = (),
        client: httpx.Client | None = None,
        retries: int = 2,
        rebase: bool = True,
    ) -> None:
        self.base = base.rstrip("/")
        self.flat = self.base.endswith(".html")
        self.offline = offline
        self.cache_dir = cache_dir
        self.snapshots = snapshots
        self.trusted_hosts = tuple(trusted_hosts)
        self.retries = retries
        self.rebase = rebase  # point upstream links at a mirror base (off: the page as written)
        self.records: list[PageRecord] = []
        self._pages: dict[str, list[Link]] = {}
        self._client = client
        self._lock = threading.Lock()
        check_url(self.base, self.trusted_hosts)

    # -- pages -------------------------------------------------------------

    def page_url(self, project: str, variant: Variant) -> str:
        return self.base if self.flat else f"{self.base}/{variant.tag}/{project}/"

    def links(self, project: str, variant: Variant) -> list[Link]:
        """The wheel links for ``project`` in ``variant``'s folder (empty if none)."""
        links = self._page(self.page_url(project, variant), project, variant)
        if not self.flat:
            return links
        return [
            link
            for link in links
            if link.filename.lower().startswith(project + "-")
            and (
                link.folder == variant.tag
                # Root-level macOS wheels on the flat page are CPU builds.
                or (
                    variant.kind == "cpu"
                    and link.folder in (None, "whl")
                    and "macosx" in link.filename
                )
            )
        ]

    def prefetch(self, project: str, variants: Iterable[Variant]) -> None:
        """Fetch several variant pages at once (the answers land in the memo)."""
        wanted = [v for v in variants if self.page_url(project, v) not in self._pages]
        if len(wanted) > 1 and not self.flat:
            with ThreadPoolExecutor(max_workers=min(8, len(wanted))) as pool:
                list(pool.map(lambda v: self.links(project, v), wanted))

    def _page(self, url: str, project: str, variant: Variant) -> list[Link]:
        if url not in self._pages:
            self._pages[url] = [self._rebase(link) for link in self._load(url, project, variant)]
        return self._pages[url]

    def _load(self, url: str, project: str, variant: Variant) -> list[Link]:
        cached = self._read_cache(url)
        if self.offline:
            if cached is not None:
                self.records.append(PageRecord(url, "cache (offline)", cached.get("fetched")))
                return self._parse(
                    cached["body"], cached.get("content_type", ""), cached.get("final_url", url)
                )
            return self._from_snapshot(url, project, variant)
        return self._fetch_page(url, cached)

    def _fetch_page(self, url: str, cached: dict[str, Any] | None) -> list[Link]:
        headers = {"Accept": _ACCEPT}
        if cached and cached.get("etag"):
            headers["If-None-Match"] = cached["etag"]
        if cached and cached.get("last_modified"):
            headers["If-Modified-Since"] = cached["last_modified"]
        response = self._get(url, headers)
        if response.status_code == 304 and cached is not None:
            self.records.append(PageRecord(url, "cache (revalidated)", cached.get("fetched")))
            return self._parse(
                cached["body"], cached.get("content_type", ""), cached.get("final_url", url)
            )
        if response.status_code == 404:
            self.records.append(PageRecord(url, "absent"))
            return []
        if response.status_code != 200:
            raise IndexFetchError(
                f"{url} answered HTTP {response.status_code}",
                hint="check --pytorch-index, or use --offline to plan from the cache and snapshots",
            )
        content_type = response.headers.get("content-type", "")
        fetched = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.records.append(PageRecord(url, "network", fetched))
        self._write_cache(url, response, content_type, fetched)
        return self._parse(response.text, content_type, str(response.url))

    def _from_snapshot(self, url: str, project: str, variant: Variant) -> list[Link]:
        if self.snapshots is None:
            raise IndexFetchError(
                f"offline, and {url} is neither cached nor bundled",
                hint="run once online to fill the cache, or drop --offline",
            )
        if self.flat:
            path, page_url = (
                self.snapshots / "torch_stable.html",
                f"{DEFAULT_INDEX}/torch_stable.html",
            )
        else:
            path = self.snapshots / variant.tag / project / "index.html"
            page_url = f"{DEFAULT_INDEX}/{variant.tag}/{project}/"
        if not path.is_file():
            self.records.append(PageRecord(url, "absent (not in snapshots)"))
            return []
        self.records.append(PageRecord(url, "snapshot", _snapshot_date(self.snapshots, path)))
        return parse_html_page(path.read_text(encoding="utf-8"), page_url)

    @staticmethod
    def _parse(body: str, content_type: str, url: str) -> list[Link]:
        if content_type.split(";")[0].strip() == JSON_CONTENT_TYPE:
            return parse_json_page(body, url)
        return parse_html_page(body, url)

    def _rebase(self, link: Link) -> Link:
        """Point upstream links at a mirror: pages name download(-r2).pytorch.org outright."""
        if not self.rebase or self.flat or self.base == DEFAULT_INDEX:
            return link
        for prefix in _UPSTREAM_PREFIXES:
            if link.url.startswith(prefix + "/"):
                url = self.base + link.url[len(prefix) :]
                return Link(**{**link.__dict__, "url": url})
        return link

    # -- metadata ----------------------------------------------------------

    def metadata(self, link: Link) -> bytes | None:
        """The METADATA of a wheel: PEP 658 sidecar, else read from the wheel.

        None when there is nothing to read (offline, or the index lists a file it does not
        serve); raises IndexFetchError for anything worse, a hash mismatch above all.
        """
        key = self._cache_path("metadata", link.url)
        if key is not None and key.is_file():
            return key.read_bytes()
        if self.offline:
            return None
        data = None
        if link.metadata:
            response = self._get(link.url + ".metadata", {})
            if response.status_code == 200:
                data = response.content
                if isinstance(link.metadata, str) and _sha256(data) != link.metadata:
                    raise IndexFetchError(f"metadata of {link.filename} does not match its hash")
        if data is None:
            data = self._metadata_from_wheel(link)
        if data is None:
            return None
        if key is not None:
            try:
                key.parent.mkdir(parents=True, exist_ok=True)
                key.write_bytes(data)
            except OSError as exc:
                log.warning("could not write the cache at %s: %s", key, exc)
        return data

    def _metadata_from_wheel(self, link: Link) -> bytes | None:
        check_url(link.url, self.trusted_hosts, error=IndexFetchError)
        response = self._get(link.url, {})
        if response.status_code in (404, 410):
            log.warning("%s is listed but not served (HTTP %s)", link.url, response.status_code)
            return None
        if response.status_code != 200:
            raise IndexFetchError(
                f"could not download {link.filename}: HTTP {response.status_code}"
            )
        body = response.content
        if link.sha256 and _sha256(body) != link.sha256:
            raise IndexFetchError(f"{link.filename} does not match the sha256 the index gives")
        try:
            with zipfile.ZipFile(io.BytesIO(body)) as wheel:
                name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
                return wheel.read(name)
        except (zipfile.BadZipFile, StopIteration) as exc:
            raise IndexFetchError(f"{link.filename} is not a readable wheel") from exc

    # -- HTTP and cache ----------------------------------------------------

    def _http(self) -> httpx.Client:
        import httpx

        with self._lock:
            if self._client is None:
                # trust_env (the default) honours HTTP(S)_PROXY, NO_PROXY and SSL_CERT_FILE.
                self._client = httpx.Client(
                    # Checked before each request is sent, redirects included.
                    event_hooks={"request": [self._check_request]},
                    timeout=httpx.Timeout(30.0, connect=10.0),
                    follow_redirects=True,
                    # Connection failures are retried here; 5xx answers in _get.
                    transport=httpx.HTTPTransport(retries=self.retries),
                    headers={"User-Agent": f"torchfit/{__version__}"},
                )
            return self._client

    def _check_request(self, request: httpx.Request) -> None:
        # A redirect must not lead where plain http would be refused.
        check_url(str(request.url), self.trusted_hosts, error=IndexFetchError)

    def _get(self, url: str, headers: dict[str, str]) -> httpx.Response:
        import httpx

        client = self._http()
        for attempt in range(self.retries + 1):
            try:
                response = client.get(url, headers=headers)
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                raise IndexFetchError(
                    f"could not reach {url}: {exc}",
                    hint="check the network or proxy settings, or use --offline",
                ) from exc
            if response.status_code not in _RETRY_STATUSES or attempt == self.retries:
                return response
            time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    def _cache_path(self, kind: str, url: str) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / kind / hashlib.sha256(url.encode()).hexdigest()

    def _read_cache(self, url: str) -> dict[str, Any] | None:
        path = self._cache_path("pages", url)
        if path is None or not path.is_file():
            return None
        try:
            entry: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            return None  # a torn write: ignore it, the network will refill it
        return entry if entry.get("url") == url else None

    def _write_cache(
        self, url: str, response: httpx.Response, content_type: str, fetched: str
    ) -> None:
        path = self._cache_path("pages", url)
        if path is None:
            return
        entry = {
            "url": url,
            "final_url": str(response.url),
            "etag": response.headers.get("etag"),
            "last_modified": response.headers.get("last-modified"),
            "content_type": content_type,
            "fetched": fetched,
            "body": response.text,
        }
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(".tmp")
            temporary.write_text(json.dumps(entry), encoding="utf-8")
            temporary.replace(path)  # atomic: a reader never sees half a page
        except OSError as exc:
            log.warning("could not write the cache at %s: %s", path, exc)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> IndexClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _snapshot_date(root: Path, page: Path) -> str | None:
    try:
        manifest = json.loads((root / "MANIFEST.json").read_text(encoding="utf-8"))
        entry = manifest["pages"][page.relative_to(root).as_posix()]
        return str(entry.get("date")) if entry.get("date") else None
    except (OSError, ValueError, KeyError):
        return None
