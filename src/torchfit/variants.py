"""The PyTorch wheel variant (``cpu``, ``cu118``, ``rocm6.2``, ``xpu``) as a value.

A variant names both an index folder (``https://download.pytorch.org/whl/<tag>``)
and the local version label of the wheels in it (``torch-2.8.0+cu128``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from torchfit.errors import UsageError

__all__ = [
    "Kind",
    "Variant",
    "format_cuda",
    "parse_cuda",
]

Kind = Literal["cpu", "cuda", "rocm", "xpu"]

_KIND_RANK = {"cpu": 0, "xpu": 1, "rocm": 2, "cuda": 3}
_CUDA_TAG = re.compile(r"cu(\d{2,3})")
_ROCM_TAG = re.compile(r"rocm(\d+(?:\.\d+){1,2})")


@dataclass(frozen=True, order=False)
class Variant:
    """One wheel variant: its kind and, for CUDA and ROCm, its toolkit version."""

    kind: Kind
    version: tuple[int, ...] = ()

    @classmethod
    def parse(cls, tag: str) -> Variant:
        """Parse an index folder name / local label.

        >>> Variant.parse("cu101").version
        (10, 1)

        Raises UsageError for anything that is not a known variant shape.
        """
        text = tag.strip().lower()
        if text in ("cpu", "xpu"):
            return cls(text)  # type: ignore[arg-type]
        if match := _CUDA_TAG.fullmatch(text):
            digits = match.group(1)
            return cls("cuda", (int(digits[:-1]), int(digits[-1])))
        if match := _ROCM_TAG.fullmatch(text):
            return cls("rocm", tuple(int(part) for part in match.group(1).split(".")))
        raise UsageError(
            f"unknown variant {tag!r}",
            hint="use cpu, cuXY (e.g. cu118, cu128), rocmX.Y (e.g. rocm6.2) or xpu",
        )

    @classmethod
    def from_label(cls, label: str | None) -> Variant | None:
        """The variant named by a wheel's local version label, or None."""
        if not label:
            return None
        try:
            return cls.parse(label)
        except UsageError:
            return None

    @property
    def tag(self) -> str:
        if self.kind == "cuda":
            major, minor = self.version
            return f"cu{major}{minor}"
        if self.kind == "rocm":
            return "rocm" + ".".join(map(str, self.version))
        return self.kind

    @property
    def cuda(self) -> tuple[int, int] | None:
        """The CUDA toolkit version of a CUDA variant (``(10, 1)`` for cu101)."""
        if self.kind != "cuda":
            return None
        return (self.version[0], self.version[1])

    def sort_key(self) -> tuple[int, tuple[int, ...]]:
        """Higher is preferred: CUDA above ROCm above XPU above CPU, newer above older."""
        return (_KIND_RANK[self.kind], self.version)

    def __str__(self) -> str:
        return self.tag


def format_cuda(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def parse_cuda(text: str) -> tuple[int, int]:
    """Parse ``"12.8"`` (also ``"12"`` as 12.0).

    >>> parse_cuda("10.2")
    (10, 2)
    """
    # Two digits a part: CUDA is at 13; a longer number is a typo, not a toolkit.
    match = re.fullmatch(r"\s*([0-9]{1,2})(?:\.([0-9]{1,2})(?:\.[0-9]{1,3})?)?\s*", text)
    if not match:
        raise UsageError(
            f"invalid CUDA version {text!r}", hint="write it as MAJOR.MINOR, e.g. 12.8"
        )
    return (int(match.group(1)), int(match.group(2) or 0))
