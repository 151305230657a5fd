"""Deadlines on the network: a server that accepts and never answers costs ``--timeout``
seconds, says it is still waiting while it does, and ends in a one-line error."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from support import serve_directory
from torchfit.cli.main import main
from torchfit.errors import IndexFetchError
from torchfit.index import http
from torchfit.index.client import IndexClient
from torchfit.index.http import Http
from torchfit.variants import Variant

TARGET = ["--cuda", "12.1", "--python-version", "3.11", "--platform", "linux_x86_64"]


@contextmanager
def silent_server() -> Iterator[str]:
    """``http://127.0.0.1:<port>``: accepts every connection, reads nothing, answers nothing."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    held: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:  # the poll's timeout, or the listener closed
                continue
            held.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        done.set()
        thread.join(5)
        listener.close()
        for connection in held:
            connection.close()


def waited(caplog: pytest.LogCaptureFixture, url: str) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "torchfit.index.http"
        and f"still waiting for {url}" in record.getMessage()
    ]


def test_http_gives_up_at_the_deadline_and_says_it_was_waiting(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sleeps: list[float] = []
    with silent_server() as base:
        url = f"{base}/whl/cu121/torch/"
        client = Http(timeout=1, patience=0.2, sleep=sleeps.append)
        try:
            with pytest.raises(IndexFetchError) as caught:
                client.get(url)
        finally:
            client.close()
    message = str(caught.value)
    assert message == f"{url} did not answer within 1s"
    assert "\n" not in message and "--timeout" in (caught.value.hint or "")
    assert waited(caplog, url) == [f"still waiting for {url} (0.2s; giving up after 1s)"]
    assert caplog.records[0].levelno == logging.WARNING  # shown by the CLI by default
    assert sleeps == []  # a read that timed out was sent: it is not sent again


def test_the_notice_hides_credentials(caplog: pytest.LogCaptureFixture) -> None:
    with silent_server() as base:
        url = base.replace("://", "://bob:hunter2@") + "/whl/"
        client = Http(timeout=0.5, patience=0.1)
        try:
            with pytest.raises(IndexFetchError) as caught:
                client.get(url)
        finally:
            client.close()
    assert "hunter2" not in caplog.text and "hunter2" not in str(caught.value)
    assert "bob:****@" in caplog.text


def test_index_client_passes_its_timeout_down() -> None:
    expected = r"/whl/cu121/torch/ did not answer within 0\.5s"
    with (
        silent_server() as base,
        IndexClient(f"{base}/whl", timeout=0.5, cache_dir=None) as client,
        pytest.raises(IndexFetchError, match=expected),
    ):
        client.links("torch", Variant.parse("cu121"))


def test_an_answer_in_time_cancels_the_notice(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    (tmp_path / "page.html").write_text("<html></html>", encoding="utf-8")
    with serve_directory(tmp_path) as server:
        client = Http(timeout=5, patience=0.3)
        try:
            assert client.get(f"{server.url}/page.html").status == 200
        finally:
            client.close()
    threading.Event().wait(0.5)  # past the patience: a timer left running would fire now
    assert waited(caplog, server.url) == []


@pytest.mark.parametrize(
    ("argv", "env", "limit"),
    [
        (["--timeout", "1"], {}, "1s"),
        ([], {"TORCHFIT_TIMEOUT": "0.5", "PIP_TIMEOUT": "60"}, "0.5s"),
        ([], {"PIP_TIMEOUT": "0.5"}, "0.5s"),
        (["--timeout", "0.5"], {"TORCHFIT_TIMEOUT": "60"}, "0.5s"),
    ],
)
def test_cli_gives_up_with_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    argv: list[str],
    env: dict[str, str],
    limit: str,
) -> None:
    monkeypatch.setattr(http, "NOTICE_AFTER", 0.2)
    with silent_server() as base:
        code = main(
            ["plan", "torch", *TARGET, "--pytorch-index", f"{base}/whl", *argv],
            env={"TORCHFIT_CACHE_DIR": str(tmp_path / "cache"), **env},
        )
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    lines = err.splitlines()
    assert lines[0] == f"error: {base}/whl/cu121/torch/ did not answer within {limit}"
    assert all(line.startswith(("error: ", "hint: ")) for line in lines)
    assert waited(caplog, f"{base}/whl/cu121/torch/")


@pytest.mark.parametrize(
    ("argv", "env", "named"),
    [
        (["--timeout", "soon"], {}, "--timeout"),
        (["--timeout", "0"], {}, "--timeout"),
        (["--timeout", "-3"], {}, "--timeout"),
        ([], {"TORCHFIT_TIMEOUT": "soon"}, "TORCHFIT_TIMEOUT"),
        ([], {"PIP_TIMEOUT": "nan"}, "PIP_TIMEOUT"),
        ([], {"PIP_TIMEOUT": "inf"}, "PIP_TIMEOUT"),
    ],
)
def test_a_timeout_that_is_no_number_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    argv: list[str],
    env: dict[str, str],
    named: str,
) -> None:
    code = main(
        ["plan", "torch", *TARGET, "--offline", *argv],
        env={"TORCHFIT_CACHE_DIR": str(tmp_path / "cache"), **env},
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines()[0].startswith(f"error: invalid {named} ")


def test_connect_timeouts_are_retried_with_backoff() -> None:
    tries: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        tries.append(str(request.url))
        raise httpx.ConnectTimeout("timed out", request=request)

    sleeps: list[float] = []
    client = httpx.Client(transport=httpx.MockTransport(handler))
    edge = Http(client=client, timeout=2, retries=2, sleep=sleeps.append)
    with pytest.raises(IndexFetchError) as caught:
        edge.get("https://mirror.example.org/whl/")
    assert str(caught.value) == (
        "could not connect to https://mirror.example.org/whl/ within 2s (3 tries)"
    )
    assert len(tries) == 3 and sleeps == [0.25, 0.5]
