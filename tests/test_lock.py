"""``torchfit lock``: a loopback PyTorch-shaped index and a loopback "PyPI" serve stand-in
wheels that have dependencies of their own; the lock is made by the real ``uv pip compile``
and installed by real pip (``--require-hashes``) and real uv into throwaway environments.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from support import (
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
from torchfit.environment.lock import (
    FamilyPin,
    check_writable,
    lock_format,
    pylock_text,
    requirements_text,
    write_lock,
)
from torchfit.errors import TorchfitError, UsageError

TORCH = "torch-2.8.0+cu126-py3-none-any.whl"
VISION = "torchvision-0.23.0+cu126-py3-none-any.whl"
TARGET = ["--variant", "cu126"]


def pypi_project(root: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> None:
    """A wheel on the loopback "PyPI" at ``root/simple/<name>/`` (PEP 503 and 691 pages)."""
    folder = root / "simple" / name
    build_wheel(folder, name, version, requires=requires)
    write_index(folder, name)


def build_index(root: Path) -> None:
    """torch 2.8.0+cu126 needs standin-numpy and (on Linux) a CUDA runtime stand-in;
    torchvision needs torch and standin-pillow. The "PyPI" has newer and older versions,
    and a same-named torch of its own that must never be locked; the variant folder has
    torch's own dependencies too, as download.pytorch.org has, in older versions."""
    build = root / "build"
    requires = ("standin-numpy>=1", "standin-runtime-cu12==12.6.1; platform_system == 'Linux'")
    publish(root, "cu126", standin_torch(build, "2.8.0+cu126", cuda="12.6", requires=requires))
    publish(root, "cu128", standin_torch(build, "2.8.0+cu128", cuda="12.8"))
    vision = build_wheel(
        build, "torchvision", "0.23.0+cu126", requires=["torch==2.8.0", "standin-pillow"]
    )
    publish(root, "cu126", vision)
    for name, version in [
        ("standin-numpy", "1.0.0"),
        ("standin-numpy", "2.0.0"),
        ("standin-pillow", "10.0"),
        ("standin-runtime-cu12", "12.6.1"),
        ("standin-runtime-cu12", "12.8.0"),
        ("torchaudio", "2.8.0"),
    ]:
        pypi_project(root, name, version)
    pypi_project(root, "needs-audio", "1.0", ("torchaudio",))
    # The PyTorch index also serves torch's dependencies (an older numpy here).
    for name, version in [("standin-numpy", "1.0.0"), ("standin-runtime-cu12", "12.6.1")]:
        publish(root, "cu126", build_wheel(build, name, version))
    folder = root / "simple" / "torch"  # not the planned file: a lock must never take it
    standin_torch(folder, "2.8.0+cu126", cuda=None)
    write_index(folder, "torch")
    shutil.rmtree(build)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexServer]:
    root = tmp_path_factory.mktemp("lock-index")
    build_index(root)
    with serve_directory(root) as server:
        yield server


def environment(server: IndexServer, tmp_path: Path) -> dict[str, str]:
    """The user's settings: pip's index is the loopback "PyPI"; caches of this test only."""
    env = isolated_env()
    env.update(
        PIP_INDEX_URL=f"{server.url}/simple",
        UV_CACHE_DIR=str(tmp_path / "uv-cache"),
        TORCHFIT_CACHE_DIR=str(tmp_path / "torchfit-cache"),
    )
    return env


