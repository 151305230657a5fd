"""Command line: argv -> Session -> text or JSON; one error funnel; exit codes.

Exit codes: 0 success, 1 a torchfit error (or an unhealthy doctor/verify), 2 a usage error,
130 interrupted. ``--version`` and ``--help`` import no third-party package.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
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
        return _plan(args, settings, env)
    from torchfit.session import Session

    with Session(settings, env=env) as session:
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
            restored = session.restore(on_output=_installer_output(args))
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


def _plan(args: argparse.Namespace, settings: Settings, env: Mapping[str, str]) -> int:
    """``torchfit plan``: a repeated question is answered from the memo, when it still holds."""
    from torchfit.choose.reqfile import read_requirement_files
    from torchfit.cli import memo, render
    from torchfit.environment.target import platform_os
    from torchfit.machine.detect import detect

    # The target's OS, as the Session finds it; with no --platform, this machine's.
    target_os = platform_os(settings.platforms[0]) if settings.platforms else None
    machine = detect(
        settings.overrides,
        os=target_os,
        env=env,
        root=settings.root,
        all_gpus=settings.all_gpus,
    )
    keyed, chosen_by = _with_interpreter(settings, env)
    files = read_requirement_files(args.requirement_files, args.constraint_files).texts
    digest = memo.key(args.requirements, keyed, machine, files)  # the files' text, not names
    # A wheelhouse folder has no validators to stamp: it is read afresh each time.
    payload = None if settings.find_links else memo.recall(settings, digest)
    if payload is not None and chosen_by:  # the same interpreter; why, this run says
        payload["target"]["interpreter_from"] = chosen_by
    if payload is None:
        from torchfit.session import Session

        with Session(settings, env=env, detection=machine) as session:
            payload = session.plan(**asked(args)).to_json()
        if not settings.find_links:
            memo.remember(settings, digest, payload)
    _warn(args, payload)
    return _emit(args, payload, render.plan_text(payload), 0)


def _with_interpreter(settings: Settings, env: Mapping[str, str]) -> tuple[Settings, str | None]:
    """``settings`` naming the interpreter the Session will find (``--python``, else
    ``VIRTUAL_ENV``/``CONDA_PREFIX``, else this one), and why; a memo keys on it."""
    if settings.python_version or settings.platforms:
        return settings, None
    from dataclasses import replace

    from torchfit.environment.target import find_interpreter

    python, chosen_by = find_interpreter(settings.python, env)
    return replace(settings, python=python), chosen_by


def asked(args: argparse.Namespace) -> dict[str, Any]:
    """What a planning verb asks ``Session.plan`` for: the requirements and the files given."""
    return {
        "requirements": args.requirements,
        "requirement_files": args.requirement_files,
        "constraint_files": args.constraint_files,
    }


def _lock(session: Session, args: argparse.Namespace) -> int:
    """``torchfit lock REQ… -o FILE``: the lock is written whole or not at all; with no FILE
    (or ``-``) it is the output itself."""
    from pathlib import Path

    from torchfit.cli import render
    from torchfit.environment.lock import check_writable, lock_format, write_lock

    chosen = lock_format(args.output, args.format)
    output = None if args.output in (None, "-") else Path(args.output)
    if output is not None:
        check_writable(output)  # before the index and the resolver are asked
    result = session.lock(**asked(args), format=chosen)
    _warn(args, result.plan.to_json())
    if output is None:
        if args.json:
            return _emit(args, result.to_json(), [], 0)
        sys.stdout.write(result.text)  # the lock as written: uv and torchfit checked it
        return 0
    write_lock(output, result.text)
    payload = {**result.to_json(), "output": str(output)}
    del payload["text"]
    if args.quiet and not args.json:
        return 0
    return _emit(args, payload, render.lock_text(result, str(output)), 0)


def _download(session: Session, args: argparse.Namespace) -> int:
    """``torchfit download REQ… -d DIR``: the lock's wheels into DIR, and the lock beside."""
    import shlex

    from torchfit.cli import render

    result = session.download(dest=args.dest, on_output=_installer_output(args), **asked(args))
    payload = result.to_json()
    _warn(args, payload["plan"])
    if args.quiet and not args.json:
        return 0
    fetched = sum(action == "fetched" for _, action in result.files)
    lines = render.plan_text(payload["plan"])
    lines += [f"  {action}: {path.name}" for path, action in result.files]
    lines.append(
        f"{len(result.files)} wheels in {result.folder} ({fetched} fetched,"
        f" {len(result.files) - fetched} already there), hash-checked; lock: {result.lock}"
    )
    pins = [f"{p.name}=={p.version}" for p in result.plan.packages]
    offline = ["torchfit", "install", "--find-links", result.folder, "--offline", *pins]
    lines.append(f"to install offline: {shlex.join(offline)}")
    return _emit(args, payload, lines, 0)


def _index_url(session: Session, args: argparse.Namespace) -> int:
    """``torchfit index-url [REQ…]``: the URL is for an installer, so credentials given in
    it stay (only control characters are escaped); errors still hide them."""
    import json
    import shlex

    from torchfit._text import printable

    result = session.index_url(**asked(args))
    _warn(args, result.plan.to_json())
    if args.json:
        print(json.dumps(result.to_json(), indent=2, ensure_ascii=True))
        return 0
    url = printable(result.index_url)
    if args.format == "env":
        print(f"PIP_INDEX_URL={shlex.quote(url)}\nUV_INDEX_URL={shlex.quote(url)}")
    else:
        print(url)
    return 0


def _warn(args: argparse.Namespace, plan: Mapping[str, Any]) -> None:
    if not args.json:
        for warning in plan["warnings"]:
            print(shown(f"warning: {warning}"), file=sys.stderr)


def _installer_output(args: argparse.Namespace) -> Callable[[str], None] | None:
    """Where the installer's own output goes as it runs: to stderr (stdout is the report's,
    or the JSON's), made safe to show; a terminal gets the installer's progress bars.
    With -q nowhere: the output is kept for the error message only."""
    from torchfit._terminal import output_to

    return None if getattr(args, "quiet", False) else output_to(sys.stderr)


def _install(session: Session, plan: Any, args: argparse.Namespace, extra: list[str]) -> int:
    from torchfit.cli import render

    outcome = session.install(
        plan,
        installer=args.installer,
        extra_args=extra,
        dry_run=args.dry_run,
        on_output=_installer_output(args),
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
    """Print JSON or text; either way no URL credential and no raw control character.
    ``-q`` drops the text report, as pip's does its own (warnings and errors still show)."""
    if args.json:
        print(dumps(payload))
    elif not getattr(args, "quiet", False):
        print("\n".join(shown(line) for line in lines))
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
