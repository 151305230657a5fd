"""The page parsers on their own: large pages, HTML as real indexes write it, bad input."""

from __future__ import annotations

import logging
import posixpath
import random
import re
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

import pytest

from torchfit.errors import IndexFetchError
from torchfit.index.pages import _Resolver, parse_html_page, parse_json_page

PAGE_URL = "https://download.pytorch.org/whl/cpu/torch/"
HASH = "0123456789abcdef" * 4


def pytorch_page(count: int) -> str:
    """A page shaped like download.pytorch.org's: host-absolute hrefs, entity-escaped
    Requires-Python, both PEP 658 and PEP 714 metadata attributes on some links."""
    rows = []
    for i in range(count):
        name = f"torch-2.{i}.0%2Bcpu-cp312-cp312-manylinux_2_28_x86_64.whl"
        meta = f' data-dist-info-metadata="sha256={HASH}" data-core-metadata="sha256={HASH}"'
        rows.append(
            f'    <a href="/whl/cpu/{name}#sha256={HASH}" data-requires-python="&gt;=3.9"'
            f"{meta if i % 2 else ''}>{unquote(name)}</a><br/>"
        )
    body = "\n".join(rows)
    return f"<!DOCTYPE html>\n<html>\n  <body>\n    <h1>Links for torch</h1>\n{body}\n</body>\n"


def test_a_page_of_ten_thousand_links_parses_completely() -> None:
    links = parse_html_page(pytorch_page(10_000), PAGE_URL)
    assert len(links) == 10_000
    assert [link.filename for link in links[:2]] == [
        "torch-2.0.0+cpu-cp312-cp312-manylinux_2_28_x86_64.whl",
        "torch-2.1.0+cpu-cp312-cp312-manylinux_2_28_x86_64.whl",
    ]
    last = links[-1]
    assert last.url == (
        "https://download.pytorch.org/whl/cpu/torch-2.9999.0%2Bcpu-cp312-cp312-manylinux_2_28_x86_64.whl"
    )
    assert (last.sha256, last.requires_python, last.metadata, last.folder) == (
        HASH,
        ">=3.9",
        HASH,
        "cpu",
    )
    assert {link.metadata for link in links[::2]} == {None}
    assert all(link.sha256 == HASH for link in links)


def test_attribute_quoting_case_and_entities() -> None:
    page = """
    <A HREF='a-1.0-py3-none-any.whl' Data-Requires-Python='>=3.8,&lt;4'>a</A>
    <a href=b-1.0-py3-none-any.whl data-yanked>b</a>
    <a
       href="c-1.0-py3-none-any.whl"
       data-requires-python=">=3.9"
       data-yanked="broken build">c</a>
    <a href="d-1.0-py3-none-any.whl" href="ignored.whl">d</a>
    """
    a, b, c, d = parse_html_page(page, PAGE_URL)
    assert (a.filename, a.requires_python, a.yanked) == (
        "a-1.0-py3-none-any.whl",
        ">=3.8,<4",
        False,
    )
    assert (b.url, b.yanked) == (PAGE_URL + "b-1.0-py3-none-any.whl", True)
    assert (c.requires_python, c.yanked) == (">=3.9", True)
    assert d.filename == "d-1.0-py3-none-any.whl"  # the first of a repeated attribute wins


def test_base_href_and_what_is_not_markup() -> None:
    page = """<html><head><base href="../mirror/">
    <!-- <a href="commented-1.0-py3-none-any.whl">no</a> -->
    <script>var s = '<a href="scripted-1.0-py3-none-any.whl">';</script>
    <style>a[href$=".whl"] {}</style>
    </head><body>
    <a href="x-1.0-py3-none-any.whl">x</a>
    <a href="x-1.0.tar.gz">an sdist</a>
    <a>no href</a>
    <base href="/ignored/">
    </body></html>"""
    (link,) = parse_html_page(page, "https://example.org/whl/cpu/torch/")
    assert link.url == "https://example.org/whl/cpu/mirror/x-1.0-py3-none-any.whl"
    assert link.folder == "mirror"


