"""Refresh bundled snapshot pages from a live PyTorch index (or a mirror of it).

    python scripts/refresh_snapshots.py --variant cu128 --variant cu130 \\
        --project torch --project torchvision --versions ">=2.8" [--index URL]

Fetches ``<index>/<variant>/<project>/`` with torchfit's own client (PEP 691 JSON or PEP 503
HTML), keeps the wheels whose version matches ``--versions`` (all when omitted), writes the page
in the index's own shape (host-absolute hrefs, ``#sha256=``, PEP 658 attributes when the live
page has them) and records in MANIFEST.json where and when it came from. A refreshed page
replaces the one built from the reference data; scripts/build_snapshots.py rebuilds only those.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from packaging.specifiers import SpecifierSet
from packaging.utils import parse_wheel_filename

from torchfit.index.client import DEFAULT_INDEX, IndexClient
from torchfit.variants import Variant

LIVE = "live index"


def render(project: str, links: list[tuple[str, str, str | None, str | bool | None]]) -> str:
    out = ["<!DOCTYPE html>", "<html>", "  <body>", f"    <h1>Links for {project}</h1>"]
    for filename, href, sha256, metadata in links:
        fragment = f"#sha256={sha256}" if sha256 else ""
        attrs = ""
        if metadata:
            value = f"sha256={metadata}" if isinstance(metadata, str) else "true"
            attrs = f' data-dist-info-metadata="{value}" data-core-metadata="{value}"'
        out.append(
            f'    <a href="{html.escape(href)}{fragment}"{attrs}>{html.escape(filename)}</a><br/>'
        )
    return "\n".join([*out, "  </body>", "</html>", ""])


def refresh(
    index: str,
    variants: list[str],
    projects: list[str],
    versions: str | None,
    out: Path,
    trusted_hosts: list[str],
) -> list[str]:
    """Rewrite the chosen pages and their manifest entries; return the pages written."""
    manifest = json.loads((out / "MANIFEST.json").read_text(encoding="utf-8"))
    specifier = SpecifierSet(versions or "")
    day = time.strftime("%Y-%m-%d", time.gmtime())
    host = urlsplit(index).netloc
    written = []
    with IndexClient(index, trusted_hosts=trusted_hosts, rebase=False) as client:
        for tag in variants:
            variant = Variant.parse(tag)
            for project in projects:
                rows = []
                for link in client.links(project, variant):
                    version = parse_wheel_filename(link.filename)[1]
                    if not specifier.contains(version, prereleases=True):
                        continue
                    parts = urlsplit(link.url)
                    # Same host: write it host-absolute, as the real index does.
                    href = parts.path if parts.netloc == host else link.url
                    rows.append((link.filename, href, link.sha256, link.metadata))
                rows.sort()
                path = f"{variant.tag}/{project}/index.html"
                data = render(project, rows).encode()
                (out / path).parent.mkdir(parents=True, exist_ok=True)
                (out / path).write_bytes(data)
                trimmed = f", trimmed to versions {versions}" if versions else ""
                manifest["pages"][path] = {
                    "files": len(rows),
                    "sources": [LIVE],
                    "date": day,
                    "complete": not versions,
                    "note": f"fetched from {client.page_url(project, variant)} on {day}{trimmed}.",
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
                written.append(path)
            _root_page(out, variant.tag, manifest, day)
    manifest["sources"][LIVE] = (
        "Pages fetched by scripts/refresh_snapshots.py from the index each page's note names."
    )
    text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    (out / "MANIFEST.json").write_text(text, encoding="utf-8")
    return written


def _root_page(out: Path, variant: str, manifest: dict[str, object], day: str) -> None:
    projects = sorted(p.name for p in (out / variant).iterdir() if (p / "index.html").is_file())
    lines = ["<!DOCTYPE html>", "<html>", "  <body>"]
    lines += [f'    <a href="{p}/">{p}</a><br/>' for p in projects]
    data = "\n".join([*lines, "  </body>", "</html>", ""]).encode()
    (out / variant / "index.html").write_bytes(data)
    pages = manifest["pages"]
    assert isinstance(pages, dict)
    entry = pages.setdefault(f"{variant}/index.html", {"sources": [], "complete": False})
    entry.update(files=len(projects), date=max(str(entry.get("date", day)), day))
    entry["sources"] = sorted(set(entry["sources"]) | {LIVE})
    entry["note"] = "Root page: lists only the bundled projects (torch, torchvision, torchaudio)."
    entry["sha256"] = hashlib.sha256(data).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--index", default=DEFAULT_INDEX, help=f"index base (default {DEFAULT_INDEX})"
    )
    parser.add_argument("--variant", action="append", required=True, help="e.g. cu128 (repeatable)")
    parser.add_argument(
        "--project", action="append", default=None, help="default: torch, torchvision, torchaudio"
    )
    parser.add_argument("--versions", help="keep only these versions, e.g. '>=2.8'")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[1] / "wheel_index_snapshots"
    )
    parser.add_argument("--trusted-host", action="append", default=[])
    args = parser.parse_args(argv)
    projects = args.project or ["torch", "torchvision", "torchaudio"]
    written = refresh(
        args.index, args.variant, projects, args.versions, args.out, args.trusted_host
    )
    print(f"refreshed {len(written)} pages in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
