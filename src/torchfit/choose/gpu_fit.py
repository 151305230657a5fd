"""The GPU fit: a CUDA build fits only when its kernels serve every GPU of the machine.

Pure functions over a Detection, a Target and the kernel table in ``archs``.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.version import Version

from torchfit.choose.archs import (
    ArchList,
    arch_list,
    floor_miss,
    last_known_arch_list,
    min_torch_for,
)
from torchfit.choose.releases import cuda_builds, known_variants
from torchfit.environment.target import Target
from torchfit.errors import NoCompatibleWheel
from torchfit.machine.record import Detection
from torchfit.variants import Variant


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
    or PTX compute_AB with A.B <= X.Y (see ``archs``). A build with no known kernel list is
    rejected only by the CUDA floors and drops (sm_100 needs a CUDA >= 12.8 build).
    """

    gpus: tuple[tuple[str, tuple[int, int]], ...] = ()
    platform: str | None = None
    runnable: tuple[Variant, ...] = ()  # what the driver can run: hints name only these
    enforce: bool = True  # False for an explicit --variant: a miss is warned of, not refused

    @classmethod
    def for_machine(
        cls,
        detection: Detection,
        target: Target,
        runnable: tuple[Variant, ...] = (),
        *,
        enforce: bool = True,
    ) -> GpuFit:
        gpus = tuple(
            (gpu.name or f"GPU {i}", gpu.compute_capability)
            for i, gpu in enumerate(detection.gpus)
            if gpu.compute_capability is not None
        )
        return cls(gpus, arch_platform(target), runnable, enforce)

    def _checks(self, variant: Variant) -> bool:
        return bool(self.gpus) and self.platform is not None and variant.kind == "cuda"

    def judge(self, version: Version, variant: Variant) -> bool | None:
        """True: serves every GPU; False: misses one; None: unknown, or nothing to check."""
        if not self._checks(variant):
            return None
        if self.unserved(version, variant):
            return False
        return None if self._kernels(version, variant) is None else True

    def unserved(self, version: Version, variant: Variant) -> list[str]:
        """The GPUs this build has no kernels for: by its kernel list where one is known; by
        the CUDA floors and drops (``kernels.FLOORS``, ``DROPS``) where it is assumed or
        unknown."""
        if not self._checks(variant):
            return []
        found = self._kernels(version, variant)
        guessed = found is None or found[1] is not None
        return [
            _label(name, cc)
            for name, cc in self.gpus
            if (found is not None and not found[0].serves(cc))
            or (guessed and floor_miss(str(version), variant, cc))
        ]

    def describe(self, version: Version, variant: Variant) -> str | None:
        """A reason line for the chosen build, or a warning: its kernels are unknown, or it
        misses a GPU (only an explicit ``--variant`` lets such a build be chosen)."""
        if not self._checks(variant):
            return None
        found = self._kernels(version, variant)
        missing = self.unserved(version, variant)
        if missing:
            return f"warning: {self.will_fail(version, variant, missing)}"
        gpus = ", ".join(_label(name, cc) for name, cc in self.gpus)
        if found is None:
            return (
                f"warning: no known kernel list for torch {version} on {self.platform};"
                f" {gpus} checked only against the CUDA version floors"
            )
        kernels, assumed = found
        origin = f"assumed: torch {assumed}" if assumed else kernels.source
        return f"torch {version} carries {kernels} ({origin}): serves {gpus}"

    def will_fail(self, version: Version, variant: Variant, missing: list[str]) -> str:
        """What a plan says of a build that misses GPUs: which, and what would serve them."""
        found = self._kernels(version, variant)
        carries = f" (it carries {found[0]})" if found else ""
        reasons = [
            why
            for name, cc in self.gpus
            if _label(name, cc) in missing and (why := floor_miss(str(version), variant, cc))
        ]
        why = f" ({'; '.join(dict.fromkeys(reasons))})" if reasons and not found else ""
        hints = [
            self._serving_hint(label, cc, Version(version.public))
            for name, cc in self.gpus
            if (label := _label(name, cc)) in missing and self.platform is not None
        ]
        return (
            f"torch {version} has no kernels for {', '.join(missing)}{carries}{why}: CUDA calls"
            " there will fail with 'no kernel image is available'; " + "; ".join(hints)
        )

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
        if not self._checks(variant):
            return None
        assert self.platform is not None
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
        for sibling in known_variants():
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
