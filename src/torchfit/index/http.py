"""The HTTP edge: the only module that imports httpx, and only on the first request.

An offline run, or one answered from a fresh cache, never pays for importing httpx.
Every URL, redirects included, passes :func:`check_url` before a byte is sent.

The conventions pip users count on: a connect and read timeout (pip's ``--timeout``, 15 s);
retries, with backoff, only where another try can help (5xx and 429 answers, refused or
reset connections); the CA bundle the environment names; credentials from ``.netrc``.
A request that has not answered after a few seconds says so in the log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from torchfit._text import redact_url
from torchfit._version import __version__
from torchfit.errors import IndexFetchError
from torchfit.index.urls import DEFAULT_TIMEOUT, check_url

if TYPE_CHECKING:
    import ssl

    import httpx

log = logging.getLogger(__name__)

# Answers worth a second try: the server or a proxy is busy or restarting.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Seconds a request may go unanswered before the log says it is still waiting; read at
#: call time when ``Http(patience=None)``.
NOTICE_AFTER = 3.0
_BACKOFF = 0.25  # seconds before the first retry, doubled for each one after it
_RETRY_AFTER_LIMIT = 10.0  # a server's Retry-After is honoured up to this many seconds
_NETWORK_HINT = "check the network or proxy settings, or use --offline"
_TIMEOUT_HINT = "raise --timeout (or TORCHFIT_TIMEOUT, PIP_TIMEOUT), or " + _NETWORK_HINT
_TRUST_HINT = (
    "point SSL_CERT_FILE, PIP_CERT or REQUESTS_CA_BUNDLE at a PEM bundle of CA certificates"
)


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
    """GETs with deadlines and retries over one shared httpx client, created on first use.

    ``timeout`` bounds the connection and each read (None: no bound); ``ca_bundle`` is a
    PEM file (or a directory of them) to trust instead of httpx's default, which honours
    SSL_CERT_FILE and SSL_CERT_DIR itself; ``netrc`` is a netrc file whose credentials are
    sent to its hosts, unless a URL carries its own. ``patience`` is how long a request may
    go unanswered before a "still waiting" line is logged (None: :data:`NOTICE_AFTER`);
    ``sleep`` waits between retries. A given ``client`` is used as it is.
    """

    def __init__(
        self,
        trusted_hosts: Iterable[str] = (),
        *,
        retries: int = 2,
        client: httpx.Client | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        ca_bundle: Path | None = None,
        netrc: Path | None = None,
        patience: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.trusted_hosts = tuple(trusted_hosts)
        self.retries = retries
        self.timeout = timeout
        self.ca_bundle = ca_bundle
        self.netrc = netrc
        self.patience = patience
        self._sleep = sleep
        self._client = client
        self._netrc_auth: httpx.Auth | None = None
        self._lock = threading.Lock()

    def get(self, url: str, headers: Mapping[str, str] | None = None) -> Reply:
        """GET ``url``; 5xx and 429 answers are retried, then returned like any other.

        Raises IndexFetchError when the URL is refused, the server cannot be reached or
        does not answer in time, or the CA bundle cannot be read.
        """
        import httpx

        check_url(url, self.trusted_hosts, error=IndexFetchError)
        client = self._http()
        options = {"headers": dict(headers or {}), **self._auth(url)}
        for attempt in range(self.retries + 1):
            again = attempt < self.retries
            try:
                with self._notice(url):
                    response = client.get(url, **options)
            except httpx.TimeoutException as exc:
                # Nothing was sent when the connection timed out: safe to try again.
                if again and isinstance(exc, httpx.ConnectTimeout):
                    self._sleep(_backoff(attempt))
                    continue
                raise self._timed_out(url, exc, attempt + 1) from exc
            except httpx.TransportError as exc:
                if _certificate_failure(exc):  # another try meets the same certificate
                    raise IndexFetchError(
                        f"could not verify the certificate of {url}: {_one_line(exc)}",
                        hint=f"if a proxy or mirror uses its own CA, {_TRUST_HINT}",
                    ) from exc
                # Refused, reset or dropped: a GET can be sent again.
                if again and isinstance(exc, (httpx.NetworkError, httpx.RemoteProtocolError)):
                    self._sleep(_backoff(attempt))
                    continue
                raise IndexFetchError(
                    f"could not reach {url}: {_one_line(exc)}", hint=_NETWORK_HINT
                ) from exc
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                raise IndexFetchError(
                    f"could not reach {url}: {_one_line(exc)}", hint=_NETWORK_HINT
                ) from exc
            if response.status_code in RETRY_STATUSES and again:
                self._sleep(_backoff(attempt, response.headers.get("retry-after")))
                continue
            return Reply(
                response.status_code,
                str(response.url),
                response.headers,
                response.content,
                response.charset_encoding,
            )
        raise AssertionError("unreachable")

    def _auth(self, url: str) -> dict[str, Any]:
        """The netrc credentials for ``url``; credentials in the URL itself win, as with pip."""
        if self._netrc_auth is not None and "@" not in urlsplit(url).netloc:
            return {"auth": self._netrc_auth}
        return {}

    def _timed_out(self, url: str, exc: Exception, tries: int) -> IndexFetchError:
        import httpx

        limit = f"{self.timeout:g}s" if self.timeout is not None else "the client's timeout"
        if isinstance(exc, httpx.ConnectTimeout):
            times = f" ({tries} tries)" if tries > 1 else ""
            message = f"could not connect to {url} within {limit}{times}"
        elif isinstance(exc, httpx.PoolTimeout):
            message = f"no free connection for {url} within {limit}"
        else:
            message = f"{url} did not answer within {limit}"
        return IndexFetchError(message, hint=_TIMEOUT_HINT)

    @contextmanager
    def _notice(self, url: str) -> Iterator[None]:
        """Log one "still waiting" line if the block takes longer than the patience."""
        after = NOTICE_AFTER if self.patience is None else self.patience
        until = f"; giving up after {self.timeout:g}s" if self.timeout is not None else ""
        message = f"still waiting for {redact_url(url)} ({after:g}s{until})"
        timer = threading.Timer(after, log.warning, ("%s", message))
        timer.daemon = True  # never keeps the process alive
        timer.start()
        try:
            yield
        finally:
            timer.cancel()

    def _http(self) -> httpx.Client:
        import httpx

        with self._lock:
            if self._client is None:
                verify = self._trust()
                self._netrc_auth = self._credentials()
                try:
                    # No transport= of our own: httpx reads HTTP(S)_PROXY, ALL_PROXY and
                    # NO_PROXY only for the transports it makes itself (retries: in get()).
                    self._client = httpx.Client(
                        # Checked before each request is sent, redirects included.
                        event_hooks={"request": [self._check_request]},
                        timeout=httpx.Timeout(self.timeout),
                        follow_redirects=True,
                        headers={"User-Agent": f"torchfit/{__version__}"},
                        verify=verify,
                    )
                except (OSError, ValueError, ImportError) as exc:
                    raise _setup_failure(exc, native_trust=verify is True) from exc
            return self._client

    def _trust(self) -> ssl.SSLContext | bool:
        """The CA bundle as an SSL context, or True: httpx's own default (SSL_CERT_FILE,
        SSL_CERT_DIR, then certifi)."""
        if self.ca_bundle is None:
            return True
        import ssl

        path = self.ca_bundle
        try:
            if path.is_dir():
                return ssl.create_default_context(capath=str(path))
            return ssl.create_default_context(cafile=str(path))
        except (OSError, ValueError) as exc:
            raise IndexFetchError(
                f"cannot use the CA certificates in {path}: {_trust_reason(exc)}",
                hint=_TRUST_HINT + ", or unset the variable",
            ) from exc

    def _credentials(self) -> httpx.Auth | None:
        if self.netrc is None:
            return None
        import netrc

        import httpx

        try:
            return httpx.NetRCAuth(str(self.netrc))
        except (OSError, ValueError, netrc.NetrcParseError) as exc:
            # As pip (through requests) does: a netrc that cannot be read is not used.
            log.warning("ignoring %s: %s", self.netrc, _one_line(exc))
            return None

    def _check_request(self, request: httpx.Request) -> None:
        # A redirect must not lead where plain http would be refused.
        check_url(str(request.url), self.trusted_hosts, error=IndexFetchError)

    def download(self, url: str, dest: Path) -> str:
        """Stream ``url`` into the file ``dest`` (never all in memory: a CUDA build of torch
        is gigabytes); return the sha256 (hex) of the bytes written.

        Retried as :meth:`get` is; each try starts the file afresh. Raises IndexFetchError
        when the URL is refused, the server cannot be reached or answers other than 200,
        or the file cannot be written.
        """
        import hashlib

        import httpx

        check_url(url, self.trusted_hosts, error=IndexFetchError)
        client = self._http()
        options = self._auth(url)
        for attempt in range(self.retries + 1):
            again = attempt < self.retries
            digest = hashlib.sha256()
            try:
                with self._notice(url), client.stream("GET", url, **options) as response:
                    if response.status_code in RETRY_STATUSES and again:
                        self._sleep(_backoff(attempt, response.headers.get("retry-after")))
                        continue
                    if response.status_code != 200:
                        raise IndexFetchError(
                            f"could not download {url}: HTTP {response.status_code}",
                            hint=_NETWORK_HINT,
                        )
                    with open(dest, "wb") as out:
                        for chunk in response.iter_bytes(1 << 20):
                            digest.update(chunk)
                            out.write(chunk)
                return digest.hexdigest()
            except httpx.TimeoutException as exc:
                if again and isinstance(exc, httpx.ConnectTimeout):
                    self._sleep(_backoff(attempt))
                    continue
                raise self._timed_out(url, exc, attempt + 1) from exc
            except httpx.TransportError as exc:
                if again and isinstance(exc, httpx.ConnectError):
                    self._sleep(_backoff(attempt))
                    continue
                raise IndexFetchError(
                    f"could not download {url}: {_one_line(exc)}", hint=_NETWORK_HINT
                ) from exc
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                raise IndexFetchError(
                    f"could not download {url}: {_one_line(exc)}", hint=_NETWORK_HINT
                ) from exc
            except OSError as exc:
                raise IndexFetchError(f"could not write {dest}: {_one_line(exc)}") from exc
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _backoff(attempt: int, retry_after: str | None = None) -> float:
    """Seconds before retry ``attempt + 1``: doubling, or the server's Retry-After (capped)."""
    delay = _BACKOFF * float(1 << attempt)
    if retry_after is not None and retry_after.strip().isdigit():
        delay = max(delay, min(float(retry_after.strip()), _RETRY_AFTER_LIMIT))
    return delay


