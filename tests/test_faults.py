"""Injected faults against real parts: a loopback index that misbehaves in every way a
network can (raw sockets for what a well-behaved HTTP server cannot say), fake nvidia-smi
programs on PATH, NVML modules that hang or lie, a damaged cache, and ten processes sharing
one cache. Each ends as a user would want: the right answer, or one ``error:`` line naming
what failed (the URL, for the network), the right exit code and never a traceback.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

from support import Response, serve_directory
from torchfit.cli.main import main
from torchfit.index.cache import CachedPage
from torchfit.machine.detect import detect

SNAPSHOTS = Path(__file__).resolve().parents[1] / "wheel_index_snapshots"
PAGE = (SNAPSHOTS / "cu101" / "torch" / "index.html").read_bytes()
PAGE_PATH = "/whl/cu101/torch/"
WHEEL = "torch-1.7.1+cu101-cp38-cp38-linux_x86_64.whl"
QUESTION = ["plan", "torch==1.7.1", "--cuda", "10.1", "--python-version", "3.8"]
QUESTION += ["--platform", "linux_x86_64", "--timeout", "2"]
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")
# Lines a run may print before its error: plan warnings, and log lines (torchfit's loggers).
_BEFORE_ERROR = re.compile(r"^(warning: |torchfit[\w.]*: |httpx: )")
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX shell scripts and sockets")
pytestmark = posix_only


# -- helpers ------------------------------------------------------------------------------


def index_root(tmp_path: Path) -> Path:
    """A served folder with the recorded cu101 torch page at /whl/cu101/torch/."""
    root = tmp_path / "served"
    (root / "whl" / "cu101" / "torch").mkdir(parents=True)
    (root / "whl" / "cu101" / "torch" / "index.html").write_bytes(PAGE)
    return root


def ask(
    capsys: pytest.CaptureFixture[str], base: str, cache: Path, *extra: str
) -> tuple[int, str, str]:
    """``torchfit plan torch==1.7.1 ... --pytorch-index <base>/whl``, in this process."""
    code = main(
        [*QUESTION, "--pytorch-index", f"{base}/whl", *extra],
        env={"TORCHFIT_CACHE_DIR": str(cache)},
    )
    out, err = capsys.readouterr()
    return code, out, err


def assert_clean(out: str, err: str) -> None:
    both = out + err
    assert "Traceback" not in both, both[-3000:]
    assert "internal error" not in both, both[-3000:]
    assert not _CONTROL.search(out), repr(out[:500])
    assert not _CONTROL.search(err), repr(err[:500])


def assert_error(
    code: int, out: str, err: str, *, expected: int = 1, names: str | None = None
) -> str:
    """One ``error:`` line (after warnings and log lines only), then details and one hint;
    returns the error line."""
    assert_clean(out, err)
    assert code == expected, err[-3000:]
    assert out == "", out[:2000]
    lines = err.splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("error: ")]
    assert len(errors) == 1, err[-3000:]
    first = errors[0]
    assert all(_BEFORE_ERROR.match(line) for line in lines[:first]), err[-3000:]
    rest = lines[first + 1 :]
    if rest and rest[-1].startswith("hint: "):
        rest = rest[:-1]
    assert all(line.startswith("  ") for line in rest), err[-3000:]
    if names is not None:
        assert names in lines[first], lines[first][:2000]
    return lines[first]


def assert_planned(code: int, out: str, err: str) -> None:
    """The plan torch 1.7.1+cu101 for cp38 linux_x86_64, as from a healthy index."""
    assert_clean(out, err)
    assert code == 0, err[-3000:]
    assert out.splitlines()[0] == "variant cu101 for Python 3.8 on linux_x86_64", out
    assert WHEEL in out
    assert not [line for line in err.splitlines() if line.startswith("error:")]


# -- a raw-socket server for what no well-behaved server says ----------------------------


class RawServer:
    """``http://127.0.0.1:<port>``; ``respond(connection, request, number)`` answers each
    connection (``number`` counts from 0) and may block until ``stopping`` is set."""

    def __init__(self, respond: Callable[[socket.socket, bytes, int], None]) -> None:
        self.respond = respond
        self.stopping = threading.Event()
        self.requests: list[bytes] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._connections: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                continue
            with self._lock:
                self._connections.append(connection)
            thread = threading.Thread(target=self._serve, args=(connection,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, connection: socket.socket) -> None:
        connection.settimeout(5)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = connection.recv(65536)
                if not chunk:
                    return
                data += chunk
            with self._lock:
                number = len(self.requests)
                self.requests.append(data)
            self.respond(connection, data, number)
        except OSError:
            pass  # the client gave up first: that is what some tests are for
        finally:
            with suppress(OSError):
                connection.close()

    def stop(self) -> None:
        self.stopping.set()
        server_stopping.set()  # handlers that hang return now
        self._acceptor.join(5)
        self._listener.close()
        with self._lock:
            for connection in self._connections:
                with suppress(OSError):
                    connection.close()
        for thread in self._threads:
            thread.join(5)


@contextmanager
def raw_server(respond: Callable[[socket.socket, bytes, int], None]) -> Iterator[RawServer]:
    server = RawServer(respond)
    try:
        yield server
    finally:
        server.stop()


def head(status: str = "200 OK", **headers: str | int) -> bytes:
    lines = [f"HTTP/1.1 {status}"]
    lines += [f"{key.replace('_', '-')}: {value}" for key, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def reset(connection: socket.socket) -> None:
    """Close with a TCP RST rather than a FIN."""
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()


def send(data: bytes) -> Callable[[socket.socket, bytes, int], None]:
    def respond(connection: socket.socket, request: bytes, number: int) -> None:
        connection.sendall(data)

    return respond


def hang(connection: socket.socket, request: bytes, number: int) -> None:
    server_stopping.wait(30)


server_stopping = threading.Event()  # released at each test's end: see the fixture below


@pytest.fixture(autouse=True)
def _release_hanging_handlers() -> Iterator[None]:
    server_stopping.clear()
    yield
    server_stopping.set()


def hang_after(data: bytes) -> Callable[[socket.socket, bytes, int], None]:
    def respond(connection: socket.socket, request: bytes, number: int) -> None:
        connection.sendall(data)
        server_stopping.wait(30)

    return respond


def reset_after(data: bytes) -> Callable[[socket.socket, bytes, int], None]:
    def respond(connection: socket.socket, request: bytes, number: int) -> None:
        if data:
            connection.sendall(data)
            time.sleep(0.05)  # let the bytes leave before the reset overtakes them
        reset(connection)

    return respond


def _html(links: str) -> bytes:
    return f"<!DOCTYPE html><html><body>{links}</body></html>".encode()


def _link(href: str, text: str = "x") -> str:
    return f'<a href="{href}">{text}</a><br/>\n'


_JUNK = random.Random(20240521).randbytes(64 * 1024)
_HUGE_HEADER = "x" * 200_000  # httpcore reads up to 100 KiB of head
_HALF = len(PAGE) // 2
MEGABYTE_TEXT = 1 << 20

RAW_FAULTS = [
    # what the server does; how many requests it sees (retried only where that can help)
    pytest.param(hang, 1, id="accepts-never-answers"),
    pytest.param(
        hang_after(head(Content_Length=len(PAGE), Content_Type="text/html") + PAGE[:100]),
        1,
        id="hangs-mid-body",
    ),
    pytest.param(hang_after(b"HTTP/1.1 200 OK\r\n"), 1, id="hangs-mid-headers"),
    pytest.param(reset_after(b""), 3, id="reset-before-answer"),
    pytest.param(
        reset_after(head(Content_Length=len(PAGE), Content_Type="text/html") + PAGE[:_HALF]),
        3,
        id="reset-mid-body",
    ),
    pytest.param(
        send(head(Content_Length=len(PAGE) + 1000, Content_Type="text/html") + PAGE),
        3,
        id="truncated-body",
    ),
    pytest.param(send(b""), 3, id="closes-without-answer"),
    pytest.param(send(head(Content_Length="abc") + PAGE), 3, id="content-length-word"),
    pytest.param(
        send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nContent-Length: 20\r\n\r\n" + PAGE),
        3,
        id="content-length-twice",
    ),
    pytest.param(send(head(Content_Length=-5) + PAGE), 3, id="content-length-negative"),
    pytest.param(send(b"\x00\xff\xfe\x1b[2Jgarbage\r\n\r\n" + _JUNK[:500]), 3, id="garbage-bytes"),
    pytest.param(send(b"SSH-2.0-OpenSSH_9.6\r\n"), 3, id="not-http"),
    pytest.param(send(b"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n"), 3, id="bad-status-line"),
    pytest.param(
        send(head(Content_Type="text/html", X_Huge=_HUGE_HEADER, Content_Length=len(PAGE)) + PAGE),
        3,
        id="huge-header",
    ),
    pytest.param(
        send(
            b"HTTP/1.1 200 OK\r\n"
            + b"".join(b"X-H%d: v\r\n" % i for i in range(20_000))
            + b"Content-Length: 0\r\n\r\n"
        ),
        3,
        id="twenty-thousand-headers",
    ),
    pytest.param(
        send(head(Transfer_Encoding="chunked", Content_Type="text/html") + b"zz\r\nabc\r\n"),
        3,
        id="broken-chunking",
    ),
    pytest.param(
        send(
            head(Content_Encoding="gzip", Content_Type="text/html", Content_Length=len(PAGE)) + PAGE
        ),
        1,
        id="gzip-that-is-not",
    ),
]


@pytest.mark.parametrize(("respond", "tries"), RAW_FAULTS)
def test_a_broken_server_is_one_error_naming_the_url(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    respond: Callable[[socket.socket, bytes, int], None],
    tries: int,
) -> None:
    with raw_server(respond) as server:
        started = time.monotonic()
        code, out, err = ask(capsys, server.url, tmp_path / "cache")
        elapsed = time.monotonic() - started
    assert_error(code, out, err, names=f"{server.url}{PAGE_PATH}")
    # Another try only where it can help (a request that timed out was sent: not again).
    assert len(server.requests) == tries
    assert elapsed < 15
    assert not (tmp_path / "cache" / "pages").exists() or not any(
        (tmp_path / "cache" / "pages").iterdir()
    )  # nothing of a broken answer is kept


def test_a_hang_costs_the_timeout_not_more(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with raw_server(hang) as server:
        started = time.monotonic()
        code = main(
            [*QUESTION, "--pytorch-index", f"{server.url}/whl", "--timeout", "1"],
            env={"TORCHFIT_CACHE_DIR": str(tmp_path / "cache")},
        )
        elapsed = time.monotonic() - started
    out, err = capsys.readouterr()
    line = assert_error(code, out, err, names=f"{server.url}{PAGE_PATH}")
    assert "did not answer within 1s" in line
    assert 0.9 < elapsed < 5


def test_a_shorter_content_length_truncates_the_page_and_says_no_wheel(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # The server lies: only the first 400 bytes count. The rest is never read as a page.
    with raw_server(send(head(Content_Length=400, Content_Type="text/html") + PAGE)) as server:
        code, out, err = ask(capsys, server.url, tmp_path / "cache")
    assert_error(code, out, err, names="no wheel of torch==1.7.1")


def test_binary_junk_served_as_html_is_no_wheel(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    respond = send(head(Content_Type="text/html", Content_Length=len(_JUNK)) + _JUNK)
    with raw_server(respond) as server:
        code, out, err = ask(capsys, server.url, tmp_path / "cache")
    assert_error(code, out, err, names="no wheel of torch==1.7.1")


# Found by this suite: when every page read listed no wheel at all (junk or an empty 200
# from a mirror), the error read as if the release did not exist and named no page.


@pytest.mark.parametrize("body", [_JUNK, b""], ids=["binary-junk", "empty"])
def test_a_page_with_no_links_at_all_is_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, body: bytes
) -> None:
    routes = {PAGE_PATH: _page_response(body)}
    with serve_directory(index_root(tmp_path), routes=routes) as server:
        code, out, err = ask(capsys, server.url, tmp_path / "cache")
    assert_error(code, out, err, names="no wheel of torch==1.7.1")
    assert f"{server.url}{PAGE_PATH}" in err


def test_http_1_0_without_length_is_read_to_the_close(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    respond = send(b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n" + PAGE)
    with raw_server(respond) as server:
        assert_planned(*ask(capsys, server.url, tmp_path / "cache"))


def test_an_interim_100_continue_is_skipped(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    respond = send(
        b"HTTP/1.1 100 Continue\r\n\r\n"
        + head(Content_Type="text/html", Content_Length=len(PAGE))
        + PAGE
    )
    with raw_server(respond) as server:
        assert_planned(*ask(capsys, server.url, tmp_path / "cache"))


def test_a_refused_connection_is_retried_then_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    base = f"http://127.0.0.1:{port}"
    code, out, err = ask(capsys, base, tmp_path / "cache")
    line = assert_error(code, out, err, names=f"{base}{PAGE_PATH}")
    assert "could not reach" in line


def test_https_to_a_plain_http_server_is_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with serve_directory(index_root(tmp_path)) as server:
        base = server.url.replace("http://", "https://")
        code, out, err = ask(capsys, base, tmp_path / "cache")
    assert_error(code, out, err, names=f"{base}{PAGE_PATH}")


# -- routes on the loopback index -----------------------------------------------------------


def _page_response(body: bytes = PAGE, ctype: str = "text/html", **headers: str) -> Response:
    return Response(200, {"Content-Type": ctype, **headers}, body)


def test_a_500_then_a_200_is_retried_to_success(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    routes = {PAGE_PATH: [Response(500, {}, b"oops"), _page_response()]}
    with serve_directory(index_root(tmp_path), routes=routes) as server:
        assert_planned(*ask(capsys, server.url, tmp_path / "cache"))
        assert server.requests == [PAGE_PATH, PAGE_PATH]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_lasting_5xx_is_tried_three_times_then_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, status: int
) -> None:
    routes = {PAGE_PATH: Response(status, {}, b"<h1>down</h1>")}
    with serve_directory(index_root(tmp_path), routes=routes) as server:
        code, out, err = ask(capsys, server.url, tmp_path / "cache")
        assert len(server.requests) == 3
    line = assert_error(code, out, err, names=f"{server.url}{PAGE_PATH}")
    assert f"HTTP {status}" in line


@pytest.mark.parametrize("status", [401, 403, 418, 451])
def test_a_4xx_is_not_retried_and_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, status: int
) -> None:
    routes = {PAGE_PATH: Response(status, {}, b"no")}
    with serve_directory(index_root(tmp_path), routes=routes) as server:
        code, out, err = ask(capsys, server.url, tmp_path / "cache")
        assert server.requests == [PAGE_PATH]
    line = assert_error(code, out, err, names=f"{server.url}{PAGE_PATH}")
    assert f"HTTP {status}" in line


def test_429_with_retry_after_is_honoured(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    routes = {PAGE_PATH: [Response(429, {"Retry-After": "1"}, b"slow down"), _page_response()]}
    with serve_directory(index_root(tmp_path), routes=routes) as server:
        started = time.monotonic()
        result = ask(capsys, server.url, tmp_path / "cache")
        elapsed = time.monotonic() - started
        assert server.requests == [PAGE_PATH, PAGE_PATH]
    assert_planned(*result)
    assert elapsed >= 1.0


def test_429_with_a_garbage_retry_after_gives_up_quickly(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    routes = {PAGE_PATH: Response(429, {"Retry-After": "soon\x01"}, b"slow down")}
    with serve_directory(index_root(tmp_path), routes=routes) as server:
        started = time.monotonic()
        code, out, err = ask(capsys, server.url, tmp_path / "cache")
        assert time.monotonic() - started < 5
    line = assert_error(code, out, err, names=f"{server.url}{PAGE_PATH}")
    assert "HTTP 429" in line


def test_a_301_loop_is_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    routes = {PAGE_PATH: Response(301, {"Location": PAGE_PATH}, b"")}
    with serve_directory(index_root(tmp_path), routes=routes) as server:
        code, out, err = ask(capsys, server.url, tmp_path / "cache")
    line = assert_error(code, out, err, names=f"{server.url}{PAGE_PATH}")
    assert "redirect" in line.lower()


@pytest.mark.parametrize(
    ("location", "refused"),
    [
        ("ftp://mirror.example.org/whl/cu101/torch/", "not an http(s) URL"),
        ("http://mirror.example.org/whl/cu101/torch/", "refusing plain http://"),
        ("file:///etc/passwd", "not an http(s) URL"),
    ],
)
def test_a_redirect_where_plain_http_is_refused_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, location: str, refused: str
) -> None:
    routes = {PAGE_PATH: Response(302, {"Location": location}, b"")}
    with serve_directory(index_root(tmp_path), routes=routes) as server:
        code, out, err = ask(capsys, server.url, tmp_path / "cache")
    line = assert_error(code, out, err, names=refused)
    assert location.split("://")[1].split("/")[0] in line or location in line


def test_a_redirect_to_a_good_page_is_followed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root = index_root(tmp_path)
    (root / "moved").mkdir()
    (root / "moved" / "index.html").write_bytes(PAGE)
    routes = {PAGE_PATH: Response(301, {"Location": "/moved/"}, b"")}
    with serve_directory(root, routes=routes) as server:
        assert_planned(*ask(capsys, server.url, tmp_path / "cache"))


def test_a_304_without_a_cached_copy_is_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    routes = {PAGE_PATH: Response(304, {}, b"")}
    with serve_directory(index_root(tmp_path), routes=routes) as server:
        code, out, err = ask(capsys, server.url, tmp_path / "cache")
    line = assert_error(code, out, err, names=f"{server.url}{PAGE_PATH}")
    assert "HTTP 304" in line


_PEP691 = "application/vnd.pypi.simple.v1+json"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"{not json", id="invalid-json"),
        pytest.param(b"", id="empty"),
        pytest.param(PAGE, id="html-claiming-json"),
        pytest.param(b'{"files": {"a": 1}}', id="files-not-a-list"),
        pytest.param(b'{"meta": {}}', id="no-files"),
        pytest.param(b"[1, 2, 3]", id="a-list"),
        pytest.param(b'{"files": [{"url": 5}]}', id="url-a-number"),
        pytest.param(b'{"files": ["torch.whl"]}', id="entry-a-string"),
        pytest.param(b'{"files": [{"url": "t.whl", "hashes": "abc"}]}', id="hashes-a-string"),
        pytest.param(b'{"files": [{"url": "http://[::1/t.whl"}]}', id="url-unparsable"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested-100k-deep"),
        pytest.param(b'{"files": [], "files": 7}', id="duplicate-key"),
        pytest.param(b"\xff\xfe{\x00}", id="utf16-junk"),
    ],
)
def test_a_broken_pep691_page_is_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, body: bytes
) -> None:
    routes = {PAGE_PATH: _page_response(body, _PEP691)}
    with serve_directory(index_root(tmp_path), routes=routes) as server:
        code, out, err = ask(capsys, server.url, tmp_path / "cache")
    line = assert_error(code, out, err, names=f"{server.url}{PAGE_PATH}")
    assert "malformed" in line
    assert not (tmp_path / "cache" / "pages").exists() or not any(
        (tmp_path / "cache" / "pages").iterdir()
    )  # a page that did not parse is not kept


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(_html(_link("http://[::1/whl/" + WHEEL)), id="link-host-unparsable"),
        pytest.param(
            b'<html><base href="http://[::1/"><a href="t.whl">t</a></html>', id="base-unparsable"
        ),
    ],
)
def test_an_html_page_with_an_unparsable_link_is_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, body: bytes
) -> None:
    routes = {PAGE_PATH: _page_response(body)}
    with serve_directory(index_root(tmp_path), routes=routes) as server:
        code, out, err = ask(capsys, server.url, tmp_path / "cache")
    assert_error(code, out, err, names=f"{server.url}{PAGE_PATH}")


def test_a_page_of_100k_links_is_read_in_time(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    noise = "".join(
        _link(f"/whl/cu101/torch-0.{i}.0-cp38-cp38-linux_x86_64.whl") for i in range(100_000)
    )
    body = _html(noise + _link(f"/whl/cu101/{WHEEL.replace('+', '%2B')}", WHEEL))
    routes = {PAGE_PATH: _page_response(body)}
    with serve_directory(index_root(tmp_path), routes=routes) as server:
        started = time.monotonic()
        assert_planned(*ask(capsys, server.url, tmp_path / "cache"))
        assert time.monotonic() - started < 20


_BAD_HASHES = [
    "sha256=" + "z" * 64,
    "sha256=" + "a" * 63,
    "sha256=" + "a" * 65,
    "sha256=",
    "sha256=" + "a" * 10_000,
    "md5=" + "a" * 32,
    "sha256=" + "\x1b[2J" * 16,
]


@pytest.mark.parametrize("fragment", _BAD_HASHES, ids=lambda f: f[:12].encode().hex())
def test_links_with_bad_hashes_are_planned_without_a_hash_and_refused_on_demand(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fragment: str
) -> None:
    href = f"/whl/cu101/{WHEEL.replace('+', '%2B')}#{fragment}"
    routes = {PAGE_PATH: _page_response(_html(_link(href, WHEEL)))}
    with serve_directory(index_root(tmp_path), routes=routes) as server:
        code, out, err = ask(capsys, server.url, tmp_path / "cache")
        assert_planned(code, out, err)
        assert f"warning: the index gives no sha256 for {WHEEL}" in err
        code, out, err = ask(capsys, server.url, tmp_path / "cache2", "--require-hashes")
    assert_error(code, out, err, names=WHEEL)


def test_an_unknown_charset_and_invalid_utf8_still_plan(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    body = PAGE.replace(b"<h1>", b"<h1>\xff\xfe\xc3(")
    routes = {PAGE_PATH: _page_response(body, "text/html; charset=x-no-such-charset")}
    with serve_directory(index_root(tmp_path), routes=routes) as server:
        assert_planned(*ask(capsys, server.url, tmp_path / "cache"))


def test_an_empty_200_is_no_wheel(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    routes = {PAGE_PATH: _page_response(b"")}
    with serve_directory(index_root(tmp_path), routes=routes) as server:
        code, out, err = ask(capsys, server.url, tmp_path / "cache")
    assert_error(code, out, err, names="no wheel of torch==1.7.1")


def test_a_no_store_page_is_fetched_each_time_and_never_kept(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    routes = {PAGE_PATH: _page_response(PAGE, **{"Cache-Control": "no-store"})}
    with serve_directory(index_root(tmp_path), routes=routes) as server:
        assert_planned(*ask(capsys, server.url, tmp_path / "cache"))
        assert_planned(*ask(capsys, server.url, tmp_path / "cache"))
        assert server.requests == [PAGE_PATH, PAGE_PATH]
    pages = tmp_path / "cache" / "pages"
    assert not pages.exists() or not any(pages.iterdir())


def test_a_gzipped_page_that_says_so_is_read(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    routes = {PAGE_PATH: _page_response(gzip.compress(PAGE), **{"Content-Encoding": "gzip"})}
    with serve_directory(index_root(tmp_path), routes=routes) as server:
        assert_planned(*ask(capsys, server.url, tmp_path / "cache"))


# -- fake nvidia-smi on PATH --------------------------------------------------------------


def fake_smi(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str | bytes, mode: int = 0o755
) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    tool = folder / "nvidia-smi"
    if isinstance(body, str):
        tool.write_text(body, encoding="utf-8")
    else:
        tool.write_bytes(body)
    tool.chmod(mode)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return tool


def detect_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> dict[str, Any]:
    code = main(["detect", "--json"], env={"TORCHFIT_CACHE_DIR": str(tmp_path / "cache")})
    out, err = capsys.readouterr()
    assert_clean(out, err)
    assert code == 0, err
    found: dict[str, Any] = json.loads(out)
    return found


def smi_outcome(found: dict[str, Any]) -> str:
    (probe,) = [p for p in found["trace"] if p["source"] == "nvidia-smi"]
    outcome: str = probe["outcome"]
    return outcome


_EXIT9 = (
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
    "Make sure that the latest NVIDIA driver is installed and running."
)
_OLD_DRIVER = (
    '#!/bin/sh\ncase "$*" in\n'
    "  *compute_cap*) echo 'Field \"compute_cap\" is not a valid field to query.'; exit 2 ;;\n"
    "  *) echo '470.82.01, Tesla K80' ;;\nesac\n"
)

SMI_FAULTS = [
    # body, what the trace says, the driver found (None: none)
    pytest.param("#!/bin/sh\necho 'hello, world'\n", "unparsable output", None, id="garbage"),
    pytest.param("#!/bin/sh\nexit 0\n", "unparsable output", None, id="prints-nothing"),
    pytest.param(
        f'#!/bin/sh\necho "{_EXIT9}"\nexit 9\n',
        "exit status 9: NVIDIA-SMI has failed",
        None,
        id="exit-9",
    ),
    pytest.param("#!/bin/sh\nkill -SEGV $$\n", "exit status", None, id="segfault"),
    pytest.param(
        "#!/bin/sh\necho '99999999.1, Tesla T4, 7.5'\n",
        "unparsable output",
        None,
        id="driver-too-long",
    ),
    pytest.param(
        "#!/bin/sh\nhead -c 10000000 /dev/zero | tr '\\0' 7\n",
        "unparsable output",
        None,
        id="ten-megabytes",
    ),
    pytest.param(
        "#!/bin/sh\nprintf '\\033[2J\\033]0;pwned\\007\\000\\377\\n'\n",
        "unparsable output",
        None,
        id="escape-sequences",
    ),
    pytest.param(
        "#!/bin/sh\nprintf '550.54.14, Tesla\\033]0;pwned\\007 T4, 7.5\\n'\n",
        "driver 550.54.14",
        "550.54.14",
        id="escape-in-gpu-name",
    ),
    pytest.param(
        "#!/bin/sh\nprintf '550.54.14, [N/A], [Not Supported]\\n[N/A], B, 8.0\\n'\n",
        "driver 550.54.14",
        "550.54.14",
        id="not-available-fields",
    ),
    pytest.param(_OLD_DRIVER, "cannot report compute capability", "470.82.01", id="old-driver"),
    pytest.param(
        b"\x7fELF\x02\x01\x01garbage" + _JUNK[:200], "could not run", None, id="broken-binary"
    ),
]


@pytest.mark.parametrize(("body", "outcome", "driver"), SMI_FAULTS)
def test_a_broken_nvidia_smi_is_a_line_of_the_trace(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    body: str | bytes,
    outcome: str,
    driver: str | None,
) -> None:
    fake_smi(tmp_path, monkeypatch, body)
    found = detect_json(capsys, tmp_path)
    assert outcome in smi_outcome(found)
    assert found["driver_version"] == driver
    assert len(json.dumps(found)) < 50_000  # what it printed is kept bounded
    # And as text: one line per probe, every byte printable.
    code = main(["detect"], env={"TORCHFIT_CACHE_DIR": str(tmp_path / "cache")})
    out, err = capsys.readouterr()
    assert code == 0
    assert_clean(out, err)


def test_a_nvidia_smi_that_is_not_executable_is_not_run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake_smi(tmp_path, monkeypatch, "#!/bin/sh\necho '550.54.14, T4, 7.5'\n", mode=0o644)
    found = detect_json(capsys, tmp_path)
    assert found["driver_version"] is None
    assert "could not run" in smi_outcome(found) or "not installed" in smi_outcome(found)


def test_a_hanging_nvidia_smi_is_cut_at_the_deadline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake_smi(tmp_path, monkeypatch, "#!/bin/sh\nexec sleep 20\n")
    started = time.monotonic()
    found = detect(nvml=None, timeout=0.5, proc_version=tmp_path / "absent")
    assert time.monotonic() - started < 3
    assert found.driver_version is None and found.suspected_gpu
    assert [p.outcome for p in found.trace if p.source == "nvidia-smi"] == ["timed out after 0.5s"]


def test_a_hanging_nvidia_smi_wrapper_is_cut_at_the_deadline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A grandchild (nvidia-smi as a wrapper script, without exec) holds the pipes: the
    deadline must end it too, not wait for it (was a bug: only the child was killed)."""
    fake_smi(tmp_path, monkeypatch, "#!/bin/sh\nsleep 4\necho done\n")
    started = time.monotonic()
    found = detect(nvml=None, timeout=0.5, proc_version=tmp_path / "absent")
    elapsed = time.monotonic() - started
    assert [p.outcome for p in found.trace if p.source == "nvidia-smi"] == ["timed out after 0.5s"]
    assert elapsed < 3


