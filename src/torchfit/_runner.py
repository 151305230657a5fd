"""Running other programs: one result type, one runner signature, no shell ever."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from typing import Callable, NamedTuple, Optional


class Completed(NamedTuple):
    """What a finished command left behind."""

    returncode: int
    stdout: str
    stderr: str

    def tail(self, lines: int = 3) -> str:
        """The last lines it wrote (stderr first), for error messages."""
        text = (self.stderr or self.stdout).strip().splitlines()
        return "\n".join(text[-lines:]) if text else "no output"


#: The seam: ``run(argv, timeout)``. Tests and callers pass their own.
Runner = Callable[[Sequence[str], Optional[float]], Completed]


def run_command(argv: Sequence[str], timeout: float | None = None) -> Completed:
    """Run ``argv`` and capture its text output.

    Raises FileNotFoundError when the program is missing, and subprocess.TimeoutExpired
    (after killing it) when it runs longer than ``timeout`` seconds.
    """
    done = subprocess.run(
        list(argv), capture_output=True, text=True, errors="replace", timeout=timeout, check=False
    )
    return Completed(done.returncode, done.stdout, done.stderr)


def run_reporting(argv: Sequence[str], timeout: float | None = None) -> Completed:
    """Like :func:`run_command`, but a program that cannot start or runs too long is a result
    (exit 127 or 124, as a shell reports them) rather than an exception."""
    try:
        return run_command(argv, timeout)
    except OSError as exc:
        return Completed(127, "", str(exc))
    except subprocess.TimeoutExpired:
        return Completed(124, "", f"timed out after {timeout:g}s")
