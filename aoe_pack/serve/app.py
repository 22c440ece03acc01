"""The ASGI application: routes, request bodies within limits, JSON answers and errors.

A dozen lines of routing do not need a web framework: the application
speaks ASGI (the interface uvicorn serves) directly, which keeps the request
path short (the decision service's budget is a few hundred microseconds)
and its dependencies to the server alone.

Routes:

- ``GET /healthz``: :meth:`~aoe_pack.serve.view.RepositoryView.health`;
  ``200`` while a decision can be answered, ``503`` once the snapshot expired;
- ``POST /v1/decide``: :func:`~aoe_pack.serve.decision.answer`;
- whatever ``extra_routes`` adds (the AoE bridge): each a :data:`Handler`,
  given the snapshot of the moment, the request body (read within the same
  limits) and the path, or a :class:`Route`: a handler with its own body
  limit and its own shape of refusals (AoE's apps read ``{"code", "msg",
  "data"}``, not ours). A route's path ending in ``/*`` takes every path
  under it (``/aoe/zips/*``: downloads named by path). A handler may answer
  with a :class:`FileBody`, sent in chunks as the client takes them.

Every refusal is JSON, ``{"ok": false, "error": {"code", "type", "message"[, "hint"]}}``
as the command line's ``--json`` failures, with the project's error codes
(:mod:`aoe_pack.errors`), and touches nothing
but its own request: a malformed body, one too large (``413`` from its
``Content-Length`` alone, before it is read) or too slow (``408``: a client
that sends headers and stalls holds one connection, not the server).

The application also runs the poller: every ``poll_interval`` seconds the view
is refreshed in a worker thread, so the reads never block a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, BinaryIO

from aoe_pack.errors import (
    AoePackError,
    ExpiredMetadataError,
    ReleaseNotFoundError,
    RequestError,
    RequestTimeoutError,
    RequestTooLargeError,
    UnknownEndpointError,
)
from aoe_pack.serve.decision import answer
from aoe_pack.serve.reading import Snapshot
from aoe_pack.serve.request import parse_request
from aoe_pack.serve.view import RepositoryView

log = logging.getLogger("aoe_pack.serve")


@dataclass(frozen=True)
class FileBody:
    """A body sent from an open file, ``size`` bytes of it, a chunk at a time (a download
    the service should not hold in memory). The application closes ``file``."""

    file: BinaryIO
    size: int


Response = tuple[int, dict[str, str], bytes | FileBody]
"""Status, headers (lowercase names) and body."""
Handler = Callable[[Snapshot, bytes, str], Awaitable[Response]]
"""An extra route: ``await handler(snapshot, body, path)``. It is called only while the
snapshot is usable (not expired); an :class:`~aoe_pack.errors.AoePackError` it raises
becomes the JSON error answer."""
Refuse = Callable[[AoePackError, int], Response]
"""A route's answer to a refusal (the error, and the HTTP status the service gives it)."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

HEALTH = "/healthz"
DECIDE = "/v1/decide"
_JSON = {"content-type": "application/json", "cache-control": "no-store"}
_CHUNK = 256 * 1024


@dataclass(frozen=True)
class ServeLimits:
    """What one request may cost the service."""

    max_body_bytes: int = 64 * 1024
    """A decision request is a few hundred bytes."""
    body_timeout: float = 10.0
    """Seconds for a request's whole body to arrive once its headers have."""
    header_timeout: float = 10.0
    """Seconds for a request's line and headers to arrive, counted from when the connection
    is accepted or has sent its last response (:mod:`aoe_pack.serve.protocol`)."""


def json_response(status: int, document: Mapping[str, Any], **headers: str) -> Response:
    body = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
    return status, {**_JSON, **headers}, body


def status_for(error: AoePackError) -> int:
    """The HTTP status of a refusal."""
    statuses: tuple[tuple[type[AoePackError], int], ...] = (
        (RequestTooLargeError, 413),
        (RequestTimeoutError, 408),
        (UnknownEndpointError, 404),
        (RequestError, 400),
        (ReleaseNotFoundError, 404),
        (ExpiredMetadataError, 503),
    )
    return next((status for cls, status in statuses if isinstance(error, cls)), 500)


def error_response(error: AoePackError, status: int | None = None, **headers: str) -> Response:
    detail = {"code": error.code, "type": type(error).__name__, "message": error.message}
    if error.hint:
        detail["hint"] = error.hint
    return json_response(status or status_for(error), {"ok": False, "error": detail}, **headers)


def _refuse(error: AoePackError, status: int) -> Response:
    return error_response(error, status)


@dataclass(frozen=True)
class Route:
    """An added route on its own terms; a bare :data:`Handler` takes the service's."""

    handler: Handler
    max_body_bytes: int | None = None
    """The body's cap (413 above it); None: the service's ``max_body_bytes``."""
    refuse: Refuse = _refuse
    """How this route says no: to a body too large or too slow, an expired snapshot, an
    :class:`~aoe_pack.errors.AoePackError` of the handler, or a bug (500)."""


def _internal_error() -> AoePackError:
    return AoePackError("internal error in aoe-pack serve (a bug; see its log)")


class _DisconnectedError(Exception):
    """The client went away before its body arrived: there is no one to answer."""


