"""A plan written down for later: ``pylock.toml`` (PEP 751) or a hashed ``requirements.txt``.

torchfit chose the torch-family wheels; their own dependencies (numpy, sympy, the ``nvidia-*``
runtime wheels, ...) are pinned by a real resolver, ``uv pip compile``, for the plan's Python
and platform. The family goes to uv as direct URL references with their sha256: uv reads no
PyTorch index page for them, takes each wheel's metadata with HTTP range requests (not the
whole, often gigabyte-sized, file), and no other index can offer a same-named torch. What uv
wrote is checked afterwards: each family entry must be exactly the planned file and hash.

The other packages come from the user's own index settings, as for an install: uv reads its
``UV_*`` variables itself, and pip's ``PIP_INDEX_URL`` / ``PIP_EXTRA_INDEX_URL`` are passed on.
No lock carries URL credentials: the installer gets them from netrc or a keyring, as it would.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from torchfit._runner import Runner, run
from torchfit.environment.state import FAMILY
from torchfit.environment.target import Target
from torchfit.errors import ResolutionConflict, TorchfitError, UsageError

LockFormat = Literal["pylock", "requirements"]
FORMATS: tuple[LockFormat, ...] = ("pylock", "requirements")

#: Seconds ``uv pip compile`` may take: it fetches metadata of every dependency.
RESOLVE_TIMEOUT = 900.0
_PYLOCK_NAME = re.compile(r"pylock(\.[^.]+)?\.toml")
# uv's --python-platform names for manylinux: the glibc minors it knows (newest first).
_UV_GLIBC = (40, 39, 38, 37, 36, 35, 34, 33, 32, 31, 28, 17)


@dataclass(frozen=True)
class FamilyPin:
    """One planned torch-family wheel: the lock must hold exactly this file and hash."""

    name: str
    version: str
    url: str
    sha256: str | None
    extras: tuple[str, ...] = ()  # the user's (torch[opt-einsum]): uv locks what they add

    def requirement(self) -> str:
        """A direct reference: no index is asked for this name, and uv checks the hash.

        >>> FamilyPin("torch", "2.8.0", "https://h/t.whl", "ab", ("opt-einsum",)).requirement()
        'torch[opt-einsum] @ https://h/t.whl#sha256=ab'
        """
        extras = f"[{','.join(self.extras)}]" if self.extras else ""
        fragment = f"#sha256={self.sha256}" if self.sha256 else ""
        return f"{self.name}{extras} @ {self.url}{fragment}"


def lock_format(path: str | None, explicit: str | None = None) -> LockFormat:
    """The format a lock written to ``path`` takes: ``explicit`` when given, else by name
    (``pylock.toml`` and ``pylock.NAME.toml`` are PEP 751 locks; no path or ``-`` is stdout,
    a pylock). Raises UsageError for another ``*.toml`` name, which PEP 751 does not allow.

    >>> lock_format("pylock.toml"), lock_format("ci/pylock.gpu.toml"), lock_format(None)
    ('pylock', 'pylock', 'pylock')
    >>> lock_format("requirements.lock"), lock_format("x.toml", "requirements")
    ('requirements', 'requirements')
    """
    if explicit is not None:
        if explicit not in FORMATS:
            raise UsageError(f"unknown lock format {explicit!r}", hint="pylock or requirements")
        return "pylock" if explicit == "pylock" else "requirements"
    if path is None or path == "-":
        return "pylock"
    name = Path(path).name
    if _PYLOCK_NAME.fullmatch(name):
        return "pylock"
    if name.endswith(".toml"):
        raise UsageError(
            f"{name}: a PEP 751 lock is named pylock.toml or pylock.NAME.toml",
            hint="rename it, or pass --format requirements for a requirements file",
        )
    return "requirements"


def uv_platform(tag: str) -> str:
    """uv's ``--python-platform`` name for a wheel platform tag (the newest uv knows that the
    tag's system accepts).

    >>> uv_platform("manylinux_2_28_x86_64"), uv_platform("manylinux_2_41_aarch64")
    ('x86_64-manylinux_2_28', 'aarch64-manylinux_2_40')
    >>> uv_platform("win_amd64"), uv_platform("macosx_11_0_arm64"), uv_platform("linux_x86_64")
    ('x86_64-pc-windows-msvc', 'aarch64-apple-darwin', 'x86_64-unknown-linux-gnu')
    """
    manylinux = re.fullmatch(r"manylinux_2_(\d+)_(x86_64|aarch64)", tag)
    if manylinux:
        glibc, arch = int(manylinux.group(1)), manylinux.group(2)
        known = next((minor for minor in _UV_GLIBC if minor <= glibc), None)
        if known is not None:
            return f"{arch}-manylinux_2_{known}"
    if tag.startswith("macosx_"):
        return "aarch64-apple-darwin" if tag.endswith("arm64") else "x86_64-apple-darwin"
    named = {"win_amd64": "x86_64-pc-windows-msvc", "win_arm64": "aarch64-pc-windows-msvc"}
    named["win32"] = "i686-pc-windows-msvc"
    if tag in named:
        return named[tag]
    for arch in ("x86_64", "aarch64"):
        if tag.endswith(arch):
            return f"{arch}-unknown-linux-{'musl' if 'musllinux' in tag else 'gnu'}"
    return {"windows": "windows", "macos": "macos"}.get(_os(tag), "linux")


def _os(tag: str) -> str:
    return "windows" if tag.startswith("win") else "macos" if tag.startswith("macosx") else "linux"


def index_options(env: Mapping[str, str]) -> list[str]:
    """pip's index variables as uv options, where uv's own do not already decide (uv reads
    ``UV_DEFAULT_INDEX``, ``UV_INDEX_URL``, ``UV_INDEX`` and ``UV_EXTRA_INDEX_URL`` itself).

    >>> index_options({"PIP_INDEX_URL": "https://m/simple", "PIP_EXTRA_INDEX_URL": "https://x"})
    ['--default-index', 'https://m/simple', '--extra-index-url', 'https://x']
    >>> index_options({"PIP_INDEX_URL": "https://m/simple", "UV_INDEX_URL": "https://u"})
    []
    """
    options = []
    pip_index = env.get("PIP_INDEX_URL", "").strip()
    if pip_index and not (env.get("UV_DEFAULT_INDEX") or env.get("UV_INDEX_URL")):
        options += ["--default-index", pip_index]
    if not (env.get("UV_INDEX") or env.get("UV_EXTRA_INDEX_URL")):
        for url in env.get("PIP_EXTRA_INDEX_URL", "").split():
            options += ["--extra-index-url", url]
    return options


def resolver_env(
    env: Mapping[str, str], *, ca_bundle: Path | None = None, timeout: float | None = None
) -> dict[str, str]:
    """The environment ``uv pip compile`` runs in: the user's, with the settings torchfit's
    own HTTP uses, and without what would let uv choose torch's variant itself."""
    child = {k: v for k, v in env.items() if k not in ("UV_TORCH_BACKEND", "VIRTUAL_ENV")}
    child["UV_PYTHON_DOWNLOADS"] = "never"  # builds use an interpreter that is here
    if ca_bundle is not None:
        child["SSL_CERT_FILE"] = str(ca_bundle)
    if timeout is not None:
        child["UV_HTTP_TIMEOUT"] = f"{max(timeout, 1.0):g}"
    return child


