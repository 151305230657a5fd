"""TLS for the loopback index: a throwaway CA, a server certificate, and a CONNECT tunnel.

``make_certificates`` runs the ``openssl`` command-line tool (argv lists, no shell) in a
directory the caller owns; clients trust the result through ``SSL_CERT_FILE=<ca.pem>``.
``serve_tunnel`` is a CONNECT-only proxy that sends chosen host names to a loopback port, so
a client with hard-coded URLs (uv's ``--torch-backend`` reads only download.pytorch.org)
can be pointed at the loopback index with ``HTTPS_PROXY``. TLS stays end to end: the index
server presents a certificate that names those hosts too.
"""

from __future__ import annotations

import ipaddress
import shutil
import socket
import socketserver
import ssl
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import NamedTuple

_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


class Certificates(NamedTuple):
    ca: Path  # PEM, the trust root to give clients
    cert: Path  # PEM, the server's certificate, signed by ca
    key: Path  # PEM, the server's private key


def find_openssl() -> str | None:
    """The ``openssl`` executable on PATH, or ``None``."""
    return shutil.which("openssl")


def make_certificates(
    directory: Path, hosts: Sequence[str] = ("127.0.0.1", "localhost"), openssl: str = "openssl"
) -> Certificates:
    """Write a one-day CA and a server certificate for ``hosts`` into ``directory``.

    Raises ``subprocess.CalledProcessError`` if openssl fails (its stderr is on the error).
    """
    d = Path(directory)
    ca, ca_key = d / "ca.pem", d / "ca.key"
    cert, key, csr, ext = d / "server.pem", d / "server.key", d / "server.csr", d / "server.ext"
    names = ",".join(f"IP:{h}" if _is_ip(h) else f"DNS:{h}" for h in hosts)
    ext.write_text(
        f"subjectAltName={names}\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        encoding="ascii",
    )
    ca_ext = ["basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign"]
    steps = [
        [openssl, "req", "-x509", *_KEY, "-keyout", ca_key, "-out", ca, "-days", "1",
         "-subj", "/CN=torchfit test CA", "-addext", ca_ext[0], "-addext", ca_ext[1]],
        [openssl, "req", *_KEY, "-keyout", key, "-out", csr, "-subj", f"/CN={hosts[0]}"],
        [openssl, "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
         "-out", cert, "-days", "1", "-sha256", "-extfile", ext],
    ]  # fmt: skip
    for argv in steps:
        subprocess.run([str(a) for a in argv], check=True, capture_output=True, timeout=60)
    return Certificates(ca, cert, key)


def server_context(certs: Certificates) -> ssl.SSLContext:
    """A server-side context presenting ``certs.cert`` (for ``serve_directory``)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs.cert, certs.key)
    return context


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class _TunnelHandler(socketserver.StreamRequestHandler):
    timeout = 10
    rbufsize = 0  # unbuffered: no byte after the CONNECT headers may be read ahead
    server: _TunnelServer

    def handle(self) -> None:
        request_line = self.rfile.readline(65537).decode("latin-1").split()
        while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
            pass  # the proxy ignores CONNECT's headers
        host = request_line[1].rpartition(":")[0] if len(request_line) == 3 else ""
        target = self.server.owner.targets.get(host) if request_line[0] == "CONNECT" else None
        self.server.owner._record(host, target is not None)
        if target is None:
            self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        with socket.create_connection(target, timeout=10) as upstream:
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self.wfile.flush()
            pump = threading.Thread(target=_pipe, args=(upstream, self.connection), daemon=True)
            pump.start()
            _pipe(self.connection, upstream)
            pump.join()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass  # either side went away; the other direction notices on its own
    finally:
        with suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


class _TunnelServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    owner: Tunnel


class Tunnel:
    """A running CONNECT proxy; ``targets`` maps host names to ``(address, port)``."""

    def __init__(self, targets: Mapping[str, tuple[str, int]]) -> None:
        self.targets = dict(targets)  # callers may re-point it between runs
        self.connects: list[tuple[str, bool]] = []  # (host, tunnelled?) in order
        self._lock = threading.Lock()
        self._server = _TunnelServer(("127.0.0.1", 0), _TunnelHandler)
        self._server.owner = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def refused(self) -> list[str]:
        """Hosts asked for that are not in ``targets`` (they got a 403)."""
        with self._lock:
            return [host for host, ok in self.connects if not ok]

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def _record(self, host: str, ok: bool) -> None:
        with self._lock:
            self.connects.append((host, ok))


@contextmanager
def serve_tunnel(targets: Mapping[str, tuple[str, int]]) -> Iterator[Tunnel]:
    """Run a CONNECT proxy on ``http://127.0.0.1:<free port>`` until the block exits."""
    tunnel = Tunnel(targets)
    try:
        yield tunnel
    finally:
        tunnel.stop()
