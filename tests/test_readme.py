"""The README's blocks, run as written. Every ``sh``, ``dockerfile``, ``python`` and ``text``
block is claimed in ``CLAIMS`` (by the start of its first line) by the test that runs it; an
unclaimed block, or a claim that finds no block, fails ``test_every_block_is_claimed``.

The recipes run through ``bash -euo pipefail -c BLOCK`` (the README is shell; torchfit itself
never runs a shell string) on a stand-in for the machine each one is for: a fake nvidia-smi
printing a recorded two-GPU answer (driver 550.54.14, CUDA 12.4, GPUs 8.6 and 6.1), an active
virtual environment, a loopback PyTorch index with stand-in CUDA 12.4 builds of torch 2.6.0 and
torchvision 0.21.0, and a loopback "PyPI" for everything else.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from support import (
    FakeGpu,
    IndexServer,
    build_wheel,
    isolated_env,
    make_venv,
    pip_freeze,
    publish,
    serve_directory,
    sha256_of,
    standin_torch,
    write_index,
)
from test_container import DOCKERFILE_12_4_1

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: The environment the suite started in, before the per-test isolation: the set-up lines reach
#: the real package index, through whatever mirror, proxy or CA the machine is set up with.
_HOST_ENV = dict(os.environ)
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
#: The blocks that are meant to be run or written as they are; ``console`` blocks are examples.
RUNNABLE = ("sh", "dockerfile", "python", "text")
SMI = ROOT / "tests" / "data" / "nvidia" / "smi-query-cc-multi-gpu.txt"


def readme_blocks() -> list[str]:
    """The body of each runnable fenced block of the README, in order."""
    text = README.read_text(encoding="utf-8")
    return [body for language, body in _FENCE.findall(text) if language in RUNNABLE]


def block(prefix: str) -> str:
    """The one runnable block whose first line starts with ``prefix``."""
    found = [body for body in readme_blocks() if body.startswith(prefix)]
    assert len(found) == 1, f"{len(found)} README blocks start with {prefix!r}"
    return found[0]


def commands(body: str) -> list[list[str]]:
    """Each command line of a ``sh`` block, split as a shell would (comments and continuations
    included); ``a && b`` is two commands."""
    out: list[list[str]] = []
    for line in body.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        while "&&" in words:
            cut = words.index("&&")
            out.append(words[:cut])
            words = words[cut + 1 :]
        if words:
            out.append(words)
    return out


def run(argv: list[str], env: Mapping[str, str], cwd: Path = ROOT) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, env=dict(env), cwd=cwd, timeout=600)
    assert done.returncode == 0, f"{shlex.join(argv)}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def sh(script: str, env: Mapping[str, str], cwd: Path) -> str:
    """Run a README block as a shell script that stops at its first failing command."""
    return run(["bash", "-euo", "pipefail", "-c", script], env, cwd)


# -- Set up and Tests: the checkout, the published name, CI's command ---------------------


def fresh_env(tmp_path: Path, *bin_dirs: Path) -> dict[str, str]:
    """An environment whose PATH finds the given folders first, then this interpreter's
    (where uv and uvx are), with torchfit's cache and uv's tool folders in tmp_path. The
    user's own pip and uv settings (a mirror, a CA) stay: a set-up line must work with them.
    """
    env = {k: v for k, v in _HOST_ENV.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env = {k: v for k, v in env.items() if not k.startswith("TORCHFIT_")}
    tools = Path(sys.executable).parent
    env["PATH"] = os.pathsep.join([*map(str, bin_dirs), str(tools), os.environ["PATH"]])
    env["TORCHFIT_CACHE_DIR"] = str(tmp_path / "torchfit-cache")
    env["UV_TOOL_DIR"] = str(tmp_path / "uv-tools")
    env["UV_TOOL_BIN_DIR"] = str(tmp_path / "uv-bin")
    return env


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the checkout without build leftovers, as a fresh clone would be."""
    copy = tmp_path_factory.mktemp("checkout") / "torchfit"
    ignore = shutil.ignore_patterns(
        ".git",
        ".venv",
        ".ci-venv",
        "build",
        "dist",
        "*.egg-info",
        "__pycache__",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
    )
    shutil.copytree(ROOT, copy, ignore=ignore)
    yield copy


