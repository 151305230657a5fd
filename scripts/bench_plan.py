"""torchfit plan against uv's --torch-backend auto, on the same loopback index over TLS.

    python scripts/bench_plan.py [--repeat 5] [--quick] [--openssl PATH] [--uv PATH]

Serves wheel_index_snapshots/ at https://127.0.0.1:PORT/whl with a throwaway CA (openssl),
trusted by both tools through SSL_CERT_FILE. uv has no setting for its PyTorch index, so it
reaches the same server through a CONNECT tunnel (HTTPS_PROXY) that sends download.pytorch.org
to the loopback port; TLS stays end to end. Each run is a fresh process. Cold: an empty cache.
Warm: that cache again. Offline: torchfit --offline / uv --offline over it. Prints min/med/max,
the ratio torchfit/uv of medians, requests per plan (the server's log), peak RSS (wait4),
plan time against page size (synthetic 1k/10k/50k-link pages), `python -X importtime` and
detection's file sources together (bound: 5 ms), with no child process where a file answers.
--quick: one question and the 1k page only (the smoke test).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shlex
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple, NoReturn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support import IndexServer, serve_directory  # noqa: E402
from support.tls import (  # noqa: E402
    Tunnel,
    find_openssl,
    make_certificates,
    serve_tunnel,
    server_context,
)

UPSTREAM = ("download.pytorch.org", "download-r2.pytorch.org")
PROXY_VARS = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
TARGETS = {"cold": 0.8, "warm": 0.5}
SIZES = (1_000, 10_000, 50_000)
PAGE_MTIME = 1_735_689_600  # 2025-01-01Z: every served page's Last-Modified, the same each run


class Question(NamedTuple):
    name: str
    reqs: list[str]
    driver: str  # torchfit --driver, uv UV_CUDA_DRIVER_VERSION
    python: str
    platform: str  # torchfit --platform
    uv_platform: str  # uv --python-platform


QUESTIONS = [
    Question("torch, driver 570", ["torch"], "570.124.06", "3.12", "manylinux_2_28_x86_64",
             "x86_64-manylinux_2_28"),
    Question("torch+torchvision, drv 570", ["torch", "torchvision"], "570.124.06", "3.12",
             "manylinux_2_28_x86_64", "x86_64-manylinux_2_28"),
    Question("torch, driver 580", ["torch"], "580.65.06", "3.12", "manylinux_2_28_x86_64",
             "x86_64-manylinux_2_28"),
    Question("torch==1.7.1, driver 418", ["torch==1.7.1"], "418.87.01", "3.8", "linux_x86_64",
             "x86_64-unknown-linux-gnu"),
]  # fmt: skip


class Sample(NamedTuple):
    seconds: float
    rss_mib: float
    requests: int
    stdout: str


def run_child(argv: list[str], env: dict[str, str], stdin: str, server: IndexServer) -> Sample:
    """Run ``argv`` to the end; its wall time, peak RSS (os.wait4) and the requests it made."""
    before = len(server.requests)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=out, stderr=err, env=env)
        assert proc.stdin is not None
        proc.stdin.write(stdin.encode())
        proc.stdin.close()
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if proc.returncode != 0:
        tail = "\n".join(stderr.splitlines()[-8:])
        raise SystemExit(f"failed ({proc.returncode}): {shlex.join(argv)}\n{tail}")
    return Sample(elapsed, usage.ru_maxrss / 1024, len(server.requests) - before, stdout)


class Bench:
    """The two tools' command lines against one server and tunnel."""

    def __init__(self, ca: Path, uv: str, server: IndexServer, tunnel: Tunnel) -> None:
        self.ca, self.uv, self.server, self.tunnel = ca, uv, server, tunnel
        clean = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("UV_", "TORCHFIT_")) and k.lower() not in PROXY_VARS
        }
        self.base_env = {**clean, "SSL_CERT_FILE": str(ca)}

    def torchfit(self, q: Question, cache: Path, mode: str) -> tuple[list[str], dict[str, str]]:
        argv = [sys.executable, "-m", "torchfit", "plan", *q.reqs, "--driver", q.driver]
        argv += ["--python-version", q.python, "--platform", q.platform]
        argv += ["--pytorch-index", f"{self.server.url}/whl"] + ["--offline"] * (mode == "offline")
        return argv, {"SSL_CERT_FILE": str(self.ca), "TORCHFIT_CACHE_DIR": str(cache)}

    def uv_pip(self, q: Question, cache: Path, mode: str) -> tuple[list[str], dict[str, str]]:
        argv = [self.uv, "pip", "compile", "-", "--torch-backend", "auto", "--no-deps"]
        argv += ["--python-version", q.python, "--python-platform", q.uv_platform]
        argv += ["--python", sys.executable]  # else uv searches the machine for q.python
        argv += ["--no-config", "--no-python-downloads", "--no-header", "--no-annotate"]
        argv += ["--cache-dir", str(cache)] + ["--offline"] * (mode == "offline")
        env = {"SSL_CERT_FILE": str(self.ca), "HTTPS_PROXY": self.tunnel.url}
        return argv, {**env, "UV_CUDA_DRIVER_VERSION": q.driver}

    def uv_direct(self, q: Question, cache: Path, mode: str) -> tuple[list[str], dict[str, str]]:
        """uv on one explicit index (cu128), straight to the server: what the tunnel costs."""
        argv, env = self.uv_via(q, cache, mode)
        del env["HTTPS_PROXY"]
        return [a.replace(f"https://{UPSTREAM[0]}", self.server.url) for a in argv], env

    def uv_via(self, q: Question, cache: Path, mode: str) -> tuple[list[str], dict[str, str]]:
        """uv on one explicit index (cu128) named by its upstream URL, through the tunnel."""
        argv, env = self.uv_pip(q, cache, mode)
        at = argv.index("--torch-backend")
        argv[at : at + 2] = ["--index-url", f"https://{UPSTREAM[0]}/whl/cu128"]
        return argv, env

    def run(self, tool: str, q: Question, cache: Path, mode: str) -> Sample:
        argv, extra = getattr(self, tool)(q, cache, mode)
        return run_child(argv, {**self.base_env, **extra}, "\n".join(q.reqs) + "\n", self.server)

    def show(self, tool: str, q: Question) -> str:
        argv, extra = getattr(self, tool)(q, Path("/CACHE"), "cold")
        text = shlex.join([f"{k}={v}" for k, v in extra.items()] + argv)
        for real, shown in [("/CACHE", "<cache>"), (str(self.ca), "<ca.pem>"), (self.uv, "uv")]:
            text = text.replace(real, shown)
        return text.replace(sys.executable, "python")


