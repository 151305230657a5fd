"""Code that runs inside the target interpreter, kept as real modules so that it is linted and
type-checked like the rest.

Each probe is run by path with ``python -I`` (isolated: no user site, no current directory, no
``PYTHON*`` variables), may be as old as Python 3.6, uses the standard library only, and prints
one JSON object. The running interpreter imports the same functions instead: one code path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent


def probe_command(python: str, probe: str, *args: str) -> list[str]:
    """The command that runs probe ``probe`` (a module name here) in ``python``."""
    return [python, "-I", str(_HERE / f"{probe}.py"), *args]


def probe_answer(stdout: str) -> Any:
    """The JSON a probe printed: its last line, since a ``.pth`` hook or an import may print
    before it. None when there is none.

    >>> probe_answer('hello from sitecustomize\\n{"version": [3, 12, 0]}\\n')
    {'version': [3, 12, 0]}
    """
    lines = stdout.strip().splitlines()
    try:
        return json.loads(lines[-1]) if lines else None
    except ValueError:
        return None
