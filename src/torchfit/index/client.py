"""The index client: PyTorch index pages and wheel metadata, cached.

Pages come from a fresh disk cache without a request, else from the network (a stale
entry is revalidated with ETag / Last-Modified); ``offline`` answers from the cache and
then from the snapshots bundled with torchfit. HTTP lives in :mod:`.http`, the cache in
:mod:`.cache`, reading METADATA out of wheels in :mod:`.metadata`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torchfit.errors import IndexFetchError
from torchfit.index.cache import CachedPage, DiskCache, default_cache_dir, freshness_lifetime
from torchfit.index.http import Http, Reply
from torchfit.index.metadata import sidecar_metadata, wheel_metadata
from torchfit.index.pages import JSON_CONTENT_TYPE, Link, parse_html_page, parse_json_page
from torchfit.index.snapshots import bundled_snapshots, snapshot_date, snapshot_page
from torchfit.index.urls import DEFAULT_INDEX, DEFAULT_TIMEOUT, check_url, rebase
from torchfit.variants import Variant

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DEFAULT_INDEX",
    "IndexClient",
    "PageRecord",
    "bundled_snapshots",
    "check_url",
    "default_cache_dir",
]

log = logging.getLogger(__name__)

_ACCEPT = f"{JSON_CONTENT_TYPE}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"


@dataclass(frozen=True)
class PageRecord:
    """Where one page came from, for the plan's record."""

    url: str
    # "network", "cache (fresh)", "cache (revalidated)", "cache (offline)", "snapshot",
    # "absent", "absent (not in snapshots)"
    origin: str
    date: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "origin": self.origin, "date": self.date}


