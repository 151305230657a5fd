"""The test support works for real: pip installs our wheels, the server speaks HTTP properly."""

from __future__ import annotations

import base64
import csv
import hashlib
import http.client
import io
import json
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import pytest
from packaging.utils import parse_wheel_filename

from support import (
    IndexServer,
    Response,
    build_wheel,
    find_python,
    isolated_env,
    make_venv,
    pip_freeze,
    serve_directory,
    sha256_of,
    standin_torch,
    wheel_metadata,
    write_index,
    write_metadata_sidecar,
)

PIP_ACCEPT = (  # what pip sends for index pages
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
    "text/html; q=0.01"
)


# --- wheels ---------------------------------------------------------------------------


def test_wheel_name_metadata_and_record(tmp_path: Path) -> None:
    wheel = build_wheel(
        tmp_path,
        "Fit.Demo-pkg",
        "1.7.1+cu101",
        tag="py2.py3-none-any",
        requires=["dep>=1"],
        files={"fit_demo/__init__.py": "X = 1\n"},
        requires_python=">=3.8",
    )
    assert wheel.name == "fit_demo_pkg-1.7.1+cu101-py2.py3-none-any.whl"
    name, version, _, tags = parse_wheel_filename(wheel.name)
    assert (name, str(version), len(tags)) == ("fit-demo-pkg", "1.7.1+cu101", 2)

    with zipfile.ZipFile(wheel) as archive:
        info = "fit_demo_pkg-1.7.1+cu101.dist-info"
        metadata = archive.read(f"{info}/METADATA").decode()
        assert "Name: Fit.Demo-pkg\nVersion: 1.7.1+cu101\n" in metadata
        assert "Requires-Dist: dep>=1\nRequires-Python: >=3.8\n" in metadata
        assert "Tag: py2-none-any\nTag: py3-none-any\n" in archive.read(f"{info}/WHEEL").decode()
        rows = list(csv.reader(io.StringIO(archive.read(f"{info}/RECORD").decode())))
        assert sorted(r[0] for r in rows) == sorted(archive.namelist())
        for path, digest, size in rows:
            if path.endswith("RECORD"):
                assert digest == size == ""
                continue
            data = archive.read(path)
            b64 = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert (digest, int(size)) == (f"sha256={b64}", len(data))


def test_same_inputs_give_the_same_bytes(tmp_path: Path) -> None:
    first = standin_torch(tmp_path / "a", "2.1.0+cu118", cuda="11.8")
    second = standin_torch(tmp_path / "b", "2.1.0+cu118", cuda="11.8")
    assert sha256_of(first) == sha256_of(second) == hashlib.sha256(first.read_bytes()).hexdigest()


def test_metadata_sidecar_and_index(tmp_path: Path) -> None:
    wheel = standin_torch(tmp_path, "1.7.1+cu101", cuda="10.1", requires_python=">=3.6")
    sidecar = write_metadata_sidecar(wheel)
    assert sidecar.name == wheel.name + ".metadata"
    assert sidecar.read_bytes() == wheel_metadata(wheel)

    page = write_index(tmp_path, project="torch").read_text()
    assert 'href="torch-1.7.1%2Bcu101-py3-none-any.whl#sha256=' + sha256_of(wheel) in page
    assert f'data-core-metadata="sha256={sha256_of(sidecar)}"' in page
    assert 'data-requires-python="&gt;=3.6"' in page
    (entry,) = json.loads((tmp_path / "index.json").read_text())["files"]
    assert entry["core-metadata"] == {"sha256": sha256_of(sidecar)}


# --- server ---------------------------------------------------------------------------


@pytest.fixture
def server(tmp_path: Path) -> Iterator[IndexServer]:
    project = tmp_path / "simple" / "torch"
    standin_torch(project, "1.7.1+cu101", cuda="10.1")
    write_index(project)
    with serve_directory(tmp_path) as running:
        yield running


