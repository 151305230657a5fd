"""The HTTP edge: the only module that imports httpx, and only on the first request.

An offline run, or one answered from a fresh cache, never pays for importing httpx.
Every URL, redirects included, passes :func:`check_url` before a byte is sent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torchfit._version import __version__
from torchfit.errors import IndexFetchError
from torchfit.index.urls import check_url

if TYPE_CHECKING:
    import httpx

# Answers worth a second try: the server or a proxy is busy or restarting.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Reply:
    """One HTTP answer, read in full; ``headers`` is case-insensitive with httpx."""

    status: int
    url: str  # after redirects
    headers: Mapping[str, str]
    content: bytes
    encoding: str | None = None  # the charset the Content-Type names

    def text(self) -> str:
        """The body as text: the named charset, else UTF-8 (PEP 503 pages are UTF-8)."""
        try:
            return self.content.decode(self.encoding or "utf-8", errors="replace")
        except LookupError:  # a charset Python does not know
            return self.content.decode("utf-8", errors="replace")


class Http:
    """GETs with retries over one shared httpx client, created on first use."""

    def __init__(
        self,
        trusted_hosts: Iterable[str] = (),
        *,
        retries: int = 2,
        client: httpx.Client | None = None,
    ) -> None:
        self.trusted_hosts = tuple(trusted_hosts)
        self.retries = retries
        self._client = client
        self._lock = threading.Lock()

    def get(self, url: str, headers: Mapping[str, str] | None = None) -> Reply:
        """GET ``url``; 5xx and 429 answers are retried, then returned like any other.

        Raises IndexFetchError when the URL is refused or the server cannot be reached.
        """
        import httpx

        check_url(url, self.trusted_hosts, error=IndexFetchError)
        client = self._http()
        for attempt in range(self.retries + 1):
            try:
                response = client.get(url, headers=dict(headers or {}))
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt < self.retries:  # nothing was sent: safe to try again
                    time.sleep(0.2 * (attempt + 1))
                    continue
                raise IndexFetchError(
                    f"could not reach {url}: {exc}",
                    hint="check the network or proxy settings, or use --offline",
                ) from exc
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                raise IndexFetchError(
                    f"could not reach {url}: {exc}",
                    hint="check the network or proxy settings, or use --offline",
                ) from exc
            if response.status_code not in RETRY_STATUSES or attempt == self.retries:
                return Reply(
                    response.status_code,
                    str(response.url),
                    response.headers,
                    response.content,
                    response.charset_encoding,
                )
            time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    def _http(self) -> httpx.Client:
        import httpx

        with self._lock:
            if self._client is None:
                # No transport= of our own: httpx reads HTTP(S)_PROXY, ALL_PROXY and NO_PROXY
                # only for the transports it makes itself (retries are done in get()).
                self._client = httpx.Client(
                    # Checked before each request is sent, redirects included.
                    event_hooks={"request": [self._check_request]},
                    timeout=httpx.Timeout(30.0, connect=10.0),
                    follow_redirects=True,
                    headers={"User-Agent": f"torchfit/{__version__}"},
                )
            return self._client

    def _check_request(self, request: httpx.Request) -> None:
        # A redirect must not lead where plain http would be refused.
        check_url(str(request.url), self.trusted_hosts, error=IndexFetchError)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
