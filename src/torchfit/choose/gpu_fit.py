"""The GPU fit: a CUDA build fits only when its kernels serve every GPU of the machine.

Pure functions over a Detection, a Target and the kernel table in ``archs``.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.version import Version

from torchfit.choose.archs import ArchList, arch_list, last_known_arch_list, min_torch_for
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
    or PTX compute_AB with A.B <= X.Y (see ``archs``). Unknown kernel lists never reject.
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
