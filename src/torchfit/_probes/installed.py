"""Probe: what is installed in the target interpreter, and what its torch is.

Runs in the target interpreter (any Python 3.6+), standard library only::

    python -I installed.py distributions          name -> version of every distribution
    python -I installed.py torch static           torch's version, CUDA and HIP, from its files
    python -I installed.py torch import [gpu]     ... and import it (and ask CUDA, with gpu)

The torch modes read ``torch/version.py`` as text before importing anything, so a broken or
mismatched build still says what it is.
"""

import ast
import importlib
import importlib.util
import json
import os
import sys
from typing import Any, Dict, List, Optional


def installed_distributions() -> Dict[str, str]:
    """Lower-cased distribution name -> version; the first on sys.path wins, as for imports."""
    found: Dict[str, str] = {}
    try:
        from importlib.metadata import distributions
    except ImportError:  # Python < 3.8: read the dist-info folders ourselves
        return _scan_dist_info()
    for dist in distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(name.lower(), dist.version)
    return found


def _scan_dist_info() -> Dict[str, str]:
    found: Dict[str, str] = {}
    for folder in sys.path:
        if not os.path.isdir(folder):
            continue
        for entry in sorted(os.listdir(folder)):
            path = os.path.join(folder, entry, "METADATA")
            if not entry.endswith(".dist-info") or not os.path.isfile(path):
                continue
            fields: Dict[str, str] = {}
            with open(path, encoding="utf-8", errors="replace") as lines:
                for line in lines:
                    if not line.strip():
                        break
                    key, _, value = line.partition(":")
                    fields.setdefault(key.strip().lower(), value.strip())
            if fields.get("name"):
                found.setdefault(fields["name"].lower(), fields.get("version", ""))
    return found


def torch_facts(mode: str, ask_gpu: bool) -> Dict[str, Any]:
    facts: Dict[str, Any] = {
        "version": installed_distributions().get("torch"),
        "cuda": None,
        "hip": None,
        "import_error": None,
        "cuda_available": None,
    }
    if facts["version"] is None:
        return facts
    facts.update(_version_file())
    if mode != "import":
        return facts
    try:
        torch = importlib.import_module("torch")
    except Exception as exc:
        facts["import_error"] = "%s: %s" % (type(exc).__name__, exc)
        return facts
    if ask_gpu:
        facts.update(_cuda_facts(torch))
    return facts


def _version_file() -> Dict[str, Optional[str]]:
    """``cuda`` and ``hip`` as torch/version.py assigns them, without importing torch."""
    spec = importlib.util.find_spec("torch")
    folders: List[str] = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        path = os.path.join(folder, "version.py")
        if not os.path.isfile(path):
            continue
        values: Dict[str, Optional[str]] = {}
        with open(path, encoding="utf-8") as source:
            tree = ast.parse(source.read())
        for node in tree.body:
            target = (
                node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
            )
            name = getattr(target, "id", None)
            value = getattr(node, "value", None)
            if name in ("cuda", "hip") and value is not None:
                try:
                    values[name] = ast.literal_eval(value)
                except ValueError:
                    pass
        return values
    return {}


def _cuda_facts(torch: Any) -> Dict[str, Any]:
    cuda = torch.cuda
    facts: Dict[str, Any] = {"cuda_available": bool(cuda.is_available())}
    if not facts["cuda_available"]:
        return facts
    facts["arch_list"] = list(cuda.get_arch_list())
    facts["devices"] = [
        {"name": cuda.get_device_name(i), "capability": list(cuda.get_device_capability(i))}
        for i in range(cuda.device_count())
    ]
    facts["cudnn"] = torch.backends.cudnn.version()
    try:  # the first kernel launch is where "no kernel image is available" shows up
        facts["kernel"] = float((torch.ones(1, device="cuda") + 1).item())
    except Exception as exc:
        facts["kernel_error"] = "%s: %s" % (type(exc).__name__, exc)
    return facts


def main(args: List[str]) -> Dict[str, Any]:
    if args[:1] == ["distributions"]:
        return dict(installed_distributions())
    if args[:1] == ["torch"] and len(args) >= 2:
        return torch_facts(args[1], ask_gpu="gpu" in args[2:])
    raise SystemExit("usage: installed.py distributions | torch static|import [gpu]")


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
