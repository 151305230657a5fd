"""The installer's own output, bars included, reaches the user's terminal as it comes.

When torchfit's stderr is a terminal the real runner runs the child on a pseudo-terminal
and copies its bytes through, made safe; a copy of the last lines is kept for the error
message. Here the "user's terminal" is a real pseudo-terminal the test opens and reads.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from hypothesis import given
from hypothesis import strategies as st

from support import (
    IndexServer,
    build_wheel,
    isolated_env,
    make_venv,
    serve_directory,
    standin_torch,
    write_index,
)
from torchfit._runner import Completed, Interrupted, run
from torchfit._terminal import ScreenTail, Terminal, TerminalFilter, output_to
from torchfit.environment.install import WheelPin, fetch_wheels, run_install
from torchfit.errors import InstallFailed

pytestmark = pytest.mark.skipif(os.name == "nt", reason="pseudo-terminals are POSIX")


def filtered(*pieces: bytes) -> str:
    screen = TerminalFilter()
    return "".join(screen.feed(piece) for piece in pieces) + screen.close()


# -- the filter: what may reach the terminal ------------------------------------------------


@pytest.mark.parametrize(
    "raw,safe",
    [
        # What rich (pip) and indicatif (uv) draw bars with passes as it is.
        (b"\r\x1b[2K\x1b[1;32m 50%\x1b[0m\x1b[?25l", "\r\x1b[2K\x1b[1;32m 50%\x1b[0m\x1b[?25l"),
        (b"\x1b[1A\x1b[2K\x1b[K\x1b[J\x1b[3G\x1b[38;5;208mx\x1b[?25h\n", None),
        (b"spin \x08\x08\tok\n", None),
        # Window title, hyperlinks, clipboard, device control strings: dropped whole.
        (b"a\x1b]0;pwned\x07b\x1b]8;;http://x/\x1b\\c\x1b]52;c;aGk=\x07\n", "abc\n"),
        (b"a\x1bPq#0;2;0;0;0\x1b\\b\x1b_apc\x1b\\\n", "ab\n"),
        # Clearing the screen or scrollback, resets, scroll regions, queries: dropped.
        (b"a\x1b[2J\x1b[3J\x1b[H\x1bc\x1b[1;5r\x1b[6n\x1b[?1049h\x1b(0b\n", "ab\n"),
        # Other controls and C1 controls are escaped, as the rest of the output escapes them.
        (
            b"bell\x07 so\x0e \xc2\x9b2J \xe2\x80\xaeevil\n",
            "bell\\x07 so\\x0e \\x9b2J \\u202eevil\n",
        ),
        (b"lone \x1b\n", "lone \\x1b\n"),
        (b"bad utf-8 \xff\n", "bad utf-8 \ufffd\n"),
        # Credentials in URLs are hidden.
        (b"GET https://user:s3cret@h/whl x\n", "GET https://user:****@h/whl x\n"),
        # An escape left unfinished at the end is dropped, not shown half.
        (b"end\x1b]0;unfinished", "end"),
    ],
)
def test_the_filter_keeps_what_bars_need_and_nothing_else(raw: bytes, safe: str | None) -> None:
    assert filtered(raw) == (raw.decode() if safe is None else safe)


STREAM = [
    b"Collecting torch\n",
    b"\r\x1b[2K\x1b[32m 12.5/190 MB\x1b[0m eta 0:00:05",
    b"\x1b]0;title\x07\x1b[2J",
    "\u2502 ok \u202e\n".encode(),
    b"ERROR: could not fetch https://user:s3cret@127.0.0.1/whl/t.whl\xc2\x9b\n",
    b"\x1b[1A\x1b[2K\x1b[?25h done",
]


@given(st.lists(st.integers(0, sum(map(len, STREAM))), max_size=12), st.data())
def test_the_stream_reads_the_same_however_it_is_split(
    cuts: list[int], data: st.DataObject
) -> None:
    whole = b"".join(STREAM)
    points = sorted({0, len(whole), *cuts})
    screen = TerminalFilter()
    out = []
    for start, end in zip(points, points[1:]):
        out.append(screen.feed(whole[start:end]))
        if data.draw(st.booleans()):  # the child paused here
            out.append(screen.idle())
    out.append(screen.close())
    assert "".join(out) == filtered(whole)
    assert "s3cret" not in filtered(whole) and "title" not in filtered(whole)


def test_a_pause_shows_a_bars_last_frame_but_not_half_a_credential() -> None:
    screen = TerminalFilter()
    assert screen.feed(b"\r 42% eta 0:00:05") == "\r 42% eta "
    assert screen.idle() == "0:00:05"
    assert screen.feed(b" see https://user:s3") == " see "
    assert screen.idle() == ""  # could still be a password
    assert screen.feed(b"cret@h/x ") == "https://user:****@h/x "
    # A scheme shown at a pause still hides the credentials that follow it.
    assert screen.feed(b"at https") == "at "
    assert screen.idle() == "https"
    assert screen.feed(b"://user:s3cret@h/ ") == "://user:****@h/ "


def test_the_kept_copy_is_the_last_lines_as_drawn() -> None:
    tail = ScreenTail(lines=3, chars=100)
    tail.add("one\ntwo\r\x1b[2Ktwo redrawn\n")
    assert tail.text() == "one\ntwo redrawn\n"
    tail.add("".join(f"line {n}\n" for n in range(10)) + "open")
    assert tail.text() == "line 7\nline 8\nline 9\nopen"  # 3 lines, and the open one
    tail.add("x" * 50 + "\n" + "y" * 60 + "\n")
    assert tail.text() == "y" * 60 + "\n"  # about 100 characters: whole lines, the last kept
    tail.add(("\r" + "z" * 30) * 1000)  # a bar redrawn for ever without an end of line
    assert tail.text().endswith("z" * 30) and len(tail.text()) <= 100 + 61


# -- the runner on a real pseudo-terminal ---------------------------------------------------


class UserTerminal:
    """A pseudo-terminal standing for the user's: torchfit writes to ``stream``; what the
    terminal received is read from the other side into ``received``."""

    def __init__(self, rows: int = 40, columns: int = 123) -> None:
        import fcntl
        import struct

        leader, follower = os.openpty()
        modes = termios.tcgetattr(follower)
        modes[1] &= ~termios.ONLCR  # the bytes as written
        termios.tcsetattr(follower, termios.TCSANOW, modes)
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.leader = leader
        self.stream: IO[str] = open(follower, "w", encoding="utf-8", errors="strict")  # noqa: SIM115
        self._received = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.leader, 1 << 16)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self._received += data

    def received(self) -> bytes:
        with self._lock:
            return bytes(self._received)

    def wait_for(self, text: bytes, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while text not in self.received():
            assert time.monotonic() < deadline, f"{text!r} never arrived: {self.received()!r}"
            time.sleep(0.01)

    def close(self) -> bytes:
        """Everything the terminal received."""
        self.stream.close()
        self._reader.join(timeout=10)
        os.close(self.leader)
        return self.received()


@pytest.fixture
def terminal() -> Iterator[UserTerminal]:
    user = UserTerminal()
    try:
        yield user
    finally:
        if not user.stream.closed:
            user.close()


# Draws a bar; after the first frame waits for ``go`` (the test sees that frame first).
BAR = r"""
import os, sys, time
out = sys.stdout
print("tty", out.isatty(), sys.stderr.isatty(), os.get_terminal_size().columns, flush=True)
for percent in (10, 50, 100):
    out.write(f"\r\x1b[2K\x1b[32m{percent:3d}%\x1b[0m")
    out.flush()
    deadline = time.monotonic() + 30
    while percent == 10 and not os.path.exists(sys.argv[1]):
        if time.monotonic() > deadline:
            sys.exit(9)
        time.sleep(0.01)