def test_a_base_after_the_links_still_applies() -> None:
    page = '<a href="x-1.0-py3-none-any.whl">x</a><base href="https://files.example.org/f/">'
    (link,) = parse_html_page(page, PAGE_URL)
    assert link.url == "https://files.example.org/f/x-1.0-py3-none-any.whl"


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        (f'data-core-metadata="sha256={HASH}"', HASH),
        (f'data-dist-info-metadata="sha256={HASH.upper()}"', HASH),
        ('data-core-metadata="true" data-dist-info-metadata="false"', True),
        ('data-dist-info-metadata="false"', False),
        ("data-core-metadata", True),
        ("", None),
    ],
)
def test_both_metadata_attribute_names(attributes: str, expected: object) -> None:
    (link,) = parse_html_page(f'<a href="x-1-py3-none-any.whl" {attributes}>x</a>', PAGE_URL)
    assert link.metadata == expected


def test_a_malformed_hash_is_dropped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    page = (
        '<a href="a-1-py3-none-any.whl#sha256=abc">a</a>'
        f'<a href="b-1-py3-none-any.whl#sha256={"z" * 64}" data-core-metadata="sha256=12">b</a>'
        f'<a href="c-1-py3-none-any.whl#md5={HASH[:32]}">c</a>'
    )
    with caplog.at_level(logging.WARNING, logger="torchfit.index.pages"):
        a, b, c = parse_html_page(page, PAGE_URL)
    assert (a.sha256, b.sha256, c.sha256) == (None, None, None)
    assert b.metadata is True  # offered, but with no usable hash
    assert len(caplog.records) == 3
    assert all(PAGE_URL in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(
    "page",
    [
        "",
        "<",
        "<a",
        "<a href",
        "<a href='x-1-py3-none-any.whl",
        '<a href="x-1-py3-none-any.whl><a href="y-1-py3-none-any.whl">',
        "<!-- never closed <a href='x-1-py3-none-any.whl'>",
        "<!DOCTYPE",
        "<script><a href='x-1-py3-none-any.whl'>",
        "</ a><//><<>><a =x>",
        "<a href=#sha256=>",
        "\x00<a\x00href=\x00>",
        "<a " * 50_000,  # would take minutes if each tag rescanned the rest of the page
        "<!--" * 50_000,
        '<a href="' * 50_000,
    ],
)
def test_broken_html_never_raises(page: str) -> None:
    assert isinstance(parse_html_page(page, PAGE_URL), list)


@pytest.mark.parametrize(
    "page",
    ['<a href="https://[::1/x-1-py3-none-any.whl">x</a>', '<base href="http://[::1/"><a href=x>'],
)
def test_an_unparsable_url_names_the_page(page: str) -> None:
    with pytest.raises(IndexFetchError, match=r"on https://download\.pytorch\.org/whl/cpu"):
        parse_html_page(page, PAGE_URL)


def _mutants(text: str, alphabet: str, count: int) -> list[str]:
    """``count`` copies of ``text``, each with a few characters deleted, doubled or
    replaced from ``alphabet`` (seeded: the same cases every run)."""
    rng = random.Random(658)
    out = []
    for _ in range(count):
        chars = list(text)
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(chars))
            action = rng.randrange(3)
            if action == 0:
                del chars[i]
            elif action == 1:
                chars.insert(i, chars[i])
            else:
                chars[i] = rng.choice(alphabet)
        out.append("".join(chars))
    return out


def test_mutated_pages_give_links_or_an_index_error() -> None:
    html_page = pytorch_page(3) + "<base href=\"/whl/\"><!-- x --><a href='a-1-py3-none-any.whl'>"
    json_page = (
        '{"files": [{"filename": "a-1-py3-none-any.whl", "url": "/whl/a-1-py3-none-any.whl",'
        ' "hashes": {"sha256": "' + HASH + '"}, "requires-python": ">=3.9", "yanked": false,'
        ' "core-metadata": {"sha256": "' + HASH + '"}}]}'
    )
    for parse, text, alphabet in (
        (parse_html_page, html_page, "<>\"'=&#;/![]: -"),
        (parse_json_page, json_page, '{}[]":,0tfn\\'),
    ):
        for mutant in _mutants(text, alphabet, 400):
            try:
                assert isinstance(parse(mutant, PAGE_URL), list)
            except IndexFetchError as exc:
                assert PAGE_URL in exc.message


def _reference(base: str, href: str) -> tuple[str, str, str | None, str]:
    """What the resolver must agree with: urljoin on the whole href."""
    url, fragment = urldefrag(urljoin(base, href))
    path = unquote(urlsplit(url).path)
    return (
        url,
        posixpath.basename(path),
        posixpath.basename(posixpath.dirname(path)) or None,
        fragment,
    )


