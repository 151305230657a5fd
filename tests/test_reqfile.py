"""Requirement files in pip's format: the parser over real files, the split into planned and
passed-through lines, the command line over them, and real installs with pip and uv."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import (
    IndexServer,
    build_wheel,
    isolated_env,
    make_venv,
    pip_freeze,
    serve_directory,
    sha256_of,
    standin_torch,
    write_index,
)
from torchfit.choose.reqfile import read_requirement_files
from torchfit.choose.requirements import ask, requested_variant
from torchfit.cli.main import main
from torchfit.environment.target import from_spec
from torchfit.errors import UsageError
from torchfit.variants import Variant

TARGET = from_spec("3.8", ["linux_x86_64"])
OFFLINE = ["--offline", "--python-version", "3.8", "--platform", "linux_x86_64"]
SHA = "ab" * 32


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def lines_of(tmp_path: Path, text: str) -> list[tuple[str, str, str]]:
    write(tmp_path, "req.txt", text)
    found = read_requirement_files(["req.txt"], cwd=str(tmp_path))
    return [(line.origin, line.kind, str(line)) for line in found.lines]


# -- the parser ----------------------------------------------------------------------------


def test_comments_continuations_and_blank_lines(tmp_path: Path) -> None:
    text = (
        "# a comment line\n"
        "\n"
        "torch==2.8.0 \\\n"
        f"    --hash=sha256:{SHA} \\\n"
        f"    --hash sha256:{SHA.upper()}  # after whitespace: a comment\n"
        "numpy<2 ; python_version >= '3.9'\n"
        "pkg @ https://example.org/pkg-1.whl#sha256=00  # a fragment is no comment\n"
        "scipy \\\n"
        "# a comment line ends the continuation\n"
        "   \t\n"
    )
    write(tmp_path, "req.txt", text)
    found = read_requirement_files(["req.txt"], cwd=str(tmp_path))
    assert [(line.origin, line.kind, line.requirement) for line in found.lines] == [
        ("req.txt:3", "named", "torch==2.8.0"),
        ("req.txt:6", "named", "numpy<2 ; python_version >= '3.9'"),
        ("req.txt:7", "named", "pkg @ https://example.org/pkg-1.whl#sha256=00"),
        ("req.txt:8", "named", "scipy"),
    ]
    assert found.lines[0].hashes == (f"sha256:{SHA}", f"sha256:{SHA}")
    assert found.texts == (("req.txt", text),)


def test_nested_files_are_relative_to_the_file_that_names_them(tmp_path: Path) -> None:
    write(tmp_path, "project/req.txt", "torch\n-r sub/more.txt\n-c ../shared/cons.txt\n")
    write(tmp_path, "project/sub/more.txt", "torchvision\n--requirement=../../shared/base.txt\n")
    write(tmp_path, "shared/base.txt", "numpy\n")
    write(tmp_path, "shared/cons.txt", "torch<2.9\n-r base.txt\n")
    found = read_requirement_files(["project/req.txt"], cwd=str(tmp_path))
    assert [(line.origin, line.requirement, line.constraint) for line in found.lines] == [
        ("project/req.txt:1", "torch", False),
        (os.path.join("project", "sub", "more.txt") + ":1", "torchvision", False),
        (os.path.join("project", "sub", "../../shared/base.txt") + ":1", "numpy", False),
        (os.path.join("project", "../shared/cons.txt") + ":1", "torch<2.9", True),
        # pip's rule: what a -r names holds requirements, even from inside a -c file
        (os.path.join("project", "../shared", "base.txt") + ":1", "numpy", False),
    ]
    assert len(found.texts) == 5


def test_files_that_include_each_other_are_one_error_naming_the_chain(tmp_path: Path) -> None:
    write(tmp_path, "a.txt", "torch\n-r b.txt\n")
    write(tmp_path, "b.txt", "-c c.txt\n")
    write(tmp_path, "c.txt", "-r a.txt\n")
    with pytest.raises(UsageError) as caught:
        read_requirement_files(["a.txt"], cwd=str(tmp_path))
    assert (
        caught.value.message
        == "requirement files include each other: a.txt -> b.txt -> c.txt -> a.txt"
    )


def test_a_file_may_be_included_twice_without_a_cycle(tmp_path: Path) -> None:
    write(tmp_path, "req.txt", "-r common.txt\n-c common.txt\n")
    write(tmp_path, "common.txt", "torch\n")
    found = read_requirement_files(["req.txt"], cwd=str(tmp_path))
    assert [line.constraint for line in found.lines] == [False, True]


def test_a_missing_file_says_where_it_was_named(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"^cannot read requirements file nope\.txt: No such"):
        read_requirement_files(["nope.txt"], cwd=str(tmp_path))
    write(tmp_path, "req.txt", "torch\n\n-r gone.txt\n")
    with pytest.raises(UsageError) as caught:
        read_requirement_files([], ["req.txt"], cwd=str(tmp_path))
    assert caught.value.message.startswith(
        "cannot read requirements file gone.txt (named at req.txt:3)"
    )
    assert "relative to the file" in (caught.value.hint or "")


def test_the_read_seam_replaces_the_disk() -> None:
    files = {"/r/req.txt": b"\xef\xbb\xbftorch  # a BOM first\n"}
    found = read_requirement_files(["req.txt"], read=files.__getitem__, cwd="/r")
    assert [line.requirement for line in found.lines] == ["torch"]


def test_an_encoding_line_and_text_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "latin.txt").write_bytes(b"# -*- coding: latin-1 -*-\npkg-\xe9 ; extra == 'x'\n")
    found = read_requirement_files(["latin.txt"], cwd=str(tmp_path))
    assert found.lines[0].text == "pkg-\xe9 ; extra == 'x'"
    (tmp_path / "bad.txt").write_bytes(b"torch\n\xff\xfe\n")
    with pytest.raises(UsageError, match=r"^requirements file bad\.txt is not utf-8-sig text"):
        read_requirement_files(["bad.txt"], cwd=str(tmp_path))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("--index-url https://h.example/simple", "--index-url https://h.example/simple"),
        ("-i https://h.example/simple", "--index-url https://h.example/simple"),
        ("-ihttps://h.example/simple", "--index-url https://h.example/simple"),
        ("--index-url=https://h.example/simple", "--index-url https://h.example/simple"),
        ("--extra https://h.example/simple", "--extra-index-url https://h.example/simple"),
        ("--pre", "--pre"),
        ("--no-binary :all: --prefer-binary", "--no-binary :all: --prefer-binary"),
        ("--trusted-host h.example", "--trusted-host h.example"),
        ("-f https://h.example/links", "--find-links https://h.example/links"),
    ],
)
def test_option_lines_as_pip_reads_them(tmp_path: Path, line: str, expected: str) -> None:
    assert lines_of(tmp_path, line + "\n") == [("req.txt:1", "option", expected)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("torch\n--no-deps\n", "req.txt:2: --no-deps is not an option pip allows"),
        ("-U torch\n", "req.txt:1: -U is not an option pip allows"),
        ("--user\n", "req.txt:1: --user is not an option pip allows"),
        ("--index-strategy unsafe-best-match\n", "req.txt:1: --index-strategy is not an"),
        ("--pre=yes\n", "req.txt:1: --pre takes no value"),
        ("--index-url\n", "req.txt:1: --index-url needs a value"),
        ("numpy --pre\n", "req.txt:1: --pre must be on a line of its own"),
        (f"--hash=sha256:{SHA}\n", "req.txt:1: --hash must follow a requirement"),
        ("torch --hash=md5:ab\n", "req.txt:1: --hash 'md5:ab' is not ALGORITHM:HEX"),
        ("torch --hash=sha256:xyz\n", "req.txt:1: --hash 'sha256:xyz' is not ALGORITHM:HEX"),
        ("-r a.txt -r b.txt\n", "req.txt:1: --requirement must be alone on its line"),
        ("--index-url 'https://h\n", "req.txt:1: No closing quotation"),
        ("-r https://h.example/req.txt\n", "cannot read requirements file https://h.example"),
    ],
)
def test_lines_pip_would_refuse_are_one_error_naming_file_and_line(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(UsageError) as caught:
        lines_of(tmp_path, text)
    assert caught.value.message.startswith(message), caught.value.message
    assert "\n" not in caught.value.message


def test_relative_paths_keep_their_meaning_for_the_installer(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "sub" / "wheels").mkdir(parents=True)
    write(
        project,
        "sub/req.txt",
        "-e .\n"
        "-e ../lib[dev]\n"
        "./dist/pkg-1.0-py3-none-any.whl ; python_version >= '3'\n"
        "-f wheels\n"
        "--find-links elsewhere\n"
        "-e git+https://h.example/repo.git#egg=repo\n"
        "${HOME}/pkg-2.0-py3-none-any.whl\n",
    )
    found = read_requirement_files(["sub/req.txt"], cwd=str(project))
    assert [str(line) for line in found.lines] == [
        f"--editable {project}",  # pip: requirements' paths are the working directory's
        f"--editable {tmp_path / 'lib'}[dev]",
        f"{project / 'dist' / 'pkg-1.0-py3-none-any.whl'} ; python_version >= '3'",
        f"--find-links {project / 'sub' / 'wheels'}",  # pip: beside the file, when there
        f"--find-links {project / 'elsewhere'}",
        "--editable git+https://h.example/repo.git#egg=repo",
        "${HOME}/pkg-2.0-py3-none-any.whl",  # the installer expands it
    ]
    assert [line.kind for line in found.lines] == ["editable"] * 2 + ["path"] + ["option"] * 2 + [
        "editable",
        "path",
    ]


# -- the split -----------------------------------------------------------------------------


def asked_of(tmp_path: Path, text: str, constraints: str = "", *cli: str):  # type: ignore[no-untyped-def]
    write(tmp_path, "req.txt", text)
    write(tmp_path, "cons.txt", constraints)
    found = read_requirement_files(["req.txt"], ["cons.txt"], cwd=str(tmp_path))
    return ask(list(cli), TARGET, found.lines)


def test_family_lines_are_planned_and_constraints_narrow_them(tmp_path: Path) -> None:
    asked = asked_of(
        tmp_path,
        "torch>=1.6\ntorchvision ; python_version < '3'\nnumpy<2\n--pre\n",
        "torch<1.8\ntorchaudio==0.7.2\nscipy<2\n",
    )
    # torchvision's marker does not hold for Python 3.8; torchaudio was not asked for.
    assert [(r.name, str(r.specifier)) for r in asked.family] == [("torch", "<1.8,>=1.6")]
    assert [(p.line, p.origin, p.constraint) for p in asked.passthrough] == [
        ("numpy<2", "req.txt:3", False),
        ("--pre", "req.txt:4", False),
        ("scipy<2", "cons.txt:3", True),
    ]


def test_a_constraint_on_torch_holds_when_only_torchvision_is_asked(tmp_path: Path) -> None:
    asked = asked_of(tmp_path, "torchvision\n", "torch==1.7.1\n")
    assert [str(r) for r in asked.family] == ["torch==1.7.1", "torchvision"]


def test_extras_hashes_and_a_local_label(tmp_path: Path) -> None:
    asked = asked_of(
        tmp_path,
        f"torch[opt-einsum]==2.8.0+cu126 --hash=sha256:{SHA}\ntorch[other]\n",
        "",
        "torchvision==0.23.0+cu126",
    )
    assert asked.extras == {"torch": ("opt-einsum", "other")}
    assert asked.hashes == {"torch": (f"sha256:{SHA}",)}
    assert asked.hash_origins == {"torch": "req.txt:1"}
    assert asked.variant == Variant.parse("cu126")
    assert requested_variant(None, asked) == Variant.parse("cu126")
    assert requested_variant(Variant.parse("cu126"), asked) == Variant.parse("cu126")
    with pytest.raises(UsageError, match="--variant cu128 disagrees with the local label"):
        requested_variant(Variant.parse("cu128"), asked)


@pytest.mark.parametrize(
    ("text", "constraints", "message"),
    [
        ("torch==2.8.0+cu126\ntorchvision==0.23.0+cu128\n", "", "name two variants"),
        ("torch==2.8.0\n", "torch==2.8.0+cu124\ntorch==2.8.0+cpu\n", "name two variants"),
        ("torch==2.8.0+abc\n", "", "req.txt:1: the local label of torch==2.8.0+abc names no"),
        ("torch @ https://h.example/t.whl\n", "", "req.txt:1: 'torch @ https"),
        ("https://h.example/torchaudio-2.8.0.tar.gz\n", "", "req.txt:1: 'https://h.example/torch"),
        ("./wheels/torch-2.8.0-py3-none-any.whl\n", "", "req.txt:1: './wheels/torch-2.8.0"),
        ("torch>=>1\n", "", "req.txt:1: invalid requirement: "),
        ("torch\n", "torch[x]<3\n", "cons.txt:1: a constraint cannot have extras"),
        ("numpy\n", "torch<3\n", "no torch-family requirement given"),
    ],
)
def test_family_lines_torchfit_cannot_plan(
    tmp_path: Path, text: str, constraints: str, message: str
) -> None:
    with pytest.raises(UsageError) as caught:
        asked_of(tmp_path, text, constraints)
    assert message in caught.value.message, caught.value.message


# -- the command line ----------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv), env=dict(os.environ))
    out, err = capsys.readouterr()
    return code, out, err


def test_plan_shows_each_passed_through_line_with_its_origin(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "req.txt", "torch==1.7.1\nnumpy<2\n-e .\n-c cons.txt\n")
    write(tmp_path, "cons.txt", "scipy<2\n")
    code, out, _ = run(capsys, "plan", "-r", "req.txt", "--cuda", "10.1", *OFFLINE)
    assert code == 0
    assert out.splitlines()[1:5] == [
        "  torch 1.7.1+cu101  torch-1.7.1+cu101-cp38-cp38-linux_x86_64.whl",
        "  numpy<2  (passed through, req.txt:2)",
        "  -e .  (passed through, req.txt:3)",
        "  scipy<2  (passed through as a constraint, cons.txt:1)",
    ]
    code, out, _ = run(capsys, "plan", "-r", "req.txt", "--cuda", "10.1", *OFFLINE, "--json")
    assert json.loads(out)["passthrough"] == [
        {"line": "numpy<2", "origin": "req.txt:2", "constraint": False},
        {"line": "-e .", "origin": "req.txt:3", "constraint": False},
        {"line": "scipy<2", "origin": "cons.txt:1", "constraint": True},
    ]


def test_the_memo_keys_on_the_files_text_not_their_names(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "req.txt", "-r pins.txt\n")
    write(tmp_path, "pins.txt", "torch==1.7.1\n")
    argv = ["plan", "-r", "req.txt", "--cuda", "10.2", *OFFLINE, "--json"]
    first = json.loads(run(capsys, *argv)[1])
    again = json.loads(run(capsys, *argv)[1])
    assert {page["origin"] for page in again["pages"]} == {"memo"}
    assert again["packages"] == first["packages"]
    write(tmp_path, "pins.txt", "torch==1.6.0\n")  # the included file changes, not its name
    changed = json.loads(run(capsys, *argv)[1])
    assert "memo" not in {page["origin"] for page in changed["pages"]}
    assert changed["packages"][0]["version"] == "1.6.0"


def test_quiet_drops_the_report_but_not_the_warnings(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run(capsys, "plan", "torch==1.7.1", "--cuda", "10.1", *OFFLINE, "-q")
    assert (code, out) == (0, "")
    assert "warning: planned from the snapshots" in err  # --offline's warning
    code, out, err = run(
        capsys, "install", "torch==2.5.1", "--cuda", "12.4", "--offline", "-q", "--dry-run"
    )
    assert (code, out) == (0, "")
    code, out, _ = run(capsys, "plan", "torch==1.7.1", "--cuda", "10.1", *OFFLINE, "-q", "--json")
    assert json.loads(out)["variant"] == "cu101"  # JSON is what was asked for: it is printed


def test_options_may_come_between_requirements(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plan", "torch", "--cuda", "10.1", "torchvision", *OFFLINE, "--json")
    assert code == 0
    assert [p["name"] for p in json.loads(out)["packages"]] == ["torch", "torchvision"]


def test_a_local_label_is_an_explicit_variant_checked_against_the_driver(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "plan", "torch==1.7.1+cu92", "--cuda", "10.1", *OFFLINE, "--json")
    assert code == 0
    plan = json.loads(out)
    assert plan["variant"] == "cu92"
    assert "variant cu92 given explicitly, and the driver can run it" in plan["reasons"]
    code, _, err = run(capsys, "plan", "torch==1.7.1+cu110", "--cuda", "10.1", *OFFLINE)
    assert code == 1
    assert err.startswith("error: variant cu110 needs CUDA 11.0, but the driver supports only")
    code, _, err = run(
        capsys, "plan", "torch==1.7.1+cu101", "--variant", "cpu", "--cuda", "10.1", *OFFLINE
    )
    assert code == 2
    assert err.startswith(
        "error: --variant cpu disagrees with the local label of torch==1.7.1+cu101"
    )


def test_an_extra_reaches_the_installer(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    write(tmp_path, "req.txt", "torch[opt-einsum]==2.5.1\n")
    argv = ["install", "-r", str(tmp_path / "req.txt"), "--cuda", "12.4", "--offline"]
    code, out, _ = run(capsys, *argv, "--dry-run", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["plan"]["packages"][0]["extras"] == ["opt-einsum"]
    assert result["command"][4].startswith("torch[opt-einsum] @ https://download.pytorch.org/")


def test_a_user_hash_that_the_planned_wheel_lacks_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["plan", "-r", str(tmp_path / "req.txt"), "--cuda", "12.4", "--offline", "--json"]
    write(tmp_path, "req.txt", "torch==2.5.1\n")
    planned = json.loads(run(capsys, *argv)[1])["packages"][0]
    assert planned["sha256"]  # the snapshot of this page lists hashes
    write(
        tmp_path, "req.txt", f"torch==2.5.1 --hash=sha256:{SHA} --hash=sha256:{planned['sha256']}\n"
    )
    assert run(capsys, *argv)[0] == 0
    write(tmp_path, "req.txt", f"torch==2.5.1 --hash=sha256:{SHA}\n")
    code, _, err = run(capsys, *argv[:-1])
    assert code == 1
    assert err.splitlines()[0] == (
        f"error: the planned {planned['filename']} has sha256 {planned['sha256']};"
        f" no --hash of {tmp_path / 'req.txt'}:1 matches it"
    )


def test_one_user_hash_stands_in_when_the_index_gives_none(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    write(tmp_path, "req.txt", f"torch==1.7.1 --hash=sha256:{SHA}\n")
    argv = ["plan", "-r", str(tmp_path / "req.txt"), "--cuda", "10.1", *OFFLINE, "--json"]
    code, out, _ = run(capsys, *argv)
    assert code == 0
    assert json.loads(out)["packages"][0]["sha256"] == SHA  # the download must match it


# -- real installs -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[IndexServer, str]]:
    """A loopback server: a PyTorch-shaped cpu folder with a stand-in torch, and a simple
    index (PEP 503) with one stand-in package; yields it and that package's sha256."""
    root = tmp_path_factory.mktemp("site")
    torch = root / "whl" / "cpu" / "torch"
    torch.mkdir(parents=True)
    standin_torch(torch, "1.7.1+cpu", cuda=None)
    write_index(torch, "torch")
    extra = root / "simple" / "extra-pkg"
    extra.mkdir(parents=True)
    digest = sha256_of(build_wheel(extra, "extra-pkg", "1.0"))
    build_wheel(extra, "extra-pkg", "2.0")
    write_index(extra, "extra-pkg")
    with serve_directory(root) as server:
        yield server, digest


