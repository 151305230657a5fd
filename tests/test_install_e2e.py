"""The whole path for real: a loopback PyTorch-shaped index serving stand-in wheels,
the torchfit CLI as a subprocess, real pip installing into fresh virtual environments.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from support import (
    IndexServer,
    build_wheel,
    find_python,
    isolated_env,
    make_venv,
    pip_freeze,
    serve_directory,
    sha256_of,
    standin_torch,
    venv_python,
    write_metadata_sidecar,
)

pytestmark = pytest.mark.integration


def publish(root: Path, variant: str, wheel: Path, *, sha256: str | None = None) -> None:
    """Add a wheel to ``root/whl/<variant>/`` and list it on its project page, shaped like
    download.pytorch.org: host-absolute href, ``%2B`` for ``+``, a ``#sha256=`` fragment."""
    folder = root / "whl" / variant
    folder.mkdir(parents=True, exist_ok=True)
    shutil.move(str(wheel), folder / wheel.name)
    metadata = Path(f"{wheel}.metadata")
    if metadata.exists():
        shutil.move(str(metadata), folder / metadata.name)
    project = wheel.name.split("-")[0]
    page = folder / project / "index.html"
    page.parent.mkdir(exist_ok=True)
    links = page.read_text().splitlines()[3:-2] if page.exists() else []
    digest = sha256 or sha256_of(folder / wheel.name)
    attrs = ""
    if (folder / f"{wheel.name}.metadata").exists():
        meta = sha256_of(folder / f"{wheel.name}.metadata")
        attrs = f' data-dist-info-metadata="sha256={meta}" data-core-metadata="sha256={meta}"'
    href = f"/whl/{variant}/{quote(wheel.name)}#sha256={digest}"
    links.append(f'    <a href="{href}"{attrs}>{wheel.name}</a><br/>')
    page.write_text(
        "\n".join(["<!DOCTYPE html>", "<html>", "  <body>", *links, "  </body>", "</html>"]) + "\n"
    )


def torchfit(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "torchfit", *args],
        capture_output=True,
        text=True,
        env=env or isolated_env(),
        timeout=300,
    )


