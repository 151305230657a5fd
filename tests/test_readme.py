"""The README's commands, run as written: each ``sh`` block of the README is found here by its
section and run line by line in a fresh virtual environment, with the checkout as the working
directory. A block that no test here runs fails ``test_every_sh_block_is_run``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from support import isolated_env, make_venv

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: The environment the suite started in, before the per-test isolation: the set-up lines reach
#: the real package index, through whatever mirror, proxy or CA the machine is set up with.
_HOST_ENV = dict(os.environ)
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def sections() -> dict[str, str]:
    """The README's text under each ``##``/``###`` heading."""
    found: dict[str, str] = {}
    heading = ""
    for line in README.read_text().splitlines(keepends=True):
        if line.startswith("## ") or line.startswith("### "):
            heading = line.lstrip("#").strip()
        found[heading] = found.get(heading, "") + line
    return found


def blocks(section: str, language: str = "sh") -> list[str]:
    text = sections()[section]
    return [body for lang, body in _FENCE.findall(text) if lang == language]


def commands(section: str) -> list[list[str]]:
    """Each command line of the section's ``sh`` blocks, split as a shell would (comments and
    continuations included); ``a && b`` is two commands."""
    out: list[list[str]] = []
    for body in blocks(section):
        joined = body.replace("\\\n", " ")
        for line in joined.splitlines():
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
    first, second, third = commands("Set up")[:3]
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
    pip, tool, uvx = commands("Set up")[3:6]
    assert pip == ["pip", "install", "torchfit-cli"]
    run(pip, env, cwd=tmp_path)
    assert "torchfit" in run([str(venv.parent / "torchfit"), "--version"], env)
    run(tool, env, cwd=tmp_path)
    assert "torchfit" in run([str(tmp_path / "uv-bin" / "torchfit"), "--version"], env)
    assert run(uvx, env, cwd=tmp_path).startswith("torchfit ")


def test_the_readme_test_command_is_what_ci_runs() -> None:
    """The suite cannot run itself: CI runs the README's test command, verbatim."""
    (block,) = blocks("Tests")
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert block.strip() in ci_lines


#: Each README section with ``sh`` blocks, and the test that runs them as written.
SECTION_TESTS = {
    "Set up": (test_set_up_from_a_checkout, test_set_up_by_the_published_name),
    "Tests": (test_the_readme_test_command_is_what_ci_runs,),
}


def test_every_sh_block_is_run() -> None:
    """A README section with an ``sh`` block that no test here runs is a recipe nobody checks."""
    with_blocks = {name for name, text in sections().items() if "```sh\n" in text}
    assert with_blocks <= set(SECTION_TESTS), sorted(with_blocks - set(SECTION_TESTS))