def compile_command(
    uv: str,
    requirements_in: Path,
    output: Path,
    target: Target,
    *,
    format: LockFormat,
    constraint_files: Sequence[Path] = (),
    index_args: Sequence[str] = (),
    offline: bool = False,
) -> list[str]:
    """The ``uv pip compile`` argument list for ``target`` (its Python and first platform).

    >>> from torchfit.environment.target import from_spec
    >>> target = from_spec("3.12", ["manylinux_2_28_x86_64"])
    >>> compile_command("uv", Path("in"), Path("out"), target, format="requirements")[4:8]
    ['--python-version', '3.12', '--python-platform', 'x86_64-manylinux_2_28']
    """
    version = "{}.{}".format(*target.python_version)
    if target.interpreter is not None:  # a real interpreter: its markers to the last digit
        version = target.python_full_version
    platform = uv_platform(target.platforms[0]) if target.platforms else "linux"
    command = [uv, "pip", "compile", str(requirements_in)]
    command += ["--python-version", version, "--python-platform", platform]
    command += ["-o", str(output), "--no-header", "--no-annotate", "--quiet"]
    for path in constraint_files:
        command += ["--constraint", str(path)]
    command += list(index_args)
    if format == "pylock":
        command += ["--format", "pylock.toml"]
    else:
        command += ["--generate-hashes", "--emit-index-url", "--emit-find-links"]
    if offline:
        command.append("--offline")
    return command