def answers(tool: str, stdout: str) -> str:
    """The pins a plan printed, as ``name==version`` (torchfit's text, uv's requirements)."""
    if tool == "uv_pip":
        pins = re.findall(r"^(\S+==\S+)", stdout, re.M)
    else:
        pins = [f"{n}=={v}" for n, v in re.findall(r"^\s+(\S+) (\S+)\s+\S+\.whl", stdout, re.M)]
    return " ".join(sorted(pins)) or "?"


Samples = dict[tuple[str, str], list[Sample]]


def measure(
    bench: Bench,
    q: Question,
    repeat: int,
    scratch: Path,
    modes: tuple[str, ...],
    tools: tuple[str, ...] = ("torchfit", "uv_pip"),
) -> Samples:
    """{(tool, mode): [Sample, ...]}: each repeat starts from an empty cache per tool."""
    samples: Samples = {}
    for _ in range(repeat):
        for tool in tools:
            cache = Path(tempfile.mkdtemp(dir=scratch))
            for mode in modes:
                samples.setdefault((tool, mode), []).append(bench.run(tool, q, cache, mode))
    return samples


def med(samples: list[Sample], field: str = "seconds") -> float:
    return statistics.median(float(getattr(s, field)) for s in samples)


def pair(tf: list[Sample], uv: list[Sample], field: str) -> str:
    return f"{med(tf, field):.0f}/{med(uv, field):.0f}"


