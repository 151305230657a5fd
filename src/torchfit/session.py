"""One Session: settings resolved once, the machine and target found once, and the verbs.

The command line and the library are two thin faces of this class: each verb reads the same
settings, so an option such as ``--compat`` reaches ``plan``, ``install``, ``verify`` and
``doctor`` alike. No parsing of user text and no printing here.
"""

from __future__ import annotations

import logging
import os
import shlex
import tempfile
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torchfit._runner import Runner, run
from torchfit.choose.candidates import PageSource
from torchfit.choose.plan import Plan, make_plan
from torchfit.choose.policy import choose_variants
from torchfit.choose.reqfile import read_requirement_files
from torchfit.choose.requirements import ask, requested_variant
from torchfit.environment import target as targets
from torchfit.environment.target import Target
from torchfit.errors import InstallFailed, InstallInterrupted, TorchfitError, UsageError
from torchfit.index.client import IndexClient, bundled_snapshots
from torchfit.machine.detect import detect
from torchfit.machine.libcuda import LOAD_LIBCUDA
from torchfit.machine.nvml import IMPORT_NVML
from torchfit.machine.record import Detection
from torchfit.results import (
    DownloadResult,
    IndexUrlResult,
    InstallResult,
    LockResult,
    RestoreResult,
)
from torchfit.settings import Settings, resolve_settings, with_options

if TYPE_CHECKING:  # imported where used: planning alone needs none of them
    from torchfit.check.doctor import Diagnosis
    from torchfit.check.verify import Verification
    from torchfit.environment.install import Installer, WheelPin
    from torchfit.environment.lock import LockFormat
    from torchfit.environment.state import EnvironmentState, Held, Record
    from torchfit.index.http import Http

log = logging.getLogger(__name__)

__all__ = ["DownloadResult", "InstallResult", "RestoreResult", "Session"]


