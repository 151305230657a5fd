"""Source: ``nvidia-smi --query-gpu``, one line per GPU."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Optional

from torchfit._runner import Runner
from torchfit.machine.drivers import max_cuda_for_driver, parse_driver_version
from torchfit.machine.pci_ids import infer_capability, parse_smi_device_id
from torchfit.machine.record import NVIDIA_SMI, Found, Gpu, Probe, clip, describe

# New fields go at the end: an nvidia-smi that lacks one rejects the whole query, and each
# that is named in its complaint is dropped in turn (compute_cap came with driver 510).
_FIELDS = ("driver_version", "name", "compute_cap", "uuid", "pci.device_id")
_OPTIONAL = _FIELDS[2:]
_UUID = re.compile(r"GPU-[0-9a-fA-F-]+")
_TAIL_LIMIT = 200
_CAPABILITY = re.compile(r"\s*([0-9]{1,2})\.([0-9]{1,2})\s*")  # compute capabilities are at 12

# Evaluated at import: no `X | None` here, which Python 3.9 cannot evaluate.
Row = tuple[Optional[str], Optional[str], Optional[tuple[int, int]]]
# (driver, name, compute capability, UUID, PCI "vendor:device" id)
FullRow = tuple[
    Optional[str], Optional[str], Optional[tuple[int, int]], Optional[str], Optional[str]
]


def parse_nvidia_smi_query(text: str) -> list[Row]:
    """(driver, name, compute capability) per GPU line of ``nvidia-smi --query-gpu=...``.

    Reads ``driver_version,name[,compute_cap]`` with ``--format=csv,noheader``; ``[N/A]``
    fields become None; lines that do not start with a driver version are skipped.

    >>> parse_nvidia_smi_query("550.54.14, NVIDIA GeForce RTX 3090, 8.6\\n")
    [('550.54.14', 'NVIDIA GeForce RTX 3090', (8, 6))]
    """
    return [row[:3] for row in parse_nvidia_smi_rows(text)]


def parse_nvidia_smi_rows(text: str) -> list[FullRow]:
    """(driver, name, compute capability, UUID, PCI id) per GPU line.

    As :func:`parse_nvidia_smi_query`, with ``uuid`` and ``pci.device_id`` read from the
    end of the line when they are there (an older query's lines have neither).

    >>> parse_nvidia_smi_rows("470.82.01, Tesla K80, GPU-6d2d5e4c-aa, 0x102D10DE")
    [('470.82.01', 'Tesla K80', None, 'GPU-6d2d5e4c-aa', '10de:102d')]
    """
    rows: list[FullRow] = []
    for line in text.splitlines():
        fields = [field.strip() for field in line.split(",")]
        driver = _field(fields[0])
        if driver is None and not (fields[0] and len(fields) > 1):
            continue
        if driver is not None and parse_driver_version(driver) is None:
            continue  # a header, an error message, garbage
        capability: tuple[int, int] | None = None
        names = fields[1:]
        pci_id = parse_smi_device_id(names[-1]) if len(names) >= 2 else None
        if pci_id is not None:
            names.pop()
        uuid = names.pop() if len(names) >= 2 and _UUID.fullmatch(names[-1]) else None
        # A third field is compute_cap; a name with a comma in it must not be mistaken for one.
        if len(names) >= 2 and (_field(names[-1]) is None or parse_compute_capability(names[-1])):
            capability = parse_compute_capability(names.pop())
        name = _field(", ".join(names)) if names else None
        rows.append((driver, name, capability, uuid, pci_id))
    return rows


def parse_compute_capability(text: str) -> tuple[int, int] | None:
    """``"8.6"`` -> (8, 6); anything else (``[N/A]``, empty) -> None.

    >>> parse_compute_capability("12.0")
    (12, 0)
    """
    match = _CAPABILITY.fullmatch(text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def known_paths(os: str, root: Path, env: Mapping[str, str]) -> list[Path]:
    """Where nvidia-smi is when it is not on PATH: WSL2's driver folder (NVIDIA's CUDA on
    WSL User Guide), and on Windows ``System32`` (DCH drivers) and ``NVSMI`` (older ones).

    >>> [p.name for p in known_paths("windows", Path("/"), {})]
    ['nvidia-smi.exe', 'nvidia-smi.exe']
    """
    if os == "linux":
        return [root / "usr" / "lib" / "wsl" / "lib" / "nvidia-smi"]
    if os != "windows":
        return []
    system = env.get("SystemRoot") or env.get("SYSTEMROOT") or "C:\\Windows"
    programs = env.get("ProgramW6432") or env.get("ProgramFiles") or "C:\\Program Files"
    nvsmi = Path(programs) / "NVIDIA Corporation" / "NVSMI"
    return [Path(system) / "System32" / "nvidia-smi.exe", nvsmi / "nvidia-smi.exe"]


def probe_nvidia_smi(
    runner: Runner,
    timeout: float,
    os: str,
    *,
    root: Path = Path("/"),
    env: Mapping[str, str] | None = None,
) -> Found:
    """nvidia-smi on PATH, else the first of :func:`known_paths` that is a file."""
    found = _probe_program("nvidia-smi", runner, timeout, os)
    if found.probe.outcome != "not installed":
        return found
    for path in known_paths(os, root, {} if env is None else env):
        if _is_file(path):
            found = _probe_program(str(path), runner, timeout, os)
            note = f" (not on PATH; ran {path})"
            return dataclasses.replace(
                found, probe=dataclasses.replace(found.probe, outcome=found.probe.outcome + note)
            )
    return found


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:
        return False


def _probe_program(program: str, runner: Runner, timeout: float, os: str) -> Found:
    fields: tuple[str, ...] = _FIELDS
    done = runner(_argv(fields, program), timeout=timeout)
    while done.returncode != 0 and (rejected := _rejected(fields, done.stdout + done.stderr)):
        # An older driver rejects the whole query for one field it lacks: ask without it.
        fields = tuple(field for field in fields if field != rejected)
        done = runner(_argv(fields, program), timeout=timeout)
    if done.failure == "not found":
        return Found(Probe(NVIDIA_SMI, None, "not installed"))
    if done.failure:
        return Found(Probe(NVIDIA_SMI, None, done.failure), suspected=True)
    raw = clip(done.stdout + done.stderr)
    if done.returncode != 0:
        tail = _tail(done.stderr) or _tail(done.stdout)
        outcome = f"exit status {done.returncode}" + (f": {tail}" if tail else "")
        return Found(Probe(NVIDIA_SMI, raw, outcome), suspected=True)
    rows = parse_nvidia_smi_rows(done.stdout)
    if not rows:
        return Found(Probe(NVIDIA_SMI, raw, "unparsable output"), suspected=True)
    driver = next((row[0] for row in rows if row[0] is not None), None)
    if driver is None:
        return Found(Probe(NVIDIA_SMI, raw, "no driver version in output"), suspected=True)
    cuda = max_cuda_for_driver(driver, os)
    gpus = tuple(
        infer_capability(Gpu(name, cc, uuid=uuid, pci_id=pci_id))
        for _, name, cc, uuid, pci_id in rows
    )
    outcome = describe(driver, cuda)
    if "compute_cap" not in fields:
        outcome += "; this nvidia-smi cannot report compute capability"
    inferred = sum(gpu.capability_source is not None for gpu in gpus)
    if inferred:
        outcome += f"; compute capability of {inferred} GPU(s) inferred from the PCI device id"
    return Found(Probe(NVIDIA_SMI, raw, outcome), driver, cuda, gpus)


def _rejected(fields: Sequence[str], output: str) -> str | None:
    """The optional field an nvidia-smi's complaint names (``Field "compute_cap" is not a
    valid field to query.``), if any."""
    return next((field for field in fields if field in _OPTIONAL and field in output), None)


def _argv(fields: Sequence[str], program: str = "nvidia-smi") -> list[str]:
    return [program, "--query-gpu=" + ",".join(fields), "--format=csv,noheader"]


def _field(value: str) -> str | None:
    # nvidia-smi prints "[N/A]" or "[Not Supported]" for what it cannot tell.
    if not value or value == "N/A" or (value.startswith("[") and value.endswith("]")):
        return None
    return value


def _tail(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][-_TAIL_LIMIT:] if lines else ""