def spread(samples: list[Sample]) -> str:
    ms = sorted(s.seconds * 1000 for s in samples)
    return f"{ms[0]:.0f}/{statistics.median(ms):.0f}/{ms[-1]:.0f}"


def report_questions(bench: Bench, questions: list[Question], repeat: int, scratch: Path) -> None:
    modes = ("cold", "warm", "offline")
    totals = {(tool, mode): 0.0 for tool in ("torchfit", "uv_pip") for mode in modes}
    head = ["question".ljust(27), "mode".ljust(8), f"{'torchfit ms':>16}", f"{'uv ms':>16}"]
    print("\n" + " ".join([*head, f"{'ratio':>6}", "requests tf/uv", "peak MiB tf/uv"]))
    picks = []
    for q in questions:
        got = measure(bench, q, repeat, scratch, modes)
        for mode in modes:
            tf, uv = got["torchfit", mode], got["uv_pip", mode]
            totals["torchfit", mode] += med(tf)
            totals["uv_pip", mode] += med(uv)
            name = q.name if mode == "cold" else ""
            cells = [name.ljust(27), mode.ljust(8), f"{spread(tf):>16}", f"{spread(uv):>16}"]
            cells += [f"{med(tf) / med(uv):>5.2f}x", f"{pair(tf, uv, 'requests'):>14}"]
            print(" ".join([*cells, f"{pair(tf, uv, 'rss_mib'):>14}"]))
        picks.append((q, answers("torchfit", tf[0].stdout), answers("uv_pip", uv[0].stdout)))
    parts = []
    for mode in modes:
        ratio = totals["torchfit", mode] / totals["uv_pip", mode]
        target = TARGETS.get(mode)
        goal = f" (target <= {target}x: {'met' if ratio <= target else 'MISSED'})" if target else ""
        parts.append(f"{mode} {ratio:.2f}x{goal}")
    print("ratio torchfit/uv, sum of the questions' medians: " + "; ".join(parts))
    print("\nanswers (first run; policies differ: torchfit CUDA <= driver, uv NVIDIA's floors):")
    for q, tf_pick, uv_pick in picks:
        same = "same" if tf_pick == uv_pick else "differ"
        print(f"  {q.name:27} torchfit {tf_pick} | uv {uv_pick} | {same}")


def synthetic_page(links: int, variant: str = "cu128") -> str:
    """A torch page shaped like PyTorch's: host-absolute hrefs, %2B, sha256, PEP 658/503 data."""
    rows = []
    pythons = ("cp39", "cp310", "cp311", "cp312", "cp313")
    plats = ("manylinux_2_28_x86_64", "manylinux_2_28_aarch64", "win_amd64", "macosx_11_0_arm64")
    for i in range(links):
        n, py, plat = i // 20, pythons[i % 5], plats[i // 5 % 4]
        name = f"torch-2.{n // 100}.{n % 100}+{variant}-{py}-{py}-{plat}.whl"
        digest = hashlib.sha256(name.encode()).hexdigest()
        href = f"/whl/{variant}/{name.replace('+', '%2B')}#sha256={digest}"
        data = f'data-requires-python="&gt;=3.9" data-core-metadata="sha256={digest[::-1]}"'
        rows.append(f'    <a href="{href}" {data}>{name}</a><br/>')
    head = "<!DOCTYPE html>\n<html>\n  <body>\n    <h1>Links for torch</h1>\n"
    return head + "\n".join(rows) + "\n  </body>\n</html>\n"


