"""`torchfit doctor`: explain an existing environment without changing it.

Each finding has a cause in plain words and, for a problem, the exact command that fixes it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from packaging.version import Version

from torchfit._runner import Runner, run
from torchfit.check.verify import Verification, verify
from torchfit.choose.gpu_fit import GpuFit
from torchfit.choose.policy import Compat, cuda_runs
from torchfit.choose.releases import cuda_builds
from torchfit.environment.target import Target
from torchfit.machine.drivers import min_driver_for_cuda
from torchfit.machine.record import Detection
from torchfit.variants import Variant, format_cuda, parse_cuda


@dataclass(frozen=True)
class Finding:
    severity: str  # "ok" | "problem" | "note"
    message: str
    fixes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"severity": self.severity, "message": self.message, "fixes": list(self.fixes)}


@dataclass(frozen=True)
class Toolkit:
    nvcc: str | None  # the system CUDA toolkit's version, from `nvcc --version`
    cuda_home: str | None

    def to_json(self) -> dict[str, Any]:
        return {"nvcc": self.nvcc, "cuda_home": self.cuda_home}


@dataclass(frozen=True)
class Diagnosis:
    detection: Detection
    verification: Verification
    toolkit: Toolkit
    findings: tuple[Finding, ...]

    @property
    def healthy(self) -> bool:
        return all(f.severity != "problem" for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "detection": self.detection.to_json(),
            "torch": self.verification.to_json(),
            "toolkit": self.toolkit.to_json(),
            "findings": [f.to_json() for f in self.findings],
        }


def parse_nvcc_version(text: str) -> str | None:
    """The toolkit release in ``nvcc --version`` output.

    >>> parse_nvcc_version("Cuda compilation tools, release 10.1, V10.1.243")
    '10.1'
    """
    match = re.search(r"release (\d+\.\d+)", text)
    return match.group(1) if match else None


def diagnose(
    python: str,
    detection: Detection,
    target: Target,
    *,
    compat: Compat = "strict",
    runner: Runner = run,
    env: Mapping[str, str] = os.environ,
) -> Diagnosis:
    verification = verify(python, detection, compat=compat, runner=runner)
    nvcc = runner(["nvcc", "--version"], timeout=30)
    toolkit = Toolkit(
        parse_nvcc_version(nvcc.stdout) if nvcc.returncode == 0 else None,
        env.get("CUDA_HOME") or env.get("CUDA_PATH"),
    )
    findings = _findings(verification, detection, target, compat) + _notes(verification, toolkit)
    return Diagnosis(detection, verification, toolkit, tuple(findings))


def installed_variant(verification: Verification) -> Variant | None:
    """The installed build's variant: its local label, else what torch.version says."""
    version = verification.torch_version
    if version is None:
        return None
    label = Variant.from_label(Version(version).local)
    if label is not None:
        return label
    if verification.facts.get("hip"):
        return None
    cuda = verification.torch_cuda
    return Variant("cuda", parse_cuda(cuda)) if cuda else Variant("cpu")


def _findings(
    verification: Verification, detection: Detection, target: Target, compat: Compat
) -> list[Finding]:
    checks = {c.name: c for c in verification.checks}
    version, cuda = verification.torch_version, verification.torch_cuda
    if version is None:
        return [
            Finding(
                "problem",
                f"torch is not installed in {verification.python}.",
                ("torchfit install torch",),
            )
        ]
    base = Version(version).public
    variant = installed_variant(verification)
    found: list[Finding] = []
    if checks["import"].status == "fail":
        found.append(
            Finding(
                "problem",
                f"{checks['import'].detail}.",
                (f"torchfit install torch=={base} -- --force-reinstall",),
            )
        )
    if detection.has_nvidia and cuda is None and not verification.facts.get("hip"):
        found.append(
            Finding(
                "problem",
                f"torch {version} is a CPU build, but this machine has an NVIDIA GPU whose driver"
                f" supports CUDA {format_cuda(detection.max_cuda or (0, 0))}.",
                (f"torchfit install torch=={base}",),
            )
        )
    elif cuda is not None and detection.max_cuda is not None and checks["driver"].status == "fail":
        found.append(_driver_too_old(base, version, cuda, detection, compat))
    if variant is not None and variant.kind == "cuda":
        found += _kernels(base, version, variant, detection, target, checks)
    for name in ("cuda_available", "cudnn", "kernel"):
        check = checks.get(name)
        if check and check.status == "fail" and not found:
            found.append(Finding("problem", f"{check.detail}.", _visibility_fixes()))
    if not any(f.severity == "problem" for f in found):
        build = f"a CUDA {cuda} build" if cuda else "a CPU build"
        where = (
            f"the driver supports CUDA {format_cuda(detection.max_cuda)}"
            if detection.max_cuda
            else "no NVIDIA GPU was found"
        )
        found.append(Finding("ok", f"torch {version} is {build}, and {where}: it fits."))
    return found


