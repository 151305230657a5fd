"""Text output: the lines a person reads for each verb's result (JSON is each value's own).

Fields go in as they came (GPU names, file names, paths, probe output); ``cli.main`` passes
every line through ``torchfit._text.shown`` as it prints, so one field can neither break its
line nor send the terminal an escape sequence, and no URL shows its credentials.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from torchfit._text import redact_text
from torchfit.variants import format_cuda

if TYPE_CHECKING:
    from torchfit.check.doctor import Diagnosis
    from torchfit.check.verify import Verification
    from torchfit.machine.record import Detection
    from torchfit.results import InstallResult, LockResult


def detection_text(detection: Detection) -> list[str]:
    if detection.max_cuda is not None:
        driver = detection.driver_version or "(unknown)"
        limit = format_cuda(detection.max_cuda)
        head = f"NVIDIA driver {driver}: CUDA up to {limit} (from {detection.source})"
    elif detection.suspected_gpu:
        head = "an NVIDIA driver seems present, but its version could not be read"
    else:
        head = "no NVIDIA GPU found"
    lines = [head]
    for gpu in detection.gpus:
        cc = format_cuda(gpu.compute_capability) if gpu.compute_capability else "unknown"
        lines.append(f"  GPU: {gpu.name or '(unnamed)'} (compute capability {cc})")
    lines += [f"  {p.source}: {p.outcome}" for p in detection.trace]
    return lines


def plan_text(plan: Mapping[str, Any]) -> list[str]:
    """From the plan's JSON, so a remembered plan reads like a fresh one."""
    found = plan["target"]
    target = f"Python {found['python_version']} on {found['platforms'][0]}"
    # An environment found from a variable is worth a word: it may not be the one expected.
    if found.get("interpreter_from") in ("VIRTUAL_ENV", "CONDA_PREFIX"):
        target += f", into {found['interpreter']} ({found['interpreter_from']})"
    lines = [f"variant {plan['variant']} for {target}"]
    lines += [f"  {p['name']} {p['version']}  {p['filename']}" for p in plan["packages"]]
    lines += [_passed(p) for p in plan["passthrough"]]
    lines += ["why:"] + [f"  - {reason}" for reason in plan["reasons"]]
    return lines


def lock_text(result: LockResult, output: str) -> list[str]:
    """``torchfit lock -o FILE``: the plan, then what the lock holds beside it."""
    kind = "PEP 751" if result.format == "pylock" else "hashed requirements"
    planned = {p.name for p in result.plan.packages}
    others = [f"{name} {version}" for name, version in result.locked if name not in planned]
    lines = plan_text(result.plan.to_json())
    lines.append(f"locked {len(result.locked)} packages into {output} ({kind})")
    if others:
        lines.append(f"  dependencies: {', '.join(others)}")
    return lines


def _passed(line: Mapping[str, Any]) -> str:
    """A line handed to the installer as written: ``numpy<2  (passed through, req.txt:3)``."""
    how = "passed through as a constraint" if line.get("constraint") else "passed through"
    return f"  {line['line']}  ({how}, {line['origin']})"


def verification_text(result: Verification) -> list[str]:
    lines = [f"torch {result.torch_version or '(not installed)'} in {result.python}"]
    lines += [f"  [{c.status}] {c.name}: {c.detail}" for c in result.checks]
    return lines


def doctor_text(diagnosis: Diagnosis) -> list[str]:
    lines = detection_text(diagnosis.detection)[: 1 + len(diagnosis.detection.gpus)]
    result = diagnosis.verification
    if result.torch_version is None:
        lines.append(f"torch: not installed in {result.python}")
    else:
        build = f"CUDA {result.torch_cuda} build" if result.torch_cuda else "no CUDA"
        lines.append(f"torch {result.torch_version} in {result.python}: {build}")
        if result.facts.get("arch_list"):
            lines.append(f"  kernels for: {' '.join(result.facts['arch_list'])}")
    lines.append(f"system CUDA toolkit: {diagnosis.toolkit.nvcc or 'none found'} (nvcc)")
    lines.append("")
    for finding in diagnosis.findings:
        lines.append(f"{finding.severity}: {finding.message}")
        for number, fix in enumerate(finding.fixes):
            lines.append(f"  {'fix' if number == 0 else 'or'}: {fix}")
    return lines


def install_text(result: InstallResult) -> list[str]:
    lines = plan_text(result.plan.to_json())
    if result.verification is None:
        # Each argument hidden before quoting: shlex's quotes must not split a credential.
        return [*lines, "would run: " + shlex.join(map(redact_text, result.command))]
    lines += ["changed:"] + [f"  {c}" for c in result.changes or ["nothing"]]
    return lines + verification_text(result.verification)


if TYPE_CHECKING:
    from torchfit.session import RestoreResult


def restore_text(result: RestoreResult) -> list[str]:
    """``torchfit restore``: what the record said, and what changed to get there."""
    wanted = ", ".join(
        f"{name} {version}" if version else f"no {name}"
        for name, version in result.restored.items()
    )
    if not result.commands and not result.changes:
        return [f"nothing to restore: {result.python} has the torch family recorded", f"  {wanted}"]
    lines = [f"restored the torch family recorded {result.recorded} in {result.python}"]
    lines += [f"  {wanted}", "changed:"] + [f"  {change}" for change in result.changes]
    return lines
