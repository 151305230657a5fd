"""Bad input through the real command line: every malformed requirement, flag value,
``TORCHFIT_*`` variable, ``--python`` and verb ends in one ``error:`` line and the exit code
a pip user expects (2: the command line was wrong; 1: torchfit could not do what was asked).

Each case also proves what the user never sees: a traceback, an "internal error", a raw
control character, a credential. Cases the code gets wrong are strict xfails named "BUG: ...".
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from torchfit.cli.main import main

TARGET = ["--python-version", "3.8", "--platform", "linux_x86_64"]
OFFLINE = ["--offline", *TARGET]
CUDA = ["--cuda", "10.1"]
MEGABYTE = 1 << 20
# Anything but the newline between lines: C0 controls, DEL and the C1 controls.
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")
_SECRET = "s3cret-token"


def plan(*requirements: str) -> list[str]:
    """``torchfit plan REQ... --offline --python-version 3.8 --platform linux_x86_64``,
    with ``--cuda 10.1``."""
    return ["plan", *requirements, *OFFLINE, *CUDA]


def plan_with(*flags: str) -> list[str]:
    """A good offline plan of torch==1.7.1, with ``flags`` added (the last of a flag wins)."""
    return ["plan", "torch==1.7.1", *OFFLINE, *CUDA, *flags]


def bug(reason: str, *values: Any, id: str) -> Any:
    """A case the code gets wrong: a strict xfail whose reason says what goes wrong."""
    return pytest.param(
        *values, id=id, marks=pytest.mark.xfail(strict=True, reason="BUG: " + reason)
    )


def regression(reason: str, *values: Any, id: str) -> Any:
    """A case that was a bug (``reason`` says what went wrong), fixed since: a plain case."""
    return pytest.param(*values, id=id)


def run_cli(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], env: dict[str, str]
) -> tuple[int, str, str]:
    code = main(argv, env={"TORCHFIT_CACHE_DIR": str(tmp_path / "cache"), **env})
    out, err = capsys.readouterr()
    return code, out, err


def assert_outcome(
    code: int, out: str, err: str, expected: int, needle: str | None, given: list[str]
) -> None:
    """The exit code, and the shape of what was printed: for an error exactly one
    ``error:`` line (first), then detail lines indented two spaces, then at most one hint."""
    both = out + err
    assert "Traceback" not in both, both[-2000:]
    assert "internal error" not in both, both[-2000:]
    assert not _CONTROL.search(out), repr(out[:500])
    assert not _CONTROL.search(err), repr(err[:500])
    if any(_SECRET in word for word in given):
        assert _SECRET not in both
    assert code == expected, err[:2000]
    lines = err.splitlines()
    if expected == 0:
        assert not [line for line in lines if line.startswith("error:")], err[:2000]
        return
    assert out == "", out[:2000]
    assert lines and lines[0].startswith("error: "), err[:2000]
    rest = lines[1:]
    if rest and rest[-1].startswith("hint: "):
        rest = rest[:-1]
    assert all(line.startswith("  ") for line in rest), err[:2000]
    if needle is not None:
        assert needle in lines[0], lines[0][:2000]


# -- requirements ---------------------------------------------------------------------

INVALID = "invalid requirement"
TOO_LONG = "too long"
OWN_FILE = "torchfit chooses the file for"
NO_FAMILY = "no torch-family requirement given"
CANNOT_EVALUATE = "cannot evaluate the marker"
NO_WHEEL = "no wheel of"

REQUIREMENTS = [
    # bad operators
    pytest.param("torch>=>1", 2, INVALID, id="op->=>"),
    pytest.param("torch=<1.7", 2, INVALID, id="op-=<"),
    pytest.param("torch=>1.7", 2, INVALID, id="op-=>"),
    pytest.param("torch!1.7", 2, INVALID, id="op-!"),
    pytest.param("torch<<1", 2, INVALID, id="op-<<"),
    pytest.param("torch~1.7", 2, INVALID, id="op-~"),
    pytest.param("torch ==", 2, INVALID, id="op-without-version"),
    pytest.param("torch===", 2, INVALID, id="op-===-without-version"),
    pytest.param("torch~=1", 2, INVALID, id="op-~=-one-part"),
    pytest.param("torch==1.7.*.1", 2, INVALID, id="wildcard-inside"),
    pytest.param("torch==1.7.1+", 2, INVALID, id="empty-local-label"),
    pytest.param("==1.7.1", 2, INVALID, id="no-name"),
    pytest.param("torch==1.7.1 torchvision", 2, INVALID, id="two-in-one-word"),
    pytest.param("torch==1.7.1 --hash=sha256:abc", 2, INVALID, id="requirements-file-option"),
    pytest.param("torch==1.7.1 # comment", 2, INVALID, id="comment"),
    pytest.param("t\u00f6rch==1.7.1", 2, INVALID, id="non-ascii-name"),
    pytest.param("", 2, INVALID, id="empty"),
    pytest.param(" ", 2, INVALID, id="blank"),
    pytest.param("\t", 2, INVALID, id="tab"),
    # unbalanced brackets
    pytest.param("torch[", 2, INVALID, id="bracket-open"),
    pytest.param("torch]", 2, INVALID, id="bracket-close"),
    pytest.param("torch[cuda", 2, INVALID, id="bracket-unclosed-extra"),
    pytest.param("torch (==1.7.1", 2, INVALID, id="paren-open"),
    pytest.param("torch ==1.7.1)", 2, INVALID, id="paren-close"),
    pytest.param("torch; (python_version == '3.8'", 2, INVALID, id="marker-paren-open"),
    pytest.param("torch; " + "(" * 400 + "python_version == '3.8'", 2, INVALID, id="paren-400"),
    # huge
    pytest.param("torch==" + "1" * 20_000, 2, TOO_LONG, id="version-20000-digits"),
    pytest.param("torch==1." + "9" * 40, 2, TOO_LONG, id="version-part-40-digits"),
    pytest.param("torch>=" + "9" * 31, 2, TOO_LONG, id="version-31-digits"),
    pytest.param("torch; python_version > '" + "3" * 40 + "'", 2, TOO_LONG, id="marker-number"),
    pytest.param("x" * MEGABYTE, 2, TOO_LONG, id="1MB-name"),
    pytest.param("torch==1.7.1; os_name == '" + "a" * MEGABYTE + "'", 2, TOO_LONG, id="1MB-marker"),
    pytest.param("torch[" + "a," * 100_000 + "a]", 2, TOO_LONG, id="100k-extras"),
    # NUL and control characters
    pytest.param("torch\x00==1.7.1", 2, INVALID, id="nul-in-name"),
    pytest.param("torch==1.7.1\x00", 2, INVALID, id="nul-at-end"),
    pytest.param("torch==1.7.1\x1b[2J", 2, INVALID, id="escape-sequence"),
    pytest.param("torch==1.7.1\x1b]0;owned\x07", 2, INVALID, id="osc-title"),
    pytest.param("torch==1.7.1\r\nnumpy", 2, INVALID, id="crlf"),
    pytest.param("tor\x7fch", 2, INVALID, id="del"),
    pytest.param("torch==1.7.1\x85", 2, INVALID, id="c1-nel"),
    pytest.param("torch==1.7.1\u202e", 2, INVALID, id="bidi-override"),
    pytest.param("torch\u2028", 2, INVALID, id="line-separator"),
    pytest.param("torch==1.7.1\x08\x08\x08", 2, INVALID, id="backspaces"),
    # markers that are malformed, or cannot be evaluated
    pytest.param("torch;", 2, INVALID, id="marker-empty"),
    pytest.param("torch; python_version", 2, INVALID, id="marker-no-op"),
    pytest.param("torch; python_version ==", 2, INVALID, id="marker-no-value"),
    pytest.param("torch; python_version == '3.8' and", 2, INVALID, id="marker-dangling-and"),
    pytest.param("torch; python_version == 3.8", 2, INVALID, id="marker-unquoted"),
    pytest.param("torch; foo == 'bar'", 2, INVALID, id="marker-unknown-variable"),
    pytest.param("torch; python_version ~= 'abc'", 2, CANNOT_EVALUATE, id="marker-~=-text"),
    pytest.param("torch; python_version ~= '3'", 2, CANNOT_EVALUATE, id="marker-~=-one-part"),
    pytest.param("torch; python_full_version ~= 'x'", 2, CANNOT_EVALUATE, id="marker-full-~="),
    pytest.param("torch; python_version < '3'", 2, NO_FAMILY, id="marker-false"),
    pytest.param("torch; extra == 'gpu'", 2, NO_FAMILY, id="marker-extra"),
    pytest.param("torch; python_version in 'x'", 2, NO_FAMILY, id="marker-in"),
    regression(
        "a --python-version/--platform target has no platform_release: the marker is "
        "evaluated with this host's kernel release (environment/target.py "
        "marker_environment; packaging fills the gaps from the running interpreter)",
        "torch; platform_release >= '5'",
        2,
        CANNOT_EVALUATE,
        id="marker-platform-release",
    ),
    regression(
        "implementation_version of a --python-version 3.8 target is the host's (3.11), "
        "so a marker true for the target drops torch (environment/target.py "
        "marker_environment lacks implementation_version)",
        "torch==1.7.1; implementation_version < '3.9'",
        0,
        None,
        id="marker-implementation-version",
    ),
    # URLs and extras on torch-family projects
    pytest.param("torch @ https://download.pytorch.org/whl/t.whl", 2, OWN_FILE, id="url"),
    pytest.param("torch@https://x.example/y.whl", 2, OWN_FILE, id="url-no-spaces"),
    pytest.param("torch @ file:///tmp/torch.whl", 2, OWN_FILE, id="url-file"),
    pytest.param("torch @ git+https://github.com/pytorch/pytorch", 2, OWN_FILE, id="url-vcs"),
    pytest.param("torch @ ftp://x.example/t.whl", 2, OWN_FILE, id="url-ftp"),
    pytest.param(f"torch @ https://u:{_SECRET}@h.example/t.whl", 2, OWN_FILE, id="url-secret"),
    pytest.param("TORCH @ https://x.example/y.whl", 2, OWN_FILE, id="url-upper-name"),
    pytest.param("torchvision @ https://x.example/tv.whl", 2, OWN_FILE, id="url-torchvision"),
    pytest.param("torch @ ", 2, INVALID, id="url-empty"),
    # extras are planned, and reach the installer (torch[opt-einsum] @ file://…)
    pytest.param("torch[cuda]", 0, None, id="extra"),
    pytest.param("torch[cuda,cudnn]==1.7.1", 0, None, id="extras-pinned"),
    pytest.param("torchvision[scipy]", 0, None, id="extra-torchvision"),
    # the extra is accepted; the cu101 snapshots hold no torchaudio for Python 3.8
    pytest.param("torchaudio[sox]", 1, NO_WHEEL, id="extra-torchaudio"),
    # well-formed, but nothing can satisfy it: torchfit's error, not the command line's
    pytest.param("torch<=1.0,>=2.0", 1, NO_WHEEL, id="contradiction"),
    pytest.param("torch==9999", 1, NO_WHEEL, id="no-such-release"),
    pytest.param("torch===foo", 1, NO_WHEEL, id="arbitrary-equality"),
    pytest.param("numpy", 2, NO_FAMILY, id="only-numpy"),
]


@pytest.mark.parametrize(("requirement", "code", "needle"), REQUIREMENTS)
def test_bad_requirement(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    requirement: str,
    code: int,
    needle: str | None,
) -> None:
    argv = plan(requirement)
    assert_outcome(*run_cli(capsys, tmp_path, argv, {}), code, needle, argv)


@pytest.mark.parametrize(
    ("requirements", "code", "needle"),
    [
        pytest.param(["torch==1.7.1", "numpy>=>1"], 2, "invalid requirement 'numpy", id="other"),
        pytest.param(["torch==1.7.1", "torch==1.8.0"], 1, NO_WHEEL, id="two-pins"),
        pytest.param(["torch==1.7.1", "torch[x]"], 0, None, id="pin-and-extra"),
        pytest.param(["numpy", "scipy"], 2, NO_FAMILY, id="no-family"),
    ],
)
def test_bad_requirement_lists(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    requirements: list[str],
    code: int,
    needle: str | None,
) -> None:
    argv = plan(*requirements)
    assert_outcome(*run_cli(capsys, tmp_path, argv, {}), code, needle, argv)


# -- flag values -----------------------------------------------------------------------

BAD_CUDA = "invalid CUDA version"
BAD_DRIVER = "invalid driver version"
BAD_ARCH = "invalid GPU architecture"
BAD_VARIANT = "unknown variant"
EMPTY = "an empty value was given to"
BAD_TIMEOUT = "invalid --timeout"
NOT_HTTP = "not an http(s) URL with a host"
PLAIN_HTTP = "refusing plain http://"
BAD_URL = "invalid URL"
_NON_ASCII_DIGITS = (
    "non-ASCII digits are taken for a version: a regex \\d matches any Unicode digit "
    "(variants.py parse_cuda, machine/drivers.py _VERSION, machine/smi.py _CAPABILITY)"
)

FLAGS = [
    # --cuda
    pytest.param(["--cuda", "twelve"], 2, BAD_CUDA, id="cuda-word"),
    pytest.param(["--cuda", ""], 2, EMPTY, id="cuda-empty"),
    pytest.param(["--cuda", "   "], 2, EMPTY, id="cuda-blank"),
    pytest.param(["--cuda", "12."], 2, BAD_CUDA, id="cuda-trailing-dot"),
    pytest.param(["--cuda", ".8"], 2, BAD_CUDA, id="cuda-leading-dot"),
    pytest.param(["--cuda", "12.8.1.1"], 2, BAD_CUDA, id="cuda-four-parts"),
    pytest.param(["--cuda", "123.4"], 2, BAD_CUDA, id="cuda-three-digit-major"),
    regression(
        "'12.345' is read as CUDA 12.0: the optional minor lets the patch group take '.345' "
        "(variants.py parse_cuda: nest the patch inside the minor group)",
        ["--cuda", "12.345"],
        2,
        BAD_CUDA,
        id="cuda-three-digit-minor",
    ),
    regression(
        "'12.100' is read as CUDA 12.0 (variants.py parse_cuda, as above)",
        ["--cuda", "12.100"],
        2,
        BAD_CUDA,
        id="cuda-minor-100",
    ),
    pytest.param(["--cuda", "-1"], 2, BAD_CUDA, id="cuda-negative"),
    pytest.param(["--cuda", "1e2"], 2, BAD_CUDA, id="cuda-exponent"),
    pytest.param(["--cuda", "12,8"], 2, BAD_CUDA, id="cuda-comma"),
    pytest.param(["--cuda", "cu121"], 2, BAD_CUDA, id="cuda-tag"),
    pytest.param(["--cuda", "12.8\x00"], 2, BAD_CUDA, id="cuda-nul"),
    pytest.param(["--cuda", "12.8\x1b[2J"], 2, BAD_CUDA, id="cuda-escape"),
    pytest.param(["--cuda", "9" * 20_000], 2, BAD_CUDA, id="cuda-20000-digits"),
    regression(
        _NON_ASCII_DIGITS, ["--cuda", "\u0661\u0662.\u0668"], 2, BAD_CUDA, id="cuda-arabic-digits"
    ),
    pytest.param(["--cuda"], 2, "expected one argument", id="cuda-missing"),
    # --driver
    pytest.param(["--driver", "latest"], 2, BAD_DRIVER, id="driver-word"),
    pytest.param(["--driver", ""], 2, EMPTY, id="driver-empty"),
    pytest.param(["--driver", "550.54.14.1.2"], 2, BAD_DRIVER, id="driver-five-parts"),
    pytest.param(["--driver", "1234567.1"], 2, BAD_DRIVER, id="driver-seven-digits"),
    pytest.param(["--driver", "550..54"], 2, BAD_DRIVER, id="driver-double-dot"),
    pytest.param(["--driver", ".550"], 2, BAD_DRIVER, id="driver-leading-dot"),
    pytest.param(["--driver", "550."], 2, BAD_DRIVER, id="driver-trailing-dot"),
    pytest.param(["--driver", "550.54.14-1"], 2, BAD_DRIVER, id="driver-dash"),
    pytest.param(["--driver", "v550.54.14"], 2, BAD_DRIVER, id="driver-v-prefix"),
    pytest.param(["--driver", "550 54"], 2, BAD_DRIVER, id="driver-space"),
    pytest.param(["--driver", "550.54\n14"], 2, BAD_DRIVER, id="driver-newline"),
    pytest.param(["--driver", "-550"], 2, BAD_DRIVER, id="driver-negative"),
    pytest.param(["--driver", "5" * 20_000], 2, BAD_DRIVER, id="driver-20000-digits"),
    regression(
        _NON_ASCII_DIGITS,
        ["--driver", "\u0665\u0665\u0660.\u0665\u0664"],
        2,
        BAD_DRIVER,
        id="driver-arabic-digits",
    ),
    # --gpu-arch
    pytest.param(["--gpu-arch", "abc"], 2, BAD_ARCH, id="arch-word"),
    pytest.param(["--gpu-arch", ""], 2, BAD_ARCH, id="arch-empty"),
    pytest.param(["--gpu-arch", "8"], 2, BAD_ARCH, id="arch-major-only"),
    pytest.param(["--gpu-arch", "8.6.1"], 2, BAD_ARCH, id="arch-three-parts"),
    pytest.param(["--gpu-arch", "sm_"], 2, BAD_ARCH, id="arch-sm-empty"),
    pytest.param(["--gpu-arch", "sm_8"], 2, BAD_ARCH, id="arch-sm-one-digit"),
    pytest.param(["--gpu-arch", "sm_abc"], 2, BAD_ARCH, id="arch-sm-word"),
    pytest.param(["--gpu-arch", "compute_86"], 2, BAD_ARCH, id="arch-compute"),
    pytest.param(["--gpu-arch", "100.0"], 2, BAD_ARCH, id="arch-three-digit-major"),
    pytest.param(["--gpu-arch", "8,6"], 2, BAD_ARCH, id="arch-comma"),
    pytest.param(["--gpu-arch", "8.6,9.0"], 2, BAD_ARCH, id="arch-list-in-flag"),
    pytest.param(["--gpu-arch", "\x1b[31m8.6"], 2, BAD_ARCH, id="arch-escape"),
    pytest.param(["--gpu-arch", "-8.6"], 2, BAD_ARCH, id="arch-negative"),
    regression(
        _NON_ASCII_DIGITS, ["--gpu-arch", "\u0668.\u0666"], 2, BAD_ARCH, id="arch-arabic-digits"
    ),
    # --variant
    pytest.param(["--variant", "cuda12"], 2, BAD_VARIANT, id="variant-cuda12"),
    pytest.param(["--variant", "cu"], 2, BAD_VARIANT, id="variant-cu"),
    pytest.param(["--variant", "cu1"], 2, BAD_VARIANT, id="variant-cu1"),
    pytest.param(["--variant", "cu1234"], 2, BAD_VARIANT, id="variant-cu1234"),
    pytest.param(["--variant", "rocm"], 2, BAD_VARIANT, id="variant-rocm"),
    pytest.param(["--variant", "rocm6"], 2, BAD_VARIANT, id="variant-rocm6"),
    pytest.param(["--variant", "rocm6.2.3.4"], 2, BAD_VARIANT, id="variant-rocm-four-parts"),
    pytest.param(["--variant", "gpu"], 2, BAD_VARIANT, id="variant-gpu"),
    pytest.param(["--variant", "metal"], 2, BAD_VARIANT, id="variant-metal"),
    pytest.param(["--variant", ""], 2, EMPTY, id="variant-empty"),
    pytest.param(["--variant", "cpu\x00"], 2, BAD_VARIANT, id="variant-nul"),
    pytest.param(["--variant", "../cu118"], 2, BAD_VARIANT, id="variant-path-up"),
    pytest.param(["--variant", "cu118/../../etc"], 2, BAD_VARIANT, id="variant-path-down"),
    pytest.param(["--variant", "cpu\u202e"], 2, BAD_VARIANT, id="variant-bidi"),
    # --compat
    pytest.param(["--compat", "loose"], 2, "invalid choice: 'loose'", id="compat-word"),
    pytest.param(["--compat", ""], 2, "invalid choice: ''", id="compat-empty"),
    pytest.param(["--compat", "STRICT"], 2, "invalid choice: 'STRICT'", id="compat-upper"),
    # --python-version (replaces 3.8: the last flag wins)
    pytest.param(["--python-version", "2.7"], 2, "invalid --python-version", id="pyver-2.7"),
    pytest.param(["--python-version", "3"], 2, "invalid --python-version", id="pyver-3"),
    pytest.param(["--python-version", "3.100"], 2, "invalid --python-version", id="pyver-3.100"),
    pytest.param(["--python-version", "4.0"], 2, "invalid --python-version", id="pyver-4.0"),
    pytest.param(["--python-version", "3.x"], 2, "invalid --python-version", id="pyver-3.x"),
    pytest.param(["--python-version", ""], 2, EMPTY, id="pyver-empty"),
    pytest.param(["--python-version", "3.8\x00"], 2, "invalid --python-version", id="pyver-nul"),
    pytest.param(
        ["--python-version", "3." + "9" * 20_000], 2, "invalid --python-version", id="pyver-huge"
    ),
    regression(
        "pip's --python-version takes up to three parts (3.8.10); torchfit refuses them "
        "(environment/target.py from_spec)",
        ["--python-version", "3.8.10"],
        0,
        None,
        id="pyver-three-parts-as-pip",
    ),
    # --platform (added to linux_x86_64)
    pytest.param(["--platform", "Linux"], 2, "invalid --platform", id="platform-upper"),
    pytest.param(["--platform", ""], 2, "invalid --platform", id="platform-empty"),
    pytest.param(["--platform", "linux-x86_64"], 2, "invalid --platform", id="platform-dash"),
    pytest.param(["--platform", "win_amd64\x00"], 2, "invalid --platform", id="platform-nul"),
    pytest.param(["--platform", "../../etc"], 2, "invalid --platform", id="platform-path"),
    pytest.param(["--platform", "manylinux 2014"], 2, "invalid --platform", id="platform-space"),
    # --pytorch-index
    pytest.param(["--pytorch-index", "ftp://mirror.example.org/whl"], 2, NOT_HTTP, id="index-ftp"),
    pytest.param(["--pytorch-index", "file:///tmp/whl"], 2, NOT_HTTP, id="index-file"),
    pytest.param(["--pytorch-index", "whl"], 2, NOT_HTTP, id="index-relative"),
    pytest.param(
        ["--pytorch-index", "download.pytorch.org/whl"], 2, NOT_HTTP, id="index-no-scheme"
    ),
    pytest.param(["--pytorch-index", "https:///whl"], 2, NOT_HTTP, id="index-no-host"),
    pytest.param(["--pytorch-index", "javascript:alert(1)"], 2, NOT_HTTP, id="index-javascript"),
    pytest.param(["--pytorch-index", ""], 2, EMPTY, id="index-empty"),
    pytest.param(
        ["--pytorch-index", "http://mirror.example.org/whl"], 2, PLAIN_HTTP, id="index-http"
    ),
    pytest.param(
        ["--pytorch-index", "HTTP://mirror.example.org/whl"], 2, PLAIN_HTTP, id="index-HTTP"
    ),
    pytest.param(["--pytorch-index", "http://10.0.0.1/whl"], 2, PLAIN_HTTP, id="index-http-lan"),
    pytest.param(
        ["--pytorch-index", "http://localhost.evil.example/whl"],
        2,
        PLAIN_HTTP,
        id="index-localhost-",
    ),
    pytest.param(
        ["--pytorch-index", "http://127.0.0.1:99999/whl"], 2, BAD_URL, id="index-port-big"
    ),
    pytest.param(
        ["--pytorch-index", "http://127.0.0.1:65536/whl"], 2, BAD_URL, id="index-port-65536"
    ),
    pytest.param(["--pytorch-index", "http://127.0.0.1:-1/whl"], 2, BAD_URL, id="index-port-neg"),
    pytest.param(
        ["--pytorch-index", "https://h.example:abc/whl"], 2, BAD_URL, id="index-port-word"
    ),
    pytest.param(["--pytorch-index", "https://[::1/whl"], 2, BAD_URL, id="index-ipv6-open"),
    pytest.param(
        ["--pytorch-index", f"https://u:{_SECRET}@[::1/whl"], 2, BAD_URL, id="index-secret-hidden"
    ),
    pytest.param(
        ["--pytorch-index", "ftp://" + "a" * 10_000 + "/whl"], 2, NOT_HTTP, id="index-10KB-ftp"
    ),
    pytest.param(
        ["--pytorch-index", "http://mirror.example.org/" + "a" * 10_000],
        2,
        PLAIN_HTTP,
        id="index-10KB-http",
    ),
    # A long URL is no error by itself: offline, the bundled snapshots answer.
    pytest.param(
        ["--pytorch-index", "https://mirror.example.org/" + "a" * 10_000],
        0,
        None,
        id="index-10KB-https-offline",
    ),
    regression(
        "a NUL in --pytorch-index passes check_url (index/urls.py): offline it is accepted, "
        "online it fails only at the request, as a network error",
        ["--pytorch-index", "https://h.example\x00/whl"],
        2,
        BAD_URL,
        id="index-nul",
    ),
    regression(
        "an escape sequence in --pytorch-index passes check_url (index/urls.py)",
        ["--pytorch-index", "https://h.example/wh\x1b[2Jl"],
        2,
        BAD_URL,
        id="index-escape",
    ),
    # --timeout
    pytest.param(["--timeout", "0"], 2, BAD_TIMEOUT, id="timeout-0"),
    pytest.param(["--timeout", "-1"], 2, BAD_TIMEOUT, id="timeout--1"),
    pytest.param(["--timeout", "nan"], 2, BAD_TIMEOUT, id="timeout-nan"),
    pytest.param(["--timeout", "inf"], 2, BAD_TIMEOUT, id="timeout-inf"),
    pytest.param(["--timeout", "-inf"], 2, "expected one argument", id="timeout--inf-as-flag"),
    pytest.param(["--timeout=-inf"], 2, BAD_TIMEOUT, id="timeout--inf"),
    pytest.param(["--timeout=-0"], 2, BAD_TIMEOUT, id="timeout--0"),
    pytest.param(["--timeout", "abc"], 2, BAD_TIMEOUT, id="timeout-word"),
    pytest.param(["--timeout", "1e400"], 2, BAD_TIMEOUT, id="timeout-overflow"),
    pytest.param(["--timeout", "0x10"], 2, BAD_TIMEOUT, id="timeout-hex"),
    pytest.param(["--timeout", "5s"], 2, BAD_TIMEOUT, id="timeout-unit"),
    pytest.param(["--timeout", ""], 2, EMPTY, id="timeout-empty"),
    # --trusted-host does not make a URL of the wrong shape trusted
    pytest.param(
        [
            "--pytorch-index",
            "http://mirror.example.org/whl",
            "--trusted-host",
            "http://mirror.example.org",
        ],
        2,
        PLAIN_HTTP,
        id="trusted-host-url",
    ),
    pytest.param(
        [
            "--pytorch-index",
            "http://mirror.example.org/whl",
            "--trusted-host",
            "mirror.example.org/whl",
        ],
        2,
        PLAIN_HTTP,
        id="trusted-host-path",
    ),
    pytest.param(
        ["--pytorch-index", "http://mirror.example.org/whl", "--trusted-host", "*"],
        2,
        PLAIN_HTTP,
        id="trusted-host-wildcard",
    ),
    pytest.param(
        ["--pytorch-index", "http://mirror.example.org/whl", "--trusted-host", "example.org"],
        2,
        PLAIN_HTTP,
        id="trusted-host-parent-domain",
    ),
    pytest.param(
        [
            "--pytorch-index",
            "http://mirror.example.org:8080/whl",
            "--trusted-host",
            "mirror.example.org:80",
        ],
        2,
        PLAIN_HTTP,
        id="trusted-host-other-port",
    ),
    pytest.param(["--trusted-host"], 2, "expected one argument", id="trusted-host-missing"),
    # flags that are not this verb's, or not anyone's
    pytest.param(["--installer", "pip"], 2, "unrecognized arguments", id="install-only-flag"),
    pytest.param(["--frobnicate"], 2, "unrecognized arguments", id="unknown-flag"),
    pytest.param(["--cuda=12.1=3"], 2, BAD_CUDA, id="flag-equals-twice"),
]


@pytest.mark.parametrize(("flags", "code", "needle"), FLAGS)
def test_bad_flag_value(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    flags: list[str],
    code: int,
    needle: str | None,
) -> None:
    argv = plan_with(*flags)
    assert_outcome(*run_cli(capsys, tmp_path, argv, {}), code, needle, argv)


@pytest.mark.parametrize(
    ("argv", "code", "needle"),
    [
        pytest.param(
            ["plan", "torch", "--offline", "--python-version", "3.8"],
            2,
            "--python-version needs at least one --platform",
            id="pyver-without-platform",
        ),
        regression(
            "--platform without --python-version says \"invalid --python-version ''\" "
            "(environment/target.py from_spec is handed an empty version by Session.target)",
            ["plan", "torch", "--offline", "--platform", "linux_x86_64"],
            2,
            "--platform",
            id="platform-without-pyver",
        ),
        pytest.param(
            ["plan", "torch", *OFFLINE, "--python", sys.executable],
            2,
            "--python cannot be combined",
            id="python-and-pyver",
        ),
        pytest.param(
            ["install", "torch==1.7.1", *OFFLINE, *CUDA, "--dry-run"],
            2,
            "cannot be installed here",
            id="install-for-another-machine",
        ),
        pytest.param(
            ["install", "torch", "--installer", "conda"], 2, "invalid choice", id="installer"
        ),
        pytest.param(
            ["plan", "torch==1.7.1", *OFFLINE, "--driver", "0"],
            1,
            "older than every CUDA release",
            id="driver-zero",
        ),
        pytest.param(
            ["plan", "torch==1.7.1", *OFFLINE, "--cuda", "0.0"],
            1,
            "older than every known CUDA build",
            id="cuda-0.0",
        ),
    ],
)
def test_bad_flag_combination(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    argv: list[str],
    code: int,
    needle: str,
) -> None:
    assert_outcome(*run_cli(capsys, tmp_path, argv, {}), code, needle, argv)


_ECHOED = "the whole value is echoed in the error line, a megabyte of it"


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        pytest.param(plan("torch==" + "1" * MEGABYTE), {}, id="requirement"),
        regression(_ECHOED, plan_with("--cuda", "9" * MEGABYTE), {}, id="cuda"),
        regression(_ECHOED, plan_with("--variant", "x" * MEGABYTE), {}, id="variant"),
        regression(
            _ECHOED, plan_with("--pytorch-index", "ftp://" + "a" * MEGABYTE), {}, id="index"
        ),
        regression(
            _ECHOED, ["plan", "torch", *OFFLINE], {"TORCHFIT_DRIVER": "5" * MEGABYTE}, id="env"
        ),
    ],
)
def test_a_megabyte_value_is_not_echoed_whole(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], env: dict[str, str]
) -> None:
    code, out, err = run_cli(capsys, tmp_path, argv, env)
    assert_outcome(code, out, err, 2, None, argv)
    assert len(err) < 10_000


# -- TORCHFIT_* and PIP_* variables ----------------------------------------------------

ENVIRONMENT = [
    ("TORCHFIT_CUDA", "x", BAD_CUDA),
    ("TORCHFIT_CUDA", "12.", BAD_CUDA),
    ("TORCHFIT_CUDA", "12.8;rm -rf /", BAD_CUDA),
    ("TORCHFIT_CUDA", "\x1b[31m", BAD_CUDA),
    ("TORCHFIT_CUDA", "1" * 20_000, BAD_CUDA),
    ("TORCHFIT_DRIVER", "latest", BAD_DRIVER),
    ("TORCHFIT_DRIVER", "550..1", BAD_DRIVER),
    ("TORCHFIT_DRIVER", "550.54.14\x00", BAD_DRIVER),
    ("TORCHFIT_DRIVER", "5" * 20_000, BAD_DRIVER),
    ("TORCHFIT_GPU_ARCH", "x", BAD_ARCH),
    ("TORCHFIT_GPU_ARCH", "8.6,abc", BAD_ARCH),
    ("TORCHFIT_GPU_ARCH", "8.6;9.0", BAD_ARCH),
    ("TORCHFIT_GPU_ARCH", "sm_86 sm_90", BAD_ARCH),
    ("TORCHFIT_GPU_ARCH", "8.6,,x", BAD_ARCH),
    ("TORCHFIT_VARIANT", "cu", BAD_VARIANT),
    ("TORCHFIT_VARIANT", "cuda", BAD_VARIANT),
    ("TORCHFIT_VARIANT", "../cpu", BAD_VARIANT),
    ("TORCHFIT_TIMEOUT", "0", "invalid TORCHFIT_TIMEOUT"),
    ("TORCHFIT_TIMEOUT", "-5", "invalid TORCHFIT_TIMEOUT"),
    ("TORCHFIT_TIMEOUT", "nan", "invalid TORCHFIT_TIMEOUT"),
    ("TORCHFIT_TIMEOUT", "inf", "invalid TORCHFIT_TIMEOUT"),
    ("TORCHFIT_TIMEOUT", "abc", "invalid TORCHFIT_TIMEOUT"),
    ("PIP_TIMEOUT", "0", "invalid PIP_TIMEOUT"),
    ("PIP_TIMEOUT", "-1", "invalid PIP_TIMEOUT"),
    ("PIP_TIMEOUT", "abc", "invalid PIP_TIMEOUT"),
    ("PIP_TIMEOUT", "1e999", "invalid PIP_TIMEOUT"),
    ("PIP_DEFAULT_TIMEOUT", "soon", "invalid PIP_DEFAULT_TIMEOUT"),
    ("TORCHFIT_PYTORCH_INDEX", "ftp://mirror.example.org/whl", NOT_HTTP),
    ("TORCHFIT_PYTORCH_INDEX", "http://mirror.example.org/whl", PLAIN_HTTP),
    ("TORCHFIT_PYTORCH_INDEX", "https://[::1/whl", BAD_URL),
]


@pytest.mark.parametrize(
    ("name", "value", "needle"),
    [pytest.param(*case, id=f"{case[0]}={case[1][:12]!r}") for case in ENVIRONMENT],
)
def test_bad_variable_on_plan(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, value: str, needle: str
) -> None:
    argv = ["plan", "torch==1.7.1", *OFFLINE]
    assert_outcome(*run_cli(capsys, tmp_path, argv, {name: value}), 2, needle, argv)


@pytest.mark.parametrize(
    ("name", "value", "needle"),
    [
        ("TORCHFIT_CUDA", "x", BAD_CUDA),
        ("TORCHFIT_DRIVER", "latest", BAD_DRIVER),
        ("TORCHFIT_GPU_ARCH", "8.6,abc", BAD_ARCH),
        ("TORCHFIT_VARIANT", "cu", BAD_VARIANT),
        ("TORCHFIT_TIMEOUT", "-1", "invalid TORCHFIT_TIMEOUT"),
        ("PIP_TIMEOUT", "nan", "invalid PIP_TIMEOUT"),
    ],
)
def test_bad_variable_on_detect(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, value: str, needle: str
) -> None:
    argv = ["detect"]
    assert_outcome(*run_cli(capsys, tmp_path, argv, {name: value}), 2, needle, argv)


def test_a_flag_outvotes_a_bad_variable(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # The bad TORCHFIT_CUDA is never read: --driver decides the driver and its CUDA.
    argv = ["plan", "torch==1.7.1", *OFFLINE, "--driver", "418.39"]
    env = {"TORCHFIT_CUDA": "garbage", "TORCHFIT_TIMEOUT": "5"}
    assert_outcome(*run_cli(capsys, tmp_path, argv, env), 0, None, argv)


# -- --python that is no Python --------------------------------------------------------

_FACTS = (
    '{"version": [3, 12, 0], "implementation": "cpython", "platform": "linux-x86_64",'
    ' "libc": ["glibc", "2.35"], "mac": "", "machine": "x86_64", "abiflags": "",'
    ' "free_threaded": false}'
)
NOT_PYTHON = "did not answer like a Python interpreter"
CANNOT_RUN = "cannot run --python"
_SHAPE = (
    "an interpreter probe answer of the wrong shape escapes as an internal error "
    "(environment/target.py from_interpreter catches ValueError/KeyError/TypeError/"
    "IndexError, not AttributeError)"
)
_INSTALLED_SHAPE = (
    "a torch probe answer that is JSON of the wrong shape is a KeyError (check/verify.py "
    "read_torch/_parse take any dict)"
)


def _answers(facts: str) -> str:
    """A script that answers the interpreter probe with ``facts`` and the torch probe with {}."""
    return (
        '#!/bin/sh\ncase "$*" in\n'
        f"  *interpreter.py*) echo '{facts}' ;;\n"
        "  *) echo '{}' ;;\nesac\n"
    )


# name -> (script text, or None for no file; file mode)
SCRIPTS: dict[str, tuple[str | None, int]] = {
    "missing": (None, 0),
    "directory": ("", 0),
    "not-executable": ("#!/bin/sh\necho hi\n", 0o644),
    "shell-hello": ("#!/bin/sh\necho 'hello world'\n", 0o755),
    "prints-nothing": ("#!/bin/sh\nexit 0\n", 0o755),
    "exits-3": ("#!/bin/sh\necho boom >&2\nexit 3\n", 0o755),
    "binary-garbage": ("#!/bin/sh\nprintf '\\033[2J\\000\\377\\376garbage\\n'\n", 0o755),
    "five-megabytes": ("#!/bin/sh\nhead -c 5000000 /dev/zero | tr '\\0' x\n", 0o755),
    "json-list": ("#!/bin/sh\necho '[]'\n", 0o755),
    "json-null": ("#!/bin/sh\necho null\n", 0o755),
    "json-partial": ("#!/bin/sh\necho '{\"version\": [3, 12, 0]}'\n", 0o755),
    "json-version-text": (
        "#!/bin/sh\necho '" + _FACTS.replace("[3, 12, 0]", '"3.12"') + "'\n",
        0o755,
    ),
    "json-short-libc": ("#!/bin/sh\necho '" + _FACTS.replace('"2.35"', '"2"') + "'\n", 0o755),
    "json-platform-number": (
        "#!/bin/sh\necho '" + _FACTS.replace('"linux-x86_64"', "5") + "'\n",
        0o755,
    ),
    "json-mac-number": (
        "#!/bin/sh\necho '"
        + _FACTS.replace('"linux-x86_64"', '"macosx-11.0-arm64"').replace('"mac": ""', '"mac": 5')
        + "'\n",
        0o755,
    ),
    "answers-facts-then-empty-json": (_answers(_FACTS), 0o755),
    "crlf-shebang": ("#!/bin/sh\r\necho hi\r\n", 0o755),
    "symlink-loop": (None, 0),
    "nul-in-path": (None, 0),
    "empty": (None, 0),
}


def _python_path(tmp_path: Path, name: str) -> str:
    text, mode = SCRIPTS[name]
    path = tmp_path / f"python-{name}"
    if name == "empty":
        return ""
    if name == "nul-in-path":
        return str(path) + "\x00x"
    if name == "symlink-loop":
        path.symlink_to(path)
        return str(path)
    if name == "directory":
        path.mkdir()
        return str(path)
    if text is not None:
        path.write_text(text, encoding="utf-8", newline="")
        path.chmod(mode)
    return str(path)


_NUL = (
    "a NUL in --python is a ValueError from subprocess that the runner does not catch "
    "(_runner.py run catches only OSError from Popen)"
)
PYTHONS = [
    # verb, script, code, needle
    ("plan", "missing", 2, CANNOT_RUN),
    ("plan", "directory", 2, CANNOT_RUN),
    ("plan", "not-executable", 2, CANNOT_RUN),
    ("plan", "shell-hello", 2, NOT_PYTHON),
    ("plan", "prints-nothing", 2, NOT_PYTHON),
    ("plan", "exits-3", 2, "failed to start: boom"),
    ("plan", "binary-garbage", 2, NOT_PYTHON),
    ("plan", "five-megabytes", 2, NOT_PYTHON),
    ("plan", "json-list", 2, NOT_PYTHON),
    ("plan", "json-null", 2, NOT_PYTHON),
    ("plan", "json-partial", 2, NOT_PYTHON),
    ("plan", "json-version-text", 2, NOT_PYTHON),
    ("plan", "json-short-libc", 2, NOT_PYTHON),
    regression(
        _SHAPE, "plan", "json-platform-number", 2, NOT_PYTHON, id="plan-json-platform-number"
    ),
    regression(_SHAPE, "plan", "json-mac-number", 2, NOT_PYTHON, id="plan-json-mac-number"),
    ("plan", "crlf-shebang", 2, CANNOT_RUN),
    ("plan", "symlink-loop", 2, CANNOT_RUN),
    regression(_NUL, "plan", "nul-in-path", 2, CANNOT_RUN, id="plan-nul-in-path"),
    ("plan", "empty", 2, EMPTY),
    ("detect", "missing", 2, CANNOT_RUN),
    ("detect", "shell-hello", 2, NOT_PYTHON),
    regression(_NUL, "detect", "nul-in-path", 2, CANNOT_RUN, id="detect-nul-in-path"),
    ("doctor", "missing", 2, CANNOT_RUN),
    ("doctor", "directory", 2, CANNOT_RUN),
    ("doctor", "prints-nothing", 2, NOT_PYTHON),
    ("doctor", "binary-garbage", 2, NOT_PYTHON),
    regression(
        _SHAPE, "doctor", "json-platform-number", 2, NOT_PYTHON, id="doctor-json-platform-number"
    ),
    regression(
        _INSTALLED_SHAPE,
        "doctor",
        "answers-facts-then-empty-json",
        1,
        "could not inspect torch",
        id="doctor-answers-facts-then-empty-json",
    ),
    ("verify", "missing", 2, CANNOT_RUN),
    ("verify", "not-executable", 2, CANNOT_RUN),
    ("verify", "exits-3", 2, "failed to start"),
    regression(
        _INSTALLED_SHAPE,
        "verify",
        "answers-facts-then-empty-json",
        1,
        "could not inspect torch",
        id="verify-answers-facts-then-empty-json",
    ),
    ("restore", "missing", 2, CANNOT_RUN),
    ("restore", "shell-hello", 2, NOT_PYTHON),
    ("install", "missing", 2, CANNOT_RUN),
    ("install", "json-null", 2, NOT_PYTHON),
]


@pytest.mark.skipif(sys.platform == "win32", reason="the fake interpreters are shell scripts")
@pytest.mark.parametrize(
    ("verb", "script", "code", "needle"),
    [
        case if hasattr(case, "marks") else pytest.param(*case, id=f"{case[0]}-{case[1]}")
        for case in PYTHONS
    ],
)
def test_bad_python(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    verb: str,
    script: str,
    code: int,
    needle: str,
) -> None:
    python = _python_path(tmp_path, script)
    argv = [verb, "--python", python]
    if verb in ("plan", "install"):
        argv += ["torch==1.7.1", "--offline", *CUDA]
    if verb == "install":
        argv.append("--dry-run")
    assert_outcome(*run_cli(capsys, tmp_path, argv, {}), code, needle, argv)


# -- verbs and flags that do not exist ------------------------------------------------

VERBS = [
    pytest.param([], "the following arguments are required: VERB", id="nothing"),
    pytest.param(["frobnicate"], "invalid choice: 'frobnicate'", id="unknown-verb"),
    pytest.param(["PLAN"], "invalid choice: 'PLAN'", id="upper-case-verb"),
    pytest.param([""], "invalid choice: ''", id="empty-verb"),
    pytest.param(["\x1b[2J"], "invalid choice", id="escape-verb"),
    pytest.param(["plan\x00"], "invalid choice", id="nul-verb"),
    pytest.param(["uninstall", "torch"], "invalid choice: 'uninstall'", id="pip-verb"),
    pytest.param(["--frob"], "the following arguments are required: VERB", id="unknown-top-flag"),
    pytest.param(["-v"], "the following arguments are required: VERB", id="verbose-only"),
    pytest.param(["plan"], "no torch-family requirement given", id="plan-no-requirement"),
    pytest.param(["install"], "no torch-family requirement given", id="install-no-req"),
    pytest.param(["detect", "--what"], "unrecognized arguments: --what", id="detect-unknown"),
    pytest.param(["detect", "torch"], "unrecognized arguments: torch", id="detect-requirement"),
    pytest.param(["detect", "--compat", "strict"], "unrecognized arguments", id="detect-compat"),
    pytest.param(["detect", "--", "x"], "passes nothing to an installer", id="detect-dashdash"),
    pytest.param(
        ["plan", "torch", "--", "-U"], "passes nothing to an installer", id="plan-dashdash"
    ),
    pytest.param(["doctor", "--variant", "cpu"], "unrecognized arguments", id="doctor-variant"),
    pytest.param(["verify", "extra"], "unrecognized arguments: extra", id="verify-positional"),
    pytest.param(["restore", "--dry-run"], "unrecognized arguments", id="restore-dry-run"),
    pytest.param(["verify", "--compat", "loose"], "invalid choice: 'loose'", id="verify-compat"),
    pytest.param(["detect", "--gpu-arch"], "expected one argument", id="detect-arch-missing"),
    pytest.param(["detect", "--json=yes"], "ignored explicit argument", id="json-with-value"),
]


@pytest.mark.parametrize(("argv", "needle"), VERBS)
def test_unknown_verbs_and_flags(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], needle: str
) -> None:
    assert_outcome(*run_cli(capsys, tmp_path, argv, {}), 2, needle, argv)


# -- the same funnel in JSON --------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "kind"),
    [
        (plan("torch>=>1"), "UsageError"),
        (plan("torch\x1b[2J"), "UsageError"),
        (plan_with("--cuda", "twelve"), "UsageError"),
        (plan_with("--pytorch-index", f"https://u:{_SECRET}@[::1/whl"), "UsageError"),
        (plan("torch==9999"), "NoCompatibleWheel"),
        (["detect", "--what"], "UsageError"),
        ([], "UsageError"),
    ],
)
def test_bad_input_as_json(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], kind: str
) -> None:
    import json

    code, out, err = run_cli(capsys, tmp_path, [*argv, "--json"], {})
    assert code == (1 if kind == "NoCompatibleWheel" else 2)
    assert err == ""
    assert not _CONTROL.search(out.replace("\n", ""))
    assert _SECRET not in out
    error = json.loads(out)["error"]
    assert error["type"] == kind
    assert "\n" not in error["message"]


# -- as a subprocess: the raw bytes ---------------------------------------------------------

SUBPROCESS = [
    pytest.param(plan("torch>=>1"), {}, 2, INVALID, id="requirement"),
    pytest.param(plan("torch==1.7.1\x1b]0;owned\x07"), {}, 2, INVALID, id="osc-title"),
    pytest.param(plan("torch\u202e==1.7.1"), {}, 2, INVALID, id="bidi"),
    pytest.param(plan("torch==" + "1" * 20_000), {}, 2, TOO_LONG, id="20000-digits"),
    pytest.param(plan_with("--cuda", "12\x1b[2J"), {}, 2, BAD_CUDA, id="cuda-escape"),
    pytest.param(plan_with("--timeout", "nan"), {}, 2, BAD_TIMEOUT, id="timeout-nan"),
    pytest.param(plan_with("--pytorch-index", "ftp://x.example/whl"), {}, 2, NOT_HTTP, id="ftp"),
    pytest.param(
        plan_with("--pytorch-index", f"http://u:{_SECRET}@mirror.example.org/whl"),
        {},
        2,
        PLAIN_HTTP,
        id="http-secret",
    ),
    pytest.param(
        ["plan", "torch", *OFFLINE], {"TORCHFIT_DRIVER": "\x1b[31m"}, 2, BAD_DRIVER, id="env"
    ),
    pytest.param(["frobnicate"], {}, 2, "invalid choice", id="verb"),
    pytest.param(["detect", "--python", "/nonexistent/python"], {}, 2, CANNOT_RUN, id="python"),
    pytest.param(plan("torch==9999"), {}, 1, NO_WHEEL, id="no-wheel"),
]


@pytest.mark.parametrize(("argv", "env", "code", "needle"), SUBPROCESS)
def test_bad_input_as_a_subprocess(
    tmp_path: Path, argv: list[str], env: dict[str, str], code: int, needle: str
) -> None:
    environment = {**os.environ, "TORCHFIT_CACHE_DIR": str(tmp_path / "cache"), **env}
    environment.pop("PYTHONIOENCODING", None)
    done = subprocess.run(
        [sys.executable, "-m", "torchfit", *argv],
        capture_output=True,
        env=environment,
        timeout=60,
        check=False,
    )
    raw = done.stdout + done.stderr
    # Raw bytes: nothing below 0x20 but the newline, no DEL, and text that decodes.
    assert not re.search(rb"[\x00-\x09\x0b-\x1f\x7f]", raw), raw[:500]
    out, err = done.stdout.decode("utf-8"), done.stderr.decode("utf-8")
    assert_outcome(done.returncode, out, err, code, needle, argv)


# -- requirement files (-r/-c) through the real command line -----------------------------

REQUIREMENT_FILES = [
    pytest.param({}, ["-r", "missing.txt"], "cannot read requirements file missing", id="missing"),
    pytest.param(
        {"req.txt": "torch\n-r sub/gone.txt\n"},
        ["-r", "req.txt"],
        "cannot read requirements file sub/gone.txt (named at req.txt:2)",
        id="missing-nested",
    ),
    pytest.param(
        {"a.txt": "torch\n-r b.txt\n", "b.txt": "-r a.txt\n"},
        ["-r", "a.txt"],
        "requirement files include each other: a.txt -> b.txt -> a.txt",
        id="cycle",
    ),
    pytest.param(
        {"req.txt": "torch==1.7.1\n--no-deps\n"},
        ["-r", "req.txt"],
        "req.txt:2: --no-deps is not an option pip allows in a requirements file",
        id="unknown-option",
    ),
    pytest.param(
        {"req.txt": "torch==1.7.1\n", "c.txt": "--target /tmp/x\n"},
        ["-r", "req.txt", "-c", "c.txt"],
        "c.txt:1: --target is not an option pip allows",
        id="unknown-option-in-constraints",
    ),
    pytest.param(
        {"req.txt": "torch==1.7.1 --hash=sha256:nothex\n"},
        ["-r", "req.txt"],
        "req.txt:1: --hash 'sha256:nothex' is not ALGORITHM:HEX",
        id="bad-hash",
    ),
    pytest.param({"req.txt": "torch>=>1\n"}, ["-r", "req.txt"], "req.txt:1: invalid", id="invalid"),
    pytest.param(
        {"req.txt": "torch==1.7.1\x1b]0;owned\x07\n"},
        ["-r", "req.txt"],
        "req.txt:1: invalid requirement",
        id="escape-in-file",
    ),
    pytest.param(
        {"req.txt": "torch==1.7.1+cu101\ntorchvision==0.8.2+cu110\n"},
        ["-r", "req.txt"],
        "the local labels of the requirements name two variants",
        id="two-labels",
    ),
    pytest.param(
        {"req.txt": "torch==1.7.1+cu101\n"},
        ["-r", "req.txt", "--variant", "cpu"],
        "--variant cpu disagrees with the local label of torch==1.7.1+cu101",
        id="label-and-variant",
    ),
    pytest.param({"req.txt": "numpy\n"}, ["-r", "req.txt"], NO_FAMILY, id="no-family-in-file"),
]


@pytest.mark.parametrize(("files", "args", "needle"), REQUIREMENT_FILES)
def test_bad_requirement_files_as_a_subprocess(
    tmp_path: Path, files: dict[str, str], args: list[str], needle: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    environment = {**os.environ, "TORCHFIT_CACHE_DIR": str(tmp_path / "cache")}
    argv = ["plan", *args, *OFFLINE, *CUDA]
    done = subprocess.run(
        [sys.executable, "-m", "torchfit", *argv],
        capture_output=True,
        cwd=tmp_path,
        env=environment,
        timeout=60,
        check=False,
    )
    assert not re.search(rb"[\x00-\x09\x0b-\x1f\x7f]", done.stdout + done.stderr)
    out, err = done.stdout.decode("utf-8"), done.stderr.decode("utf-8")
    assert_outcome(done.returncode, out, err, 2, needle, argv)