def report_sizes(
    bench: Bench, sizes: tuple[int, ...], repeat: int, scratch: Path, context: ssl.SSLContext
) -> None:
    """Time the first question against one synthetic page per size, on a server of its own."""
    q = QUESTIONS[0]
    print(f"\npage size ({q.name}; a synthetic cu128/torch page, the other variants 404; ms med)")
    head = ["links", "page KiB", "tf cold", "uv cold", "ratio", "tf warm", "uv warm", "ratio"]
    print(" ".join([f"{h:>8}" for h in head] + ["requests tf/uv", "peak MiB tf/uv"]))
    for links in sizes:
        page = scratch / f"pages-{links}" / "whl" / "cu128" / "torch" / "index.html"
        page.parent.mkdir(parents=True)
        page.write_text(synthetic_page(links), encoding="utf-8")
        age(page.parents[3])
        with serve_directory(page.parents[3], ssl_context=context) as server:
            point(bench.tunnel, server)
            sized = Bench(bench.ca, bench.uv, server, bench.tunnel)
            got = measure(sized, q, repeat, scratch, ("cold", "warm"))
            if links == sizes[-1]:  # the tunnel's cost, where it costs the most
                priced = measure(sized, q, repeat, scratch, ("cold",), ("uv_direct", "uv_via"))
        cells = [f"{links:>8}", f"{page.stat().st_size / 1024:>8.0f}"]
        for mode in ("cold", "warm"):
            tf, uv = got["torchfit", mode], got["uv_pip", mode]
            cells += [f"{med(tf) * 1000:>8.0f}", f"{med(uv) * 1000:>8.0f}"]
            cells.append(f"{med(tf) / med(uv):>7.2f}x")
        tf, uv = got["torchfit", "cold"], got["uv_pip", "cold"]
        print(
            " ".join([*cells, f"{pair(tf, uv, 'requests'):>14}", f"{pair(tf, uv, 'rss_mib'):>14}"])
        )
    direct, via = (med(priced[tool, "cold"]) * 1000 for tool in ("uv_direct", "uv_via"))
    print(f"the tunnel's cost ({links} links, uv cold, --index-url .../whl/cu128 instead of")
    print(f"  --torch-backend): {direct:.0f} ms straight to the server, {via:.0f} ms through it")
    point(bench.tunnel, bench.server)


def age(root: Path) -> None:
    """Give every file under ``root`` the same old mtime (the server's Last-Modified)."""
    for path in root.rglob("*"):
        os.utime(path, (PAGE_MTIME, PAGE_MTIME))


def point(tunnel: Tunnel, server: IndexServer) -> None:
    """Send the tunnel's upstream hosts to ``server``'s loopback port."""
    port = int(server.url.rsplit(":", 1)[1])
    tunnel.targets.update(dict.fromkeys(UPSTREAM, ("127.0.0.1", port)))


