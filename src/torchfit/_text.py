"""Text from outside, made safe to show: control characters escaped, URL credentials hidden.

Index pages, the driver, nvidia-smi, pip and the target interpreter all hand torchfit text
it did not write. Shown as it came, an escape sequence in a wheel's name could retitle or
clear the terminal, a bidi override could make a line read other than it is, and an index
URL of the form ``https://user:token@host/`` would print its token. The command line passes
every line and every JSON value it emits through these functions; only the subprocess that
installs gets the real URL.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["dumps", "printable", "redact_text", "redact_url", "redacted", "shown"]

# C0 controls and DEL, C1 controls, the bidi embeddings, overrides and isolates
# (CVE-2021-42574, "Trojan Source"), and the Unicode line and paragraph separators.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

# The authority of a URL ends at the first "/", "?", "#" or white space; its userinfo is
# everything before the last "@" in it (as urllib, httpx and pip read it). Free text may
# put quotes around a URL; including them in the match only ever hides more.
# No word boundary before the scheme: text glued to a URL (``_https://…``) must not hide it.
_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^\s/?#]*)@")
MASK = "****"


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` as one line a terminal shows as written: every control character (C0, DEL,
    C1), bidi override or isolate and line separator is replaced by its Python-style escape.

    >>> printable("Tesla T4\\x1b]0;pwned\\x07\\n\\u202eevil")
    'Tesla T4\\\\x1b]0;pwned\\\\x07\\\\n\\\\u202eevil'
    >>> printable("NVIDIA GeForce RTX 4090 · 8.9")
    'NVIDIA GeForce RTX 4090 · 8.9'
    """
    return _UNSAFE.sub(_escape, text)


def _hide(match: re.Match[str]) -> str:
    user, colon, _ = match.group("userinfo").partition(":")
    return f"{match.group('scheme')}{user}:{MASK}@" if colon else f"{match.group('scheme')}{MASK}@"


def redact_url(url: str) -> str:
    """``url`` with the password in its userinfo replaced by ``****`` (the whole userinfo
    when it has no ``:``, as a bare token does); other URLs are returned unchanged.

    >>> redact_url("https://user:s3cret@mirror.example.org/whl/cu121")
    'https://user:****@mirror.example.org/whl/cu121'
    >>> redact_url("https://ghp_token@mirror.example.org/whl")
    'https://****@mirror.example.org/whl'
    >>> redact_url("git+https://github.com/pytorch/vision@v0.20.0")
    'git+https://github.com/pytorch/vision@v0.20.0'
    """
    match = _CREDENTIALS.match(url)
    return url if match is None else _hide(match) + url[match.end() :]


def redact_text(text: str) -> str:
    """``text`` with the credentials of every URL in it hidden as :func:`redact_url` does.

    >>> redact_text("could not reach http://u:pw@10.0.0.1/whl/cpu/torch/: refused")
    'could not reach http://u:****@10.0.0.1/whl/cpu/torch/: refused'
    >>> redact_text("_https://u:pw@h/ éhttps://t@h/")
    '_https://u:****@h/ éhttps://****@h/'
    """
    return _CREDENTIALS.sub(_hide, text) if "@" in text else text


def shown(text: str) -> str:
    """``text`` fit for a terminal: credentials hidden, then control characters escaped.

    >>> shown("would run: pip install 'torch @ http://u:pw@h/t.whl'\\x1b[2J")
    "would run: pip install 'torch @ http://u:****@h/t.whl'\\\\x1b[2J"
    """
    return printable(redact_text(text))


def redacted(value: Any) -> Any:
    """A copy of a JSON-like value (dicts, lists, tuples, strings, scalars) whose strings,
    keys included, have their URL credentials hidden; other values are returned as they are.

    >>> redacted({"index": "https://u:pw@h/whl", "packages": [{"size": 1}]})
    {'index': 'https://u:****@h/whl', 'packages': [{'size': 1}]}
    """
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {redacted(key): redacted(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redacted(item) for item in value]
    return value


def dumps(value: Any) -> str:
    """Indented JSON of ``value`` with URL credentials hidden and nothing but printable
    ASCII outside the line breaks between members: json escapes C0 controls and, with
    ``ensure_ascii``, everything past U+007F; DEL, which JSON allows raw, is escaped too.
    ``json.loads`` gives back ``redacted(value)``.

    >>> print(dumps({"gpu": "T4\\x1b[2J\\u202e\\x7f"}))
    {
      "gpu": "T4\\u001b[2J\\u202e\\u007f"
    }
    """
    # DEL can only stand inside a string here, where its escape means the same character.
    return json.dumps(redacted(value), indent=2, ensure_ascii=True).replace("\x7f", "\\u007f")