class App:
    """The ASGI application (module docstring)."""

    def __init__(
        self,
        view: RepositoryView,
        *,
        repository: str,
        limits: ServeLimits = ServeLimits(),
        poll_interval: float | None = None,
        extra_routes: Mapping[tuple[str, str], Handler | Route] | None = None,
    ) -> None:
        self.view, self.repository, self.limits = view, repository, limits
        self.poll_interval = poll_interval
        self._routes: dict[tuple[str, str], Route] = {
            ("GET", HEALTH): Route(self._health),
            ("POST", DECIDE): Route(self._decide),
        }
        for key, added in (extra_routes or {}).items():
            if key in self._routes or key[1] == HEALTH:
                raise ValueError(f"{key[0]} {key[1]} is the service's own route")
            self._routes[key] = added if isinstance(added, Route) else Route(added)
        self._paths: dict[str, list[str]] = {}
        for method, path in self._routes:
            self._paths.setdefault(path, []).append(method)
        self._prefixes = sorted(
            {path[:-1] for _, path in self._routes if path.endswith("/*")}, key=len, reverse=True
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # the server is started without websockets
        try:
            status, headers, body = await self._handle(scope, receive)
        except _DisconnectedError:
            return
        except AoePackError as e:
            status, headers, body = error_response(e)
        except Exception:  # a bug answers 500 to its own request only
            log.exception("internal error", extra={"fields": {"path": scope.get("path")}})
            status, headers, body = error_response(_internal_error(), 500)
        if isinstance(body, FileBody):
            await self._send_file(status, headers, body, send)
            return
        fields = [(k.encode(), v.encode()) for k, v in headers.items()]
        if "content-length" not in headers:
            fields.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": fields})
        await send({"type": "http.response.body", "body": body})

    async def _send_file(
        self, status: int, headers: dict[str, str], body: FileBody, send: Send
    ) -> None:
        """``body``'s bytes in chunks, read in a worker thread; ``send`` waits while the
        client is slow to take them, so a download holds one chunk in memory."""
        try:
            fields = [(k.encode(), v.encode()) for k, v in headers.items()]
            fields.append((b"content-length", str(body.size).encode()))
            await send({"type": "http.response.start", "status": status, "headers": fields})
            left, more = body.size, True
            while more:
                chunk = await asyncio.to_thread(body.file.read, min(_CHUNK, left)) if left else b""
                left -= len(chunk)
                more = left > 0 and bool(chunk)  # a file that shrank ends short: uvicorn
                # then closes the connection rather than let the client take it whole
                await send({"type": "http.response.body", "body": chunk, "more_body": more})
        finally:
            body.file.close()

    def _route(self, path: str) -> str:
        """The route ``path`` falls under: itself, or the longest ``prefix/*`` above it."""
        if path in self._paths:
            return path
        return next((f"{p}*" for p in self._prefixes if path.startswith(p)), path)

    async def _handle(self, scope: Scope, receive: Receive) -> Response:
        method, path = scope["method"], scope["path"]
        key = self._route(path)
        route = self._routes.get((method, key))
        if route is None:
            allowed = self._paths.get(key)
            if allowed is None:
                return error_response(UnknownEndpointError(f"no endpoint {path}"), 404)
            return error_response(
                UnknownEndpointError(f"{path} takes {', '.join(allowed)}, not {method}"),
                405,
                allow=", ".join(allowed),
            )
        return await self._answer(route, scope, receive)

    async def _answer(self, route: Route, scope: Scope, receive: Receive) -> Response:
        path = scope["path"]
        try:
            body = await self._body(scope, receive, route.max_body_bytes)
        except (RequestTooLargeError, RequestTimeoutError) as e:
            # The rest of the body is never read: the connection cannot carry another request.
            status, headers, answer = route.refuse(e, status_for(e))
            return status, {**headers, "connection": "close"}, answer
        try:
            if path == HEALTH:  # health answers even when the snapshot has expired
                return await route.handler(self.view.snapshot, body, path)
            return await route.handler(self.view.usable(), body, path)
        except AoePackError as e:
            return route.refuse(e, status_for(e))
        except Exception:  # a bug answers 500 to its own request only
            log.exception("internal error", extra={"fields": {"path": path}})
            return route.refuse(_internal_error(), 500)

    async def _body(self, scope: Scope, receive: Receive, cap: int | None) -> bytes:
        cap = self.limits.max_body_bytes if cap is None else cap
        too_large = RequestTooLargeError(
            f"the body is larger than {cap} bytes", hint="a decision request is a JSON object"
        )
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > cap:
                raise too_large
        chunks, size = [], 0
        try:
            async with asyncio.timeout(self.limits.body_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise _DisconnectedError
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > cap:
                        raise too_large
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            raise RequestTimeoutError(
                f"the body did not arrive within {self.limits.body_timeout:g} s"
            ) from None

    async def _health(self, snapshot: Snapshot, body: bytes, path: str) -> Response:
        health = self.view.health()
        return json_response(503 if health["status"] == "failing" else 200, health)

    async def _decide(self, snapshot: Snapshot, body: bytes, path: str) -> Response:
        request = parse_request(body)
        now = self.view.now()
        return json_response(200, answer(snapshot, request, repository=self.repository, now=now))

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        async with self._polling():
            message = await receive()
            assert message["type"] == "lifespan.startup"
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
            assert message["type"] == "lifespan.shutdown"
        await send({"type": "lifespan.shutdown.complete"})

    @contextlib.asynccontextmanager
    async def _polling(self) -> AsyncIterator[None]:
        task = asyncio.create_task(self._poll()) if self.poll_interval else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _poll(self) -> None:
        assert self.poll_interval is not None
        while True:
            await asyncio.sleep(self.poll_interval)
            await asyncio.to_thread(self.view.refresh)
