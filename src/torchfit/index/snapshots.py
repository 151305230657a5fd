"""The index snapshots bundled with torchfit: the offline answer of last resort."""

from __future__ import annotations

import json
from pathlib import Path

from torchfit.index.urls import DEFAULT_INDEX
from torchfit.variants import Variant


def bundled_snapshots() -> Path | None:
    """The snapshot folder: inside the installed package, or beside the source tree."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "_snapshots", package.parents[1] / "wheel_index_snapshots"):
        if (candidate / "MANIFEST.json").is_file():
            return candidate
    return None


def snapshot_page(root: Path, project: str, variant: Variant, *, flat: bool) -> tuple[Path, str]:
    """The snapshot file for a page, and the upstream URL its links are relative to."""
    if flat:
        return root / "torch_stable.html", f"{DEFAULT_INDEX}/torch_stable.html"
    return root / variant.tag / project / "index.html", f"{DEFAULT_INDEX}/{variant.tag}/{project}/"


def snapshot_date(root: Path, page: Path) -> str | None:
    """The date MANIFEST.json gives ``page``, or None when it gives none."""
    try:
        manifest = json.loads((root / "MANIFEST.json").read_text(encoding="utf-8"))
        entry = manifest["pages"][page.relative_to(root).as_posix()]
        return str(entry["date"]) if entry.get("date") else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
