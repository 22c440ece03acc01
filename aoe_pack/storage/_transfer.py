"""Time limits for one download: an idle timeout, a deadline and a minimum average rate.

An idle timeout alone bounds a server that stops, not one that drips: a byte
every 29 s never trips a 30 s timeout, so a hostile or broken server (or a
network attacker, on plain HTTP) could hold a device's update for as long as
it likes -- the "slow retrieval" attack of TUF. Two more limits close that:

- a **deadline** for the whole download, connection, TLS handshake and
  headers included;
- a **minimum average rate**: after a grace period (connection set-up, a busy
  server's first byte), the bytes received must keep up with ``min_rate``
  bytes per second on average since the start. A document or bundle of ``n``
  bytes, whose size bound the client knows, thus gets at most
  ``grace + n / min_rate`` seconds, and a drip fails early rather than at the
  deadline.

The limits act on every blocking socket call, not between our own reads:
http.client reads the status line and headers in loops of its own, which a
server can drip as well as a body. Each call may block only until the
nearest limit, and a timeout caused by a limit becomes
:class:`~aoe_pack.errors.DownloadTooSlowError` naming it. The limits of the
current download are kept per thread (:func:`limited`), the way the sockets
urllib creates deep inside its handlers can find them.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import math
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from aoe_pack.errors import DownloadTooSlowError, UsageError


@dataclass(frozen=True, kw_only=True)
class TransferLimits:
    """How long one download may take; the defaults suit a phone on a poor network.

    ``idle``: the longest wait for any byte (connecting included). ``deadline``:
    the whole download; an interrupted bundle resumes where it stopped on the
    next check, so a file too big for one deadline still arrives. ``min_rate``
    (bytes/s, 0 turns it off): the average since the start, once ``grace``
    seconds have passed; 1 KiB/s is far below any usable mobile link (GPRS
    carries ~5 kB/s) and a thousand times a byte-per-second drip.
    """

    idle: float = 30.0
    deadline: float = 600.0
    min_rate: float = 1024.0
    grace: float = 30.0

    def __post_init__(self) -> None:
        if not (self.idle > 0 and self.deadline > 0):  # also refuses NaN
            raise UsageError("download timeouts must be positive numbers of seconds")
        if not (self.min_rate >= 0 and self.grace >= 0):
            raise UsageError("the minimum download rate and its grace period cannot be negative")


DEFAULT_LIMITS = TransferLimits()


class _Clock:
    """The limits of one download, measured from its first request."""

    def __init__(self, url: str, limits: TransferLimits) -> None:
        self.url, self.limits = url, limits
        self.start = time.monotonic()
        self.received = 0
        self._bound: Callable[[], DownloadTooSlowError] | None = None

    def wait(self) -> float:
        """How long the next socket call may block; raises once a limit has passed."""
        elapsed = time.monotonic() - self.start
        deadline_left = self.limits.deadline - elapsed
        rate_left = math.inf
        if self.limits.min_rate:
            rate_left = self.limits.grace + self.received / self.limits.min_rate - elapsed
        if deadline_left <= 0:
            raise self._deadline()
        if rate_left <= 0:
            raise self._too_slow()
        wait, self._bound = self.limits.idle, None
        if deadline_left < wait:
            wait, self._bound = deadline_left, self._deadline
        if rate_left < wait:
            wait, self._bound = rate_left, self._too_slow
        return wait

    def timed_out(self) -> None:
        """A socket call timed out: raise the limit's error if a limit, not idleness, was why."""
        if self._bound is not None:
            raise self._bound()

    def _deadline(self) -> DownloadTooSlowError:
        return DownloadTooSlowError(
            f"{self.url}: not finished within its deadline of {self.limits.deadline:g} s "
            f"({self.received} bytes received); stopped",
            hint="a slow or stalled server or network; a larger --timeout allows more time",
        )

    def _too_slow(self) -> DownloadTooSlowError:
        elapsed = time.monotonic() - self.start
        return DownloadTooSlowError(
            f"{self.url}: {self.received} bytes in {elapsed:.1f} s is below the minimum "
            f"average rate of {self.limits.min_rate:g} bytes/s; stopped",
            hint="a server or network this slow cannot deliver the file in reasonable time",
        )


