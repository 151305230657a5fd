"""The bundled index snapshots: manifest integrity, page shape, real facts, reproducibility."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from packaging.utils import parse_wheel_filename

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOTS = ROOT / "wheel_index_snapshots"
# The reference data the snapshots are built from, where it is checked out beside the project.
REFERENCE = ROOT.parent / "shared" / "reference"
PROJECTS = ("torch", "torchvision", "torchaudio")
VARIANT_LABEL = re.compile(r"cpu|cu\d+|rocm\d+(?:\.\d+)+|xpu")
HREF_PREFIXES = ("/whl/", "https://download-r2.pytorch.org/whl/")


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self.h1: list[str] = []
        self._href: str | None = None
        self._in_h1 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href") or ""
            self.links.append((self._href, ""))
        self._in_h1 = tag == "h1"

    def handle_endtag(self, tag: str) -> None:
        self._href = None if tag == "a" else self._href
        self._in_h1 = False if tag == "h1" else self._in_h1

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            href, text = self.links[-1]
            self.links[-1] = (href, text + data)
        if self._in_h1:
            self.h1.append(data)


def parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return parser


def manifest() -> dict[str, Any]:
    return json.loads((SNAPSHOTS / "MANIFEST.json").read_text(encoding="utf-8"))


def project_pages() -> list[str]:
    return sorted(p for p in manifest()["pages"] if p.count("/") == 2)


def filenames(page: str) -> dict[str, str]:
    """Link filename -> href (fragment included) of one page."""
    out = {}
    for href, _ in parse(SNAPSHOTS / page).links:
        out[unquote(urlsplit(href).path.rpartition("/")[2])] = href
    return out


def test_manifest_lists_exactly_the_files_present() -> None:
    present = {p.relative_to(SNAPSHOTS).as_posix() for p in SNAPSHOTS.rglob("*") if p.is_file()}
    assert set(manifest()["pages"]) == present - {"MANIFEST.json"}


def test_manifest_header_and_sources() -> None:
    data = manifest()
    assert data["format"] == 1
    assert data["generated_by"] == "scripts/build_snapshots.py"
    for entry in data["pages"].values():
        assert set(entry["sources"]) <= set(data["sources"])
        assert entry["note"]


@pytest.mark.parametrize("page", sorted(manifest()["pages"]))
def test_page_hash_and_link_count(page: str) -> None:
    entry = manifest()["pages"][page]
    assert hashlib.sha256((SNAPSHOTS / page).read_bytes()).hexdigest() == entry["sha256"]
    assert len(parse(SNAPSHOTS / page).links) == entry["files"]


@pytest.mark.parametrize("page", project_pages())
def test_project_page_links(page: str) -> None:
    variant, project, _ = page.split("/")
    parsed = parse(SNAPSHOTS / page)
    assert parsed.h1 == [f"Links for {project}"]
    names = []
    for href, text in parsed.links:
        url = urlsplit(href)
        assert href.startswith(HREF_PREFIXES), href
        filename = unquote(url.path.rpartition("/")[2])
        assert text == filename
        name, version, _, _ = parse_wheel_filename(filename)
        assert name == project
        # A variant-looking local label must match the folder (+cu101 only in cu101/).
        if version.local and VARIANT_LABEL.fullmatch(version.local):
            assert version.local == variant, filename
        if url.fragment:
            assert re.fullmatch(r"sha256=[0-9a-f]{64}", url.fragment), href
        names.append(filename)
    assert names == sorted(set(names)), "links must be unique and sorted by filename"


@pytest.mark.parametrize("page", sorted(p for p in manifest()["pages"] if p.count("/") == 1))
def test_root_pages_list_their_projects(page: str) -> None:
    variant = page.split("/")[0]
    expected = [p for p in sorted(PROJECTS) if (SNAPSHOTS / variant / p / "index.html").is_file()]
    assert parse(SNAPSHOTS / page).links == [(f"{p}/", p) for p in expected]


def test_spot_checks_against_real_files() -> None:
    cu102 = filenames("cu102/torch/index.html")
    assert cu102["torch-1.7.1-cp38-cp38-linux_x86_64.whl"] == (
        "/whl/cu102/torch-1.7.1-cp38-cp38-linux_x86_64.whl"
    )
    cu101 = filenames("cu101/torch/index.html")
    assert cu101["torch-1.7.1+cu101-cp38-cp38-win_amd64.whl"] == (
        "/whl/cu101/torch-1.7.1%2Bcu101-cp38-cp38-win_amd64.whl"
    )
    assert "torchvision-0.8.2+cu92-cp38-cp38-linux_x86_64.whl" in filenames(
        "cu92/torchvision/index.html"
    )
    # Root-level macOS build of the flat page, listed in cpu/ with its real location.
    mac = "torchvision-0.8.2-cp38-cp38-macosx_10_9_x86_64.whl"
    assert filenames("cpu/torchvision/index.html")[mac] == f"/whl/{mac}"
    cu128 = filenames("cu128/torch/index.html")
    assert cu128["torch-2.8.0+cu128-cp312-cp312-manylinux_2_28_x86_64.whl"] == (
        "/whl/cu128/torch-2.8.0%2Bcu128-cp312-cp312-manylinux_2_28_x86_64.whl#sha256="
        "4354fc05bb79b208d6995a04ca1ceef6a9547b1c4334435574353d381c55087c"
    )
    # cu124 aarch64 wheels carry no +cu124 label (complete 2.5.1 listing from uv #10843).
    cu124 = filenames("cu124/torch/index.html")
    assert sum(name.startswith("torch-2.5.1") for name in cu124) == 13
    assert "torch-2.5.1-cp312-cp312-linux_aarch64.whl" in cu124
    # Newer lock files saw some files on the R2 host.
    r2 = "https://download-r2.pytorch.org/whl/cu130/"
    assert any(h.startswith(r2) for h in filenames("cu130/torch/index.html").values())


def test_completeness_flags_are_honest() -> None:
    pages = manifest()["pages"]
    assert pages["cu101/torch/index.html"]["complete"] is True
    assert pages["cu101/torch/index.html"]["date"] == "2021-03"
    assert pages["cpu/torch/index.html"]["complete"] is False
    assert pages["cu124/torch/index.html"]["complete"] is False
    assert "2.5.1 complete" in pages["cu124/torch/index.html"]["note"]
    for page, entry in pages.items():
        if "lockfiles" in entry["sources"]:
            assert entry["complete"] is False, page


def test_no_metadata_attributes_or_timestamps() -> None:
    for page in project_pages():
        text = (SNAPSHOTS / page).read_text(encoding="utf-8")
        assert "data-core-metadata" not in text
        assert "data-dist-info-metadata" not in text
        assert "TIMESTAMP" not in text


def test_regenerated_tree_equals_committed(tmp_path: Path) -> None:
    # The snapshots are generated from this data; without it they cannot be checked.
    assert REFERENCE.is_dir(), f"reference data not found at {REFERENCE} (beside the checkout)"
    out = tmp_path / "snapshots"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "build_snapshots.py"),
            "--reference",
            str(REFERENCE),
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )

    # Pages refreshed from a live index (scripts/refresh_snapshots.py) are not rebuilt.
    manifest = json.loads((SNAPSHOTS / "MANIFEST.json").read_text(encoding="utf-8"))
    live = {p for p, e in manifest["pages"].items() if "live index" in e["sources"]}

    def tree(base: Path) -> dict[str, bytes]:
        return {
            p.relative_to(base).as_posix(): p.read_bytes()
            for p in base.rglob("*")
            if p.is_file() and p.relative_to(base).as_posix() not in live | {"MANIFEST.json"}
        }

    def entries(base: Path) -> dict[str, Any]:
        pages = json.loads((base / "MANIFEST.json").read_text(encoding="utf-8"))["pages"]
        return {p: e for p, e in pages.items() if p not in live}

    assert tree(out) == tree(SNAPSHOTS)
    assert entries(out) == entries(SNAPSHOTS)
    assert (out / "torch_stable.html").read_bytes() == (
        REFERENCE / "torch_stable-2021-03.html"
    ).read_bytes()
