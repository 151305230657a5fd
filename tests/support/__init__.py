"""Real parts for tests: small wheels, a loopback index server, throwaway venvs with pip."""

from __future__ import annotations

from .server import IndexServer, Request, Response, serve_directory
from .venvs import find_python, isolated_env, make_venv, pip_freeze, venv_python
from .wheels import (
    FakeGpu,
    build_wheel,
    publish,
    sha256_of,
    standin_torch,
    wheel_metadata,
    write_index,
    write_metadata_sidecar,
)

__all__ = [
    "FakeGpu",
    "IndexServer",
    "Request",
    "Response",
    "build_wheel",
    "find_python",
    "isolated_env",
    "make_venv",
    "pip_freeze",
    "publish",
    "serve_directory",
    "sha256_of",
    "standin_torch",
    "venv_python",
    "wheel_metadata",
    "write_index",
    "write_metadata_sidecar",
]
