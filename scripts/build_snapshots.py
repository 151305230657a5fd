"""Build ``wheel_index_snapshots/`` from the reference data (see SOURCES.md beside it).

    python scripts/build_snapshots.py --reference REFERENCE_DIR --out wheel_index_snapshots

Writes ``torch_stable.html`` (the March-2021 legacy find-links page, copied byte for byte), one
PEP 503 page per (variant, project) in the shape download.pytorch.org's generator emits (pytorch/
test-infra ``s3_management/manage.py``), a root page per variant, and ``MANIFEST.json`` saying
where every page came from and how complete it is. Nothing is invented: no metadata hashes, no
timestamps, no sizes. Output is deterministic: running it twice gives identical bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import re
import shutil
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

PROJECTS = ("torch", "torchvision", "torchaudio")
# Stable channels only: nightly/, test/ and the experimental "variant" index are left out.
STABLE_VARIANT = re.compile(r"cpu|cu\d+|rocm\d+(?:\.\d+)+|xpu")
R2_HOST = "download-r2.pytorch.org"

LEGACY, LOCKS, LISTING = "torch_stable-2021-03", "lockfiles", "uv-issue-10843-cu124"
LEGACY_FILE = "torch_stable-2021-03.html"
LOCKS_FILE = "wheels_all.jsonl"
LISTING_FILE = "index_listings/torch-2.5.1-cu124-index-snapshot-2025-01-22.txt"
LISTING_DATE = "2025-01-22"  # the day the listing was pasted (file name and its header)
DATE_NOTE = (
    "date: 2021-03 for torch_stable.html data; otherwise the latest UTC day on which a source saw "
    "one of the page's files (lock file commit date, or the day the cu124 listing was pasted)."
)
# Rows of SOURCES.md (first table cell) whose origin text is each source's provenance.
SOURCE_ROWS = {
    LEGACY: (LEGACY_FILE,),
    LOCKS: ("wheels/<pkg>-<version>-<variant>.txt (179 files)", LOCKS_FILE),
    LISTING: (LISTING_FILE,),
}


@dataclass(frozen=True)
class Link:
    filename: str
    href: str  # without the #sha256 fragment
    sha256: str | None
    source: str
    date: str  # "2021-03" or YYYY-MM-DD: when a source last saw the file


class Pages:
    """(variant, project) -> {filename: Link}, merged across sources."""

    def __init__(self) -> None:
        self.links: dict[tuple[str, str], dict[str, Link]] = {}
        self.sources: dict[tuple[str, str], set[str]] = {}
        self.notes: dict[tuple[str, str], list[str]] = {}

    def add(self, variant: str, project: str, link: Link) -> None:
        key = (variant, project)
        page = self.links.setdefault(key, {})
        self.sources.setdefault(key, set()).add(link.source)
        old = page.get(link.filename)
        if old is None or (old.sha256 is None and link.sha256):
            page[link.filename] = link
        elif old.sha256 and link.sha256 and old.sha256 != link.sha256:
            kept = f"kept {old.source}'s"
            self.note(key, f"{link.filename}: {link.source} has another sha256; {kept}")

    def note(self, key: tuple[str, str], text: str) -> None:
        self.notes.setdefault(key, []).append(text)


def wheel_project(filename: str) -> str | None:
    """The project of a torch-family wheel file name, or None for anything else."""
    try:
        name = str(parse_wheel_filename(filename)[0])
    except InvalidWheelFilename:
        return None
    return name if name in PROJECTS else None


def utc_day(stamp: str) -> str:
    return datetime.fromisoformat(stamp).astimezone(timezone.utc).strftime("%Y-%m-%d")


def read_legacy(text: str, pages: Pages, skipped: list[str]) -> None:
    """Flat-page links: ``<folder>/<file>`` goes to that variant, root macOS wheels to cpu."""
    root_skipped: dict[str, int] = {}
    for href in re.findall(r'<a href="([^"]+)">', text):
        folder, _, quoted = href.rpartition("/")
        filename = unquote(quoted)
        project = wheel_project(filename)
        if project is None:
            continue
        if not folder and "macosx" not in filename:
            root_skipped[project] = root_skipped.get(project, 0) + 1
            continue
        variant = folder or "cpu"  # macOS builds are CPU-only
        pages.add(variant, project, Link(filename, f"/whl/{href}", None, LEGACY, "2021-03"))
    counts = ", ".join(f"{n} {p}" for p, n in sorted(root_skipped.items()))
    skipped.append(
        f"{LEGACY_FILE}: root-level (no folder) non-macOS files skipped ({counts}): 0.x torch/"
        "torchvision and torchaudio <= 0.8.0 Linux/Windows wheels, which name no variant. "
        "Root-level macOS wheels are listed in cpu/ with their real /whl/<file> href. Other "
        "projects (torchcsprng, torchtext, torch_nightly, ...) skipped."
    )


def read_locks(lines: list[str], pages: Pages, skipped: list[str]) -> None:
    """Rows of wheels_all.jsonl for stable variants; a row without URL came from a poetry.lock."""
    other: dict[str, int] = {}
    for line in lines:
        row = json.loads(line)
        variant, filename = row["variant"], row["filename"]
        project = wheel_project(filename)
        if not STABLE_VARIANT.fullmatch(variant) or project is None:
            other[variant] = other.get(variant, 0) + 1
            continue
        url = row["url"]
        if url and urlsplit(url).netloc == R2_HOST:
            href = url  # manage_v2.py writes absolute R2 hrefs; keep the host the lock saw
        elif url:
            href = urlsplit(url).path
        else:
            href = f"/whl/{variant}/{quote(filename, safe='')}"  # poetry: name only, path assumed
        date = max(utc_day(s["commit_date"]) for s in row["sources"])
        pages.add(variant, project, Link(filename, href, row["sha256"] or None, LOCKS, date))
        if row["alt_sha256"]:
            alts = ", ".join(sorted(a["sha256"] for a in row["alt_sha256"]))
            pages.note(
                (variant, project),
                f"{filename}: sha256 {row['sha256']} kept; another lock commit recorded "
                f"{alts} (re-upload?).",
            )
    counts = ", ".join(f"{v}: {n}" for v, n in sorted(other.items()))
    skipped.append(f"{LOCKS_FILE}: rows of non-stable indexes skipped ({counts}).")


def read_listing(text: str, pages: Pages) -> None:
    for line in text.splitlines():
        if not line.startswith("https://"):
            continue
        url, _, fragment = line.partition("#sha256=")
        filename = unquote(urlsplit(url).path.rpartition("/")[2])
        project = wheel_project(filename)
        if project is None:
            raise SystemExit(f"{LISTING_FILE}: not a torch-family wheel: {line}")
        link = Link(filename, urlsplit(url).path, fragment or None, LISTING, LISTING_DATE)
        pages.add("cu124", project, link)


def project_page(project: str, links: list[Link]) -> str:
    out = ["<!DOCTYPE html>", "<html>", "  <body>", f"    <h1>Links for {project}</h1>"]
    for link in links:
        fragment = f"#sha256={link.sha256}" if link.sha256 else ""
        text = html.escape(link.filename)
        out.append(f'    <a href="{html.escape(link.href)}{fragment}">{text}</a><br/>')
    return "\n".join([*out, "  </body>", "</html>", ""])


def root_page(projects: list[str]) -> str:
    out = ["<!DOCTYPE html>", "<html>", "  <body>"]
    out += [f'    <a href="{p}/">{p}</a><br/>' for p in projects]
    return "\n".join([*out, "  </body>", "</html>", ""])


def page_note(sources: set[str], variant: str, links: list[Link]) -> str:
    parts = []
    if LEGACY in sources:
        extra = ", plus the page's root-level macOS wheels" if variant == "cpu" else ""
        parts.append(
            f"legacy: every {variant}/ link of torch_stable.html as of March 2021{extra}"
            " (torch <= 1.8.0 era; no sha256 there)"
        )
    if LOCKS in sources:
        parts.append("2.x: only the wheels seen in public uv.lock/poetry.lock files, not the index")
    if LISTING in sources:
        parts.append("torch 2.5.1 complete (listing pasted in astral-sh/uv issue #10843)")
    unhashed = sum(1 for link in links if link.sha256 is None and link.source != LEGACY)
    if unhashed:
        parts.append(f"{unhashed} 2.x links without sha256 (the lock files recorded none)")
    return "; ".join(parts) + "."


def provenance(sources_md: str) -> dict[str, str]:
    """Origin cell of each SOURCES.md table row named in SOURCE_ROWS."""
    cells = {}
    for line in sources_md.splitlines():
        parts = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(parts) >= 2:
            cells[parts[0]] = parts[1]
    out = {}
    for name, rows in SOURCE_ROWS.items():
        missing = [r for r in rows if r not in cells]
        if missing:
            raise SystemExit(f"SOURCES.md: no table row for {missing}")
        out[name] = " ".join(f"{r}: {cells[r]}" for r in rows)
    return out


def build(reference: Path) -> tuple[dict[str, bytes], dict[str, object]]:
    """Return {relative path: bytes} for every page and the manifest dict."""
    legacy = (reference / LEGACY_FILE).read_bytes()
    pages, skipped = Pages(), []
    # Most complete source first: on equal footing the first link seen for a file name wins.
    read_listing((reference / LISTING_FILE).read_text(encoding="utf-8"), pages)
    lines = (reference / LOCKS_FILE).read_text(encoding="utf-8").splitlines()
    read_locks([line for line in lines if line.strip()], pages, skipped)
    read_legacy(legacy.decode("utf-8"), pages, skipped)

    files: dict[str, bytes] = {"torch_stable.html": legacy}
    entries: dict[str, dict[str, object]] = {
        "torch_stable.html": {
            "files": len(re.findall(rb"<a ", legacy)),
            "sources": [LEGACY],
            "date": "2021-03",
            "complete": True,
            "note": f"{LEGACY_FILE} copied byte for byte: the legacy flat find-links page.",
        }
    }
    for (variant, project), by_name in sorted(pages.links.items()):
        links = [by_name[name] for name in sorted(by_name)]
        path = f"{variant}/{project}/index.html"
        files[path] = project_page(project, links).encode()
        sources = pages.sources[(variant, project)]
        notes = [page_note(sources, variant, links), *pages.notes.get((variant, project), [])]
        entries[path] = {
            "files": len(links),
            "sources": sorted(sources),
            "date": max(link.date for link in links),
            # Only pages wholly from the 2021 flat page list everything their folder held.
            "complete": sources == {LEGACY},
            "note": " ".join(notes),
        }
    for variant in sorted({v for v, _ in pages.links}):
        projects = sorted(p for v, p in pages.links if v == variant)
        path = f"{variant}/index.html"
        files[path] = root_page(projects).encode()
        subpages = [entries[f"{variant}/{p}/index.html"] for p in projects]
        entries[path] = {
            "files": len(projects),
            "sources": sorted(set().union(*(pages.sources[(variant, p)] for p in projects))),
            "date": max(str(e["date"]) for e in subpages),
            "complete": False,
            "note": "Root page: lists only the bundled projects (torch, torchvision, torchaudio).",
        }
    for path, entry in entries.items():
        entry["sha256"] = hashlib.sha256(files[path]).hexdigest()
    manifest = {
        "format": 1,
        "generated_by": "scripts/build_snapshots.py",
        "notes": [DATE_NOTE, *skipped],
        "pages": entries,
        "sources": provenance((reference / "SOURCES.md").read_text(encoding="utf-8")),
    }
    return files, manifest


def write(out: Path, files: dict[str, bytes], manifest: dict[str, object]) -> None:
    # Start from an empty tree so pages dropped from the data do not linger.
    if out.exists():
        if any(out.iterdir()) and not (out / "MANIFEST.json").is_file():
            raise SystemExit(f"{out}: not empty and not a snapshot tree; refusing to replace it")
        shutil.rmtree(out)
    for path, data in files.items():
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_bytes(data)
    text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    (out / "MANIFEST.json").write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--reference", type=Path, required=True, help="folder of the recorded listings and tables"
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder (replaced)")
    args = parser.parse_args(argv)
    files, manifest = build(args.reference)
    write(args.out, files, manifest)
    print(f"wrote {len(files)} pages to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
