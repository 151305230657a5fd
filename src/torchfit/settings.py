"""Settings, resolved once for the command line and the library alike.

Precedence: options given (flags, keyword arguments) > ``TORCHFIT_*`` variables > defaults.
A few of pip's conventions are honoured too, below torchfit's own: ``PIP_TIMEOUT``, the CA
bundle variables and ``.netrc``. A complete :class:`Settings` value passed by a library
caller is taken as it is.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torchfit.errors import UsageError
from torchfit.index.cache import default_cache_dir
from torchfit.index.urls import DEFAULT_INDEX, DEFAULT_TIMEOUT
from torchfit.machine.amd import parse_gfx
from torchfit.machine.drivers import parse_driver_version
from torchfit.machine.record import Overrides
from torchfit.machine.smi import parse_compute_capability
from torchfit.variants import Variant, parse_cuda

if TYPE_CHECKING:
    from torchfit.choose.policy import Compat

__all__ = [
    "Settings",
    "parse_arch",
    "parse_driver",
    "parse_timeout",
    "resolve_settings",
]


@dataclass(frozen=True)
class Settings:
    """Everything a run needs to know about the machine, the index and the target."""

    overrides: Overrides = field(default_factory=Overrides)
    variant: Variant | None = None
    compat: Compat = "strict"
    force: bool = False
    index: str = DEFAULT_INDEX
    offline: bool = False
    refresh: bool = False  # revalidate cached pages even when they are fresh
    cache_dir: Path | None = field(default_factory=default_cache_dir)
    trusted_hosts: tuple[str, ...] = ()
    python: str | None = None
    python_version: str | None = None
    platforms: tuple[str, ...] = ()
    # The index's HTTP: seconds to connect and for each read (None: no limit), the CA
    # bundle to trust instead of the default, and the netrc file with index credentials.
    timeout: float | None = DEFAULT_TIMEOUT
    ca_bundle: Path | None = None
    netrc: Path | None = None
    require_hashes: bool = False  # a planned wheel without a sha256 from the index is an error
    # Wheelhouses (``torchfit download -d DIR``): the torch family is planned from these
    # folders instead of the index, and the installer gets them for the dependencies.
    find_links: tuple[Path, ...] = ()
    # The machine's root: every file source of detection reads under it (/proc, /sys, /dev,
    # /opt/rocm, /usr/lib/wsl); None is this machine's ``/``. A recorded machine, a chroot.
    root: Path | None = None
    # Every GPU the driver lists, whatever CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES say.
    all_gpus: bool = False


#: Options that are parts of ``Settings.overrides``, each also settable alone.
_OVERRIDE_PARTS = ("cuda", "driver", "gpu_arch")
_FIELDS = frozenset(f.name for f in dataclasses.fields(Settings))


def resolve_settings(options: Mapping[str, Any], env: Mapping[str, str]) -> Settings:
    """Settings from ``options`` (Settings fields, or ``cuda``/``driver``/``gpu_arch``; None
    means "not given") over the ``TORCHFIT_*`` variables in ``env`` over the defaults.

    Raises UsageError for an unknown option or a malformed variable.
    """
    _check_known(options)
    given = {name: _coerce(name, value) for name, value in options.items() if value is not None}
    values = {**_from_environment(env), **_network_from_environment(env, given), **given}
    if "timeout" in given:
        values["timeout"] = _checked_timeout(given["timeout"], "timeout")
    parts = _split_gfx({name: values.pop(name) for name in _OVERRIDE_PARTS if name in values})
    if "overrides" not in given:
        from_env = _split_gfx(_overrides_from_environment(env, parts))
        values["overrides"] = Overrides(**{**from_env, **parts})
    if "index" in values:
        values["index"] = with_pip_credentials(values["index"], env)
    return Settings(**values)


def with_pip_credentials(index: str, env: Mapping[str, str]) -> str:
    """``index`` with the credentials of a pip index on the same host, when it has none.

    One mirror often serves PyPI and the PyTorch folders (``PIP_INDEX_URL`` names it with a
    token): the PyTorch index is then asked as pip would ask that host.

    >>> with_pip_credentials("https://m.example/pytorch/whl",
    ...                      {"PIP_INDEX_URL": "https://u:t@m.example/simple"})
    'https://u:t@m.example/pytorch/whl'
    """
    from urllib.parse import urlsplit, urlunsplit

    try:
        target = urlsplit(index)
        if target.username is not None or not target.hostname:
            return index
        pip_urls = (_variable(env, "PIP_INDEX_URL") or "").split()
        pip_urls += (_variable(env, "PIP_EXTRA_INDEX_URL") or "").split()
        for text in pip_urls:
            pip = urlsplit(text)
            same = (pip.scheme, pip.hostname, pip.port) == (
                target.scheme,
                target.hostname,
                target.port,
            )
            if same and pip.username is not None:
                userinfo = pip.netloc.rpartition("@")[0]
                return urlunsplit(target._replace(netloc=f"{userinfo}@{target.netloc}"))
    except ValueError:  # a malformed URL: check_url says so later, in the user's words
        return index
    return index


def with_options(settings: Settings, options: Mapping[str, Any]) -> Settings:
    """``settings`` with ``options`` (as for :func:`resolve_settings`) applied over it.

    None means "not given" here too; no variable is read: ``settings`` is complete.
    """
    _check_known(options)
    given = {name: _coerce(name, value) for name, value in options.items() if value is not None}
    parts = _split_gfx({name: given.pop(name) for name in _OVERRIDE_PARTS if name in given})
    if parts:
        base = given.get("overrides", settings.overrides)
        if {"cuda", "driver"} & set(parts):  # one fact: giving either replaces both
            base = dataclasses.replace(base, cuda=None, driver=None)
        given["overrides"] = dataclasses.replace(base, **parts)
    return dataclasses.replace(settings, **given)


def _split_gfx(parts: dict[str, Any]) -> dict[str, Any]:
    """``gpu_arch`` values split by vendor: NVIDIA compute capabilities stay, AMD gfx targets
    move to ``gfx``; giving either replaces both, as one list of the machine's GPUs."""
    if "gpu_arch" not in parts:
        return parts
    archs = parts["gpu_arch"]
    return {
        **parts,
        "gpu_arch": tuple(a for a in archs if not isinstance(a, str)),
        "gfx": tuple(a for a in archs if isinstance(a, str)),
    }