def resolve_lock(
    pins: Sequence[FamilyPin],
    passthrough: Sequence[str],
    target: Target,
    *,
    format: LockFormat,
    uv: str,
    header: Sequence[str] = (),
    tool: Mapping[str, str] | None = None,
    constraints: Sequence[str] = (),
    env: Mapping[str, str] = os.environ,
    ca_bundle: Path | None = None,
    timeout: float | None = None,
    offline: bool = False,
    runner: Runner = run,
) -> tuple[str, list[tuple[str, str]]]:
    """The lock's text, and (name, version) of every package in it. ``passthrough`` are the
    user's other requirement and option lines, ``constraints`` their constraint lines (both
    as an installer reads them in a file).

    ``header`` lines become the file's opening comments; ``tool`` is written as the pylock's
    ``[tool.torchfit]`` table. Raises ResolutionConflict when uv cannot resolve, TorchfitError
    when what it wrote is not the plan (another torch file, a family member not planned).
    """
    with tempfile.TemporaryDirectory(prefix="torchfit-lock-") as folder:
        requirements_in = Path(folder) / "requirements.in"
        lines = [pin.requirement() for pin in pins] + list(passthrough)
        requirements_in.write_text("\n".join(lines) + "\n", encoding="utf-8")
        constraint_files = []
        if constraints:
            constraint_files.append(Path(folder) / "constraints.txt")
            constraint_files[0].write_text("\n".join(constraints) + "\n", encoding="utf-8")
        output = Path(folder) / ("pylock.toml" if format == "pylock" else "requirements.txt")
        command = compile_command(
            uv,
            requirements_in,
            output,
            target,
            format=format,
            constraint_files=constraint_files,
            index_args=index_options(env),
            offline=offline,
        )
        done = runner(
            command,
            timeout=RESOLVE_TIMEOUT,
            env=resolver_env(env, ca_bundle=ca_bundle, timeout=timeout),
        )
        if done.returncode != 0 or not output.is_file():
            raise ResolutionConflict(
                "uv could not lock the dependencies of the planned wheels"
                f" (uv pip compile, exit {done.returncode})",
                details=tuple(done.tail(12).splitlines()),
                hint="the lines above are uv's; check the requirements and the index settings",
            )
        text = output.read_text(encoding="utf-8")
    comments = "".join(f"# {line}\n" for line in header)
    if format == "pylock":
        body, locked = pylock_text(text, pins, tool or {})
    else:
        body, locked = requirements_text(text, pins)
    return comments + body, locked


