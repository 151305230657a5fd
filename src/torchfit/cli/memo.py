"""The answer to a repeated ``torchfit plan``, kept while every page it rests on stands.

A plan is a pure function of its inputs: the requirements, the settings, the machine, the
target, the pages it read and torchfit's own code. The memo keys an answer on all of them
but the pages, and keeps the pages' cache files' stamps beside it: while each file is
unchanged (and, online, still fresh), the same question gets the same answer without
importing the resolver or reading a page again. Anything else is a miss, and a miss only
costs the ordinary plan.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from torchfit._probes import probe_command
from torchfit._probes.interpreter import interpreter_facts
from torchfit._runner import run
from torchfit._version import __version__
from torchfit.index.cache import DEFAULT_LIFETIME, DiskCache
from torchfit.index.snapshots import bundled_snapshots
from torchfit.machine.record import Detection
from torchfit.settings import Settings

_FORMAT = 1
# Settings that change how pages are asked, never the answer: no part of the key.
_HOW_NOT_WHAT = frozenset({"refresh", "timeout", "ca_bundle", "netrc"})
_PACKAGE = Path(__file__).resolve().parents[1]


def key(
    requirements: Sequence[str],
    settings: Settings,
    machine: Detection,
    files: Sequence[tuple[str, str]] = (),
) -> str:
    """Everything a plan depends on but the pages, as one digest; ``files`` are the
    requirement and constraint files read, (name as given, text), includes and all."""
    inputs = {
        "format": _FORMAT,
        "code": _code_stamp(),
        "requirements": list(requirements),
        "files": [list(file) for file in files],
        "settings": {k: v for k, v in asdict(settings).items() if k not in _HOW_NOT_WHAT},
        "machine": machine.to_json(),
        "interpreter": _interpreter_stamp(settings.python),
    }
    text = json.dumps(inputs, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def recall(settings: Settings, digest: str, *, now: float | None = None) -> dict[str, Any] | None:
    """The plan (as JSON) remembered under ``digest``, or None when it may no longer hold."""
    if settings.cache_dir is None or settings.refresh:
        return None
    cache = DiskCache(settings.cache_dir)
    entry = cache.answer(digest)
    if not isinstance(entry, dict) or entry.get("key") != digest:
        return None
    moment = time.time() if now is None else now
    pages = entry.get("pages")
    expires = entry.get("expires")
    if not isinstance(pages, list) or not isinstance(entry.get("plan"), dict):
        return None
    if not settings.offline and not (isinstance(expires, (int, float)) and moment < expires):
        return None
    for page in pages:
        if not isinstance(page, dict) or cache.page_stamp(str(page.get("url"))) != page.get(
            "stamp"
        ):
            return None
    plan: dict[str, Any] = entry["plan"]
    if not _renders(plan):
        return None  # damaged: the ordinary plan answers, and is remembered again
    plan["pages"] = [{**record, "origin": "memo"} for record in plan["pages"]]
    return plan


def _renders(plan: dict[str, Any]) -> bool:
    """Whether a remembered plan has the shape the renderers read (a damaged file may not)."""
    try:
        target = plan["target"]
        return (
            isinstance(plan["variant"], str)
            and isinstance(target["python_version"], str)
            and isinstance(target["platforms"][0], str)
            and all(isinstance(p[k], str) for p in plan["packages"] for k in _PACKAGE_TEXTS)
            and all(isinstance(line, str) for key in _LISTS for line in plan[key])
            and all(isinstance(p["line"], str) for p in plan["passthrough"])
            and all(isinstance(p["origin"], str) for p in plan["passthrough"])
            and all(isinstance(record, dict) for record in plan["pages"])
        )
    except (KeyError, TypeError, IndexError):
        return False


_PACKAGE_TEXTS = ("name", "version", "filename", "url")
_LISTS = ("reasons", "warnings")


def remember(
    settings: Settings, digest: str, plan: Mapping[str, Any], *, now: float | None = None
) -> None:
    """Keep ``plan`` (as JSON) under ``digest``, with the stamps of the pages it read."""
    if settings.cache_dir is None:
        return
    cache = DiskCache(settings.cache_dir)
    moment = time.time() if now is None else now
    expires = moment + DEFAULT_LIFETIME  # what was absent may appear: ask again in a while
    pages = []
    for record in plan.get("pages", []):
        url, origin = record["url"], record["origin"]
        if origin.startswith(("network", "cache")):
            entry = cache.page(url)
            if entry is None or entry.lifetime is None:
                return  # not kept (no-store), or nothing to say how long it holds
            expires = min(expires, entry.stored_at + entry.lifetime)
        pages.append({"url": url, "stamp": cache.page_stamp(url)})
    cache.store_answer(digest, {"key": digest, "expires": expires, "pages": pages, "plan": plan})


def _code_stamp() -> list[Any]:
    """torchfit's version and the stamps of its files: new code never reuses an old answer."""
    stamps: list[Any] = [__version__]
    snapshots = bundled_snapshots()
    if snapshots is not None:
        manifest = os.stat(snapshots / "MANIFEST.json")
        stamps.append(["MANIFEST.json", manifest.st_mtime_ns, manifest.st_size])
    for folder, _, files in sorted(os.walk(_PACKAGE)):
        for name in sorted(files):
            if name.endswith((".py", ".json")):
                stat = os.stat(os.path.join(folder, name))
                stamps.append([name, stat.st_mtime_ns, stat.st_size])
    return stamps


def _interpreter_stamp(python: str | None) -> Any:
    """What decides the target interpreter's wheel tags.

    This one: its own facts, read in-process. Another: the facts its probe reports (a name
    such as ``python3``, a pyenv shim or a rebuilt venv may be another interpreter each time).
    """
    if python is None or python == sys.executable:
        return interpreter_facts()
    done = run(probe_command(python, "interpreter"), timeout=60)
    return [python, done.returncode, done.stdout]
