"""A real HTTP server for the device-client tests, with hostile behaviours on demand.

``http.server.SimpleHTTPRequestHandler`` ignores ``Range``, so this handler
serves files itself: a single ``bytes=N-`` range (206 + ``Content-Range``, 416
past the end), a strong ETag from size and mtime, ``Last-Modified``, and
``If-Range`` (a stale validator gets the whole file with 200, as RFC 9110 says),
conditional GETs (``If-None-Match``, ``If-Modified-Since``: 304) and, to a
request accepting gzip, a ``<file>.gz`` sibling as nginx's ``gzip_static`` does,
so the portable jobs (no nginx on macOS and Windows) exercise them too.

``http_server`` (function-scoped) serves a fresh ``tmp_path/"www"`` folder on
127.0.0.1 and returns an :class:`HttpServer`:

- ``.url`` (``http://127.0.0.1:PORT``, no trailing slash), ``.root``,
  ``.url_for(path)``;
- ``.requests``: every request as ``(method, path, Range header or None)``, the
  path relative to ``.root`` (no leading slash); ``.headers``: each one's
  request headers, in the same order;
- knobs, each for one path relative to ``.root``: ``endless(path)``,
  ``lying_length(path, n)``, ``cut_after(path, nbytes)`` (next GET only) and
  ``no_length(path)`` (the file without Content-Length, body ended by closing),
  ``redirect(path, location)`` (302), ``answer(path, status, headers, body)``
  (that response, as given, to every request for ``path``: what no honest
  server sends).
"""

from __future__ import annotations

import contextlib
import email.utils
import os
import re
import shutil
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import BinaryIO

import pytest

_BLOCK = os.urandom(64 * 1024)
_RANGE = re.compile(r"bytes=(\d+)-")


