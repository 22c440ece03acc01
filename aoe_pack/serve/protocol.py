"""uvicorn's HTTP/1.1 protocol (h11) with a deadline for a request's headers.

uvicorn times out neither a request line nor headers that never end
(uvicorn issue #157): a client that connects and sends nothing, or half its
headers, holds its connection and a file descriptor until it goes away. Here
a connection that is waiting for a request's headers, fresh or kept alive
after a response, has ``header_timeout`` seconds to finish them; after that
it is answered ``408 request-timeout`` with the service's JSON error and
``Connection: close``, and closed. The deadline is counted from when the
connection starts waiting (accepted, or its last response sent), not reset
by each byte, so a client trickling a byte at a time is cut off all the same.

What this takes from uvicorn beyond its public ``Config(http=<class>)``, all of
it in ``uvicorn.protocols.http.h11_impl.H11Protocol`` (tests/serve/
test_header_deadline.py checks that it is still there):

- ``connection_made`` / ``connection_lost``, the asyncio protocol's own;
- ``handle_events()``, which uvicorn calls after every ``data_received`` and
  after a response, once h11 has been fed: the one place where the
  connection's state is settled;
- ``conn`` (the ``h11.Connection``), ``transport`` and ``loop``.

Whether the connection waits for headers is read from h11's public state: the
client's side is ``IDLE`` until a whole request line and its headers have
arrived (h11 yields a ``Request`` event then), and again once
``start_next_cycle()`` has readied the connection for the next request.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from aoe_pack.errors import RequestTimeoutError
from aoe_pack.serve.app import error_response


def header_timeout_error(seconds: float) -> RequestTimeoutError:
    return RequestTimeoutError(f"the request's headers did not arrive within {seconds:g} s")


class HeaderDeadlineProtocol(H11Protocol):
    """:class:`H11Protocol` that answers ``408`` to headers not finished in time."""

    header_timeout: float = 10.0
    """Seconds; :func:`with_header_timeout` makes a subclass with another."""

    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_deadline()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        self._watch_headers()

    def _watch_headers(self) -> None:
        """Arm the deadline when the connection waits for headers; stop it once they end."""
        if self.conn.their_state is not h11.IDLE or self.transport.is_closing():
            self._stop_header_deadline()
        elif self._header_deadline is None:
            self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_late)

    def _stop_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_late(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.conn.our_state is not h11.IDLE:  # not ours to answer (h11 would refuse)
            self.transport.close()
            return
        status, headers, body = error_response(
            header_timeout_error(self.header_timeout), connection="close"
        )
        assert isinstance(body, bytes)  # a JSON document, never a file
        response = h11.Response(
            status_code=status,
            reason=b"Request Timeout",
            headers=[*headers.items(), ("content-length", str(len(body)))],
        )
        for event in (response, h11.Data(data=body), h11.EndOfMessage()):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.close()


def with_header_timeout(seconds: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class to pass uvicorn (``Config(http=...)``), with its deadline."""
    return type("HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout": seconds})
