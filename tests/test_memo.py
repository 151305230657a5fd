"""A repeated `torchfit plan` is answered from the memo only while every input still holds."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import IndexServer, serve_directory
from torchfit.cli import memo
from torchfit.cli.main import main
from torchfit.index.cache import DiskCache
from torchfit.machine.record import Overrides
from torchfit.settings import resolve_settings

ROOT = Path(__file__).resolve().parents[1]
TARGET = ["--python-version", "3.8", "--platform", "linux_x86_64"]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexServer]:
    site = tmp_path_factory.mktemp("site")
    shutil.copytree(ROOT / "wheel_index_snapshots", site / "whl")
    with serve_directory(site) as server:
        yield server


def plan(capsys: pytest.CaptureFixture[str], index: IndexServer, *args: str) -> dict:  # type: ignore[type-arg]
    argv = ["plan", "torch==1.7.1", *TARGET, "--pytorch-index", f"{index.url}/whl", "--json"]
    assert main([*argv, *args], env=dict(os.environ)) == 0
    result: dict = json.loads(capsys.readouterr().out)  # type: ignore[type-arg]
    return result


def origins(result: dict) -> list[str]:  # type: ignore[type-arg]
    return [page["origin"] for page in result["pages"]]


def test_a_repeated_question_is_answered_from_the_memo(
    capsys: pytest.CaptureFixture[str], index: IndexServer
) -> None:
    first = plan(capsys, index, "--cuda", "10.1")
    asked = len(index.requests)
    second = plan(capsys, index, "--cuda", "10.1")
    assert len(index.requests) == asked  # nothing asked again
    assert origins(first) == ["network"] and origins(second) == ["memo"]
    assert {**second, "pages": []} == {**first, "pages": []}
    # Another machine is another question.
    other = plan(capsys, index, "--cuda", "10.2")
    assert other["variant"] == "cu102" and "memo" not in origins(other)


def test_a_rewritten_page_or_refresh_is_a_miss(
    capsys: pytest.CaptureFixture[str], index: IndexServer
) -> None:
    plan(capsys, index, "--cuda", "10.1")
    cache = DiskCache(Path(os.environ["TORCHFIT_CACHE_DIR"]))
    url = f"{index.url}/whl/cu101/torch/"
    entry = cache.page(url)
    assert entry is not None
    cache.store_page(entry)  # as a revalidation would: same page, a new file
    assert origins(plan(capsys, index, "--cuda", "10.1")) == ["cache (fresh)"]
    assert origins(plan(capsys, index, "--cuda", "10.1")) == ["memo"]
    assert origins(plan(capsys, index, "--cuda", "10.1", "--refresh")) == ["cache (revalidated)"]


def test_an_answer_outlives_neither_its_pages_nor_the_code(
    capsys: pytest.CaptureFixture[str], index: IndexServer, tmp_path: Path
) -> None:
    result = plan(capsys, index, "--cuda", "10.1")
    settings = resolve_settings({"cuda": (10, 1), "index": f"{index.url}/whl"}, dict(os.environ))
    from torchfit.machine.detect import detect

    machine = detect(Overrides(cuda=(10, 1)), os="linux")
    digest = memo.key(["torch==1.7.1"], settings, machine)
    memo.remember(settings, digest, result, now=1000.0)
    assert memo.recall(settings, digest, now=1000.0) is not None
    assert memo.recall(settings, digest, now=1000.0 + 601) is None  # past the pages' lifetime
    offline = resolve_settings({"offline": True}, {"TORCHFIT_CACHE_DIR": str(settings.cache_dir)})
    # Offline, freshness does not matter; the pages being unchanged does.
    memo.remember(offline, digest, result, now=1000.0)
    assert memo.recall(offline, digest, now=10_000.0) is not None
    # A file of torchfit touched: every key changes.
    module = Path(memo.__file__)
    stat = module.stat()
    try:
        os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
        assert memo.key(["torch==1.7.1"], settings, machine) != digest
    finally:
        os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def fake_python(folder: Path, minor: int) -> None:
    """An 'interpreter' that answers the interpreter probe as CPython 3.<minor> would."""
    folder.mkdir()
    facts = {
        "version": [3, minor, 0],
        "implementation": "cpython",
        "platform": "linux-x86_64",
        "libc": ["glibc", "2.31"],
        "mac": "",
        "machine": "x86_64",
        "abiflags": "",
        "free_threaded": False,
    }
    script = folder / "python3"
    script.write_text(f"#!/bin/sh\necho '{json.dumps(facts)}'\n")
    script.chmod(0o755)


@pytest.mark.skipif(os.name == "nt", reason="the fake interpreters are POSIX shell scripts")
def test_the_same_name_for_another_interpreter_is_another_question(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_python(tmp_path / "old", 8)
    fake_python(tmp_path / "new", 12)
    argv = ["plan", "torch==1.7.1", "--cuda", "10.1", "--python", "python3", "--offline"]
    path = os.environ["PATH"]
    monkeypatch.setenv("PATH", f"{tmp_path / 'old'}{os.pathsep}{path}")
    assert main(argv, env=dict(os.environ)) == 0
    assert "cp38" in capsys.readouterr().out
    monkeypatch.setenv("PATH", f"{tmp_path / 'new'}{os.pathsep}{path}")
    assert main(argv, env=dict(os.environ)) == 1  # torch 1.7.1 has no wheel for 3.12
    assert "no wheel of torch==1.7.1 for Python 3.12" in capsys.readouterr().err