REQS = os.path.join("reqs", "requirements.txt")


def installer_env() -> dict[str, str]:
    # Neither the host's pip settings nor its uv ones: the file's --index-url alone decides.
    return {k: v for k, v in isolated_env().items() if not k.startswith("UV_")}


@pytest.mark.integration
@pytest.mark.parametrize("installer", ["pip", "uv"])
def test_a_requirements_file_installs_planned_and_hashed_lines_together(
    site: tuple[IndexServer, str], tmp_path: Path, installer: str
) -> None:
    if installer == "uv" and shutil.which("uv") is None:
        pytest.skip("uv is not installed")
    server, digest = site
    venv = make_venv(tmp_path / "venv")
    work = tmp_path / "work"
    # Named relative to the working directory; pip's hash-checking mode wants its hash too.
    local = sha256_of(build_wheel(work / "dist", "local-pkg", "3.0"))
    write(
        work,
        "reqs/requirements.txt",
        f"--index-url {server.url}/simple\n"
        "torch==1.7.1+cpu\n"
        f"extra-pkg==1.0 \\\n    --hash=sha256:{digest}\n"
        f"./dist/local_pkg-3.0-py3-none-any.whl --hash=sha256:{local}\n"
        "-c constraints.txt\n",
    )
    write(work, "reqs/constraints.txt", "extra-pkg<2\n")
    argv = [sys.executable, "-m", "torchfit", "install", "-r", REQS]
    argv += [
        "--python",
        str(venv),
        "--pytorch-index",
        f"{server.url}/whl",
        "--installer",
        installer,
    ]
    done = subprocess.run(
        argv, cwd=work, capture_output=True, text=True, env=installer_env(), timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    shown = f"  extra-pkg==1.0     --hash=sha256:{digest}  (passed through, {REQS}:3)"
    assert shown in done.stdout.splitlines()  # the line as written, where it was written
    installed = pip_freeze(venv)
    assert installed["extra-pkg"] == "1.0"
    assert installed["local-pkg"] == "3.0"
    assert installed["torch"].startswith("1.7.1+cpu")

    # The same file with a wrong hash: the installer refuses the pass-through package.
    wrong = (work / "reqs/requirements.txt").read_text().replace(digest, "0" * 64)
    write(work, "reqs/requirements.txt", wrong)
    fresh = make_venv(tmp_path / "fresh")
    argv[argv.index(str(venv))] = str(fresh)
    done = subprocess.run(
        argv, cwd=work, capture_output=True, text=True, env=installer_env(), timeout=300
    )
    assert done.returncode == 1
    assert "error: " in done.stderr and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert not {"extra-pkg", "torch"} & set(pip_freeze(fresh))


@pytest.mark.integration
def test_a_wrong_user_hash_on_torch_changes_nothing(
    site: tuple[IndexServer, str], tmp_path: Path
) -> None:
    server, _ = site
    venv = make_venv(tmp_path / "venv")
    write(tmp_path, "req.txt", f"torch==1.7.1+cpu --hash=sha256:{SHA}\n")
    argv = [sys.executable, "-m", "torchfit", "install", "-r", str(tmp_path / "req.txt")]
    argv += ["--python", str(venv), "--pytorch-index", f"{server.url}/whl"]
    before = len(server.requests)
    done = subprocess.run(argv, capture_output=True, text=True, env=installer_env(), timeout=300)
    assert done.returncode == 1
    assert "matches it" in done.stderr.splitlines()[0]
    assert "torch" not in pip_freeze(venv)
    assert not any(path.endswith(".whl") for path in server.requests[before:])


def test_the_benchmark_reads_its_thousand_line_file(capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "scripts" / "bench_plan.py"
    spec = importlib.util.spec_from_file_location("bench_plan", script)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.report_requirements_file(1)
    out = capsys.readouterr().out
    assert "requirements file, 1,000 lines (997 passed through,\n  2 planned," in out
    assert re.search(r"read and split in\n  [\d.]+/[\d.]+/[\d.]+ ms min/med/max \(bound: 50\)", out)