@pytest.mark.parametrize(
    "base",
    [
        "https://download.pytorch.org/whl/cpu/torch/",
        "https://download.pytorch.org/whl/torch_stable.html",
        "http://127.0.0.1:8080/simple/torch/?x=1",
        "https://example.org",
    ],
)
@pytest.mark.parametrize(
    "href",
    [
        "torch-1.0-py3-none-any.whl",
        "torch-1.0%2Bcpu-py3-none-any.whl#sha256=ab",
        "cu101/torch-1.0-py3-none-any.whl",
        "/whl/cpu/torch-1.0-py3-none-any.whl",
        "./torch-1.0-py3-none-any.whl",
        "../../torch-1.0-py3-none-any.whl",
        "/whl/./cu118/../cpu/torch-1.0-py3-none-any.whl",
        "https://download-r2.pytorch.org/whl/cu130/torch-1.0-py3-none-any.whl",
        "https://files.example.org/torch-1.0-py3-none-any.whl",
        "//files.example.org/whl/torch-1.0-py3-none-any.whl",
        "https://torch-1.0-py3-none-any.whl",
        "https:torch-1.0-py3-none-any.whl",
        "torch-1.0-py3-none-any.whl?download=1",
        "dir%20name/torch-1.0-py3-none-any.whl",
        " torch-1.0-py3-none-any.whl ",
        "",
        "cu101/",
        "..",
    ],
)
def test_the_fast_resolver_agrees_with_urljoin(base: str, href: str) -> None:
    assert _Resolver(base)(href) == _reference(base, href.strip())


def test_pep691_fields_and_tolerated_extras(caplog: pytest.LogCaptureFixture) -> None:
    body = (
        '{"meta": {"api-version": "1.1"}, "files": ['
        '{"filename": "a-1-py3-none-any.whl", "url": "a-1-py3-none-any.whl", "hashes": {},'
        ' "requires-python": ">=3.9", "yanked": "broken", "dist-info-metadata": true},'
        '{"filename": "b-1-py3-none-any.whl", "url": "b-1-py3-none-any.whl#sha256=' + HASH + '",'
        ' "hashes": {"sha256": "not-hex", "md5": "x"}, "core-metadata": {"sha256": "12"},'
        ' "size": 3, "upload-time": "2024-01-01T00:00:00Z"},'
        '{"filename": "c-1.tar.gz", "url": "c-1.tar.gz", "hashes": {}}]}'
    )
    with caplog.at_level(logging.WARNING, logger="torchfit.index.pages"):
        a, b = parse_json_page(body, PAGE_URL)
    assert (a.requires_python, a.yanked, a.metadata, a.sha256) == (">=3.9", True, True, None)
    assert (b.sha256, b.metadata, b.yanked) == (HASH, True, False)  # the fragment's hash
    assert len(caplog.records) == 2


@pytest.mark.parametrize(
    ("entry", "complaint"),
    [
        ('{"url": "a-1-py3-none-any.whl", "requires-python": 3.9}', "'requires-python' is float"),
        ('{"url": 7}', "'url' is int"),
        ('{"filename": "a-1-py3-none-any.whl"}', "no 'url'"),
        ('"a-1-py3-none-any.whl"', "is str, not an object"),
        ('{"url": "a-1-py3-none-any.whl", "hashes": {"sha256": 5}}', "'sha256' is int"),
        ('{"url": "a-1-py3-none-any.whl", "yanked": 1}', "'yanked' is int"),
        ('{"url": "a-1-py3-none-any.whl", "core-metadata": "yes"}', "'core-metadata' is str"),
        ('{"url": "https://[::1/a-1-py3-none-any.whl"}', "malformed link"),
    ],
)
def test_malformed_pep691_entries_name_the_page(entry: str, complaint: str) -> None:
    with pytest.raises(IndexFetchError, match=re.escape(PAGE_URL)) as info:
        parse_json_page('{"files": [' + entry + "]}", PAGE_URL)
    assert complaint in info.value.message


@pytest.mark.parametrize(
    "body", ["[]", '{"files": null}', "[" * 100_000, '{"files": {}}', "\ud800"]
)
def test_malformed_pep691_pages_are_index_errors(body: str) -> None:
    with pytest.raises(IndexFetchError, match=f"malformed PEP 691 page at {re.escape(PAGE_URL)}"):
        parse_json_page(body, PAGE_URL)