def torchfit(
    *args: str, env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "torchfit", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def lock(server: IndexServer, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return torchfit("lock", *TARGET, "--pytorch-index", f"{server.url}/whl", *args, env=env)


def uv() -> str:
    from torchfit.environment.install import find_uv

    return find_uv()


def served_sha256(server: IndexServer, variant: str, filename: str) -> str:
    return sha256_of(server.root / "whl" / variant / filename)


def installed_cuda(python: Path) -> str | None:
    script = "import json, torch.version as v; print(json.dumps(v.cuda))"
    done = subprocess.run([str(python), "-c", script], capture_output=True, text=True, check=True)
    result: str | None = json.loads(done.stdout)
    return result


def assert_installed_the_lock(python: Path) -> None:
    installed = pip_freeze(python)
    assert installed["torch"] == "2.8.0+cu126"
    assert installed["torchvision"] == "0.23.0+cu126"
    assert installed["standin-numpy"] == "2.0.0"
    assert installed["standin-pillow"] == "10.0"
    assert installed["standin-runtime-cu12"] == "12.6.1"
    assert installed_cuda(python) == "12.6"  # the planned file, not the "PyPI" torch


# -- the format, by name or by flag ---------------------------------------------------


@pytest.mark.parametrize(
    ("path", "explicit", "expected"),
    [
        ("pylock.toml", None, "pylock"),
        ("locks/pylock.cuda.toml", None, "pylock"),
        ("-", None, "pylock"),
        (None, "requirements", "requirements"),
        ("requirements.txt", None, "requirements"),
        ("constraints.lock", None, "requirements"),
        ("requirements.txt", "pylock", "pylock"),
        ("pylock.toml", "requirements", "requirements"),
    ],
)
def test_the_format_follows_the_name_unless_given(
    path: str | None, explicit: str | None, expected: str
) -> None:
    assert lock_format(path, explicit) == expected


@pytest.mark.parametrize("name", ["lock.toml", "pylock.a.b.toml", "pylock..toml"])
def test_a_toml_name_pep_751_does_not_allow_is_refused(name: str) -> None:
    with pytest.raises(UsageError, match=r"pylock\.toml or pylock\.NAME\.toml"):
        lock_format(name)


# -- what uv wrote is checked against the plan --------------------------------------

PIN = FamilyPin("torch", "2.8.0+cu126", f"https://h/whl/cu126/{quote(TORCH)}", "ab" * 32)
UV_REQUIREMENTS = (
    "--index-url https://pypi.example/simple\n\n"
    "standin-numpy==2.0.0 \\\n    --hash=sha256:" + "cd" * 32 + "\n"
    f"torch @ {PIN.url}#sha256={PIN.sha256} \\\n    --hash=sha256:{PIN.sha256}\n"
)
UV_PYLOCK = f"""lock-version = "1.0"
created-by = "uv"
requires-python = ">=3.11"

[[packages]]
name = "standin-numpy"
version = "2.0.0"
[[packages.wheels]]
url = "https://pypi.example/f/standin_numpy-2.0.0-py3-none-any.whl"
hashes = {{ sha256 = "{"cd" * 32}" }}

[[packages]]
name = "torch"
version = "2.8.0+cu126"
archive = {{ url = "{PIN.url}", hashes = {{ sha256 = "{PIN.sha256}" }} }}
"""


def test_the_checked_requirements_name_every_package() -> None:
    body, locked = requirements_text(UV_REQUIREMENTS, [PIN])
    assert locked == [("standin-numpy", "2.0.0"), ("torch", "2.8.0+cu126")]
    assert body == UV_REQUIREMENTS


@pytest.mark.parametrize(
    "change",
    [
        ("2.8.0%2Bcu126", "2.8.0%2Bcu128"),  # another file
        (f"--hash=sha256:{PIN.sha256}", "--hash=sha256:" + "ef" * 32),  # another hash
        (f"torch @ {PIN.url}#sha256={PIN.sha256} \\\n    --hash=sha256:{PIN.sha256}\n", ""),
    ],
    ids=["other-file", "other-hash", "left-out"],
)
def test_requirements_that_are_not_the_plan_are_refused(change: tuple[str, str]) -> None:
    with pytest.raises(TorchfitError, match="planned torch"):
        requirements_text(UV_REQUIREMENTS.replace(*change), [PIN])


def test_the_pylock_family_entry_becomes_its_index_folders_wheel() -> None:
    body, locked = pylock_text(UV_PYLOCK, [PIN], {"variant": "cu126"})
    assert locked == [("standin-numpy", "2.0.0"), ("torch", "2.8.0+cu126")]
    document = _toml(body)
    torch = next(p for p in document["packages"] if p["name"] == "torch")
    assert "archive" not in torch
    assert torch["index"] == "https://h/whl/cu126"
    assert torch["wheels"] == [{"name": TORCH, "url": PIN.url, "hashes": {"sha256": PIN.sha256}}]
    assert document["created-by"] == "torchfit"
    assert document["tool"]["torchfit"] == {"variant": "cu126"}


def test_the_pylock_reader_of_download_reads_what_lock_writes() -> None:
    from torchfit.environment.pylock import parse_pylock

    body, _ = pylock_text(UV_PYLOCK, [PIN], {"variant": "cu126"})
    torch = next(p for p in parse_pylock(body) if p.name == "torch")
    assert [(w.filename, w.sha256) for w in torch.wheels] == [(TORCH, PIN.sha256)]


@pytest.mark.parametrize(
    "change",
    [
        ("2.8.0%2Bcu126", "2.8.0%2Bcu128"),
        (f'sha256 = "{PIN.sha256}"', 'sha256 = "' + "ef" * 32 + '"'),
    ],
    ids=["other-file", "other-hash"],
)
def test_a_pylock_that_is_not_the_plan_is_refused(change: tuple[str, str]) -> None:
    with pytest.raises(TorchfitError, match="planned torch"):
        pylock_text(UV_PYLOCK.replace(*change), [PIN], {})


def test_a_family_member_the_plan_did_not_choose_is_refused() -> None:
    extra = '\n[[packages]]\nname = "torchaudio"\nversion = "2.8.0"\n'
    with pytest.raises(TorchfitError, match="needs torchaudio, which the plan does not choose"):
        pylock_text(UV_PYLOCK + extra, [PIN], {})


def test_no_lock_keeps_a_credential() -> None:
    secret = PIN.url.replace("https://", "https://user:s3cret@")
    uv_text = UV_PYLOCK.replace(PIN.url, secret)
    body, _ = pylock_text(uv_text, [FamilyPin("torch", PIN.version, secret, PIN.sha256)], {})
    assert "s3cret" not in body
    text = UV_REQUIREMENTS.replace("https://pypi", "https://user:s3cret@pypi")
    assert "s3cret" not in requirements_text(text, [PIN])[0]


# -- where it is written ----------------------------------------------------------------


def test_a_lock_is_written_whole_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "pylock.toml"
    path.write_text("old\n")
    path.chmod(0o640)
    write_lock(path, "new\n")
    assert path.read_text() == "new\n"
    assert path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["pylock.toml"]


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("missing/pylock.toml", "no directory"),
        ("a-file/pylock.toml", "no directory"),
        (".", "is a directory"),
    ],
)
def test_a_path_that_cannot_be_written_is_refused_first(
    tmp_path: Path, where: str, message: str
) -> None:
    (tmp_path / "a-file").write_text("")
    with pytest.raises(UsageError, match=message):
        check_writable(tmp_path / where)


