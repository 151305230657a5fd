"""The variant policy: which wheel variants this machine can run, best first.

Pure functions over a :class:`~torchfit.detection.Detection`; the README's policy
table is the prose form of this module.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from packaging.version import Version

from torchfit.choose.archs import ArchList, arch_list, last_known_arch_list, min_torch_for
from torchfit.choose.releases import RELEASES, cuda_builds
from torchfit.environment.target import Target
from torchfit.errors import NoCompatibleWheel
from torchfit.machine.detect import Detection
from torchfit.machine.drivers import min_driver_for_cuda, minor_compat_floor, parse_driver_version
from torchfit.variants import Variant, format_cuda

Compat = Literal["strict", "minor"]

#: Every variant the release table knows, best first.
KNOWN_VARIANTS: tuple[Variant, ...] = tuple(
    sorted(
        {Variant.parse(tag) for release in RELEASES for tag in release.variants},
        key=Variant.sort_key,
        reverse=True,
    )
)


@dataclass(frozen=True)
class Choice:
    """The variants to consider, best first, and why."""

    variants: tuple[Variant, ...]
    reasons: tuple[str, ...]
    explicit: bool = False


def _driver_at_least(driver: str | None, floor: str | None) -> bool:
    have, need = parse_driver_version(driver or ""), parse_driver_version(floor or "")
    return have is not None and need is not None and have >= need


def cuda_runs(variant: Variant, detection: Detection, compat: Compat) -> bool:
    """Whether the detected driver can run a CUDA variant's wheels."""
    cuda, limit = variant.cuda, detection.max_cuda
    if cuda is None or limit is None:
        return False
    if cuda <= limit:
        return True
    if compat != "minor" or cuda[0] != limit[0]:
        return False
    # NVIDIA minor-version compatibility: same major, driver at or above that major's floor.
    # With only a CUDA version known, the least driver that reports it stands in.
    driver = detection.driver_version or min_driver_for_cuda(limit, detection.os)
    return _driver_at_least(driver, minor_compat_floor(cuda[0], detection.os))


def choose_variants(
    detection: Detection,
    *,
    compat: Compat = "strict",
    explicit: Variant | None = None,
    force: bool = False,
    target_os: str,
    candidates: Iterable[Variant] = KNOWN_VARIANTS,
) -> Choice:
    """The variants to search, best first.

    Raises NoCompatibleWheel when a GPU is present but nothing fits, or when an
    explicit variant is newer than the driver (unless ``force``).
    """
    if explicit is not None:
        return _check_explicit(explicit, detection, compat, force)
    if target_os == "macos":
        return Choice((Variant("cpu"),), ("macOS wheels are CPU builds (MPS is built in)",))
    if not detection.has_nvidia:
        if detection.suspected_gpu:
            raise NoCompatibleWheel(
                "an NVIDIA driver seems present but its CUDA version could not be read"
                " (see `torchfit detect`)",
                hint="pass --cuda X.Y (the driver's maximum CUDA) or --variant cpu",
            )
        return Choice((Variant("cpu"),), ("no NVIDIA GPU found: CPU wheels",))
    if detection.max_cuda is None:
        raise NoCompatibleWheel(
            f"NVIDIA driver {detection.driver_version} is older than every CUDA release"
            " torchfit knows",
            hint="update the NVIDIA driver, or pass --variant cpu to install CPU wheels",
        )
    runnable = tuple(v for v in candidates if cuda_runs(v, detection, compat))
    limit = format_cuda(detection.max_cuda)
    if not runnable:
        raise NoCompatibleWheel(
            f"the NVIDIA driver supports CUDA {limit}, older than every known CUDA build",
            hint="update the NVIDIA driver, or pass --variant cpu to install CPU wheels",
        )
    rule = "same-major minor-version compatibility" if compat == "minor" else "CUDA <= driver"
    reason = (
        f"driver supports CUDA {limit} ({detection.source}); variants allowed by {rule}: "
        + ", ".join(v.tag for v in runnable)
    )
    return Choice(runnable, (reason,))


def _check_explicit(variant: Variant, detection: Detection, compat: Compat, force: bool) -> Choice:
    reason = f"variant {variant.tag} given explicitly"
    if variant.kind != "cuda" or detection.max_cuda is None:
        if variant.kind == "cuda":
            reason += " (no driver known: accepted as given)"
        return Choice((variant,), (reason,), explicit=True)
    if cuda_runs(variant, detection, compat):
        return Choice((variant,), (reason + ", and the driver can run it",), explicit=True)
    assert variant.cuda is not None
    needed = min_driver_for_cuda(variant.cuda, detection.os)
    message = (
        f"variant {variant.tag} needs CUDA {format_cuda(variant.cuda)}, but the driver"
        f" supports only CUDA {format_cuda(detection.max_cuda)}"
    )
    if not force:
        need = f"update the driver to >= {needed}, " if needed else "update the driver, "
        raise NoCompatibleWheel(message, hint=need + "or pass --force to install it anyway")
    return Choice((variant,), (reason + f"; forced although {message}",), explicit=True)


def driver_needed(variants: Iterable[Variant], os: str) -> str | None:
    """The lowest driver that runs any of these CUDA variants, for error messages."""
    floors = [min_driver_for_cuda(v.cuda, os) for v in variants if v.cuda is not None]
    known = [f for f in floors if f and parse_driver_version(f)]
    return min(known, key=lambda f: parse_driver_version(f) or ()) if known else None


def arch_platform(target: Target) -> str | None:
    """The kernel-table platform of a target: "linux", "linux-aarch64", "windows" or None."""
    first = target.platforms[0] if target.platforms else ""
    if target.os == "windows":
        return "windows"
    if target.os == "linux":
        return "linux-aarch64" if first.endswith("aarch64") else "linux"
    return None


