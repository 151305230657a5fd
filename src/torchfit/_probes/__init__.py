"""Code that runs inside the target interpreter, kept as real modules so that it is linted and
type-checked like the rest.

Each probe is run by path with ``python -I`` (isolated: no user site, no current directory, no
``PYTHON*`` variables), may be as old as Python 3.6, uses the standard library only, and prints
one JSON object. The running interpreter imports the same functions instead: one code path.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def probe_command(python: str, probe: str, *args: str) -> list[str]:
    """The command that runs probe ``probe`` (a module name here) in ``python``."""
    return [python, "-I", str(_HERE / f"{probe}.py"), *args]
