"""Fuzzing every parser of outside text with hypothesis: random text, and text built from
the fragments of the real shapes (index pages, nvidia-smi lines, /proc lines, requirements,
cache entries), so that the search spends its time near the inputs that matter.

Each parser may only return its documented value or raise its documented error: an index
page parser a list of Link or IndexFetchError; a flag parser a value or UsageError; a probe
parser a value or None; a cache entry reader a CachedPage or None.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from torchfit.choose.requirements import split_requirements
from torchfit.environment.target import from_spec
from torchfit.errors import IndexFetchError, UsageError
from torchfit.index.cache import CachedPage
from torchfit.index.pages import Link, parse_html_page, parse_json_page
from torchfit.machine.drivers import OSES, max_cuda_for_driver, parse_driver_version
from torchfit.machine.proc import parse_proc_driver_version
from torchfit.machine.smi import parse_compute_capability, parse_nvidia_smi_query
from torchfit.settings import parse_arch, parse_driver, parse_timeout
from torchfit.variants import Variant, parse_cuda

# A few thousand examples in all; no example database left in the working tree.
FUZZ = settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FEW = settings(FUZZ, max_examples=150)
PAGES = settings(FUZZ, max_examples=600)

TARGET = from_spec("3.12", ["manylinux_2_28_x86_64"])


def built_from(*fragments: str, max_size: int = 30) -> st.SearchStrategy[str]:
    """Text joined from ``fragments`` and short random text."""
    piece = st.one_of(st.sampled_from(fragments), st.text(max_size=4))
    return st.lists(piece, max_size=max_size).map("".join)


# Unicode digits, signs and spaces that a regex \d, int() or float() may take.
_TRICKY = ("\u0661", "\u0968", "\uff18", "\u00b2", "\u2007", "\u00a0", "\u2212", "_", "+", "-")
DIGITS = ("0", "1", "2", "7", "8", "9", "10", "12", "99", "100", "550", "570", "1234567")
NUMERIC = built_from(*DIGITS, ".", "..", " ", "\t", "\n", "e", "E", "x", *_TRICKY, max_size=10)


def _check_links(links: Any) -> None:
    assert isinstance(links, list)
    for link in links:
        assert isinstance(link, Link)
        assert link.filename.endswith(".whl") and "/" not in link.filename
        assert "#" not in link.url
        assert link.sha256 is None or re.fullmatch("[0-9a-f]{64}", link.sha256)
        assert link.metadata in (None, True, False) or re.fullmatch("[0-9a-f]{64}", link.metadata)


# -- index pages ----------------------------------------------------------------------------

_WHEEL = "torch-1.7.1+cu101-cp38-cp38-linux_x86_64"
_HTML = built_from(
    '<a href="',
    "<a href='",
    "<a href=",
    "<A HREF=",
    '">',
    "'>",
    ">",
    "</a>",
    "<br/>",
    '"',
    "'",
    ' data-requires-python="',
    "&gt;=3.6",
    "&lt;",
    "&amp;",
    "&#",
    "&#x",
    ";",
    " data-yanked",
    ' data-yanked="bad"',
    ' data-core-metadata="',
    ' data-dist-info-metadata="',
    "sha256=",
    "#sha256=",
    "#md5=",
    "true",
    "false",
    "#",
    '<base href="',
    "http://",
    "https://",
    "//",
    "[::1",
    "]",
    ":",
    ":99999",
    "%2B",
    "%",
    "%2F",
    "%00",
    "/",
    "../",
    "./",
    "?",
    "=",
    _WHEEL,
    ".whl",
    "a" * 64,
    "A" * 64,
    "0123456789abcdef",
    "<",
    "/>",
    "<!--",
    "-->",
    "<script>",
    "</script>",
    "<![CDATA[",
    "]]>",
    "<?",
    "<!DOCTYPE html>",
    "\x00",
    "\n",
    "\r",
    "\t",
    " ",
    "\u202e",
    max_size=40,
)
_PAGE_URLS = st.one_of(
    st.sampled_from(
        [
            "https://download.pytorch.org/whl/cu101/torch/",
            "https://download.pytorch.org/whl/torch_stable.html",
            "http://127.0.0.1:8080/whl/cpu/torch/",
            "https://u:p@mirror.example.org/simple/torch/",
            "https://[::1]:443/whl/",
            "https://example.org/a%20b/",
        ]
    ),
    st.text(max_size=30),
)


@PAGES
@given(text=st.one_of(_HTML, st.text()), page_url=_PAGE_URLS)
@example(text='<a href="http://[::1/x.whl">x</a>', page_url="https://h/")
@example(text='<base href="http://[::1"><a href="x.whl">', page_url="https://h/")
def test_parse_html_page(text: str, page_url: str) -> None:
    try:
        links = parse_html_page(text, page_url)
    except IndexFetchError as error:
        assert "\n" not in error.message.replace(page_url, "")  # one line, but the URL's own
        return
    _check_links(links)


_JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False),
        st.text(max_size=8),
        st.sampled_from([_WHEEL + ".whl", "a" * 64, "https://[::1/x.whl", "../x.whl", ">=3.8"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
_FILE_KEYS = ["filename", "url", "hashes", "requires-python", "yanked", "core-metadata"]
_FILE_KEYS += ["dist-info-metadata", "size", "upload-time"]
_ENTRY = st.dictionaries(
    st.sampled_from(_FILE_KEYS),
    st.one_of(
        _JSON_VALUES,
        st.fixed_dictionaries({"sha256": st.one_of(st.just("a" * 64), _JSON_VALUES)}),
        st.just(_WHEEL.replace("+", "%2B") + ".whl"),
    ),
)
_PEP691 = st.one_of(
    st.fixed_dictionaries(
        {"files": st.one_of(st.lists(st.one_of(_ENTRY, _JSON_VALUES), max_size=5), _JSON_VALUES)},
        optional={"meta": _JSON_VALUES, "name": _JSON_VALUES},
    ),
    _JSON_VALUES,
).map(json.dumps)


@PAGES
@given(
    text=st.one_of(_PEP691, st.text(), built_from("{", "}", "[", "]", '"files"', ":", ",")),
    page_url=_PAGE_URLS,
)
@example(text="[" * 50_000, page_url="https://h/")
@example(text='{"files": [{"url": "x.whl", "hashes": {"sha256": 5}}]}', page_url="https://h/")
def test_parse_json_page(text: str, page_url: str) -> None:
    try:
        links = parse_json_page(text, page_url)
    except IndexFetchError as error:
        assert "\n" not in error.message.replace(page_url, "")  # one line, but the URL's own
        return
    _check_links(links)


# -- nvidia-smi, /proc, driver versions ------------------------------------------------

_SMI = built_from(
    "550.54.14",
    "570.124.06",
    "99999999.1",
    "[N/A]",
    "[Not Supported]",
    "N/A",
    ", ",
    ",",
    "NVIDIA GeForce RTX 3090",
    "Tesla K80",
    "8.6",
    "12.0",
    "7.5",
    "100.0",
    "\n",
    "\r\n",
    " ",
    "Failed to initialize NVML: Driver/library version mismatch",
    "driver_version, name",
    "No devices were found",
    *DIGITS,
    ".",
    *_TRICKY,
)


@FUZZ
@given(text=st.one_of(_SMI, st.text()))
@example(text="550.54.14, A, B, [N/A]\n, x\n")
def test_parse_nvidia_smi_query(text: str) -> None:
    rows = parse_nvidia_smi_query(text)
    assert isinstance(rows, list)
    for driver, name, capability in rows:
        assert driver is None or parse_driver_version(driver) is not None
        assert name is None or isinstance(name, str)
        assert capability is None or _is_capability(capability)


def _is_capability(value: Any) -> bool:
    return (
        isinstance(value, tuple)
        and len(value) == 2
        and all(isinstance(n, int) and 0 <= n <= 99 for n in value)
    )


@FUZZ
@given(text=st.one_of(NUMERIC, st.text(max_size=12)))
def test_parse_compute_capability(text: str) -> None:
    result = parse_compute_capability(text)
    assert result is None or _is_capability(result)


_PROC = built_from(
    "NVRM version: NVIDIA UNIX x86_64 Kernel Module  ",
    "NVRM version: NVIDIA UNIX Open ",
    "Open Kernel Module for x86_64  ",
    "Kernel Module",
    "  Release Build  ",
    "550.144.03",
    "515.76",
    "  Mon Oct 17 00:00:00 UTC 2022",
    "GCC version:  gcc version 12.2.0",
    "\n",
    " ",
    "\t",
    "for",
    *DIGITS,
    ".",
    *_TRICKY,
)


@FUZZ
@given(text=st.one_of(_PROC, st.text()))
def test_parse_proc_driver_version(text: str) -> None:
    result = parse_proc_driver_version(text)
    assert result is None or re.fullmatch(r"\d+(\.\d+)+", result)


@FUZZ
@given(text=st.one_of(NUMERIC, st.text(max_size=20)), os=st.sampled_from(OSES))
@example(text="550.54.14", os="linux")
@example(text="9" * 6 + "." + "9" * 6, os="windows")
def test_parse_driver_version_and_max_cuda(text: str, os: str) -> None:
    parts = parse_driver_version(text)
    assert parts is None or (
        isinstance(parts, tuple) and 1 <= len(parts) <= 4 and all(p >= 0 for p in parts)
    )
    cuda = max_cuda_for_driver(text, os)
    assert cuda is None or (parts is not None and _is_capability(cuda))
    if os == "macos":
        assert cuda is None


# -- what the user types: variants, CUDA, arch, driver, timeout --------------------------

_VARIANTS = built_from(
    "cpu",
    "xpu",
    "cu",
    "rocm",
    "CU",
    "ROCM",
    "cuda",
    *DIGITS,
    ".",
    " ",
    "\x00",
    "/",
    "..",
    *_TRICKY,
    max_size=6,
)


@FUZZ
@given(text=st.one_of(_VARIANTS, st.text(max_size=12)))
def test_variant_parse(text: str) -> None:
    try:
        variant = Variant.parse(text)
    except UsageError:
        return
    assert variant.kind in ("cpu", "cuda", "rocm", "xpu")
    assert Variant.parse(variant.tag) == variant  # its tag names it again
    assert variant.tag.isascii() and "/" not in variant.tag


@FUZZ
@given(text=st.one_of(NUMERIC, st.text(max_size=12)))
def test_parse_cuda(text: str) -> None:
    try:
        major, minor = parse_cuda(text)
    except UsageError:
        return
    assert 0 <= major <= 99 and 0 <= minor <= 99


@FEW
@given(major=st.integers(0, 99), minor=st.integers(0, 99), patch=st.integers(0, 999))
def test_parse_cuda_reads_what_is_written(major: int, minor: int, patch: int) -> None:
    assert parse_cuda(f"{major}.{minor}") == (major, minor)
    assert parse_cuda(f"{major}.{minor}.{patch}") == (major, minor)


@FEW
@given(major=st.integers(0, 99), minor=st.integers(100, 999))
def test_parse_cuda_refuses_a_three_digit_minor(major: int, minor: int) -> None:
    """Was a bug: the patch part stood in for a missing minor, so '12.345' was CUDA 12.0."""
    with pytest.raises(UsageError):
        parse_cuda(f"{major}.{minor}")


@FEW
@given(text=built_from("\u0661", "\u0662", "\uff18", "\u0968", ".", max_size=5))
def test_accepted_versions_are_ascii(text: str) -> None:
    """Was a bug: a regex \\d matches any script's digits, so '\\u0661\\u0662.\\u0668'
    was CUDA 12.8."""
    for parse in (parse_cuda, parse_driver, parse_arch):
        try:
            parse(text)
        except UsageError:
            continue
        assert text.strip().isascii(), (parse.__name__, text)


@FUZZ
@given(text=st.one_of(_VARIANTS, NUMERIC, st.text(max_size=12), built_from("sm_", "SM_", *DIGITS)))
def test_parse_arch(text: str) -> None:
    try:
        capability = parse_arch(text)
    except UsageError:
        return
    assert _is_capability(capability)


@FUZZ
@given(text=st.one_of(NUMERIC, st.text(max_size=20)))
def test_parse_driver(text: str) -> None:
    try:
        driver = parse_driver(text)
    except UsageError:
        return
    assert driver == text.strip() and parse_driver_version(driver) is not None


_TIMEOUTS = st.one_of(
    NUMERIC,
    st.floats().map(repr),
    st.integers().map(str),
    built_from("nan", "inf", "-", "+", "e", "1e400", "_", " ", "0x", "infinity", "NaN", "1", "0"),
)


@FUZZ
@given(text=st.one_of(_TIMEOUTS, st.text(max_size=12)))
@example(text="9" * 5000)
def test_parse_timeout(text: str) -> None:
    try:
        seconds = parse_timeout(text, "--timeout")
    except UsageError as error:
        assert "--timeout" in error.message
        return
    assert isinstance(seconds, float) and math.isfinite(seconds) and seconds > 0


# -- requirements ----------------------------------------------------------------------

_REQUIREMENT = built_from(
    "torch",
    "torchvision",
    "torchaudio",
    "numpy",
    "Torch",
    "torch_vision",
    "==",
    ">=",
    "<=",
    "<",
    ">",
    "~=",
    "===",
    "!=",
    ",",
    ";",
    " ",
    "python_version",
    "python_full_version",
    "sys_platform",
    "platform_machine",
    "platform_release",
    "implementation_name",
    "extra",
    "os_name",
    "'3.8'",
    "'3.12'",
    '"linux"',
    "'x86_64'",
    " and ",
    " or ",
    " in ",
    " not in ",
    "(",
    ")",
    "[",
    "]",
    "cuda",
    "@",
    " @ ",
    "https://x.example/t.whl",
    "file:///t.whl",
    "1.7.1",
    "2.8.0",
    "+cu128",
    ".*",
    "*",
    ".",
    "1" * 31,
    "\x00",
    "\x1b",
    "\u202e",
    "#",
    max_size=20,
)


@FUZZ
@given(requirements=st.lists(st.one_of(_REQUIREMENT, st.text(max_size=20)), min_size=1, max_size=3))
@example(requirements=["torch; " + "(" * 300 + "python_version == '3.12'" + ")" * 300])
@example(requirements=["torch==1." + "9" * 40])
@example(requirements=["torch; platform_release >= '5'"])
def test_split_requirements(requirements: list[str]) -> None:
    try:
        family, others = split_requirements(requirements, TARGET)
    except UsageError as error:
        assert "\n" not in error.message
        return
    assert family and all(r.name in ("torch", "torchvision", "torchaudio") for r in family)
    assert all(isinstance(text, str) for text in others)
    assert len(family) + len(others) <= len(requirements)


# -- cache entries ---------------------------------------------------------------------

_URL = "https://download.pytorch.org/whl/cu101/torch/"
_GOOD_ENTRY: dict[str, Any] = {
    "url": _URL,
    "body": "<a href='x.whl'>x</a>",
    "content_type": "text/html",
    "final_url": _URL,
    "etag": '"abc"',
    "last_modified": "Mon, 01 Jan 2024 00:00:00 GMT",
    "fetched": "2024-01-01T00:00:00Z",
    "stored_at": 1_700_000_000.0,
    "lifetime": 600.0,
}
_ODD_VALUES = st.one_of(
    _JSON_VALUES,
    st.floats(),  # NaN and the infinities too: json.loads reads them
    st.integers(min_value=-(10**400), max_value=10**400),
    st.sampled_from([True, False, 10**400, -(10**400), float("inf"), 2**63, "600"]),
)


def near_entry(values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A good entry with a few fields dropped and a few set to ``values``."""
    return st.builds(
        lambda changes, dropped: {
            **{k: v for k, v in _GOOD_ENTRY.items() if k not in dropped},
            **changes,
        },
        st.dictionaries(st.sampled_from([*_GOOD_ENTRY, "extra"]), values, max_size=3),
        st.sets(st.sampled_from(list(_GOOD_ENTRY)), max_size=2),
    )