def test_a_garbage_nvidia_smi_through_the_real_command(tmp_path: Path) -> None:
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "nvidia-smi").write_text(
        "#!/bin/sh\nprintf 'Segmentation \\033[31mfault\\n'\nexit 139\n"
    )
    (folder / "nvidia-smi").chmod(0o755)
    env = {**os.environ, "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}
    env["TORCHFIT_CACHE_DIR"] = str(tmp_path / "cache")
    done = subprocess.run(
        [sys.executable, "-m", "torchfit", "detect"], capture_output=True, env=env, timeout=60
    )
    assert done.returncode == 0
    assert not re.search(rb"[\x00-\x09\x0b-\x1f\x7f]", done.stdout + done.stderr)
    assert b"exit status 139: Segmentation \\x1b[31mfault" in done.stdout
    assert b"Traceback" not in done.stderr


# -- NVML modules that hang, raise or lie (passed as parameters) -----------------------


class HangingNVML:
    """An NVML module whose ``where`` call blocks until ``release`` is set."""

    class NVMLError(Exception):
        pass

    def __init__(self, where: str) -> None:
        self.where = where
        self.release = threading.Event()

    def _maybe_hang(self, name: str) -> None:
        if name == self.where:
            self.release.wait(30)

    def nvmlInit(self) -> None:
        self._maybe_hang("nvmlInit")

    def nvmlShutdown(self) -> None:
        pass

    def nvmlSystemGetDriverVersion(self) -> str:
        self._maybe_hang("nvmlSystemGetDriverVersion")
        return "550.54.14"

    def nvmlSystemGetCudaDriverVersion_v2(self) -> int:
        return 12040

    def nvmlDeviceGetCount(self) -> int:
        self._maybe_hang("nvmlDeviceGetCount")
        return 1

    def nvmlDeviceGetHandleByIndex(self, index: int) -> object:
        return object()

    def nvmlDeviceGetName(self, handle: object) -> str:
        self._maybe_hang("nvmlDeviceGetName")
        return "Tesla T4"

    def nvmlDeviceGetCudaComputeCapability(self, handle: object) -> tuple[int, int]:
        return (7, 5)


@pytest.mark.parametrize(
    "where", ["nvmlInit", "nvmlSystemGetDriverVersion", "nvmlDeviceGetCount", "nvmlDeviceGetName"]
)
def test_a_hanging_nvml_is_abandoned_at_the_deadline(tmp_path: Path, where: str) -> None:
    nvml = HangingNVML(where)
    try:
        started = time.monotonic()
        found = detect(nvml=nvml, runner=_no_smi, timeout=0.5, proc_version=tmp_path / "absent")
        assert time.monotonic() - started < 3
        outcomes = {p.source: p.outcome for p in found.trace}
        assert outcomes["nvml"] == "timed out after 0.5s"
        assert found.driver_version is None and found.suspected_gpu
        # Asking again does not leave a second thread on the same wedged driver.
        again = detect(nvml=nvml, runner=_no_smi, timeout=0.5, proc_version=tmp_path / "absent")
        assert {p.source: p.outcome for p in again.trace}["nvml"].startswith("skipped: an earlier")
    finally:
        nvml.release.set()


def _no_smi(argv: Any, **kwargs: Any) -> Any:
    from torchfit._runner import Completed

    return Completed(127, "", "", "not found")


class LyingNVML:
    """Every call answers, with values no driver gives."""

    class NVMLError(Exception):
        pass

    def nvmlInit(self) -> None:
        pass

    def nvmlShutdown(self) -> None:
        raise RuntimeError("shutdown \x1b[2J failed")

    def nvmlSystemGetDriverVersion(self) -> bytes:
        return b"\xff\xfe550.54.14\x1b[2J" * 100_000

    def nvmlSystemGetCudaDriverVersion_v2(self) -> int:
        return -(10**30)

    def nvmlDeviceGetCount(self) -> int:
        return 10**9

    def nvmlDeviceGetHandleByIndex(self, index: int) -> object:
        if index % 2:
            raise self.NVMLError("Invalid Argument")
        return object()

    def nvmlDeviceGetName(self, handle: object) -> str:
        return "\u202eGPU\x1b]0;x\x07" + "N" * MEGABYTE_TEXT

    def nvmlDeviceGetCudaComputeCapability(self, handle: object) -> Any:
        return ("8", None)


class RaisingNVML:
    """nvmlInit raises what the bindings should not: SystemExit, or not an NVMLError."""

    class NVMLError(Exception):
        pass

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def nvmlInit(self) -> None:
        raise self.error


class ExplodingModule:
    """A module object whose every attribute lookup raises."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"no {name} for you")


@pytest.mark.parametrize(
    ("nvml", "outcome"),
    [
        pytest.param(LyingNVML(), "initialised, but no driver version", id="lying"),
        pytest.param(RaisingNVML(SystemExit(3)), "SystemExit", id="system-exit"),
        pytest.param(RaisingNVML(RuntimeError("boom")), "nvmlInit failed", id="runtime-error"),
        pytest.param(RaisingNVML(MemoryError()), "MemoryError", id="memory-error"),
        pytest.param(ExplodingModule(), "failed", id="exploding-attributes"),
    ],
)
def test_an_nvml_that_raises_or_lies_is_a_line_of_the_trace(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, nvml: Any, outcome: str
) -> None:
    started = time.monotonic()
    found = detect(nvml=nvml, runner=_no_smi, timeout=5, proc_version=tmp_path / "absent")
    assert time.monotonic() - started < 5
    probe = next(p for p in found.trace if p.source == "nvml")
    assert outcome in probe.outcome
    assert len(json.dumps(found.to_json())) < 50_000
    assert found.driver_version is None


# -- /proc/driver/nvidia/version that is not what it should be ---------------------------


@pytest.mark.parametrize(
    ("content", "outcome"),
    [
        pytest.param(None, "unreadable", id="a-directory"),
        pytest.param(_JUNK, "unparsable output", id="binary-junk"),
        pytest.param(b"NVRM version: " + b"9" * 10_000_000, "unparsable output", id="ten-MB-line"),
        pytest.param(b"", "unparsable output", id="empty"),
    ],
)
def test_a_damaged_proc_file_is_a_line_of_the_trace(
    tmp_path: Path, content: bytes | None, outcome: str
) -> None:
    path = tmp_path / "version"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    found = detect(nvml=None, runner=_no_smi, proc_version=path, os="linux")
    probe = next(p for p in found.trace if p.source == "/proc/driver/nvidia/version")
    assert outcome in probe.outcome
    assert found.driver_version is None
    assert len(json.dumps(found.to_json())) < 50_000


# -- a damaged cache ----------------------------------------------------------------------


def _cache_files(cache: Path, kind: str) -> list[Path]:
    folder = cache / kind
    return sorted(folder.iterdir()) if folder.is_dir() else []


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda cache: cache.write_text("not a folder"), id="cache-dir-is-a-file"),
        pytest.param(
            lambda cache: (cache.mkdir(), (cache / "pages").write_text("x")),
            id="pages-is-a-file",
        ),
        pytest.param(
            lambda cache: (cache.mkdir(), (cache / "plans").write_text("x")),
            id="plans-is-a-file",
        ),
        pytest.param(lambda cache: cache.symlink_to(cache), id="cache-dir-symlink-loop"),
    ],
)
def test_a_cache_that_cannot_be_used_is_no_error(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    damage: Callable[[Path], Any],
) -> None:
    cache = tmp_path / "cache"
    damage(cache)
    with serve_directory(index_root(tmp_path)) as server:
        assert_planned(*ask(capsys, server.url, cache))
        assert_planned(*ask(capsys, server.url, cache))


_WRONG_SHAPES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "list": lambda entry: [entry],
    "other-url": lambda entry: {**entry, "url": entry["url"] + "x"},
    "body-a-number": lambda entry: {**entry, "body": 5},
    "no-body": lambda entry: {k: v for k, v in entry.items() if k != "body"},
    "stored-at-text": lambda entry: {**entry, "stored_at": "yesterday"},
    "lifetime-true": lambda entry: {**entry, "lifetime": True},
    "fresh-junk-json-body": lambda entry: {**entry, "content_type": _PEP691, "body": "{"},
}


@pytest.mark.parametrize(
    "shape",
    [
        *_WRONG_SHAPES,
        "invalid-json",
        "nan",
        "empty",
        "directory",
        "huge-integer",  # was a bug: 10**400 made math.isfinite raise OverflowError
    ],
)
def test_a_damaged_page_entry_is_a_miss(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, shape: str
) -> None:
    cache = tmp_path / "cache"
    with serve_directory(index_root(tmp_path)) as server:
        assert_planned(*ask(capsys, server.url, cache))
        (entry_path,) = _cache_files(cache, "pages")
        entry = json.loads(entry_path.read_text(encoding="utf-8"))
        if shape == "invalid-json":
            entry_path.write_bytes(b'{"url": "' + _JUNK[:300])
        elif shape == "nan":
            entry_path.write_text(json.dumps({**entry, "lifetime": float("nan")}))
        elif shape == "huge-integer":
            entry_path.write_text(json.dumps({**entry, "stored_at": 10**400}))
        elif shape == "empty":
            entry_path.write_bytes(b"")
        elif shape == "directory":
            entry_path.unlink()
            entry_path.mkdir()
        else:
            entry_path.write_text(json.dumps(_WRONG_SHAPES[shape](entry)), encoding="utf-8")
        assert_planned(*ask(capsys, server.url, cache))
        assert server.requests == [PAGE_PATH, PAGE_PATH]  # the damaged entry was a miss
    if shape != "directory":  # a folder in the way cannot be replaced by a file
        rewritten = json.loads(entry_path.read_text(encoding="utf-8"))
        assert CachedPage.from_json(rewritten, entry["url"]) is not None


@pytest.mark.parametrize("kind", ["dangling-symlink", "symlink-loop", "fifo", "unreadable"])
def test_a_page_entry_that_is_no_file_is_a_miss(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, kind: str
) -> None:
    if kind == "unreadable" and os.geteuid() == 0:
        pytest.skip("root reads a file of mode 000")
    cache = tmp_path / "cache"
    with serve_directory(index_root(tmp_path)) as server:
        assert_planned(*ask(capsys, server.url, cache))
        (entry_path,) = _cache_files(cache, "pages")
        if kind == "unreadable":
            entry_path.chmod(0)
        else:
            entry_path.unlink()
        if kind == "dangling-symlink":
            entry_path.symlink_to(tmp_path / "nowhere")
        elif kind == "symlink-loop":
            entry_path.symlink_to(entry_path)
        elif kind == "fifo":
            os.mkfifo(entry_path)
        started = time.monotonic()
        assert_planned(*ask(capsys, server.url, cache))
        assert time.monotonic() - started < 10  # a FIFO is never opened
        assert server.requests == [PAGE_PATH, PAGE_PATH]


def test_a_damaged_page_entry_offline_falls_back_to_the_snapshots(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    with serve_directory(index_root(tmp_path)) as server:
        assert_planned(*ask(capsys, server.url, cache))
        (entry_path,) = _cache_files(cache, "pages")
        entry_path.write_bytes(_JUNK[:1000])
        code, out, err = ask(capsys, server.url, cache, "--offline", "--json")
        assert server.requests == [PAGE_PATH]
    assert code == 0, err
    assert_clean(out, err)
    plan = json.loads(out)
    assert plan["packages"][0]["filename"] == WHEEL
    assert [p["origin"] for p in plan["pages"]] == ["snapshot"]


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(lambda key: _JUNK[:200], id="junk"),
        pytest.param(lambda key: b"[]", id="a-list"),
        pytest.param(lambda key: json.dumps({"key": "other"}).encode(), id="other-key"),
        pytest.param(
            lambda key: json.dumps(
                {"key": key, "expires": 1e300, "pages": "x", "plan": {}}
            ).encode(),
            id="pages-not-a-list",
        ),
        pytest.param(
            lambda key: json.dumps(
                {"key": key, "expires": 1e300, "pages": [], "plan": {}}
            ).encode(),
            id="plan-empty",  # was a bug: KeyError, an internal error
        ),
        pytest.param(
            lambda key: json.dumps(
                {"key": key, "expires": 1e300, "pages": [], "plan": {"pages": [7]}}
            ).encode(),
            id="plan-pages-numbers",  # was a bug: TypeError from recall
        ),
    ],
)
def test_a_damaged_memo_is_a_miss(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, answer: Callable[[str], bytes]
) -> None:
    cache = tmp_path / "cache"
    with serve_directory(index_root(tmp_path)) as server:
        assert_planned(*ask(capsys, server.url, cache))
        (memo,) = _cache_files(cache, "plans")
        memo.write_bytes(answer(memo.name))
        assert_planned(*ask(capsys, server.url, cache))


# -- ten processes, one cache, one server -------------------------------------------------


def test_ten_parallel_plans_share_one_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with serve_directory(index_root(tmp_path)) as server:
        env = {**os.environ, "TORCHFIT_CACHE_DIR": str(cache)}
        argv = [sys.executable, "-m", "torchfit", *QUESTION, "--json"]
        argv += ["--pytorch-index", f"{server.url}/whl"]
        children = [
            subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
            for _ in range(10)
        ]
        results = [child.communicate(timeout=120) for child in children]
        codes = [child.returncode for child in children]
    assert codes == [0] * 10, [err.decode()[-1000:] for _, err in results]
    answers = []
    for out, err in results:
        assert b"Traceback" not in err and b"error:" not in err
        plan = json.loads(out)
        answers.append(json.dumps([plan["variant"], plan["packages"], plan["reasons"]]))
    assert len(set(answers)) == 1
    assert json.loads(answers[0])[1][0]["filename"] == WHEEL
    # Every file the ten left behind reads back, each of its kind's shape; no temporaries.
    files = [path for path in cache.rglob("*") if path.is_file()]
    assert files
    for path in files:
        assert not path.name.endswith(".tmp"), path
        data = json.loads(path.read_text(encoding="utf-8"))
        kind = path.parent.name
        if kind == "pages":
            assert CachedPage.from_json(data, data["url"]) is not None, path
        elif kind == "plans":
            assert data["key"] == path.name and isinstance(data["plan"], dict), path
            assert data["plan"]["packages"][0]["filename"] == WHEEL
        else:
            raise AssertionError(f"unexpected cache file {path}")
    assert {p.parent.name for p in files} == {"pages", "plans"}


def test_a_cache_dir_shared_with_a_half_written_temporary(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A writer killed mid-write leaves its temporary; the next run is not confused by it."""
    cache = tmp_path / "cache"
    with serve_directory(index_root(tmp_path)) as server:
        assert_planned(*ask(capsys, server.url, cache))
        (entry_path,) = _cache_files(cache, "pages")
        stray = entry_path.with_name(entry_path.name + ".999.1.tmp")
        stray.write_bytes(b'{"url": "half')
        shutil.copy(entry_path, entry_path.with_name("f" * 64))  # an entry for no URL asked
        assert_planned(*ask(capsys, server.url, cache, "--refresh"))


# -- what a server's caching headers can do to the next run ---------------------------


@pytest.mark.parametrize(
    "validator",
    [{"ETag": '"caf\xe9"'}, {"Last-Modified": "Mon, 01 Jan 2024 00:00:00 G\xe9T"}],
    ids=["etag", "last-modified"],
)
def test_a_non_ascii_validator_does_not_poison_the_cache(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, validator: dict[str, str]
) -> None:
    """Was a bug: the validator was kept and sent back, which httpx cannot encode
    (UnicodeEncodeError, an internal error on every later run)."""
    routes = {PAGE_PATH: _page_response(PAGE, **{"Cache-Control": "no-cache", **validator})}
    with serve_directory(index_root(tmp_path), routes=routes) as server:
        assert_planned(*ask(capsys, server.url, tmp_path / "cache"))
        assert_planned(*ask(capsys, server.url, tmp_path / "cache"))  # revalidates


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Expires": "garbage\xff"}, id="expires-garbage"),
        pytest.param({"Cache-Control": "max-age=60", "Age": "-5"}, id="age-negative"),
        pytest.param({"Cache-Control": "max-age=-1"}, id="max-age-negative"),
        pytest.param({"Cache-Control": 'max-age="abc", no-transform'}, id="max-age-word"),
        pytest.param({"Cache-Control": ",,,;;;===="}, id="cache-control-junk"),
        pytest.param({"Date": "yesterday", "Expires": "Thu, 01 Jan 1970 00:00:00 GMT"}, id="date"),
        pytest.param({"ETag": "W/", "Last-Modified": "\xff"}, id="validators-junk"),
    ],
)
def test_absurd_caching_headers_still_plan_twice(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, headers: dict[str, str]
) -> None:
    routes = {PAGE_PATH: _page_response(PAGE, **headers)}
    with serve_directory(index_root(tmp_path), routes=routes) as server:
        assert_planned(*ask(capsys, server.url, tmp_path / "cache"))
        assert_planned(*ask(capsys, server.url, tmp_path / "cache"))


