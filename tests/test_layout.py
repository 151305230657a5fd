"""The package's layers: imports point downward only, and nothing imports the package itself.

Read from the source with ast, so a violation fails here before it becomes an import cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "torchfit"

# Lowest first. A module may import modules of its own layer or of lower layers only.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("_version", "_text", "_terminal", "errors", "variants", "_runner", "_probes"),
    ("machine",),
    ("environment",),
    ("index",),
    ("choose",),
    ("check",),
    ("settings", "results"),
    ("session",),
    ("_api", "types"),
    ("cli", "__main__"),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts != ("__init__",):
            found.append((parts[0], path))
    return found


def imported_layers(path: Path) -> list[tuple[int, str]]:
    """(line, first component under torchfit) of every torchfit import in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "torchfit":
                names = [f"torchfit.{alias.name}" for alias in node.names]
            else:
                names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "torchfit":
                found.append((node.lineno, parts[1] if len(parts) > 1 else "__init__"))
    return found


def test_every_module_has_a_layer() -> None:
    assert {top for top, _ in modules()} <= set(RANK)


@pytest.mark.parametrize(
    "top,path", modules(), ids=[str(p.relative_to(PACKAGE)) for _, p in modules()]
)
def test_imports_point_downward(top: str, path: Path) -> None:
    for line, imported in imported_layers(path):
        where = f"{path.relative_to(PACKAGE)}:{line} imports torchfit.{imported}"
        assert imported != "__init__", f"{where}: import the module that defines it instead"
        assert RANK[imported] <= RANK[top], f"{where}, a higher layer"


def test_no_relative_imports() -> None:
    # Absolute imports keep the layer of every import visible to this test and to readers.
    for _, path in modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        relative = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level]
        assert not relative, f"{path.relative_to(PACKAGE)}: relative import at {relative}"


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["plan", "--help"]])
def test_version_and_help_import_no_third_party_package(argv: list[str]) -> None:
    script = (
        "import sys\n"
        "from torchfit.cli.main import main\n"
        "try:\n"
        f"    main({argv!r}, env={{}})\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted({'httpx', 'resolvelib', 'packaging', 'pynvml'} & set(sys.modules))\n"
        "print('loaded:', heavy, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stderr.strip().splitlines()[-1] == "loaded: []"
