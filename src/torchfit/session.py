"""One Session: settings resolved once, the machine and target found once, and the verbs.

The command line and the library are two thin faces of this class: each verb reads the same
settings, so an option such as ``--compat`` reaches ``plan``, ``install``, ``verify`` and
``doctor`` alike. No parsing of user text and no printing here.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torchfit._runner import Runner, run
from torchfit.choose.candidates import PageSource
from torchfit.choose.plan import Plan, make_plan
from torchfit.choose.policy import choose_variants
from torchfit.choose.requirements import split_requirements
from torchfit.environment import target as targets
from torchfit.environment.target import Target
from torchfit.errors import InstallFailed, InstallInterrupted, TorchfitError, UsageError
from torchfit.index.client import IndexClient, bundled_snapshots
from torchfit.machine.detect import detect
from torchfit.machine.nvml import IMPORT_NVML
from torchfit.machine.record import Detection
from torchfit.results import InstallResult, RestoreResult
from torchfit.settings import Settings, resolve_settings, with_options

if TYPE_CHECKING:  # imported where used: planning alone needs none of them
    from torchfit.check.doctor import Diagnosis
    from torchfit.check.verify import Verification
    from torchfit.environment.install import Installer, WheelPin
    from torchfit.environment.state import EnvironmentState, Held, Record
    from torchfit.index.http import Http

log = logging.getLogger(__name__)

__all__ = ["InstallResult", "RestoreResult", "Session"]


class Session:
    """The verbs over one set of settings, one machine, one target and one index client.

    Seams, for tests and for planning another machine: ``detection`` replaces probing this
    one, ``source`` replaces the index client, ``runner`` runs every child process, ``nvml``
    and ``proc_version`` are the NVML module and the /proc file detection reads.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        env: Mapping[str, str] | None = None,
        detection: Detection | None = None,
        source: PageSource | None = None,
        runner: Runner = run,
        nvml: Any = IMPORT_NVML,
        proc_version: Path | None = None,
        **options: Any,
    ) -> None:
        options = {name: value for name, value in options.items() if value is not None}
        if settings is None:
            settings = resolve_settings(options, os.environ if env is None else env)
        elif options:
            settings = with_options(settings, options)
        self.settings = settings
        self.runner = runner
        self._detection = detection
        self._source = source
        self._client: IndexClient | None = None
        self._nvml = nvml
        self._proc_version = proc_version

    # -- what the verbs share, found once --------------------------------------------

    @cached_property
    def target(self) -> Target:
        """The interpreter and platform wheels are chosen for."""
        s = self.settings
        if s.python_version or s.platforms:
            if s.python:
                raise UsageError("--python cannot be combined with --python-version/--platform")
            return targets.from_spec(s.python_version or "", s.platforms)
        if s.python and s.python != sys.executable:
            return targets.from_interpreter(s.python, self.runner)
        return targets.current()

    @property
    def machine(self) -> Detection:
        """The driver, its maximum CUDA and the GPUs, detected on first use."""
        if self._detection is None:
            self._detection = detect(
                self.settings.overrides,
                nvml=self._nvml,
                runner=self.runner,
                proc_version=self._proc_version,
                os=self.target.os,
            )
        return self._detection

    @property
    def source(self) -> PageSource:
        """The index pages: the caller's source, or one client opened on first use."""
        if self._source is None:
            s = self.settings
            self._client = IndexClient(
                s.index,
                offline=s.offline,
                refresh=s.refresh,
                cache_dir=s.cache_dir,
                snapshots=bundled_snapshots(),
                trusted_hosts=s.trusted_hosts,
                timeout=s.timeout,
                ca_bundle=s.ca_bundle,
                netrc=s.netrc,
            )
            self._source = self._client
        return self._source

    @property
    def python(self) -> str:
        """The interpreter installs and checks act on."""
        interpreter = self.target.interpreter
        if interpreter is None:
            raise UsageError(
                "a --python-version/--platform plan cannot be installed here",
                hint="use `torchfit plan` for another machine, or --python PATH to install",
            )
        return interpreter

    # -- the verbs -----------------------------------------------------------------

    def detect(self) -> Detection:
        return self.machine

    def plan(self, requirements: Sequence[str] | str) -> Plan:
        """What would be installed for ``requirements`` (e.g. ``"torch==1.7.1"``), and why.

        Raises a TorchfitError subclass when there is no fitting plan.
        """
        if isinstance(requirements, str):
            requirements = [requirements]
        s = self.settings
        family, passthrough = split_requirements(requirements, self.target)
        choice = choose_variants(
            self.machine,
            compat=s.compat,
            explicit=s.variant,
            force=s.force,
            target_os=self.target.os,
        )
        return make_plan(
            family,
            passthrough,
            choice=choice,
            detection=self.machine,
            target=self.target,
            source=self.source,
            index=s.index,
            compat=s.compat,
            force=s.force,
            trusted_hosts=s.trusted_hosts,
            require_hashes=s.require_hashes,
        )

    def install(
        self,
        requirements: Sequence[str] | str | Plan,
        *,
        installer: Installer = "pip",
        extra_args: Sequence[str] = (),
        dry_run: bool = False,
        on_output: Callable[[str], None] | None = None,
    ) -> InstallResult:
        """Install exactly the planned wheels into the target interpreter, then verify them.

        Every wheel is downloaded and hash-checked first, the torch family that is there is
        recorded in the environment (for ``restore``), and only then does the installer run,
        on the local files. ``on_output`` receives the installer's output line by line.
        Raises InstallFailed when a download does not match its hash (nothing is changed)
        or the installer fails, InstallInterrupted on SIGINT or SIGTERM; both say what
        changed and, where something did, how to go back.
        """
        from torchfit._runner import signal_name, sigterm_raises
        from torchfit.environment.install import (
            WheelPin,
            ensure_pip,
            find_uv,
            install_command,
            state_changes,
            uninstall_command,
        )
        from torchfit.environment.state import Held, finished, new_record, save_record

        python = self.python
        plan = requirements if isinstance(requirements, Plan) else self.plan(requirements)
        pins = [WheelPin(p.name, p.url, p.sha256) for p in plan.packages]
        uv = find_uv() if installer == "uv" else None

        if dry_run:  # the command with the wheels' URLs: a real run gives it the local files
            command = install_command(
                python, pins, plan.passthrough, extra_args, installer=installer, uv=uv
            )
            return InstallResult(plan, tuple(command), (), None)
        if installer == "pip":
            ensure_pip(python, self.runner)
        before, paths, found = self._recorded(python, quiet=True)
        record = new_record(python, installer, before, found[0] if found else None)
        # A planned package that an installer did not finish is "already satisfied" to pip:
        # it is uninstalled first (the record of the state before it is kept).
        broken = sorted(before.broken() & {pin.name for pin in pins})

        def commands(wheels: list[WheelPin]) -> list[list[str]]:
            made = [
                install_command(
                    python, wheels, plan.passthrough, extra_args, installer=installer, uv=uv
                )
            ]
            if broken:
                made.insert(0, uninstall_command(python, broken, installer=installer, uv=uv))
            return made

        made, after = self._transact(pins, commands, before, record, paths, on_output)
        ours = [Held(p.name, p.version, p.url, p.sha256) for p in plan.packages]
        save_record(paths, finished(record, ours))
        changes = state_changes(before, after)
        with sigterm_raises():
            try:
                verification = self.verify(plan)
            except KeyboardInterrupt as stop:  # the install is done: say what it changed
                raise InstallInterrupted(
                    f"interrupted ({signal_name(stop)}) while verifying; the install had finished",
                    details=("changed: " + ("; ".join(changes) or "nothing"),),
                    hint=f"to put back what was there before: {_restore_command(python)}",
                ) from None
        return InstallResult(plan, tuple(made[-1]), tuple(changes), verification)

    def restore(self, *, on_output: Callable[[str], None] | None = None) -> RestoreResult:
        """Put back the torch family recorded before torchfit last changed the target
        environment: the recorded versions from their recorded wheels (hash-checked),
        and uninstall what was absent then. Nothing to do is not an error.

        Raises TorchfitError when there is no record; InstallFailed or InstallInterrupted
        as ``install`` does.
        """
        from torchfit.environment.install import (
            ensure_pip,
            find_uv,
            install_command,
            state_changes,
            uninstall_command,
        )
        from torchfit.environment.state import (
            finished,
            remove_leftovers,
            restore_steps,
            save_record,
        )

        python = self.python
        before, paths, found = self._recorded(python)
        if found is None:
            raise TorchfitError(
                f"no torchfit record for {python}: nothing to restore",
                hint="torchfit records the torch family before each install it makes",
            )
        record, where = found
        steps = restore_steps(record, before)
        commands: list[list[str]] = []
        after = before
        if steps.remove or steps.install:
            installer: Installer = "uv" if record.installer == "uv" else "pip"
            uv = find_uv(python) if installer == "uv" else None
            if installer == "pip":
                ensure_pip(python, self.runner)
            wanted = [(held, self._restore_pin(held)) for held in steps.install]
            exact = [f"{held.name}=={held.version}" for held, pin in wanted if pin is None]

            def make(wheels: list[WheelPin]) -> list[list[str]]:
                made = []
                if steps.remove:
                    made.append(uninstall_command(python, steps.remove, installer=installer, uv=uv))
                if wheels or exact:
                    made.append(install_command(python, wheels, exact, installer=installer, uv=uv))
                return made

            pins = [pin for _, pin in wanted if pin is not None]
            commands, after = self._transact(pins, make, before, record, paths, on_output)
            left = restore_steps(record, after)
            if left.remove or left.install:
                raise InstallFailed(
                    "the installer ran, but the environment is not as recorded",
                    details=(
                        *(f"still to remove: {name}" for name in left.remove),
                        *(f"still to install: {h.name}=={h.version}" for h in left.install),
                    ),
                )
        changes = state_changes(before, after)
        removed = remove_leftovers(after.leftovers)  # pip's, now that the packages are back
        if removed:
            changes.append("removed what a stopped pip had moved aside: " + ", ".join(removed))
        recorded = [held for held in record.before.values() if held is not None and held.url]
        save_record(paths, finished(record, recorded))
        return RestoreResult(
            python=python,
            record=str(where),
            recorded=record.recorded,
            restored={n: (h.version if h else None) for n, h in sorted(record.before.items())},
            commands=tuple(tuple(command) for command in commands),
            changes=tuple(changes),
        )

    # -- what install and restore share ---------------------------------------------

    _http: Http | None = None  # for downloads, opened on the first

    def _recorded(
        self, python: str, *, quiet: bool = False
    ) -> tuple[EnvironmentState, list[Path], tuple[Record, Path] | None]:
        """The environment's state now, where its record is kept, and the record (if any).
        ``quiet``: a damaged record is logged and taken as none (the next one replaces it)."""
        from torchfit.environment.state import load_record, read_state, record_paths

        state = read_state(python, self.runner)
        paths = record_paths(state, self.settings.cache_dir)
        try:
            return state, paths, load_record(paths)
        except TorchfitError as error:
            if not quiet:
                raise
            log.warning("%s; replacing it", error.message)
            return state, paths, None

    def _transact(
        self,
        pins: list[WheelPin],
        commands: Callable[[list[WheelPin]], list[list[str]]],
        before: EnvironmentState,
        record: Record,
        paths: list[Path],
        on_output: Callable[[str], None] | None,
    ) -> tuple[list[list[str]], EnvironmentState]:
        """Download and check ``pins``, then run ``commands`` on the local files (see
        ``environment.install.transact``), in the target interpreter."""
        from torchfit.environment.install import transact

        return transact(
            pins,
            commands,
            self.python,
            before,
            record=record,
            record_paths=paths,
            restore=_restore_command(self.python),
            download=self._download,
            runner=self.runner,
            on_output=on_output,
        )

    def _download(self, url: str, dest: Path) -> str:
        if self._http is None:
            from torchfit.index.http import Http

            s = self.settings
            self._http = Http(
                s.trusted_hosts, timeout=s.timeout, ca_bundle=s.ca_bundle, netrc=s.netrc
            )
        return self._http.download(url, dest)

    def _restore_pin(self, held: Held) -> WheelPin | None:
        """The wheel that puts ``held`` back: its recorded URL, else the file of that exact
        version (local label and all) on the PyTorch index; None when neither is known."""
        from torchfit.environment.install import WheelPin, file_path

        url = held.url
        if url and url.startswith("file:") and not file_path(url).is_file():
            url = None  # a wheel file that is gone (torchfit's own are temporary)
        if url:
            return WheelPin(held.name, url, held.sha256)
        return self._find_on_index(held)

    def _find_on_index(self, held: Held) -> WheelPin | None:
        from torchfit.choose.exact import exact_wheel
        from torchfit.environment.install import WheelPin

        found = exact_wheel(self.source, held.name, held.version, self.target)
        return WheelPin(held.name, *found) if found else None

    def verify(self, plan: Plan | None = None) -> Verification:
        """Check the torch in the target interpreter against the machine (and ``plan``)."""
        from torchfit.check.verify import verify

        torch = next((p for p in plan.packages if p.name == "torch"), None) if plan else None
        return verify(
            self.python,
            self.machine,
            expected_version=torch.version if torch else None,
            expected_variant=plan.variant if plan and torch else None,
            compat=self.settings.compat,
            # --force waives the driver check only for the --variant it forced.
            forced=self.settings.force and self.settings.variant is not None,
            runner=self.runner,
        )

    def doctor(self) -> Diagnosis:
        """Explain the target environment's torch and GPU; change nothing."""
        from torchfit.check.doctor import diagnose

        return diagnose(
            self.python, self.machine, self.target, compat=self.settings.compat, runner=self.runner
        )

    # -- lifetime --------------------------------------------------------------------

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._client is not None:
            self._client.close()
            self._client = None
            self._source = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _restore_command(python: str) -> str:
    return shlex.join(["torchfit", "restore", "--python", python])