def test_an_absurd_max_age_is_capped_not_discarded(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """RFC 9111 1.2.2: a max-age too large to hold counts as 2147483648 seconds (was a bug:
    an infinite lifetime, written as 'Infinity', read back as no time, never cached)."""
    routes = {PAGE_PATH: _page_response(PAGE, **{"Cache-Control": "max-age=" + "9" * 5000})}
    with serve_directory(index_root(tmp_path), routes=routes) as server:
        assert_planned(*ask(capsys, server.url, tmp_path / "cache"))
        assert_planned(*ask(capsys, server.url, tmp_path / "cache"))
        assert server.requests == [PAGE_PATH]


# -- links that lead elsewhere ------------------------------------------------------------

_QUOTED = WHEEL.replace("+", "%2B")


@pytest.mark.parametrize(
    ("href", "named"),
    [
        (f"http://evil.example/whl/{_QUOTED}", "refusing plain http:// for evil.example"),
        (f"//evil.example/{_QUOTED}", "refusing plain http:// for evil.example"),
        (f"ftp://evil.example/{_QUOTED}", "not an http(s) URL"),
        (f"file:///etc/{_QUOTED}", "not an http(s) URL"),
        (f"javascript:alert(1)/{_QUOTED}", "not an http(s) URL"),
        (f"data:text/plain,{_QUOTED}", "no wheel of torch==1.7.1"),
        (f"/whl/cu101/..%2F..%2F{_QUOTED}", "no wheel of torch==1.7.1"),
    ],
)
def test_a_link_that_leads_where_torchfit_will_not_go_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, href: str, named: str
) -> None:
    routes = {PAGE_PATH: _page_response(_html(_link(href, WHEEL)))}
    with serve_directory(index_root(tmp_path), routes=routes) as server:
        code, out, err = ask(capsys, server.url, tmp_path / "cache")
    assert_error(code, out, err, names=named)


