"""Wheel METADATA over a loopback server: sidecars, byte ranges, and whole-wheel fallback."""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import pytest

from support import (
    IndexServer,
    Response,
    build_wheel,
    serve_directory,
    wheel_metadata,
    write_index,
    write_metadata_sidecar,
)
from torchfit.errors import IndexFetchError
from torchfit.index.client import IndexClient
from torchfit.index.metadata import CHUNK
from torchfit.index.pages import Link
from torchfit.variants import Variant

CPU = Variant("cpu")
FOLDER = "whl/cpu/big"


def big_wheel(dest: Path) -> Path:
    """A wheel larger than a few CHUNKs, with a central directory and RECORD larger than
    one CHUNK, so METADATA is neither in the zip's tail nor near it."""
    files = {f"big/module_{i:04}.py": f"X = {i}\n" for i in range(3000)}
    files["big/blob.py"] = f"BLOB = {os.urandom(300_000).hex()!r}\n"
    return build_wheel(dest, "big", "1.0", files=files, requires=["small>=2"])


def stored_zip64_wheel(dest: Path) -> Path:
    """METADATA stored (not deflated) in a zip with a zip64 end record (> 65535 entries)."""
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / "wide-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for i in range(65_600):
            archive.writestr(f"wide/{i}", b"")
        archive.writestr("wide-1.0.dist-info/METADATA", b"Metadata-Version: 2.1\nName: wide\n")
    return path


def link_for(server: IndexServer, project: str) -> Link:
    with IndexClient(f"{server.url}/whl") as client:
        (link,) = client.links(project, CPU)
    return link


def ranges_read(server: IndexServer, path: str, size: int) -> list[int]:
    """Bytes asked for by each request for ``path``; fails on one without a Range."""
    counts = []
    for request in server.received:
        if request.path != path:
            continue
        spec = request.headers["Range"].removeprefix("bytes=")
        first, _, last = spec.partition("-")
        counts.append(min(int(last), size) if not first else int(last) - int(first) + 1)
    return counts


def test_metadata_is_read_with_ranges_not_the_whole_wheel(tmp_path: Path) -> None:
    wheel = big_wheel(tmp_path / FOLDER)
    write_index(tmp_path / FOLDER)
    size = wheel.stat().st_size
    assert size > 4 * CHUNK
    with serve_directory(tmp_path) as server:
        link = link_for(server, "big")
        assert link.metadata is None
        with IndexClient(f"{server.url}/whl", cache_dir=tmp_path / "cache") as client:
            assert client.metadata(link) == wheel_metadata(wheel)
        counts = ranges_read(server, f"/{FOLDER}/{wheel.name}", size)
        assert server.requests.count(f"/{FOLDER}/{wheel.name}.metadata") == 0
    # The tail, the rest of the central directory, METADATA: a fraction of the file.
    assert len(counts) == 3, counts
    assert sum(counts) < size / 2
    # Later ranges are asked for only if the file is still the one whose tail was read.
    etag = f'"{hashlib.sha256(wheel.read_bytes()).hexdigest()}"'
    wheel_requests = [r for r in server.received if r.path.endswith(".whl")]
    assert [r.headers.get("If-Range") for r in wheel_requests] == [None, etag, etag]


def test_a_stored_member_in_a_zip64_wheel(tmp_path: Path) -> None:
    wheel = stored_zip64_wheel(tmp_path / "whl" / "cpu" / "wide")
    write_index(wheel.parent)
    with zipfile.ZipFile(wheel) as archive:
        assert archive.getinfo("wide-1.0.dist-info/METADATA").compress_type == zipfile.ZIP_STORED
    assert b"PK\x06\x06" in wheel.read_bytes()[-CHUNK:]  # the zip64 end record
    with serve_directory(tmp_path) as server:
        link = link_for(server, "wide")
        with IndexClient(f"{server.url}/whl") as client:
            assert client.metadata(link) == b"Metadata-Version: 2.1\nName: wide\n"
        counts = ranges_read(server, f"/whl/cpu/wide/{wheel.name}", wheel.stat().st_size)
    assert sum(counts) < wheel.stat().st_size


def test_a_small_wheel_takes_one_range_request(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "whl" / "cpu" / "small", "small", "2.0")
    write_index(wheel.parent)
    with serve_directory(tmp_path) as server:
        link = link_for(server, "small")
        with IndexClient(f"{server.url}/whl") as client:
            assert client.metadata(link) == wheel_metadata(wheel)
        (request,) = [r for r in server.received if r.path.endswith(".whl")]
    assert request.headers["Range"] == f"bytes=-{CHUNK}"
    assert request.headers["Accept-Encoding"] == "identity"


def test_a_server_refusing_ranges_still_works_via_the_whole_wheel(tmp_path: Path) -> None:
    wheel = big_wheel(tmp_path / FOLDER)
    write_index(tmp_path / FOLDER)
    path = f"/{FOLDER}/{wheel.name}"
    routes = {path: Response(200, {"Content-Type": "application/octet-stream"}, wheel.read_bytes())}
    with serve_directory(tmp_path, routes) as server:
        link = link_for(server, "big")
        with IndexClient(f"{server.url}/whl") as client:
            assert client.metadata(link) == wheel_metadata(wheel)
        # The answer to the range request was the whole file: it is used, not fetched again.
        assert server.requests.count(path) == 1


