"""Running other programs: one contract for every child process, and never a shell.

pip, uv, nvidia-smi, nvcc and the probes inside the target interpreter all go through a
:data:`Runner`, so a test (or a caller) replaces one function to see or fake them all.
"""

from __future__ import annotations

import collections
import subprocess
from collections.abc import Mapping, Sequence
from typing import Callable, NamedTuple, Optional, Protocol

#: How many lines of a streamed command's output are kept for error messages.
_KEPT_LINES = 200


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


class Runner(Protocol):
    """The seam: run ``argv`` (no shell), wait at most ``timeout`` seconds.

    ``env`` replaces the environment when given. ``on_output`` streams: each line of the
    command's merged stdout and stderr is handed over as it arrives (and also kept in
    ``stdout``). A runner never raises for a missing program or a timeout: it returns a
    :class:`Completed` whose ``failure`` says so.
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
    """The real :class:`Runner`: a subprocess per call."""
    environment = dict(env) if env is not None else None
    try:
        if on_output is None:
            done = subprocess.run(
                list(argv),
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
                env=environment,
                check=False,
                stdin=subprocess.DEVNULL,
            )
            return Completed(done.returncode, done.stdout, done.stderr)
        return _streamed(argv, timeout, environment, on_output)
    except FileNotFoundError:
        return Completed(127, "", "", "not found")
    except subprocess.TimeoutExpired:
        return Completed(124, "", "", f"timed out after {timeout:g}s")
    except OSError as exc:
        return Completed(126, "", "", f"could not run: {exc}")


def _streamed(
    argv: Sequence[str],
    timeout: float | None,
    env: dict[str, str] | None,
    on_output: Callable[[str], None],
) -> Completed:
    kept: collections.deque[str] = collections.deque(maxlen=_KEPT_LINES)
    with subprocess.Popen(
        list(argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        env=env,
    ) as process:
        assert process.stdout is not None
        try:
            for line in process.stdout:
                kept.append(line)
                on_output(line.rstrip("\n"))
            returncode = process.wait(timeout=timeout)
        except BaseException:
            # Ctrl-C or a timeout: the child must not outlive us, half-done.
            process.kill()
            process.wait()
            raise
    return Completed(returncode, "".join(kept), "")
