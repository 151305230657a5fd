"""Probe: what is installed in the target interpreter, and what its torch is.

Runs in the target interpreter (any Python 3.6+), standard library only::

    python -I installed.py distributions          name -> version of every distribution
    python -I installed.py state                  the prefix, every distribution, and for
                                                  torch, torchvision and torchaudio where
                                                  they came from and whether they are whole
    python -I installed.py origin JSON            record the URLs the family's wheels came
                                                  from (see set_origins)
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
    """Lower-cased distribution name -> version; the first on sys.path wins, as for imports.

    Folders whose names begin with ``~`` are not distributions: pip moves a package it is
    uninstalling aside under such a name, and leaves it there when it is stopped.
    """
    found: Dict[str, str] = {}
    try:
        from importlib.metadata import distributions
    except ImportError:  # Python < 3.8: read the dist-info folders ourselves
        return _scan_dist_info()
    for dist in distributions():
        folder = getattr(dist, "_path", None)  # PathDistribution's; others have no folder
        if folder is not None and os.path.basename(str(folder)).startswith("~"):
            continue
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
            if not entry.endswith(".dist-info") or entry[:1] == "~" or not os.path.isfile(path):
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


FAMILY = ("torch", "torchvision", "torchaudio")


def environment_state() -> Dict[str, Any]:
    """What an install may change, read before and after it.

    ``family`` maps each installed torch-family name to its ``version``, the ``url`` and
    ``sha256`` its ``direct_url.json`` (PEP 610) names, and ``intact``: whether the installer
    finished it (an install cut short leaves files missing, or the wheel's own RECORD).
    """
    prefix = sys.prefix
    return {
        "prefix": prefix,
        "writable": os.access(prefix, os.W_OK),
        "distributions": installed_distributions(),
        "family": _family(),
        "leftovers": _leftovers(),
    }


def _leftovers() -> List[str]:
    """What an uninstall that pip did not finish left in a site folder: the files it had
    moved aside, under names beginning with ``~`` (pip warns "Ignoring invalid distribution"
    about them from then on)."""
    found = []
    for folder in sys.path:
        if os.path.isdir(folder) and os.path.basename(folder) in ("site-packages", "dist-packages"):
            found += [os.path.join(folder, e) for e in sorted(os.listdir(folder)) if e[:1] == "~"]
    return found


def _family() -> Dict[str, Dict[str, Any]]:
    found: Dict[str, Dict[str, Any]] = {}
    for name, (folder, info, version) in _family_folders().items():
        found[name] = dict(version=version, intact=_intact(folder, info), **_origin(info))
    return found


def _family_folders() -> Dict[str, Any]:
    """Family name -> (site folder, dist-info folder, version); first on sys.path wins."""
    found: Dict[str, Any] = {}
    for folder in sys.path:
        if not os.path.isdir(folder):
            continue
        for entry in sorted(os.listdir(folder)):
            name = entry.split("-", 1)[0].lower()
            if not entry.endswith(".dist-info") or name not in FAMILY or name in found:
                continue
            info = os.path.join(folder, entry)
            version = _metadata_version(os.path.join(info, "METADATA"))
            if version is not None:
                found[name] = (folder, info, version)
    return found


def set_origins(entries: List[Dict[str, Any]]) -> Dict[str, List[str]]:
    """Point each package's ``direct_url.json`` (PEP 610) at the URL its wheel was fetched
    from, where the installer recorded the local copy torchfit gave it (``local``): what
    ``pip freeze`` prints stays a URL that works tomorrow, not a temporary file. Its RECORD
    line is updated to match. A package installed from anywhere else is left alone.
    """
    from urllib.parse import unquote

    updated = []
    folders = _family_folders()
    for entry in entries:
        place = folders.get(str(entry["name"]))
        if place is None:
            continue
        path = os.path.join(place[1], "direct_url.json")
        try:
            with open(path, encoding="utf-8") as source:
                current = json.load(source)
        except (OSError, ValueError):
            continue
        local = unquote(str(entry["local"]).split("#", 1)[0])
        # pip writes the URL without its fragment, uv with it.
        if not isinstance(current, dict) or unquote(str(current.get("url")).split("#")[0]) != local:
            continue
        sha256 = entry.get("sha256")
        archive = {"hashes": {"sha256": sha256}, "hash": "sha256=" + sha256} if sha256 else {}
        data = json.dumps({"url": entry["url"], "archive_info": archive}, sort_keys=True)
        _write(path, data.encode("utf-8"))
        _record_line(place[1], "direct_url.json", data.encode("utf-8"))
        updated.append(str(entry["name"]))
    return {"updated": updated}


def _write(path: str, data: bytes) -> None:
    temporary = path + ".torchfit-tmp"
    with open(temporary, "wb") as out:
        out.write(data)
    os.replace(temporary, path)


def _record_line(info: str, member: str, data: bytes) -> None:
    import base64
    import csv
    import hashlib
    import io

    record = os.path.join(info, "RECORD")
    with open(record, encoding="utf-8", newline="") as source:
        text = source.read()
    relative = os.path.basename(info) + "/" + member
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    rows = [
        [relative, "sha256=" + digest, str(len(data))] if row and row[0] == relative else row
        for row in csv.reader(text.splitlines())
    ]
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n" if "\r\n" in text else "\n").writerows(rows)
    _write(record, out.getvalue().encode("utf-8"))


def _metadata_version(path: str) -> Optional[str]:
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if not line.strip():
                break
            key, _, value = line.partition(":")
            if key.strip().lower() == "version":
                return value.strip()
    return None


def _origin(info: str) -> Dict[str, Optional[str]]:
    """The URL and sha256 of the archive it was installed from, when it was a direct URL."""
    try:
        with open(os.path.join(info, "direct_url.json"), encoding="utf-8") as source:
            data = json.load(source)
    except (OSError, ValueError):
        return {"url": None, "sha256": None}
    if not isinstance(data, dict):
        return {"url": None, "sha256": None}
    archive = data.get("archive_info")
    if not isinstance(archive, dict) or not isinstance(data.get("url"), str):
        return {"url": None, "sha256": None}  # a directory or VCS checkout: no wheel to refetch
    hashes = archive.get("hashes")
    sha256 = hashes.get("sha256") if isinstance(hashes, dict) else None
    legacy = archive.get("hash")
    url, _, fragment = data["url"].partition("#")  # uv keeps the hash in the URL
    if not sha256 and isinstance(legacy, str) and legacy.startswith("sha256="):
        sha256 = legacy[len("sha256=") :]
    if not sha256 and fragment.startswith("sha256="):
        sha256 = fragment[len("sha256=") :]
    return {"url": url, "sha256": sha256 if isinstance(sha256, str) else None}


def _intact(site: str, info: str) -> bool:
    """Whether an installer finished this package: its RECORD is the installer's own (it
    lists INSTALLER; the wheel's RECORD, unpacked first, does not) and every file it lists
    is there. Without a RECORD (a system package manager's) there is nothing to judge."""
    import csv

    try:
        with open(os.path.join(info, "RECORD"), encoding="utf-8", newline="") as record:
            rows = [row for row in csv.reader(record) if row and row[0]]
    except OSError:
        return True
    if not any(row[0].endswith(".dist-info/INSTALLER") for row in rows):
        return False
    return all(os.path.exists(os.path.join(site, row[0])) for row in rows)


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
    if ask_gpu and getattr(torch.version, "xpu", None):
        facts.update(_xpu_facts(torch))
    elif ask_gpu:
        facts.update(_cuda_facts(torch))
    return facts


def _xpu_facts(torch: Any) -> Dict[str, Any]:
    """An Intel GPU through ``torch.xpu``: available, its devices, one kernel launch."""
    xpu = torch.xpu
    facts: Dict[str, Any] = {"xpu_available": bool(xpu.is_available()), "cuda_available": None}
    if not facts["xpu_available"]:
        return facts
    facts["devices"] = [{"name": xpu.get_device_name(i)} for i in range(xpu.device_count())]
    try:
        facts["kernel"] = float((torch.ones(1, device="xpu") + 1).item())
    except Exception as exc:
        facts["kernel_error"] = "%s: %s" % (type(exc).__name__, exc)
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
            if name in ("cuda", "hip", "xpu") and value is not None:
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
    if getattr(torch.version, "hip", None):  # ROCm: the device's gfx target, not a capability
        for i, device in enumerate(facts["devices"]):
            device["gfx"] = getattr(cuda.get_device_properties(i), "gcnArchName", None)
    facts["cudnn"] = torch.backends.cudnn.version()
    try:  # the first kernel launch is where "no kernel image is available" shows up
        facts["kernel"] = float((torch.ones(1, device="cuda") + 1).item())
    except Exception as exc:
        facts["kernel_error"] = "%s: %s" % (type(exc).__name__, exc)
    return facts


def main(args: List[str]) -> Dict[str, Any]:
    if args[:1] == ["distributions"]:
        return dict(installed_distributions())
    if args[:1] == ["state"]:
        return environment_state()
    if args[:1] == ["origin"] and len(args) == 2:
        return set_origins(json.loads(args[1]))
    if args[:1] == ["torch"] and len(args) >= 2:
        return torch_facts(args[1], ask_gpu="gpu" in args[2:])
    raise SystemExit(
        "usage: installed.py distributions | state | origin JSON | torch static|import [gpu]"
    )


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