class Session:
    """The verbs over one set of settings, one machine, one target and one index client.

    Seams, for tests and for planning another machine: ``detection`` replaces probing this
    one, ``source`` replaces the index client, ``runner`` runs every child process, ``nvml``
    and ``proc_version`` are the NVML module and the /proc file detection reads.

    Args:
        settings: a complete Settings value, taken as it is; None: resolve them from
            ``options`` over the ``TORCHFIT_*`` variables in ``env`` over the defaults.
        env: the environment variables to read (None: ``os.environ``): the ``TORCHFIT_*``
            ones, pip's network ones, a container image's CUDA, and the active environment
            (``VIRTUAL_ENV``, then ``CONDA_PREFIX``) that installs and checks act on.
        detection: the machine, instead of probing this one.
        source: where index pages come from, instead of an index client.
        runner: runs every child process (pip, uv, nvidia-smi, the target interpreter).
        nvml: a pynvml-like module for detection (None: no NVML).
        proc_version: the file read as ``/proc/driver/nvidia/version``.
        libcuda: the CUDA driver library for detection, or a fake of it (None: not asked).
        **options: Settings fields or ``cuda``/``driver``/``gpu_arch``, over ``settings``
            or the variables (see ``torchfit.plan``); None means "not given".
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
        libcuda: Any = LOAD_LIBCUDA,
        **options: Any,
    ) -> None:
        options = {name: value for name, value in options.items() if value is not None}
        if settings is None:
            settings = resolve_settings(options, os.environ if env is None else env)
        elif options:
            settings = with_options(settings, options)
        self.settings = settings
        # The variables detection reads (a container image's CUDA): the caller's, else ours.
        self.env: Mapping[str, str] = os.environ if env is None else env
        self.runner = runner
        self._detection = detection
        self._source = source
        self._client: IndexClient | None = None
        self._nvml = nvml
        self._proc_version = proc_version
        self._libcuda = libcuda

    # -- what the verbs share, found once --------------------------------------------

    @cached_property
    def target(self) -> Target:
        """The interpreter and platform wheels are chosen for: ``--python``, else the active
        environment (``VIRTUAL_ENV``, else ``CONDA_PREFIX``, from the Session's ``env``), else
        torchfit's own interpreter, as ``uv pip`` finds it; or the ``--python-version`` and
        ``--platform`` given. ``Target.chosen_by`` says which.

        Raises UsageError for a combination of both, or an interpreter that does not answer.
        """
        s = self.settings
        if s.python_version or s.platforms:
            if s.python:
                raise UsageError("--python cannot be combined with --python-version/--platform")
            return targets.from_spec(s.python_version or "", s.platforms)
        target = targets.for_interpreter(s.python, self.env, self.runner)
        log.info("target interpreter %s (%s)", target.interpreter, target.chosen_by)
        return target

    @property
    def machine(self) -> Detection:
        """The driver, its maximum CUDA and the GPUs, detected on first use."""
        if self._detection is None:
            self._detection = detect(
                self.settings.overrides,
                nvml=self._nvml,
                runner=self.runner,
                proc_version=self._proc_version,
                root=self.settings.root,
                all_gpus=self.settings.all_gpus,
                libcuda=self._libcuda,
                os=self.target.os,
                env=self.env,
            )
        return self._detection

    @property
    def source(self) -> PageSource:
        """The index pages: the caller's source, or one client opened on first use."""
        if self._source is None and self.settings.find_links:
            from torchfit.index.wheelhouse import Wheelhouse

            self._source = Wheelhouse(self.settings.find_links)
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
        """The interpreter installs and checks act on (see ``target`` for how it is found).

        Raises UsageError for a ``--python-version``/``--platform`` target.
        """
        interpreter = self.target.interpreter
        if interpreter is None:
            raise UsageError(
                "a --python-version/--platform plan cannot be installed here",
                hint="use `torchfit plan` for another machine, or --python PATH to install",
            )
        return interpreter

    # -- the verbs -----------------------------------------------------------------

    def detect(self) -> Detection:
        """The machine: driver, maximum CUDA, GPUs, and the trace of each source asked
        (the settings' ``cuda``, ``driver`` and ``gpu_arch`` replace what is probed)."""
        return self.machine

    def plan(
        self,
        requirements: Sequence[str] | str = (),
        *,
        requirement_files: Sequence[str | Path] = (),
        constraint_files: Sequence[str | Path] = (),
    ) -> Plan:
        """What would be installed for ``requirements`` (e.g. ``"torch==1.7.1"``) and the
        requirement and constraint files (pip's format), and why.

        Args:
            requirements: PEP 508 requirements; those for other projects pass through.
            requirement_files: files read as ``pip install -r`` reads them.
            constraint_files: files read as ``pip install -c`` reads them.

        Raises a TorchfitError subclass when there is no fitting plan; UsageError for a file
        that cannot be read or that pip would not accept.
        """
        if isinstance(requirements, str):
            requirements = [requirements]
        s = self.settings
        files = read_requirement_files(requirement_files, constraint_files)
        asked = ask(requirements, self.target, files.lines)
        choice = choose_variants(
            self.machine,
            compat=s.compat,
            explicit=requested_variant(s.variant, asked),
            force=s.force,
            target_os=self.target.os,
        )
        return make_plan(
            asked.family,
            asked.passthrough,
            extras=asked.extras,
            hashes={name: (v, asked.hash_origins[name]) for name, v in asked.hashes.items()},
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
        on the local files.

        Args:
            requirements: as for ``plan``, or a Plan made before (installed as it is).
            installer: ``"pip"`` (the target's ``python -m pip``) or ``"uv"``.
            extra_args: arguments handed to the installer untouched.
            dry_run: plan and build the command, but install nothing (no verification).
            on_output: receives the installer's output line by line.

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
            passthrough_args,
            state_changes,
            uninstall_command,
        )
        from torchfit.environment.state import Held, finished, new_record, save_record

        def handed(folder: Path | None) -> list[str]:  # the pass-through lines, for the installer
            lines, constraints = plan.installer_requirements(), plan.installer_constraints()
            return passthrough_args(lines, constraints, folder, as_files=plan.from_files())

        python = self.python
        plan = requirements if isinstance(requirements, Plan) else self.plan(requirements)
        pins = [WheelPin(p.name, p.url, p.sha256) for p in plan.packages]
        uv = find_uv() if installer == "uv" else None
        if self.settings.find_links:  # torch's dependencies from the wheelhouse too
            extra_args = [*self._wheelhouse_args(check=not dry_run), *extra_args]

        extras = {p.name: p.extras for p in plan.packages}
        if dry_run:  # the command with the wheels' URLs: a real run gives it the local files
            command = install_command(
                python, pins, handed(None), extra_args, installer=installer, uv=uv, extras=extras
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
                    python, wheels, passed, extra_args, installer=installer, uv=uv, extras=extras
                )
            ]
            if broken:
                made.insert(0, uninstall_command(python, broken, installer=installer, uv=uv))
            return made

        with tempfile.TemporaryDirectory(prefix="torchfit-") as folder:
            passed = handed(Path(folder))
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

    def download(
        self,
        requirements: Sequence[str] | str = (),
        *,
        dest: Path | str,
        requirement_files: Sequence[str | Path] = (),
        constraint_files: Sequence[str | Path] = (),
        on_output: Callable[[str], None] | None = None,
    ) -> DownloadResult:
        """Fill the folder ``dest`` with a complete lock's wheels for the target (the plan,
        and torch's own dependencies as the resolver pinned them) and write the lock beside
        them as ``dest/pylock.toml``, for ``install --find-links dest --offline`` or
        ``pip install --no-index -f dest``.

        Each file is hash-checked against the lock as it is written; one already there with
        the right sha256 is kept. Raises IndexFetchError when a download fails or does not
        match (the folder keeps what it had), NoCompatibleWheel when the lock has no wheel
        of a package for the target, UsageError when ``dest`` cannot be written.
        """
        from torchfit.index.wheelhouse import fill, lock_pins, make_folder, write_lock

        folder = make_folder(Path(dest))  # a folder that cannot be made fails before planning
        lock = self.lock(
            requirements,
            requirement_files=requirement_files,
            constraint_files=constraint_files,
            format="pylock",
        )
        pins = lock_pins(lock.text, self.target)
        files = fill(pins, folder, self._download, on_output, self.settings.require_hashes)
        written = write_lock(folder, lock.text)
        return DownloadResult(lock.plan, str(folder), str(written), tuple(files))

    def lock(
        self,
        requirements: Sequence[str] | str = (),
        *,
        requirement_files: Sequence[str | Path] = (),
        constraint_files: Sequence[str | Path] = (),
        format: LockFormat = "pylock",
    ) -> LockResult:
        """The plan as a complete lock for its target: ``pylock.toml`` (PEP 751) or a hashed
        ``requirements.txt``. The planned wheels are locked as they are; their dependencies
        are pinned and hashed by ``uv pip compile`` from the user's own index settings.

        Raises what ``plan`` raises; InstallerMissing without uv; ResolutionConflict when uv
        cannot resolve the dependencies; TorchfitError when uv's lock is not the plan.
        """
        from torchfit.environment.install import find_uv
        from torchfit.environment.lock import FamilyPin, resolve_lock

        plan = self.plan(
            requirements, requirement_files=requirement_files, constraint_files=constraint_files
        )
        s = self.settings
        torch = next((p for p in plan.packages if p.name == "torch"), plan.packages[0])
        target = plan.target
        platform = target.platforms[0] if target.platforms else "any platform"
        header = [
            f"torchfit lock: {torch.name} {torch.version} ({plan.variant.tag}) for Python"
            " {}.{} on {}".format(*target.python_version, platform),
            "the torch-family wheels are torchfit's plan; their dependencies were pinned by uv",
        ]
        text, locked = resolve_lock(
            [FamilyPin(p.name, p.version, p.url, p.sha256, p.extras) for p in plan.packages],
            plan.installer_requirements(),
            target,
            format=format,
            uv=find_uv(),
            header=header,
            tool={"variant": plan.variant.tag},
            constraints=plan.installer_constraints(),
            env=self.env,
            ca_bundle=s.ca_bundle,
            timeout=s.timeout,
            offline=s.offline,
            runner=self.runner,
        )
        return LockResult(plan, format, text, tuple(locked))

    def index_url(
        self,
        requirements: Sequence[str] | str = (),
        *,
        requirement_files: Sequence[str | Path] = (),
        constraint_files: Sequence[str | Path] = (),
    ) -> IndexUrlResult:
        """The PyTorch index folder of the variant planned for ``requirements`` (``torch``
        when none are given): ``https://download.pytorch.org/whl/cu126``, or the mirror's.
        Credentials given in ``--pytorch-index`` stay in it: the URL is for an installer.

        Raises what ``plan`` raises; UsageError when the index is a flat ``.html`` page,
        which has no folder per variant.
        """
        if not requirements and not requirement_files:
            requirements = ["torch"]
        plan = self.plan(
            requirements, requirement_files=requirement_files, constraint_files=constraint_files
        )
        base = plan.index.rstrip("/")
        if base.endswith(".html"):
            raise UsageError(
                f"the PyTorch index {base} is a flat page: it has no folder per variant",
                hint=f"give the installer --find-links {base} instead",
            )
        return IndexUrlResult(plan, f"{base}/{plan.variant.tag}")

    def restore(self, *, on_output: Callable[[str], None] | None = None) -> RestoreResult:
        """Put back the torch family recorded before torchfit last changed the target
        environment: the recorded versions from their recorded wheels (hash-checked),
        and uninstall what was absent then. Nothing to do is not an error.

        Args:
            on_output: receives the installer's output line by line.

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

    def _wheelhouse_args(self, *, check: bool) -> list[str]:
        """The installer's options for the ``find_links`` wheelhouses; ``check``: first
        check every wheel in them against its lock (a tampered one stops the install)."""
        from torchfit.environment.install import find_links_args
        from torchfit.index.wheelhouse import Wheelhouse

        s = self.settings
        if check and isinstance(self.source, Wheelhouse):
            for warning in self.source.check(s.require_hashes):
                log.warning("%s", warning)
        return find_links_args(s.find_links, offline=s.offline)

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
        """Check the torch in the target interpreter against the machine (and ``plan``).

        Args:
            plan: what was just installed: its torch version and variant are checked too.

        A failed check is in the result, not raised (``raise_for_failure()`` raises it).
        """
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
        """Explain the target environment's torch and GPU; change nothing.

        Each ``torchfit`` fix it suggests is one that ``plan`` answers with these settings
        (it asks ``plan``, so the index is read only when there is something to fix).
        """
        from torchfit.check.doctor import diagnose

        return diagnose(
            self.python,
            self.machine,
            self.target,
            compat=self.settings.compat,
            runner=self.runner,
            env=self.env,
            planner=lambda requirement: self.plan([requirement]),
            overrides=self.settings.overrides,
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