def _certificate_failure(exc: BaseException) -> bool:
    import ssl

    seen: BaseException | None = exc
    for _ in range(10):  # httpx wraps httpcore, which wraps the ssl module's error
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _setup_failure(exc: Exception, *, native_trust: bool) -> IndexFetchError:
    """httpx could not make its client: its own reading of the environment failed."""
    import os

    if native_trust and isinstance(exc, OSError):
        # httpx reads SSL_CERT_FILE (else SSL_CERT_DIR) itself, without naming it when
        # the file is missing or garbage: name it here.
        name = "SSL_CERT_FILE" if os.environ.get("SSL_CERT_FILE") else "SSL_CERT_DIR"
        where = os.environ.get(name)
        if where:
            return IndexFetchError(
                f"cannot use the CA certificates in {where} ({name}): {_trust_reason(exc)}",
                hint=_TRUST_HINT + f", or unset {name}",
            )
    return IndexFetchError(
        f"could not set up HTTP: {_one_line(exc)}",
        hint="check HTTPS_PROXY, ALL_PROXY and the CA variables",
    )


def _trust_reason(exc: Exception) -> str:
    import ssl

    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, ssl.SSLError):
        return f"not a PEM bundle of CA certificates ({exc.reason or _one_line(exc)})"
    return _one_line(exc)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__
