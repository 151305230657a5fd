"""An interrupted or failed install never leaves a silent mess: the runner passes SIGINT and
SIGTERM on to the installer and waits for it; the wheels are downloaded and checked before
it starts; the torch family from before is recorded in the environment; restore reads it.

The end-to-end proofs (a real pip upgrade stopped at several moments, then restored) are in
``test_install_e2e.py``; these are the parts, fast, with fakes.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from support import serve_directory, standin_torch
from torchfit import Session, Settings, TorchfitError, _runner
from torchfit._runner import Completed, Interrupted, run
from torchfit.choose.plan import Plan, PlannedWheel
from torchfit.environment import target as targets
from torchfit.environment.install import WheelPin, fetch_wheels, wheel_filename
from torchfit.environment.state import (
    EnvironmentState,
    Held,
    Record,
    finished,
    load_record,
    new_record,
    record_paths,
    restore_steps,
    save_record,
)
from torchfit.errors import IndexFetchError, InstallFailed, InstallInterrupted
from torchfit.index.http import Http
from torchfit.machine.record import Detection
from torchfit.variants import Variant

POSIX = pytest.mark.skipif(os.name == "nt", reason="signals are POSIX here")

# A child that says when it is ready, then waits to be stopped; it answers a signal by
# saying which and exiting 3 (as pip exits non-zero on Ctrl-C), unless told to ignore it.
CHILD = """
import signal, sys, time
def stop(signum, frame):
    print("stopped by", signum, flush=True)
    sys.exit(3)
handler = signal.SIG_IGN if "ignore" in sys.argv else stop
signal.signal(signal.SIGINT, handler)
signal.signal(signal.SIGTERM, handler)
if len(sys.argv) > 1 and sys.argv[1] != "ignore":
    open(sys.argv[1], "w").close()