_ACTIVE = threading.local()


@contextlib.contextmanager
def limited(url: str, limits: TransferLimits) -> Iterator[None]:
    """Apply ``limits`` to every socket this thread uses for one download of ``url``."""
    outer = getattr(_ACTIVE, "clock", None)
    _ACTIVE.clock = _Clock(url, limits)
    try:
        yield
    finally:
        _ACTIVE.clock = outer


def _clock() -> _Clock | None:
    clock: _Clock | None = getattr(_ACTIVE, "clock", None)
    return clock


def _timed(sock: socket.socket, call: Callable[[], int]) -> int:
    clock = _clock()
    if clock is None:
        return call()
    sock.settimeout(clock.wait())
    try:
        n = call()
    except TimeoutError:
        clock.timed_out()
        raise
    clock.received += n
    return n


class _Socket(socket.socket):
    """A TCP socket whose every read waits only until the nearest limit."""

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        return _timed(self, lambda: super(_Socket, self).recv_into(buffer, nbytes, flags))


class _SSLSocket(ssl.SSLSocket):
    """The same for TLS; the handshake is bounded by the timeout set when connecting."""

    def recv_into(self, buffer: Any, nbytes: int | None = None, flags: int = 0) -> int:
        return _timed(self, lambda: super(_SSLSocket, self).recv_into(buffer, nbytes, flags))


def _connect(
    address: tuple[str, int],
    timeout: Any = None,  # seconds, None, or socket's default-timeout sentinel
    source_address: tuple[str, int] | None = None,
    **kwargs: Any,
) -> socket.socket:
    clock = _clock()
    if clock is None:
        raw = socket.create_connection(address, timeout, source_address, **kwargs)
        wait = raw.gettimeout()
        sock = _Socket(raw.family, raw.type, raw.proto, fileno=raw.detach())
        sock.settimeout(wait)
        return sock
    return _connect_within(clock, address, source_address)


def _connect_within(
    clock: _Clock, address: tuple[str, int], source_address: tuple[str, int] | None
) -> socket.socket:
    """``socket.create_connection``, each address given only what the limits leave.

    create_connection gives every address the name resolves to the full wait,
    so a hostile DNS answer of many unreachable addresses multiplies it past
    the deadline: here the wait is recomputed before each try. The name lookup
    itself is not bounded: getaddrinfo blocks in the C library and cannot be
    interrupted portably, so it takes what the system resolver's own timeouts
    allow, and the limits count it only once it returns.
    """
    host, port = address
    last: OSError | None = None
    for family, kind, proto, _, sockaddr in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
        sock = _Socket(family, kind, proto)
        try:
            sock.settimeout(clock.wait())  # raises once a limit has passed
            if source_address is not None:
                sock.bind(source_address)
            sock.connect(sockaddr)
        except TimeoutError as e:
            last = e
            sock.close()
            clock.timed_out()  # raises if a limit, not idleness, ended this try
        except OSError as e:  # refused, unreachable: the next address may answer
            last = e
            sock.close()
        except BaseException:
            sock.close()
            raise
        else:
            return sock
    raise last if last is not None else OSError(f"{host}: the name resolves to no address")


class _HTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _connect


class _HTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _connect

    def connect(self) -> None:
        try:
            super().connect()
        except TimeoutError:  # the TLS handshake, bounded by the timeout _connect set
            clock = _clock()
            if clock is not None:
                clock.timed_out()
            raise


@functools.cache
def _tls() -> ssl.SSLContext:
    """urllib's default verification, with sockets that honour the limits (made when first used)."""
    context = ssl.create_default_context()
    context.sslsocket_class = _SSLSocket
    return context


class HTTPHandler(urllib.request.HTTPHandler):
    """urllib's handler, over sockets that honour the limits of :func:`limited`."""

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_HTTPConnection, req)


class HTTPSHandler(urllib.request.HTTPSHandler):
    """urllib's handler, over TLS sockets that honour the limits of :func:`limited`."""

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_HTTPSConnection, req, context=_tls())
