"""Source: AMD GPUs, as the amdgpu kernel driver's KFD topology lists them, else as ROCm's
tools name them; and the ROCm installed under ``/opt/rocm``.

Every node of ``<root>/sys/class/kfd/kfd/topology/nodes/*/properties`` states its
``gfx_target_version``: ``major * 10000 + minor * 100 + stepping``, 0 for a CPU node
(ROCR-Runtime's topology reader and rocprofiler-sdk's agent names decode it that way; the
name is ``gfx`` + major, then minor and stepping as one hex digit each: 90010 is gfx90a).
When that gives nothing but the driver is there (``/dev/kfd``), ``rocm_agent_enumerator``,
then ``amdgpu-arch``, print one target a line (``gfx000`` is the CPU agent).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from torchfit._runner import Runner
from torchfit.machine.record import Gpu, Probe, clip

KFD = "/sys/class/kfd"
KFD_NODES = "sys/class/kfd/kfd/topology/nodes"
ROCM_INFO = "opt/rocm/.info/version"
TOOLS = ("rocm_agent_enumerator", "amdgpu-arch")

_GFX = re.compile(r"gfx([0-9]{1,2})([0-9a-f])([0-9a-f])")


def gfx_name(version: int) -> str | None:
    """The target name of a ``gfx_target_version`` number; None for 0 (a CPU node) or a
    number no target has.

    >>> gfx_name(110000), gfx_name(90010), gfx_name(90402), gfx_name(0)
    ('gfx1100', 'gfx90a', 'gfx942', None)
    """
    major, minor, stepping = version // 10000, (version // 100) % 100, version % 100
    if version <= 0 or major == 0 or minor > 15 or stepping > 15:
        return None
    return f"gfx{major}{minor:x}{stepping:x}"


def parse_gfx(text: str) -> str | None:
    """A gfx target as ROCm writes it (``gfx90a:sramecc+:xnack-`` too), without its feature
    flags; None when it is not one.

    >>> parse_gfx("gfx90a:sramecc+:xnack-"), parse_gfx(" GFX1100 "), parse_gfx("8.6")
    ('gfx90a', 'gfx1100', None)
    """
    name = text.strip().lower().split(":", 1)[0]
    return name if _GFX.fullmatch(name) and name != "gfx000" else None


def parse_kfd_properties(text: str) -> str | None:
    """The gfx target of one KFD topology node's ``properties`` text; None for a CPU node.

    >>> parse_kfd_properties("cpu_cores_count 0\\nsimd_count 192\\ngfx_target_version 110000\\n")
    'gfx1100'
    """
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        if key == "gfx_target_version" and value.strip().isdigit():
            return gfx_name(int(value.strip()))
    return None


def parse_agent_list(text: str) -> list[str]:
    """The GPU targets ``rocm_agent_enumerator`` or ``amdgpu-arch`` printed, in order.

    >>> parse_agent_list("gfx000\\ngfx1030\\ngfx1030\\n")
    ['gfx1030', 'gfx1030']
    """
    return [name for line in text.splitlines() if (name := parse_gfx(line))]


def parse_rocm_version(text: str) -> tuple[int, ...] | None:
    """The version in ``/opt/rocm/.info/version`` (``6.2.4-120``); None when unreadable.

    >>> parse_rocm_version("6.2.4-120\\n")
    (6, 2, 4)
    """
    match = re.match(r"\s*(\d+)\.(\d+)(?:\.(\d+))?", text)
    if not match:
        return None
    return tuple(int(part) for part in match.groups() if part is not None)


@dataclass(frozen=True)
class AmdFound:
    """What the AMD sources found: GPUs (vendor "amd", with ``gfx``), the ROCm version
    installed, and one trace line per source that had something to say."""

    gpus: tuple[Gpu, ...] = ()
    rocm: tuple[int, ...] | None = None
    trace: tuple[Probe, ...] = ()


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _node_number(node: Path) -> int:
    return int(node.name)


def read_kfd(root: Path) -> tuple[list[str], Probe | None]:
    """The gfx targets of the KFD topology under ``root``, in node order, and its trace line
    (None when there is no topology at all)."""
    nodes = root / KFD_NODES
    try:
        entries = sorted((p for p in nodes.iterdir() if p.name.isdigit()), key=_node_number)
    except OSError:
        return [], None
    found, raw = [], []
    for node in entries:
        text = _read(node / "properties")
        gfx = parse_kfd_properties(text) if text is not None else None
        if gfx:
            found.append(gfx)
            raw.append(f"node {node.name}: {gfx}")
    outcome = "GPUs " + ", ".join(found) if found else "no GPU node"
    return found, Probe(KFD, "; ".join(raw) or None, outcome)


def probe_amd(root: Path, runner: Runner, timeout: float) -> AmdFound:
    """AMD GPUs under ``root``: the KFD topology, else (only when ``/dev/kfd`` or the
    topology is there, so a machine without AMD runs nothing) the ROCm tools."""
    found, kfd = read_kfd(root)
    trace = [kfd] if kfd else []
    if not found and (kfd is not None or (root / "dev" / "kfd").exists()):
        for tool in TOOLS:
            done = runner([tool], timeout=timeout)
            if done.failure:
                trace.append(Probe(tool, None, done.failure))
                continue
            found = parse_agent_list(done.stdout) if done.returncode == 0 else []
            if found:
                trace.append(Probe(tool, clip(done.stdout), "GPUs " + ", ".join(found)))
                break
            outcome = f"exit status {done.returncode}" if done.returncode else "no GPU agent"
            trace.append(Probe(tool, clip(done.stdout + done.stderr), outcome))
    if not found:
        return AmdFound(trace=tuple(trace))
    text = _read(root / ROCM_INFO)
    rocm = parse_rocm_version(text) if text is not None else None
    said = f"ROCm {'.'.join(map(str, rocm))}" if rocm else "not present"
    if text is not None and rocm is None:
        said = "unparsable"
    trace.append(Probe("/" + ROCM_INFO, clip(text or ""), said))
    gpus = tuple(Gpu(None, None, vendor="amd", gfx=gfx) for gfx in found)
    return AmdFound(gpus, rocm, tuple(trace))
