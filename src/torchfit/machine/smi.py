"""Source: ``nvidia-smi --query-gpu``, one line per GPU."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Optional

from torchfit._runner import Runner
from torchfit.machine.drivers import max_cuda_for_driver, parse_driver_version
from torchfit.machine.record import NVIDIA_SMI, Found, Gpu, Probe, clip, describe

_FIELDS = ("driver_version", "name", "compute_cap")
_TAIL_LIMIT = 200
_CAPABILITY = re.compile(r"\s*([0-9]{1,2})\.([0-9]{1,2})\s*")  # compute capabilities are at 12

# Evaluated at import: no `X | None` here, which Python 3.9 cannot evaluate.
Row = tuple[Optional[str], Optional[str], Optional[tuple[int, int]]]


def parse_nvidia_smi_query(text: str) -> list[Row]:
    """(driver, name, compute capability) per GPU line of ``nvidia-smi --query-gpu=...``.

    Reads ``driver_version,name[,compute_cap]`` with ``--format=csv,noheader``; ``[N/A]``
    fields become None; lines that do not start with a driver version are skipped.

    >>> parse_nvidia_smi_query("550.54.14, NVIDIA GeForce RTX 3090, 8.6\\n")
    [('550.54.14', 'NVIDIA GeForce RTX 3090', (8, 6))]
    """
    rows: list[Row] = []
    for line in text.splitlines():
        fields = [field.strip() for field in line.split(",")]
        driver = _field(fields[0])
        if driver is None and not (fields[0] and len(fields) > 1):
            continue
        if driver is not None and parse_driver_version(driver) is None:
            continue  # a header, an error message, garbage
        capability: tuple[int, int] | None = None
        names = fields[1:]
        # A third field is compute_cap; a name with a comma in it must not be mistaken for one.
        if len(names) >= 2 and (_field(names[-1]) is None or parse_compute_capability(names[-1])):
            capability = parse_compute_capability(names.pop())
        rows.append((driver, _field(", ".join(names)) if names else None, capability))
    return rows


def parse_compute_capability(text: str) -> tuple[int, int] | None:
    """``"8.6"`` -> (8, 6); anything else (``[N/A]``, empty) -> None.

    >>> parse_compute_capability("12.0")
    (12, 0)
    """
    match = _CAPABILITY.fullmatch(text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def probe_nvidia_smi(runner: Runner, timeout: float, os: str) -> Found:
    fields: tuple[str, ...] = _FIELDS
    done = runner(_argv(fields), timeout=timeout)
    if done.returncode != 0 and "compute_cap" in done.stdout + done.stderr:
        # Drivers older than the compute_cap field reject the whole query.
        fields = _FIELDS[:2]
        done = runner(_argv(fields), timeout=timeout)
    if done.failure == "not found":
        return Found(Probe(NVIDIA_SMI, None, "not installed"))
    if done.failure:
        return Found(Probe(NVIDIA_SMI, None, done.failure), suspected=True)
    raw = clip(done.stdout + done.stderr)
    if done.returncode != 0:
        tail = _tail(done.stderr) or _tail(done.stdout)
        outcome = f"exit status {done.returncode}" + (f": {tail}" if tail else "")
        return Found(Probe(NVIDIA_SMI, raw, outcome), suspected=True)
    rows = parse_nvidia_smi_query(done.stdout)
    if not rows:
        return Found(Probe(NVIDIA_SMI, raw, "unparsable output"), suspected=True)
    driver = next((row[0] for row in rows if row[0] is not None), None)
    if driver is None:
        return Found(Probe(NVIDIA_SMI, raw, "no driver version in output"), suspected=True)
    cuda = max_cuda_for_driver(driver, os)
    gpus = tuple(Gpu(name, cc) for _, name, cc in rows)
    outcome = describe(driver, cuda)
    if "compute_cap" not in fields:
        outcome += "; this nvidia-smi cannot report compute capability"
    return Found(Probe(NVIDIA_SMI, raw, outcome), driver, cuda, gpus)


def _argv(fields: Sequence[str]) -> list[str]:
    return ["nvidia-smi", "--query-gpu=" + ",".join(fields), "--format=csv,noheader"]


def _field(value: str) -> str | None:
    # nvidia-smi prints "[N/A]" or "[Not Supported]" for what it cannot tell.
    if not value or value == "N/A" or (value.startswith("[") and value.endswith("]")):
        return None
    return value


def _tail(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][-_TAIL_LIMIT:] if lines else ""
