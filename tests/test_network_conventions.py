"""pip's network conventions, honoured: PIP_TIMEOUT, the CA bundle variables, .netrc, and
retries only where another try can help."""

from __future__ import annotations

import base64
import importlib.util
import logging
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support import IndexServer, serve_directory
from support.tls import Certificates, find_openssl, make_certificates, server_context
from torchfit.cli.main import main
from torchfit.errors import IndexFetchError, UsageError
from torchfit.index.http import Http
from torchfit.settings import Settings, resolve_settings

ROOT = Path(__file__).resolve().parents[1]
OPENSSL = find_openssl()
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl is needed to make a test CA")
PLAN = ["plan", "torch==1.7.1", "--cuda", "10.1", "--python-version", "3.8"]
PLAN += ["--platform", "linux_x86_64"]
_VARIABLES = (
    *("SSL_CERT_FILE", "SSL_CERT_DIR", "PIP_CERT", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"),
    *("NETRC", "PIP_TIMEOUT", "PIP_DEFAULT_TIMEOUT", "TORCHFIT_TIMEOUT"),
)


@pytest.fixture(autouse=True)
def own_network_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx reads SSL_CERT_FILE and SSL_CERT_DIR from the process: not the host's here."""
    for name in _VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("site")
    shutil.copytree(ROOT / "wheel_index_snapshots", site / "whl")
    return site


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    if OPENSSL is None:
        pytest.skip("openssl is needed to make a test CA")
    return make_certificates(tmp_path_factory.mktemp("tls"), ("127.0.0.1",), OPENSSL)


@pytest.fixture
def tls_index(site: Path, certs: Certificates) -> Iterator[IndexServer]:
    with serve_directory(site, ssl_context=server_context(certs)) as server:
        yield server


@pytest.fixture
def index(site: Path) -> Iterator[IndexServer]:
    with serve_directory(site) as server:
        yield server


@pytest.fixture
def garbage(tmp_path: Path) -> Path:
    path = tmp_path / "garbage.pem"
    path.write_text("this is no certificate\n", encoding="utf-8")
    return path


def plan(
    capsys: pytest.CaptureFixture[str], base: str, env: dict[str, str], tmp_path: Path
) -> tuple[int, str, str]:
    code = main(
        [*PLAN, "--pytorch-index", f"{base}/whl"],
        env={"TORCHFIT_CACHE_DIR": str(tmp_path / "cache"), **env},
    )
    out, err = capsys.readouterr()
    return code, out, err


def fetch(edge: Http, url: str) -> int:
    """GET ``url`` once and close the client: no test leaves a socket open."""
    try:
        return edge.get(url).status
    finally:
        edge.close()


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert all(line.startswith(("error: ", "hint: ")) for line in lines), err
    assert lines[0].startswith("error: ") and "internal error" not in lines[0]
    return lines[0]


# --- settings: which variable wins ----------------------------------------------------


@pytest.mark.parametrize(
    ("options", "env", "expected"),
    [
        ({}, {}, 15.0),
        ({}, {"PIP_TIMEOUT": "30"}, 30.0),
        ({}, {"PIP_TIMEOUT": "30", "TORCHFIT_TIMEOUT": "5"}, 5.0),
        ({}, {"PIP_DEFAULT_TIMEOUT": "100"}, 100.0),  # pip's alias, as Dockerfiles set it
        ({}, {"PIP_DEFAULT_TIMEOUT": "100", "PIP_TIMEOUT": "30"}, 30.0),
        ({}, {"PIP_TIMEOUT": " ", "TORCHFIT_TIMEOUT": ""}, 15.0),  # empty means unset
        ({"timeout": 7}, {"PIP_TIMEOUT": "30", "TORCHFIT_TIMEOUT": "5"}, 7.0),
        ({"timeout": "2.5"}, {}, 2.5),
        # An option decides: a variable it overrides is not even read.
        ({"timeout": 7}, {"TORCHFIT_TIMEOUT": "soon"}, 7.0),
        ({}, {"TORCHFIT_TIMEOUT": "5", "PIP_TIMEOUT": "soon"}, 5.0),
    ],
)
def test_timeout_precedence(options: dict[str, Any], env: dict[str, str], expected: float) -> None:
    assert resolve_settings(options, env).timeout == expected


@pytest.mark.parametrize("value", ["soon", "0", "-1", "nan", "inf", True, [3]])
def test_timeout_that_is_not_seconds(value: Any) -> None:
    with pytest.raises(UsageError, match="invalid timeout"):
        resolve_settings({"timeout": value}, {})


def test_a_library_caller_may_wait_for_ever() -> None:
    assert Settings(timeout=None).timeout is None


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"CURL_CA_BUNDLE": "/c.pem"}, "/c.pem"),
        ({"CURL_CA_BUNDLE": "/c.pem", "REQUESTS_CA_BUNDLE": "/r.pem"}, "/r.pem"),
        ({"REQUESTS_CA_BUNDLE": "/r.pem", "PIP_CERT": "/p.pem"}, "/p.pem"),
        ({"REQUESTS_CA_BUNDLE": "/r.pem", "PIP_CERT": "/p.pem", "SSL_CERT_FILE": "/s"}, "/s"),
        ({"SSL_CERT_FILE": "", "PIP_CERT": "/p.pem"}, "/p.pem"),
    ],
)
def test_ca_bundle_precedence(env: dict[str, str], expected: str | None) -> None:
    found = resolve_settings({}, env).ca_bundle
    assert found == (Path(expected) if expected else None)


