"""The whole path for real: a loopback PyTorch-shaped index serving stand-in wheels,
the torchfit CLI as a subprocess, real pip installing into fresh virtual environments.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from support import (
    IndexServer,
    build_wheel,
    find_python,
    isolated_env,
    make_venv,
    serve_directory,
    sha256_of,
    standin_torch,
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


def test_hash_mismatch_installs_nothing(index: IndexServer, venv: Path) -> None:
    done = install(
        index,
        venv,
        "torch==1.7.1",
        "--variant",
        "cu92",
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: the installer failed")
    assert "HASHES" in done.stderr  # pip's own words, passed on
    assert "changed: nothing" in done.stderr
    assert "Traceback" not in done.stderr
    listed = subprocess.run(
        [str(venv), "-m", "pip", "list", "--format=json"], capture_output=True, text=True
    )
    assert "torch" not in {p["name"] for p in json.loads(listed.stdout)}


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