def _check_known(options: Mapping[str, Any]) -> None:
    unknown = set(options) - _FIELDS - set(_OVERRIDE_PARTS)
    if unknown:
        raise UsageError(f"unknown option {sorted(unknown)[0]!r}", hint="see torchfit.Settings")


def _coerce(name: str, value: Any) -> Any:
    """A library caller's option as the Settings field holds it (text parsed, shapes checked).

    Raises UsageError for a value of the wrong kind.
    """
    if isinstance(value, str):
        parsers = {"variant": Variant.parse, "cuda": parse_cuda, "driver": parse_driver}
        if name in parsers:
            return parsers[name](value)
        if name == "root":
            return checked_root(Path(value), "--root")
        if name in ("cache_dir", "ca_bundle", "netrc"):
            return Path(value)
    if name == "compat" and value not in ("strict", "minor"):
        raise UsageError(f"invalid compat {value!r}", hint="use 'strict' or 'minor'")
    if name == "find_links":
        if isinstance(value, (str, Path)):
            value = [value]
        return tuple(Path(folder) for folder in value)
    if name in ("trusted_hosts", "platforms", "gpu_arch"):
        if isinstance(value, str):
            raise UsageError(
                f"{name} takes a list, not the text {value!r}", hint=f"{name}=[{value!r}]"
            )
        items = tuple(value)
        return (
            tuple(parse_gpu_arch(v) if isinstance(v, str) else v for v in items)
            if name == "gpu_arch"
            else items
        )
    return value