@dataclass
class HttpServer:
    """The running server as tests see it."""

    root: Path
    url: str
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    _endless: set[str] = field(default_factory=set)
    _lying: dict[str, int] = field(default_factory=dict)
    _cuts: dict[str, int] = field(default_factory=dict)
    _no_length: set[str] = field(default_factory=set)
    _redirects: dict[str, str] = field(default_factory=dict)
    _answers: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)

    def url_for(self, path: str) -> str:
        return f"{self.url}/{path.lstrip('/')}"

    def endless(self, path: str) -> None:
        """GET ``path`` streams random bytes forever, with no Content-Length."""
        self._endless.add(path.lstrip("/"))

    def lying_length(self, path: str, n: int) -> None:
        """GET ``path`` announces ``Content-Length: n`` but sends the file then endless bytes.

        The body is chunked (which overrides Content-Length, RFC 9112 §6.3), so
        a client that trusts the header instead of counting gets more than ``n``.
        """
        self._lying[path.lstrip("/")] = n

    def cut_after(self, path: str, nbytes: int) -> None:
        """The next GET of ``path`` closes the connection after ``nbytes`` of body."""
        self._cuts[path.lstrip("/")] = nbytes

    def no_length(self, path: str) -> None:
        """GET ``path`` sends the file without Content-Length; closing ends the body."""
        self._no_length.add(path.lstrip("/"))

    def redirect(self, path: str, location: str) -> None:
        """GET ``path`` answers 302 with ``Location: location`` (the file need not exist)."""
        self._redirects[path.lstrip("/")] = location

    def answer(self, path: str, status: int, headers: dict[str, str], body: bytes = b"") -> None:
        """Every request for ``path`` gets this status, these headers and this body, as given.

        Nothing is added but the status line, ``Server`` and ``Date``: no
        Content-Length unless given (then the body ends when the connection closes).
        """
        self._answers[path.lstrip("/")] = (status, headers, body)


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins every handler: nothing outlives the test
    state: HttpServer

    def handle_error(self, request: object, client_address: object) -> None:
        error = sys.exc_info()[1]
        if error is not None and not isinstance(error, ConnectionError | TimeoutError):
            self.state.errors.append(error)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # a client that stops reading cannot pin a server thread forever
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._serve(body=True)

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def _serve(self, *, body: bool) -> None:
        state = self.server.state
        rel = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
        state.requests.append((self.command, rel, self.headers.get("Range")))
        state.headers.append(dict(self.headers.items()))
        path = (state.root / rel).resolve()
        if rel in state._answers:
            status, headers, content = state._answers[rel]
            close = {} if "Content-Length" in headers else {"Connection": "close"}
            self._headers(status, {**headers, **close})
            if body and content:
                with contextlib.suppress(ConnectionError):
                    self.wfile.write(content)
        elif rel in state._redirects:
            self._headers(302, {"Location": state._redirects[rel], "Content-Length": "0"})
        elif rel in state._endless:
            self._headers(200, {"Connection": "close"})
            self._forever(b"", body=body, chunked=False)
        elif not path.is_relative_to(state.root.resolve()) or not path.is_file():
            self._headers(404, {"Content-Length": "0"})
        elif rel in state._lying:
            lie = {"Content-Length": str(state._lying[rel]), "Transfer-Encoding": "chunked"}
            self._headers(200, {**lie, "Connection": "close"})
            self._forever(path.read_bytes(), body=body, chunked=True)
        else:
            self._file(path, rel, body=body)

    def _file(self, path: Path, rel: str, *, body: bool) -> None:
        state = self.server.state
        headers: dict[str, str] = {}
        sibling = path.with_name(path.name + ".gz")
        gzip_ok = "gzip" in self.headers.get("Accept-Encoding", "")
        if gzip_ok and "Range" not in self.headers and sibling.is_file():
            path = sibling  # as nginx's gzip_static: the precompressed file, as it is
            headers = {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
        st = path.stat()
        size = st.st_size
        etag = f'"{size:x}-{st.st_mtime_ns:x}"'
        modified = email.utils.formatdate(st.st_mtime, usegmt=True)
        headers.update({"ETag": etag, "Last-Modified": modified, "Accept-Ranges": "bytes"})
        if self._unchanged(etag, int(st.st_mtime)):
            self._headers(304, {"ETag": etag, "Last-Modified": modified})
            return
        match = _RANGE.fullmatch(self.headers.get("Range", ""))
        if_range = self.headers.get("If-Range")
        start = int(match[1]) if match and if_range in (None, etag, modified) else 0
        if start and start >= size:
            self._headers(416, {"Content-Range": f"bytes */{size}", "Content-Length": "0"})
            return
        if start:
            headers["Content-Range"] = f"bytes {start}-{size - 1}/{size}"
        if rel in state._no_length:
            headers["Connection"] = "close"
        else:
            headers["Content-Length"] = str(size - start)
        self._headers(206 if start else 200, headers)
        limit = state._cuts.pop(rel, None) if body else None
        if not body:
            return
        with path.open("rb") as f:
            f.seek(start)
            with contextlib.suppress(ConnectionError):  # the client may hang up early
                shutil.copyfileobj(_Limited(f, limit), self.wfile)
        if limit is not None or rel in state._no_length:
            self.close_connection = True

    def _unchanged(self, etag: str, mtime: int) -> bool:
        """RFC 9110 §13.1.2-3: If-None-Match (weak comparison) first, else If-Modified-Since."""
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None:
            tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
            return etag in tags or "*" in tags
        since = self.headers.get("If-Modified-Since")
        try:
            return (
                since is not None and mtime <= email.utils.parsedate_to_datetime(since).timestamp()
            )
        except (TypeError, ValueError):
            return False

    def _headers(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if headers.get("Connection") == "close":
            self.close_connection = True

    def _forever(self, head: bytes, *, body: bool, chunked: bool) -> None:
        """Send ``head`` then random bytes until the client hangs up or the test ends."""
        block = head
        try:
            while body and not self.server.state.stopping.is_set():
                if block:
                    frame = b"%x\r\n%s\r\n" % (len(block), block) if chunked else block
                    self.wfile.write(frame)
                block = _BLOCK
        except (ConnectionError, TimeoutError):
            pass


class _Limited:
    """A file reader that reports end of file after ``limit`` bytes (None: no limit)."""

    def __init__(self, f: BinaryIO, limit: int | None) -> None:
        self._f, self._left = f, limit

    def read(self, n: int = -1) -> bytes:
        if self._left is not None:
            n = self._left if n < 0 else min(n, self._left)
        data = self._f.read(n)
        if self._left is not None:
            self._left -= len(data)
        return data


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[HttpServer]:
    """Serve ``tmp_path/"www"`` on a free port for one test; see the module docstring."""
    root = tmp_path / "www"
    root.mkdir()
    server = _Server(("127.0.0.1", 0), _Handler)
    state = HttpServer(root=root, url=f"http://127.0.0.1:{server.server_address[1]}")
    server.state = state
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    try:
        yield state
    finally:
        state.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join()
    assert not state.errors, f"the test HTTP server failed: {state.errors!r}"
