"""A request's headers have a deadline (aoe_pack/serve/protocol.py): slowloris gets a 408.

With the real service on loopback and a deadline of 0.5 s: a client that
sends half a request, or nothing, or finishes one request on a kept-alive
connection then half of the next, is answered ``408 request-timeout`` with
the service's JSON error and ``Connection: close``, then closed; meanwhile
other clients are answered as usual. The last test fails when uvicorn's
H11Protocol no longer has what the deadline hooks into.
"""

from __future__ import annotations

import inspect
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h11
import pytest
from _serve import Published, Running, release, running

from aoe_pack.serve.app import ServeLimits

DEADLINE = 0.5
MARGIN = 1.5  # a loaded CI machine's scheduling; the deadline itself is asserted from below
EXPECTED = {
    "ok": False,
    "error": {
        "code": "request-timeout",
        "type": "RequestTimeoutError",
        "message": "the request's headers did not arrive within 0.5 s",
    },
}
GOOD = {"tag": "tag_a", "installedVersion": "0.9.0", "appVersion": "3.0.0", "deviceId": "d-1"}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    p = Published(str(tmp_path_factory.mktemp("header-deadline") / "repo"))
    p.set("tag_a", release("1.0.0"))
    limits = ServeLimits(header_timeout=DEADLINE, body_timeout=DEADLINE)
    with running(p.url, p.trusted_root, limits=limits) as s:
        yield s


def _connect(service: Running) -> socket.socket:
    return socket.create_connection(("127.0.0.1", service.port), timeout=DEADLINE + MARGIN + 5)


def _until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def _parse(data: bytes) -> tuple[int, dict[str, str], Any, bytes]:
    """Status, headers and JSON body of the first response in ``data``; what follows it."""
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v for k, _, v in (ln.partition(": ") for ln in lines[1:])}
    length = int(headers["content-length"])
    return int(lines[0].split()[1]), headers, json.loads(rest[:length]), rest[length:]


def _timed_out(sock: socket.socket, since: float) -> None:
    """``sock`` gets exactly the 408 and is closed, within the deadline and its margin."""
    data = _until_closed(sock)
    elapsed = time.monotonic() - since
    status, headers, doc, rest = _parse(data)
    assert (status, doc, rest) == (408, EXPECTED, b"")
    assert headers["connection"] == "close"
    assert headers["content-type"] == "application/json"
    assert data.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert DEADLINE * 0.9 <= elapsed <= DEADLINE + MARGIN, elapsed


def test_half_a_request_line_and_headers_gets_408_and_is_closed(service: Running) -> None:
    with _connect(service) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /v1/decide HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
        _timed_out(sock, started)


def test_a_client_trickling_its_headers_is_cut_off_at_the_deadline(service: Running) -> None:
    with _connect(service) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        for i in range(3):  # each byte in time, the whole too late
            time.sleep(DEADLINE / 3)
            sock.sendall(b"X-%d: y\r\n" % i)
        _timed_out(sock, started)


def test_a_client_that_sends_nothing_gets_408_and_is_closed(service: Running) -> None:
    with _connect(service) as sock:
        _timed_out(sock, time.monotonic())


def test_a_kept_alive_connections_half_second_request_gets_408(service: Running) -> None:
    body = json.dumps(GOOD).encode()
    with _connect(service) as sock:
        sock.sendall(
            b"POST /v1/decide HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        data = _one_response(sock)
        status, headers, doc, rest = _parse(data)
        assert (status, doc["ok"], rest) == (200, True, b"")
        assert headers.get("connection") != "close"
        time.sleep(DEADLINE * 0.6)  # the deadline counts from the response, not from the bytes
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHo")
        _timed_out(sock, time.monotonic() - DEADLINE * 0.6)


def _one_response(sock: socket.socket) -> bytes:
    """Read one response (its headers, then its ``Content-Length`` of body), leaving the rest."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, data
        body += chunk
    return head + b"\r\n\r\n" + body


def test_requests_are_answered_while_stalled_clients_wait(tmp_path: Path) -> None:
    # A deadline long enough that the stalled clients are still waiting at the end.
    p = Published(str(tmp_path / "repo"))
    p.set("tag_a", release("1.0.0"))
    limits = ServeLimits(header_timeout=30)
    with running(p.url, p.trusted_root, limits=limits) as service:
        stalled = [_connect(service) for _ in range(20)]
        try:
            for i, sock in enumerate(stalled):
                if i % 2:
                    sock.sendall(b"POST /v1/decide HTTP/1.1\r\nHost: x\r\n")
            for _ in range(20):
                status, doc = service.decide(GOOD)
                assert (status, doc["ok"]) == (200, True)
                assert service.health()[0] == 200
            for sock in stalled:  # still open, unanswered: they held up no one
                sock.settimeout(0)  # what is there now
                with pytest.raises(BlockingIOError):
                    sock.recv(1)
        finally:
            for sock in stalled:
                sock.close()


def test_uvicorns_h11_protocol_still_has_what_the_deadline_hooks_into() -> None:
    """aoe_pack/serve/protocol.py overrides or reads these; a uvicorn without them breaks it."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    from aoe_pack.serve.protocol import HeaderDeadlineProtocol, with_header_timeout

    for name in ("connection_made", "connection_lost", "handle_events"):
        assert name in vars(H11Protocol), name
    assert list(inspect.signature(H11Protocol.handle_events).parameters) == ["self"]
    source = inspect.getsource(H11Protocol)
    for used in ("self.conn = h11.Connection(", "self.transport = transport", "self.loop = "):
        assert used in source, used
    # handle_events runs after every byte received and after every response
    assert "self.handle_events()" in inspect.getsource(H11Protocol.data_received)
    assert "self.handle_events()" in inspect.getsource(H11Protocol.on_response_complete)
    assert h11.IDLE is not h11.SEND_BODY
    assert with_header_timeout(2.5).header_timeout == 2.5
    assert issubclass(with_header_timeout(1), HeaderDeadlineProtocol)
