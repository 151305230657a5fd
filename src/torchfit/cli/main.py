"""Command line: argv -> Session -> text or JSON; one error funnel; exit codes.

Exit codes: 0 success, 1 a torchfit error (or an unhealthy doctor/verify), 2 a usage error,
130 interrupted. ``--version`` and ``--help`` import no third-party package.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from torchfit._text import dumps, shown
from torchfit.cli.options import VERBS, session_options, top_parser, verb_parser
from torchfit.errors import InstallInterrupted, TorchfitError, UsageError

if TYPE_CHECKING:
    import argparse

    from torchfit.session import Session
    from torchfit.settings import Settings


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    env = os.environ if env is None else env
    extra: list[str] = []
    if "--" in argv:  # everything after -- goes to the installer untouched
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    wants_json, verbose = "--json" in argv, "-v" in argv or "--verbose" in argv
    handler = logging.StreamHandler()
    handler.setFormatter(_SafeFormatter("%(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, handlers=[handler])
    try:
        verb, rest = _split_verb(argv)
        args = verb_parser(verb).parse_intermixed_args(rest)
        if extra and verb != "install":
            raise UsageError(f"`torchfit {verb}` passes nothing to an installer: {extra[0]!r}")
        return _run(verb, args, env, extra)
    except TorchfitError as error:
        if verbose:
            logging.getLogger("torchfit").exception("traceback")
        _report(error, wants_json)
        if isinstance(error, InstallInterrupted):
            return 130
        return 2 if isinstance(error, UsageError) else 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        raise  # the reader left (`| head`): not a bug; entrypoint() ends quietly
    except Exception as error:  # a bug: one line, unless -v asks for the traceback
        if verbose:
            raise
        bug = TorchfitError(
            f"internal error: {type(error).__name__}: {error}",
            hint="this is a torchfit bug; run again with -v to see the traceback",
        )
        _report(bug, wants_json)
        return 1


def _split_verb(argv: list[str]) -> tuple[str, list[str]]:
    """The verb, and the arguments for its own parser (top-level flags come before it)."""
    for index, word in enumerate(argv):
        if word in VERBS:
            top_parser().parse_args(argv[: index + 1])
            return word, argv[index + 1 :]
        if not word.startswith("-"):
            break
    top_parser().parse_args(argv)  # --version, --help, or the usage error
    raise UsageError("no verb given", hint="see `torchfit --help`")


def _run(verb: str, args: argparse.Namespace, env: Mapping[str, str], extra: list[str]) -> int:
    from torchfit.cli import render
    from torchfit.settings import resolve_settings

    settings = resolve_settings(session_options(args), env)
    if verb == "plan":
        return _plan(args, settings)
    from torchfit.session import Session

    with Session(settings) as session:
        if verb == "detect":
            machine = session.detect()
            return _emit(args, machine.to_json(), render.detection_text(machine), 0)
        if verb == "doctor":
            diagnosis = session.doctor()
            lines = render.doctor_text(diagnosis)
            return _emit(args, diagnosis.to_json(), lines, 0 if diagnosis.healthy else 1)
        if verb == "verify":
            result = session.verify()
            lines = render.verification_text(result)
            return _emit(args, result.to_json(), lines, int(not result.ok))
        if verb == "restore":
            stream = (lambda line: print(shown(line), file=sys.stderr)) if args.verbose else None
            restored = session.restore(on_output=stream)
            return _emit(args, restored.to_json(), render.restore_text(restored), 0)
        if verb == "lock":
            return _lock(session, args)
        if verb == "download":
            return _download(session, args)
        if verb == "index-url":
            return _index_url(session, args)
        session.python  # noqa: B018 -- a target with nowhere to install fails before planning
        plan = session.plan(**asked(args))
        _warn(args, plan.to_json())
        return _install(session, plan, args, extra)


def _plan(args: argparse.Namespace, settings: Settings) -> int:
    """``torchfit plan``: a repeated question is answered from the memo, when it still holds."""
    from torchfit.cli import memo, render
    from torchfit.environment.target import platform_os
    from torchfit.machine.detect import detect

    # The target's OS, as the Session finds it; with no --platform, this machine's.
    target_os = platform_os(settings.platforms[0]) if settings.platforms else None
    machine = detect(settings.overrides, os=target_os)
    digest = memo.key(args.requirements, settings, machine)  # TODO(-r/-c): key on file text
    payload = memo.recall(settings, digest)
    if payload is None:
        from torchfit.session import Session

        with Session(settings, detection=machine) as session:
            payload = session.plan(**asked(args)).to_json()
        memo.remember(settings, digest, payload)
    _warn(args, payload)
    return _emit(args, payload, render.plan_text(payload), 0)


def asked(args: argparse.Namespace) -> dict[str, Any]:
    """What a planning verb asks ``Session.plan`` for: the requirements given."""
    return {"requirements": args.requirements}


def _lock(session: Session, args: argparse.Namespace) -> int:
    raise UsageError("`torchfit lock` is not built yet")


def _download(session: Session, args: argparse.Namespace) -> int:
    raise UsageError("`torchfit download` is not built yet")


def _index_url(session: Session, args: argparse.Namespace) -> int:
    raise UsageError("`torchfit index-url` is not built yet")


def _warn(args: argparse.Namespace, plan: Mapping[str, Any]) -> None:
    if not args.json:
        for warning in plan["warnings"]:
            print(shown(f"warning: {warning}"), file=sys.stderr)


def _install(session: Session, plan: Any, args: argparse.Namespace, extra: list[str]) -> int:
    from torchfit.cli import render

    # With -v the installer's own output streams to stderr as it runs, made safe to show.
    stream = (lambda line: print(shown(line), file=sys.stderr)) if args.verbose else None
    outcome = session.install(
        plan, installer=args.installer, extra_args=extra, dry_run=args.dry_run, on_output=stream
    )
    code = _emit(args, outcome.to_json(), render.install_text(outcome), 0)
    if outcome.verification is not None and not outcome.verification.ok:
        failed = [c for c in outcome.verification.checks if c.status == "fail"]
        print(shown(f"error: verification failed: {failed[0].detail}"), file=sys.stderr)
        back = f"torchfit restore --python {session.python}"
        print(
            shown(f"hint: the changes above were made; `{back}` puts back what was there"),
            file=sys.stderr,
        )
        code = 1
    return code


def _emit(args: argparse.Namespace, payload: dict[str, Any], lines: list[str], code: int) -> int:
    """Print JSON or text; either way no URL credential and no raw control character."""
    print(dumps(payload) if args.json else "\n".join(shown(line) for line in lines))
    return code


def _report(error: TorchfitError, wants_json: bool) -> None:
    if wants_json:
        print(dumps({"error": error.to_json()}))
        return
    print(shown(f"error: {error.message}"), file=sys.stderr)
    for line in error.details:
        print(shown(f"  {line}"), file=sys.stderr)
    if error.hint:
        print(shown(f"hint: {error.hint}"), file=sys.stderr)


class _SafeFormatter(logging.Formatter):
    """Log lines (httpx's among them) with secrets redacted and control characters escaped."""

    def format(self, record: logging.LogRecord) -> str:
        return "\n".join(shown(line) for line in super().format(record).splitlines())


def entrypoint() -> NoReturn:
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:  # `torchfit doctor --json | head`: the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 128 + 13  # as a Unix tool killed by SIGPIPE ends: quietly, status 141
    sys.exit(code)