print("ready", flush=True)
time.sleep(30)
"""


def send_when_ready(signum: int) -> Callable[[str], None]:
    """An on_output callback: once the child is ready, signal this process (the runner)."""

    def on_output(line: str) -> None:
        if line == "ready":
            os.kill(os.getpid(), signum)

    return on_output


@POSIX
def test_sigint_reaches_the_child_which_is_waited_for() -> None:
    lines: list[str] = []
    ready = send_when_ready(signal.SIGINT)

    def on_output(line: str) -> None:
        lines.append(line)
        ready(line)

    with pytest.raises(Interrupted) as caught:
        run([sys.executable, "-c", CHILD], on_output=on_output, timeout=60)
    assert caught.value.signal_name == "SIGINT"
    assert caught.value.completed.returncode == 3  # it ended its own way, not killed
    assert lines == ["ready", f"stopped by {int(signal.SIGINT)}"]


@POSIX
def test_sigint_while_output_is_captured(tmp_path: Path) -> None:
    marker = tmp_path / "ready"

    def interrupt_when_ready() -> None:
        deadline = time.monotonic() + 30
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)  # the child's handler is set before it writes the marker
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_when_ready, daemon=True).start()
    with pytest.raises(Interrupted) as caught:
        run([sys.executable, "-c", CHILD, str(marker)], timeout=60)
    assert caught.value.completed.returncode == 3
    assert f"stopped by {int(signal.SIGINT)}" in caught.value.completed.stdout


@POSIX
def test_sigterm_unwinds_like_ctrl_c_and_reaches_the_child() -> None:
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        pytest.skip("something here handles SIGTERM already")

    def on_output(line: str) -> None:
        if line != "ready":
            return
        # Only while the runner's handler is in place: otherwise SIGTERM ends pytest.
        if signal.getsignal(signal.SIGTERM) is _runner._raise_terminated:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(Interrupted) as caught:
        run([sys.executable, "-c", CHILD], on_output=on_output, timeout=60)
    assert caught.value.signal_name == "SIGTERM"
    assert caught.value.completed.returncode == 3
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # put back as it was


@POSIX
def test_a_child_that_ignores_the_signal_is_killed_after_the_grace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_runner, "GRACE_SECONDS", 0.3)
    started = time.monotonic()
    with pytest.raises(Interrupted) as caught:
        run(
            [sys.executable, "-c", CHILD, "ignore"],
            on_output=send_when_ready(signal.SIGINT),
            timeout=60,
        )
    assert caught.value.completed.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 20


def test_a_failing_callback_does_not_lose_the_output() -> None:
    def on_output(line: str) -> None:
        raise RuntimeError("the terminal went away")

    with pytest.raises(RuntimeError, match="went away"):
        run([sys.executable, "-c", "print('a'); print('b')"], on_output=on_output, timeout=60)


# --- the record ---------------------------------------------------------------------


def state(
    prefix: Path, *family: Held, writable: bool = True, leftovers: tuple[str, ...] = ()
) -> EnvironmentState:
    return EnvironmentState(
        prefix=str(prefix),
        writable=writable,
        distributions={"pip": "24.0", **{h.name: h.version for h in family}},
        family={h.name: h for h in family},
        leftovers=leftovers,
    )


TORCH_OLD = Held("torch", "2.0.0+cpu", "https://h/whl/cpu/torch-2.0.0%2Bcpu.whl", "a" * 64)


def test_a_record_says_what_to_put_back(tmp_path: Path) -> None:
    record = new_record("py", "pip", state(tmp_path, TORCH_OLD), None)
    assert record.before == {"torch": TORCH_OLD, "torchvision": None, "torchaudio": None}
    new = Held("torch", "2.1.0+cpu")
    vision = Held("torchvision", "0.16.0+cpu")
    steps = restore_steps(record, state(tmp_path, new, vision))
    assert steps.install == (TORCH_OLD,) and steps.remove == ("torchvision",)
    assert not restore_steps(record, state(tmp_path, TORCH_OLD))
    # Incomplete files are removed, then installed again, even at the recorded version.
    broken = Held("torch", "2.0.0+cpu", intact=False)
    steps = restore_steps(record, state(tmp_path, broken))
    assert steps.remove == ("torch",) and steps.install == (TORCH_OLD,)
    # What a stopped pip moved aside is cleared as well.
    assert restore_steps(record, state(tmp_path, TORCH_OLD, leftovers=("/s/~orch",)))


def test_a_change_cut_short_keeps_the_record_from_before_it(tmp_path: Path) -> None:
    first = new_record("py", "pip", state(tmp_path, TORCH_OLD), None)
    half = state(tmp_path, Held("torch", "2.1.0+cpu", intact=False))
    assert new_record("py", "pip", half, first) is first  # not the half-installed state
    done = finished(first, [Held("torch", "2.1.0+cpu", "https://h/torch-2.1.0.whl", "b" * 64)])
    # After a finished change the next record is of what is there now, with the URL
    # torchfit installed it from (pip itself recorded only a temporary file).
    pip_saw = Held("torch", "2.1.0+cpu", "file:///tmp/torchfit-x/torch-2.1.0.whl", "b" * 64)
    after = new_record("py", "pip", state(tmp_path, pip_saw), done)
    assert after.before["torch"] == Held(
        "torch", "2.1.0+cpu", "https://h/torch-2.1.0.whl", "b" * 64
    )


def test_records_are_kept_in_the_environment_else_the_cache(tmp_path: Path) -> None:
    env = state(tmp_path / "venv")
    assert record_paths(env, tmp_path / "cache")[0] == tmp_path / "venv" / "torchfit-state.json"
    system = state(tmp_path / "usr", writable=False)
    first = record_paths(system, tmp_path / "cache")[0]
    assert first.parent == tmp_path / "cache" / "state"
    record = new_record("py", "uv", env, None)
    paths = record_paths(env, tmp_path / "cache")
    where = save_record(paths, record)
    assert where == paths[0]
    assert load_record(paths) == (record, where)
    assert Record.from_json(json.loads(where.read_text())) == record


def test_a_damaged_record_is_named(tmp_path: Path) -> None:
    paths = [tmp_path / "torchfit-state.json"]
    paths[0].write_text("{not json")
    with pytest.raises(TorchfitError, match="is damaged") as caught:
        load_record(paths)
    assert caught.value.hint and str(paths[0]) in caught.value.hint


# --- downloads before the installer ---------------------------------------------------


def fake_download(content: bytes) -> Callable[[str, Path], str]:
    def download(url: str, dest: Path) -> str:
        dest.write_bytes(content)
        return hashlib.sha256(content).hexdigest()

    return download


def test_a_wheel_whose_hash_differs_refuses_the_whole_install(tmp_path: Path) -> None:
    good = WheelPin("torch", "https://h/torch-1.0-py3-none-any.whl", None)
    bad = WheelPin("torchvision", "https://h/torchvision-1.0-py3-none-any.whl", "0" * 64)
    with pytest.raises(InstallFailed, match="nothing was installed") as caught:
        fetch_wheels([good, bad], tmp_path, fake_download(b"wheel"))
    assert caught.value.details[0] == f"expected sha256 {'0' * 64}"


def test_local_pins_name_the_checked_files(tmp_path: Path) -> None:
    digest = hashlib.sha256(b"wheel").hexdigest()
    pin = WheelPin("torch", "https://h/whl/torch-1.0%2Bcpu-py3-none-any.whl", digest)
    (local,) = fetch_wheels([pin], tmp_path, fake_download(b"wheel"))
    path = tmp_path / "torch-1.0+cpu-py3-none-any.whl"
    assert local == WheelPin("torch", path.as_uri(), digest)
    assert local.requirement() == f"torch @ {path.as_uri()}#sha256={digest}"


@pytest.mark.parametrize("url", ["https://h/simple/torch/", "https://h/..%2F.whl", "https://h/"])
def test_only_wheel_file_names_are_written(url: str) -> None:
    with pytest.raises(InstallFailed, match="not a wheel URL"):
        wheel_filename(url)


def test_http_download_streams_to_disk_and_retries(tmp_path: Path) -> None:
    body = os.urandom(3 << 20)
    answers = iter([httpx.Response(503), httpx.Response(200, content=body)])
    client = httpx.Client(transport=httpx.MockTransport(lambda request: next(answers)))
    http = Http(client=client, sleep=lambda seconds: None)
    dest = tmp_path / "torch.whl"
    assert http.download("http://127.0.0.1/torch.whl", dest) == hashlib.sha256(body).hexdigest()
    assert dest.read_bytes() == body
    missing = Http(
        client=httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(404)))
    )
    with pytest.raises(IndexFetchError, match="HTTP 404"):
        missing.download("http://127.0.0.1/torch.whl", dest)


# --- Session.install and Session.restore over a fake installer ---------------------------


class FakeEnvironment:
    """A runner that plays a target interpreter: the state probe reads ``self.family``;
    pip's install command runs ``on_install`` (which may change it, or raise)."""

    def __init__(self, prefix: Path, family: dict[str, Held]) -> None:
        self.prefix = prefix
        self.family = dict(family)
        self.on_install: Callable[[Sequence[str]], Completed] = lambda argv: Completed(0, "", "")
        self.installs: list[list[str]] = []

    def __call__(self, argv: Sequence[str], **_: Any) -> Completed:
        if argv[-1] == "state":
            facts = {
                n: {"version": h.version, "url": h.url, "sha256": h.sha256, "intact": h.intact}
                for n, h in self.family.items()
            }
            data = {
                "prefix": str(self.prefix),
                "writable": True,
                "distributions": {n: h.version for n, h in self.family.items()},
                "family": facts,
            }
            return Completed(0, json.dumps(data), "")
        if argv[-2:-1] == ["origin"]:
            return Completed(0, '{"updated": []}', "")
        if len(argv) > 3 and argv[3] == "torch":  # the verification's probe
            torch = self.family.get("torch")
            facts = {"version": torch.version if torch else None, "cuda": None, "hip": None}
            return Completed(0, json.dumps({**facts, "import_error": None}), "")
        if Path(argv[0]).name == "nvidia-smi":
            return Completed(127, "", "", "not found")
        if list(argv[1:]) == ["-m", "pip", "--version"]:
            return Completed(0, "pip 24.0", "")
        if "install" in argv or "uninstall" in argv:
            self.installs.append(list(argv))
            return self.on_install(argv)
        raise AssertionError(f"unexpected command {argv}")


