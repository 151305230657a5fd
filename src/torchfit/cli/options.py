"""The command line's flags, and their translation into Session options (no other logic)."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from torchfit._version import __version__
from torchfit.errors import UsageError

DEFAULT_INDEX_TEXT = "https://download.pytorch.org/whl"
VERBS = (
    "detect",
    "plan",
    "install",
    "lock",
    "download",
    "index-url",
    "verify",
    "doctor",
    "restore",
)
#: The verbs that plan: each takes requirements (arguments, ``-r`` and ``-c`` files) and the
#: choice flags, and then does one thing with the plan.
PLANNING_VERBS = ("plan", "install", "lock", "download", "index-url")


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message, hint=f"see `{self.prog} --help`")


def top_parser() -> argparse.ArgumentParser:
    """``torchfit [--version] VERB ...``: the verb's own parser reads the rest."""
    parser = Parser(
        prog="torchfit",
        description="Install the PyTorch build that fits this machine.",
        epilog="verbs: " + ", ".join(VERBS) + "; `torchfit VERB --help` for each",
    )
    parser.add_argument("--version", action="version", version=f"torchfit {__version__}")
    parser.add_argument("verb", choices=VERBS, metavar="VERB", help=" | ".join(VERBS))
    return parser


def verb_parser(verb: str) -> argparse.ArgumentParser:
    """The parser of one verb; options and requirements may be mixed, as with pip."""
    parser = Parser(prog=f"torchfit {verb}")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details; tracebacks")
    _machine(parser)
    parser.add_argument("--python", metavar="PATH", help="target interpreter (default: this one)")
    if verb in PLANNING_VERBS:
        _choice(parser)
        _requirements(parser)
    elif verb in ("restore", "detect"):  # a record put back, a machine read: nothing judged
        parser.set_defaults(compat=None)
    else:
        parser.add_argument(
            "--compat",
            choices=("strict", "minor"),
            help="judge the installed build as `install --compat` would",
        )
    if verb == "download":
        parser.add_argument(
            "-d",
            "--dest",
            required=True,
            metavar="DIR",
            help="the folder to fill with the wheels and their lock (created if missing)",
        )
    if verb == "lock":
        parser.description = (
            "Write the plan as a complete lock: the planned wheels and torch's own"
            " dependencies (pinned and hashed by `uv pip compile`), for this target."
        )
        parser.add_argument(
            "-o",
            "--output",
            metavar="FILE",
            help="where to write it (default, or `-`: stdout); pylock.toml or"
            " pylock.NAME.toml is a PEP 751 lock, any other name a requirements file",
        )
        parser.add_argument(
            "--format", choices=("pylock", "requirements"), help="instead of the file's name"
        )
    if verb == "index-url":
        parser.description = (
            "Print the PyTorch index URL of the variant planned for REQ (torch when no REQ"
            " is given), for `pip install --index-url` or UV_INDEX."
        )
        parser.add_argument(
            "--format",
            choices=("url", "env"),
            default="url",
            help="url: one line (default); env: PIP_INDEX_URL=… and UV_INDEX_URL=… lines",
        )
    if verb == "install":
        parser.add_argument("--dry-run", action="store_true", help="print the command only")
        parser.add_argument("--installer", choices=("pip", "uv"), default="pip")
    return parser