def _from_environment(env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if text := _variable(env, "TORCHFIT_VARIANT"):
        values["variant"] = Variant.parse(text)
    if text := _variable(env, "TORCHFIT_PYTORCH_INDEX"):
        values["index"] = text
    if text := _variable(env, "TORCHFIT_ROOT"):
        values["root"] = checked_root(Path(text), "TORCHFIT_ROOT")
    if text := _variable(env, "TORCHFIT_ALL_GPUS"):
        values["all_gpus"] = parse_switch(text, "TORCHFIT_ALL_GPUS")
    # The OS's cache folder from the same environment, not from os.environ behind its back.
    text = _variable(env, "TORCHFIT_CACHE_DIR")
    values["cache_dir"] = Path(text) if text else default_cache_dir(env)
    return values


def _network_from_environment(env: Mapping[str, str], given: Mapping[str, Any]) -> dict[str, Any]:
    """pip's conventions for the index's HTTP; a variable is read only when no option decides."""
    values: dict[str, Any] = {}
    if "timeout" not in given:
        # torchfit's own wins over pip's (which reads its --default-timeout alias too).
        for name in ("TORCHFIT_TIMEOUT", "PIP_TIMEOUT", "PIP_DEFAULT_TIMEOUT"):
            if text := _variable(env, name):
                values["timeout"] = parse_timeout(text, name)
                break
    if "ca_bundle" not in given:
        # SSL_CERT_FILE first, as httpx (and OpenSSL) read it; then pip's --cert variable;
        # then the two that pip's vendored requests honours, in its order. SSL_CERT_DIR,
        # when none of them is set, is left to httpx.
        for name in ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            if text := _variable(env, name):
                values["ca_bundle"] = Path(text)
                break
    if "netrc" not in given:
        values["netrc"] = _netrc_file(env)
    return values


def _netrc_file(env: Mapping[str, str]) -> Path | None:
    """The netrc file, as requests finds it for pip: $NETRC alone when set, else ~/.netrc,
    else ~/_netrc; None when there is none."""
    if text := _variable(env, "NETRC"):
        candidates = [Path(text).expanduser()]
    elif home := _variable(env, "HOME") or _variable(env, "USERPROFILE"):
        candidates = [Path(home) / ".netrc", Path(home) / "_netrc"]
    else:
        return None
    return next((path for path in candidates if _is_file(path)), None)


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a folder we may not look into (Python 3.9 lets EACCES through)
        return False


def _overrides_from_environment(env: Mapping[str, str], given: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    # The driver and its maximum CUDA are one fact: a flag for either silences both variables
    # (else TORCHFIT_CUDA=11.8 would outvote --driver 570.124.06).
    if not {"cuda", "driver"} & set(given):
        if text := _variable(env, "TORCHFIT_CUDA"):
            values["cuda"] = parse_cuda(text)
        if text := _variable(env, "TORCHFIT_DRIVER"):
            values["driver"] = parse_driver(text)
    if text := _variable(env, "TORCHFIT_GPU_ARCH"):
        values["gpu_arch"] = tuple(parse_gpu_arch(t) for t in text.split(",") if t.strip())
    return values


def _variable(env: Mapping[str, str], name: str) -> str | None:
    # An empty variable means "unset", as for pip's PIP_* variables.
    return env.get(name, "").strip() or None


def checked_root(path: Path, source: str) -> Path:
    """``path`` as the machine's root, when it is a folder.

    Raises UsageError, naming ``source``, when it is not.
    """
    if not path.is_dir():
        raise UsageError(
            f"{source} {str(path)!r} is not a folder",
            hint="give it the folder that holds the machine's proc/ and sys/, e.g. a recording",
        )
    return path


_SWITCH = {"1": True, "true": True, "yes": True, "on": True}
_SWITCH.update({"0": False, "false": False, "no": False, "off": False})


def parse_switch(text: str, source: str) -> bool:
    """A yes/no variable (``1``/``0``, ``true``/``false``, ``yes``/``no``, ``on``/``off``).

    >>> parse_switch("1", "TORCHFIT_ALL_GPUS"), parse_switch("off", "TORCHFIT_ALL_GPUS")
    (True, False)

    Raises UsageError, naming ``source``, for anything else.
    """
    value = _SWITCH.get(text.strip().lower())
    if value is None:
        raise UsageError(f"invalid {source} {text!r}", hint=f"set {source}=1 or {source}=0")
    return value


def parse_driver(text: str) -> str:
    """A driver version as given (``550.54.14``), checked.

    Raises UsageError when it is not one.
    """
    if parse_driver_version(text) is None:
        raise UsageError(f"invalid driver version {text!r}", hint="write it as e.g. 550.54.14")
    return text.strip()


def parse_timeout(text: str, source: str = "--timeout") -> float:
    """Seconds, as given to ``source`` (a flag or a variable), checked.

    >>> parse_timeout("2.5")
    2.5

    Raises UsageError, naming ``source``, for anything but a positive number.
    """
    return _checked_timeout(text, source)


def _checked_timeout(value: Any, source: str) -> float:
    # A flag's or variable's text, or what a library caller gave: a number or its text.
    seconds: float | None = None
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except (ValueError, OverflowError):
            seconds = None
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        raise UsageError(
            f"invalid {source} {value!r}: expected a number of seconds",
            hint=f"give {source} a positive number, e.g. 60",
        )
    return seconds


def parse_gpu_arch(text: str) -> tuple[int, int] | str:
    """A ``--gpu-arch`` value: an NVIDIA compute capability (see :func:`parse_arch`) or an
    AMD gfx target (``gfx1100``; feature flags such as ``:xnack-`` dropped).

    >>> parse_gpu_arch("gfx1100"), parse_gpu_arch("8.6")
    ('gfx1100', (8, 6))

    Raises UsageError for anything else.
    """
    gfx = parse_gfx(text)
    if gfx is not None:
        return gfx
    if text.strip().lower().startswith("gfx"):
        raise UsageError(
            f"invalid AMD GPU architecture {text!r}",
            hint="write it as ROCm names it, e.g. gfx1100 or gfx90a (rocm_agent_enumerator)",
        )
    return parse_arch(text)


def parse_arch(text: str) -> tuple[int, int]:
    """``"8.6"`` or ``"sm_86"``: a GPU's compute capability.

    >>> parse_arch("sm_120"), parse_arch("8.6")
    ((12, 0), (8, 6))

    Raises UsageError for anything else.
    """
    cleaned = text.strip().lower()
    if cleaned.startswith("sm_") and cleaned[3:].isdigit() and len(cleaned) > 4:
        cleaned = f"{cleaned[3:-1]}.{cleaned[-1]}"
    capability = parse_compute_capability(cleaned)
    if capability is None:
        raise UsageError(
            f"invalid GPU architecture {text!r}",
            hint="write it as X.Y, e.g. 8.6 (NVIDIA), or as gfxNNNN, e.g. gfx1100 (AMD)",
        )
    return capability