@pytest.mark.integration
def test_set_up_from_a_checkout(tmp_path: Path, checkout: Path) -> None:
    """`pip install .`, `uv tool install .` and `uvx --from . torchfit plan …`, each as written,
    in a fresh environment with the checkout as the working directory."""
    venv = make_venv(tmp_path / "venv")
    env = fresh_env(tmp_path, venv.parent, tmp_path / "uv-bin")
    first, second, third = commands(block("pip install ."))
    assert first == ["pip", "install", "."]
    run(first, env, cwd=checkout)
    assert "torchfit" in run([str(venv.parent / "torchfit"), "--version"], env)
    run(second, env, cwd=checkout)
    assert "torchfit" in run([str(tmp_path / "uv-bin" / "torchfit"), "--version"], env)
    planned = run([*third, "--json"], env, cwd=checkout)
    assert json.loads(planned)["variant"] == "cu102"


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory, checkout: Path) -> Path:
    """The wheel a release would publish, in a folder that stands for the package index."""
    folder = tmp_path_factory.mktemp("published")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(folder), str(checkout)],
        capture_output=True,
        text=True,
        env=isolated_env(),
        timeout=600,
    )
    assert built.returncode == 0, built.stderr
    return folder


@pytest.mark.integration
def test_set_up_by_the_published_name(tmp_path: Path, wheelhouse: Path) -> None:
    """The by-name lines, with the published wheel found beside PyPI (as find-links)."""
    venv = make_venv(tmp_path / "venv")
    env = fresh_env(tmp_path, venv.parent, tmp_path / "uv-bin")
    env.update(PIP_FIND_LINKS=str(wheelhouse), UV_FIND_LINKS=str(wheelhouse))
    pip, tool, uvx = commands(block("pip install torchfit-cli"))
    assert pip == ["pip", "install", "torchfit-cli"]
    run(pip, env, cwd=tmp_path)
    assert "torchfit" in run([str(venv.parent / "torchfit"), "--version"], env)
    run(tool, env, cwd=tmp_path)
    assert "torchfit" in run([str(tmp_path / "uv-bin" / "torchfit"), "--version"], env)
    assert run(uvx, env, cwd=tmp_path).startswith("torchfit ")


def test_the_readme_test_command_is_what_ci_runs() -> None:
    """The suite cannot run itself: CI runs the README's test command, verbatim."""
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert block("python -m pytest").strip() in ci_lines


# -- Recipes: the machine each one is for ----------------------------------------------

TORCH, VISION = "2.6.0+cu124", "0.21.0+cu124"
#: torch 2.6.0+cu124's kernels (sm_50 … sm_90), answering as on the recorded two-GPU machine.
ON_THIS_MACHINE = FakeGpu(
    available=True,
    arch_list=("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"),
    devices=(("NVIDIA GeForce RTX 3090", (8, 6)), ("NVIDIA GeForce GTX 1060 6GB", (6, 1))),
    cudnn=90100,
)
#: torch's own dependency (as real CUDA builds need the nvidia-* runtime wheels).
RUNTIME = "standin-cuda-runtime-cu12"


