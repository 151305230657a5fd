"""What a child's terminal output may do to ours: draw a progress bar, yes; retitle, no.

pip (through rich) and uv draw progress bars only when their output is a terminal, so the
runner gives them a pseudo-terminal and copies what they write on to torchfit's own. The
copy keeps what a bar needs: text, ``\\r``, ``\\b``, colours (SGR), cursor up/down/sideways,
erasing in the line or below the cursor, and hiding the cursor. It drops every other
escape a terminal would obey: OSC strings (window title, clipboard, hyperlinks), DCS, APC,
PM and SOS strings, other CSI sequences (clear the screen or scrollback, scroll regions,
queries whose answers a terminal types into our input) and two-byte escapes (reset,
character sets). Other control characters, C1 controls, bidi overrides and line
separators are shown escaped, as :func:`torchfit._text.printable` shows them; URL
credentials are hidden as :func:`torchfit._text.redact_text` hides them.
"""

from __future__ import annotations

import codecs
import collections
import contextlib
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Callable, TextIO

from torchfit._text import printable, redact_text, shown

__all__ = ["ScreenTail", "Terminal", "TerminalFilter", "output_to", "progress_of"]

# A CSI sequence; an OSC, DCS, SOS, PM or APC string up to BEL or ST (or up to the next
# ESC, where a terminal ends it too; an unterminated one runs to the end and is dropped);
# any other escape: intermediates, then a final byte.
_STRING = r"\x1b[]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[ -/]*[0-~]"
_SEQUENCE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|" + _STRING)
# One pass over the text: each sequence (kept or dropped), and each character that is
# shown escaped: C0 controls but BS, TAB, LF and CR (an ESC that starts no sequence
# included), DEL, C1 controls, bidi embeddings, overrides and isolates, U+2028 and U+2029.
_PIECES = re.compile(
    r"(?P<csi>\x1b\[[0-?]*[ -/]*[@-~])|(?P<drop>" + _STRING + r")"
    "|[\x00-\x07\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
# The CSI sequences a progress bar draws with, passed on (parameters, then the final byte).
_DRAWING = re.compile(r"\x1b\[(?:[0-9;:]*m|[0-9]*[A-G]|[0-2]?K|0?J|\?(?:25|2026)[hl])")
# What may still become a sequence when more bytes come: held back until they do.
_UNFINISHED = re.compile(r"\x1b(?:\[[0-?]*[ -/]*|[]PX^_][^\x07\x1b]*\x1b?|[ -/]*)\Z")
# The end of a URL authority that could still become ``user:password@``: not shown yet.
_AUTHORITY_TAIL = re.compile(r"[^\s/?#@]*\Z")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*(?::/?)?\Z")
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")
_CSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")

#: Held text past this length is let through: a word this long is no URL worth holding.
_MAX_HELD = 4096


def _clean(text: str, context: str = "") -> str:
    """``text`` with credentials hidden (``context``: the shown word it continues),
    the drawing sequences kept, other sequences dropped and unsafe characters escaped."""
    text = _redacted(text, context)  # a URL that colours cut in two: hidden whole
    if "@" in text and "\x1b" in text:  # and each run between sequences on its own: a
        runs = _SEQUENCE.split(text)  # colour just before a scheme hides where it starts
        sequences = [match.group() for match in _SEQUENCE.finditer(text)] + [""]
        runs[0] = _redacted(runs[0], context)
        text = "".join(redact_text(run) + seq for run, seq in zip(runs, sequences))
    return _PIECES.sub(_shown_piece, text)


def _shown_piece(match: re.Match[str]) -> str:
    if match.lastgroup == "csi":
        return match.group() if _DRAWING.fullmatch(match.group()) else ""
    return "" if match.lastgroup == "drop" else printable(match.group())


def _redacted(text: str, context: str) -> str:
    return redact_text(context + text)[len(context) :] if context else redact_text(text)


def _word_start(text: str, end: int) -> int:
    """Where the run of non-blank characters that ``text[:end]`` ends in starts."""
    return 1 + max(text.rfind(blank, 0, end) for blank in " \t\n\r\x0b\x0c")


def _authority_start(text: str) -> int | None:
    """Where the ``scheme://`` starts whose authority runs to the end of ``text``, if one
    does: what follows may be its ``user:password@``."""
    mark = text.rfind("://")
    if mark <= 0 or not _AUTHORITY_TAIL.match(text, mark + 3):
        return None
    start = mark
    while start > 0 and text[start - 1] in _SCHEME_CHARS:
        start -= 1
    return start if start < mark else None


def _unfinished_at(text: str) -> int:
    """Where an escape sequence that the next bytes may finish starts (else ``len``)."""
    last = text.rfind("\x1b")
    # The one before the last first: the last may be the first half of an ST.
    for start in (text.rfind("\x1b", 0, last) if last > 0 else -1, last):
        if start >= 0 and _UNFINISHED.match(text, start):
            return start
    return len(text)


def _outside(text: str, position: int, end: int) -> int:
    """``position``, or the start of the sequence in ``text[:end]`` it falls inside: the
    last ESC before it (an ESC inside a sequence is only ever the first half of its ST)."""
    start = text.rfind("\x1b", 0, position)
    if start >= 0:
        match = _SEQUENCE.match(text, start, end)
        if match is not None and position < match.end():
            return start
    return position


class TerminalFilter:
    """A child's terminal bytes, fed as they come, made into text safe for ours.

    A sequence split across reads, or a word that could be a URL whose credentials are
    still to come, is held until the rest arrives (:meth:`feed`), the child pauses
    (:meth:`idle`) or ends (:meth:`close`).

    >>> screen = TerminalFilter()
    >>> screen.feed(b"\\x1b]0;pwned\\x07\\r\\x1b[2K\\x1b[32m50%\\x1b[0m https://u:pw")
    '\\r\\x1b[2K\\x1b[32m50%\\x1b[0m '
    >>> screen.feed(b"@h/t.whl\\x1b[2J\\n")
    'https://u:****@h/t.whl\\n'
    """

    def __init__(self) -> None:
        self._decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode
        self._held = ""
        self._context = ""  # the shown end of a word the next text may continue

    def feed(self, data: bytes) -> str:
        """Safe text for ``data``, less what it must hold back."""
        return self._take(self._held + self._decode(data), pausing=False)

    def idle(self) -> str:
        """Safe text for what is held, after a pause (a bar's last frame has no end of
        line), but for an unfinished sequence or URL authority."""
        return self._take(self._held, pausing=True) if self._held else ""

    def close(self) -> str:
        """Safe text for all that is left; an unfinished sequence is dropped."""
        text, self._held = self._held + self._decode(b"", final=True), ""
        out, self._context = _clean(text, self._context), ""
        return out

    def _take(self, text: str, *, pausing: bool) -> str:
        cut = _unfinished_at(text)
        if pausing:  # the shown scheme counts: "https" then "://user" is in an authority
            authority = _authority_start(self._context + text[:cut])
            if authority is not None:
                cut = _outside(text, max(0, authority - len(self._context)), cut)
        else:
            cut = _outside(text, _word_start(text, cut), cut)
        if len(text) - cut > _MAX_HELD:
            cut = len(text)
        self._held = text[cut:]
        if cut == 0:
            return ""
        shown = text[:cut]
        out = _clean(shown, self._context)
        # All shown after a pause: the scheme it may end in goes before the next text.
        ending = (self._context + shown)[-256:]
        scheme = _SCHEME.search(ending) if pausing and not self._held else None
        self._context = scheme.group() if scheme else ""
        return out


class ScreenTail:
    """The last lines of a terminal stream as they read once drawn, for error messages:
    sequences removed, a line redrawn after ``\\r`` kept as last drawn; at most ``lines``
    lines and about ``chars`` characters.

    >>> tail = ScreenTail()
    >>> tail.add("Collecting torch\\n\\x1b[32m 10%\\r\\x1b[2K\\x1b[32m100%\\x1b[0m\\nERROR: no")
    >>> tail.text()
    'Collecting torch\\n100%\\nERROR: no'
    """

    def __init__(self, lines: int = 200, chars: int = 64 * 1024) -> None:
        self._lines: collections.deque[str] = collections.deque(maxlen=lines)
        self._chars, self._size, self._open = chars, 0, ""

    def add(self, text: str) -> None:
        *done, self._open = (self._open + text).split("\n")
        for line in done[-(self._lines.maxlen or 1) :]:
            self._keep(_drawn(line) + "\n")
        if len(self._open) > self._chars:  # a bar redrawn for ever: only its last frame
            self._open = _drawn(self._open)[-self._chars :]

    def _keep(self, line: str) -> None:
        if len(self._lines) == self._lines.maxlen:
            self._size -= len(self._lines[0])
        self._lines.append(line)
        self._size += len(line)
        while self._size > self._chars and len(self._lines) > 1:
            self._size -= len(self._lines.popleft())

    def text(self) -> str:
        """The lines kept, and the unfinished last one."""
        return "".join(self._lines) + _drawn(self._open)


def _drawn(line: str) -> str:
    frames = [frame for frame in _CSI.sub("", line).split("\r") if frame.strip()]
    return frames[-1] if frames else ""


class Terminal:
    """An ``on_output`` that is a terminal. The real runner sees this type, runs the child
    on a pseudo-terminal of the same size and shows its output through :meth:`show`; any
    other runner calls it with lines, which are shown escaped."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._mid_line = False
        self._cursor_hidden = False

    def __call__(self, line: str) -> None:
        self.end()
        self.stream.write(shown(line) + "\n")
        self.stream.flush()

    def size(self) -> tuple[int, int]:
        """(rows, columns) of the terminal; 24 by 80 where it does not say."""
        try:
            columns, rows = os.get_terminal_size(self.stream.fileno())
        except (OSError, ValueError):
            return 24, 80
        return (rows or 24), (columns or 80)

    def show(self, safe: str) -> None:
        """Write ``safe`` (from :class:`TerminalFilter`) as it is."""
        if not safe:
            return
        self.stream.write(safe)
        self.stream.flush()
        visible = _CSI.sub("", safe)
        if visible:
            self._mid_line = not visible.endswith("\n")
        hidden, shows = safe.rfind("\x1b[?25l"), safe.rfind("\x1b[?25h")
        if hidden != shows:
            self._cursor_hidden = hidden > shows

    def end(self) -> None:
        """Leave the terminal as torchfit's next line needs it: cursor shown, at a new line."""
        ending = ("\x1b[?25h" if self._cursor_hidden else "") + ("\n" if self._mid_line else "")
        self._mid_line = self._cursor_hidden = False
        if ending:
            self.stream.write(ending)
            self.stream.flush()


@contextlib.contextmanager
def progress_of(
    path: Path, on_output: Callable[[str], None] | None, *, every: float = 0.25
) -> Iterator[None]:
    """While the block writes the file ``path``, show how far it got when ``on_output`` is
    a :class:`Terminal`: one line, redrawn, of megabytes and megabytes a second."""
    if not isinstance(on_output, Terminal):
        yield
        return
    terminal, started, stop = on_output, time.monotonic(), threading.Event()

    def draw(end: str = "") -> None:
        try:
            size = path.stat().st_size / 1e6
        except OSError:  # not there yet
            size = 0.0
        rate = size / max(time.monotonic() - started, 1e-3)
        terminal.show(f"\r\x1b[2K  {size:.1f} MB  {rate:.1f} MB/s{end}")

    def redraw() -> None:
        while not stop.wait(every):
            draw()

    drawer = threading.Thread(target=redraw, daemon=True)
    drawer.start()
    try:
        yield
    finally:
        stop.set()
        drawer.join()
        draw("\n")


def output_to(stream: TextIO) -> Callable[[str], None]:
    """Where an installer's output goes when it is to be seen: a :class:`Terminal` when
    ``stream`` is one (on POSIX, where pseudo-terminals exist), else each line, escaped."""
    try:
        terminal = os.name != "nt" and stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        terminal = False
    if terminal:
        return Terminal(stream)

    def lines(line: str) -> None:
        print(shown(line), file=stream, flush=True)

    return lines
