"""Prove what is installed: torch's version, its variant and CUDA, and (with a GPU) that
CUDA works, all read inside the target interpreter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torchfit._probes import probe_answer, probe_command
from torchfit._runner import Runner, run
from torchfit.choose.archs import ArchList, parse_arch_list
from torchfit.choose.policy import Compat, cuda_runs
from torchfit.errors import VerificationFailed
from torchfit.machine.amd import KFD, parse_gfx
from torchfit.machine.amd import TOOLS as AMD_TOOLS
from torchfit.machine.intel import SOURCE as PCI_SOURCE
from torchfit.machine.record import Detection
from torchfit.variants import Variant, format_cuda, parse_cuda


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # "pass" | "fail" | "skipped"
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail}


@dataclass(frozen=True)
class Verification:
    python: str
    torch_version: str | None
    torch_cuda: str | None
    checks: tuple[Check, ...] = field(default=())
    facts: dict[str, Any] = field(default_factory=dict, compare=False)  # what the probe read

    @property
    def ok(self) -> bool:
        return all(check.status != "fail" for check in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "python": self.python,
            "torch_version": self.torch_version,
            "torch_cuda": self.torch_cuda,
            "checks": [check.to_json() for check in self.checks],
            "arch_list": self.facts.get("arch_list"),
            "cudnn": self.facts.get("cudnn"),
        }

    def raise_for_failure(self) -> None:
        failed = [c for c in self.checks if c.status == "fail"]
        if failed:
            raise VerificationFailed(
                "verification failed: " + "; ".join(f"{c.name}: {c.detail}" for c in failed),
                hint=_hint(failed[0]),
            )


def _hint(check: Check) -> str:
    if check.name == "installed":
        return "run `torchfit install torch`"
    if check.name == "driver":
        return "install a build the driver can run: `torchfit install torch` chooses one"
    return "reinstall with `torchfit install torch -- --force-reinstall`, or see `torchfit doctor`"


def read_torch(
    python: str, *, import_torch: bool, ask_cuda: bool = False, runner: Runner = run
) -> dict[str, Any]:
    """The facts the torch probe reports from the target interpreter.

    Reads the installed files first, then (when asked) imports torch in a second run, so a
    torch whose import crashes or hangs still reports its version and CUDA.
    """
    done = runner(probe_command(python, "installed", "torch", "static"), timeout=120)
    static = _parse(done.stdout) if done.returncode == 0 else None
    if static is None:
        raise VerificationFailed(f"could not inspect torch in {python}: {done.tail(1)}")
    if not import_torch or static["version"] is None:
        return static
    mode = ["import", "gpu"] if ask_cuda else ["import"]
    done = runner(probe_command(python, "installed", "torch", *mode), timeout=600)
    facts = _parse(done.stdout) if done.returncode == 0 else None
    if facts is None:
        died = f"the interpreter died importing torch (exit {done.returncode}): {done.tail(1)}"
        return {**static, "import_error": died}
    return facts


_TEXT_FACTS = ("version", "cuda", "hip", "import_error")


def _parse(stdout: str) -> dict[str, Any] | None:
    """The torch probe's facts, or None when the answer is not of their shape."""
    facts = probe_answer(stdout)
    if not isinstance(facts, dict):
        return None
    if any(
        name not in facts or not isinstance(facts[name], (str, type(None))) for name in _TEXT_FACTS
    ):
        return None
    return facts


