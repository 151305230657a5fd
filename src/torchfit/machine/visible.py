"""Which GPUs CUDA programs will see: ``NVIDIA_VISIBLE_DEVICES``, then ``CUDA_VISIBLE_DEVICES``.

CUDA (CUDA Programming Guide, "CUDA Environment Variables", ``CUDA_VISIBLE_DEVICES``,
https://docs.nvidia.com/cuda/cuda-programming-guide/05-appendices/environment-variables.html):
unset, every GPU is visible; empty, none is. Otherwise it is a comma-separated list of
indexes (nvidia-smi's numbering, from 0), ``GPU-`` UUIDs or any prefix of one that names a
single GPU, and ``MIG-`` ids. Only the GPUs before the first invalid entry are visible:
``0,2,-1,1`` shows GPUs 0 and 2.

The NVIDIA Container Toolkit ("Specialized Configurations with Docker", GPU Enumeration,
https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/docker-specialized.html)
gives a container the GPUs that ``NVIDIA_VISIBLE_DEVICES`` names: indexes or UUIDs (prefixes
such as ``GPU-fef8089b`` too), or ``all``. ``none``, ``void`` and empty give it none (see
``container``: a driver that still answers, as under CDI, is believed). MIG devices are
named ``<GPU index>:<MIG index>`` or by their ``MIG-`` id. Inside the container nvidia-smi
lists only those GPUs, numbered from 0. So when it lists exactly as many GPUs as the
variable names, the runtime has already applied it, and every GPU listed is kept.
``CUDA_VISIBLE_DEVICES`` then chooses among the GPUs the container has.

A ``MIG-<uuid>`` id (R470 and later) does not say which GPU it is on, and a UUID cannot be
matched when the source gave none. Then every GPU is kept, and the trace says why: a build
for all of them serves the one meant.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Union

from torchfit.machine.record import (
    CUDA_VISIBLE,
    VISIBLE_DEVICES,
    Detection,
    Gpu,
    Probe,
    clip,
    dotted,
)

#: CUDA reads indexes in nvidia-smi's order; this variable can make it count otherwise.
DEVICE_ORDER = "CUDA_DEVICE_ORDER"

_INDEX = re.compile(r"[0-9]{1,4}")
_UUID = re.compile(r"GPU-[0-9a-f][0-9a-f-]*", re.IGNORECASE)
_MIG_OLD = re.compile(r"MIG-(GPU-[0-9a-f-]+)/[0-9]+/[0-9]+", re.IGNORECASE)  # R450/R460
_MIG = re.compile(r"MIG-[0-9a-z-]+(?:/[0-9]+/[0-9]+)?", re.IGNORECASE)
_MIG_INDEX = re.compile(r"([0-9]{1,4}):[0-9]{1,4}")  # NVIDIA_VISIBLE_DEVICES only
_HIDING = ("none", "void", "")


class _Unknown(str):
    """Why an entry names a GPU that cannot be told apart from the others."""


Resolved = Union[int, _Unknown, None]  # a position in the list; cannot tell; invalid


def parse_cuda_visible_devices(text: str) -> tuple[tuple[str, ...], str | None]:
    """The entries CUDA reads from ``CUDA_VISIBLE_DEVICES``, and the invalid one it stops at.

    Entries are checked for their form only here; :func:`visible_gpus` also drops an index
    past the last GPU or a UUID prefix that names no GPU or two.

    >>> parse_cuda_visible_devices("0,2,-1,1")
    (('0', '2'), '-1')
    """
    entries: list[str] = []
    for entry in (part.strip() for part in text.split(",")):
        if not (_INDEX.fullmatch(entry) or _UUID.fullmatch(entry) or _MIG.fullmatch(entry)):
            return tuple(entries), entry
        entries.append(entry)
    return tuple(entries), None


def parse_nvidia_visible_devices(text: str) -> tuple[str, ...] | None:
    """The devices ``NVIDIA_VISIBLE_DEVICES`` names; None for ``all``, () for none.

    >>> parse_nvidia_visible_devices("0,GPU-fef8089b"), parse_nvidia_visible_devices("all")
    (('0', 'GPU-fef8089b'), None)
    """
    cleaned = text.strip()
    if cleaned.lower() == "all":
        return None
    if cleaned.lower() in _HIDING:
        return ()
    return tuple(part.strip() for part in cleaned.split(",") if part.strip())


@dataclass(frozen=True)
class Visible:
    """The GPUs CUDA will see, those left out, a trace line per variable that is set, and
    the lines the plan's why repeats (GPUs left out, or a variable that could not be read)."""

    gpus: tuple[Gpu, ...]
    hidden: tuple[Gpu, ...] = ()
    trace: tuple[Probe, ...] = ()
    notes: tuple[str, ...] = ()


def visible_gpus(gpus: Sequence[Gpu], env: Mapping[str, str]) -> Visible:
    """Narrow ``gpus`` (in nvidia-smi's order) by the visible-devices variables in ``env``.

    Pure: ``env`` is the detection's environment. Never raises.
    """
    listed = list(enumerate(gpus))  # (nvidia-smi's index, GPU), as narrowed so far
    trace: list[Probe] = []
    notes: list[str] = []
    for name in (VISIBLE_DEVICES, CUDA_VISIBLE):
        value = env.get(name)
        if value is None or not gpus:
            continue
        if name == VISIBLE_DEVICES:
            listed, outcome, quiet = _container(listed, value)
        else:
            order = env.get(DEVICE_ORDER, "").strip().upper()
            listed, outcome, quiet = _cuda(listed, value, order)
        trace.append(Probe(name, clip(value) or "", outcome))
        if not quiet:
            notes.append(f"{name}={value.strip()!r}: {outcome}")
    kept = {index for index, _ in listed}
    hidden = tuple(gpu for index, gpu in enumerate(gpus) if index not in kept)
    return Visible(tuple(gpu for _, gpu in listed), hidden, tuple(trace), tuple(notes))