def _requirements(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("requirements", nargs="*", metavar="REQ")
    parser.add_argument(
        "-r",
        "--requirement",
        dest="requirement_files",
        action="append",
        default=[],
        metavar="FILE",
        help="read requirements from FILE (pip's syntax), repeatable",
    )
    parser.add_argument(
        "-c",
        "--constraint",
        dest="constraint_files",
        action="append",
        default=[],
        metavar="FILE",
        help="constrain versions with FILE (pip's syntax), repeatable",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print no report")


def _machine(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("machine (flags win over TORCHFIT_* variables)")
    group.add_argument("--cuda", metavar="X.Y", help="the driver's maximum CUDA [TORCHFIT_CUDA]")
    group.add_argument(
        "--driver", metavar="VERSION", help="NVIDIA driver version [TORCHFIT_DRIVER]"
    )
    group.add_argument(
        "--gpu-arch",
        action="append",
        default=[],
        metavar="ARCH",
        help="a GPU's compute capability (X.Y) or AMD target (gfxNNNN), repeatable"
        " [TORCHFIT_GPU_ARCH=X.Y,X.Y]",
    )
    group.add_argument(
        "--root",
        metavar="DIR",
        help="read /proc, /sys, /dev, /opt/rocm and /usr/lib/wsl under DIR [TORCHFIT_ROOT]",
    )
    group.add_argument(
        "--all-gpus",
        action="store_true",
        help="plan for every GPU, not only those CUDA_VISIBLE_DEVICES and"
        " NVIDIA_VISIBLE_DEVICES leave visible [TORCHFIT_ALL_GPUS=1]",
    )


def _choice(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("choice")
    group.add_argument(
        "--variant", metavar="TAG", help="cpu, cuXY, rocmX.Y, xpu [TORCHFIT_VARIANT]"
    )
    group.add_argument(
        "--compat",
        choices=("strict", "minor"),
        help="strict: CUDA <= driver (default); minor: NVIDIA minor-version compatibility",
    )
    group.add_argument(
        "--force", action="store_true", help="accept a --variant newer than the driver"
    )
    group.add_argument(
        "--pytorch-index",
        metavar="URL",
        help=f"base URL or flat .html page (default {DEFAULT_INDEX_TEXT}) [TORCHFIT_PYTORCH_INDEX]",
    )
    group.add_argument("--offline", action="store_true", help="use the cache and bundled snapshots")
    group.add_argument(
        "--find-links",
        action="append",
        default=[],
        metavar="DIR",
        help="plan the torch family from the wheels in DIR (`torchfit download` fills one),"
        " checked against DIR/pylock.toml; the installer gets DIR too; repeatable",
    )
    group.add_argument("--refresh", action="store_true", help="revalidate cached index pages")
    group.add_argument(
        "--require-hashes", action="store_true", help="refuse a wheel the index gives no sha256 for"
    )
    group.add_argument(
        "--timeout",
        metavar="SECONDS",
        help="HTTP connect and read timeout (default 15) [TORCHFIT_TIMEOUT, PIP_TIMEOUT]",
    )
    group.add_argument(
        "--trusted-host", action="append", default=[], metavar="HOST", help="allow http:// for HOST"
    )
    group.add_argument("--python-version", metavar="X.Y", help="target Python, with --platform")
    group.add_argument(
        "--platform",
        action="append",
        default=[],
        metavar="TAG",
        help="target platform tag (repeatable), e.g. manylinux_2_28_x86_64",
    )


def session_options(args: argparse.Namespace) -> dict[str, Any]:
    """Session options from the flags; None (not given) lets a TORCHFIT_* variable decide."""
    from torchfit.settings import parse_driver, parse_gpu_arch, parse_timeout
    from torchfit.variants import Variant, parse_cuda

    def given(name: str) -> str | None:
        value: str | None = getattr(args, name, None)
        # An empty flag is a mistake worth saying; an empty variable means "unset".
        if value is not None and not value.strip():
            raise UsageError(
                f"an empty value was given to --{name.replace('_', '-')}", hint="drop it"
            )
        return value

    cuda, driver, variant = given("cuda"), given("driver"), given("variant")
    return {
        "cuda": parse_cuda(cuda) if cuda else None,
        "driver": parse_driver(driver) if driver else None,
        "gpu_arch": tuple(parse_gpu_arch(text) for text in args.gpu_arch) or None,
        "variant": Variant.parse(variant) if variant else None,
        "compat": args.compat,
        "force": getattr(args, "force", None) or None,
        "index": given("pytorch_index"),
        "offline": getattr(args, "offline", None) or None,
        "refresh": getattr(args, "refresh", None) or None,
        "require_hashes": getattr(args, "require_hashes", None) or None,
        "timeout": parse_timeout(timeout, "--timeout") if (timeout := given("timeout")) else None,
        "trusted_hosts": tuple(getattr(args, "trusted_host", ())) or None,
        "python": given("python"),
        "python_version": given("python_version"),
        "platforms": tuple(getattr(args, "platform", ())) or None,
        "find_links": tuple(getattr(args, "find_links", ())) or None,
        "root": given("root"),
        "all_gpus": getattr(args, "all_gpus", None) or None,
    }