def verify(
    python: str,
    detection: Detection,
    *,
    expected_version: str | None = None,
    expected_variant: Variant | None = None,
    compat: Compat = "strict",
    forced: bool = False,
    runner: Runner = run,
) -> Verification:
    """Check the torch installed in ``python`` against a plan (when given) and the machine.

    Imports torch in ``python``: a build that does not import is not installed. With a GPU
    probed (not an override), also asks CUDA: availability, kernels for every device, cuDNN,
    and one tiny kernel launch.
    """
    # A given driver or an image's CUDA is a simulation (a Docker build): no GPU to ask.
    # CUDA_VISIBLE_DEVICES="" (or the like) hides every GPU from this process too.
    hidden = bool(detection.hidden) and not any(g.vendor == "nvidia" for g in detection.gpus)
    gpu_present = (detection.probed and not hidden) or _vendor_probed(detection)
    facts = read_torch(python, import_torch=True, ask_cuda=gpu_present, runner=runner)
    version, cuda = facts["version"], facts["cuda"]
    if version is None:
        missing = Check("installed", "fail", f"torch is not installed in {python}")
        return Verification(python, None, None, (missing,), facts)
    checks = [Check("installed", "pass", f"torch {version}")]
    if expected_version is not None:
        same = version == expected_version
        detail = f"expected {expected_version}, found {version}"
        checks.append(Check("version", "pass" if same else "fail", detail))
    if expected_variant is not None:
        checks.append(_variant_check(expected_variant, facts))
    if facts["import_error"]:
        checks.append(Check("import", "fail", f"import torch failed: {facts['import_error']}"))
    else:
        checks.append(Check("import", "pass", "import torch works"))
    if forced:
        checks.append(Check("driver", "skipped", "--force: the driver check was waived"))
    elif facts.get("hip") or facts.get("xpu"):
        checks.append(_vendor_build_check(facts, detection))
    else:
        checks.append(_driver_check(cuda, detection, compat, expected_variant))
    if gpu_present and not detection.has_nvidia and not facts["import_error"]:
        checks += _vendor_gpu_checks(facts, detection)
    else:
        checks += _gpu_checks(facts, detection, gpu_present)
    return Verification(python, version, cuda, tuple(checks), facts)


def _vendor_probed(detection: Detection) -> bool:
    """Whether an AMD or Intel GPU was seen on this machine (not named by --gpu-arch)."""
    seen = (KFD, *AMD_TOOLS, PCI_SOURCE)
    return bool(detection.amd_gfx or detection.intel_gpus) and any(
        p.source in seen and not p.outcome.startswith(("no ", "integrated"))
        for p in detection.trace
    )


def _vendor_build_check(facts: dict[str, Any], detection: Detection) -> Check:
    """The build against the machine's GPUs: ROCm for AMD, XPU for a discrete Intel GPU."""
    if facts.get("hip"):
        if detection.amd_gfx or not detection.gpus:
            return Check("driver", "pass", f"ROCm build (HIP {facts['hip']})")
        return Check("driver", "fail", f"a ROCm build (HIP {facts['hip']}) on a non-AMD machine")
    if detection.intel_gpus or not detection.gpus:
        return Check("driver", "pass", f"XPU build ({facts['xpu']})")
    return Check("driver", "fail", "an XPU build on a machine without an Intel GPU")


def _vendor_gpu_checks(facts: dict[str, Any], detection: Detection) -> list[Check]:
    """An AMD GPU through torch.cuda (HIP), an Intel GPU through torch.xpu: available, kernels
    for every device, one tiny kernel launch."""
    xpu = bool(detection.intel_gpus) and not detection.amd_gfx
    api = "torch.xpu" if xpu else "torch.cuda"
    device = "xpu" if xpu else "cuda"
    available = facts.get("xpu_available") if xpu else facts.get("cuda_available")
    if not available:
        names = ("gpu_available", "arch", "kernel")
        built = "an XPU" if xpu else "a ROCm"
        why = f"{api}.is_available() is False" + (
            "" if facts.get("hip" if not xpu else "xpu") else f" (not {built} build)"
        )
        return [Check(names[0], "fail", why)] + [
            Check(n, "skipped", "no GPU available") for n in names[1:]
        ]
    checks = [Check("gpu_available", "pass", f"{api}.is_available() is True")]
    if not xpu:
        carried = [g for a in facts.get("arch_list") or [] if (g := parse_gfx(a))]
        missing = [
            d.get("gfx") or d["name"]
            for d in facts.get("devices") or []
            if parse_gfx(d.get("gfx") or "") not in carried
        ]
        listed = " ".join(carried) or "(none)"
        checks.append(
            Check("arch", "fail", f"no kernels for {', '.join(missing)} in this build ({listed})")
            if missing
            else Check("arch", "pass", f"every GPU is served by {listed}")
        )
    if facts.get("kernel_error"):
        detail = f"torch.ones(1, device='{device}') + 1 failed: {facts['kernel_error']}"
        checks.append(Check("kernel", "fail", detail))
    else:
        checks.append(Check("kernel", "pass", f"torch.ones(1, device='{device}') + 1 ran"))
    return checks


