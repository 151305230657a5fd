"""Tests own their world: no GPU tool, NVML library, driver file or cache of the host is seen.

Without this, a test that expects "no NVIDIA GPU" passes here and fails on a GPU machine.
CI proves it by running the suite once more with a fake nvidia-smi on PATH.
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from torchfit.machine import detect

_HOST_TOOLS = ("nvidia-smi", "nvidia-smi.exe", "nvcc", "nvcc.exe", "rocm-smi")

# Stands in for nvidia-ml-py on a machine without the NVML library, in this process and in
# every Python child a test starts (through PYTHONPATH).
_ABSENT_NVML = """
class NVMLError(Exception):
    def __init__(self, value):
        super().__init__("NVML Shared Library Not Found")
        self.value = value


def nvmlInit():
    raise NVMLError(12)
"""


@pytest.fixture(scope="session")
def _absent_nvml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("absent-nvml")
    (folder / "pynvml.py").write_text(_ABSENT_NVML, encoding="utf-8")
    return folder


@pytest.fixture(autouse=True)
def isolated_machine(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory, _absent_nvml: Path
) -> Iterator[None]:
    path = os.environ.get("PATH", "").split(os.pathsep)
    kept = [d for d in path if d and not any((Path(d) / t).exists() for t in _HOST_TOOLS)]
    monkeypatch.setenv("PATH", os.pathsep.join(kept))
    python_path = [
        str(_absent_nvml),
        *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep)),
    ]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(python_path))
    fake = types.ModuleType("pynvml")
    exec(_ABSENT_NVML, fake.__dict__)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr(detect, "DRIVER_VERSION_FILE", tmp_path_factory.getbasetemp() / "no-proc")
    # Nor the host's AMD or Intel GPUs (/sys, /dev, /opt/rocm are read under this root).
    monkeypatch.setattr(detect, "SYSTEM_ROOT", tmp_path_factory.getbasetemp() / "no-root")
    # Nor the host's torchfit, pip and TLS settings (this machine's pip may set a timeout).
    network = ("PIP_TIMEOUT", "PIP_DEFAULT_TIMEOUT", "PIP_CERT", "REQUESTS_CA_BUNDLE")
    network += ("CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "NETRC")
    # Nor a container image's CUDA (a suite run inside an nvidia/cuda image).
    image = ("NVIDIA_REQUIRE_CUDA", "CUDA_VERSION", "CONDA_OVERRIDE_CUDA", "NVIDIA_VISIBLE_DEVICES")
    # Nor the shell's choice of GPUs.
    image += ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")
    # Nor the shell's active environment: torchfit would act on it instead of this interpreter.
    active = ("VIRTUAL_ENV", "CONDA_PREFIX")
    for name in [
        n for n in os.environ if n.startswith("TORCHFIT_") or n in network + image + active
    ]:
        monkeypatch.delenv(name)
    # Each test its own HTTP cache: never the user's, never another test's fresh pages.
    monkeypatch.setenv("TORCHFIT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    # Children too read an empty machine root: not the host's /sys, /proc or libcuda.
    no_root = tmp_path_factory.getbasetemp() / "no-root"
    no_root.mkdir(exist_ok=True)
    monkeypatch.setenv("TORCHFIT_ROOT", str(no_root))
    yield
