"""Slow retrieval: a server that drips bytes never trips an idle timeout; the limits stop it.

A real threaded HTTP server drips its answer (a byte every few tens of
milliseconds, each one well inside the idle timeout): in the headers, which
no read loop of ours sees, or in the body. Small limits keep each test near
one second; the defaults scale the same checks up.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from _cli import aoe
from _tls import loopback_certificate

from aoe_pack._crypto.asymmetric import PrivateKey
from aoe_pack.errors import DownloadTooSlowError
from aoe_pack.repository import envelope
from aoe_pack.repository.root import new_root
from aoe_pack.storage._transfer import _tls
from aoe_pack.storage.http import HttpStore, TransferLimits, download, fetch_bytes
from aoe_pack.storage.store import MANIFEST

SIZE = 100_000


@dataclass
class Drip:
    """What the server drips, and how fast."""

    url: str
    where: str = "body"  # or "headers"
    interval: float = 0.05  # seconds between two sends
    chunk: int = 1  # bytes per send
    stop: threading.Event = field(default_factory=threading.Event)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        drip = self.server.drip
        if drip.where == "headers":  # a status line, then a header that never ends
            head = b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 60_000
            self._drip(head, drip)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(SIZE))
        self.end_headers()
        self._drip(b"x" * SIZE, drip)

    def _drip(self, data: bytes, drip: Drip) -> None:
        deadline = time.monotonic() + 5  # the old client never hung up: end the test anyway
        for i in range(0, len(data), drip.chunk):
            if drip.stop.is_set() or time.monotonic() > deadline:
                break
            try:
                self.wfile.write(data[i : i + drip.chunk])
                self.wfile.flush()
            except OSError:  # the client hung up, as it should
                break
            time.sleep(drip.interval)
        self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins every handler
    drip: Drip


@contextlib.contextmanager
def _serving(scheme: str, wrap: Any = None) -> Iterator[Drip]:
    server = _Server(("127.0.0.1", 0), _Handler)
    if wrap is not None:
        server.socket = wrap(server.socket)
    server.drip = Drip(f"{scheme}://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    try:
        yield server.drip
    finally:
        server.drip.stop.set()
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def drip() -> Iterator[Drip]:
    with _serving("http") as served:
        yield served


@pytest.fixture
def tls_drip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Drip]:
    cert, key = loopback_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    _tls.cache_clear()  # the client's context is made once: make it trust this certificate
    try:
        with _serving("https", lambda sock: context.wrap_socket(sock, server_side=True)) as d:
            yield d
    finally:
        _tls.cache_clear()


def _timed(call: Any) -> tuple[DownloadTooSlowError, float]:
    started = time.monotonic()
    with pytest.raises(DownloadTooSlowError) as info:
        call()
    return info.value, time.monotonic() - started


def test_body_dripped_below_the_minimum_rate_is_stopped(drip: Drip, tmp_path: Path) -> None:
    limits = TransferLimits(idle=5, deadline=30, min_rate=200, grace=0.5)
    dest = tmp_path / "model.aoe"
    error, took = _timed(
        lambda: download(f"{drip.url}/model.aoe", dest, max_bytes=SIZE, limits=limits)
    )
    assert "below the minimum average rate of 200 bytes/s" in error.message
    assert error.code == "download-too-slow"
    assert took < 2.5


def test_headers_dripped_forever_are_stopped_at_the_deadline(drip: Drip) -> None:
    """No read loop of ours runs before the headers end: the socket itself must stop."""
    drip.where = "headers"
    store = HttpStore(drip.url, limits=TransferLimits(idle=5, deadline=1, min_rate=0))
    error, took = _timed(lambda: store.read(MANIFEST, max_bytes=1 << 20))
    assert "not finished within its deadline of 1 s" in error.message
    assert took < 2


def test_body_outlasting_the_deadline_is_stopped_and_kept_to_resume(
    drip: Drip, tmp_path: Path
) -> None:
    """Fast enough for the rate (2 kB/s), too slow for a 1 s deadline; the bytes stay."""
    drip.interval, drip.chunk = 0.01, 20
    limits = TransferLimits(idle=5, deadline=1, min_rate=200, grace=0.5)
    dest = tmp_path / "model.aoe"
    error, took = _timed(
        lambda: download(f"{drip.url}/model.aoe", dest, max_bytes=SIZE, limits=limits)
    )
    assert "not finished within its deadline of 1 s" in error.message
    assert took < 2
    assert 0 < dest.with_name("model.aoe.part").stat().st_size < SIZE
    assert not dest.exists()


@pytest.mark.parametrize(
    "command",
    [("client", "check"), ("manifest", "show"), ("manifest", "verify")],
    ids=" ".join,
)
def test_command_timeout_is_the_download_deadline(
    command: tuple[str, str], drip: Drip, signer: PrivateKey, tmp_path: Path
) -> None:
    """Devices and publishers read served repositories: each takes `--timeout`."""
    drip.where = "headers"
    root = new_root(1, [signer.public], 1)
    shipped = tmp_path / "root.json"
    shipped.write_bytes(envelope.sign(envelope.ROOT_TYPE, root.to_dict(), [signer]).to_bytes())
    extra = {
        ("client", "check"): [
            *("--tag", "tag_x", "--installed-version", "1.0.0", "--app-version", "1.0.0"),
            *("--device-id", "d", "--trusted-root", str(shipped)),
            *("--state", str(tmp_path / "state.json")),
        ],
        ("manifest", "show"): [],
        ("manifest", "verify"): ["--trusted-root", str(shipped)],
    }[command]
    args = [*command, "--repo", drip.url, "--timeout", "1", *extra, "--json"]
    started = time.monotonic()
    result = aoe(*args)
    assert time.monotonic() - started < 2
    assert result.exit_code == 1, result.output
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "download-too-slow"
    assert "not finished within its deadline of 1 s" in error["message"]


def test_tls_headers_dripped_forever_are_stopped_at_the_deadline(tls_drip: Drip) -> None:
    """Over TLS the reads go through the SSL socket, which the limits must reach too."""
    tls_drip.where = "headers"
    store = HttpStore(tls_drip.url, limits=TransferLimits(idle=5, deadline=1, min_rate=0))
    error, took = _timed(lambda: store.read(MANIFEST, max_bytes=1 << 20))
    assert "not finished within its deadline of 1 s" in error.message
    assert took < 2


def test_https_downloads_through_the_limited_sockets(tls_drip: Drip, tmp_path: Path) -> None:
    tls_drip.interval, tls_drip.chunk = 0, SIZE  # an honest server: all at once
    dest = tmp_path / "model.aoe"
    assert download(f"{tls_drip.url}/model.aoe", dest, max_bytes=SIZE) == SIZE
    assert dest.read_bytes() == b"x" * SIZE


def test_timeout_for_a_folder_repository_is_a_usage_error(tmp_path: Path) -> None:
    args = ["manifest", "show", "--repo", str(tmp_path), "--timeout", "5", "--json"]
    result = aoe(*args)
    assert result.exit_code == 2, result.output
    error = json.loads(result.stdout)["error"]
    assert (error["code"], error["message"]) == (
        "usage",
        "--timeout applies to http(s):// repositories",
    )


@pytest.fixture
def blackhole() -> Iterator[tuple[str, int]]:
    """An address whose connections hang: a listener with a full accept queue drops SYNs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = listener.getsockname()
    queued = []
    for _ in range(4):
        s = socket.socket()
        s.settimeout(0)  # non-blocking: the connection stays queued
        s.connect_ex(address)
        queued.append(s)
    time.sleep(0.1)
    probe = socket.socket()
    probe.settimeout(0.3)
    try:
        probe.connect(address)
    except TimeoutError:
        answered = False
    except ConnectionRefusedError:  # Windows refuses at once
        answered = True
    else:
        answered = True
    finally:
        probe.close()
    if answered:
        # Linux leaves a connection to a full accept queue unanswered, which is
        # the blackhole this test needs: there it must work, so fail loudly.
        # An OS that accepts or refuses such a connection leaves nothing to time.
        for s in [*queued, listener]:
            s.close()
        if sys.platform == "linux":
            pytest.fail("a full accept queue answered: no blackhole to connect to")
        pytest.skip("this OS answers a full accept queue: no blackhole to connect to")
    try:
        yield address
    finally:
        for s in [*queued, listener]:
            s.close()


def test_many_addresses_for_one_name_cannot_outlast_the_deadline(
    blackhole: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hostile DNS zone answers 8 addresses that never connect; each got the full wait."""
    real = socket.getaddrinfo

    def hostile_dns(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "models.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", blackhole)] * 8
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", hostile_dns)
    limits = TransferLimits(idle=1, deadline=1.5, min_rate=0)
    url = "http://models.example/manifest.json"
    error, took = _timed(lambda: fetch_bytes(url, max_bytes=1 << 20, limits=limits))
    assert "not finished within its deadline of 1.5 s" in error.message
    assert took < 2.5
