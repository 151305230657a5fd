"""Requirement files in pip's format, read into logical lines. Pure: files are read
through the ``read`` seam, and paths are joined as text.

The format is pip's ("Requirements File Format" in pip's documentation; the option lists
are pip's ``SUPPORTED_OPTIONS`` and ``SUPPORTED_OPTIONS_REQ`` in ``req/req_file.py``):
a trailing ``\\`` joins the next line, ``#`` at a line's start or after whitespace starts a
comment, ``-r``/``-c`` include files relative to the file that names them, and a line is
either options or a requirement followed by its own options (``--hash``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from torchfit.errors import UsageError

#: Reads a file named by a path and returns its bytes; raises OSError when it cannot.
Read = Callable[[str], bytes]
#: Whether a path exists (pip looks for a relative ``--find-links`` beside the file first).
Exists = Callable[[str], bool]

Kind = Literal["named", "path", "url", "editable", "option"]

# pip's options allowed on a line of their own: name -> whether it takes a value.
_GLOBAL = {
    "--index-url": True,
    "--extra-index-url": True,
    "--no-index": False,
    "--constraint": True,
    "--requirement": True,
    "--editable": True,
    "--find-links": True,
    "--no-binary": True,
    "--only-binary": True,
    "--prefer-binary": False,
    "--require-hashes": False,
    "--pre": False,
    "--trusted-host": True,
    "--use-feature": True,
}
# pip's options allowed after a requirement, on its line.
_PER_REQUIREMENT = {"--hash": True, "--global-option": True, "--config-settings": True}
_LONG = {**_GLOBAL, **_PER_REQUIREMENT}
_SHORT = {
    "-i": "--index-url",
    "-c": "--constraint",
    "-r": "--requirement",
    "-e": "--editable",
    "-f": "--find-links",
    "-C": "--config-settings",
}
_ALLOWED = "-i/--index-url, --extra-index-url, --no-index, -f/--find-links, -e/--editable, -r, -c,"
_ALLOWED += " --no-binary, --only-binary, --prefer-binary, --pre, --require-hashes, --trusted-host,"
_ALLOWED += " --use-feature; after a requirement: --hash, --config-settings, --global-option"
_HASH_ALGORITHMS = ("sha256", "sha384", "sha512")  # pip's STRONG_HASHES

_COMMENT = re.compile(r"(^|\s+)#.*$")
_CODING = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")  # two letters at least: not C:\
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\s*(\[|@|[<>=!~;(]|$)")
_ARCHIVES = (".whl", ".zip", ".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tbz", ".tar.xz", ".txz")
_EXTRAS = re.compile(r"^(.*?)(\[[^\]]*\])?$", re.DOTALL)
_DEEPEST = 64


@dataclass(frozen=True)
class FileLine:
    """One logical line of a requirements file (continuations joined, comment dropped)."""

    text: str  # as written
    origin: str  # "FILE:LINE", FILE as named (an included one joined to its includer's folder)
    kind: Kind
    requirement: str = ""  # the requirement, path or URL ("" for an option line)
    hashes: tuple[str, ...] = ()  # "sha256:<hex>", from --hash
    constraint: bool = False  # from a -c file
    installer_text: str = ""  # the line for an installer: relative paths made absolute

    def __str__(self) -> str:
        return self.installer_text or self.text


@dataclass(frozen=True)
class RequirementFiles:
    """The lines of every file read, in pip's order, and each file's text (for cache keys)."""

    lines: tuple[FileLine, ...]
    texts: tuple[tuple[str, str], ...]  # (file as named, its text), once per inclusion


def read_requirement_files(
    requirement_files: Sequence[str | os.PathLike[str]] = (),
    constraint_files: Sequence[str | os.PathLike[str]] = (),
    *,
    read: Read | None = None,
    exists: Exists = os.path.exists,
    cwd: str | None = None,
) -> RequirementFiles:
    """Read ``-r`` and ``-c`` files, following their includes.

    >>> files = {"/p/req.txt": b"torch==2.8.0 \\\\\\n  --hash=sha256:ab  # pinned\\n-r more.txt\\n",
    ...          "/p/more.txt": b"-e ./lib\\n"}
    >>> found = read_requirement_files(["req.txt"], read=files.__getitem__, cwd="/p")
    >>> [(line.origin, line.kind, line.requirement) for line in found.lines]
    [('req.txt:1', 'named', 'torch==2.8.0'), ('more.txt:1', 'editable', './lib')]
    >>> found.lines[0].hashes
    ('sha256:ab',)
    >>> found.lines[1].installer_text
    '--editable /p/lib'

    Raises UsageError, naming the file and line, for a file that cannot be read, files that
    include each other, an option pip does not allow in a file, and a malformed option.
    """
    reader = _Reader(read or _read_bytes, exists, os.getcwd() if cwd is None else cwd)
    for name in requirement_files:
        reader.include(os.fspath(name), constraint=False, chain=())
    for name in constraint_files:
        reader.include(os.fspath(name), constraint=True, chain=())
    return RequirementFiles(tuple(reader.lines), tuple(reader.texts))


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read()


class _Reader:
    def __init__(self, read: Read, exists: Exists, cwd: str) -> None:
        self.read, self.exists, self.cwd = read, exists, cwd
        self.lines: list[FileLine] = []
        self.texts: list[tuple[str, str]] = []

    def include(self, name: str, *, constraint: bool, chain: tuple[tuple[str, str], ...]) -> None:
        """Read the file ``name``; ``chain`` is (path, origin) of each include leading here."""
        path = os.path.normpath(os.path.join(self.cwd, name))
        named_from = f" (named at {chain[-1][1]})" if chain else ""
        if _SCHEME.match(name) and not os.path.isabs(name):
            raise UsageError(
                f"cannot read requirements file {name}{named_from}: torchfit reads local files",
                hint="download the file first, then pass its path",
            )
        if any(path == seen for seen, _ in chain):
            loop = [seen for seen, _ in chain]
            loop = [*loop[loop.index(path) :], path]
            raise UsageError(
                "requirement files include each other: "
                + " -> ".join(os.path.relpath(p, self.cwd) for p in loop)
            )
        if len(chain) >= _DEEPEST:
            raise UsageError(f"requirement files nested more than {_DEEPEST} deep at {name}")
        try:
            data = self.read(path)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise UsageError(
                f"cannot read requirements file {name}{named_from}: {reason}",
                hint="paths in -r/-c lines are relative to the file that names them",
            ) from None
        text = _decode(data, name)
        self.texts.append((name, text))
        folder = os.path.dirname(path)
        for number, logical in _logical_lines(text):
            origin = f"{name}:{number}"
            line = _parse_line(logical, origin, constraint)
            nested = _nested(line)
            if nested is not None:
                option, target = nested
                if not (_SCHEME.match(target) or os.path.isabs(target)):
                    # Relative to the including file, as pip joins them; named as it is.
                    target = os.path.join(os.path.dirname(name), target)
                self.include(
                    target,
                    # pip: what a -r names holds requirements, what a -c names constraints.
                    constraint=option == "--constraint",
                    chain=(*chain, (path, origin)),
                )
                continue
            self.lines.append(_for_installer(line, folder, self.cwd, self.exists))


def _decode(data: bytes, name: str) -> str:
    """The text of a file: UTF-8 (a BOM dropped) unless a PEP 263 line names another."""
    encoding = "utf-8-sig"
    for first in data.splitlines()[:2]:
        match = _CODING.match(first)
        if match:
            encoding = match.group(1).decode("ascii")
            break
    try:
        return data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise UsageError(f"requirements file {name} is not {encoding} text: {exc}") from None


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each non-empty line, continuations joined and comments
    dropped as pip does (a comment line ends a continuation).

    >>> _logical_lines("a \\\\\\n  b  # c\\n\\n# d\\ne")
    [(1, 'a   b'), (5, 'e')]
    """
    found: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, line in enumerate(text.splitlines(), start=1):
        comment = _COMMENT.match(line) is not None
        if line.endswith("\\") and not comment:
            if not pending:
                start = number
            pending.append(line.rstrip("\\"))
            continue
        if pending:
            pending.append(" " + line if comment else line)
            number, line = start, "".join(pending)
            pending = []
        found.append((number, line))
    if pending:
        found.append((start, "".join(pending)))
    kept = []
    for number, line in found:
        stripped = _COMMENT.sub("", line).strip()
        if stripped:
            kept.append((number, stripped))
    return kept