def pypi_project(root: Path, name: str, version: str, files: dict[str, str] | None = None) -> None:
    """A wheel on the loopback "PyPI" at ``root/simple/<name>/``."""
    folder = root / "simple" / name
    build_wheel(folder, name, version, files=files)
    write_index(folder, name)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the loopback servers serve, built once: the PyTorch index's cu124 folder (torch,
    torchvision and torch's runtime dependency, as upstream serves its dependencies too), and
    a "PyPI" with that dependency, numpy 1.26.4 and 2.1.0, and a CPU torch of the same version
    that no recipe may take."""
    root = tmp_path_factory.mktemp("served")
    build = tmp_path_factory.mktemp("build")
    torch = standin_torch(
        build, TORCH, cuda="12.4", gpu=ON_THIS_MACHINE, requires=[f"{RUNTIME}>=12.4"]
    )
    publish(root, "cu124", torch)
    publish(root, "cu124", build_wheel(build, "torchvision", VISION, requires=["torch==2.6.0"]))
    publish(root, "cu124", build_wheel(build, RUNTIME, "12.4.127"))
    pypi_project(root, RUNTIME, "12.4.127")
    for version in ("1.26.4", "2.1.0"):
        pypi_project(root, "numpy", version, {"numpy/__init__.py": f"__version__ = {version!r}\n"})
    standin_torch(root / "simple" / "torch", "2.6.0", cuda=None)
    write_index(root / "simple" / "torch", "torch")
    return root


@pytest.fixture
def server(served: Path) -> Iterator[IndexServer]:
    """Both indexes on one loopback server, of this test alone (a test may stop it)."""
    with serve_directory(served) as running:
        yield running


def machine(tmp_path: Path, server: IndexServer, venv: Path, *, gpu: bool = True) -> dict[str, str]:
    """The environment of a shell on the machine a recipe is for: ``venv`` active (first on
    PATH, ``VIRTUAL_ENV``), torchfit of this checkout on PATH after it (as a tool install
    puts it), a fake nvidia-smi first when the machine has GPUs, torchfit's PyTorch index and
    pip's and uv's index on the loopback server, caches of this test only."""
    url, env = server.url, isolated_env()
    # The stand-in for an absent NVML library (tests/conftest.py): never the host's GPU.
    env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    path = [str(venv.parent), str(Path(sys.executable).parent), env["PATH"]]
    if gpu:
        tools = tmp_path / "gpu-tools"
        tools.mkdir(exist_ok=True)
        smi = tools / "nvidia-smi"
        smi.write_text(f"#!/bin/sh\ncat {shlex.quote(str(SMI))}\n")
        smi.chmod(0o755)
        path.insert(0, str(tools))
    env.update(
        PATH=os.pathsep.join(path),
        VIRTUAL_ENV=str(venv.parent.parent),
        TORCHFIT_PYTORCH_INDEX=f"{url}/whl",
        TORCHFIT_CACHE_DIR=str(tmp_path / "torchfit-cache"),
        PIP_INDEX_URL=f"{url}/simple",
        UV_DEFAULT_INDEX=f"{url}/simple",
        UV_CACHE_DIR=str(tmp_path / "uv-cache"),
        # Not the user's uv.toml (UV_NO_CONFIG would drop the project's [tool.uv] as well).
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_CONFIG_DIRS=str(tmp_path / "config"),
        UV_PYTHON_DOWNLOADS="never",
    )
    return env


def recipe_dir(tmp_path: Path) -> Path:
    """The working folder of a recipe, with the README's requirements.txt in it."""
    folder = tmp_path / "work"
    folder.mkdir()
    text = block("# requirements.txt")
    (folder / "requirements.txt").write_text(text, encoding="utf-8")
    return folder


def installed_cuda(python: Path) -> str:
    script = "import torch; print(torch.__version__, torch.version.cuda)"
    return run([str(python), "-c", script], isolated_env()).strip()


def versions(python: Path) -> dict[str, str]:
    """What is installed for ``python`` (pip or not), by normalized name."""
    script = (
        "import importlib.metadata as m, json, re\n"
        "print(json.dumps({re.sub(r'[-_.]+', '-', d.metadata['Name']).lower(): d.version"
        " for d in m.distributions()}))"
    )
    found: dict[str, str] = json.loads(run([str(python), "-c", script], isolated_env()))
    return found


def served_sha256(served: Path, filename: str) -> str:
    (wheel,) = served.glob(f"whl/cu124/{filename}")
    return sha256_of(wheel)


def read_toml(text: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - the test tools' Python
        import tomli as tomllib
    document: dict[str, Any] = tomllib.loads(text)
    return document


@pytest.mark.integration
def test_the_requirements_file_installs_on_a_gpu_machine(
    tmp_path: Path, server: IndexServer
) -> None:
    work = recipe_dir(tmp_path)
    venv = make_venv(tmp_path / "venv")
    out = sh(block("torchfit install -r requirements.txt"), machine(tmp_path, server, venv), work)
    assert "variant cu124" in out
    assert "[pass] cuda_available" in out and "[fail]" not in out
    installed = pip_freeze(venv)
    assert (installed["torch"], installed["torchvision"]) == (TORCH, VISION)
    assert installed["numpy"] == "1.26.4"  # numpy<2 reached pip, which took it from "PyPI"
    assert installed[RUNTIME] == "12.4.127"
    assert installed_cuda(venv) == f"{TORCH} 12.4"


@pytest.mark.integration
def test_a_lock_for_ci_installs_with_uv_and_with_pip(
    tmp_path: Path, server: IndexServer, served: Path
) -> None:
    """The block's two halves, each in a fresh environment: the pylock.toml lines with uv, the
    requirements-lock.txt lines with pip (``--require-hashes``)."""
    work = recipe_dir(tmp_path)
    lines = block("torchfit lock -r").strip().splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["torchfit", "lock"], ["uv", "pip"], ["torchfit", "lock"], ["pip", "install"],
    ]  # fmt: skip
    with_uv, with_pip = make_venv(tmp_path / "uv-venv"), make_venv(tmp_path / "pip-venv")
    sh("\n".join(lines[:2]), machine(tmp_path, server, with_uv), work)
    sh("\n".join(lines[2:]), machine(tmp_path, server, with_pip), work)

    torch_file = f"torch-{TORCH}-py3-none-any.whl"
    locked = {p["name"]: p for p in read_toml((work / "pylock.toml").read_text())["packages"]}
    assert set(locked) == {"torch", "torchvision", RUNTIME, "numpy"}
    (torch_wheel,) = locked["torch"]["wheels"]
    assert torch_wheel["url"] == f"{server.url}/whl/cu124/{quote(torch_file)}"
    assert torch_wheel["hashes"]["sha256"] == served_sha256(served, torch_file)
    assert locked["numpy"]["version"] == "1.26.4"
    (runtime,) = locked[RUNTIME]["wheels"]  # torch's own dependency, pinned and hashed
    assert locked[RUNTIME]["version"] == "12.4.127" and len(runtime["hashes"]["sha256"]) == 64

    requirements = (work / "requirements-lock.txt").read_text()
    assert f"--hash=sha256:{served_sha256(served, torch_file)}" in requirements
    assert re.search(rf"^{RUNTIME}==12\.4\.127 ", requirements, re.MULTILINE)
    for venv in (with_uv, with_pip):
        installed = versions(venv)
        assert (installed["torch"], installed["torchvision"]) == (TORCH, VISION), venv
        assert (installed["numpy"], installed[RUNTIME]) == ("1.26.4", "12.4.127"), venv
        assert installed_cuda(venv) == f"{TORCH} 12.4"