def report_imports(repeat: int, top: int = 8) -> None:
    """`python -X importtime` of the CLI module: the heaviest entries and the total."""
    argv = [sys.executable, "-X", "importtime", "-c", "import torchfit.cli.main"]
    if subprocess.run(argv, capture_output=True).returncode != 0:  # also warms the bytecode
        argv = [sys.executable, "-X", "importtime", "-m", "torchfit", "--version"]
    runs = []
    for _ in range(max(repeat, 3)):
        err = subprocess.run(argv, capture_output=True, text=True, check=True).stderr
        rows = re.findall(r"^import time:\s+(\d+) \|\s+(\d+) \| (.*)$", err, re.M)
        runs.append([(int(s), int(c), name) for s, c, name in rows])
    runs.sort(key=lambda rows: sum(s for s, _, _ in rows))
    rows = runs[len(runs) // 2]
    print(f"\n{shlex.join(['python', *argv[1:]])} (median of {len(runs)} runs):")
    print(f"  total {sum(s for s, _, _ in rows) / 1000:.1f} ms in {len(rows)} imports; heaviest:")
    for _, cumulative, name in sorted(rows, key=lambda r: -r[1])[:top]:
        print(f"  {cumulative / 1000:>8.1f} ms  {name.strip()}")
    tally = {"httpx", "resolvelib", "packaging", "ssl", "json"}
    loaded = sorted({n.strip().split(".")[0] for _, _, n in rows} & tally)
    print(f"  of {', '.join(sorted(tally))} it imports: {', '.join(loaded) or 'none'}")


def describe(bench: Bench, questions: list[Question], repeat: int) -> None:
    """Say what is compared, and the exact command lines."""
    version = subprocess.run([bench.uv, "--version"], capture_output=True, text=True).stdout
    print(f"torchfit plan vs {version.strip()} pip compile --torch-backend auto")
    print(f"index: wheel_index_snapshots/ over TLS at {bench.server.url}/whl")
    print(f"  uv has no PyTorch-index setting: HTTPS_PROXY={bench.tunnel.url} tunnels")
    print(f"  {' and '.join(UPSTREAM)} to that server (TLS end to end, the same CA)")
    print("both plan only the named torch-family packages from the pages (uv --no-deps:")
    print("  the pages carry no dependency metadata; PyPI is never asked)")
    print(f"repeats: {repeat}; times are wall ms of a fresh process, min/med/max")
    for q in questions:
        print(f"  {q.name}:\n    {bench.show('torchfit', q)}")
        print(f"    {bench.show('uv_pip', q)}  <<< {' '.join(q.reqs)}")
    print("  warm: the same <cache> again; offline: the same, with --offline added")
    print("  pages carry ETag and Last-Modified (fixed: 2025-01-01) but no Cache-Control; what")
    print("  each tool re-asks when warm is its own choice (see the requests column)")


def find_uv(given: str | None = None) -> str | None:
    """``given`` (a name or path), else the uv beside this Python, else uv on PATH."""
    if given:
        return shutil.which(given)
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.is_file() else shutil.which("uv")


def requirements_file(folder: Path, lines: int = 1_000) -> Path:
    """A requirements file of ``lines`` lines as a project has them: comments, markers,
    ``--hash`` continuations, options, a nested ``-r`` and a ``-c``; returns its path."""
    digest = hashlib.sha256(b"x").hexdigest()
    (folder / "nested.txt").write_text("torchvision\n# nested\n", encoding="utf-8")
    (folder / "constraints.txt").write_text("torch<3\nnumpy<3\n", encoding="utf-8")
    head = ["# pinned", "--extra-index-url https://pypi.example/simple", "-r nested.txt"]
    head += ["-c constraints.txt", f"torch[opt-einsum]>=2 \\\n    --hash=sha256:{digest}"]
    body = []
    for number in range(lines - len(head)):
        if number % 4 == 0:
            body.append(f"pkg-{number}=={number}.0 \\\n    --hash=sha256:{digest}")
        elif number % 4 == 1:
            body.append(f"pkg-{number}>=1,<{number + 2} ; python_version >= '3.8'  # why")
        else:
            body.append(f"pkg-{number}[extra]~={number}.1")
    path = folder / "requirements.txt"
    path.write_text("\n".join(head + body) + "\n", encoding="utf-8")
    return path


def report_requirements_file(repeat: int, lines: int = 1_000) -> None:
    """Reading a requirements file (parse, includes, the split for the plan), in-process:
    what ``-r`` adds to a plan. The issue's bound: under 50 ms for 1,000 lines."""
    from torchfit.choose.reqfile import read_requirement_files
    from torchfit.choose.requirements import ask
    from torchfit.environment.target import from_spec

    target = from_spec("3.12", ["manylinux_2_28_x86_64"])
    with tempfile.TemporaryDirectory() as tmp:
        path = requirements_file(Path(tmp), lines)
        times = []
        for _ in range(max(repeat, 5)):
            start = time.perf_counter()
            found = read_requirement_files([path])
            asked = ask([], target, found.lines)
            times.append((time.perf_counter() - start) * 1000)
    ms = sorted(times)
    print(f"\nrequirements file, {lines:,} lines ({len(asked.passthrough)} passed through,")
    print(f"  {len(asked.family)} planned, --hash continuations, -r and -c): read and split in")
    print(f"  {ms[0]:.1f}/{statistics.median(ms):.1f}/{ms[-1]:.1f} ms min/med/max (bound: 50)")


def recorded_machine(root: Path) -> Path:
    """A machine as files under ``root``: the NVIDIA module's /sys and /proc files."""
    data = ROOT / "tests" / "data" / "nvidia"
    for relative, name in [
        ("sys/module/nvidia/version", "sys-module-580.65.06.txt"),
        ("proc/driver/nvidia/version", "proc-open-aarch64-580.65.06.txt"),
    ]:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data / name, root / relative)
    return root


