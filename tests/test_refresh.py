"""scripts/refresh_snapshots.py against a stand-in for the live index on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

from support import serve_directory
from torchfit.index.client import IndexClient, bundled_snapshots
from torchfit.variants import Variant

ROOT = Path(__file__).resolve().parents[1]
LIVE_PAGE = """<!DOCTYPE html>
<html>
  <body>
    <h1>Links for torch</h1>
    <a href="/whl/cu128/torch-2.8.0%2Bcu128-cp312-cp312-manylinux_2_28_x86_64.whl#sha256={a}" data-dist-info-metadata="sha256={m}" data-core-metadata="sha256={m}">torch-2.8.0+cu128-cp312-cp312-manylinux_2_28_x86_64.whl</a><br/>
    <a href="/whl/cu128/torch-2.9.0%2Bcu128-cp312-cp312-manylinux_2_28_x86_64.whl#sha256={b}" data-dist-info-metadata="sha256={m}" data-core-metadata="sha256={m}">torch-2.9.0+cu128-cp312-cp312-manylinux_2_28_x86_64.whl</a><br/>
    <a href="https://download-r2.pytorch.org/whl/cu128/torch-2.9.1%2Bcu128-cp312-cp312-manylinux_2_28_x86_64.whl#sha256={c}">torch-2.9.1+cu128-cp312-cp312-manylinux_2_28_x86_64.whl</a><br/>
  </body>
</html>
""".format(a="a" * 64, b="b" * 64, c="c" * 64, m="d" * 64)


def test_refresh_trims_rewrites_and_records(tmp_path: Path) -> None:
    snapshots = bundled_snapshots()
    assert snapshots is not None
    out = tmp_path / "snapshots"
    shutil.copytree(snapshots, out)
    live = tmp_path / "live" / "whl" / "cu128" / "torch"
    live.mkdir(parents=True)
    (live / "index.html").write_text(LIVE_PAGE)
    with serve_directory(tmp_path / "live") as server:
        done = subprocess.run(
            [
                sys.executable,
                str(ROOT / "scripts" / "refresh_snapshots.py"),
                "--index",
                f"{server.url}/whl",
                "--variant",
                "cu128",
                "--project",
                "torch",
                "--versions",
                ">=2.9",
                "--out",
                str(out),
            ],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        assert server.requests == ["/whl/cu128/torch/"]
    page = (out / "cu128" / "torch" / "index.html").read_text()
    assert "torch-2.8.0" not in page  # trimmed
    assert 'href="/whl/cu128/torch-2.9.0%2Bcu128-' in page  # host-absolute, as the index writes
    assert 'data-core-metadata="sha256=' + "d" * 64 in page
    assert "https://download-r2.pytorch.org/whl/cu128/torch-2.9.1%2Bcu128-" in page
    entry = json.loads((out / "MANIFEST.json").read_text())["pages"]["cu128/torch/index.html"]
    assert entry["sources"] == ["live index"] and entry["complete"] is False
    assert entry["files"] == 2
    assert entry["sha256"] == hashlib.sha256(page.encode()).hexdigest()
    # torchfit reads the refreshed page offline, metadata hints and all.
    with IndexClient(offline=True, snapshots=out) as client:
        links = client.links("torch", Variant.parse("cu128"))
    assert [link.metadata for link in links] == ["d" * 64, None]