def test_ca_bundle_option_wins(tmp_path: Path) -> None:
    settings = resolve_settings({"ca_bundle": tmp_path}, {"SSL_CERT_FILE": "/s"})
    assert settings.ca_bundle == tmp_path


def test_netrc_is_found_as_requests_finds_it(tmp_path: Path) -> None:
    home, other = tmp_path / "home", tmp_path / "other"
    home.mkdir()
    other.mkdir()
    assert resolve_settings({}, {"HOME": str(home)}).netrc is None
    (home / "_netrc").write_text("", encoding="utf-8")
    assert resolve_settings({}, {"HOME": str(home)}).netrc == home / "_netrc"
    (home / ".netrc").write_text("", encoding="utf-8")
    assert resolve_settings({}, {"HOME": str(home)}).netrc == home / ".netrc"
    # $NETRC alone decides when it is set, even where it names no file.
    env = {"HOME": str(home), "NETRC": str(other / "netrc")}
    assert resolve_settings({}, env).netrc is None
    (other / "netrc").write_text("", encoding="utf-8")
    assert resolve_settings({}, env).netrc == other / "netrc"
    assert resolve_settings({}, {}).netrc is None  # no home: no netrc


# --- certificates -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["missing", "garbage"])
def test_a_bad_ca_bundle_is_one_line_naming_the_file(
    index: IndexServer, tmp_path: Path, garbage: Path, kind: str
) -> None:
    path = tmp_path / "missing.pem" if kind == "missing" else garbage
    with pytest.raises(IndexFetchError) as caught:
        fetch(Http(ca_bundle=path), f"{index.url}/whl/")
    message = str(caught.value)
    assert message.startswith(f"cannot use the CA certificates in {path}: ")
    assert ("no such file" if kind == "missing" else "not a PEM bundle") in message
    assert "\n" not in message and index.requests == []


@pytest.mark.parametrize("kind", ["missing", "garbage"])
def test_a_bad_ssl_cert_file_read_by_httpx_itself_names_the_file(
    index: IndexServer,
    tmp_path: Path,
    garbage: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    path = tmp_path / "missing.pem" if kind == "missing" else garbage
    monkeypatch.setenv("SSL_CERT_FILE", str(path))
    with pytest.raises(IndexFetchError) as caught:
        fetch(Http(), f"{index.url}/whl/")  # no ca_bundle: httpx reads the variable
    assert str(caught.value).startswith(f"cannot use the CA certificates in {path} (SSL_CERT_FILE)")


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE"])
@pytest.mark.parametrize("kind", ["missing", "garbage"])
def test_cli_with_a_bad_ca_variable_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str],
    index: IndexServer,
    tmp_path: Path,
    garbage: Path,
    variable: str,
    kind: str,
) -> None:
    path = tmp_path / "missing.pem" if kind == "missing" else garbage
    code, out, err = plan(capsys, index.url, {variable: str(path)}, tmp_path)
    assert code == 1
    assert out == "" and str(path) in one_error_line(err)