def install(index: IndexServer, venv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`torchfit install … --python VENV --pytorch-index <the loopback index>`."""
    # Options first: a test's own arguments may end with `-- <pip arguments>`.
    return torchfit("install", "--python", str(venv), "--pytorch-index", f"{index.url}/whl", *args)


def installed_cuda(python: Path) -> str | None:
    script = "import json, torch.version as v; print(json.dumps(v.cuda))"
    done = subprocess.run([str(python), "-c", script], capture_output=True, text=True, check=True)
    result: str | None = json.loads(done.stdout)
    return result


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexServer]:
    """torch 1.7.1 in four variants (cu102 unlabeled, as on the real index), torchvision 0.8.2
    for cu101 (its metadata only inside the wheel) and cu110 (with a PEP 658 sidecar), and a
    cu92 build whose page gives a wrong sha256."""
    root = tmp_path_factory.mktemp("index")
    build = tmp_path_factory.mktemp("build")
    publish(root, "cu101", standin_torch(build, "1.7.1+cu101", cuda="10.1"))
    publish(root, "cu102", standin_torch(build, "1.7.1", cuda="10.2"))
    # A liar: listed as the CUDA 11.0 build, but built for 10.2.
    publish(root, "cu110", standin_torch(build, "1.7.1+cu110", cuda="10.2"))
    publish(root, "cpu", standin_torch(build, "1.7.1+cpu", cuda=None))
    publish(root, "cu92", standin_torch(build, "1.7.1+cu92", cuda="9.2"), sha256="0" * 64)
    publish(
        root, "cu101", build_wheel(build, "torchvision", "0.8.2+cu101", requires=["torch==1.7.1"])
    )
    vision110 = build_wheel(build, "torchvision", "0.8.2+cu110", requires=["torch==1.7.1"])
    write_metadata_sidecar(vision110)
    publish(root, "cu110", vision110)
    with serve_directory(root) as server:
        yield server


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    return make_venv(tmp_path / "venv")


def test_install_cuda_101_build_and_verify(index: IndexServer, venv: Path) -> None:
    done = install(
        index,
        venv,
        "torch==1.7.1",
        "--cuda",
        "10.1",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["plan"]["variant"] == "cu101"
    assert result["verification"]["ok"] is True
    assert "torch: (none) -> 1.7.1+cu101" in result["changes"]
    assert installed_cuda(venv) == "10.1"


def test_unlabeled_wheel_takes_its_folder_variant(index: IndexServer, venv: Path) -> None:
    done = install(
        index,
        venv,
        "torch==1.7.1",
        "--cuda",
        "10.2",
    )
    assert done.returncode == 0, done.stderr
    assert "variant cu102" in done.stdout
    assert installed_cuda(venv) == "10.2"


def test_companion_pins_torch_from_wheel_metadata(index: IndexServer, venv: Path) -> None:
    before = len(index.requests)
    done = install(
        index,
        venv,
        "torchvision==0.8.2",
        "--cuda",
        "10.1",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    packages = {p["name"]: p["version"] for p in json.loads(done.stdout)["plan"]["packages"]}
    assert packages == {"torch": "1.7.1+cu101", "torchvision": "0.8.2+cu101"}
    # No sidecar on this page: torchfit read the pin from the wheel itself.
    assert "/whl/cu101/torchvision-0.8.2+cu101-py3-none-any.whl" in index.requests[before:]


def test_pep658_metadata_is_used_instead_of_the_wheel(index: IndexServer) -> None:
    before = len(index.requests)
    done = torchfit(
        "plan",
        "torch",
        "torchvision",
        "--variant",
        "cu110",
        "--python-version",
        "3.11",
        "--platform",
        "linux_x86_64",
        "--pytorch-index",
        f"{index.url}/whl",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    asked = index.requests[before:]
    assert "/whl/cu110/torchvision-0.8.2+cu110-py3-none-any.whl.metadata" in asked
    assert "/whl/cu110/torchvision-0.8.2+cu110-py3-none-any.whl" not in asked


def test_pinned_torch_on_a_known_driver_asks_one_page(index: IndexServer) -> None:
    before = len(index.requests)
    done = torchfit(
        "plan",
        "torch==1.7.1",
        "--cuda",
        "10.1",
        "--python-version",
        "3.8",
        "--platform",
        "linux_x86_64",
        "--pytorch-index",
        f"{index.url}/whl",
    )
    assert done.returncode == 0, done.stderr
    assert index.requests[before:] == ["/whl/cu101/torch/"]


def test_a_build_that_lies_about_its_cuda_fails_verification(
    index: IndexServer, venv: Path
) -> None:
    done = install(
        index,
        venv,
        "torch==1.7.1",
        "--cuda",
        "11.0",
    )
    assert done.returncode == 1
    assert "expected torch.version.cuda = 11.0, found 10.2" in done.stdout
    assert "verification failed" in done.stderr
    assert "torch: (none) -> 1.7.1+cu110" in done.stdout  # says exactly what changed


def test_hash_mismatch_refuses_before_the_installer_runs(index: IndexServer, venv: Path) -> None:
    before = pip_freeze(venv)
    done = install(
        index,
        venv,
        "torch==1.7.1",
        "--variant",
        "cu92",
    )
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    failed = next(n for n, line in enumerate(lines) if line.startswith("error: "))
    # Streamed before it (stderr is no terminal: line by line): torchfit's own lines only.
    assert all(line.startswith(("torchfit: ", "warning: ")) for line in lines[:failed])
    assert lines[failed] == (
        "error: torch-1.7.1+cu92-py3-none-any.whl does not match the sha256 its index page"
        " gives: nothing was installed"
    )
    assert f"expected sha256 {'0' * 64}" in done.stderr
    assert "Traceback" not in done.stderr
    # pip never ran: nothing changed, and no restore point was even written.
    assert pip_freeze(venv) == before
    assert not (venv.parent.parent / "torchfit-state.json").exists()


def test_a_decoy_index_cannot_win(index: IndexServer, venv: Path, tmp_path: Path) -> None:
    decoy_root = tmp_path / "decoy"
    decoy = standin_torch(tmp_path, "1.7.1+cu101", cuda="6.6")
    (decoy_root / "simple" / "torch").mkdir(parents=True)
    shutil.move(str(decoy), decoy_root / "simple" / "torch" / decoy.name)
    (decoy_root / "simple" / "torch" / "index.html").write_text(
        f'<a href="{quote(decoy.name)}">{decoy.name}</a>\n'
    )
    with serve_directory(decoy_root) as other:
        done = install(
            index,
            venv,
            "torch==1.7.1",
            "--cuda",
            "10.1",
            "--",
            "--index-url",
            f"{other.url}/simple",
            "--extra-index-url",
            f"{other.url}/simple",
        )
        assert done.returncode == 0, done.stderr
        assert not any(path.startswith("/simple/torch") for path in other.requests)
    assert installed_cuda(venv) == "10.1"


def test_install_with_uv(index: IndexServer, venv: Path) -> None:
    if shutil.which("uv") is None:
        pytest.skip("uv is not installed")
    done = install(
        index,
        venv,
        "torch==1.7.1",
        "torchvision",
        "--cuda",
        "10.1",
        "--installer",
        "uv",
    )
    assert done.returncode == 0, done.stderr
    assert installed_cuda(venv) == "10.1"


def test_library_install_and_verify_command(index: IndexServer, venv: Path) -> None:
    script = (
        "import sys, torchfit\n"
        "result = torchfit.install('torch==1.7.1', python=sys.argv[1], index=sys.argv[2],"
        " overrides=torchfit.Overrides(cuda=(10, 2)))\n"
        "print(result.plan.variant.tag, result.verification.ok)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(venv), f"{index.url}/whl"],
        capture_output=True,
        text=True,
        env=isolated_env(),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["cu102", "True"]
    # Now check it with `torchfit verify`, as a user would later.
    done = torchfit("verify", "--python", str(venv), "--cuda", "10.2", "--json")
    assert done.returncode == 0, done.stderr
    checks = {c["name"]: c["status"] for c in json.loads(done.stdout)["checks"]}
    assert checks == {
        "installed": "pass",
        "import": "pass",
        "driver": "pass",
        # --cuda simulates the driver: there is no GPU to ask.
        "cuda_available": "skipped",
        "arch": "skipped",
        "cudnn": "skipped",
        "kernel": "skipped",
    }
    # The same build on a machine whose driver is too old for it is a failure, said plainly.
    done = torchfit("verify", "--python", str(venv), "--cuda", "10.1")
    assert done.returncode == 1
    assert "built for CUDA 10.2, but the driver supports only CUDA 10.1" in done.stdout


def test_install_into_an_older_python(index: IndexServer, tmp_path: Path) -> None:
    """torch 1.7.1 is for Python 3.6-3.9: the target interpreter may be older than torchfit's."""
    other = next((found for v in ("3.8", "3.7", "3.6") if (found := find_python(v))), None)
    if other is None:
        pytest.skip("no CPython 3.6, 3.7 or 3.8 runs on this machine")
    venv = make_venv(tmp_path / "old", other)
    done = install(
        index,
        venv,
        "torch==1.7.1",
        "--cuda",
        "10.1",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["plan"]["target"]["python_version"] in ("3.6", "3.7", "3.8")
    assert result["verification"]["ok"] is True
    assert "torch: (none) -> 1.7.1+cu101" in result["changes"]


def test_explicit_cpu_on_a_gpu_machine_installs_and_verifies(
    index: IndexServer, venv: Path
) -> None:
    done = install(
        index,
        venv,
        "torch==1.7.1",
        "--variant",
        "cpu",
        "--cuda",
        "10.1",
        "--json",
    )
    assert done.returncode == 0, done.stdout
    checks = {c["name"]: c for c in json.loads(done.stdout)["verification"]["checks"]}
    assert checks["driver"]["status"] == "pass"
    assert checks["driver"]["detail"] == "a cpu build, as asked for"


def test_compat_minor_reaches_verify(tmp_path: Path) -> None:
    """A CUDA 11.1 build on an 11.0 driver that minor-version compatibility allows: what
    `install --compat minor` accepted, `verify --compat minor` must accept too."""
    wheel = standin_torch(tmp_path, "1.8.0+cu111", cuda="11.1")
    venv = make_venv(tmp_path / "venv")
    subprocess.run(
        [str(venv), "-m", "pip", "install", "-q", "--no-index", str(wheel)],
        check=True,
        env=isolated_env(),
        timeout=300,
    )
    machine = ["--driver", "450.80.02", "--python", str(venv), "--json"]
    strict = torchfit("verify", *machine)
    assert strict.returncode == 1
    minor = torchfit("verify", *machine, "--compat", "minor")
    assert minor.returncode == 0, minor.stdout
    checks = {c["name"]: c for c in json.loads(minor.stdout)["checks"]}
    assert "minor-version compatibility" in checks["driver"]["detail"]
    doctor = torchfit("doctor", *machine, "--compat", "minor")
    assert json.loads(doctor.stdout)["healthy"] is True, doctor.stdout


# --- an interrupted upgrade, and `torchfit restore` -------------------------------------

OLD, NEW = "2.0.0+cpu", "2.1.0+cpu"


@pytest.fixture(scope="module")
def upgrades(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexServer]:
    """A small torch 2.0.0+cpu, and a 2.1.0+cpu that pip needs a while to install: its
    first file is a marker, then 40 MB to unpack, then 1,500 modules to byte-compile after
    its dist-info (the archive's last files) is written."""
    root = tmp_path_factory.mktemp("upgrades")
    build = tmp_path_factory.mktemp("build")
    small = standin_torch(build, OLD, cuda=None)
    write_metadata_sidecar(small)
    publish(root, "cpu", small)
    files = {"torch/big/first.py": ""}
    files.update({f"torch/big/blob_{i:02d}.txt": "0" * 2_500_000 for i in range(16)})
    body = "".join(f"value_{j} = {j}\n" for j in range(300))
    files.update({f"torch/big/module_{i:04d}.py": body for i in range(1500)})
    big = build_wheel(build, "torch", NEW, files={**files, **standin_files(NEW)})
    write_metadata_sidecar(big)
    publish(root, "cpu", big)
    with serve_directory(root) as server:
        yield server


def standin_files(version: str) -> dict[str, str]:
    """The files of ``standin_torch(version, cuda=None)``, to add more beside them."""
    with zipfile.ZipFile(standin_torch(Path(tempfile.mkdtemp()), version, cuda=None)) as wheel:
        return {n: wheel.read(n).decode() for n in wheel.namelist() if n.startswith("torch/")}


def torch_version(python: Path) -> str | None:
    script = "import torch; print(torch.__version__)"
    done = subprocess.run([str(python), "-c", script], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def wheel_requested(server: IndexServer, version: str, start: int = 0) -> bool:
    path = f"/whl/cpu/torch-{version}-py3-none-any.whl"
    return any(r.path == path and "Range" not in r.headers for r in server.received[start:])


def site_packages(python: Path) -> Path:
    (found,) = python.parent.parent.glob("lib/python*/site-packages")
    return found


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert process.poll() is None, "torchfit ended before the moment to stop it came"
        assert time.monotonic() < deadline, "the moment to stop torchfit never came"
        time.sleep(0.005)


def test_an_interrupted_upgrade_is_reported_and_restored(upgrades: IndexServer, venv: Path) -> None:
    """torch 2.0.0 was there (installed by pip from its URL, before torchfit); an upgrade to
    2.1.0 is stopped with SIGINT at several moments, from before pip starts to half-way
    through its unpacking; each time torchfit says what changed, and `torchfit restore`
    puts 2.0.0 back, from the URL recorded the first time and later from its own record."""
    url = f"{upgrades.url}/whl/cpu/{quote(f'torch-{OLD}-py3-none-any.whl')}"
    digest = sha256_of(upgrades.root / "whl" / "cpu" / f"torch-{OLD}-py3-none-any.whl")
    pip = [str(venv), "-m", "pip", "install", "-q", f"torch @ {url}#sha256={digest}"]
    subprocess.run(pip, check=True, env=isolated_env(), timeout=300)
    site = site_packages(venv)

    def written(path: str, since: float) -> bool:  # by this run: earlier ones leave files
        try:
            return (site / path).stat().st_mtime >= since
        except FileNotFoundError:
            return False

    moments: dict[str, Callable[[int, float], bool]] = {
        # torchfit is downloading the new wheel (or pip is starting).
        "download": lambda start, since: wheel_requested(upgrades, NEW, start),
        # pip has moved torch 2.0.0 aside and is unpacking 2.1.0.
        "unpacking": lambda start, since: written("torch/big/first.py", since),
        # pip has unpacked 2.1.0 and is byte-compiling it.
        "compiling": lambda start, since: written(f"torch-{NEW}.dist-info/RECORD", since),
    }
    seen = {}
    for moment, reached in moments.items():
        before = pip_freeze(venv)
        start, since = len(upgrades.received), time.time() - 1  # mtimes may be coarse
        command = [sys.executable, "-m", "torchfit", "install", "--python", str(venv)]
        command += ["--pytorch-index", f"{upgrades.url}/whl", f"torch=={NEW}", "--variant", "cpu"]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=isolated_env()
        )
        try:
            wait_for(lambda: reached(start, since), process)  # noqa: B023 -- called at once
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == 130, (moment, out, err)
        assert "Traceback" not in err, (moment, err)
        lines = err.splitlines()
        # The installer's output streams first (stderr is no terminal: line by line).
        error = next(line for line in lines if line.startswith("error: "))
        assert error.startswith("error: interrupted (SIGINT)"), (moment, err)
        (changed,) = [line.strip() for line in lines if line.strip().startswith("changed: ")]
        seen[moment] = err
        restore = f"hint: to put back what was there before: torchfit restore --python {venv}"
        if changed == "changed: nothing":  # stopped before pip changed anything
            assert pip_freeze(venv) == before and restore not in lines, (moment, err)
        else:
            assert restore in lines, (moment, err)
            assert "torch: " in changed
            done = torchfit("restore", "--python", str(venv), "--json")
            assert done.returncode == 0, (moment, done.stderr)
            assert json.loads(done.stdout)["restored"]["torch"] == OLD
        assert pip_freeze(venv)["torch"] == OLD, moment
        assert torch_version(venv) == OLD, moment
        assert not list(site.glob("~*")), moment  # pip's leftovers are gone too
    print(seen)  # which phase each moment met, for the record (pytest -s shows it)
    assert "changed: nothing" not in seen["compiling"]
    # Restoring again has nothing left to do.
    done = torchfit("restore", "--python", str(venv))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"nothing to restore: {venv} has the torch family recorded")


def test_an_install_after_an_interrupted_one_keeps_the_first_record(
    upgrades: IndexServer, venv: Path
) -> None:
    """SIGTERM half-way through an upgrade, then the upgrade tried again and finished:
    restore goes back to the torch from before the first try, not to the half-installed
    state the second began with. And a package that was absent before is uninstalled."""
    options = ["--variant", "cpu"]
    assert install(upgrades, venv, f"torch=={OLD}", *options).returncode == 0
    done = torchfit("restore", "--python", str(venv), "--json")  # torch was not there
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["changes"] == [f"torch: {OLD} -> (none)"]
    assert "torch" not in pip_freeze(venv)
    assert install(upgrades, venv, f"torch=={OLD}", *options).returncode == 0
    site = site_packages(venv)
    command = [sys.executable, "-m", "torchfit", "install", "--python", str(venv)]
    command += ["--pytorch-index", f"{upgrades.url}/whl", f"torch=={NEW}", *options]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=isolated_env()
    )
    wait_for(lambda: (site / "torch" / "big" / "first.py").exists(), process)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "\nerror: interrupted (SIGTERM)" in err, err  # after the installer's own lines
    assert "Traceback" not in err
    assert install(upgrades, venv, f"torch=={NEW}", *options).returncode == 0
    assert torch_version(venv) == NEW
    # pip was given a temporary copy; what it recorded is the URL that copy came from.
    frozen = subprocess.run(
        [str(venv), "-m", "pip", "freeze"], capture_output=True, text=True, env=isolated_env()
    )
    wheel = quote(f"torch-{NEW}-py3-none-any.whl")
    assert f"torch @ {upgrades.url}/whl/cpu/{wheel}#sha256=" in frozen.stdout, frozen.stdout
    done = torchfit("restore", "--python", str(venv), "--json")
    assert done.returncode == 0, done.stderr
    changes = json.loads(done.stdout)["changes"]
    assert changes[0] == f"torch: {NEW} -> {OLD}"
    # pip dies at once on SIGTERM, leaving torch 2.0.0 moved aside: restore clears that too.
    assert changes[1].startswith("removed what a stopped pip had moved aside: ~orch")
    assert not list(site.glob("~*"))
    assert torch_version(venv) == OLD
    record = json.loads((venv.parent.parent / "torchfit-state.json").read_text())
    assert record["before"]["torch"]["version"] == OLD
    assert record["complete"] is True


