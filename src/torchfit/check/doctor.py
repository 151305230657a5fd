"""`torchfit doctor`: explain an existing environment without changing it.

Each finding has a cause in plain words and, for a problem, the exact command that fixes it.
A ``torchfit install`` fix is never guessed: it is what the planner (``Session.plan``, with the
same settings) answers, so it runs on the machine it describes, under the same compat rule.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from packaging.version import Version

from torchfit._runner import Runner, run
from torchfit.check.verify import Verification, verify
from torchfit.choose.gpu_fit import GpuFit
from torchfit.choose.policy import Compat
from torchfit.choose.releases import cuda_builds
from torchfit.environment.target import ACTIVE_ENVIRONMENT, Target
from torchfit.errors import IndexFetchError, TorchfitError
from torchfit.machine.drivers import min_driver_for_cuda
from torchfit.machine.record import Detection, Overrides
from torchfit.variants import Variant, format_cuda, parse_cuda

if TYPE_CHECKING:
    from torchfit.choose.plan import Plan

#: The plan for one requirement (``"torch==2.8.0"``) with the run's settings; raises
#: TorchfitError when nothing fits.
Planner = Callable[[str], "Plan"]


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
    planner: Planner | None = None,
    overrides: Overrides | None = None,
) -> Diagnosis:
    """Check the torch in ``python`` and explain what is wrong, with fixes.

    ``planner`` answers each ``torchfit install`` fix before it is suggested (None: none is
    suggested); the fixes carry ``--python`` for another interpreter than this one,
    ``--compat minor`` when that is the rule, and the ``overrides`` the run was given.
    """
    verification = verify(python, detection, compat=compat, runner=runner)
    nvcc = runner(["nvcc", "--version"], timeout=30)
    toolkit = Toolkit(
        parse_nvcc_version(nvcc.stdout) if nvcc.returncode == 0 else None,
        env.get("CUDA_HOME") or env.get("CUDA_PATH"),
    )
    fixes = Fixes(planner, fix_flags(target, compat, overrides or Overrides()))
    findings = _findings(verification, detection, target, fixes)
    notes = _notes(verification, toolkit, target) + fixes.notes()
    return Diagnosis(detection, verification, toolkit, tuple(findings + notes))


def fix_flags(target: Target, compat: Compat, overrides: Overrides) -> tuple[str, ...]:
    """The options every fix command repeats, so that it asks what this run asked.

    >>> fix_flags(Target((3, 12), "3.12.0", (), (), "/env/bin/python"), "minor", Overrides())
    ('--python', '/env/bin/python', '--compat', 'minor')
    """
    flags: list[str] = []
    if target.interpreter and target.interpreter != sys.executable:
        flags += ["--python", target.interpreter]
    if compat == "minor":
        flags += ["--compat", "minor"]
    if overrides.cuda:
        flags += ["--cuda", format_cuda(overrides.cuda)]
    if overrides.driver:
        flags += ["--driver", overrides.driver]
    for arch in overrides.gpu_arch:
        flags += ["--gpu-arch", format_cuda(arch)]
    return tuple(flags)


class Fixes:
    """``torchfit install`` commands, each one the planner answered for this machine."""

    def __init__(self, planner: Planner | None, flags: Sequence[str]) -> None:
        self._planner = planner
        self._flags = tuple(flags)
        self._answers: dict[str, Plan | None] = {}
        self._unreachable: str | None = None  # the index did not answer: ask it no more

    def install(
        self,
        requirement: str,
        *,
        after: Sequence[str] = (),
        unless: tuple[str, Variant | None] | None = None,
    ) -> str | None:
        """The command that installs what the planner answers for ``requirement``, pinned
        (``torch==X --variant V``); ``after`` goes to the installer (after ``--``). None when
        nothing fits, or when the answer is ``unless`` (the build that is there already)."""
        plan = self._answer(requirement)
        torch = next((p for p in plan.packages if p.name == "torch"), None) if plan else None
        if plan is None or torch is None:
            return None
        version = Version(torch.version).public
        if unless is not None and unless == (version, plan.variant):
            return None
        argv = ["torchfit", "install", f"torch=={version}", "--variant", plan.variant.tag]
        argv += self._flags
        if after:
            argv += ["--", *after]
        return shlex.join(argv)

    def notes(self) -> list[Finding]:
        if self._unreachable is None:
            return []
        return [
            Finding(
                "note",
                "no torchfit command is suggested: the PyTorch index did not answer, so none"
                f" could be checked ({self._unreachable}).",
            )
        ]

    def _answer(self, requirement: str) -> Plan | None:
        if requirement not in self._answers:
            plan = None
            if self._planner is not None and self._unreachable is None:
                try:
                    plan = self._planner(requirement)
                except IndexFetchError as error:
                    self._unreachable = error.message
                except TorchfitError:  # no fitting build: not a fix, so none is offered
                    plan = None
            self._answers[requirement] = plan
        return self._answers[requirement]


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
    verification: Verification, detection: Detection, target: Target, fixes: Fixes
) -> list[Finding]:
    checks = {c.name: c for c in verification.checks}
    version, cuda = verification.torch_version, verification.torch_cuda
    if version is None:
        return [
            Finding(
                "problem",
                f"torch is not installed in {verification.python}.",
                _present(fixes.install("torch")),
            )
        ]
    base = Version(version).public
    variant = installed_variant(verification)
    there = (base, variant)
    found: list[Finding] = []
    if checks["import"].status == "fail":
        reinstall = ("--force-reinstall",)
        found.append(
            Finding(
                "problem",
                f"{checks['import'].detail}.",
                _present(
                    fixes.install(f"torch=={base}", after=reinstall)
                    or fixes.install("torch", after=reinstall)
                ),
            )
        )
    if detection.has_nvidia and cuda is None and not verification.facts.get("hip"):
        found.append(_cpu_build_on_a_gpu(base, version, detection, fixes, there))
    elif cuda is not None and detection.max_cuda is not None and checks["driver"].status == "fail":
        found.append(_driver_too_old(base, version, cuda, detection, fixes, there))
    if variant is not None and variant.kind == "cuda":
        found += _kernels(base, version, variant, detection, target, checks, fixes)
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


def _present(*fixes: str | None) -> tuple[str, ...]:
    """The fixes that exist, once each, in order."""
    return tuple(dict.fromkeys(fix for fix in fixes if fix))


def _same_or_newest(base: str, fixes: Fixes, there: tuple[str, Variant | None]) -> str | None:
    """Another build of the installed version, else the newest torch that fits."""
    return fixes.install(f"torch=={base}", unless=there) or fixes.install("torch", unless=there)


def _cpu_build_on_a_gpu(
    base: str,
    version: str,
    detection: Detection,
    fixes: Fixes,
    there: tuple[str, Variant | None],
) -> Finding:
    limit = detection.max_cuda or (0, 0)
    same = fixes.install(f"torch=={base}", unless=there)
    driver = None
    if same is None:  # no CUDA build of this version runs here: name the driver that would
        builds = [(v.version[0], v.version[1]) for v in cuda_builds(base)]  # best first
        newer = [cuda for cuda in builds if cuda > limit]
        needed = min_driver_for_cuda(newer[-1], detection.os) if newer else None
        if needed:
            driver = f"update the NVIDIA driver to >= {needed} for torch {base}'s CUDA builds"
    return Finding(
        "problem",
        f"torch {version} is a CPU build, but this machine has an NVIDIA GPU whose driver"
        f" supports CUDA {format_cuda(limit)}.",
        _present(same or fixes.install("torch", unless=there), driver),
    )


def _driver_too_old(
    base: str,
    version: str,
    cuda: str,
    detection: Detection,
    fixes: Fixes,
    there: tuple[str, Variant | None],
) -> Finding:
    driver = detection.driver_version or "(version unknown)"
    limit = format_cuda(detection.max_cuda or (0, 0))
    needed = min_driver_for_cuda(parse_cuda(cuda), detection.os)
    update = f"update the NVIDIA driver to >= {needed}" if needed else "update the NVIDIA driver"
    unlabeled = "+" not in version
    origin = " (an unlabeled wheel: the default build pip takes from PyPI)" if unlabeled else ""
    return Finding(
        "problem",
        f"torch {version}{origin} is built for CUDA {cuda}, but this NVIDIA driver ({driver})"
        f" supports CUDA up to {limit}, so torch.cuda.is_available() is False."
        " The system CUDA toolkit does not change this: the driver is what runs the wheel.",
        _present(_same_or_newest(base, fixes, there), update),
    )


def _kernels(
    base: str,
    version: str,
    variant: Variant,
    detection: Detection,
    target: Target,
    checks: Mapping[str, Any],
    fixes: Fixes,
) -> list[Finding]:
    arch = checks.get("arch")
    fit = GpuFit.for_machine(detection, target)
    if arch is not None and arch.status == "fail":
        missing = arch.detail
    elif fit.judge(Version(version), variant) is False:
        missing = "no kernels for " + ", ".join(fit.unserved(Version(version), variant))
    else:
        return []
    # The planner keeps only builds whose kernels serve every GPU: its answer is the fix.
    there = (Version(version).public, variant)
    return [
        Finding(
            "problem",
            f"torch {version} has {missing}: kernels fail with 'no kernel image is available"
            " for execution on the device', although torch.cuda.is_available() may say True.",
            _present(_same_or_newest(base, fixes, there)),
        )
    ]


def _visibility_fixes() -> tuple[str, ...]:
    return (
        "check that the GPU is visible to this process (CUDA_VISIBLE_DEVICES; in a container,"
        " run it with the NVIDIA runtime, e.g. docker run --gpus all)",
    )


def _notes(verification: Verification, toolkit: Toolkit, target: Target) -> list[Finding]:
    notes = []
    if target.chosen_by in ACTIVE_ENVIRONMENT:
        notes.append(
            Finding(
                "note",
                f"looked at {target.interpreter}, the active environment's interpreter"
                f" ({target.chosen_by}); --python PATH names another.",
            )
        )
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