def fetch(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:  # 304, 416, 500 arrive as errors
        with error:
            return error.code, dict(error.headers), error.read()


def test_index_page_and_validators(server: IndexServer) -> None:
    status, headers, body = fetch(server.url + "/simple/torch/")
    assert (status, headers["Content-Type"]) == (200, "text/html")
    assert b"torch-1.7.1%2Bcu101" in body
    assert headers["ETag"] == f'"{hashlib.sha256(body).hexdigest()}"'

    url = server.url + "/simple/torch/"
    assert fetch(url, **{"If-None-Match": headers["ETag"]})[0] == 304
    assert fetch(url, **{"If-None-Match": '"other"'})[0] == 200
    assert fetch(url, **{"If-Modified-Since": headers["Last-Modified"]})[0] == 304
    assert fetch(url, **{"If-Modified-Since": formatdate(0, usegmt=True)})[0] == 200


def test_ranges(server: IndexServer, tmp_path: Path) -> None:
    data = (tmp_path / "simple" / "torch" / "torch-1.7.1+cu101-py3-none-any.whl").read_bytes()
    url = server.url + "/simple/torch/torch-1.7.1%2Bcu101-py3-none-any.whl"
    status, headers, body = fetch(url, Range="bytes=2-9")
    assert (status, body, headers["Content-Range"]) == (206, data[2:10], f"bytes 2-9/{len(data)}")
    assert fetch(url, Range="bytes=-22")[2] == data[-22:]  # a zip's end record is here
    assert fetch(url, Range="bytes=10-")[2] == data[10:]
    assert fetch(url, Range=f"bytes={len(data)}-")[0] == 416
    status, headers, body = fetch(url, Range="bytes=0-1,4-5")  # several ranges: ignored
    assert (status, body, headers["Content-Type"]) == (200, data, "application/octet-stream")


def test_json_negotiation(server: IndexServer) -> None:
    status, headers, body = fetch(server.url + "/simple/torch/", Accept=PIP_ACCEPT)
    assert headers["Content-Type"] == "application/vnd.pypi.simple.v1+json"
    assert (status, headers["Vary"]) == (200, "Accept")
    assert json.loads(body)["name"] == "torch"
    html_first = "text/html, application/vnd.pypi.simple.v1+json; q=0.5"
    assert fetch(server.url + "/simple/torch/", Accept=html_first)[1]["Content-Type"] == "text/html"


def test_directory_redirect_and_missing(server: IndexServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", int(server.url.rsplit(":", 1)[1]))
    connection.request("GET", "/simple/torch?x=1")
    response = connection.getresponse()
    assert (response.status, response.getheader("Location")) == (301, "/simple/torch/?x=1")
    response.read()
    connection.request("GET", "/../../etc/passwd")  # never serves outside the root
    assert connection.getresponse().status == 404
    connection.close()
    assert fetch(server.url + "/simple/torch")[0] == 200  # urllib follows the redirect
    assert fetch(server.url + "/simple/nothing/")[0] == 404


def test_routes_and_request_log(tmp_path: Path) -> None:
    routes = {"/flaky": [Response(500, {}, b"boom"), Response(200, {"X-Try": "2"}, b"ok")]}
    with serve_directory(tmp_path, routes=routes) as server:
        assert fetch(server.url + "/flaky")[0] == 500
        status, headers, body = fetch(server.url + "/flaky?again")
        assert (status, headers["X-Try"], body) == (200, "2", b"ok")
        assert fetch(server.url + "/flaky")[0] == 200  # the last response repeats
        assert server.requests == ["/flaky"] * 3
        assert server.received[0].method == "GET"
        url = server.url
    with pytest.raises(urllib.error.URLError):
        fetch(url + "/flaky")  # stopped when the block ended


# --- interpreters and venvs -----------------------------------------------------------


def test_find_python() -> None:
    here = "{}.{}".format(*sys.version_info[:2])
    found = find_python(here)
    if found is not None:  # python3.X on PATH may be a shim that cannot run it
        out = subprocess.run(
            [found, "-c", "import sys; print(sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert out.strip() == str(tuple(sys.version_info[:2]))
    assert find_python("3.99") is None
    with pytest.raises(ValueError):
        find_python("3")


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_venv(tmp_path_factory.mktemp("venv") / "env")


def pip(python: Path, *args: str) -> None:
    subprocess.run(
        [str(python), "-m", "pip", "install", "--no-cache-dir", *args],
        check=True,
        capture_output=True,
        env=isolated_env(),
    )


def torch_facts(python: Path) -> list[object]:
    script = (
        "import json, torch; print(json.dumps("
        "[torch.__version__, torch.version.cuda, torch.cuda.is_available()]))"
    )
    done = subprocess.run(
        [str(python), "-c", script], check=True, capture_output=True, text=True, env=isolated_env()
    )
    return list(json.loads(done.stdout))


@pytest.mark.integration
def test_pip_installs_standin_torch_from_a_file(venv: Path, tmp_path: Path) -> None:
    wheel = standin_torch(tmp_path, "1.7.1+cu101", cuda="10.1", tag="py3-none-any")
    pip(venv, "--no-index", str(wheel))
    assert torch_facts(venv) == ["1.7.1+cu101", "10.1", False]
    assert pip_freeze(venv)["torch"] == "1.7.1+cu101"


@pytest.mark.integration
def test_pip_installs_from_the_server(venv: Path, tmp_path: Path) -> None:
    simple = tmp_path / "simple"
    for project, wheel in [
        ("torch", standin_torch(simple / "torch", "2.0.0+cpu", cuda=None, requires=["fit-dep"])),
        (
            "fit-dep",
            build_wheel(simple / "fit-dep", "fit-dep", "1.0", files={"fit_dep.py": "VALUE = 1\n"}),
        ),
    ]:
        write_metadata_sidecar(wheel)
        write_index(simple / project)
    with serve_directory(tmp_path) as server:
        pip(venv, "--force-reinstall", "--index-url", server.url + "/simple", "torch==2.0.0+cpu")
    assert torch_facts(venv) == ["2.0.0+cpu", None, False]
    assert pip_freeze(venv)["fit-dep"] == "1.0"
    # pip read the PEP 658 sidecar to learn torch's dependencies before downloading.
    assert "/simple/torch/torch-2.0.0+cpu-py3-none-any.whl.metadata" in server.requests
    assert "/simple/fit-dep/" in server.requests


@pytest.mark.integration
def test_make_venv_with_another_python(tmp_path: Path) -> None:
    other = next((p for v in ("3.9", "3.10", "3.12") if (p := find_python(v))), None)
    if other is None:
        pytest.skip("no other Python 3.9/3.10/3.12 runs on this machine")
    python = make_venv(tmp_path / "env", python=other)
    assert "pip" in pip_freeze(python)