@dataclass(frozen=True)
class GpuFit:
    """Rule: a CUDA build fits when its kernels serve every GPU of the machine.

    A build serves compute capability X.Y when it carries SASS sm_XZ (same major, Z <= Y)
    or PTX compute_AB with A.B <= X.Y (see ``_archs``). Unknown kernel lists never reject.
    """

    gpus: tuple[tuple[str, tuple[int, int]], ...] = ()
    platform: str | None = None
    runnable: tuple[Variant, ...] = ()  # what the driver can run: hints name only these

    @classmethod
    def for_machine(
        cls, detection: Detection, target: Target, runnable: tuple[Variant, ...] = ()
    ) -> GpuFit:
        gpus = tuple(
            (gpu.name or f"GPU {i}", gpu.compute_capability)
            for i, gpu in enumerate(detection.gpus)
            if gpu.compute_capability is not None
        )
        return cls(gpus, arch_platform(target), runnable)

    def judge(self, version: Version, variant: Variant) -> bool | None:
        """True: serves every GPU; False: misses one; None: unknown, or nothing to check."""
        found = self._kernels(version, variant)
        if found is None:
            return None
        return all(found[0].serves(cc) for _, cc in self.gpus)

    def unserved(self, version: Version, variant: Variant) -> list[str]:
        found = self._kernels(version, variant)
        return [_label(name, cc) for name, cc in self.gpus if found and not found[0].serves(cc)]

    def describe(self, version: Version, variant: Variant) -> str | None:
        """A reason line for the chosen build (or a warning when its kernels are unknown)."""
        if not self.gpus or self.platform is None or variant.kind != "cuda":
            return None
        found = self._kernels(version, variant)
        gpus = ", ".join(_label(name, cc) for name, cc in self.gpus)
        if found is None:
            return (
                f"warning: no known kernel list for torch {version} on {self.platform};"
                f" {gpus} not checked"
            )
        kernels, assumed = found
        origin = f"assumed: torch {assumed}" if assumed else kernels.source
        return f"torch {version} carries {kernels} ({origin}): serves {gpus}"

    def explain(self, unserved: dict[tuple[str, str], list[str]]) -> NoCompatibleWheel:
        """The error when every build the driver could run lacks kernels for some GPU."""
        missing = sorted({gpu for gpus in unserved.values() for gpu in gpus})
        tried = ", ".join(sorted({f"{v}+{tag}" if "+" not in v else v for v, tag in unserved}))
        hints = []
        versions = sorted({Version(v.split("+")[0]) for v, _ in unserved}, reverse=True)
        for name, cc in self.gpus:
            if _label(name, cc) not in missing or self.platform is None:
                continue
            hints.append(self._serving_hint(_label(name, cc), cc, versions[0]))
        return NoCompatibleWheel(
            f"no candidate build has kernels for {', '.join(missing)} (tried {tried})",
            hint="; ".join(hints) or "pass --gpu-arch to correct the GPU list, or --variant cpu",
        )

    def _serving_hint(self, label: str, cc: tuple[int, int], version: Version) -> str:
        """Which builds would serve one GPU: of the same torch first, else the first torch."""
        assert self.platform is not None
        same = [
            variant
            for variant in cuda_builds(str(version))
            if variant in self.runnable
            and (kernels := arch_list(str(version), variant, self.platform))
            and kernels.serves(cc)
        ]
        if same:
            tags = " or ".join(v.tag for v in same)
            return f"torch {version} with {tags} serves {label} (--variant {same[0].tag})"
        serving = min_torch_for(cc, self.platform)
        runnable = [(m, t) for m, t in serving if Variant.parse(t) in self.runnable]
        if runnable:
            first = runnable[0][0]
            tags = " or ".join(sorted({t for m, t in runnable if m == first}))
            return f"{label} needs torch >= {first} with {tags}"
        if serving:
            first, tag = serving[0]
            return f"{label} needs torch >= {first} with {tag}, which needs a newer NVIDIA driver"
        return f"no known torch build serves {label}"

    def _kernels(self, version: Version, variant: Variant) -> tuple[ArchList, str | None] | None:
        """The build's kernel list, and the release it was assumed from when it has none."""
        if not self.gpus or self.platform is None or variant.kind != "cuda":
            return None
        known = arch_list(str(version), variant, self.platform)
        if known is not None:
            return known, None
        # No list of its own. Guess low rather than high: a wrong "no" costs an older torch, a
        # wrong "yes" costs "no kernel image" at run time. So: the variant's last known list,
        # narrowed by the lists this release has for other builds of the same CUDA major.
        older = last_known_arch_list(str(version), variant, self.platform)
        if older is None:
            return None
        series, kernels = older
        assumed = f"{series}'s {variant.tag} list"
        for sibling in KNOWN_VARIANTS:
            if sibling.cuda is None or variant.cuda is None or sibling.cuda[0] != variant.cuda[0]:
                continue
            known = arch_list(str(version), sibling, self.platform)
            if known is not None and known.sass and sibling != variant:
                # Only what a release dropped at the old end carries over: a sibling built
                # with an older toolkit lacks new archs for want of a compiler, not by choice.
                oldest = min(known.sass)
                if any(a < oldest for a in kernels.sass):
                    kernels = ArchList(
                        tuple(a for a in kernels.sass if a >= oldest),
                        tuple(a for a in kernels.ptx if a >= oldest),
                        source=kernels.source,
                    )
                    assumed += f", without what {version.base_version} {sibling.tag} dropped"
        return kernels, assumed


def _label(name: str, cc: tuple[int, int]) -> str:
    return f"{name} (sm_{cc[0]}{cc[1]})"
