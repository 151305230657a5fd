"""The start tags of an HTML document: a tolerant scanner, linear in the page.

html.parser does the same job several times slower, and the index pages only need the
``<a>`` and ``<base>`` tags. Every match is anchored where the last one ended, so each
character is read a bounded number of times: an unclosed quote or comment cannot make
the scan quadratic.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

_TAG_NAME = re.compile(r"[A-Za-z][^\s/>]*")
_ATTRIBUTE = re.compile(
    r"""[\s/]*([^\s/>][^\s/>=]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]*)))?"""
)
_TAG_END = re.compile(r"[\s/]*>?")
# Their content is text, not markup: an <a> inside a <script> is no link.
_RAW_TEXT = {name: re.compile(f"</{name}", re.I) for name in ("script", "style", "textarea")}

Attributes = dict[str, str]


def start_tags(text: str) -> Iterator[tuple[str, Attributes]]:
    """Yield ``(name, attributes)`` for every start tag, as an HTML5 tokenizer sees it:
    names lower-cased, entities decoded, a bare attribute's value empty.

    >>> list(start_tags("<!-- <a> --><A HREF='x.whl' data-yanked>x</a><br/>"))
    [('a', {'href': 'x.whl', 'data-yanked': ''}), ('br', {})]
    """
    pos = 0
    while True:
        lt = text.find("<", pos)
        if lt < 0:
            return
        if text.startswith("!--", lt + 1):
            end = text.find("-->", lt + 4)
            if end < 0:
                return  # an unclosed comment runs to the end of the page
            pos = end + 3
            continue
        if text.startswith(("!", "?"), lt + 1):
            end = text.find(">", lt)  # <!DOCTYPE ...>, <?...>: bogus comments
            if end < 0:
                return
            pos = end + 1
            continue
        closing = text.startswith("/", lt + 1)
        name_match = _TAG_NAME.match(text, lt + 2 if closing else lt + 1)
        if name_match is None:
            pos = lt + 1  # a bare "<" in text
            continue
        attributes: Attributes = {}
        pos = name_match.end()
        while (attribute := _ATTRIBUTE.match(text, pos)) is not None:
            key, double, single, bare = attribute.groups()
            value = double if double is not None else single if single is not None else bare
            value = value or ""  # a bare attribute's value is the empty string
            if "&" in value:
                value = html.unescape(value)
            attributes.setdefault(key.lower(), value)  # the first of a repeated name wins
            pos = attribute.end()
        tag_end = _TAG_END.match(text, pos)
        pos = tag_end.end() if tag_end else pos
        if closing:
            continue
        name = name_match.group().lower()
        yield name, attributes
        raw = _RAW_TEXT.get(name)
        if raw is not None:
            end_match = raw.search(text, pos)
            if end_match is None:
                return
            pos = end_match.start()