def test_restore_without_a_record_is_one_error(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")], check=True
    )
    venv = venv_python(tmp_path / "bare")
    done = torchfit("restore", "--python", str(venv))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"error: no torchfit record for {venv}: nothing to restore",
        "hint: torchfit records the torch family before each install it makes",
    ]
    assert done.stdout == ""


def test_uv_installs_and_restores_with_the_recorded_urls(upgrades: IndexServer, venv: Path) -> None:
    if shutil.which("uv") is None:
        pytest.skip("uv is not installed")
    options = ["--variant", "cpu", "--installer", "uv"]
    assert install(upgrades, venv, f"torch=={OLD}", *options).returncode == 0
    frozen = subprocess.run(
        ["uv", "pip", "freeze", "--python", str(venv)], capture_output=True, text=True
    )
    wheel = quote(f"torch-{OLD}-py3-none-any.whl")
    assert f"torch @ {upgrades.url}/whl/cpu/{wheel}#sha256=" in frozen.stdout, frozen.stdout
    assert install(upgrades, venv, f"torch=={NEW}", *options).returncode == 0
    done = torchfit("restore", "--python", str(venv), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    (command,) = result["commands"]
    assert Path(command[0]).name == "uv" and command[1:5] == [
        "pip",
        "install",
        "--python",
        str(venv),
    ]
    assert result["changes"] == [f"torch: {NEW} -> {OLD}"]
    assert torch_version(venv) == OLD
