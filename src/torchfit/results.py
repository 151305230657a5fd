"""What the verbs report: ``install`` and ``restore`` (which change an environment), ``lock``,
``index-url`` and ``download`` (which write a plan down for another tool or machine)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torchfit.check.verify import Verification
    from torchfit.choose.plan import Plan

__all__ = ["DownloadResult", "IndexUrlResult", "InstallResult", "LockResult", "RestoreResult"]


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


@dataclass(frozen=True)
class RestoreResult:
    """What ``restore`` did: the record it followed, the installer commands, the changes."""

    python: str
    record: str  # the record's path
    recorded: str  # when it was taken
    restored: dict[str, str | None]  # each torch-family name: its version now, None: absent
    commands: tuple[tuple[str, ...], ...]  # none when the environment was already as recorded
    changes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "python": self.python,
            "record": self.record,
            "recorded": self.recorded,
            "restored": dict(self.restored),
            "commands": [list(command) for command in self.commands],
            "changes": list(self.changes),
        }


@dataclass(frozen=True)
class LockResult:
    """What ``lock`` wrote down: the plan, the lock's format and text, and (name, version)
    of every package the lock holds, the planned wheels and their dependencies."""

    plan: Plan
    format: str  # "pylock" (PEP 751 pylock.toml) or "requirements" (hashed requirements.txt)
    text: str
    locked: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "plan": self.plan.to_json(),
            "format": self.format,
            "locked": [{"name": name, "version": version} for name, version in self.locked],
            "text": self.text,
        }


@dataclass(frozen=True)
class IndexUrlResult:
    """The PyTorch index folder of the planned variant, for another installer."""

    plan: Plan
    index_url: str

    def to_json(self) -> dict[str, Any]:
        return {"index_url": self.index_url, "variant": self.plan.variant.tag}


@dataclass(frozen=True)
class DownloadResult:
    """What ``Session.download`` did: the plan, the folder, its lock, and each file
    (``(path, "kept" | "fetched")``)."""

    plan: Plan
    folder: str
    lock: str
    files: tuple[tuple[Path, str], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "plan": self.plan.to_json(),
            "folder": self.folder,
            "lock": self.lock,
            "files": [{"path": str(path), "action": action} for path, action in self.files],
        }
