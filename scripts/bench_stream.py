"""What it costs to show an installer's output as it runs, against capturing it.

A child writes ``--mb`` megabytes of installer-like output (lines, and bar frames redrawn
after ``\\r`` with colours); the real runner takes it captured, streamed line by line, and
copied through a pseudo-terminal to a terminal (another pseudo-terminal, drained by a
thread, stands for it). Prints the seconds of each, the best of ``--repeat`` runs, and MB/s.

    python scripts/bench_stream.py --mb 100
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable

from torchfit._runner import run
from torchfit._terminal import Terminal, output_to

CHILD = r"""
import sys
out = sys.stdout.buffer
line = b"Collecting nvidia-cudnn-cu12==9.1.0.70 (from torch) " + b"x" * 40 + b"\n"
frame = b"\r\x1b[2K   \x1b[38;5;197m" + b"\xe2\x94\x81" * 20 + b"\x1b[0m 75.5/190.9 MB 25.3 MB/s"
chunk = (line * 8 + frame * 4) * 64
left = int(sys.argv[1]) * 1_000_000
while left > 0:
    out.write(chunk[:left])
    left -= len(chunk)
out.flush()
"""


def drained_terminal() -> tuple[Terminal, Callable[[], None]]:
    """A Terminal on a fresh pseudo-terminal whose other side a thread reads and drops."""
    leader, follower = os.openpty()
    stream = open(follower, "w", encoding="utf-8")  # noqa: SIM115 -- closed by stop()

    def drain() -> None:
        try:
            while os.read(leader, 1 << 16):
                pass
        except OSError:
            pass

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()

    def stop() -> None:
        stream.close()
        reader.join(timeout=10)
        os.close(leader)

    shown = output_to(stream)
    assert isinstance(shown, Terminal)
    return shown, stop


def timed(megabytes: int, how: str) -> float:
    argv = [sys.executable, "-c", CHILD, str(megabytes)]
    stop: Callable[[], None] = lambda: None  # noqa: E731
    if how == "captured":
        on_output = None
    elif how == "lines":
        devnull = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
        on_output, stop = output_to(devnull), devnull.close
    else:
        on_output, stop = drained_terminal()
    started = time.perf_counter()
    done = run(argv, on_output=on_output, timeout=600)
    took = time.perf_counter() - started
    stop()
    assert done.returncode == 0, done.tail()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100, help="megabytes the child writes")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best counts")
    args = parser.parse_args()
    kinds = ["captured", "lines"] + (["terminal"] if os.name != "nt" else [])
    best = {how: min(timed(args.mb, how) for _ in range(args.repeat)) for how in kinds}
    for how, seconds in best.items():
        ratio = seconds / best["captured"]
        print(f"{how:>9}: {seconds:6.2f} s  {args.mb / seconds:7.1f} MB/s  x{ratio:.2f}")


if __name__ == "__main__":
    main()