@pytest.mark.integration
def test_a_uv_project_takes_torch_from_the_printed_index(
    tmp_path: Path, server: IndexServer
) -> None:
    """uv makes the project's own environment (``.venv``); torch must come from the PyTorch
    index's cu124 folder, not from the "PyPI" CPU torch of the same version."""
    work = tmp_path / "project"
    work.mkdir()
    env = machine(tmp_path, server, make_venv(tmp_path / "venv"))
    sh(block("uv init --bare"), env, work)
    project = read_toml((work / "pyproject.toml").read_text())
    indexes = {index.get("name"): index["url"] for index in project["tool"]["uv"]["index"]}
    assert indexes["pytorch"] == f"{server.url}/whl/cu124"  # uv also keeps UV_DEFAULT_INDEX
    python = work / ".venv" / "bin" / "python"
    installed = versions(python)
    assert (installed["torch"], installed["torchvision"]) == (TORCH, VISION)
    assert installed_cuda(python) == f"{TORCH} 12.4"


@pytest.mark.integration
def test_pip_with_the_printed_index_url(tmp_path: Path, server: IndexServer) -> None:
    """``--index-url`` replaces pip's index: torch and its dependency come from the variant
    folder, as they do from download.pytorch.org."""
    venv = make_venv(tmp_path / "venv")
    work = tmp_path / "work"
    work.mkdir()
    sh(block("pip install torch==2.6.0 --index-url"), machine(tmp_path, server, venv), work)
    installed = pip_freeze(venv)
    assert (installed["torch"], installed[RUNTIME]) == (TORCH, "12.4.127")
    assert installed_cuda(venv) == f"{TORCH} 12.4"


@pytest.mark.integration
def test_air_gapped_download_then_install_with_the_server_stopped(
    tmp_path: Path, server: IndexServer
) -> None:
    work = recipe_dir(tmp_path)
    download, install = block("torchfit download -r").strip().splitlines()
    venv = make_venv(tmp_path / "venv")
    env = machine(tmp_path, server, venv)
    sh(download, env, work)
    wheels = sorted(path.name for path in (work / "wheels").iterdir())
    assert wheels == [
        "numpy-1.26.4-py3-none-any.whl",
        "pylock.toml",
        f"{RUNTIME.replace('-', '_')}-12.4.127-py3-none-any.whl",
        f"torch-{TORCH}-py3-none-any.whl",
        f"torchvision-{VISION}-py3-none-any.whl",
    ]
    server.stop()  # from here on, no index at all
    out = sh(install, env, work)
    assert "variant cu124" in out and "[fail]" not in out
    installed = pip_freeze(venv)
    assert (installed["torch"], installed["torchvision"]) == (TORCH, VISION)
    assert (installed["numpy"], installed[RUNTIME]) == ("1.26.4", "12.4.127")


@pytest.mark.integration
def test_the_setup_script_installs_and_plans(
    tmp_path: Path, server: IndexServer, served: Path
) -> None:
    """The python block, run by this interpreter with the venv active on the GPU machine."""
    venv = make_venv(tmp_path / "venv")
    work = tmp_path / "work"
    work.mkdir()
    env = machine(tmp_path, server, venv)
    out = run([sys.executable, "-c", block("import torchfit")], env, cwd=work).splitlines()
    torch_file = f"torch-{TORCH}-py3-none-any.whl"
    torch_url = f"{server.url}/whl/cu124/{quote(torch_file)}"
    assert out == ["cu124 True", f"torch {TORCH} {torch_url} {served_sha256(served, torch_file)}"]
    assert pip_freeze(venv)["torch"] == TORCH


