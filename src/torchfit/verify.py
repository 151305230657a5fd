"""Prove what is installed: torch's version, its variant and CUDA, and (with a GPU) that
CUDA works, all read inside the target interpreter.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .detection import Detection
from .errors import VerificationFailed
from .install import Runner, run_subprocess
from .variants import Variant, format_cuda

# Runs in the target interpreter. Reads torch/version.py as text first, so a broken or
# mismatched build still reports what it is; imports torch only when asked to.
_PROBE = r"""
import ast, importlib.metadata, importlib.util, json, os, sys
facts = {"version": None, "cuda": None, "hip": None, "import_error": None, "cuda_available": None}
try:
    facts["version"] = importlib.metadata.version("torch")
except importlib.metadata.PackageNotFoundError:
    print(json.dumps(facts)); sys.exit(0)
spec = importlib.util.find_spec("torch")
for folder in (spec.submodule_search_locations or []) if spec else []:
    path = os.path.join(folder, "version.py")
    if os.path.isfile(path):
        tree = ast.parse(open(path, encoding="utf-8").read())
        for node in tree.body:
            if isinstance(node, ast.Assign):
                target = node.targets[0]
            else:
                target = getattr(node, "target", None)
            name = getattr(target, "id", None)
            if name in ("cuda", "hip") and getattr(node, "value", None) is not None:
                try:
                    facts[name] = ast.literal_eval(node.value)
                except ValueError:
                    pass
        break
if sys.argv[1] == "import":
    try:
        import torch
        if sys.argv[2] == "gpu":
            facts["cuda_available"] = bool(torch.cuda.is_available())
    except Exception as exc:
        facts["import_error"] = "%s: %s" % (type(exc).__name__, exc)
print(json.dumps(facts))
"""


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
    return "reinstall with `torchfit install torch --force-reinstall`, or see `torchfit detect`"


def read_torch(
    python: str, *, import_torch: bool, ask_cuda: bool = False, run: Runner = run_subprocess
) -> dict[str, Any]:
    """The facts the probe script reports from the target interpreter."""
    mode = ["import" if import_torch else "static", "gpu" if ask_cuda else "nogpu"]
    done = run([python, "-c", _PROBE, *mode])
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise VerificationFailed(f"could not inspect torch in {python}: {tail[0]}")
    facts: dict[str, Any] = json.loads(done.stdout)
    return facts


def verify(
    python: str,
    detection: Detection,
    *,
    expected_version: str | None = None,
    expected_variant: Variant | None = None,
    run: Runner = run_subprocess,
) -> Verification:
    """Check the torch installed in ``python`` against a plan (when given) and the machine.

    Imports torch in ``python``: a build that does not import is not installed.
    """
    # An overridden driver is a simulation (a Docker build): there may be no GPU to ask.
    gpu_present = detection.has_nvidia and detection.source != "override"
    facts = read_torch(python, import_torch=True, ask_cuda=gpu_present, run=run)
    version, cuda = facts["version"], facts["cuda"]
    checks: list[Check] = []
    if version is None:
        checks.append(Check("installed", "fail", f"torch is not installed in {python}"))
        return Verification(python, None, None, tuple(checks))
    checks.append(Check("installed", "pass", f"torch {version}"))
    if expected_version is not None:
        same = version == expected_version
        detail = f"expected {expected_version}, found {version}"
        checks.append(Check("version", "pass" if same else "fail", detail))
    if expected_variant is not None:
        want = format_cuda(expected_variant.cuda) if expected_variant.cuda else None
        if expected_variant.kind == "rocm":
            ok, detail = (
                facts["hip"] is not None,
                f"expected a ROCm build, torch.version.hip = {facts['hip']}",
            )
        else:
            ok, detail = cuda == want, f"expected torch.version.cuda = {want}, found {cuda}"
        checks.append(Check("variant", "pass" if ok else "fail", detail))
    if facts["import_error"]:
        checks.append(Check("import", "fail", f"import torch failed: {facts['import_error']}"))
    else:
        checks.append(Check("import", "pass", "import torch works"))
    checks.append(_driver_check(cuda, detection))
    if gpu_present and not facts["import_error"]:
        checks.append(_cuda_available_check(facts))
    elif detection.has_nvidia:
        checks.append(Check("cuda_available", "skipped", "driver given as an override, not probed"))
    else:
        checks.append(Check("cuda_available", "skipped", "no NVIDIA GPU detected"))
    return Verification(python, version, cuda, tuple(checks))


def _driver_check(cuda: str | None, detection: Detection) -> Check:
    if cuda is None:
        if detection.has_nvidia:
            return Check(
                "driver", "fail", "a CPU build is installed on a machine with an NVIDIA GPU"
            )
        return Check("driver", "pass", "CPU build on a machine without an NVIDIA GPU")
    if detection.max_cuda is None:
        return Check("driver", "skipped", f"CUDA {cuda} build; no NVIDIA driver found to compare")
    built = tuple(int(p) for p in cuda.split(".")[:2])
    limit = format_cuda(detection.max_cuda)
    if built <= detection.max_cuda:
        return Check("driver", "pass", f"CUDA {cuda} build, driver supports CUDA {limit}")
    return Check(
        "driver", "fail", f"built for CUDA {cuda}, but the driver supports only CUDA {limit}"
    )


def _cuda_available_check(facts: dict[str, Any]) -> Check:
    if facts["cuda_available"]:
        return Check("cuda_available", "pass", "torch.cuda.is_available() is True")
    return Check("cuda_available", "fail", "torch.cuda.is_available() is False")