def requirements_text(text: str, pins: Sequence[FamilyPin]) -> tuple[str, list[tuple[str, str]]]:
    """uv's hashed requirements, checked against ``pins`` and without URL credentials.

    >>> pin = FamilyPin("torch", "2.8.0+cpu", "https://u:t@h/torch-2.8.0%2Bcpu-py3-none-any.whl",
    ...                 "ab")
    >>> uv = "--index-url https://pypi.org/simple\\n\\nnumpy==2.0 \\\\\\n    --hash=sha256:cd\\n"
    >>> uv += "torch @ " + pin.url + "#sha256=ab \\\\\\n    --hash=sha256:ab\\n"
    >>> body, locked = requirements_text(uv, [pin])
    >>> locked
    [('numpy', '2.0'), ('torch', '2.8.0+cpu')]
    >>> "u:t@" in body
    False
    """
    found: dict[str, tuple[str, list[str]]] = {}  # name -> (version or URL, hashes)
    for line in _logical_lines(text):
        if not line or line.startswith(("#", "-")):
            continue
        spec, *options = line.split(" --hash=")
        try:
            requirement = Requirement(spec.strip())
        except InvalidRequirement as exc:
            raise TorchfitError(f"uv wrote a line torchfit cannot read: {line!r} ({exc})") from None
        pinned = requirement.url or str(requirement.specifier).lstrip("=")
        found[canonicalize_name(requirement.name)] = (pinned, [o.strip() for o in options])
    planned: dict[str, FamilyPin] = {canonicalize_name(pin.name): pin for pin in pins}
    _check_family(set(found), planned)
    locked = []
    for name, (pinned, hashes) in sorted(found.items()):
        pin = planned.get(name)
        if pin is not None:
            url = pinned.split("#")[0]
            want = f"sha256:{pin.sha256}" if pin.sha256 else None
            if _bare(url) != _bare(pin.url) or (want is not None and hashes != [want]):
                _mismatch(pin, f"{url} with {', '.join(hashes) or 'no hash'}")
        locked.append((name, pin.version if pin else pinned))
    return redact_credentials(text), locked


def pylock_text(
    text: str, pins: Sequence[FamilyPin], tool: Mapping[str, str]
) -> tuple[str, list[tuple[str, str]]]:
    """uv's pylock.toml, checked against ``pins``, with each family entry written as the
    wheel of its index folder (``wheels``, ``index``) and no URL credentials anywhere."""
    import tomli_w

    document = _load_toml(text)
    packages = document.get("packages")
    if not isinstance(packages, list) or not all(isinstance(p, dict) for p in packages):
        raise TorchfitError("uv wrote a pylock.toml without a list of packages")
    planned: dict[str, FamilyPin] = {canonicalize_name(pin.name): pin for pin in pins}
    _check_family({canonicalize_name(str(p.get("name"))) for p in packages}, planned)
    locked = []
    for package in packages:
        name = canonicalize_name(str(package.get("name")))
        pin = planned.get(name)
        if pin is not None:
            _family_entry(package, pin)
        locked.append((name, str(package.get("version", ""))))
    document["created-by"] = "torchfit"
    if tool:
        document.setdefault("tool", {})["torchfit"] = dict(tool)
    body = tomli_w.dumps(_without_credentials(document))
    _check_pylock(body)
    return body, sorted(locked)


def _family_entry(package: dict[str, Any], pin: FamilyPin) -> None:
    """Check ``package`` (a direct archive, as uv writes a URL requirement) against ``pin``,
    then rewrite it as a wheel found on the variant's index folder."""
    archive = package.get("archive")
    wheels = package.get("wheels")
    if isinstance(archive, dict):
        entries = [archive]
    elif isinstance(wheels, list) and len(wheels) == 1 and isinstance(wheels[0], dict):
        entries = wheels
    else:
        entries = []
    if len(entries) != 1:
        _mismatch(pin, "no single wheel")
    url = str(entries[0].get("url", ""))
    hashes = entries[0].get("hashes")
    sha256 = hashes.get("sha256") if isinstance(hashes, dict) else None
    if _bare(url) != _bare(pin.url) or (pin.sha256 and str(sha256).lower() != pin.sha256.lower()):
        _mismatch(pin, f"{url} with sha256 {sha256}")
    package.pop("archive", None)
    folder = pin.url.split("#")[0].rsplit("/", 1)[0]
    package["index"] = folder
    wheel: dict[str, Any] = {"name": _filename(pin.url), "url": pin.url.split("#")[0]}
    if pin.sha256:
        wheel["hashes"] = {"sha256": pin.sha256.lower()}
    package["wheels"] = [wheel]