def _driver_too_old(
    base: str, version: str, cuda: str, detection: Detection, compat: Compat
) -> Finding:
    driver = detection.driver_version or "(version unknown)"
    limit = format_cuda(detection.max_cuda or (0, 0))
    fixes = []
    runnable = [v for v in cuda_builds(base) if cuda_runs(v, detection, compat)]
    if runnable:
        fixes.append(f"torchfit install torch=={base} --variant {runnable[0].tag}")
    needed = min_driver_for_cuda(parse_cuda(cuda), detection.os)
    fixes.append(
        f"update the NVIDIA driver to >= {needed}" if needed else "update the NVIDIA driver"
    )
    unlabeled = "+" not in version
    origin = " (an unlabeled wheel: the default build pip takes from PyPI)" if unlabeled else ""
    return Finding(
        "problem",
        f"torch {version}{origin} is built for CUDA {cuda}, but this NVIDIA driver ({driver})"
        f" supports CUDA up to {limit}, so torch.cuda.is_available() is False."
        " The system CUDA toolkit does not change this: the driver is what runs the wheel.",
        tuple(fixes),
    )


def _kernels(
    base: str,
    version: str,
    variant: Variant,
    detection: Detection,
    target: Target,
    checks: Mapping[str, Any],
) -> list[Finding]:
    arch = checks.get("arch")
    fit = GpuFit.for_machine(detection, target)
    if arch is not None and arch.status == "fail":
        missing = arch.detail
    elif fit.judge(Version(version), variant) is False:
        missing = "no kernels for " + ", ".join(fit.unserved(Version(version), variant))
    else:
        return []
    serving = [
        v
        for v in cuda_builds(base)
        if fit.judge(Version(base), v) and cuda_runs(v, detection, "strict")
    ]
    fixes = [f"torchfit install torch=={base} --variant {serving[0].tag}"] if serving else []
    fixes.append("torchfit install torch (the newest build that serves every GPU)")
    return [
        Finding(
            "problem",
            f"torch {version} has {missing}: kernels fail with 'no kernel image is available"
            " for execution on the device', although torch.cuda.is_available() may say True.",
            tuple(fixes),
        )
    ]


def _visibility_fixes() -> tuple[str, ...]:
    return (
        "check that the GPU is visible to this process (CUDA_VISIBLE_DEVICES; in a container,"
        " run it with the NVIDIA runtime, e.g. docker run --gpus all)",
    )


def _notes(verification: Verification, toolkit: Toolkit) -> list[Finding]:
    notes = []
    if toolkit.nvcc or toolkit.cuda_home:
        what = f"CUDA toolkit {toolkit.nvcc} (nvcc)" if toolkit.nvcc else "a CUDA toolkit"
        where = f" at CUDA_HOME={toolkit.cuda_home}" if toolkit.cuda_home else ""
        notes.append(
            Finding(
                "note",
                f"{what}{where} is installed. pip wheels of torch bundle their own CUDA runtime, so"
                " its version does not matter to them; it matters only to compile CUDA extensions.",
            )
        )
    cudnn = verification.facts.get("cudnn")
    if verification.torch_cuda:
        inside = f" (version {cudnn})" if cudnn else ""
        notes.append(
            Finding("note", f"cuDNN comes inside the wheel{inside}; a system cuDNN is not used.")
        )
    return notes