def test_an_unwritable_lock_path_is_one_line_and_asks_nothing(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    with serve_directory(tmp_path) as server:
        done = lock(
            server,
            environment(server, tmp_path),
            "torch",
            "-o",
            str(tmp_path / "a-file" / "pylock.toml"),
        )
        assert server.requests == []  # refused before planning
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("error: cannot write the lock to ")
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "a-file" / "pylock.toml").exists()


# -- the whole way: plan, uv pip compile, then real installers --------------------------


@pytest.mark.integration
def test_a_pylock_is_complete_exact_and_installs_with_uv(
    index: IndexServer, tmp_path: Path
) -> None:
    venv = make_venv(tmp_path / "venv")
    env = environment(index, tmp_path)
    out = tmp_path / "pylock.toml"
    done = lock(index, env, "torch==2.8.0", "torchvision", "--python", str(venv), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert f"locked 5 packages into {out}" in done.stdout

    document = _toml(out.read_text())
    packages = {p["name"]: p for p in document["packages"]}
    assert sorted(packages) == [
        "standin-numpy",
        "standin-pillow",
        "standin-runtime-cu12",
        "torch",
        "torchvision",
    ]
    torch = packages["torch"]
    assert torch["version"] == "2.8.0+cu126"
    assert torch["index"] == f"{index.url}/whl/cu126"
    assert torch["wheels"] == [
        {
            "name": TORCH,
            "url": f"{index.url}/whl/cu126/{quote(TORCH)}",
            "hashes": {"sha256": served_sha256(index, "cu126", TORCH)},
        }
    ]
    numpy = packages["standin-numpy"]
    assert numpy["version"] == "2.0.0"
    assert numpy["wheels"][0]["url"].startswith(f"{index.url}/simple/")
    assert numpy["wheels"][0]["hashes"]["sha256"]

    # No index at install time but the locked URLs themselves.
    installed = subprocess.run(
        [uv(), "pip", "install", "--python", str(venv), "-r", str(out)],
        capture_output=True,
        text=True,
        env={**env, "UV_INDEX_URL": "http://127.0.0.1:9/nothing-here"},
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr
    assert_installed_the_lock(venv)


@pytest.mark.integration
def test_a_requirements_lock_installs_with_pip_require_hashes_and_with_uv(
    index: IndexServer, tmp_path: Path
) -> None:
    env = environment(index, tmp_path)
    venv = make_venv(tmp_path / "venv")
    out = tmp_path / "requirements.txt"
    done = lock(index, env, "torch==2.8.0", "torchvision", "--python", str(venv), "-o", str(out))
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert text.startswith("# torchfit lock: torch 2.8.0+cu126 (cu126) for Python ")
    assert f"--index-url {index.url}/simple" in text
    torch_sha = served_sha256(index, "cu126", TORCH)
    assert f"torch @ {index.url}/whl/cu126/{quote(TORCH)}#sha256={torch_sha}" in text
    assert "standin-numpy==2.0.0" in text
    assert text.count("--hash=sha256:") >= 5

    clean = {k: v for k, v in env.items() if k != "PIP_INDEX_URL"}  # the file says it
    pip = subprocess.run(
        [str(venv), "-m", "pip", "install", "--require-hashes", "-r", str(out)],
        capture_output=True,
        text=True,
        env=clean,
        timeout=300,
    )
    assert pip.returncode == 0, pip.stderr
    assert_installed_the_lock(venv)

    other = make_venv(tmp_path / "uv-venv")
    installed = subprocess.run(
        [uv(), "pip", "install", "--python", str(other), "-r", str(out)],
        capture_output=True,
        text=True,
        env=clean,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr
    assert_installed_the_lock(other)


@pytest.mark.integration
def test_lock_asks_the_pytorch_index_no_page_beyond_the_plan(
    index: IndexServer, tmp_path: Path
) -> None:
    """uv reads the planned wheels' metadata with range requests: no PyTorch page, and no
    whole wheel (a real cu12x torch is a gigabyte)."""
    spec = ["--python-version", "3.11", "--platform", "manylinux_2_28_x86_64"]
    before = len(index.received)
    planned = torchfit(
        "plan",
        *TARGET,
        "--pytorch-index",
        f"{index.url}/whl",
        "torch==2.8.0",
        *spec,
        env=environment(index, tmp_path / "plan"),
    )
    assert planned.returncode == 0, planned.stderr
    plan_pages = [r.path for r in index.received[before:] if r.path.endswith("/")]
    middle = len(index.received)
    done = lock(
        index,
        environment(index, tmp_path / "lock"),
        "torch==2.8.0",
        *spec,
        "--format",
        "requirements",
    )
    assert done.returncode == 0, done.stderr
    asked = index.received[middle:]
    pytorch = [r for r in asked if r.path.startswith("/whl/")]
    assert [r.path for r in pytorch if r.path.endswith("/")] == plan_pages
    wheel_reads = [r for r in pytorch if r.path.endswith(".whl") and r.method == "GET"]
    assert wheel_reads and all("Range" in r.headers for r in wheel_reads)
    assert "standin-runtime-cu12==12.6.1" in done.stdout  # a Linux-only dependency


@pytest.mark.integration
def test_a_lock_on_stdout_is_the_lock(index: IndexServer, tmp_path: Path) -> None:
    spec = ["--python-version", "3.11", "--platform", "win_amd64"]
    done = lock(index, environment(index, tmp_path), "torch==2.8.0", *spec)
    assert done.returncode == 0, done.stderr
    document = _toml(done.stdout)  # a pylock, by default
    names = sorted(p["name"] for p in document["packages"])
    # The runtime stand-in is for Linux only: a lock is for its target.
    assert names == ["standin-numpy", "torch"]


@pytest.mark.integration
def test_requirement_and_constraint_files_reach_the_resolver(
    index: IndexServer, tmp_path: Path
) -> None:
    (tmp_path / "requirements.txt").write_text("torch==2.8.0  # the family\nstandin-pillow\n")
    (tmp_path / "constraints.txt").write_text("standin-numpy<2\n")
    spec = ["--python-version", "3.11", "--platform", "manylinux_2_28_x86_64"]
    files = ["-r", str(tmp_path / "requirements.txt"), "-c", str(tmp_path / "constraints.txt")]
    done = lock(index, environment(index, tmp_path), *files, *spec, "--format", "requirements")
    assert done.returncode == 0, done.stderr
    pins = [line.split(" ")[0] for line in done.stdout.splitlines() if "==" in line]
    assert pins == ["standin-numpy==1.0.0", "standin-pillow==10.0", "standin-runtime-cu12==12.6.1"]
    assert f"torch @ {index.url}/whl/cu126/" in done.stdout


@pytest.mark.integration
def test_a_dependency_that_needs_an_unplanned_family_member_is_refused(
    index: IndexServer, tmp_path: Path
) -> None:
    out = tmp_path / "pylock.toml"
    spec = ["--python-version", "3.11", "--platform", "manylinux_2_28_x86_64"]
    done = lock(
        index, environment(index, tmp_path), "torch==2.8.0", "needs-audio", *spec, "-o", str(out)
    )
    assert done.returncode == 1
    assert "error: a dependency needs torchaudio, which the plan does not choose" in done.stderr
    assert "hint: add torchaudio to the requirements" in done.stderr
    assert not out.exists()


@pytest.mark.integration
def test_a_conflict_uv_finds_is_one_error_with_uvs_words(
    index: IndexServer, tmp_path: Path
) -> None:
    spec = ["--python-version", "3.11", "--platform", "manylinux_2_28_x86_64"]
    done = lock(index, environment(index, tmp_path), "torch==2.8.0", "standin-numpy<1", *spec)
    assert done.returncode == 1
    assert done.stderr.startswith("error: uv could not lock the dependencies of the planned wheels")
    assert "standin-numpy" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def _toml(text: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    return tomllib.loads(text)
