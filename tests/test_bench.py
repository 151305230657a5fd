"""scripts/bench_plan.py: its quick mode end to end, and the pieces it is built from."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_plan.py"
# Looked up at import: the autouse fixture later drops PATH folders that hold nvidia-smi,
# and on a GPU machine that is often the folder openssl (or uv) lives in.
OPENSSL = shutil.which("openssl")
_BESIDE = Path(sys.executable).parent / "uv"
UV = str(_BESIDE) if _BESIDE.is_file() else shutil.which("uv")


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_plan", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.integration
def test_quick_run_prints_the_tables_and_the_ratio() -> None:
    if OPENSSL is None:
        pytest.skip("openssl not found on PATH: the benchmark makes its TLS certificates with it")
    if UV is None:
        pytest.skip("uv not found beside this Python or on PATH: the benchmark compares against it")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--repeat", "1", "--quick", "--openssl", OPENSSL, "--uv", UV],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    header = next(line for line in lines if line.startswith("question"))
    for column in ("mode", "torchfit ms", "uv ms", "ratio", "requests tf/uv", "peak MiB tf/uv"):
        assert column in header
    for mode in ("cold", "warm", "offline"):
        assert any(re.search(rf" {mode} +\d+/\d+/\d+ +\d+/\d+/\d+ +\d+\.\d\dx ", x) for x in lines)
    ratio = re.compile(r"^ratio torchfit/uv.*cold \d+\.\d\dx.*warm \d+\.\d\dx.*offline \d+\.\d\dx")
    assert any(ratio.search(line) for line in lines), done.stdout
    assert any(line.split()[:3] == ["links", "page", "KiB"] for line in lines)
    assert any(re.match(r"\s+1000\s+\d+", line) for line in lines)
    assert "-X importtime" in done.stdout
    assert re.search(r"total \d+\.\d ms in \d+ imports", done.stdout)


def test_a_missing_openssl_is_one_line_and_a_failure() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--openssl", "no-such-openssl-here"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert done.stderr.strip().count("\n") == 0
    assert "openssl not found" in done.stderr


def test_synthetic_pages_are_shaped_like_pytorch_pages() -> None:
    page = load_script().synthetic_page(40)
    links = re.findall(r'<a href="([^"]+)" data-requires-python="&gt;=3.9" '
                       r'data-core-metadata="sha256=[0-9a-f]{64}">([^<]+)</a>', page)  # fmt: skip
    assert len(links) == 40
    for href, name in links:
        assert href.startswith("/whl/cu128/torch-2.")
        assert re.search(r"%2Bcu128-.*\.whl#sha256=[0-9a-f]{64}$", href)
        assert name.replace("+", "%2B") in href


def test_answers_reads_both_tools_pins() -> None:
    answers = load_script().answers
    torchfit_text = (
        "variant cu126 for Python 3.12 on manylinux_2_28_x86_64\n"
        "  torch 2.12.1+cu126  torch-2.12.1+cu126-cp312-cp312-manylinux_2_28_x86_64.whl\n"
        "why:\n  - driver supports CUDA 12.8\n"
    )
    assert answers("torchfit", torchfit_text) == "torch==2.12.1+cu126"
    assert answers("uv_pip", "torchvision==0.28.0+cu129\ntorch==2.13.0+cu129\n") == (
        "torch==2.13.0+cu129 torchvision==0.28.0+cu129"
    )
    assert answers("uv_pip", "") == "?"