def file_sources_ms(root: Path, repeat: int) -> tuple[list[float], int]:
    """Every file source read under ``root`` (the NVIDIA module's /sys and /proc files, the
    AMD KFD topology, the PCI devices), in-process: ms per round, and the child processes
    they tried to start (the AMD tools run only when /dev/kfd is there)."""
    from torchfit._runner import Completed
    from torchfit.machine.amd import probe_amd
    from torchfit.machine.intel import probe_intel
    from torchfit.machine.proc import probe_proc, proc_version_file
    from torchfit.machine.sysfs import probe_sys_module, sys_version_file

    started: list[str] = []

    def refuse(argv: list[str], **_: object) -> Completed:
        started.append(argv[0])
        return Completed(127, "", "", "not found")

    times = []
    for _ in range(max(repeat, 20)):
        start = time.perf_counter()
        probe_sys_module(sys_version_file(root), "linux")
        probe_proc(proc_version_file(root), "linux")
        probe_amd(root, refuse, 10.0)
        probe_intel(root)
        times.append((time.perf_counter() - start) * 1000)
    return times, len(started)


def report_detection(repeat: int) -> None:
    """All file sources together (bound: 5 ms), here and on a recorded machine; and the
    whole detection of a machine whose /sys file answers, with a runner that refuses."""
    from torchfit.machine.detect import detect
    from torchfit.machine.record import Overrides

    def refuse(argv: list[str], **_: object) -> NoReturn:
        raise SystemExit(f"a child process was started where a file answers: {argv}")

    print("\ndetection's file sources, in-process (ms min/med/max; bound: 5 ms together):")
    with tempfile.TemporaryDirectory() as tmp:
        recorded = recorded_machine(Path(tmp))
        for label, root in [("this machine (/)", Path("/")), ("a recorded machine", recorded)]:
            times, started = file_sources_ms(root, repeat)
            ms = sorted(times)
            met = "met" if statistics.median(ms) < 5 else "MISSED"
            print(f"  {label:<22} {ms[0]:.2f}/{statistics.median(ms):.2f}/{ms[-1]:.2f} ({met});"
                  f" child processes started: {started}")  # fmt: skip
        times = []
        for _ in range(max(repeat, 20)):
            start = time.perf_counter()
            found = detect(
                Overrides(gpu_arch=((10, 0),)), nvml=None, runner=refuse, root=recorded, env={}
            )
            times.append((time.perf_counter() - start) * 1000)
    ms = sorted(times)
    print(f"  detect(), the /sys file answering ({found.driver_version}, GPUs given):"
          f" {ms[0]:.2f}/{statistics.median(ms):.2f}/{ms[-1]:.2f}; child processes: 0")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="one question, the 1k page only")
    parser.add_argument("--openssl", help="the openssl executable (default: openssl on PATH)")
    parser.add_argument("--uv", help="the uv executable (default: beside this Python, or PATH)")
    args = parser.parse_args()
    openssl = shutil.which(args.openssl) if args.openssl else find_openssl()
    uv = find_uv(args.uv)
    if openssl is None:
        sys.exit("openssl not found on PATH: it makes the throwaway CA for the TLS index")
    if uv is None:
        sys.exit("uv not found (beside this Python or on PATH): pip install uv")
    questions, sizes = (QUESTIONS[:1], SIZES[:1]) if args.quick else (QUESTIONS, SIZES)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        certs = make_certificates(scratch, ("127.0.0.1", "localhost", *UPSTREAM), openssl)
        context = server_context(certs)
        shutil.copytree(ROOT / "wheel_index_snapshots", scratch / "index" / "whl")
        age(scratch / "index")
        with (
            serve_directory(scratch / "index", ssl_context=context) as server,
            serve_tunnel({}) as tunnel,
        ):
            point(tunnel, server)
            bench = Bench(certs.ca, uv, server, tunnel)
            describe(bench, questions, args.repeat)
            report_questions(bench, questions, args.repeat, scratch)
            report_sizes(bench, sizes, args.repeat, scratch, context)
            if tunnel.refused():
                print(f"\ntunnel refused (not the index): {sorted(set(tunnel.refused()))}")
    report_imports(args.repeat)
    report_requirements_file(args.repeat)
    report_detection(args.repeat)


if __name__ == "__main__":
    main()