def test_a_206_without_content_range_falls_back_to_a_download(tmp_path: Path) -> None:
    wheel = big_wheel(tmp_path / FOLDER)
    write_index(tmp_path / FOLDER)
    path = f"/{FOLDER}/{wheel.name}"
    routes = {path: [Response(206, {}, b"PK"), Response(200, {}, wheel.read_bytes())]}
    with serve_directory(tmp_path, routes) as server:
        link = link_for(server, "big")
        with IndexClient(f"{server.url}/whl") as client:
            assert client.metadata(link) == wheel_metadata(wheel)
        assert "Range" not in server.received[-1].headers
        assert server.requests.count(path) == 2


def test_a_later_whole_answer_is_used_as_the_wheel(tmp_path: Path) -> None:
    wheel = big_wheel(tmp_path / FOLDER)
    write_index(tmp_path / FOLDER)
    data, path = wheel.read_bytes(), f"/{FOLDER}/{wheel.name}"
    tail = Response(
        206,
        {"Content-Range": f"bytes {len(data) - CHUNK}-{len(data) - 1}/{len(data)}"},
        data[-CHUNK:],
    )
    routes = {path: [tail, Response(200, {}, data)]}  # e.g. If-Range saw a new file
    with serve_directory(tmp_path, routes) as server:
        link = link_for(server, "big")
        with IndexClient(f"{server.url}/whl") as client:
            assert client.metadata(link) == wheel_metadata(wheel)
        assert server.requests.count(path) == 2


@pytest.mark.parametrize("status", [200, 206])
def test_a_whole_wheel_must_match_its_sha256(tmp_path: Path, status: int) -> None:
    wheel = build_wheel(tmp_path / "whl" / "cpu" / "small", "small", "2.0")
    write_index(wheel.parent)
    other = build_wheel(tmp_path / "other", "small", "2.0", files={"small.py": "changed\n"})
    body = other.read_bytes()
    headers = {"Content-Range": f"bytes 0-{len(body) - 1}/{len(body)}"} if status == 206 else {}
    routes = {f"/whl/cpu/small/{wheel.name}": Response(status, headers, body)}
    with serve_directory(tmp_path, routes) as server:
        link = link_for(server, "small")
        with (
            IndexClient(f"{server.url}/whl") as client,
            pytest.raises(IndexFetchError, match="does not match the sha256"),
        ):
            client.metadata(link)


def test_a_file_that_is_no_wheel_is_an_index_error(tmp_path: Path) -> None:
    folder = tmp_path / "whl" / "cpu" / "junk"
    folder.mkdir(parents=True)
    (folder / "junk-1.0-py3-none-any.whl").write_bytes(os.urandom(3 * CHUNK))
    (folder / "index.html").write_text('<a href="junk-1.0-py3-none-any.whl">j</a>')
    with serve_directory(tmp_path) as server:
        link = link_for(server, "junk")
        with (
            IndexClient(f"{server.url}/whl") as client,
            pytest.raises(
                IndexFetchError, match=r"junk-1\.0-py3-none-any\.whl is not a readable wheel"
            ),
        ):
            client.metadata(link)


def test_a_listed_but_missing_wheel_has_no_metadata(tmp_path: Path) -> None:
    folder = tmp_path / "whl" / "cpu" / "gone"
    folder.mkdir(parents=True)
    (folder / "index.html").write_text('<a href="gone-1.0-py3-none-any.whl">g</a>')
    with serve_directory(tmp_path) as server:
        link = link_for(server, "gone")
        with IndexClient(f"{server.url}/whl") as client:
            assert client.metadata(link) is None


def test_the_sidecar_wins_and_is_cached(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "whl" / "cpu" / "small", "small", "2.0")
    write_metadata_sidecar(wheel)
    write_index(wheel.parent)
    cache = tmp_path / "cache"
    with serve_directory(tmp_path) as server:
        link = link_for(server, "small")
        assert link.metadata == hashlib.sha256(wheel_metadata(wheel)).hexdigest()
        for _ in range(2):
            with IndexClient(f"{server.url}/whl", cache_dir=cache) as client:
                assert client.metadata(link) == wheel_metadata(wheel)
        assert [p for p in server.requests if "small-2.0" in p] == [
            f"/whl/cpu/small/{wheel.name}.metadata"
        ]
    assert not list(cache.rglob("*.tmp"))


def test_a_sidecar_that_does_not_match_its_hash_is_refused(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "whl" / "cpu" / "small", "small", "2.0")
    write_metadata_sidecar(wheel)
    write_index(wheel.parent)
    Path(f"{wheel}.metadata").write_text("Name: tampered\n")
    with serve_directory(tmp_path) as server:
        link = link_for(server, "small")
        with (
            IndexClient(f"{server.url}/whl") as client,
            pytest.raises(IndexFetchError, match="does not match its hash"),
        ):
            client.metadata(link)
