"""The one exception hierarchy torchfit raises.

Every error carries a one-line message and an optional ``hint`` (the fix), which
the command line prints as ``error:`` and ``hint:`` lines. Credentials in any URL they name
are hidden (``user:****@host``) before the error is made, so no caller can show a secret.
"""

from __future__ import annotations

from typing import Any

from torchfit._text import redact_text

__all__ = [
    "IndexFetchError",
    "InstallFailed",
    "InstallInterrupted",
    "InstallerMissing",
    "NoCompatibleWheel",
    "ResolutionConflict",
    "TorchfitError",
    "UsageError",
    "VerificationFailed",
]


_LONGEST = 2000


def _bounded(text: str) -> str:
    # A megabyte flag value is echoed in its error: one screen of it says enough.
    if len(text) <= _LONGEST:
        return text
    return f"{text[: _LONGEST // 2]}… ({len(text)} characters)"


class TorchfitError(Exception):
    """Base class: anything torchfit reports to a user."""

    def __init__(
        self, message: str, *, hint: str | None = None, details: tuple[str, ...] = ()
    ) -> None:
        super().__init__(redact_text(message))
        self.message = message
        self.hint = hint
        self.details = details  # supporting lines: a subprocess's last output, what changed

    def __setattr__(self, name: str, value: Any) -> None:
        # Hidden on every assignment: callers add to a hint or details after raising.
        if name in ("message", "hint") and isinstance(value, str):
            value = _bounded(redact_text(value))
        elif name == "details":
            value = tuple(redact_text(line) for line in value)
        super().__setattr__(name, value)

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


class InstallInterrupted(InstallFailed):
    """SIGINT or SIGTERM stopped the installer (which got the signal and has ended).

    ``details`` say what changed; ``hint`` is the command that puts the previous state back.
    The command line exits 130, as for any interrupted command.
    """
