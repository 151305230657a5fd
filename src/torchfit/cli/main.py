"""Command line: argv -> Settings, output as text or JSON, one error funnel, exit codes."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from torchfit._version import __version__
from torchfit.check.doctor import Diagnosis, diagnose
from torchfit.check.verify import Verification, verify
from torchfit.environment.target import current, from_interpreter
from torchfit.errors import TorchfitError, UsageError
from torchfit.index.client import DEFAULT_INDEX, default_cache_dir
from torchfit.machine.detect import Detection, Overrides, detect, parse_compute_capability
from torchfit.machine.drivers import parse_driver_version
from torchfit.session import InstallResult, Plan, Settings, install_plan, make_plan
from torchfit.variants import Variant, format_cuda, parse_cuda


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message, hint=f"see `{self.prog} --help`")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="torchfit", description="Install the PyTorch build that fits this machine."
    )
    parser.add_argument("--version", action="version", version=f"torchfit {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    common = _Parser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON object")
    common.add_argument("-v", "--verbose", action="store_true", help="log details; show tracebacks")
    machine = common.add_argument_group("machine (flags win over TORCHFIT_* variables)")
    machine.add_argument("--cuda", metavar="X.Y", help="the driver's maximum CUDA [TORCHFIT_CUDA]")
    machine.add_argument(
        "--driver", metavar="VERSION", help="NVIDIA driver version [TORCHFIT_DRIVER]"
    )
    machine.add_argument(
        "--gpu-arch",
        action="append",
        default=[],
        metavar="X.Y",
        help="a GPU's compute capability, repeatable [TORCHFIT_GPU_ARCH=X.Y,X.Y]",
    )

    choose = _Parser(add_help=False)
    group = choose.add_argument_group("choice")
    group.add_argument(
        "--variant", metavar="TAG", help="cpu, cuXY, rocmX.Y, xpu [TORCHFIT_VARIANT]"
    )
    group.add_argument(
        "--compat",
        choices=("strict", "minor"),
        default=None,
        help="strict: CUDA <= driver (default); minor: NVIDIA minor-version compatibility",
    )
    group.add_argument(
        "--force", action="store_true", help="accept a --variant newer than the driver"
    )
    group.add_argument(
        "--pytorch-index",
        metavar="URL",
        help=f"index base or flat .html page [TORCHFIT_PYTORCH_INDEX] (default {DEFAULT_INDEX})",
    )
    group.add_argument(
        "--offline", action="store_true", help="use the cache and bundled snapshots only"
    )
    group.add_argument(
        "--trusted-host",
        action="append",
        default=[],
        metavar="HOST",
        help="allow plain http:// for HOST",
    )
    group.add_argument("--python", metavar="PATH", help="target interpreter (default: this one)")
    group.add_argument("--python-version", metavar="X.Y", help="target Python, with --platform")
    group.add_argument(
        "--platform",
        action="append",
        default=[],
        metavar="TAG",
        help="target platform tag (repeatable), e.g. manylinux_2_28_x86_64",
    )

    commands.add_parser("detect", parents=[common], help="show the driver, CUDA and GPUs found")
    plan = commands.add_parser(
        "plan", parents=[common, choose], help="show what would be installed"
    )
    plan.add_argument("requirements", nargs="+", metavar="REQ")
    install = commands.add_parser("install", parents=[common, choose], help="install and verify")
    install.add_argument("requirements", nargs="+", metavar="REQ")
    install.add_argument("--dry-run", action="store_true", help="print the command, change nothing")
    install.add_argument("--installer", choices=("pip", "uv"), default="pip")
    check = commands.add_parser("verify", parents=[common], help="check the installed torch")
    check.add_argument("--python", metavar="PATH", help="target interpreter (default: this one)")
    doctor = commands.add_parser(
        "doctor", parents=[common], help="explain this environment's torch and GPU; change nothing"
    )
    doctor.add_argument("--python", metavar="PATH", help="target interpreter (default: this one)")
    return parser


def _settings(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    def pick(flag: str | None, name: str) -> str | None:
        # An empty flag is a mistake worth saying; an empty variable means "unset".
        if flag is not None and not flag.strip():
            raise UsageError(f"an empty value was given where {name} could be", hint="drop it")
        return flag if flag is not None else (env.get(name, "").strip() or None)

    cuda_text, driver = pick(args.cuda, "TORCHFIT_CUDA"), pick(args.driver, "TORCHFIT_DRIVER")
    if driver is not None and parse_driver_version(driver) is None:
        raise UsageError(f"invalid driver version {driver!r}", hint="write it as e.g. 550.54.14")
    arch_texts = args.gpu_arch or [
        text for text in env.get("TORCHFIT_GPU_ARCH", "").split(",") if text.strip()
    ]
    overrides = Overrides(
        cuda=parse_cuda(cuda_text) if cuda_text else None,
        driver=driver,
        gpu_arch=tuple(_parse_arch(text) for text in arch_texts),
    )
    variant_text = pick(getattr(args, "variant", None), "TORCHFIT_VARIANT")
    cache = env.get("TORCHFIT_CACHE_DIR")
    return Settings(
        overrides=overrides,
        variant=Variant.parse(variant_text) if variant_text else None,
        compat=getattr(args, "compat", None) or "strict",
        force=getattr(args, "force", False),
        index=pick(getattr(args, "pytorch_index", None), "TORCHFIT_PYTORCH_INDEX") or DEFAULT_INDEX,
        offline=getattr(args, "offline", False),
        cache_dir=Path(cache) if cache else default_cache_dir(),
        trusted_hosts=tuple(getattr(args, "trusted_host", ())),
        python=getattr(args, "python", None),
        python_version=getattr(args, "python_version", None),
        platforms=tuple(getattr(args, "platform", ())),
    )


def _parse_arch(text: str) -> tuple[int, int]:
    """``"8.6"`` or ``"sm_86"``: a GPU's compute capability."""
    cleaned = text.strip().lower()
    if cleaned.startswith("sm_") and cleaned[3:].isdigit() and len(cleaned) > 4:
        cleaned = f"{cleaned[3:-1]}.{cleaned[-1]}"
    capability = parse_compute_capability(cleaned)
    if capability is None:
        raise UsageError(f"invalid GPU architecture {text!r}", hint="write it as X.Y, e.g. 8.6")
    return capability