# -- a proxy that fails --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("respond", "said"),
    [
        pytest.param(
            send(head("407 Proxy Authentication Required", Content_Length=0)), "HTTP 407", id="407"
        ),
        pytest.param(reset_after(b""), "could not reach", id="reset"),
        pytest.param(send(b"garbage\r\n\r\n"), "could not reach", id="garbage"),
        pytest.param(hang, "did not answer within 2s", id="hang"),
    ],
)
def test_a_broken_proxy_is_one_error_naming_the_url(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    respond: Callable[[socket.socket, bytes, int], None],
    said: str,
) -> None:
    for name in [n for n in os.environ if n.lower() in ("no_proxy", "all_proxy", "http_proxy")]:
        monkeypatch.delenv(name)
    with raw_server(respond) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        base = "http://127.0.0.1:9"  # the discard port: only the proxy is asked
        code, out, err = ask(capsys, base, tmp_path / "cache")
        assert proxy.requests and proxy.requests[0].startswith(f"GET {base}{PAGE_PATH} ".encode())
    line = assert_error(code, out, err, names=f"{base}{PAGE_PATH}")
    assert said in line


# -- downloads that break (the installer's edge, against the same servers) ----------------


@pytest.mark.parametrize(
    ("respond", "said"),
    [
        pytest.param(
            send(head(Content_Length=1000) + b"x" * 10), "could not download", id="truncated"
        ),
        pytest.param(
            reset_after(head(Content_Length=100_000) + b"x" * 5000),
            "could not download",
            id="reset-mid-body",
        ),
        pytest.param(hang_after(head(Content_Length=100) + b"x"), "did not answer", id="hang"),
        pytest.param(send(head("404 Not Found", Content_Length=0)), "HTTP 404", id="404"),
        pytest.param(
            send(head(Content_Encoding="gzip", Content_Length=10) + b"x" * 10),
            "could not download",
            id="gzip-that-is-not",
        ),
    ],
)
def test_a_broken_download_is_one_error_naming_the_url(
    tmp_path: Path, respond: Callable[[socket.socket, bytes, int], None], said: str
) -> None:
    from torchfit.errors import IndexFetchError
    from torchfit.index.http import Http

    with raw_server(respond) as server:
        url = f"{server.url}/whl/cu101/{_QUOTED}"
        client = Http(timeout=1, sleep=lambda seconds: None)
        try:
            with pytest.raises(IndexFetchError) as caught:
                client.download(url, tmp_path / "wheel.whl")
        finally:
            client.close()
    message = str(caught.value)
    assert url in message and said in message
    assert "\n" not in message and not _CONTROL.search(message)


def test_a_download_into_a_missing_folder_names_the_file(tmp_path: Path) -> None:
    from torchfit.errors import IndexFetchError
    from torchfit.index.http import Http

    root = index_root(tmp_path)
    (root / "whl" / "cu101" / "t.whl").write_bytes(b"wheel")
    with serve_directory(root) as server:
        client = Http(timeout=2)
        try:
            with pytest.raises(IndexFetchError, match=r"could not write .*missing"):
                client.download(f"{server.url}/whl/cu101/t.whl", tmp_path / "missing" / "t.whl")
        finally:
            client.close()
