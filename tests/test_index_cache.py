"""The page cache against a loopback server: freshness, revalidation, damage, imports."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support import Response, serve_directory
from torchfit.errors import IndexFetchError
from torchfit.index.cache import DEFAULT_LIFETIME, freshness_lifetime
from torchfit.index.client import IndexClient
from torchfit.index.pages import JSON_CONTENT_TYPE
from torchfit.variants import Variant

CPU = Variant("cpu")
PAGE = b'<a href="/whl/cpu/torch-2.8.0%2Bcpu-cp312-cp312-win_amd64.whl">t</a>\n'
START = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def index(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "root" / "whl" / "cpu" / "torch"
    folder.mkdir(parents=True)
    (folder / "index.html").write_bytes(PAGE)
    yield tmp_path / "root"


def open_client(url: str, cache: Path, clock: Callable[[], float], **options: bool) -> IndexClient:
    return IndexClient(f"{url}/whl", cache_dir=cache, clock=clock, **options)


def origins(url: str, cache: Path, clock: Clock, **options: bool) -> list[str]:
    with open_client(url, cache, clock, **options) as client:
        assert len(client.links("torch", CPU)) == 1
    return [record.origin for record in client.records]


def test_a_fresh_page_is_answered_without_a_request(index: Path, tmp_path: Path) -> None:
    clock, cache = Clock(), tmp_path / "cache"
    with serve_directory(index) as server:
        assert origins(server.url, cache, clock) == ["network"]
        clock.now += DEFAULT_LIFETIME - 1
        assert origins(server.url, cache, clock) == ["cache (fresh)"]
        assert len(server.requests) == 1
        clock.now += 2  # now stale: one conditional request, answered 304
        assert origins(server.url, cache, clock) == ["cache (revalidated)"]
        assert server.received[-1].headers.get("If-None-Match")
        clock.now += DEFAULT_LIFETIME - 1  # the 304 made it fresh again
        assert origins(server.url, cache, clock) == ["cache (fresh)"]
        assert len(server.requests) == 2


def test_refresh_revalidates_a_fresh_page(index: Path, tmp_path: Path) -> None:
    clock, cache = Clock(), tmp_path / "cache"
    with serve_directory(index) as server:
        origins(server.url, cache, clock)
        assert origins(server.url, cache, clock, refresh=True) == ["cache (revalidated)"]
        assert "If-None-Match" in server.received[-1].headers


def test_a_changed_page_replaces_the_cached_one(index: Path, tmp_path: Path) -> None:
    clock, cache = Clock(), tmp_path / "cache"
    with serve_directory(index) as server:
        origins(server.url, cache, clock)
        page = index / "whl" / "cpu" / "torch" / "index.html"
        page.write_bytes(PAGE + PAGE.replace(b"2.8.0", b"2.9.0"))
        with open_client(server.url, cache, clock, refresh=True) as client:
            assert len(client.links("torch", CPU)) == 2
        assert [r.origin for r in client.records] == ["network"]
        with open_client(server.url, cache, clock) as client:
            assert len(client.links("torch", CPU)) == 2  # the new body, fresh from the cache


def test_the_server_max_age_is_honoured(tmp_path: Path) -> None:
    clock, cache = Clock(), tmp_path / "cache"
    headers = {"Cache-Control": "max-age=30", "ETag": '"v1"', "Content-Type": "text/html"}
    routes = {
        "/whl/cpu/torch/": [Response(200, headers, PAGE), Response(304, {"ETag": '"v1"'}, b"")]
    }
    with serve_directory(tmp_path, routes) as server:
        assert origins(server.url, cache, clock) == ["network"]
        clock.now += 29
        assert origins(server.url, cache, clock) == ["cache (fresh)"]
        clock.now += 2
        assert origins(server.url, cache, clock) == ["cache (revalidated)"]
        clock.now += 29  # a 304 without Cache-Control keeps the page's max-age of 30 s
        assert origins(server.url, cache, clock) == ["cache (fresh)"]
        clock.now += 2
        assert origins(server.url, cache, clock) == ["cache (revalidated)"]
        assert server.requests == ["/whl/cpu/torch/"] * 3
        assert [r.headers.get("If-None-Match") for r in server.received] == [None, '"v1"', '"v1"']


def test_no_cache_revalidates_every_time(tmp_path: Path) -> None:
    clock, cache = Clock(), tmp_path / "cache"
    first = Response(200, {"Cache-Control": "no-cache", "ETag": '"v1"'}, PAGE)
    routes = {"/whl/cpu/torch/": [first, Response(304, {"Cache-Control": "no-cache"}, b"")]}
    with serve_directory(tmp_path, routes) as server:
        origins(server.url, cache, clock)
        assert origins(server.url, cache, clock) == ["cache (revalidated)"]
        assert origins(server.url, cache, clock) == ["cache (revalidated)"]
        assert len(server.requests) == 3


def test_no_store_is_never_written(tmp_path: Path) -> None:
    clock, cache = Clock(), tmp_path / "cache"
    routes = {"/whl/cpu/torch/": Response(200, {"Cache-Control": "private, no-store"}, PAGE)}
    with serve_directory(tmp_path, routes) as server:
        assert origins(server.url, cache, clock) == ["network"]
        assert origins(server.url, cache, clock) == ["network"]
        assert "If-None-Match" not in server.received[-1].headers
    assert not [path for path in cache.rglob("*") if path.is_file()]


@pytest.mark.parametrize(
    ("headers", "lifetime"),
    [
        ({}, DEFAULT_LIFETIME),
        ({"cache-control": "max-age=60"}, 60.0),
        ({"cache-control": 'public, MAX-AGE="60"', "age": "100"}, 0.0),
        ({"cache-control": "max-age=soon"}, 0.0),  # unreadable: stale, per RFC 9111
        ({"cache-control": "no-cache, max-age=60"}, 0.0),
        ({"cache-control": "max-age=60, no-store"}, None),
        (
            {"expires": "Thu, 01 Jan 2026 00:10:00 GMT", "date": "Thu, 01 Jan 2026 00:00:00 GMT"},
            600.0,
        ),
        ({"expires": "0"}, 0.0),
        ({"cache-control": "max-age=5", "expires": "Thu, 01 Jan 2026 00:10:00 GMT"}, 5.0),
    ],
)
def test_freshness_lifetime(headers: dict[str, str], lifetime: float | None) -> None:
    assert freshness_lifetime(headers, START) == lifetime


@pytest.mark.parametrize(
    "damage",
    [
        b"not json",
        b'{"url": "torn',
        b"[]",
        b"null",
        b'"a string"',
        json.dumps({"url": "{url}"}).encode(),  # no body
        json.dumps({"url": "{url}", "body": 123}).encode(),
        json.dumps({"url": "{url}", "body": ["<a>"]}).encode(),
        json.dumps({"url": "{url}", "body": "", "etag": 5}).encode(),
        json.dumps({"url": "{url}", "body": "", "stored_at": "yesterday"}).encode(),
        json.dumps({"url": "{url}", "body": "", "lifetime": True}).encode(),
        b'{"url": "{url}", "body": "", "stored_at": 0, "lifetime": Infinity}',
        json.dumps({"url": "https://elsewhere.example/", "body": "x"}).encode(),
        json.dumps(  # well-formed and fresh, but its body is no PEP 691 page
            {
                "url": "{url}",
                "body": "{{",
                "content_type": "application/vnd.pypi.simple.v1+json",
                "stored_at": START,
                "lifetime": DEFAULT_LIFETIME,
            }
        ).encode(),
        b"\xff\xfe\x00",
    ],
)
def test_a_damaged_entry_is_a_miss(
    index: Path, tmp_path: Path, damage: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    clock, cache = Clock(), tmp_path / "cache"
    with serve_directory(index) as server:
        origins(server.url, cache, clock)
        (entry,) = (cache / "pages").iterdir()
        url = f"{server.url}/whl/cpu/torch/"
        entry.write_bytes(damage.replace(b"{url}", url.encode()))
        with caplog.at_level(logging.DEBUG, logger="torchfit.index"):
            assert origins(server.url, cache, clock) == ["network"]
        assert "If-None-Match" not in server.received[-1].headers
        assert any(r.levelno == logging.DEBUG for r in caplog.records)
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
        # The refetch left a good entry behind: the next run is fresh again.
        assert origins(server.url, cache, clock) == ["cache (fresh)"]
    assert sorted(p.name for p in (cache / "pages").iterdir()) == [entry.name]


def test_offline_with_a_damaged_entry_falls_back_to_snapshots(index: Path, tmp_path: Path) -> None:
    clock, cache = Clock(), tmp_path / "cache"
    with serve_directory(index) as server:
        base = f"{server.url}/whl"
        origins(server.url, cache, clock)
    (entry,) = (cache / "pages").iterdir()
    entry.write_text("[]")
    snapshots = tmp_path / "snapshots" / "cpu" / "torch"
    snapshots.mkdir(parents=True)
    (snapshots / "index.html").write_bytes(PAGE)
    with IndexClient(base, offline=True, cache_dir=cache, snapshots=snapshots.parents[1]) as client:
        assert len(client.links("torch", CPU)) == 1
    assert [r.origin for r in client.records] == ["snapshot"]


def test_offline_and_fresh_runs_never_import_httpx(index: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with serve_directory(index) as server:
        base = f"{server.url}/whl"
        with IndexClient(base, cache_dir=cache) as client:
            client.links("torch", CPU)
        script = textwrap.dedent(
            f"""
            import sys
            from pathlib import Path
            from torchfit.index.client import IndexClient
            from torchfit.variants import Variant

            for offline in (True, False):
                with IndexClient({base!r}, offline=offline, cache_dir=Path({str(cache)!r})) as c:
                    assert c.links("torch", Variant("cpu")), offline
                    print(c.records[0].origin)
            assert "httpx" not in sys.modules, "httpx was imported"
            """
        )
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        assert len(server.requests) == 1
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["cache (offline)", "cache (fresh)"]


def test_an_entry_without_freshness_is_revalidated(tmp_path: Path) -> None:
    # What earlier torchfit versions wrote: validators, but no lifetime.
    routes = {"/whl/cpu/torch/": [Response(200, {"ETag": '"v1"'}, PAGE), Response(304, {}, b"")]}
    clock, cache = Clock(), tmp_path / "cache"
    with serve_directory(tmp_path, routes) as server:
        origins(server.url, cache, clock)
        (entry,) = (cache / "pages").iterdir()
        old = json.loads(entry.read_text())
        entry.write_text(json.dumps({k: old[k] for k in ("url", "body", "etag", "content_type")}))
        assert origins(server.url, cache, clock) == ["cache (revalidated)"]
        assert server.received[-1].headers.get("If-None-Match") == '"v1"'
        assert origins(server.url, cache, clock) == ["cache (fresh)"]


def test_a_page_that_does_not_parse_is_not_kept(tmp_path: Path) -> None:
    routes = {"/whl/cpu/torch/": Response(200, {"Content-Type": JSON_CONTENT_TYPE}, b"{}")}
    clock, cache = Clock(), tmp_path / "cache"
    with serve_directory(tmp_path, routes) as server:
        for _ in range(2):
            client = open_client(server.url, cache, clock)
            with client, pytest.raises(IndexFetchError, match="malformed PEP 691 page"):
                client.links("torch", CPU)
        assert len(server.requests) == 2
    assert not [path for path in cache.rglob("*") if path.is_file()]