class IndexClient:
    """Reads ``<base>/<variant>/<project>/`` pages, or one flat ``*.html`` find-links page.

    ``refresh`` revalidates cached pages even while they are fresh; ``clock`` gives the
    time in epoch seconds (a seam for tests of freshness). ``timeout`` (seconds to connect
    and for each read), ``ca_bundle`` and ``netrc`` are the HTTP edge's: see :class:`Http`.
    """

    def __init__(
        self,
        base: str = DEFAULT_INDEX,
        *,
        offline: bool = False,
        refresh: bool = False,
        cache_dir: Path | None = None,
        snapshots: Path | None = None,
        trusted_hosts: Iterable[str] = (),
        client: httpx.Client | None = None,
        retries: int = 2,
        rebase: bool = True,
        clock: Callable[[], float] = time.time,
        timeout: float | None = DEFAULT_TIMEOUT,
        ca_bundle: Path | None = None,
        netrc: Path | None = None,
    ) -> None:
        self.base = base.rstrip("/")
        self.flat = self.base.endswith(".html")
        self.offline = offline
        self.refresh = refresh
        self.cache_dir = cache_dir
        self.snapshots = snapshots
        self.trusted_hosts = tuple(trusted_hosts)
        self.retries = retries
        self.rebase = rebase  # point upstream links at a mirror base (off: the page as written)
        self.records: list[PageRecord] = []
        self._guard = threading.Lock()
        self._page_locks: dict[str, threading.Lock] = {}
        self._cache = DiskCache(cache_dir)
        self._http = Http(
            self.trusted_hosts,
            retries=retries,
            client=client,
            timeout=timeout,
            ca_bundle=ca_bundle,
            netrc=netrc,
        )
        self._clock = clock
        self._pages: dict[str, list[Link]] = {}
        check_url(self.base, self.trusted_hosts, typed=True)

    # -- pages -------------------------------------------------------------

    def page_url(self, project: str, variant: Variant) -> str:
        return self.base if self.flat else f"{self.base}/{variant.tag}/{project}/"

    def links(self, project: str, variant: Variant) -> list[Link]:
        """The wheel links for ``project`` in ``variant``'s folder (empty if none)."""
        links = self._page(self.page_url(project, variant), project, variant)
        if not self.flat:
            return links
        prefix = project + "-"
        return [
            link
            for link in links
            if link.filename.lower().startswith(prefix)
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

    def pages_without_wheels(self) -> list[str]:
        """Pages read that listed no wheel at all (junk, or an empty 200): worth naming when
        nothing fits, since they read as "no such release" otherwise."""
        absent = {r.url for r in self.records if r.origin.startswith("absent")}
        return [url for url, links in self._pages.items() if not links and url not in absent]

    def prefetch(self, project: str, variants: Iterable[Variant]) -> None:
        """Fetch several variant pages at once (the answers are kept for the later reads)."""
        wanted = [v for v in variants if self.page_url(project, v) not in self._pages]
        if len(wanted) > 1 and not self.flat:
            with ThreadPoolExecutor(max_workers=min(8, len(wanted))) as pool:
                list(pool.map(lambda v: self.links(project, v), wanted))

    def _page(self, url: str, project: str, variant: Variant) -> list[Link]:
        with self._guard:
            lock = self._page_locks.setdefault(url, threading.Lock())
        with lock:  # one fetch per page, however many threads ask for it (a flat page: all)
            if url not in self._pages:
                links = self._load(url, project, variant)
                # A flat page's mirror root is its folder: .../whl/torch_stable.html -> .../whl
                root = self.base.rsplit("/", 1)[0] if self.flat else self.base
                if self.rebase and root != DEFAULT_INDEX:
                    links = [rebase(link, root) for link in links]
                self._pages[url] = links
        return self._pages[url]

    def _load(self, url: str, project: str, variant: Variant) -> list[Link]:
        cached = self._cache.page(url)
        if self.offline:
            links = self._answer(url, "cache (offline)", cached)
            return self._from_snapshot(url, project, variant) if links is None else links
        if cached is not None and not self.refresh and cached.is_fresh(self._clock()):
            links = self._answer(url, "cache (fresh)", cached)
            if links is not None:
                return links
            cached = None
        return self._fetch_page(url, cached)

    def _answer(self, url: str, origin: str, cached: CachedPage | None) -> list[Link] | None:
        """The cached page's links, or None (the entry dropped) when it does not parse."""
        if cached is None:
            return None
        try:
            links = self._parse(cached.body, cached.content_type, cached.final_url or url)
        except IndexFetchError as exc:
            log.debug("discarding the cached copy of %s: %s", url, exc)
            self._cache.drop_page(url)
            return None
        self.records.append(PageRecord(url, origin, cached.fetched))
        return links

    def _fetch_page(self, url: str, cached: CachedPage | None) -> list[Link]:
        headers = {"Accept": _ACCEPT, **(cached.validators() if cached else {})}
        reply = self._http.get(url, headers)
        now = self._clock()
        lifetime = freshness_lifetime(reply.headers, now)
        if reply.status == 304 and cached is not None:
            if lifetime is None:
                self._cache.drop_page(url)
            else:
                self._cache.store_page(cached.revalidated(reply.headers, lifetime, now))
            links = self._answer(url, "cache (revalidated)", cached)
            return self._fetch_page(url, None) if links is None else links
        if reply.status in (404, 410):
            self._cache.drop_page(url)
            self.records.append(PageRecord(url, "absent"))
            return []
        if reply.status != 200:
            raise IndexFetchError(
                f"{url} answered HTTP {reply.status}",
                hint="check --pytorch-index, or use --offline to plan from the cache and snapshots",
            )
        body = reply.text()
        links = self._parse(body, reply.headers.get("content-type", ""), reply.url)
        fetched = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        self.records.append(PageRecord(url, "network", fetched))
        if lifetime is None:  # Cache-Control: no-store
            self._cache.drop_page(url)
        else:  # only a page that parsed: a broken one is not kept
            self._cache.store_page(_entry(url, reply, body, fetched, now, lifetime))
        return links

    def _from_snapshot(self, url: str, project: str, variant: Variant) -> list[Link]:
        if self.snapshots is None:
            raise IndexFetchError(
                f"offline, and {url} is neither cached nor bundled",
                hint="run once online to fill the cache, or drop --offline",
            )
        path, page_url = snapshot_page(self.snapshots, project, variant, flat=self.flat)
        if not path.is_file():
            self.records.append(PageRecord(url, "absent (not in snapshots)"))
            return []
        self.records.append(PageRecord(url, "snapshot", snapshot_date(self.snapshots, path)))
        return parse_html_page(path.read_text(encoding="utf-8"), page_url)

    @staticmethod
    def _parse(body: str, content_type: str, url: str) -> list[Link]:
        if content_type.split(";")[0].strip().lower() == JSON_CONTENT_TYPE:
            return parse_json_page(body, url)
        return parse_html_page(body, url)

    # -- metadata ----------------------------------------------------------

    def metadata(self, link: Link) -> bytes | None:
        """The METADATA of a wheel: PEP 658 sidecar, else read from the wheel.

        None when there is nothing to read (offline, or the index lists a file it does not
        serve); raises IndexFetchError for anything worse, a hash mismatch above all.
        """
        expected = link.metadata if isinstance(link.metadata, str) else None
        data = self._cache.metadata(link.url, expected)
        if data is not None or self.offline:
            return data
        if link.metadata:
            data = sidecar_metadata(link, self._http.get)
        if data is None:
            data = wheel_metadata(link, self._http.get)
        if data is not None:
            self._cache.store_metadata(link.url, data)
        return data

    # -- lifetime ----------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> IndexClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _entry(
    url: str, reply: Reply, body: str, fetched: str, now: float, lifetime: float
) -> CachedPage:
    return CachedPage(
        url=url,
        body=body,
        content_type=reply.headers.get("content-type", ""),
        final_url=reply.url,
        etag=reply.headers.get("etag"),
        last_modified=reply.headers.get("last-modified"),
        fetched=fetched,
        stored_at=now,
        lifetime=lifetime,
    )