def keep_visible(detection: Detection, env: Mapping[str, str]) -> Detection:
    """``detection`` with its NVIDIA GPUs narrowed to those CUDA will see, the variables'
    trace lines added, and notes for the plan: GPUs left out, capabilities inferred.

    AMD and Intel GPUs are left as they are. Pure; never raises.
    """
    nvidia = [gpu for gpu in detection.gpus if gpu.vendor == "nvidia"]
    others = tuple(gpu for gpu in detection.gpus if gpu.vendor != "nvidia")
    seen = visible_gpus(nvidia, env)
    kept = {id(gpu) for gpu in seen.gpus}
    inferred = tuple(
        f"GPU {index} ({gpu.name or 'unnamed'}): compute capability"
        f" {dotted(gpu.compute_capability)} {gpu.capability_source}"
        for index, gpu in enumerate(nvidia)
        if id(gpu) in kept and gpu.capability_source and gpu.compute_capability
    )
    if not (seen.trace or inferred):
        return detection
    return dataclasses.replace(
        detection,
        gpus=seen.gpus + others,
        trace=detection.trace + seen.trace,
        hidden=seen.hidden,
        notes=detection.notes + seen.notes + inferred,
    )


Listed = list[tuple[int, Gpu]]


def _container(listed: Listed, value: str) -> tuple[Listed, str, bool]:
    named = parse_nvidia_visible_devices(value)
    if named is None:
        return listed, "all GPUs: every GPU kept", True
    if not named:
        return listed, "no GPU given to the container, yet the driver lists some: all kept", True
    parents = {_MIG_INDEX.sub(r"\1", entry) for entry in named}
    if any(_INDEX.fullmatch(p) for p in parents) and len(parents) == len(listed):
        return listed, "applied by the container runtime already: every GPU listed kept", True
    chosen: Listed = []
    for entry in named:
        index_text = _MIG_INDEX.fullmatch(entry)
        found = _resolve(index_text.group(1) if index_text else entry, listed)
        if found is None:
            return listed, f"{entry!r} names no GPU listed here: every GPU kept", False
        if isinstance(found, _Unknown):
            return listed, f"cannot tell which GPU {entry!r} is ({found}): every GPU kept", False
        if listed[found] not in chosen:
            chosen.append(listed[found])
    return chosen, _kept_text(listed, chosen), len(chosen) == len(listed)


def _cuda(listed: Listed, value: str, order: str) -> tuple[Listed, str, bool]:
    if not value.strip():
        return [], "empty: CUDA sees no GPU; " + _kept_text(listed, []), False
    entries, invalid = parse_cuda_visible_devices(value)
    chosen: Listed = []
    for entry in entries:
        found = _resolve(entry, listed)
        if found is None:
            invalid = entry
            break
        if isinstance(found, _Unknown):
            return listed, f"cannot tell which GPU {entry!r} is ({found}): every GPU kept", False
        if listed[found] not in chosen:
            chosen.append(listed[found])
    outcome = _kept_text(listed, chosen)
    if invalid is not None:
        outcome += f"; CUDA stops at the invalid entry {invalid!r}"
    differ = len({gpu.compute_capability for _, gpu in listed}) > 1
    if order == "FASTEST_FIRST" and differ and any(_INDEX.fullmatch(e) for e in entries):
        outcome += f"; indexes read in nvidia-smi's order ({DEVICE_ORDER}=FASTEST_FIRST may differ)"
    return chosen, outcome, len(chosen) == len(listed) and invalid is None


def _resolve(entry: str, listed: Listed) -> Resolved:
    """Which of ``listed`` an entry names: its position, cannot tell, or None (invalid)."""
    if _INDEX.fullmatch(entry):
        position = int(entry)
        return position if position < len(listed) else None
    old_mig = _MIG_OLD.fullmatch(entry)
    if old_mig:
        entry = old_mig.group(1)
    elif _MIG.fullmatch(entry):
        return _Unknown("a MIG id does not say which GPU holds it")
    if not _UUID.fullmatch(entry):
        return None
    if any(gpu.uuid is None for _, gpu in listed):
        return _Unknown("the GPUs' UUIDs are unknown")
    prefix = entry.lower()
    uuids = [(gpu.uuid or "").lower() for _, gpu in listed]
    matches = [position for position, uuid in enumerate(uuids) if uuid.startswith(prefix)]
    return matches[0] if len(matches) == 1 else None


def _kept_text(listed: Listed, chosen: Listed) -> str:
    left_out = [pair for pair in listed if pair not in chosen]
    if not left_out:
        return "every GPU kept"
    kept = f"kept {', '.join(_label(pair) for pair in chosen)}" if chosen else "no GPU kept"
    return f"{kept}; left out {', '.join(_label(pair) for pair in left_out)}"


def _label(pair: tuple[int, Gpu]) -> str:
    index, gpu = pair
    return f"GPU {index} ({gpu.name})" if gpu.name else f"GPU {index}"
