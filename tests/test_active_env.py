"""The environment the user means: ``--python``, else the active ``VIRTUAL_ENV``, else
``CONDA_PREFIX``, else torchfit's own interpreter, as ``uv pip`` finds it (this is what makes
``uvx torchfit`` and ``pipx run torchfit`` act on the user's environment, not their own).
And the library reads the same ``TORCHFIT_*`` variables as the command line, arguments
winning, with every parameter documented.

torchfit runs from this test's interpreter; the environments it is pointed at are real venvs.
"""

from __future__ import annotations

import inspect
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import torchfit
from support import (
    IndexServer,
    find_python,
    isolated_env,
    make_venv,
    pip_freeze,
    serve_directory,
    standin_torch,
    venv_python,
    write_index,
)
from torchfit.environment.target import OWN_INTERPRETER, find_interpreter
from torchfit.session import Session

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexServer]:
    """A loopback index with one CPU build (any Python), the answer on a machine with no GPU."""
    root = tmp_path_factory.mktemp("index")
    folder = root / "whl" / "cpu" / "torch"
    folder.mkdir(parents=True)
    wheel = standin_torch(tmp_path_factory.mktemp("build"), "2.5.1+cpu", cuda=None)
    shutil.move(str(wheel), folder / wheel.name)
    write_index(folder, "torch")
    with serve_directory(root) as server:
        yield server


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with torch 2.5.1+cpu in it, from another CPython where one runs here."""
    base = next(
        (found for v in ("3.12", "3.10", "3.13", "3.9") if (found := find_python(v))),
        sys.executable,
    )
    root = tmp_path_factory.mktemp("other") / "venv"
    python = make_venv(root, base)
    wheel = standin_torch(tmp_path_factory.mktemp("wheel"), "2.5.1+cpu", cuda=None)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
        env=isolated_env(),
    )
    return root


def python_version(python: Path) -> str:
    done = subprocess.run(
        [str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def torchfit_cli(*args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """``python -m torchfit`` from this interpreter, with ``variables`` set."""
    env = {**isolated_env(), **variables}
    return subprocess.run(
        [sys.executable, "-m", "torchfit", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_verify_doctor_and_plan_act_on_the_active_virtual_env(
    other: Path, index: IndexServer
) -> None:
    python = str(venv_python(other))
    active = {"VIRTUAL_ENV": str(other), "TORCHFIT_PYTORCH_INDEX": f"{index.url}/whl"}
    done = torchfit_cli("verify", "--json", **active)
    assert done.returncode == 0, done.stderr
    verification = json.loads(done.stdout)
    assert (verification["python"], verification["torch_version"]) == (python, "2.5.1+cpu")

    done = torchfit_cli("doctor", "--json", **active)
    assert done.returncode == 0, done.stdout
    diagnosis = json.loads(done.stdout)
    assert diagnosis["torch"]["python"] == python
    notes = [f["message"] for f in diagnosis["findings"] if f["severity"] == "note"]
    assert f"looked at {python}, the active environment's interpreter (VIRTUAL_ENV)" in notes[0]

    done = torchfit_cli("plan", "torch", "--json", **active)
    assert done.returncode == 0, done.stderr
    target = json.loads(done.stdout)["target"]
    assert target["interpreter"] == python
    assert target["interpreter_from"] == "VIRTUAL_ENV"
    assert target["python_version"] == python_version(Path(python))
    done = torchfit_cli("plan", "torch", **active)  # the text says it too, being a guess
    assert done.stdout.splitlines()[0].endswith(f", into {python} (VIRTUAL_ENV)"), done.stdout

    # The same question without the variable is another target, not the remembered plan.
    done = torchfit_cli("plan", "torch", "--json", TORCHFIT_PYTORCH_INDEX=f"{index.url}/whl")
    assert done.returncode == 0, done.stderr
    target = json.loads(done.stdout)["target"]
    assert (target["interpreter"], target["interpreter_from"]) == (sys.executable, OWN_INTERPRETER)
    assert target["python_version"] == "{}.{}".format(*sys.version_info[:2])


def test_install_goes_into_the_active_virtual_env(tmp_path: Path, index: IndexServer) -> None:
    root = tmp_path / "project-venv"
    python = make_venv(root)
    done = torchfit_cli(
        "install", "torch", VIRTUAL_ENV=str(root), TORCHFIT_PYTORCH_INDEX=f"{index.url}/whl"
    )
    assert done.returncode == 0, done.stderr
    assert pip_freeze(python)["torch"] == "2.5.1+cpu"
    assert f"torch 2.5.1+cpu in {python}" in done.stdout


def test_conda_prefix_when_no_virtual_env_is_active(other: Path) -> None:
    done = torchfit_cli("verify", "--json", CONDA_PREFIX=str(other))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["python"] == str(venv_python(other))


def test_the_order_python_then_virtual_env_then_conda_then_own(other: Path, tmp_path: Path) -> None:
    second = tmp_path / "second"
    make_venv(second)
    own = (sys.executable, OWN_INTERPRETER)
    assert find_interpreter(None, {}) == own
    assert find_interpreter(None, {"VIRTUAL_ENV": "", "CONDA_PREFIX": " "}) == own
    assert find_interpreter(None, {"CONDA_PREFIX": str(other)}) == (
        str(venv_python(other)),
        "CONDA_PREFIX",
    )
    both = {"VIRTUAL_ENV": str(second), "CONDA_PREFIX": str(other)}
    assert find_interpreter(None, both) == (str(venv_python(second)), "VIRTUAL_ENV")
    assert find_interpreter("/opt/py/bin/python3", both) == ("/opt/py/bin/python3", "--python")
    # torchfit's own environment, named by the variable: this interpreter, asked in-process.
    assert find_interpreter(None, {"VIRTUAL_ENV": sys.prefix}) == (sys.executable, "VIRTUAL_ENV")


def test_python_wins_over_the_active_environment(other: Path) -> None:
    done = torchfit_cli("verify", "--python", sys.executable, "--json", VIRTUAL_ENV=str(other))
    assert json.loads(done.stdout)["python"] == sys.executable


@pytest.mark.parametrize("verb", ["verify", "doctor", "plan", "install", "restore"])
def test_an_active_environment_that_is_not_there_is_one_error(tmp_path: Path, verb: str) -> None:
    missing = tmp_path / "deleted-venv"
    args = [verb, "torch"] if verb in ("plan", "install") else [verb]
    done = torchfit_cli(*args, VIRTUAL_ENV=str(missing))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        f"error: VIRTUAL_ENV={missing} is not a Python environment:"
        f" {missing / 'bin' / 'python'} does not exist",
        "hint: activate an existing environment, unset VIRTUAL_ENV, or pass --python PATH",
    ]


def test_a_session_reads_the_environment_it_is_given(
    other: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIRTUAL_ENV", "/nonexistent/venv")  # not what a Session given env reads
    target = Session(env={"VIRTUAL_ENV": str(other)}).target
    assert (target.interpreter, target.chosen_by) == (str(venv_python(other)), "VIRTUAL_ENV")
    target = Session(env={}).target
    assert (target.interpreter, target.chosen_by) == (sys.executable, OWN_INTERPRETER)


def test_the_library_defaults_to_the_active_environment(
    other: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIRTUAL_ENV", str(other))
    verification = torchfit.verify()
    assert (verification.python, verification.torch_version) == (
        str(venv_python(other)),
        "2.5.1+cpu",
    )
    assert torchfit.verify(sys.executable).python == sys.executable  # the argument wins


def test_the_library_reads_torchfit_variables_and_arguments_win(
    index: IndexServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCHFIT_DRIVER", "450.80.02")
    assert torchfit.detect().max_cuda == (11, 0)
    assert torchfit.detect(driver="418.39").max_cuda == (10, 1)
    monkeypatch.delenv("TORCHFIT_DRIVER")

    loopback = f"{index.url}/whl"
    monkeypatch.setenv("TORCHFIT_PYTORCH_INDEX", loopback)
    plan = torchfit.plan("torch")
    assert (plan.index, plan.variant.tag) == (loopback, "cpu")
    monkeypatch.setenv("TORCHFIT_VARIANT", "cu124")  # no such folder on this index
    with pytest.raises(torchfit.NoCompatibleWheel):
        torchfit.plan("torch")
    assert torchfit.plan("torch", variant="cpu").variant.tag == "cpu"
    monkeypatch.delenv("TORCHFIT_VARIANT")
    monkeypatch.setenv("TORCHFIT_PYTORCH_INDEX", "https://[::1/whl")  # malformed: never read
    assert torchfit.plan("torch", index=loopback).index == loopback


def _documented(function: Callable[..., Any]) -> list[str]:
    """The parameters of ``function`` its docstring's ``Args:`` list does not name."""
    doc = inspect.getdoc(function) or ""
    args = doc.split("Args:", 1)[1] if "Args:" in doc else ""
    missing = []
    for name, parameter in inspect.signature(function).parameters.items():
        if name == "self":
            continue
        shown = f"**{name}" if parameter.kind is inspect.Parameter.VAR_KEYWORD else name
        if not re.search(rf"^\s+{re.escape(shown)}:", args, re.MULTILINE):
            missing.append(name)
    return missing


PUBLIC = [
    torchfit.plan,
    torchfit.install,
    torchfit.detect,
    torchfit.verify,
    torchfit.doctor,
    Session.detect,
    Session.plan,
    Session.install,
    Session.verify,
    Session.doctor,
    Session.restore,
]


@pytest.mark.parametrize("function", PUBLIC, ids=lambda f: f.__qualname__)
def test_every_public_parameter_is_documented(function: Callable[..., Any]) -> None:
    assert _documented(function) == []


def test_the_session_documents_its_seams() -> None:
    doc = inspect.getdoc(Session) or ""
    for name in inspect.signature(Session).parameters:
        shown = f"**{name}" if name == "options" else name
        assert re.search(rf"^\s+{re.escape(shown)}:", doc, re.MULTILINE), name