@needs_openssl
@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE"])
def test_each_ca_variable_is_trusted(
    capsys: pytest.CaptureFixture[str],
    tls_index: IndexServer,
    certs: Certificates,
    tmp_path: Path,
    variable: str,
) -> None:
    code, out, err = plan(capsys, tls_index.url, {variable: str(certs.ca)}, tmp_path)
    assert code == 0, err
    assert out.startswith("variant cu101")
    assert tls_index.requests == ["/whl/cu101/torch/"]


@needs_openssl
def test_ssl_cert_file_wins_over_pip_cert(
    capsys: pytest.CaptureFixture[str],
    tls_index: IndexServer,
    certs: Certificates,
    tmp_path: Path,
    garbage: Path,
) -> None:
    env = {"SSL_CERT_FILE": str(garbage), "PIP_CERT": str(certs.ca)}
    code, _, err = plan(capsys, tls_index.url, env, tmp_path)
    assert code == 1 and str(garbage) in one_error_line(err)
    env = {"PIP_CERT": str(certs.ca), "REQUESTS_CA_BUNDLE": str(garbage)}
    code, _, err = plan(capsys, tls_index.url, env, tmp_path)
    assert code == 0, err


@needs_openssl
def test_an_untrusted_certificate_is_one_line_and_not_retried(tls_index: IndexServer) -> None:
    sleeps: list[float] = []
    edge = Http(sleep=sleeps.append)  # certifi's roots: the test CA is not among them
    with pytest.raises(IndexFetchError) as caught:
        fetch(edge, f"{tls_index.url}/whl/")
    message = str(caught.value)
    assert message.startswith(f"could not verify the certificate of {tls_index.url}/whl/: ")
    assert "\n" not in message and "PIP_CERT" in (caught.value.hint or "")
    assert sleeps == []


# --- .netrc -----------------------------------------------------------------------------


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def authorizations(server: IndexServer) -> list[str | None]:
    return [request.headers.get("Authorization") for request in server.received]


