"""Source: the CUDA a container image was built for, from its environment variables.

NVIDIA's ``nvidia/cuda`` images set ``NVIDIA_REQUIRE_CUDA`` (the NVIDIA container runtime
refuses to start them on a host whose driver is too old) and ``CUDA_VERSION``; conda reads
``CONDA_OVERRIDE_CUDA`` in place of a driver it cannot see. They are asked only when no
driver answered (a ``docker build`` sees none): the image says which CUDA its runtime needs,
so the machines it runs on have a driver for at least that CUDA, and torchfit plans as if the
driver's maximum CUDA were that version (the strict rule then admits builds up to it).

``NVIDIA_VISIBLE_DEVICES`` set to ``void``, ``none`` or the empty string means the container
runtime exposes no GPU (NVIDIA Container Toolkit: ``none`` mounts the driver's libraries
but no device; ``void`` and empty behave as if the runtime were plain runc). Then these
variables are not used and the plan is CPU. It never hides a driver that answered: in CDI
mode the toolkit sets ``NVIDIA_VISIBLE_DEVICES=void`` while it injects the GPUs itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from torchfit.machine.record import (
    CONDA_OVERRIDE_CUDA,
    CUDA_VERSION,
    IMAGE_VARIABLES,
    REQUIRE_CUDA,
    VISIBLE_DEVICES,
    Found,
    Probe,
    clip,
    dotted,
)

# ASCII digits only; a major of 1-2 digits and a minor of 1-2 digits is every CUDA so far.
_VERSION = r"([0-9]{1,2})(?:\.([0-9]{1,2}))?(?:\.[0-9]{1,6})?"
_REQUIRE_TERM = re.compile(r"cuda>=" + _VERSION)
_DOTTED = re.compile(_VERSION)
_HIDING = ("void", "none", "")


def _pair(match: re.Match[str]) -> tuple[int, int]:
    return int(match.group(1)), int(match.group(2) or 0)


def parse_require_cuda(text: str) -> tuple[int, int] | None:
    """The CUDA of the ``cuda>=X.Y`` constraint in ``NVIDIA_REQUIRE_CUDA``, or None.

    The value is constraints joined by spaces (any one may hold) and commas (all must): the
    ``brand=…,driver>=…`` groups are the older drivers a datacenter GPU may use instead
    (forward compatibility); the ``cuda>=`` term is the image's own CUDA.

    >>> parse_require_cuda("cuda>=12.4 brand=tesla,driver>=470,driver<471")
    (12, 4)
    """
    for term in text.split():
        for constraint in term.split(","):
            match = _REQUIRE_TERM.fullmatch(constraint.strip())
            if match:
                return _pair(match)
    return None


def parse_cuda_version(text: str) -> tuple[int, int] | None:
    """The (major, minor) of ``CUDA_VERSION`` or ``CONDA_OVERRIDE_CUDA``, or None.

    >>> parse_cuda_version("12.4.1"), parse_cuda_version("9.0.176"), parse_cuda_version("12")
    ((12, 4), (9, 0), (12, 0))
    """
    match = _DOTTED.fullmatch(text.strip())
    return _pair(match) if match else None


def gpus_hidden(value: str | None) -> bool:
    """Whether ``NVIDIA_VISIBLE_DEVICES`` (None: unset) says no GPU will be visible.

    >>> gpus_hidden("void"), gpus_hidden("all"), gpus_hidden(None)
    (True, False, False)
    """
    return value is not None and value.strip().lower() in _HIDING


_PARSERS = {
    REQUIRE_CUDA: parse_require_cuda,
    CUDA_VERSION: parse_cuda_version,
    CONDA_OVERRIDE_CUDA: parse_cuda_version,
}
_UNREAD = {
    REQUIRE_CUDA: "no cuda>=X.Y term",
    CUDA_VERSION: "not a CUDA version (X.Y.Z)",
    CONDA_OVERRIDE_CUDA: "not a CUDA version (X.Y)",
}


def probe_image(env: Mapping[str, str]) -> tuple[Found, ...]:
    """The trace lines of the image's variables, in order, the answer (if any) last.

    Only variables that are set get a line; one that cannot be read is marked failed
    (the plan warns about it) and the next is asked. Nothing here raises.
    """
    hidden = env.get(VISIBLE_DEVICES)
    if gpus_hidden(hidden):
        outcome = "no GPU will be visible: the image's CUDA variables are not used"
        return (Found(Probe(VISIBLE_DEVICES, hidden, outcome)),)
    found: list[Found] = []
    for name in IMAGE_VARIABLES:
        value = env.get(name, "").strip()
        if not value:
            continue
        cuda = _PARSERS[name](value)
        if cuda is None:
            outcome = f"ignored: {_UNREAD[name]}"
            found.append(Found(Probe(name, clip(value), outcome, failed=True)))
            continue
        outcome = f"CUDA {dotted(cuda)}: the image's CUDA (no driver visible)"
        found.append(Found(Probe(name, clip(value), outcome), max_cuda=cuda))
        break
    return tuple(found)
