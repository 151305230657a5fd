"""Settings, resolved once for the command line and the library alike.

Precedence: options given (flags, keyword arguments) > ``TORCHFIT_*`` variables > defaults.
A complete :class:`Settings` value passed by a library caller is taken as it is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torchfit.errors import UsageError
from torchfit.index.cache import default_cache_dir
from torchfit.index.urls import DEFAULT_INDEX
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


#: Options that are parts of ``Settings.overrides``, each also settable alone.
_OVERRIDE_PARTS = ("cuda", "driver", "gpu_arch")
_FIELDS = frozenset(f.name for f in dataclasses.fields(Settings))


def resolve_settings(options: Mapping[str, Any], env: Mapping[str, str]) -> Settings:
    """Settings from ``options`` (Settings fields, or ``cuda``/``driver``/``gpu_arch``; None
    means "not given") over the ``TORCHFIT_*`` variables in ``env`` over the defaults.

    Raises UsageError for an unknown option or a malformed variable.
    """
    unknown = set(options) - _FIELDS - set(_OVERRIDE_PARTS)
    if unknown:
        raise UsageError(f"unknown option {sorted(unknown)[0]!r}", hint="see torchfit.Settings")
    given = {name: value for name, value in options.items() if value is not None}
    values = {**_from_environment(env), **given}
    parts = {name: values.pop(name) for name in _OVERRIDE_PARTS if name in values}
    if "overrides" not in given:
        values["overrides"] = Overrides(**{**_overrides_from_environment(env), **parts})
    for name in ("trusted_hosts", "platforms"):
        if name in values:
            values[name] = tuple(values[name])
    return Settings(**values)


def _from_environment(env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if text := _variable(env, "TORCHFIT_VARIANT"):
        values["variant"] = Variant.parse(text)
    if text := _variable(env, "TORCHFIT_PYTORCH_INDEX"):
        values["index"] = text
    if text := _variable(env, "TORCHFIT_CACHE_DIR"):
        values["cache_dir"] = Path(text)
    return values


def _overrides_from_environment(env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if text := _variable(env, "TORCHFIT_CUDA"):
        values["cuda"] = parse_cuda(text)
    if text := _variable(env, "TORCHFIT_DRIVER"):
        values["driver"] = parse_driver(text)
    if text := _variable(env, "TORCHFIT_GPU_ARCH"):
        values["gpu_arch"] = tuple(parse_arch(t) for t in text.split(",") if t.strip())
    return values


def _variable(env: Mapping[str, str], name: str) -> str | None:
    # An empty variable means "unset", as for pip's PIP_* variables.
    return env.get(name, "").strip() or None


def parse_driver(text: str) -> str:
    """A driver version as given (``550.54.14``), checked.

    Raises UsageError when it is not one.
    """
    if parse_driver_version(text) is None:
        raise UsageError(f"invalid driver version {text!r}", hint="write it as e.g. 550.54.14")
    return text.strip()


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
        raise UsageError(f"invalid GPU architecture {text!r}", hint="write it as X.Y, e.g. 8.6")
    return capability
