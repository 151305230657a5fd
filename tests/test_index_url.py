"""``torchfit index-url``: the variant folder the plan chose, for another installer; then real
pip (``--index-url "$(torchfit index-url)"``) and real uv (``UV_INDEX``) install from it."""

from __future__ import annotations

import json
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import (
    IndexServer,
    isolated_env,
    make_venv,
    pip_freeze,
    serve_directory,
    sha256_of,
    standin_torch,
)
from test_lock import build_index, installed_cuda, torchfit, uv  # the same stand-in index


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexServer]:
    root = tmp_path_factory.mktemp("index-url")
    build_index(root)
    with serve_directory(root) as server:
        yield server


def index_url(
    server: IndexServer, tmp_path: Path, *args: str, base: str = ""
) -> subprocess.CompletedProcess[str]:
    env = isolated_env()
    env["TORCHFIT_CACHE_DIR"] = str(tmp_path / "cache")
    where = base or f"{server.url}/whl"
    return torchfit("index-url", "--pytorch-index", where, *args, env=env)


def test_with_no_requirement_it_plans_torch(index: IndexServer, tmp_path: Path) -> None:
    done = index_url(index, tmp_path, "--cuda", "12.6", "--gpu-arch", "8.6")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{index.url}/whl/cu126\n"


def test_the_requirements_choose_the_variant(index: IndexServer, tmp_path: Path) -> None:
    done = index_url(index, tmp_path, "torch==2.8.0", "--variant", "cu128")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{index.url}/whl/cu128\n"


def test_json_names_the_url_and_the_variant(index: IndexServer, tmp_path: Path) -> None:
    done = index_url(index, tmp_path, "--variant", "cu126", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"index_url": f"{index.url}/whl/cu126", "variant": "cu126"}


def test_env_lines_are_shell_quoted_and_keep_the_credentials_given(
    index: IndexServer, tmp_path: Path
) -> None:
    # The server asks for no credentials; the URL must still carry them, to work elsewhere.
    base = index.url.replace("http://", "http://user:t%40k&n@") + "/whl"
    done = index_url(index, tmp_path, "--variant", "cu126", "--format", "env", base=base)
    assert done.returncode == 0, done.stderr
    url = f"{base}/cu126"
    lines = done.stdout.splitlines()
    assert lines == [f"PIP_INDEX_URL={shlex.quote(url)}", f"UV_INDEX_URL={shlex.quote(url)}"]
    assert "'" in lines[0]  # the & needs quoting
    assert [shlex.split(line)[0] for line in lines] == [
        f"PIP_INDEX_URL={url}",
        f"UV_INDEX_URL={url}",
    ]


def test_an_error_never_shows_the_credentials(index: IndexServer, tmp_path: Path) -> None:
    base = index.url.replace("http://", "http://user:s3cret@") + "/whl"
    done = index_url(index, tmp_path, "torch==9.9", "--variant", "cu126", base=base)
    assert done.returncode == 1
    assert done.stderr.startswith("error: ")
    assert "s3cret" not in done.stderr + done.stdout


def test_a_flat_page_has_no_variant_folder(index: IndexServer, tmp_path: Path) -> None:
    wheel = standin_torch(tmp_path / "site" / "cpu", "2.8.0+cpu", cuda=None)
    link = f"cpu/torch-2.8.0%2Bcpu-py3-none-any.whl#sha256={sha256_of(wheel)}"
    page = tmp_path / "site" / "torch_stable.html"
    page.write_text(f'<html><body><a href="{link}">{wheel.name}</a></body></html>\n')
    with serve_directory(tmp_path / "site") as flat:
        where = f"{flat.url}/torch_stable.html"
        done = index_url(index, tmp_path, "--variant", "cpu", base=where)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"error: the PyTorch index {where} is a flat page: it has no folder per variant",
        f"hint: give the installer --find-links {where} instead",
    ]


def test_usage_says_what_no_requirement_means(index: IndexServer, tmp_path: Path) -> None:
    done = index_url(index, tmp_path, "--help")
    assert done.returncode == 0
    assert "torch when no REQ" in " ".join(done.stdout.split())


@pytest.mark.integration
def test_pip_installs_from_the_printed_url(index: IndexServer, tmp_path: Path) -> None:
    done = index_url(index, tmp_path, "--variant", "cu126")
    assert done.returncode == 0, done.stderr
    venv = make_venv(tmp_path / "venv")
    installed = subprocess.run(
        [str(venv), "-m", "pip", "install", "torch==2.8.0", "--index-url", done.stdout.strip()],
        capture_output=True,
        text=True,
        env=isolated_env(),
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr
    installed_now = pip_freeze(venv)
    assert installed_now["torch"] == "2.8.0+cu126"
    assert installed_now["standin-numpy"] == "1.0.0"  # from the variant folder, as upstream
    assert installed_cuda(venv) == "12.6"


@pytest.mark.integration
def test_uv_index_takes_torch_from_the_printed_url(index: IndexServer, tmp_path: Path) -> None:
    """With ``UV_INDEX`` uv asks that folder first for each name: torch comes from it even
    though the default index (the loopback "PyPI") has a torch of the same version."""
    done = index_url(index, tmp_path, "--variant", "cu126")
    assert done.returncode == 0, done.stderr
    venv = make_venv(tmp_path / "venv")
    env = {
        **isolated_env(),
        "UV_INDEX": done.stdout.strip(),
        "UV_DEFAULT_INDEX": f"{index.url}/simple",
        "UV_CACHE_DIR": str(tmp_path / "uv-cache"),
    }
    installed = subprocess.run(
        [uv(), "pip", "install", "--python", str(venv), "torch==2.8.0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr
    assert installed_cuda(venv) == "12.6"