def test_netrc_credentials_are_sent_to_their_host(
    capsys: pytest.CaptureFixture[str], index: IndexServer, tmp_path: Path
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(
        "machine elsewhere.example.org login eve password nope\n"
        "machine 127.0.0.1 login alice password s3cret\n",
        encoding="utf-8",
    )
    code, _, err = plan(capsys, index.url, {"NETRC": str(netrc)}, tmp_path)
    assert code == 0, err
    assert authorizations(index) == [basic("alice", "s3cret")]


def test_credentials_in_the_url_win_over_netrc(index: IndexServer, tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login alice password s3cret\n", encoding="utf-8")
    url = index.url.replace("://", "://bob:hunter2@") + "/whl/cu101/torch/"
    assert fetch(Http(netrc=netrc), url) == 200
    assert authorizations(index) == [basic("bob", "hunter2")]


def test_no_netrc_sends_no_credentials(
    capsys: pytest.CaptureFixture[str], index: IndexServer, tmp_path: Path
) -> None:
    code, _, err = plan(capsys, index.url, {"HOME": str(tmp_path)}, tmp_path)
    assert code == 0, err
    assert authorizations(index) == [None]


def test_a_broken_netrc_is_ignored_with_a_warning(
    index: IndexServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("login alice password s3cret\n", encoding="utf-8")  # no machine
    assert fetch(Http(netrc=netrc), f"{index.url}/whl/cu101/torch/") == 200
    assert authorizations(index) == [None]
    assert any(f"ignoring {netrc}" in r.getMessage() for r in caplog.records)
    assert all(r.levelno == logging.WARNING for r in caplog.records)


# --- retries: only where another try can help --------------------------------------------


class Script:
    """An httpx MockTransport handler that plays its answers (or errors) in turn."""

    def __init__(self, *steps: int | type[Exception] | httpx.Response) -> None:
        self.steps = list(steps)
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, httpx.Response):
            return step
        if isinstance(step, int):
            return httpx.Response(step, content=b"")
        raise step("scripted", request=request)  # type: ignore[call-arg]


def scripted(script: Script, sleeps: list[float]) -> Http:
    client = httpx.Client(transport=httpx.MockTransport(script))
    return Http(client=client, retries=2, timeout=3, sleep=sleeps.append)


@pytest.mark.parametrize(
    ("steps", "status", "calls", "sleeps"),
    [
        ((503, 200), 200, 2, [0.25]),
        ((500, 502, 504), 504, 3, [0.25, 0.5]),  # the last answer is returned as it is
        ((429, 200), 200, 2, [0.25]),
        ((httpx.Response(503, headers={"Retry-After": "2"}), 200), 200, 2, [2.0]),
        ((httpx.Response(429, headers={"Retry-After": "3600"}), 200), 200, 2, [10.0]),
        ((httpx.ConnectError, 200), 200, 2, [0.25]),
        ((httpx.ReadError, 200), 200, 2, [0.25]),  # a reset connection
        ((httpx.RemoteProtocolError, 200), 200, 2, [0.25]),  # dropped without an answer
        ((404,), 404, 1, []),
        ((401,), 401, 1, []),
        ((403,), 403, 1, []),
    ],
)
def test_what_is_retried(
    steps: tuple[Any, ...], status: int, calls: int, sleeps: list[float]
) -> None:
    script, slept = Script(*steps), []  # type: ignore[var-annotated]
    assert fetch(scripted(script, slept), "https://mirror.example.org/whl/") == status
    assert (script.calls, slept) == (calls, sleeps)


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (httpx.ReadTimeout, "https://mirror.example.org/whl/ did not answer within 3s"),
        (httpx.WriteTimeout, "https://mirror.example.org/whl/ did not answer within 3s"),
        (httpx.PoolTimeout, "no free connection for https://mirror.example.org/whl/ within 3s"),
        (httpx.ProxyError, "could not reach https://mirror.example.org/whl/: scripted"),
        (httpx.UnsupportedProtocol, "could not reach https://mirror.example.org/whl/: scripted"),
        (httpx.TooManyRedirects, "could not reach https://mirror.example.org/whl/: scripted"),
    ],
)
def test_what_is_not_retried(error: type[Exception], message: str) -> None:
    script, slept = Script(error), []  # type: ignore[var-annotated]
    with pytest.raises(IndexFetchError) as caught:
        fetch(scripted(script, slept), "https://mirror.example.org/whl/")
    assert str(caught.value) == message
    assert (script.calls, slept) == (1, [])


def test_a_refused_connection_is_retried_then_reported() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/whl/"
    sleeps: list[float] = []
    with pytest.raises(IndexFetchError) as caught:
        fetch(Http(retries=2, sleep=sleeps.append), url)
    assert str(caught.value).startswith(f"could not reach {url}: ")
    assert sleeps == [0.25, 0.5]


def test_a_socks_proxy_without_socksio_is_one_line(
    monkeypatch: pytest.MonkeyPatch, index: IndexServer
) -> None:
    if importlib.util.find_spec("socksio") is not None:
        pytest.skip("socksio is installed: httpx can use a SOCKS proxy")
    monkeypatch.setenv("ALL_PROXY", "socks5://127.0.0.1:1")
    with pytest.raises(IndexFetchError) as caught:
        fetch(Http(), f"{index.url}/whl/")
    assert str(caught.value).startswith("could not set up HTTP: ")
    assert "socksio" in str(caught.value) and "\n" not in str(caught.value)


def test_pip_index_credentials_serve_the_same_host(
    capsys: pytest.CaptureFixture[str], index: IndexServer, tmp_path: Path
) -> None:
    pip_index = index.url.replace("://", "://carol:t0ken@") + "/simple"
    env = {"HOME": str(tmp_path), "PIP_INDEX_URL": pip_index}
    code, out, err = plan(capsys, index.url, env, tmp_path)
    assert code == 0, err
    assert authorizations(index) == [basic("carol", "t0ken")]
    assert "t0ken" not in out + err
    # Another host's credentials are never sent.
    elsewhere = {"HOME": str(tmp_path), "PIP_INDEX_URL": "https://carol:t0ken@pypi.example/simple"}
    code, _, err = plan(capsys, index.url, elsewhere, tmp_path / "other")
    assert code == 0, err
    assert authorizations(index)[-1] is None