def dockerfile(text: str) -> list[tuple[str, str]]:
    """Each instruction of a Dockerfile as (INSTRUCTION, arguments), continuations joined and
    comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    lines = [line.strip() for line in joined.splitlines()]
    return [
        (word.upper(), rest.strip())
        for word, _, rest in (line.partition(" ") for line in lines if line and line[0] != "#")
    ]


#: The Dockerfile's RUN lines that the test does not run, and what stands for each.
NOT_RUN = {
    # apt: the image's python3-venv; this interpreter has venv.
    "apt-get update",
    # The image's /opt/venv: a venv made by make_venv, first on PATH as the ENV line puts it.
    "python3 -m venv /opt/venv",
    # torchfit from the copied checkout: `pip install .` of test_set_up_from_a_checkout; here
    # torchfit of this checkout acts on that venv (VIRTUAL_ENV) as if installed in it.
    "pip install /opt/torchfit-src",
}


@pytest.mark.integration
def test_the_dockerfile_plans_from_the_image_variables(tmp_path: Path, server: IndexServer) -> None:
    """A docker build from nvidia/cuda:12.4.1-runtime-ubuntu22.04: the image's recorded
    variables, no nvidia-smi, no GPU; the ``RUN torchfit …`` lines run as written."""
    instructions = dockerfile(block("FROM nvidia/cuda:"))
    assert instructions[0] == ("FROM", "nvidia/cuda:12.4.1-runtime-ubuntu22.04")
    assert ("ENV", "PATH=/opt/venv/bin:$PATH") in instructions
    runs = [arguments for kind, arguments in instructions if kind == "RUN"]
    to_run = [line for line in runs if not any(line.startswith(p) for p in NOT_RUN)]
    assert len(runs) - len(to_run) == len(NOT_RUN)
    assert to_run and all(line.startswith("torchfit ") for line in to_run), to_run

    venv = make_venv(tmp_path / "venv")
    env = {**machine(tmp_path, server, venv, gpu=False), **DOCKERFILE_12_4_1}
    work = tmp_path / "build"
    work.mkdir()
    out = "".join(sh(line, env, work) for line in to_run)
    assert "variant cu124" in out
    assert "CUDA 12.4 from NVIDIA_REQUIRE_CUDA (the image's CUDA, no driver visible)" in out
    assert "serves GPU 0 (sm_86)" in out  # --gpu-arch 8.6
    assert "[pass] variant" in out and "[fail]" not in out
    assert "[skipped] cuda_available: no driver probed" in out
    installed = pip_freeze(venv)
    assert (installed["torch"], installed["torchvision"]) == (TORCH, VISION)
    assert installed_cuda(venv) == f"{TORCH} 12.4"


#: Each runnable README block, by the start of its first line, and the test that runs it.
CLAIMS: dict[str, Callable[..., None]] = {
    "pip install .": test_set_up_from_a_checkout,
    "pip install torchfit-cli": test_set_up_by_the_published_name,
    "python -m pytest": test_the_readme_test_command_is_what_ci_runs,
    "FROM nvidia/cuda:": test_the_dockerfile_plans_from_the_image_variables,
    "# requirements.txt": test_the_requirements_file_installs_on_a_gpu_machine,
    "torchfit install -r requirements.txt": test_the_requirements_file_installs_on_a_gpu_machine,
    "torchfit lock -r": test_a_lock_for_ci_installs_with_uv_and_with_pip,
    "uv init --bare": test_a_uv_project_takes_torch_from_the_printed_index,
    "pip install torch==2.6.0 --index-url": test_pip_with_the_printed_index_url,
    "torchfit download -r": test_air_gapped_download_then_install_with_the_server_stopped,
    "import torchfit": test_the_setup_script_installs_and_plans,
}


def test_every_block_is_claimed() -> None:
    """A README block that no test runs is a recipe nobody checks; a claim that finds no block
    (or more than one) checks nothing."""
    found = readme_blocks()
    unclaimed = [body for body in found if not any(body.startswith(p) for p in CLAIMS)]
    assert not unclaimed, unclaimed
    for prefix in CLAIMS:
        assert sum(body.startswith(prefix) for body in found) == 1, prefix
