"""A real web server for the repository tests: Debian's nginx, started on loopback.

Devices read a repository as static files from whatever server or CDN hosts
it (docs/format.md §15.1), so the transport is tested against a server that
does what production ones do on its own: strong ETags and ``304 Not
Modified``, ``Last-Modified``, ``Range`` and ``If-Range``, and precompressed
``.gz`` siblings (``gzip_static on``). Python's ``http.server`` does none of
it; tests/_server_http.py plays the hostile answers nginx cannot give.

``nginx_server`` (function-scoped) serves a fresh ``tmp_path/"www"``;
:func:`serve_with_nginx` serves any folder for as long as its ``with`` lasts
(benchmarks, module-scoped fixtures). Either gives an :class:`NginxServer`:

- ``.url`` (``http://127.0.0.1:PORT``, no trailing slash), ``.root``,
  ``.url_for(path)``;
- ``.wire()``: the access log parsed, one :class:`WireRequest` per request
  (method, path, status, bytes sent including headers, request length): the
  bytes a device paid for on the wire;
- ``.error_log``: nginx's own log, shown when it fails to start.

The configuration follows docs/format.md §15.1: documents (``*.json``) carry
``Cache-Control: no-cache`` (any cache revalidates them, which costs a 304),
bundles ``immutable``; ``default_type application/octet-stream``. Started as
root, the workers run as root too (``user root;``): ``tmp_path`` folders are
0700 and nginx's default worker user could not read them. A missing nginx
fails the test, never skips it: a skipped test would leave the transport
untested against a real server (.ci/test installs it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

_HOST = "127.0.0.1"
_START_TIMEOUT = 10.0
_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")

_CONFIG = """\
{user}
daemon off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 64; }}
http {{
    log_format wire '$request $status $bytes_sent $request_length';
    access_log {work}/access.log wire;
    client_body_temp_path {work}/client_body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    types {{ application/json json; }}
    default_type application/octet-stream;
    etag on;
    gzip_static on;
    gzip_vary on;
    server {{
        listen {host}:{port};
        root {root};
        location / {{ }}
        location ~ \\.json$ {{ add_header Cache-Control "no-cache" always; }}
        location /bundles/ {{
            add_header Cache-Control "public, max-age=31536000, immutable";
            {bundles}
        }}
    }}
}}
"""


@dataclass(frozen=True)
class WireRequest:
    """One line of the access log: a request and what it cost on the wire."""

    method: str
    path: str  # as requested, without the leading slash
    status: int
    bytes_sent: int  # the response, status line and headers included
    request_length: int  # the request, request line and headers included


@dataclass(frozen=True)
class NginxServer:
    """The running server as tests see it."""

    root: Path
    url: str
    access_log: Path
    error_log: Path

    def url_for(self, path: str) -> str:
        return f"{self.url}/{path.lstrip('/')}"

    def wire(self, *, at_least: int = 0, timeout: float = 5.0) -> list[WireRequest]:
        """Every request served so far, in order.

        nginx logs a request after sending its last byte, so a client may see
        the answer a moment before the line is written: ask for ``at_least``
        the requests the test made, and this waits (up to ``timeout``) for them.
        """
        deadline = time.monotonic() + timeout
        while True:
            lines = self.access_log.read_text().splitlines() if self.access_log.exists() else []
            if len(lines) >= at_least or time.monotonic() > deadline:
                return [_parse(line) for line in lines]
            time.sleep(0.01)

    def bytes_sent(self, *, at_least: int = 0) -> int:
        """The total of :attr:`WireRequest.bytes_sent` over :meth:`wire`."""
        return sum(r.bytes_sent for r in self.wire(at_least=at_least))


def _parse(line: str) -> WireRequest:
    request, status, sent, length = line.rsplit(" ", 3)
    method, _, rest = request.partition(" ")
    path = rest.rsplit(" ", 1)[0] if rest.endswith(("HTTP/1.0", "HTTP/1.1")) else rest
    return WireRequest(method, path.lstrip("/"), int(status), int(sent), int(length))


def nginx_binary() -> Path:
    """Where nginx is; fails the test when it is not installed."""
    found = shutil.which("nginx") or next((c for c in _CANDIDATES if os.access(c, os.X_OK)), None)
    if found is None:
        pytest.fail("nginx is required for the transport tests: apt-get install nginx (.ci/test)")
    return Path(found)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((_HOST, 0))
        port: int = sock.getsockname()[1]
    return port


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((_HOST, port), timeout=0.5):
        return True
    return False


@contextlib.contextmanager
def serve_with_nginx(root: Path, work: Path, *, bundles: str = "") -> Iterator[NginxServer]:
    """Serve ``root`` on a free loopback port; nginx's files go to ``work``.

    ``bundles`` is more configuration for ``/bundles/``, e.g. ``limit_rate`` for a slow
    network.

    The port is picked free and then bound by nginx, so another process can
    take it in between: a start that fails to bind is retried on a new port.
    """
    binary = nginx_binary()
    work.mkdir(parents=True, exist_ok=True)
    user = "user root;" if os.geteuid() == 0 else ""  # else nginx warns that it cannot switch
    for _ in range(3):
        port = _free_port()
        config = work / "nginx.conf"
        config.write_text(
            _CONFIG.format(
                user=user, work=work, host=_HOST, port=port, root=root.resolve(), bundles=bundles
            )
        )
        error_log = work / "error.log"
        with (work / "stderr.log").open("wb") as err:
            proc = subprocess.Popen(
                [str(binary), "-p", str(work), "-e", str(error_log), "-c", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,  # its own group: a stuck master goes with its workers
            )
        try:
            deadline = time.monotonic() + _START_TIMEOUT
            while proc.poll() is None and not _answers(port):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.02)
            if proc.poll() is None and _answers(port):
                yield NginxServer(
                    root=root,
                    url=f"http://{_HOST}:{port}",
                    access_log=work / "access.log",
                    error_log=error_log,
                )
                return
        finally:
            _stop(proc)
        log = error_log.read_text() if error_log.exists() else ""
        if "Address already in use" not in log:
            break
    stderr = (work / "stderr.log").read_text()
    pytest.fail(f"nginx did not start ({binary}):\n{stderr}\n{log}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()  # SIGTERM: nginx's fast shutdown, workers included
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def nginx_server(tmp_path: Path) -> Iterator[NginxServer]:
    """Serve a fresh ``tmp_path/"www"`` with nginx for one test; see the module docstring."""
    root = tmp_path / "www"
    root.mkdir()
    with serve_with_nginx(root, tmp_path / "nginx") as server:
        yield server