def _check_family(names: set[str], planned: Mapping[str, FamilyPin]) -> None:
    missing = sorted(set(planned) - names)
    if missing:
        raise TorchfitError(f"uv's lock leaves out the planned {', '.join(missing)}")
    extra = sorted(n for n in names & set(FAMILY) if n not in planned)
    if extra:
        # It would come from the user's index, in whatever build that index has.
        raise TorchfitError(
            f"a dependency needs {', '.join(extra)}, which the plan does not choose",
            hint=f"add {' '.join(extra)} to the requirements, so torchfit picks its build",
        )


def _mismatch(pin: FamilyPin, found: str) -> None:
    raise TorchfitError(
        f"uv's lock does not hold the planned {pin.name} file: {found}",
        details=(f"planned: {pin.url} with sha256 {pin.sha256}",),
        hint="this is a torchfit bug; nothing was written",
    )


def _check_pylock(body: str) -> None:
    """Validate with packaging's PEP 751 model, where the installed packaging has one."""
    try:
        from packaging.pylock import Pylock, PylockValidationError
    except ImportError:  # packaging < 25: uv's output and the checks above stand
        return
    try:
        Pylock.from_dict(_load_toml(body))
    except PylockValidationError as exc:
        raise TorchfitError(f"the pylock.toml written is not valid PEP 751: {exc}") from None


def _load_toml(text: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TorchfitError(f"uv wrote a pylock.toml that is not TOML: {exc}") from None


def _logical_lines(text: str) -> list[str]:
    """Lines with their backslash continuations joined, as pip reads a requirements file."""
    return [" ".join(line.split()) for line in re.sub(r"\\\n", " ", text).splitlines()]


def _filename(url: str) -> str:
    from urllib.parse import unquote

    return unquote(urlsplit(url.split("#")[0]).path.rsplit("/", 1)[-1])


def _bare(url: str) -> str:
    """``url`` without its fragment and credentials, for comparing two spellings of it."""
    parts = urlsplit(url.split("#")[0])
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^\s/?#\"']*@")


def redact_credentials(text: str) -> str:
    """``text`` with the userinfo of every URL removed (a lock must not hold a token).

    >>> redact_credentials("--index-url https://u:t@m.example/simple")
    '--index-url https://m.example/simple'
    """
    return _USERINFO.sub(lambda m: m.group("scheme"), text) if "@" in text else text


def _without_credentials(value: Any) -> Any:
    if isinstance(value, str):
        return redact_credentials(value)
    if isinstance(value, dict):
        return {key: _without_credentials(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_credentials(item) for item in value]
    return value


def check_writable(path: Path) -> None:
    """Raise UsageError now, before any planning, when a lock cannot be written at ``path``."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UsageError(f"cannot write the lock to {path}: it is a directory")
    if not folder.is_dir():
        raise UsageError(f"cannot write the lock to {path}: no directory {folder}")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"cannot write the lock to {path}: permission denied")


def write_lock(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all: a temporary file in the same folder,
    then renamed over it. Raises UsageError when it cannot be written."""
    folder = path.parent if str(path.parent) else Path(".")
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    except OSError as exc:
        raise UsageError(f"cannot write the lock to {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as file:
            file.write(text)
        if path.exists():  # keep the mode of the file it replaces
            os.chmod(temporary, path.stat().st_mode & 0o7777)
        else:
            os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise UsageError(f"cannot write the lock to {path}: {exc.strerror or exc}") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
