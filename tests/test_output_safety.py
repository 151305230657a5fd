"""What torchfit prints is safe to show: hostile text arrives escaped, credentials never.

Every case is a real run of the command line (in this process, and a few as
``python -m torchfit``) against real hostile parts: a loopback index whose file names and
folders carry terminal escapes, a fake nvidia-smi naming a GPU with them, a fake pip
printing them, interpreters in folders named with them, and index URLs with credentials.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

import torchfit
from support import IndexServer, Response, serve_directory, sha256_of, standin_torch
from torchfit.cli.main import main
from torchfit.errors import IndexFetchError, TorchfitError

# What must never reach a terminal raw; the newline between lines is the one exception.
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")

# Hostile texts, none with "/", "-", "." or "%" (they would change a file name's parts).
ESCAPES = [
    pytest.param("\x1b]0;pwned\x07", id="osc-window-title"),
    pytest.param("\x1b]8;;x\x1b\\link\x1b]8;;\x1b\\", id="osc-8-hyperlink"),
    pytest.param("\x1b[2J\x1b[H", id="csi-clear-screen"),
    pytest.param("\x1b[31;1m", id="csi-colour"),
    pytest.param("\x1b[1A\x1b[2K", id="csi-erase-line-above"),
    pytest.param("\x1bc", id="ris-terminal-reset"),
    pytest.param("\x1bP+q544e\x1b\\", id="dcs-query"),
    pytest.param("\x07", id="bell"),
    pytest.param("\x08\x08\x08", id="backspaces"),
    pytest.param("\x00", id="nul"),
    pytest.param("\x7f", id="del"),
    pytest.param("\x9b2J", id="c1-csi"),
    pytest.param("\x9d0;pwned\x9c", id="c1-osc"),
    pytest.param("\x90q\x9c", id="c1-dcs"),
    pytest.param("\u202e", id="bidi-rlo"),
    pytest.param("\u202a", id="bidi-lre"),
    pytest.param("\u202b", id="bidi-rle"),
    pytest.param("\u202c", id="bidi-pdf"),
    pytest.param("\u202d", id="bidi-lro"),
    pytest.param("\u2066", id="bidi-lri"),
    pytest.param("\u2067", id="bidi-rli"),
    pytest.param("\u2068", id="bidi-fsi"),
    pytest.param("\u2069", id="bidi-pdi"),
]
# These also end a line for str.splitlines(), so a line-based parser splits at them.
LINE_BREAKS = [
    pytest.param("\x0b", id="vertical-tab"),
    pytest.param("\x0c", id="form-feed"),
    pytest.param("\x1c", id="file-separator"),
    pytest.param("\x85", id="c1-next-line"),
    pytest.param("\u2028", id="line-separator"),
    pytest.param("\u2029", id="paragraph-separator"),
]
HOSTILE = ESCAPES + LINE_BREAKS
# What a field of one line may still hold (urllib drops these three from URLs).
IN_A_FIELD = [
    *HOSTILE,
    pytest.param("\n", id="newline"),
    pytest.param("\r", id="carriage-return"),
    pytest.param("\t", id="tab"),
]
HOSTILE_TEXTS = [p.values[0] for p in HOSTILE]

TARGET = ["--python-version", "3.11", "--platform", "linux_x86_64"]
CLEAN_WHEEL = "torch-1.0.0+cpu-py3-none-any.whl"
SECRET = "s3cret"


def escaped(text: str) -> str:
    """How a hostile text reads once shown: Python's own escapes (an independent oracle),
    but a backslash stays one (a Windows path reads as written)."""
    return "".join("\\" if c == "\\" else c.encode("unicode_escape").decode() for c in text)


def assert_clean(*texts: str) -> None:
    for text in texts:
        assert not RAW_CONTROL.search(text), f"raw control character in {text!r}"
        assert SECRET not in text, f"a secret in {text!r}"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv), env=dict(os.environ))
    out, err = capsys.readouterr()
    return code, out, err


def with_credentials(url: str, userinfo: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{userinfo}@{rest}"


# -- the hostile index ----------------------------------------------------------------


def hostile_links(clean_sha256: str = "") -> list[tuple[str, str]]:
    """(href, the file name torchfit reads from it): one clean wheel, served, then one
    torch version per hostile text and place, so that ``torch==<version>`` picks that file."""
    links = [(f"/whl/cpu/{quote(CLEAN_WHEEL)}#sha256={clean_sha256}", CLEAN_WHEEL)]
    for number, text in enumerate(HOSTILE_TEXTS):
        in_build_tag = f"torch-2.0.{number}+cpu-1{text}-py3-none-any.whl"
        in_platform = f"torch-2.1.{number}+cpu-py3-none-any.{text}.whl"
        in_folder = f"torch-2.2.{number}+cpu-py3-none-any.whl"
        links += [(in_build_tag, in_build_tag), (in_platform, in_platform)]
        links.append((f"/whl/cpu/{text}/{in_folder}", in_folder))
    return links


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexServer]:
    root = tmp_path_factory.mktemp("hostile-index")
    page = root / "whl" / "cpu" / "torch" / "index.html"
    page.parent.mkdir(parents=True)
    clean = standin_torch(page.parent.parent, "1.0.0+cpu", cuda=None)
    anchors = [f'<a href="{h}">{n}</a><br/>' for h, n in hostile_links(sha256_of(clean))]
    page.write_text("<html><body>\n" + "\n".join(anchors) + "\n</body></html>\n", "utf-8")
    # A PEP 691 page naming a file on another host, with that host's own credentials.
    other = root / "other" / "cpu" / "torch" / "index.json"
    other.parent.mkdir(parents=True)
    wheel = "torch-1.0.1+cpu-py3-none-any.whl"
    files = [{"filename": wheel, "url": f"https://{SECRET}@files.example.org/{wheel}"}]
    other.write_text(json.dumps({"meta": {"api-version": "1.0"}, "files": files}), "utf-8")
    routes = {
        "/denied/whl/cpu/torch/": Response(401, {"WWW-Authenticate": "Basic"}, b""),
        "/broken/whl/cpu/torch/": Response(500, {}, b"busy\n"),
    }
    with serve_directory(root, routes) as server:
        yield server


@pytest.mark.parametrize("text", HOSTILE)
@pytest.mark.parametrize("place", ["build-tag", "platform-tag"])
def test_a_hostile_file_name_is_shown_escaped(
    capsys: pytest.CaptureFixture[str], index: IndexServer, place: str, text: str
) -> None:
    number = HOSTILE_TEXTS.index(text)
    version = f"2.0.{number}" if place == "build-tag" else f"2.1.{number}"
    name = next(n for _, n in hostile_links() if n.startswith(f"torch-{version}+"))
    argv = ["plan", f"torch=={version}", *TARGET, "--pytorch-index", f"{index.url}/whl"]
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert_clean(out, err)
    assert f"  torch {version}+cpu  {escaped(name)}" in out.splitlines()
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    assert_clean(out, err)
    assert json.loads(out)["packages"][0]["filename"] == name  # JSON gives the text back


@pytest.mark.parametrize("text", HOSTILE)
def test_a_hostile_folder_in_the_url_is_shown_escaped(
    capsys: pytest.CaptureFixture[str], index: IndexServer, text: str
) -> None:
    version = f"2.2.{HOSTILE_TEXTS.index(text)}"
    argv = ["plan", f"torch=={version}", *TARGET, "--json"]
    code, out, err = run(capsys, *argv, "--pytorch-index", f"{index.url}/whl")
    assert code == 0, err
    assert_clean(out, err)
    url = json.loads(out)["packages"][0]["url"]
    assert url == f"{index.url}/whl/cpu/{text}/torch-{version}+cpu-py3-none-any.whl"


@pytest.mark.parametrize("text", ESCAPES[:4] + ESCAPES[11:16])
def test_the_dry_run_line_escapes_a_hostile_url(
    capsys: pytest.CaptureFixture[str], index: IndexServer, text: str
) -> None:
    version = f"2.2.{HOSTILE_TEXTS.index(text)}"
    credentialed = with_credentials(f"{index.url}/whl", f"user:{SECRET}")
    argv = ["install", f"torch=={version}", "--python", sys.executable, "--dry-run"]
    code, out, err = run(capsys, *argv, "--pytorch-index", credentialed)
    assert code == 0, err
    assert_clean(out, err)
    would_run = out.splitlines()[-1]
    shown_url = with_credentials(f"{index.url}/whl/cpu/", "user:****")
    assert f"'torch @ {shown_url}{escaped(text)}/torch-{version}+cpu" in would_run
    code, out, err = run(capsys, *argv, "--pytorch-index", credentialed, "--json")
    assert code == 0, err
    assert_clean(out, err)
    assert f"{shown_url}{text}/torch-{version}+cpu" in json.loads(out)["command"][-1]


# -- credentials ----------------------------------------------------------------------

# (userinfo in the URL, how it is shown)
CREDENTIALS = [
    pytest.param(f"user:{SECRET}", "user:****", id="user-and-password"),
    pytest.param(SECRET, "****", id="bare-token"),
    pytest.param(f"__token__:pypi-{SECRET}", "__token__:****", id="pypi-token"),
    pytest.param(f"oauth2:glpat-{SECRET}", "oauth2:****", id="gitlab-token"),
    pytest.param(f"user%40corp.example:{SECRET}", "user%40corp.example:****", id="encoded-user"),
    pytest.param(f"user:{SECRET}%2F%3A%40x", "user:****", id="encoded-password"),
    pytest.param(f"user:pa@{SECRET}", "user:****", id="raw-at-in-password"),
    pytest.param(f"user::{SECRET}", "user:****", id="colon-in-password"),
]


def _everything_redacted(value: object, userinfo: str) -> None:
    if isinstance(value, dict):
        for item in value.values():
            _everything_redacted(item, userinfo)
    elif isinstance(value, list):
        for item in value:
            _everything_redacted(item, userinfo)
    elif isinstance(value, str):
        assert SECRET not in value and userinfo not in value


@pytest.mark.parametrize(("userinfo", "shown"), CREDENTIALS)
def test_credentials_in_the_index_url_are_hidden_from_the_dry_run(
    capsys: pytest.CaptureFixture[str], index: IndexServer, userinfo: str, shown: str
) -> None:
    credentialed = with_credentials(f"{index.url}/whl", userinfo)
    argv = ["install", "torch==1.0.0", "--python", sys.executable, "--dry-run"]
    code, out, err = run(capsys, *argv, "--pytorch-index", credentialed)
    assert code == 0, err
    assert_clean(out, err)
    shown_url = with_credentials(f"{index.url}/whl/cpu/{quote(CLEAN_WHEEL)}", shown)
    pinned = f"torch @ {shown_url}#sha256={sha256_of(index.root / 'whl' / 'cpu' / CLEAN_WHEEL)}"
    assert out.splitlines()[-1].endswith(f"pip install '{pinned}'")
    code, out, err = run(capsys, *argv, "--pytorch-index", credentialed, "--json")
    assert code == 0, err
    assert_clean(out, err)
    result = json.loads(out)
    _everything_redacted(result, userinfo)
    plan = result["plan"]
    assert plan["index"] == with_credentials(f"{index.url}/whl", shown)
    assert plan["packages"][0]["url"] == shown_url
    assert plan["pages"][0]["url"] == with_credentials(f"{index.url}/whl/cpu/torch/", shown)
    assert result["command"][-1] == pinned
    # Only the wire carried the credentials: the index was asked with them.
    asked = [r for r in index.received if r.path == "/whl/cpu/torch/"][-1]
    assert asked.headers["Authorization"].startswith("Basic ")


def test_the_library_keeps_the_real_url_for_its_callers(index: IndexServer) -> None:
    credentialed = with_credentials(f"{index.url}/whl", f"user:{SECRET}")
    asked_before = len(index.received)
    plan = torchfit.plan(
        "torch==1.0.0", index=credentialed, python_version="3.11", platforms=TARGET[3:]
    )
    assert plan.packages[0].url == f"{credentialed}/cpu/{quote(CLEAN_WHEEL)}"
    (asked,) = index.received[asked_before:]
    assert asked.headers["Authorization"] == f"Basic {base64.b64encode(b'user:s3cret').decode()}"


def test_credentials_a_page_names_for_another_host_are_hidden(
    capsys: pytest.CaptureFixture[str], index: IndexServer
) -> None:
    argv = ["plan", "torch==1.0.1", *TARGET, "--pytorch-index", f"{index.url}/other"]
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    assert_clean(out, err)
    url = json.loads(out)["packages"][0]["url"]
    assert url == "https://****@files.example.org/torch-1.0.1+cpu-py3-none-any.whl"


@pytest.mark.parametrize(("userinfo", "shown"), CREDENTIALS)
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_an_index_that_refuses_the_credentials(
    capsys: pytest.CaptureFixture[str],
    index: IndexServer,
    userinfo: str,
    shown: str,
    as_json: bool,
) -> None:
    credentialed = with_credentials(f"{index.url}/denied/whl", userinfo)
    argv = ["plan", "torch", *TARGET, "--pytorch-index", credentialed] + ["--json"] * as_json
    code, out, err = run(capsys, *argv)
    assert code == 1
    assert_clean(out, err)
    page = with_credentials(f"{index.url}/denied/whl/cpu/torch/", shown)
    if as_json:
        error = json.loads(out)["error"]
        assert error["type"] == "IndexFetchError"
        assert error["message"] == f"{page} answered HTTP 401"
    else:
        assert err.splitlines()[0] == f"error: {page} answered HTTP 401"


def test_a_server_error_names_the_page_without_its_secret(
    capsys: pytest.CaptureFixture[str], index: IndexServer
) -> None:
    credentialed = with_credentials(f"{index.url}/broken/whl", f"user:{SECRET}")
    code, out, err = run(capsys, "plan", "torch", *TARGET, "--pytorch-index", credentialed)
    assert code == 1 and out == ""
    assert_clean(err)
    page = with_credentials(f"{index.url}/broken/whl/cpu/torch/", "user:****")
    assert err.splitlines()[0] == f"error: {page} answered HTTP 500"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_an_unreachable_index_is_named_without_its_secret(
    capsys: pytest.CaptureFixture[str],
) -> None:
    where = f"127.0.0.1:{closed_port()}/whl"
    argv = ["plan", "torch", *TARGET, "--pytorch-index", f"http://user:{SECRET}@{where}"]
    code, out, err = run(capsys, *argv)
    assert code == 1 and out == ""
    assert_clean(err)
    assert err.startswith(f"error: could not reach http://user:****@{where}/cpu/torch/: ")


@pytest.mark.parametrize(("userinfo", "shown"), CREDENTIALS)
def test_a_refused_plain_http_index_is_named_without_its_secret(
    capsys: pytest.CaptureFixture[str], userinfo: str, shown: str
) -> None:
    url = f"http://{userinfo}@mirror.example.org/whl"
    code, out, err = run(capsys, "plan", "torch", *TARGET, "--pytorch-index", url)
    assert code == 2 and out == ""
    assert_clean(err)
    expected = f"error: refusing plain http:// for mirror.example.org: http://{shown}@mirror"
    assert err.startswith(expected)


def test_an_invalid_url_is_named_without_its_secret(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"https://user:{SECRET}@mirror.example.org:99999/whl"
    code, out, err = run(capsys, "plan", "torch", *TARGET, "--pytorch-index", url, "--json")
    assert code == 2
    assert_clean(out, err)
    assert "https://user:****@mirror.example.org:99999/whl" in json.loads(out)["error"]["message"]


def test_a_redirect_to_a_credentialed_plain_http_host_is_named_without_its_secret(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    to = f"http://user:{SECRET}@evil.example.org/whl/cpu/torch/"
    routes = {"/whl/cpu/torch/": Response(302, {"Location": to}, b"")}
    with serve_directory(tmp_path, routes) as server:
        argv = ["plan", "torch", *TARGET, "--pytorch-index", f"{server.url}/whl"]
        code, out, err = run(capsys, *argv)
    assert code == 1
    assert_clean(out, err)
    assert "refusing plain http:// for evil.example.org" in err


def test_library_errors_carry_no_secret() -> None:
    error = IndexFetchError(
        f"could not reach https://user:{SECRET}@mirror.example.org/whl/cu121/torch/",
        hint=f"check https://{SECRET}@mirror.example.org",
        details=(f"pip: 401 for http://user:{SECRET}@mirror.example.org/x.whl",),
    )
    error.details += (f"and https://user:{SECRET}@mirror.example.org",)  # added after raising
    error.hint = f"{error.hint}; or https://x:{SECRET}@y"
    texts = [str(error), error.message, error.hint, *error.details, json.dumps(error.to_json())]
    assert all(SECRET not in text for text in texts)
    assert str(error).startswith("could not reach https://user:****@mirror.example.org/whl/")


def test_the_library_raises_no_secret(index: IndexServer) -> None:
    credentialed = with_credentials(f"{index.url}/denied/whl", f"user:{SECRET}")
    with pytest.raises(TorchfitError) as caught:
        torchfit.plan("torch", index=credentialed, python_version="3.11", platforms=TARGET[3:])
    assert SECRET not in str(caught.value) and "user:****@127.0.0.1" in str(caught.value)


# -- the machine: GPU names, interpreter paths, the installer's output ----------------


def printf_script(path: Path, text: str, *, exit_code: int = 0) -> None:
    """A shell script that prints ``text`` byte for byte (octal escapes: NUL included)."""
    octal = "".join(f"\\{byte:03o}" for byte in text.encode("utf-8"))
    path.write_text(f"#!/bin/sh\nprintf '{octal}'\nexit {exit_code}\n", "utf-8")
    path.chmod(0o755)


@pytest.fixture
def fake_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "smi-bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return folder / "nvidia-smi"


posix_only = pytest.mark.skipif(sys.platform == "win32", reason="fakes are POSIX shell scripts")


@posix_only
@pytest.mark.parametrize("text", HOSTILE)
def test_a_hostile_gpu_name_is_shown_escaped(
    capsys: pytest.CaptureFixture[str], fake_smi: Path, text: str
) -> None:
    printf_script(fake_smi, f"550.54.14, Tesla {text}T4{text}, 7.5\n")
    code, out, err = run(capsys, "detect")
    assert code == 0, err
    assert_clean(out, err)
    assert out.splitlines()[0] == "NVIDIA driver 550.54.14: CUDA up to 12.4 (from nvidia-smi)"
    if text not in "".join(p.values[0] for p in LINE_BREAKS):
        assert f"  GPU: Tesla {escaped(text)}T4{escaped(text)} (compute capability 7.5)" in out
    code, out, err = run(capsys, "detect", "--json")
    assert code == 0, err
    assert_clean(out, err)
    smi = next(p for p in json.loads(out)["trace"] if p["source"] == "nvidia-smi")
    assert smi["raw"] == f"550.54.14, Tesla {text}T4{text}, 7.5"  # the raw text, kept exactly


@posix_only
@pytest.mark.parametrize("text", ESCAPES[:3] + ESCAPES[14:16])
def test_hostile_nvidia_smi_errors_are_shown_escaped(
    capsys: pytest.CaptureFixture[str], fake_smi: Path, text: str
) -> None:
    printf_script(fake_smi, f"NVIDIA-SMI has failed{text}: Driver/library mismatch\n", exit_code=9)
    code, out, err = run(capsys, "detect")
    assert code == 0, err
    assert_clean(out, err)
    assert f"  nvidia-smi: exit status 9: NVIDIA-SMI has failed{escaped(text)}" in out


@posix_only
@pytest.mark.parametrize("text", ESCAPES[:2] + ESCAPES[14:15])
def test_a_hostile_gpu_name_in_the_plan_reasons(
    capsys: pytest.CaptureFixture[str], fake_smi: Path, text: str
) -> None:
    printf_script(fake_smi, f"550.54.14, Tesla {text}T4, 7.5\n")
    code, out, err = run(capsys, "plan", "torch==2.5.1", "--offline", *TARGET)
    assert code == 0, err
    assert_clean(out, err)
    assert f"serves Tesla {escaped(text)}T4 (sm_75)" in out


def python_in(folder: Path) -> Path:
    """An interpreter at ``folder/python``: a script handing everything to this one."""
    folder.mkdir(parents=True)
    python = folder / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n', "utf-8")
    python.chmod(0o755)
    return python


@posix_only
@pytest.mark.parametrize("text", ESCAPES[:3] + ESCAPES[11:12] + ESCAPES[14:15] + IN_A_FIELD[-3:])
def test_a_hostile_interpreter_path_is_shown_escaped(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str
) -> None:
    python = python_in(tmp_path / f"env{text}name")
    code, out, err = run(capsys, "verify", "--python", str(python))
    assert code == 1  # no torch there
    assert_clean(out, err)
    assert out.splitlines()[0] == f"torch (not installed) in {escaped(str(python))}"
    code, out, err = run(capsys, "verify", "--python", str(python), "--json")
    assert_clean(out, err)
    assert json.loads(out)["python"] == str(python)
    code, out, err = run(capsys, "verify", "--python", str(python.with_name("missing")))
    assert code == 2
    assert_clean(out, err)
    assert err.startswith(f"error: cannot run --python {escaped(str(python.parent))}/missing")


def pip_that_prints(folder: Path, output: str) -> Path:
    """An interpreter whose ``-m pip install`` prints ``output`` and fails."""
    folder.mkdir()
    octal = "".join(f"\\{byte:03o}" for byte in output.encode("utf-8"))
    python = folder / "python"
    python.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = -m ] && [ "$2" = pip ] && [ "$3" = --version ]; then\n'
        "  echo 'pip 24.0 from /fake (python 3.11)'; exit 0\n"
        "fi\n"
        'if [ "$1" = -m ] && [ "$2" = pip ] && [ "$3" = install ]; then\n'
        f"  printf '{octal}'; exit 1\n"
        "fi\n"
        f'exec "{sys.executable}" "$@"\n',
        "utf-8",
    )
    python.chmod(0o755)
    return python


@posix_only
@pytest.mark.parametrize("text", ESCAPES[:2] + ESCAPES[11:12] + ESCAPES[14:15])
@pytest.mark.parametrize("verbosity", ["-q", "", "-v"], ids=["quiet", "default", "verbose"])
def test_hostile_installer_output_is_shown_escaped(
    capsys: pytest.CaptureFixture[str],
    index: IndexServer,
    tmp_path: Path,
    text: str,
    verbosity: str,
) -> None:
    output = (
        f"Collecting torch{text}\n"
        f"ERROR: HTTP error 403 while getting http://user:{SECRET}@127.0.0.1/x.whl{text}\n"
    )
    python = pip_that_prints(tmp_path / "bin", output)
    argv = ["install", "torch==1.0.0", "--python", str(python), "--pytorch-index"]
    credentialed = with_credentials(f"{index.url}/whl", f"user:{SECRET}")
    code, out, err = run(capsys, *argv, credentialed, *filter(None, [verbosity]))
    assert code == 1 and out == ""
    assert_clean(out, err)
    lines = err.splitlines()
    failed = next(n for n, line in enumerate(lines) if line.startswith("error: "))
    assert lines[failed].startswith("error: the installer failed (exit 1): ")
    shown = [
        "Collecting torch",
        "ERROR: HTTP error 403 while getting http://user:****@127.0.0.1/x.whl",
    ]
    shown = [line + escaped(text) for line in shown]
    assert lines[failed + 1 : failed + 3] == [f"  {line}" for line in shown]  # the output's tail
    if verbosity != "-q":  # streamed as it ran (stderr is no terminal: line by line)
        assert lines[failed - 2 : failed] == shown
    else:  # -q: kept for the error message only
        assert not set(shown) & set(lines[:failed])


# -- as a subprocess: the bytes a terminal would receive -------------------------------


def torchfit_process(*argv: str, path: str | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PATH": path or os.environ["PATH"]}
    return subprocess.run(
        [sys.executable, "-m", "torchfit", *argv], capture_output=True, env=env, timeout=120
    )


def assert_clean_bytes(*outputs: bytes) -> None:
    for output in outputs:
        assert_clean(output.decode("utf-8"))  # C1 controls arrive UTF-8 encoded


@posix_only
def test_detect_as_a_subprocess_sends_no_escape_to_the_terminal(fake_smi: Path) -> None:
    printf_script(fake_smi, "550.54.14, Tesla\x1b]0;pwned\x07 T4\u202e\x9b2J, 7.5\n")
    for argv in (["detect"], ["detect", "--json"], ["doctor"]):
        done = torchfit_process(*argv)
        assert done.returncode in (0, 1), done.stderr
        assert_clean_bytes(done.stdout, done.stderr)
        assert b"Tesla" in done.stdout


def test_a_dry_run_as_a_subprocess_shows_no_secret(index: IndexServer) -> None:
    text = "\x1b]0;pwned\x07"
    version = f"2.2.{HOSTILE_TEXTS.index(text)}"
    credentialed = with_credentials(f"{index.url}/whl", f"user:{SECRET}")
    argv = ["install", f"torch=={version}", "--python", sys.executable, "--dry-run"]
    for extra in ([], ["--json"]):
        done = torchfit_process(*argv, "--pytorch-index", credentialed, *extra)
        assert done.returncode == 0, done.stderr
        assert_clean_bytes(done.stdout, done.stderr)
        assert b"user:****@127.0.0.1" in done.stdout
    assert json.loads(done.stdout)["plan"]["packages"][0]["url"].count(text) == 1


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_a_hostile_index_url_as_a_subprocess_shows_no_secret(
    index: IndexServer, as_json: bool
) -> None:
    url = with_credentials(f"{index.url}/denied/wh\x1b[2Jl", SECRET)  # a typed control char
    argv = ["plan", "torch", *TARGET, "--pytorch-index", url, *["--json"] * as_json]
    done = torchfit_process(*argv)
    assert done.returncode == 2  # refused as typed, before any request
    assert_clean_bytes(done.stdout, done.stderr)
    output = json.loads(done.stdout)["error"]["message"] if as_json else done.stderr.decode()
    assert "it holds a control character" in output
    assert f"{with_credentials(index.url, '****')}/denied/wh" in output
    assert SECRET not in output


def test_verbose_logs_show_no_secret(index: IndexServer) -> None:
    credentialed = with_credentials(f"{index.url}/whl", f"user:{SECRET}")
    done = torchfit_process("plan", "torch==1.0.0", *TARGET, "--pytorch-index", credentialed, "-v")
    assert done.returncode == 0, done.stderr
    assert_clean_bytes(done.stdout, done.stderr)