@dataclass(frozen=True)
class _Parsed:
    line: FileLine
    options: tuple[tuple[str, str | None], ...]  # (long name, value) in order
    arguments: str  # the requirement part ("" for an option line)


def _parse_line(text: str, origin: str, constraint: bool) -> _Parsed:
    # As pip: the requirement is every word before the first that starts with "-".
    words = text.split(" ")
    cut = next((i for i, word in enumerate(words) if word.startswith("-")), len(words))
    arguments, rest = " ".join(words[:cut]).strip(), " ".join(words[cut:])
    options = _options(_split(rest, origin), origin)
    if arguments:
        misplaced = [name for name, _ in options if name not in _PER_REQUIREMENT]
        if misplaced:
            raise UsageError(
                f"{origin}: {misplaced[0]} must be on a line of its own, not after a requirement",
                hint="pip ignores it there; move it to its own line",
            )
        kind: Kind = _requirement_kind(arguments)
        requirement = arguments
    else:
        stray = [name for name, _ in options if name in _PER_REQUIREMENT]
        if stray:
            raise UsageError(f"{origin}: {stray[0]} must follow a requirement on its line")
        editable = [value for name, value in options if name == "--editable"]
        kind = "editable" if editable else "option"
        requirement = (editable[0] or "") if editable else ""
        if editable and len(options) > 1:
            raise UsageError(f"{origin}: -e must be alone on its line")
    hashes = tuple(_hash(value or "", origin) for name, value in options if name == "--hash")
    line = FileLine(text, origin, kind, requirement, hashes, constraint)
    return _Parsed(line, options, arguments)


