"""Small, valid wheels built on the fly, and index pages that list them.

Tests build their own wheels instead of shipping binaries: each one is a few hundred
bytes, real pip installs it, and its name, version, tags and dependencies say exactly
what the test needs (a ``torch`` stand-in tagged ``+cu101``, a dependency, ...).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import shutil
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

# A fixed timestamp makes the same inputs give the same bytes, so hashes are stable.
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)


def sha256_of(path: Path) -> str:
    """Return the hex sha256 of the file at ``path``."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _escape_name(name: str) -> str:
    # Binary distribution format: runs of "-_." become "_", lower case.
    return re.sub(r"[-_.]+", "_", name).lower()


def _record_digest(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def _expand_tags(tag: str) -> list[str]:
    # "py2.py3-none-any" is a compressed tag set; WHEEL lists each tag on its own line.
    interpreters, abis, platforms = tag.split("-")
    return [
        f"{i}-{a}-{p}"
        for i in interpreters.split(".")
        for a in abis.split(".")
        for p in platforms.split(".")
    ]


def build_wheel(
    dest: Path,
    name: str,
    version: str,
    *,
    tag: str = "py3-none-any",
    requires: Sequence[str] = (),
    files: Mapping[str, str] | None = None,
    requires_python: str | None = None,
) -> Path:
    """Write ``<name>-<version>-<tag>.whl`` into ``dest`` and return its path.

    ``files`` maps archive paths (``"pkg/__init__.py"``) to text. The version is written
    as given, so a local label such as ``1.7.1+cu101`` keeps its literal ``+``.
    """
    dist = f"{_escape_name(name)}-{version.replace('-', '_')}"
    info = f"{dist}.dist-info"
    metadata = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    metadata += [f"Requires-Dist: {req}" for req in requires]
    if requires_python is not None:
        metadata.append(f"Requires-Python: {requires_python}")
    wheel = ["Wheel-Version: 1.0", "Generator: torchfit-tests", "Root-Is-Purelib: true"]
    wheel += [f"Tag: {t}" for t in _expand_tags(tag)]

    entries = {path: text.encode() for path, text in (files or {}).items()}
    entries[f"{info}/METADATA"] = ("\n".join(metadata) + "\n").encode()
    entries[f"{info}/WHEEL"] = ("\n".join(wheel) + "\n").encode()
    record = [f"{path},{_record_digest(data)},{len(data)}" for path, data in entries.items()]
    record.append(f"{info}/RECORD,,")  # RECORD cannot hash itself
    entries[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / f"{dist}-{tag}.whl"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in entries.items():
            member = zipfile.ZipInfo(path, date_time=_ZIP_TIME)
            member.external_attr = 0o644 << 16
            archive.writestr(member, data, zipfile.ZIP_DEFLATED)
    return target


@dataclass(frozen=True)
class FakeGpu:
    """What a stand-in torch reports about CUDA, as real torch would on some machine."""

    available: bool = False
    arch_list: tuple[str, ...] = ()  # torch.cuda.get_arch_list()
    devices: tuple[tuple[str, tuple[int, int]], ...] = ()  # (name, capability) per device
    cudnn: int | None = None
    kernel_error: str | None = None  # raised by the first kernel launch


_STANDIN_INIT = """\
from types import SimpleNamespace
from . import version
from .version import __version__
from ._gpu import AVAILABLE, ARCH_LIST, DEVICES, CUDNN, KERNEL_ERROR

# Like real torch: torch.cuda is the runtime API, torch.version.cuda the build's CUDA.
cuda = SimpleNamespace(
    is_available=lambda: AVAILABLE,
    get_arch_list=lambda: list(ARCH_LIST),
    device_count=lambda: len(DEVICES),
    get_device_name=lambda i: DEVICES[i][0],
    get_device_capability=lambda i: tuple(DEVICES[i][1]),
)
backends = SimpleNamespace(cudnn=SimpleNamespace(version=lambda: CUDNN))


class _Tensor:
    def __init__(self, value):
        self.value = value

    def __add__(self, other):
        if KERNEL_ERROR:
            raise RuntimeError(KERNEL_ERROR)
        return _Tensor(self.value + other)

    def item(self):
        return self.value


def ones(size, device="cpu"):
    return _Tensor(1.0)
"""


def standin_torch(
    dest: Path,
    version: str,
    *,
    cuda: str | None,
    tag: str = "py3-none-any",
    requires: Sequence[str] = (),
    requires_python: str | None = None,
    gpu: FakeGpu = FakeGpu(),
) -> Path:
    """Build a tiny ``torch`` wheel whose ``torch.version`` looks like the real one.

    ``torch.__version__`` is ``version``, ``torch.version.cuda`` is ``cuda`` (``None`` for
    CPU builds, as in real torch); ``torch.cuda`` and ``torch.backends.cudnn`` answer as
    ``gpu`` says (by default: no GPU).
    """
    version_py = f"__version__ = {version!r}\ncuda = {cuda!r}\n"
    gpu_py = (
        f"AVAILABLE = {gpu.available!r}\nARCH_LIST = {list(gpu.arch_list)!r}\n"
        f"DEVICES = {[list(d) for d in gpu.devices]!r}\nCUDNN = {gpu.cudnn!r}\n"
        f"KERNEL_ERROR = {gpu.kernel_error!r}\n"
    )
    files = {
        "torch/__init__.py": _STANDIN_INIT,
        "torch/version.py": version_py,
        "torch/_gpu.py": gpu_py,
    }
    return build_wheel(
        dest,
        "torch",
        version,
        tag=tag,
        requires=requires,
        files=files,
        requires_python=requires_python,
    )


def wheel_metadata(wheel: Path) -> bytes:
    """Return the bytes of the wheel's ``*.dist-info/METADATA``."""
    with zipfile.ZipFile(wheel) as archive:
        (member,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return archive.read(member)


def write_metadata_sidecar(wheel: Path) -> Path:
    """Write the PEP 658 sidecar ``<wheel>.metadata`` beside ``wheel``; return its path."""
    sidecar = Path(f"{wheel}.metadata")
    sidecar.write_bytes(wheel_metadata(wheel))
    return sidecar


def write_index(directory: Path, project: str | None = None) -> Path:
    """List the wheels in ``directory`` in its ``index.html`` (PEP 503) and ``index.json``
    (PEP 691), with sha256 fragments, Requires-Python and, where a ``.metadata`` sidecar
    exists, its hash (PEP 658/714). Return the path of ``index.html``.
    """
    directory = Path(directory)
    links, files = [], []
    for wheel in sorted(directory.glob("*.whl")):
        url = quote(wheel.name)
        digest = sha256_of(wheel)
        attrs = ""
        entry: dict[str, object] = {
            "filename": wheel.name,
            "url": url,
            "hashes": {"sha256": digest},
        }
        for line in wheel_metadata(wheel).decode().splitlines():
            if line.startswith("Requires-Python: "):
                spec = line.split(": ", 1)[1]
                attrs += f' data-requires-python="{html.escape(spec)}"'
                entry["requires-python"] = spec
        sidecar = Path(f"{wheel}.metadata")
        if sidecar.exists():
            meta = f"sha256={sha256_of(sidecar)}"
            # Both spellings: pip <23.2 reads the PEP 658 name, newer tools the PEP 714 one.
            attrs += f' data-dist-info-metadata="{meta}" data-core-metadata="{meta}"'
            entry["core-metadata"] = entry["dist-info-metadata"] = {"sha256": sha256_of(sidecar)}
        links.append(f'<a href="{url}#sha256={digest}"{attrs}>{html.escape(wheel.name)}</a><br>')
        files.append(entry)
    name = project or directory.name
    page = [
        "<!DOCTYPE html>",
        f"<html><body><h1>Links for {html.escape(name)}</h1>",
        *links,
        "</body></html>",
    ]
    (directory / "index.html").write_text("\n".join(page) + "\n", encoding="utf-8")
    doc = {"meta": {"api-version": "1.0"}, "name": name, "files": files}
    (directory / "index.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return directory / "index.html"


def publish(root: Path, variant: str, wheel: Path) -> None:
    """Move ``wheel`` into ``root/whl/<variant>/`` and add it to its project page there, as
    download.pytorch.org lists files: host-absolute hrefs, ``%2B`` for ``+``, a ``#sha256=``
    fragment. Project pages are named by the normalized project name."""
    folder = root / "whl" / variant
    folder.mkdir(parents=True, exist_ok=True)
    shutil.move(str(wheel), folder / wheel.name)
    project = re.sub(r"[-_.]+", "-", wheel.name.split("-")[0]).lower()
    page = folder / project / "index.html"
    page.parent.mkdir(exist_ok=True)
    links = page.read_text().splitlines()[1:-1] if page.exists() else []
    href = f"/whl/{variant}/{quote(wheel.name)}#sha256={sha256_of(folder / wheel.name)}"
    links.append(f'<a href="{href}">{wheel.name}</a><br/>')
    page.write_text("\n".join(["<html><body>", *links, "</body></html>"]) + "\n")