@pytest.fixture
def wheels(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A loopback server with torch 2.1.0+cpu; yields its URL and sha256."""
    wheel = standin_torch(tmp_path / "whl", "2.1.0+cpu", cuda=None)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    with serve_directory(tmp_path / "whl") as server:
        yield f"{server.url}/torch-2.1.0%2Bcpu-py3-none-any.whl", digest


def session(env: FakeEnvironment) -> Session:
    return Session(Settings(cache_dir=None), runner=env)


def plan_for(url: str, sha256: str) -> Plan:
    return Plan(
        variant=Variant.parse("cpu"),
        packages=(PlannedWheel("torch", "2.1.0+cpu", url.rsplit("/", 1)[1], url, sha256),),
        passthrough=(),
        target=targets.current(),
        detection=Detection(None, None, (), None, False, (), "linux"),
        reasons=(),
        index="http://127.0.0.1",
    )


def test_an_interrupted_installer_says_what_changed_and_how_back(
    tmp_path: Path, wheels: tuple[str, str]
) -> None:
    env = FakeEnvironment(tmp_path, {"torch": TORCH_OLD})

    def interrupted(argv: Sequence[str]) -> Completed:
        assert argv[4].startswith("torch @ file:///"), argv  # the checked local file
        env.family.pop("torch")  # pip had moved the old torch aside
        raise Interrupted("SIGINT", Completed(1, "ERROR: Operation cancelled by user", ""))

    env.on_install = interrupted
    with pytest.raises(InstallInterrupted) as caught, session(env) as it:
        it.install(plan_for(*wheels))
    error = caught.value
    assert error.message == "interrupted (SIGINT); the installer was stopped and has ended"
    assert error.details == ("changed: torch: 2.0.0+cpu -> (none)",)
    assert (
        error.hint
        == f"to put back what was there before: torchfit restore --python {sys.executable}"
    )
    record = json.loads((tmp_path / "torchfit-state.json").read_text())
    assert record["before"]["torch"] == TORCH_OLD.to_json()
    assert record["complete"] is False


def test_an_interrupt_before_the_installer_changes_nothing(
    tmp_path: Path, wheels: tuple[str, str]
) -> None:
    env = FakeEnvironment(tmp_path, {"torch": TORCH_OLD})
    env.on_install = lambda argv: (_ for _ in ()).throw(
        Interrupted("SIGTERM", Completed(1, "", ""))
    )
    with pytest.raises(InstallInterrupted) as caught, session(env) as it:
        it.install(plan_for(*wheels))
    assert caught.value.details == ("changed: nothing",)
    assert caught.value.hint is None
    # Nothing to undo: the record is finished, and the next install records afresh.
    assert json.loads((tmp_path / "torchfit-state.json").read_text())["complete"] is True


def test_a_hash_mismatch_runs_no_installer_and_records_nothing(
    tmp_path: Path, wheels: tuple[str, str]
) -> None:
    env = FakeEnvironment(tmp_path, {"torch": TORCH_OLD})
    url, _ = wheels
    with pytest.raises(InstallFailed, match="does not match the sha256"), session(env) as it:
        it.install(plan_for(url, "0" * 64))
    assert env.installs == []
    assert not (tmp_path / "torchfit-state.json").exists()


def test_restore_puts_back_the_recorded_wheel(tmp_path: Path, wheels: tuple[str, str]) -> None:
    url, digest = wheels
    old = Held("torch", "2.1.0+cpu", url, digest)
    env = FakeEnvironment(tmp_path, {"torch": old})
    record = new_record(sys.executable, "pip", state(tmp_path, old), None)
    save_record([tmp_path / "torchfit-state.json"], record)
    env.family = {"torch": Held("torch", "2.2.0+cpu"), "torchaudio": Held("torchaudio", "2.2.0")}

    def reinstall(argv: Sequence[str]) -> Completed:
        if "uninstall" in argv:
            assert argv[-1] == "torchaudio"
            env.family.pop("torchaudio")
        else:
            assert argv[4].startswith("torch @ file:///") and argv[4].endswith(digest)
            env.family["torch"] = old
        return Completed(0, "", "")

    env.on_install = reinstall
    with session(env) as it:
        result = it.restore()
    assert result.changes == ("torch: 2.2.0+cpu -> 2.1.0+cpu", "torchaudio: 2.2.0 -> (none)")
    assert [c[3] for c in result.commands] == ["uninstall", "install"]
    assert result.restored == {"torch": "2.1.0+cpu", "torchaudio": None, "torchvision": None}


def test_restore_without_a_record_says_so(tmp_path: Path) -> None:
    env = FakeEnvironment(tmp_path, {})
    with (
        pytest.raises(TorchfitError, match=r"no torchfit record for .*: nothing to"),
        session(env) as it,
    ):
        it.restore()


def test_a_planned_package_left_half_installed_is_uninstalled_first(
    tmp_path: Path, wheels: tuple[str, str]
) -> None:
    # pip stopped while byte-compiling 2.1.0: its files are there, so pip would call the
    # requirement satisfied and leave it half-done.
    env = FakeEnvironment(tmp_path, {"torch": Held("torch", "2.1.0+cpu", intact=False)})

    def install(argv: Sequence[str]) -> Completed:
        if "uninstall" in argv:
            env.family.pop("torch")
        else:
            env.family["torch"] = Held("torch", "2.1.0+cpu")
        return Completed(0, "", "")

    env.on_install = install
    with session(env) as it:
        result = it.install(plan_for(*wheels))
    assert [argv[3] for argv in env.installs] == ["uninstall", "install"]
    assert env.installs[0][-1] == "torch"
    assert result.changes == ("torch: 2.1.0+cpu -> 2.1.0+cpu (reinstalled: it was incomplete)",)
    assert result.verification is not None and result.verification.ok
