"""The one exception hierarchy torchfit raises.

Every error carries a one-line message and an optional ``hint`` (the fix), which
the command line prints as ``error:`` and ``hint:`` lines.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "IndexFetchError",
    "InstallFailed",
    "InstallerMissing",
    "NoCompatibleWheel",
    "ResolutionConflict",
    "TorchfitError",
    "UsageError",
    "VerificationFailed",
]


class TorchfitError(Exception):
    """Base class: anything torchfit reports to a user."""

    def __init__(
        self, message: str, *, hint: str | None = None, details: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details  # supporting lines: a subprocess's last output, what changed

    def to_json(self) -> dict[str, Any]:
        return {
            "type": type(self).__name__,
            "message": self.message,
            "hint": self.hint,
            "details": list(self.details),
        }


class UsageError(TorchfitError, ValueError):
    """Malformed user input: a flag, an environment variable, a requirement."""


class IndexFetchError(TorchfitError):
    """An index page could not be fetched or parsed."""


class NoCompatibleWheel(TorchfitError):
    """No wheel on the index fits both the requirement and this machine."""


class ResolutionConflict(TorchfitError):
    """The requirements contradict each other (e.g. torchvision pins another torch)."""


class InstallerMissing(TorchfitError):
    """The target interpreter has no pip (or uv is not installed)."""


class InstallFailed(TorchfitError):
    """The installer subprocess failed."""


class VerificationFailed(TorchfitError):
    """What got installed is not what was planned, or does not work."""
