"""A loopback HTTP server for index and download tests.

It serves a directory the way a package index does (index pages, wheels, ``.metadata``
sidecars) and implements the HTTP parts a careful client relies on: validators and 304,
single byte ranges, the directory redirect and PEP 691 content negotiation. ``routes``
answers chosen paths with canned responses, e.g. a 500 followed by a 200.
"""

from __future__ import annotations

import hashlib
import http.server
import ssl
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import NamedTuple, Union
from urllib.parse import unquote, urlsplit

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
_HTML_TYPES = ("application/vnd.pypi.simple.v1+html", "text/html")


class Response(NamedTuple):
    status: int
    headers: Mapping[str, str]
    body: bytes


class Request(NamedTuple):
    method: str
    path: str  # decoded, without the query string
    headers: Mapping[str, str]


# A route is one response, or a list that is answered in turn (the last one repeats).
Route = Union[Response, Sequence[Response]]


def _quality(accept: str, media_type: str) -> float:
    """Return the q-value ``accept`` gives ``media_type`` (most specific match wins)."""
    best, best_q = -1, 0.0
    for item in accept.split(","):
        kind, *params = (p.strip() for p in item.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        major = media_type.split("/")[0]
        rank = {media_type: 2, f"{major}/*": 1, "*/*": 0}.get(kind.lower(), -1)
        if rank > best:
            best, best_q = rank, q
    return best_q


def _byte_range(header: str, size: int) -> tuple[int, int] | bool | None:
    """Parse one ``bytes=a-b``/``a-``/``-n`` range into ``(first, last)``; ``None`` means
    ignore the header (malformed, or several ranges), ``False`` that it is unsatisfiable."""
    unit, _, spec = header.partition("=")
    start, dash, end = spec.strip().partition("-")
    if unit.strip().lower() != "bytes" or not dash or "," in spec:
        return None
    try:
        if not start:  # a suffix: the last n bytes
            count = int(end)
            return (max(size - count, 0), size - 1) if count > 0 and size > 0 else False
        first, last = int(start), int(end) if end else None
    except ValueError:
        return None
    if last is not None and last < first:
        return None  # "bytes=5-2" is invalid syntax, so the header is ignored
    if first >= size:
        return False
    return first, size - 1 if last is None else min(last, size - 1)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as pip and httpx use it
    timeout = 10  # an idle keep-alive connection does not hold a thread forever
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass  # tests read .requests instead of stderr

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def _answer(self, body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        self.server.owner._record(Request(self.command, path, dict(self.headers.items())))
        route = self.server.owner._next_route(path)
        if route is not None:
            return self._send(route.status, dict(route.headers), route.body, body)
        root = self.server.owner.root
        target = (root / path.lstrip("/")).resolve()
        if target != root and root not in target.parents:
            return self._send(404, {}, b"outside the served directory\n", body)
        if target.is_dir():
            if not path.endswith("/"):
                query = urlsplit(self.path).query
                location = urlsplit(self.path).path + "/" + (f"?{query}" if query else "")
                return self._send(301, {"Location": location}, b"", body)
            return self._index(target, body)
        if not target.is_file():
            return self._send(404, {}, b"not found\n", body)
        self._file(target, _content_type(target), body)

    def _index(self, directory: Path, body: bool) -> None:
        page, as_json = directory / "index.html", directory / "index.json"
        accept = self.headers.get("Accept", "*/*")
        html_q = max(_quality(accept, t) for t in _HTML_TYPES)
        if as_json.is_file() and (_quality(accept, JSON_TYPE) > html_q or not page.is_file()):
            return self._file(as_json, JSON_TYPE, body, vary=True)
        if not page.is_file():
            return self._send(404, {}, b"no index here\n", body)
        self._file(page, "text/html", body, vary=as_json.is_file())

    def _file(self, path: Path, ctype: str, body: bool, vary: bool = False) -> None:
        data = path.read_bytes()
        mtime = int(path.stat().st_mtime)
        headers = {
            "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
            "Last-Modified": formatdate(mtime, usegmt=True),
            "Accept-Ranges": "bytes",
        }
        if vary:
            headers["Vary"] = "Accept"
        if self._not_modified(headers["ETag"], mtime):
            return self._send(304, headers, b"", body)
        headers["Content-Type"] = ctype
        span = _byte_range(self.headers["Range"], len(data)) if "Range" in self.headers else None
        if span is False:
            headers["Content-Range"] = f"bytes */{len(data)}"
            return self._send(416, headers, b"", body)
        if isinstance(span, tuple):
            first, last = span
            headers["Content-Range"] = f"bytes {first}-{last}/{len(data)}"
            return self._send(206, headers, data[first : last + 1], body)
        self._send(200, headers, data, body)

    def _not_modified(self, etag: str, mtime: int) -> bool:
        # RFC 9110: If-None-Match wins; If-Modified-Since counts only without it.
        if "If-None-Match" in self.headers:
            tags = [t.strip().removeprefix("W/") for t in self.headers["If-None-Match"].split(",")]
            return "*" in tags or etag in tags
        if "If-Modified-Since" in self.headers:
            try:
                since = parsedate_to_datetime(self.headers["If-Modified-Since"]).timestamp()
            except (TypeError, ValueError):
                return False
            return mtime <= since
        return False

    def _send(self, status: int, headers: dict[str, str], data: bytes, body: bool) -> None:
        self.send_response(status)
        if status != 304:  # a 304 has no body; a Content-Length would describe the 200's
            headers.setdefault("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if body and status not in (204, 304):
            self.wfile.write(data)


def _content_type(path: Path) -> str:
    return {".html": "text/html", ".json": "application/json"}.get(
        path.suffix, "application/octet-stream"
    )


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True  # stop() never waits on a client's idle connection
    owner: IndexServer


class IndexServer:
    """A running server; use :func:`serve_directory` to get one."""

    def __init__(
        self,
        root: Path,
        routes: Mapping[str, Route] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.routes: dict[str, Route] = dict(routes or {})  # tests may change it while serving
        self._lock = threading.Lock()
        self._log: list[Request] = []
        self._served: dict[str, int] = {}
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        scheme = "http"
        if ssl_context is not None:  # TLS: the handshake runs in each connection's thread
            scheme = "https"
            self._httpd.socket = ssl_context.wrap_socket(
                self._httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self.url = f"{scheme}://127.0.0.1:{self._httpd.server_address[1]}"
        # A short poll interval keeps stop() (and so each test's teardown) quick.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def requests(self) -> list[str]:
        """Paths requested so far, in order (a copy, safe to read while serving)."""
        with self._lock:
            return [r.path for r in self._log]

    @property
    def received(self) -> list[Request]:
        """Every request so far with its method and headers (a copy)."""
        with self._lock:
            return list(self._log)

    def stop(self) -> None:
        """Stop listening; safe to call more than once."""
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()

    def _record(self, request: Request) -> None:
        with self._lock:
            self._log.append(request)

    def _next_route(self, path: str) -> Response | None:
        with self._lock:
            route = self.routes.get(path)
            if route is None or isinstance(route, Response):
                return route
            count = self._served.get(path, 0)
            self._served[path] = count + 1
            return route[min(count, len(route) - 1)]


@contextmanager
def serve_directory(
    root: Path,
    routes: Mapping[str, Route] | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> Iterator[IndexServer]:
    """Serve ``root`` on ``http://127.0.0.1:<free port>`` until the block exits
    (``https://`` with ``ssl_context``, a server-side context; see ``support.tls``)."""
    server = IndexServer(root, routes, ssl_context)
    try:
        yield server
    finally:
        server.stop()