def _split(text: str, origin: str) -> list[str]:
    if not any(quote in text for quote in "\"'\\"):
        return text.split()  # the common case, and 30 times faster than shlex
    import shlex

    try:
        return shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"{origin}: {exc}") from None


def _options(words: list[str], origin: str) -> tuple[tuple[str, str | None], ...]:
    """(long name, value) of each option in ``words``, as pip's optparse reads them."""
    found: list[tuple[str, str | None]] = []
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        value: str | None = None
        if word.startswith("--"):
            name, has_value, value = word.partition("=")
            name = _long_name(name, origin)
            if not has_value:
                value = None
        elif word.startswith("-") and len(word) > 1:
            name = _SHORT.get(word[:2], "")
            if not name:
                raise _unknown(word, origin)
            value = word[2:] or None
        else:
            raise UsageError(
                f"{origin}: unexpected {word!r} after the options",
                hint="a requirement comes first on its line, then its options",
            )
        if _LONG[name]:
            if value is None:
                if index >= len(words):
                    raise UsageError(f"{origin}: {name} needs a value")
                value = words[index]
                index += 1
        elif value is not None:
            raise UsageError(f"{origin}: {name} takes no value")
        found.append((name, value))
    return tuple(found)


def _long_name(word: str, origin: str) -> str:
    if word in _LONG:
        return word
    # optparse takes an unambiguous prefix of a long option, so pip does too.
    matches = [name for name in _LONG if name.startswith(word)]
    if len(matches) == 1 and len(word) > 2:
        return matches[0]
    raise _unknown(word, origin)


def _unknown(word: str, origin: str) -> UsageError:
    option = word.split("=", 1)[0]
    return UsageError(
        f"{origin}: {option} is not an option pip allows in a requirements file",
        hint=f"a file may hold {_ALLOWED}; other installer options go after `--`",
    )


def _hash(value: str, origin: str) -> str:
    algorithm, _, digest = value.partition(":")
    if algorithm not in _HASH_ALGORITHMS or not re.fullmatch(r"[0-9a-fA-F]+", digest):
        raise UsageError(
            f"{origin}: --hash {value!r} is not ALGORITHM:HEX",
            hint="e.g. --hash=sha256:<64 hex digits>; pip allows sha256, sha384, sha512",
        )
    return f"{algorithm}:{digest.lower()}"


def _requirement_kind(text: str) -> Kind:
    if _NAME.match(text):
        return "named"
    if _is_url(text):
        return "url"
    # pip's test for a path: a separator, a leading dot, or an archive's name.
    path = text.split(";", 1)[0].strip()
    if "/" in path or "\\" in path or path.startswith(".") or path.lower().endswith(_ARCHIVES):
        return "path"
    return "named"  # not a valid requirement either: parsing it says why


def _is_url(text: str) -> bool:
    return "://" in text or bool(_SCHEME.match(text))


def _nested(parsed: _Parsed) -> tuple[str, str] | None:
    for name, value in parsed.options:
        if name in ("--requirement", "--constraint"):
            if len(parsed.options) > 1:
                raise UsageError(f"{parsed.line.origin}: {name} must be alone on its line")
            return name, value or ""
    return None


def _for_installer(parsed: _Parsed, folder: str, cwd: str, exists: Exists) -> FileLine:
    """The line as an installer reading it from another folder must get it: relative paths
    made absolute the way pip resolves them (a requirement's or -e's against the working
    directory; a --find-links beside the file when it is there, else the working directory)."""
    line = parsed.line
    if line.kind == "path":
        path, sep, marker = parsed.arguments.partition(";")
        words = [_absolute(path.strip(), cwd) + (f" ;{marker}" if sep else "")]
        words += [f"{name}={_quoted(value)}" for name, value in parsed.options]
        return _with(line, " ".join(words))
    if line.kind in ("editable", "option"):
        words = []
        for name, value in parsed.options:
            if name == "--editable" and value and not _is_url(value):
                value = _absolute(value, cwd)
            elif name == "--find-links" and value and not _is_url(value):
                beside = os.path.join(folder, value)
                value = os.path.normpath(beside if exists(beside) else os.path.join(cwd, value))
            words += [name] if value is None else [name, _quoted(value)]
        return _with(line, " ".join(words))
    return _with(line, line.text)


def _quoted(value: str | None) -> str:
    """``value`` as one word for pip's shlex (quoted only when it must be: uv reads it too)."""
    text = value or ""
    if text and not any(c.isspace() or c in "\"'\\" for c in text):
        return text
    import shlex

    return shlex.quote(text)


def _absolute(path: str, cwd: str) -> str:
    """``path`` (with any ``[extras]``) against ``cwd``; a ``${VAR}`` path is left to pip."""
    if "${" in path or os.path.isabs(path):
        return path
    match = _EXTRAS.match(path)
    assert match is not None
    return os.path.normpath(os.path.join(cwd, match.group(1))) + (match.group(2) or "")


def _with(line: FileLine, installer_text: str) -> FileLine:
    # What dataclasses.replace does, at a tenth of its cost: a thousand lines pay it.
    return FileLine(
        line.text, line.origin, line.kind, line.requirement, line.hashes, line.constraint,
        installer_text,
    )  # fmt: skip
