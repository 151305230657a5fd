"""Running other programs: one contract for every child process, and never a shell.

pip, uv, nvidia-smi, nvcc and the probes inside the target interpreter all go through a
:data:`Runner`, so a test (or a caller) replaces one function to see or fake them all.

Ctrl-C (SIGINT) or SIGTERM while a child runs is passed on to the child, which then gets
:data:`GRACE_SECONDS` to end the way it ends on that signal (pip stops between files and
removes its temporary folders) before it is killed; only then does :class:`Interrupted`
propagate. On POSIX each child runs in its own session, so a terminal's Ctrl-C reaches
it once, from here, and never twice (a second SIGINT would cut short pip's own clean-up).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Any, Callable, NamedTuple, Optional, Protocol

from torchfit._terminal import ScreenTail, Terminal, TerminalFilter

#: A streamed line longer than this is handed over in pieces of this length.
_LINE_PIECE = 1 << 16
#: Seconds of quiet on a terminal after which held-back text is shown anyway.
_PAUSE = 0.05

#: Seconds a child gets to end after the signal that stopped us is passed on to it.
GRACE_SECONDS = 30.0
_AFTER_KILL = 2.0  # output still owed after SIGKILL: past this, the child is stuck in the kernel

_POSIX = os.name != "nt"


class Completed(NamedTuple):
    """What a finished command left behind.

    ``failure`` says why a command did not run to its end: ``"not found"``, ``"timed out
    after 10s"`` or the OS error; its ``returncode`` is then 127 or 124, as a shell reports.
    """

    returncode: int
    stdout: str
    stderr: str
    failure: str | None = None

    def tail(self, lines: int = 3) -> str:
        """The last lines it wrote (stderr first), for error messages."""
        text = (self.failure or self.stderr or self.stdout).strip().splitlines()
        return "\n".join(text[-lines:]) if text else "no output"


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived while a child ran; raised once that child has ended.

    ``signal_name`` is ``"SIGINT"`` or ``"SIGTERM"``; ``completed`` is what the child left
    behind (its exit status and output), as far as it got.
    """

    def __init__(self, signal_name: str, completed: Completed) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name
        self.completed = completed


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised by our handler so that it unwinds like Ctrl-C."""


class Runner(Protocol):
    """The seam: run ``argv`` (no shell), wait at most ``timeout`` seconds.

    ``env`` replaces the environment when given. ``on_output`` streams: each line of the
    command's merged stdout and stderr is handed over as it arrives (and also kept in
    ``stdout``). A runner never raises for a missing program or a timeout: it returns a
    :class:`Completed` whose ``failure`` says so. On SIGINT or SIGTERM it raises a
    ``KeyboardInterrupt`` (the real one: :class:`Interrupted`) after the child has ended.
    """

    def __call__(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        on_output: Optional[Callable[[str], None]] = None,  # noqa: UP045 -- Protocol on 3.9
    ) -> Completed: ...


def run(
    argv: Sequence[str],
    *,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    on_output: Callable[[str], None] | None = None,
) -> Completed:
    """The real :class:`Runner`: a subprocess per call. When ``on_output`` is a
    :class:`~torchfit._terminal.Terminal` (on POSIX), the child writes to a pseudo-terminal
    and its output, bars and colours included, is copied there, made safe."""
    with sigterm_raises():
        if _POSIX and isinstance(on_output, Terminal):
            return _on_terminal(argv, timeout, env, on_output)
        try:
            process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT if on_output is not None else subprocess.PIPE,
                text=True,
                errors="replace",
                env=dict(env) if env is not None else None,
                start_new_session=_POSIX,
            )
        except FileNotFoundError:
            return Completed(127, "", "", "not found")
        except (OSError, ValueError) as exc:  # ValueError: a NUL in an argument
            return Completed(126, "", "", f"could not run: {exc}")
        with process:
            if on_output is None:
                return _captured(process, timeout)
            assert process.stdout is not None
            tail = ScreenTail()
            errors: list[BaseException] = []
            reader = threading.Thread(
                target=_pump, args=(process.stdout, tail, on_output, errors), daemon=True
            )
            reader.start()
            return _supervised(process, timeout, reader, tail, errors)


def _kill_group(process: subprocess.Popen[Any]) -> None:
    """Kill the child and everything it started (it leads its own session on POSIX)."""
    if _POSIX:
        try:
            os.killpg(process.pid, signal.SIGKILL)
            return
        except OSError:
            pass  # already gone, or not a group leader after all
    process.kill()


def _captured(process: subprocess.Popen[str], timeout: float | None) -> Completed:
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)  # a wrapper script's own children hold the pipes open too
        try:
            stdout, stderr = process.communicate(timeout=_AFTER_KILL)
        except subprocess.TimeoutExpired:  # stuck in the kernel: give up on its output
            stdout, stderr = "", ""
        return Completed(124, stdout or "", stderr or "", f"timed out after {timeout:g}s")
    except KeyboardInterrupt as stop:
        name = _forward(process, stop)
        try:
            stdout, stderr = process.communicate(timeout=GRACE_SECONDS)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):  # too slow, or a second Ctrl-C
            process.kill()
            stdout, stderr = process.communicate()
        raise Interrupted(name, Completed(process.returncode, stdout, stderr)) from None
    return Completed(process.returncode, stdout, stderr)


def _supervised(
    process: subprocess.Popen[Any],
    timeout: float | None,
    reader: threading.Thread,
    tail: ScreenTail,
    errors: list[BaseException],
) -> Completed:
    """Wait for a child whose output ``reader`` copies into ``tail``: for its end, a
    timeout or a signal. The thread reads, so that waiting never blocks on the output,
    and the child never blocks on a full pipe or terminal."""
    try:
        returncode = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        process.wait()
        reader.join(timeout=5)
        return Completed(124, tail.text(), "", f"timed out after {timeout:g}s")
    except KeyboardInterrupt as stop:
        name = _forward(process, stop)
        try:
            process.wait(timeout=GRACE_SECONDS)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            process.kill()
            process.wait()
        reader.join(timeout=5)
        raise Interrupted(name, Completed(process.returncode, tail.text(), "")) from None
    reader.join(timeout=5)  # the rest of the output, unless a grandchild holds it open
    if errors:
        raise errors[0]
    return Completed(returncode, tail.text(), "")


def _pump(
    stream: IO[str],
    tail: ScreenTail,
    on_output: Callable[[str], None],
    errors: list[BaseException],
) -> None:
    # A line is read in pieces of at most _LINE_PIECE: one with no end uses no more memory.
    for line in iter(lambda: stream.readline(_LINE_PIECE), ""):
        tail.add(line)
        if not errors:
            try:
                on_output(line.rstrip("\n"))
            except Exception as exc:  # handed to the caller's thread; reading goes on
                errors.append(exc)


def _on_terminal(
    argv: Sequence[str], timeout: float | None, env: Mapping[str, str] | None, shown: Terminal
) -> Completed:
    """Run ``argv`` with its stdout and stderr on a new pseudo-terminal the size of
    ``shown``, and copy what it writes there (see :func:`_copy`)."""
    import fcntl
    import struct
    import termios

    leader, follower = os.openpty()
    try:
        rows, columns = shown.size()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        modes = termios.tcgetattr(follower)
        modes[1] &= ~termios.ONLCR  # the bytes as the child wrote them: no "\n" -> "\r\n"
        termios.tcsetattr(follower, termios.TCSANOW, modes)
        # No controlling terminal (a new session, the descriptors only inherited): Ctrl-C
        # at the user's terminal reaches torchfit, which passes it on, once.
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=follower,
            stderr=follower,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
    except FileNotFoundError:
        os.close(leader)
        return Completed(127, "", "", "not found")
    except (OSError, ValueError) as exc:
        os.close(leader)
        return Completed(126, "", "", f"could not run: {exc}")
    finally:
        os.close(follower)  # the child's copies only: the end of its output is seen
    tail = ScreenTail()
    errors: list[BaseException] = []
    reader = threading.Thread(target=_copy, args=(leader, shown, tail, errors), daemon=True)
    reader.start()
    with process:
        return _supervised(process, timeout, reader, tail, errors)


def _copy(leader: int, shown: Terminal, tail: ScreenTail, errors: list[BaseException]) -> None:
    """Copy a pseudo-terminal's output to ``shown`` and ``tail`` as it comes, made safe,
    until every writer has closed it; held text is let go after a pause (a bar's frame)."""
    import selectors

    screen = TerminalFilter()

    def show(safe: str) -> None:
        tail.add(safe)
        if safe and not errors:
            try:
                shown.show(safe)
            except Exception as exc:  # handed to the caller's thread; reading goes on
                errors.append(exc)

    with selectors.DefaultSelector() as waiting:
        waiting.register(leader, selectors.EVENT_READ)
        try:
            while True:
                if not waiting.select(_PAUSE):
                    show(screen.idle())
                    continue
                try:
                    data = os.read(leader, 1 << 16)
                except OSError:  # EIO on Linux: the last writer has closed the terminal
                    break
                if not data:
                    break
                show(screen.feed(data))
        finally:
            show(screen.close())
            waiting.unregister(leader)
            os.close(leader)
            if not errors:
                try:
                    shown.end()
                except Exception as exc:
                    errors.append(exc)


def _forward(process: subprocess.Popen[str], stop: KeyboardInterrupt) -> str:
    """Pass the signal that stopped us on to the child; return its name."""
    signum = signal.SIGTERM if isinstance(stop, _Terminated) else signal.SIGINT
    if process.poll() is None:
        if _POSIX:
            process.send_signal(signum)
        elif signum == signal.SIGTERM:
            process.terminate()
        # Windows: the console already gave Ctrl-C to every process attached to it.
    return signum.name


def signal_name(stop: KeyboardInterrupt) -> str:
    """``"SIGTERM"`` when ``stop`` came from SIGTERM (see :func:`sigterm_raises`), else
    ``"SIGINT"``."""
    if isinstance(stop, Interrupted):
        return stop.signal_name
    return "SIGTERM" if isinstance(stop, _Terminated) else "SIGINT"


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block SIGTERM unwinds like Ctrl-C (a ``KeyboardInterrupt``), so that what
    is under way is stopped and cleaned up, a child is passed the signal and waited for.

    Only where SIGTERM still has its default action (the caller set no handler of its own),
    and only in the main thread (the only one that can set signal handlers); nested blocks
    leave the outer one's handler alone.
    """
    ours = (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    )
    if ours:
        signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        if ours:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated()
