"""One Session: settings resolved once, the machine and target found once, and the verbs.

The command line and the library are two thin faces of this class: each verb reads the same
settings, so an option such as ``--compat`` reaches ``plan``, ``install``, ``verify`` and
``doctor`` alike. No parsing of user text and no printing here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
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
from torchfit.errors import InstallFailed, UsageError
from torchfit.index.client import IndexClient, bundled_snapshots
from torchfit.machine.detect import detect
from torchfit.machine.nvml import IMPORT_NVML
from torchfit.machine.record import Detection
from torchfit.settings import Settings, resolve_settings

if TYPE_CHECKING:  # imported where used: planning alone needs none of them
    from torchfit.check.doctor import Diagnosis
    from torchfit.check.verify import Verification
    from torchfit.environment.install import Installer

__all__ = [
    "InstallResult",
    "Session",
]


@dataclass(frozen=True)
class InstallResult:
    """What ``install`` did: the plan, the installer command, the changes, the proof."""

    plan: Plan
    command: tuple[str, ...]
    changes: tuple[str, ...]
    verification: Verification | None  # None for a dry run

    def to_json(self) -> dict[str, Any]:
        return {
            "plan": self.plan.to_json(),
            "command": list(self.command),
            "changes": list(self.changes),
            "verification": self.verification.to_json() if self.verification else None,
        }


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
            settings = resolve_settings({**settings.__dict__, **options}, {})
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

        ``on_output`` receives the installer's output line by line as it runs.
        Raises InstallFailed (saying what changed) when the installer fails.
        """
        from torchfit.environment.install import (
            WheelPin,
            describe_changes,
            ensure_pip,
            find_uv,
            install_command,
            installed_versions,
            run_install,
        )

        python = self.python
        plan = requirements if isinstance(requirements, Plan) else self.plan(requirements)
        pins = [WheelPin(p.name, p.url, p.sha256) for p in plan.packages]
        uv = find_uv() if installer == "uv" else None
        command = install_command(
            python, pins, plan.passthrough, extra_args, installer=installer, uv=uv
        )
        if dry_run:
            return InstallResult(plan, tuple(command), (), None)
        if installer == "pip":
            ensure_pip(python, self.runner)
        before = installed_versions(python, self.runner)
        try:
            run_install(command, self.runner, on_output)
        except InstallFailed as failure:
            changes = describe_changes(before, installed_versions(python, self.runner))
            failure.details += ("changed: " + ("; ".join(changes) or "nothing"),)
            raise
        changes = describe_changes(before, installed_versions(python, self.runner))
        return InstallResult(plan, tuple(command), tuple(changes), self.verify(plan))

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
            forced=self.settings.force,
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
        if self._client is not None:
            self._client.close()
            self._client = None
            self._source = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