_BOUNDED = st.one_of(_JSON_VALUES, st.floats(), st.sampled_from([True, 2**63, "600", -1.0]))


@FUZZ
@given(data=st.one_of(near_entry(_ODD_VALUES), _JSON_VALUES, _ODD_VALUES))
@example(data=_GOOD_ENTRY)
@example(data={**_GOOD_ENTRY, "lifetime": float("nan")})
def test_cached_page_from_json(data: Any) -> None:
    """Never an exception: a time of 10**400 (JSON reads it as an int) once made
    math.isfinite raise OverflowError, which reading the cache did not catch."""
    own = data.get("url") if isinstance(data, dict) else None
    for url in {_URL, own if isinstance(own, str) else _URL}:
        entry = CachedPage.from_json(data, url)
        assert entry is None or isinstance(entry, CachedPage)
        if entry is not None:
            assert entry.url == url and isinstance(entry.body, str)
            assert math.isfinite(entry.stored_at)
            assert entry.lifetime is None or math.isfinite(entry.lifetime)


@FUZZ
@given(data=st.one_of(near_entry(_BOUNDED), _JSON_VALUES))
def test_cached_page_from_json_without_huge_integers(data: Any) -> None:
    """The same property near the valid shape without huge integers, and what it reads
    back is written back."""
    entry = CachedPage.from_json(data, _URL)
    assert entry is None or (isinstance(entry, CachedPage) and entry.url == _URL)
    if entry is not None:
        assert json.loads(json.dumps(entry.__dict__))["url"] == _URL  # it writes back
