"""How long `torchfit plan` takes, cold and warm, against a loopback copy of the index.

Serves wheel_index_snapshots/ at http://127.0.0.1:PORT/whl (the test suite's server), then
times the CLI as a user runs it (a fresh process each time) for a few questions:

    python scripts/bench_plan.py [--repeat 5]

Cold: an empty cache. Warm: the cache from the cold run, revalidated with ETag (304s).
Offline: --offline over the same cache. Prints medians and the pages each run asked for.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support import serve_directory  # noqa: E402

QUESTIONS = {
    "pinned 1.7.1, CUDA 10.1": [
        "torch==1.7.1",
        "--cuda",
        "10.1",
        "--python-version",
        "3.8",
        "--platform",
        "linux_x86_64",
    ],
    "1.7.1 + torchvision": [
        "torch==1.7.1",
        "torchvision",
        "--cuda",
        "10.1",
        "--python-version",
        "3.8",
        "--platform",
        "linux_x86_64",
    ],
    "unpinned, CUDA 12.8": [
        "torch",
        "--cuda",
        "12.8",
        "--python-version",
        "3.12",
        "--platform",
        "manylinux_2_28_x86_64",
    ],
    "unpinned, no GPU (cpu page)": [
        "torch",
        "--variant",
        "cpu",
        "--python-version",
        "3.12",
        "--platform",
        "manylinux_2_28_x86_64",
    ],
    "unpinned, CUDA 13.0": [
        "torch",
        "--cuda",
        "13.0",
        "--python-version",
        "3.12",
        "--platform",
        "manylinux_2_28_x86_64",
    ],
}


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "torchfit", "plan", *argv], capture_output=True, text=True, env=env
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"plan failed: {done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    with tempfile.TemporaryDirectory() as scratch:
        shutil.copytree(ROOT / "wheel_index_snapshots", Path(scratch) / "whl")
        with serve_directory(Path(scratch)) as server:
            base = ["--pytorch-index", f"{server.url}/whl"]
            startup = statistics.median(timed_version(dict(os.environ)) for _ in range(repeat))
            print(f"python -m torchfit --version (start-up alone): {startup * 1000:.0f} ms")
            print(f"{'question':28} {'cold ms':>8} {'warm ms':>8} {'offline ms':>10}  pages")
            for name, argv in QUESTIONS.items():
                cold, warm, offline, pages = [], [], [], 0
                for _ in range(repeat):
                    cache = Path(tempfile.mkdtemp(dir=scratch))
                    env = {**os.environ, "TORCHFIT_CACHE_DIR": str(cache)}
                    before = len(server.requests)
                    cold.append(timed(argv + base, env))
                    pages = len(server.requests) - before
                    warm.append(timed(argv + base, env))
                    offline.append(timed([*argv, *base, "--offline"], env))
                print(f"{name:28} {ms(cold):>8} {ms(warm):>8} {ms(offline):>10}  {pages}")


def timed_version(env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "torchfit", "--version"], capture_output=True, env=env)
    return time.perf_counter() - start


def ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:.0f}"


if __name__ == "__main__":
    main()