def _variant_check(expected: Variant, facts: dict[str, Any]) -> Check:
    if expected.kind == "xpu":
        xpu = facts.get("xpu")
        detail = f"expected an XPU build, torch.version.xpu = {xpu}"
        return Check("variant", "pass" if xpu else "fail", detail)
    if expected.kind == "rocm":
        hip = facts["hip"]
        return Check(
            "variant",
            "pass" if hip else "fail",
            f"expected a ROCm build, torch.version.hip = {hip}",
        )
    want = format_cuda(expected.cuda) if expected.cuda else None
    found = facts["cuda"]
    detail = f"expected torch.version.cuda = {want}, found {found}"
    return Check("variant", "pass" if found == want else "fail", detail)


def _gpu_checks(facts: dict[str, Any], detection: Detection, gpu_present: bool) -> list[Check]:
    names = ("cuda_available", "arch", "cudnn", "kernel")
    if not gpu_present or facts["import_error"]:
        why = (
            "import torch failed"
            if facts["import_error"]
            else "every GPU is hidden by a visible-devices variable (see `torchfit detect`)"
            if detection.hidden and detection.probed
            else f"no driver probed (CUDA from {detection.source})"
            if detection.has_nvidia
            else "no NVIDIA GPU detected"
        )
        return [Check(name, "skipped", why) for name in names]
    if not facts["cuda_available"]:
        failed = Check("cuda_available", "fail", "torch.cuda.is_available() is False")
        return [failed] + [Check(n, "skipped", "CUDA is not available") for n in names[1:]]
    checks = [Check("cuda_available", "pass", "torch.cuda.is_available() is True")]
    built = " ".join(facts.get("arch_list") or []) or "(none)"
    sass, ptx = parse_arch_list(built if built != "(none)" else "")
    kernels = ArchList(sass, ptx, source="torch.cuda.get_arch_list()")
    unserved = [
        f"{d['name']} (sm_{d['capability'][0]}{d['capability'][1]})"
        for d in facts.get("devices") or []
        if not kernels.serves((d["capability"][0], d["capability"][1]))
    ]
    if unserved:
        detail = f"no kernels for {', '.join(unserved)} in this build ({built})"
        checks.append(Check("arch", "fail", detail))
    else:
        checks.append(Check("arch", "pass", f"every GPU is served by {built}"))
    cudnn = facts.get("cudnn")
    checks.append(
        Check("cudnn", "pass", f"cuDNN {cudnn}")
        if cudnn
        else Check("cudnn", "fail", "torch.backends.cudnn.version() is None in a CUDA build")
    )
    if facts.get("kernel_error"):
        checks.append(
            Check(
                "kernel",
                "fail",
                f"torch.ones(1, device='cuda') + 1 failed: {facts['kernel_error']}",
            )
        )
    else:
        checks.append(Check("kernel", "pass", "torch.ones(1, device='cuda') + 1 ran"))
    return checks


def _driver_check(
    cuda: str | None, detection: Detection, compat: Compat, expected: Variant | None
) -> Check:
    if cuda is None:
        if expected is not None and expected.kind != "cuda":
            return Check("driver", "pass", f"a {expected.tag} build, as asked for")
        if detection.has_nvidia:
            return Check(
                "driver", "fail", "a CPU build is installed on a machine with an NVIDIA GPU"
            )
        return Check("driver", "pass", "CPU build on a machine without an NVIDIA GPU")
    if detection.max_cuda is None:
        return Check("driver", "skipped", f"CUDA {cuda} build; no NVIDIA driver found to compare")
    limit = format_cuda(detection.max_cuda)
    if cuda_runs(Variant("cuda", parse_cuda(cuda)), detection, compat):
        rule = "" if compat == "strict" else " (minor-version compatibility)"
        return Check("driver", "pass", f"CUDA {cuda} build, driver supports CUDA {limit}{rule}")
    return Check(
        "driver", "fail", f"built for CUDA {cuda}, but the driver supports only CUDA {limit}"
    )
