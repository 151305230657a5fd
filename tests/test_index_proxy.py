"""The default index through a proxy from the environment, as behind a corporate firewall:
HTTPS_PROXY names a CONNECT proxy that leads download.pytorch.org to a loopback TLS server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support import serve_directory
from support.tls import find_openssl, make_certificates, serve_tunnel, server_context

ROOT = Path(__file__).resolve().parents[1]
OPENSSL = find_openssl()
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="openssl is needed to make a test CA")


def test_https_proxy_from_the_environment_is_used(tmp_path: Path) -> None:
    assert OPENSSL is not None
    certs = make_certificates(tmp_path, ("download.pytorch.org", "127.0.0.1"), OPENSSL)
    shutil.copytree(ROOT / "wheel_index_snapshots", tmp_path / "site" / "whl")
    with (
        serve_directory(tmp_path / "site", ssl_context=server_context(certs)) as server,
        serve_tunnel({}) as tunnel,
    ):
        tunnel.targets["download.pytorch.org"] = ("127.0.0.1", int(server.url.rsplit(":", 1)[1]))
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env.update(HTTPS_PROXY=tunnel.url, SSL_CERT_FILE=str(certs.ca))
        plan = ["plan", "torch==1.7.1", "--cuda", "10.1", "--python-version", "3.8"]
        done = subprocess.run(
            [sys.executable, "-m", "torchfit", *plan, "--platform", "linux_x86_64"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("variant cu101")
    assert tunnel.connects == [("download.pytorch.org", True)]
    assert server.requests == ["/whl/cu101/torch/"]