out.write("\x1b]0;pwned\x07\x1b[2J\n")
out.flush()
sys.stderr.write("ERROR: https://user:s3cret@h/x.whl: 403\n")
sys.exit(int(sys.argv[2]))
"""


def test_a_childs_bar_reaches_the_terminal_as_it_is_drawn(
    terminal: UserTerminal, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    shown = output_to(terminal.stream)
    assert isinstance(shown, Terminal)
    result: list[object] = []
    runner = threading.Thread(
        target=lambda: result.append(
            run([sys.executable, "-c", BAR, str(go), "0"], on_output=shown, timeout=60)
        )
    )
    runner.start()
    terminal.wait_for(b"\x1b[32m 10%\x1b[0m")  # streamed: the child has not finished yet
    assert not result
    go.touch()
    runner.join(timeout=60)
    received = terminal.close().decode()
    assert received == (
        "tty True True 123\n"
        "\r\x1b[2K\x1b[32m 10%\x1b[0m\r\x1b[2K\x1b[32m 50%\x1b[0m\r\x1b[2K\x1b[32m100%\x1b[0m\n"
        "ERROR: https://user:****@h/x.whl: 403\n"
    )
    (done,) = result
    assert done == Completed(
        0, "tty True True 123\n100%\nERROR: https://user:****@h/x.whl: 403\n", ""
    )


def test_a_failure_on_a_terminal_carries_the_tail(terminal: UserTerminal, tmp_path: Path) -> None:
    (tmp_path / "go").touch()
    command = [sys.executable, "-c", BAR, str(tmp_path / "go"), "1"]
    with pytest.raises(InstallFailed) as caught:
        run_install(command, run, output_to(terminal.stream))
    assert caught.value.details[-2:] == ("100%", "ERROR: https://user:****@h/x.whl: 403")
    assert b"ERROR: https://user:****@h/x.whl: 403\n" in terminal.close()


def test_the_terminal_is_left_ready_for_the_next_line(terminal: UserTerminal) -> None:
    script = "import sys; sys.stdout.write('\\x1b[?25l 99%')"
    done = run([sys.executable, "-c", script], on_output=output_to(terminal.stream), timeout=60)
    assert done.returncode == 0
    assert terminal.close() == b"\x1b[?25l 99%\x1b[?25h\n"  # cursor shown again, a new line


def test_ctrl_c_reaches_a_child_on_a_terminal(terminal: UserTerminal) -> None:
    child = (
        "import signal, sys, time\n"
        "def stop(signum, frame):\n"
        "    print('stopped by', signum, flush=True); sys.exit(3)\n"
        "signal.signal(signal.SIGINT, stop)\n"
        "print('ready', flush=True); time.sleep(30)\n"
    )

    class Interrupting(Terminal):
        def show(self, safe: str) -> None:
            super().show(safe)
            if "ready" in safe:
                os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(Interrupted) as caught:
        run([sys.executable, "-c", child], on_output=Interrupting(terminal.stream), timeout=60)
    assert caught.value.completed.returncode == 3  # it ended its own way, not killed
    assert caught.value.completed.stdout == f"ready\nstopped by {int(signal.SIGINT)}\n"


def test_a_timeout_and_a_missing_program_on_a_terminal_leak_nothing(
    terminal: UserTerminal,
) -> None:
    shown = output_to(terminal.stream)
    before = set(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else set()
    done = run(
        [sys.executable, "-c", "print('x', flush=True); import time; time.sleep(60)"],
        on_output=shown,
        timeout=1,
    )
    assert done.returncode == 124 and done.failure == "timed out after 1s"
    assert done.stdout == "x\n"
    assert run(["/nonexistent/pip"], on_output=shown).failure == "not found"
    if before:
        time.sleep(0.1)  # the reader closes its side as it ends
        assert set(os.listdir("/proc/self/fd")) <= before


def test_a_download_on_a_terminal_shows_its_progress(
    terminal: UserTerminal, tmp_path: Path
) -> None:
    def download(url: str, dest: Path) -> str:
        with open(dest, "wb") as out:
            out.write(b"\0" * 2_500_000)
            out.flush()
            terminal.wait_for(b"\r\x1b[2K  2.5 MB  ")  # drawn while it is under way
            out.write(b"\0" * 500_000)
        return hashlib.sha256(dest.read_bytes()).hexdigest()

    pin = WheelPin("torch", "https://user:s3cret@h/whl/torch-2.5.1-py3-none-any.whl", None)
    (local,) = fetch_wheels([pin], tmp_path, download, output_to(terminal.stream))
    assert local.url == (tmp_path / "torch-2.5.1-py3-none-any.whl").as_uri()
    received = terminal.close().decode()
    assert received.startswith(
        "torchfit: downloading https://user:****@h/whl/torch-2.5.1-py3-none-any.whl\n"
    )
    last = received.rsplit("\r", 1)[-1]
    assert re.fullmatch(r"\x1b\[2K  3\.0 MB  [0-9.]+ MB/s\n", last), received


def test_no_terminal_means_plain_lines(tmp_path: Path) -> None:
    with open(tmp_path / "log", "w", encoding="utf-8") as log:
        shown = output_to(log)
        assert not isinstance(shown, Terminal)
        script = "print('Collecting torch\\x1b]0;t\\x07'); print('Successfully installed')"
        done = run([sys.executable, "-c", script], on_output=shown, timeout=60)
    assert done.returncode == 0
    written = (tmp_path / "log").read_text()
    assert written == "Collecting torch\\x1b]0;t\\x07\nSuccessfully installed\n"


# -- the CLI with a real pip and uv ---------------------------------------------------------


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexServer]:
    root = tmp_path_factory.mktemp("index")
    folder = root / "whl" / "cpu" / "torch"
    folder.mkdir(parents=True)
    standin_torch(folder, "1.7.1+cpu", cuda=None)
    write_index(folder)
    with serve_directory(root) as server:
        yield server


def torchfit_on_a_terminal(
    terminal: UserTerminal | None, *argv: str
) -> tuple[subprocess.CompletedProcess[bytes], bytes]:
    """The CLI as a subprocess with its stderr on ``terminal`` (else a pipe): its result
    (stdout captured) and what the terminal (or the pipe) received."""
    done = subprocess.run(
        [sys.executable, "-m", "torchfit", *argv],
        stdout=subprocess.PIPE,
        stderr=terminal.stream if terminal else subprocess.PIPE,
        env=isolated_env(),
        timeout=300,
    )
    return done, terminal.close() if terminal else done.stderr


@pytest.mark.integration
def test_pips_own_download_bar_reaches_the_terminal(terminal: UserTerminal, tmp_path: Path) -> None:
    # pip draws a bar for a download of more than 40 kB, when its output is a terminal.
    data = {"bigdep/__init__.py": f"DATA = {os.urandom(300_000).hex()!r}\n"}
    wheel = build_wheel(tmp_path / "files", "bigdep", "1.0", files=data)
    venv = make_venv(tmp_path / "venv")
    with serve_directory(wheel.parent) as server:
        command = [str(venv), "-m", "pip", "install", "--no-deps", f"{server.url}/{wheel.name}"]
        done = run(command, env=isolated_env(), on_output=output_to(terminal.stream), timeout=300)
    assert done.returncode == 0, done.stdout
    received = terminal.close().decode()
    bar = received[received.index("\x1b[?25l") : received.index("\x1b[?25h")]
    assert "\r\x1b[2K" in bar and "\u2501" in bar and " MB" in bar, received  # rich's frames
    assert "Successfully installed bigdep-1.0" in done.stdout
    frames = [line for line in done.stdout.splitlines() if "\u2501" in line]
    assert len(frames) == 1 and "\x1b" not in frames[0]  # kept: the bar's last frame, drawn


@pytest.mark.integration
@pytest.mark.parametrize("installer", ["pip", "uv"])
@pytest.mark.parametrize("on_terminal", [True, False], ids=["terminal", "pipe"])
def test_the_installers_own_output_is_streamed(
    index: IndexServer, tmp_path: Path, installer: str, on_terminal: bool
) -> None:
    venv = make_venv(tmp_path / "venv")
    user = UserTerminal() if on_terminal else None
    argv = ["install", "torch==1.7.1", "--variant", "cpu", "--python", str(venv)]
    argv += ["--pytorch-index", f"{index.url}/whl", "--installer", installer, "--json"]
    done, stderr = torchfit_on_a_terminal(user, *argv)
    assert done.returncode == 0, stderr
    assert json.loads(done.stdout)["verification"]["ok"] is True  # stdout: the JSON alone
    text = stderr.decode()
    drawn = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
    if installer == "pip":
        assert "Successfully installed torch-1.7.1+cpu" in drawn
    else:
        assert "Installed 1 package" in drawn and " + torch==1.7.1+cpu" in drawn
    assert "\x1b]" not in text and "\x1b[2J" not in text
    # On a terminal torchfit draws its download's progress; then uv draws its spinner and
    # bar and colours its lines (pip, installing a local file, draws nothing).
    progress = re.search(r"\r\x1b\[2K  [0-9.]+ MB  [0-9.]+ MB/s\n", text)
    assert bool(progress) == on_terminal
    installers_part = text[progress.end() :] if progress else text
    assert ("\r\x1b[2K" in installers_part) == (on_terminal and installer == "uv")


@pytest.mark.integration
def test_quiet_keeps_the_installer_silent_but_its_failure_told(
    index: IndexServer, tmp_path: Path
) -> None:
    venv = make_venv(tmp_path / "venv")
    argv = ["install", "torch==1.7.1", "--variant", "cpu", "--python", str(venv)]
    argv += ["--pytorch-index", f"{index.url}/whl"]
    done, stderr = torchfit_on_a_terminal(UserTerminal(), *argv, "-q")
    assert done.returncode == 0, stderr
    assert b"Successfully installed" not in stderr
    # A failure says what the installer said last, -q or not.
    done, stderr = torchfit_on_a_terminal(
        UserTerminal(), *argv, "--force", "-q", "--", "--no-such-pip-option"
    )
    assert done.returncode == 1
    lines = stderr.decode().splitlines()
    assert lines[0].startswith("error: the installer failed (exit 2): ")
    assert "  no such option: --no-such-pip-option" in lines