# -- text output ---------------------------------------------------------------


def _detection_text(detection: Detection) -> list[str]:
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


def _plan_text(plan: Plan) -> list[str]:
    major, minor = plan.target.python_version
    target = f"Python {major}.{minor} on {plan.target.platforms[0]}"
    lines = [f"variant {plan.variant.tag} for {target}"]
    lines += [f"  {p.name} {p.version}  {p.filename}" for p in plan.packages]
    lines += [f"  {r}  (from your pip settings)" for r in plan.passthrough]
    lines += ["why:"] + [f"  - {reason}" for reason in plan.reasons]
    return lines


def _verification_text(result: Verification) -> list[str]:
    lines = [f"torch {result.torch_version or '(not installed)'} in {result.python}"]
    lines += [f"  [{c.status}] {c.name}: {c.detail}" for c in result.checks]
    return lines


def _doctor_text(diagnosis: Diagnosis) -> list[str]:
    lines = _detection_text(diagnosis.detection)[: 1 + len(diagnosis.detection.gpus)]
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


def _install_text(result: InstallResult) -> list[str]:
    lines = _plan_text(result.plan)
    if result.verification is None:
        return [*lines, "would run: " + shlex.join(result.command)]
    lines += ["changed:"] + [f"  {c}" for c in result.changes or ["nothing"]]
    return lines + _verification_text(result.verification)


# -- entry point ---------------------------------------------------------------


def _emit(args: argparse.Namespace, payload: dict[str, Any], lines: list[str]) -> None:
    if args.json:
        print(json.dumps(payload, indent=2))
    else:
        print("\n".join(lines))


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    env = os.environ if env is None else env
    extra: list[str] = []
    if "--" in argv:  # everything after -- goes to the installer untouched
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    wants_json, verbose = "--json" in argv, "-v" in argv or "--verbose" in argv
    level = logging.DEBUG if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(name)s: %(message)s")
    try:
        args = _parser().parse_args(argv)
        return _run(args, env, extra)
    except TorchfitError as error:
        if verbose:
            logging.getLogger("torchfit").exception("traceback")
        _report(error, wants_json)
        return 2 if isinstance(error, UsageError) else 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a bug: one line, unless -v asks for the traceback
        if verbose:
            raise
        bug = TorchfitError(
            f"internal error: {type(error).__name__}: {error}",
            hint="this is a torchfit bug; run again with -v to see the traceback",
        )
        _report(bug, wants_json)
        return 1


def _report(error: TorchfitError, wants_json: bool) -> None:
    if wants_json:
        print(json.dumps({"error": error.to_json()}, indent=2))
        return
    print(f"error: {error.message}", file=sys.stderr)
    for line in error.details:
        print(f"  {line}", file=sys.stderr)
    if error.hint:
        print(f"hint: {error.hint}", file=sys.stderr)


def _run(args: argparse.Namespace, env: Mapping[str, str], extra: list[str]) -> int:
    settings = _settings(args, env)
    if args.command == "detect":
        detection = detect(settings.overrides)
        _emit(args, detection.to_json(), _detection_text(detection))
        return 0
    if args.command == "doctor":
        python = settings.python or sys.executable
        target = from_interpreter(python) if settings.python else current()
        diagnosis = diagnose(python, detect(settings.overrides, os=target.os), target)
        _emit(args, diagnosis.to_json(), _doctor_text(diagnosis))
        return 0 if diagnosis.healthy else 1
    if args.command == "verify":
        detection = detect(settings.overrides)
        result = verify(settings.python or sys.executable, detection)
        _emit(args, result.to_json(), _verification_text(result))
        return 0 if result.ok else 1
    plan = make_plan(args.requirements, settings)
    if not args.json:
        for warning in plan.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    if args.command == "plan":
        _emit(args, plan.to_json(), _plan_text(plan))
        return 0
    outcome = install_plan(plan, installer=args.installer, extra_args=extra, dry_run=args.dry_run)
    _emit(args, outcome.to_json(), _install_text(outcome))
    if outcome.verification is not None and not outcome.verification.ok:
        failed = [c for c in outcome.verification.checks if c.status == "fail"]
        print(f"error: verification failed: {failed[0].detail}", file=sys.stderr)
        print(
            "hint: the changes above were made; reinstall the previous versions to go back",
            file=sys.stderr,
        )
        return 1
    return 0


def entrypoint() -> NoReturn:
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:  # `torchfit doctor --json | head`: the reader left, not a failure
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    sys.exit(code)
