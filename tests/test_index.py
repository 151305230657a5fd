"""The index client against a real HTTP server on 127.0.0.1: layouts, cache, offline, safety."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from support import Response, serve_directory
from torchfit.errors import IndexFetchError, UsageError
from torchfit.index.cache import DEFAULT_LIFETIME
from torchfit.index.client import IndexClient, bundled_snapshots, check_url
from torchfit.variants import Variant

SNAPSHOTS = bundled_snapshots()
CU101 = Variant.parse("cu101")


@pytest.fixture
def snapshot_root(tmp_path: Path) -> Path:
    """The bundled snapshots served under /whl, as download.pytorch.org lays them out."""
    assert SNAPSHOTS is not None
    shutil.copytree(SNAPSHOTS, tmp_path / "whl")
    return tmp_path


def test_variant_page_over_http(snapshot_root: Path, tmp_path: Path) -> None:
    with serve_directory(snapshot_root) as server:
        client = IndexClient(f"{server.url}/whl", cache_dir=tmp_path / "cache")
        with client:
            links = client.links("torch", CU101)
    names = {link.filename for link in links}
    assert "torch-1.7.1+cu101-cp38-cp38-linux_x86_64.whl" in names
    # Host-absolute hrefs resolve against the server the page came from.
    assert all(link.url.startswith(f"{server.url}/whl/cu101/") for link in links)
    assert server.requests == ["/whl/cu101/torch/"]


def test_flat_page_filters_by_folder(snapshot_root: Path) -> None:
    with serve_directory(snapshot_root) as server:
        with IndexClient(f"{server.url}/whl/torch_stable.html") as client:
            cu102 = client.links("torch", Variant.parse("cu102"))
            vision_cpu = client.links("torchvision", Variant("cpu"))
        assert server.requests == ["/whl/torch_stable.html"]  # one page serves every variant
    assert "torch-1.7.1-cp38-cp38-linux_x86_64.whl" in {link.filename for link in cu102}
    assert all(link.folder == "cu102" for link in cu102)
    # Root-level macOS wheels of the flat page are CPU builds.
    assert "torchvision-0.8.2-cp38-cp38-macosx_10_9_x86_64.whl" in {
        link.filename for link in vision_cpu
    }


def test_cache_is_revalidated_with_etag_once_stale(snapshot_root: Path, tmp_path: Path) -> None:
    now = [1_000_000.0]
    with serve_directory(snapshot_root) as server:
        base, cache = f"{server.url}/whl", tmp_path / "cache"
        with IndexClient(base, cache_dir=cache, clock=lambda: now[0]) as first:
            first.links("torch", CU101)
        now[0] += DEFAULT_LIFETIME + 1
        with IndexClient(base, cache_dir=cache, clock=lambda: now[0]) as second:
            assert second.links("torch", CU101) == first.links("torch", CU101)
        conditional = server.received[-1].headers
        assert len(server.requests) == 2
    assert conditional.get("If-None-Match")
    assert [r.origin for r in second.records] == ["cache (revalidated)"]


def test_offline_uses_the_cache_then_the_snapshots(snapshot_root: Path, tmp_path: Path) -> None:
    with serve_directory(snapshot_root) as server:
        base = f"{server.url}/whl"
        with IndexClient(base, cache_dir=tmp_path / "cache") as online:
            online.links("torch", CU101)
    offline = IndexClient(base, offline=True, cache_dir=tmp_path / "cache", snapshots=SNAPSHOTS)
    assert offline.links("torch", CU101)
    assert offline.links("torchvision", CU101)  # never fetched: from the bundled snapshot
    assert [r.origin for r in offline.records] == ["cache (offline)", "snapshot"]
    assert offline.records[1].date


def test_offline_without_snapshots_says_what_to_do(tmp_path: Path) -> None:
    client = IndexClient("https://download.pytorch.org/whl", offline=True, snapshots=None)
    with pytest.raises(IndexFetchError, match="neither cached nor bundled"):
        client.links("torch", CU101)


def test_missing_page_is_empty_and_server_errors_are_retried(tmp_path: Path) -> None:
    page = b'<a href="/whl/cu101/torch-1.7.1%2Bcu101-cp38-cp38-linux_x86_64.whl">x</a>'
    routes = {"/whl/cu101/torch/": [Response(503, {}, b""), Response(200, {}, page)]}
    with serve_directory(tmp_path, routes) as server:
        with IndexClient(f"{server.url}/whl") as client:
            assert client.links("torch", Variant.parse("cu92")) == []
            assert len(client.links("torch", CU101)) == 1
        assert server.requests.count("/whl/cu101/torch/") == 2


def test_persistent_server_error_is_one_clear_error(tmp_path: Path) -> None:
    routes = {"/whl/cu101/torch/": Response(500, {}, b"")}
    with serve_directory(tmp_path, routes) as server:
        client = IndexClient(f"{server.url}/whl", retries=1)
        with client, pytest.raises(IndexFetchError, match="answered HTTP 500"):
            client.links("torch", CU101)


def test_pep691_json_page_is_preferred(tmp_path: Path) -> None:
    folder = tmp_path / "whl" / "cpu" / "torch"
    folder.mkdir(parents=True)
    (folder / "index.html").write_text("<p>no links in the HTML form</p>")
    (folder / "index.json").write_text(
        '{"meta": {"api-version": "1.0"}, "name": "torch", "files": [{"filename":'
        ' "torch-2.8.0+cpu-cp312-cp312-win_amd64.whl", "url":'
        ' "/whl/cpu/torch-2.8.0%2Bcpu-cp312-cp312-win_amd64.whl", "hashes": {"sha256": "'
        + "AB" * 32
        + '"}, "core-metadata": {"sha256": "'
        + "cd" * 32
        + '"}}]}'
    )
    with serve_directory(tmp_path) as server, IndexClient(f"{server.url}/whl") as client:
        (link,) = client.links("torch", Variant("cpu"))
    assert (link.sha256, link.metadata) == ("ab" * 32, "cd" * 32)


def test_mirror_rewrites_upstream_absolute_links(tmp_path: Path) -> None:
    folder = tmp_path / "mirror" / "whl" / "cu130" / "torch"
    folder.mkdir(parents=True)
    (folder / "index.html").write_text(
        '<a href="https://download-r2.pytorch.org/whl/cu130/'
        'torch-2.9.0%2Bcu130-cp312-cp312-manylinux_2_28_x86_64.whl#sha256=aa">t</a>'
    )
    with serve_directory(tmp_path) as server:
        base = f"{server.url}/mirror/whl"
        with IndexClient(base) as client:
            (link,) = client.links("torch", Variant.parse("cu130"))
    assert link.url == f"{base}/cu130/torch-2.9.0%2Bcu130-cp312-cp312-manylinux_2_28_x86_64.whl"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/whl",
        "http://localhost/whl",
        "http://[::1]/whl",
        "https://example.org/whl",
    ],
)
def test_safe_urls_pass(url: str) -> None:
    check_url(url)


def test_plain_http_elsewhere_is_refused_unless_trusted() -> None:
    with pytest.raises(UsageError, match="refusing plain http"):
        check_url("http://mirror.example.org/whl")
    check_url("http://mirror.example.org/whl", trusted_hosts=["mirror.example.org"])
    with pytest.raises(UsageError):
        IndexClient("http://mirror.example.org/whl")


def test_a_redirect_to_an_untrusted_plain_http_host_is_refused(tmp_path: Path) -> None:
    # 192.0.2.0/24 is TEST-NET-1: the request is refused before anything is sent there.
    away = {"location": "http://192.0.2.2/whl/cu101/torch/"}
    routes = {"/whl/cu101/torch/": Response(302, away, b"")}
    with serve_directory(tmp_path, routes) as server:
        client = IndexClient(f"{server.url}/whl")
        with (
            client,
            pytest.raises(IndexFetchError, match=r"refusing plain http:// for 192\.0\.2\.2"),
        ):
            client.links("torch", CU101)


@pytest.mark.parametrize(
    "body", ['{"files": 3}', '{"files": [{"url": "t.whl", "hashes": ["x"]}]}', "not json"]
)
def test_malformed_json_pages_are_index_errors(body: str) -> None:
    from torchfit.index.pages import parse_json_page

    with pytest.raises(IndexFetchError, match="malformed PEP 691"):
        parse_json_page(body, "https://example.org/whl/cpu/torch/")


@pytest.mark.parametrize(
    "url", ["https:///whl", "https://[::1/whl", "https://example.org:99999/whl", "file:///whl"]
)
def test_broken_urls_are_usage_errors(url: str) -> None:
    with pytest.raises(UsageError):
        check_url(url)


def test_a_flat_mirror_keeps_downloads_on_the_mirror(tmp_path: Path) -> None:
    # The page names the upstream host outright, as a copied torch_stable.html may.
    name = "torch-1.7.1%2Bcu101-cp38-cp38-linux_x86_64.whl"
    page = f'<a href="https://download.pytorch.org/whl/cu101/{name}">x</a>\n'
    (tmp_path / "torch_stable.html").write_text(page)
    with serve_directory(tmp_path) as server:
        mirror = f"{server.url}/pytorch/whl/torch_stable.html"
        (tmp_path / "pytorch" / "whl").mkdir(parents=True)
        (tmp_path / "pytorch" / "whl" / "torch_stable.html").write_text(page)
        with IndexClient(mirror, cache_dir=None) as client:
            (link,) = client.links("torch", Variant.parse("cu101"))
    assert link.url == f"{server.url}/pytorch/whl/cu101/{name}"
