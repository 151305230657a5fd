"""Data and rule: which AMD GPU targets each ROCm build of torch carries kernels for.

A ROCm wheel is built for a fixed list of gfx targets (``PYTORCH_ROCM_ARCH``) and runs only
on those: there is no PTX-like fallback, and a gfx1031 is not a gfx1030 (users force that
with ``HSA_OVERRIDE_GFX_VERSION``, which AMD does not support). So a build fits a machine
when its list holds the gfx of every AMD GPU.

The wheel brings its own ROCm user-space libraries (HIP, rocBLAS, MIOpen ... are copied into
``torch/lib`` by pytorch/pytorch ``.ci/manywheel/build_rocm.sh``): the ROCm installed under
``/opt/rocm`` neither limits the choice nor is needed. What the machine must provide is the
amdgpu kernel driver (``/dev/kfd``), which AMD supports across a window of ROCm releases
(ROCm docs, "user and kernel-space support matrix"); torchfit reports the installed ROCm in
``why`` and leaves that window to the user.

Lists, one per ROCm variant, from ``torch.cuda.get_arch_list()`` of the released wheels:
astral-sh/uv @26a9dd4b ``crates/uv-torch/src/backend.rs`` (LINUX_AMD_GPU_DRIVERS, "inferred by
running torch.cuda.get_arch_list() for each ROCm version"), with the runtime outputs quoted
in astral-sh/uv#14086 (2.4.1+rocm6.0, 2.5.1+rocm6.2, 2.7.1+rocm6.2.4, 2.7.1+rocm6.3) and
astral-sh/uv#18730 (rocm7.2). Older ROCm builds (3.7-5.7) have no recorded list: unknown,
and never taken as "fits".
"""

from __future__ import annotations

from dataclasses import dataclass

from torchfit.variants import Variant


@dataclass(frozen=True)
class RocmArchs:
    """The gfx targets one ROCm build carries, and where the list comes from."""

    gfx: frozenset[str]
    source: str

    def serves(self, gfx: str) -> bool:
        return gfx in self.gfx

    def __str__(self) -> str:
        return " ".join(sorted(self.gfx, key=lambda g: (len(g), g)))


_UV = "uv backend.rs @26a9dd4b (runtime get_arch_list)"
_BASE = "gfx900 gfx906 gfx908 gfx90a gfx942 gfx1030 gfx1100"
_RDNA = f"{_BASE} gfx1101 gfx1102 gfx1200 gfx1201"


def _list(gfx: str, source: str) -> RocmArchs:
    return RocmArchs(frozenset(gfx.split()), source)


ROCM_ARCHS: dict[str, RocmArchs] = {
    "rocm6.0": _list(_BASE, f"2.4.1+rocm6.0 get_arch_list() in astral-sh/uv#14086; {_UV}"),
    "rocm6.1": _list(f"{_BASE} gfx1101", _UV),
    "rocm6.2": _list(_BASE, f"2.5.1+rocm6.2 get_arch_list() in astral-sh/uv#14086; {_UV}"),
    "rocm6.2.4": _list(_RDNA, f"2.7.1+rocm6.2.4 get_arch_list() in astral-sh/uv#14086; {_UV}"),
    "rocm6.3": _list(_RDNA, f"2.7.1+rocm6.3 get_arch_list() in astral-sh/uv#14086; {_UV}"),
    "rocm6.4": _list(_RDNA, _UV),
    "rocm7.0": _list(f"{_RDNA} gfx950", _UV),
    "rocm7.1": _list(f"{_RDNA} gfx950", _UV),
    "rocm7.2": _list(
        f"{_RDNA} gfx950 gfx1150 gfx1151", f"get_arch_list() in astral-sh/uv#18730; {_UV}"
    ),
}


def rocm_archs(variant: Variant) -> RocmArchs | None:
    """The gfx list of a ROCm variant's wheels, or None when unknown (or not ROCm).

    >>> rocm_archs(Variant.parse("rocm6.3")).serves("gfx1100")
    True
    """
    return ROCM_ARCHS.get(variant.tag) if variant.kind == "rocm" else None


def fitting_rocm(
    gfx: tuple[str, ...], candidates: tuple[Variant, ...]
) -> tuple[tuple[Variant, ...], tuple[Variant, ...]]:
    """(the ROCm variants whose lists serve every target, best first; those with no list).

    >>> builds = (Variant.parse("rocm6.2"), Variant.parse("rocm6.3"))
    >>> serving, unknown = fitting_rocm(("gfx1201",), builds)
    >>> [v.tag for v in serving]
    ['rocm6.3']
    """
    rocm = sorted((v for v in candidates if v.kind == "rocm"), key=Variant.sort_key, reverse=True)
    serving = tuple(
        v for v in rocm if (archs := rocm_archs(v)) and all(archs.serves(g) for g in gfx)
    )
    return serving, tuple(v for v in rocm if rocm_archs(v) is None)


def known_gfx() -> frozenset[str]:
    """Every target some ROCm build of torch carries."""
    return frozenset(g for archs in ROCM_ARCHS.values() for g in archs.gfx)
