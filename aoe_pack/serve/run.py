"""The service on uvicorn: bind, serve, poll, stop.

uvicorn is a maintained ASGI server (encode), small (h11 is its one required
dependency), and what ASGI applications are commonly deployed on, alone or
behind a process manager; with ``uvloop`` or ``httptools`` installed it picks
them up. It is imported here only, when the service starts: ``aoe-pack
verify`` and ``client check`` never load it (the ``[serve]`` extra).

The listening socket is bound (and listens) before uvicorn starts, so the
port is known (``--port 0`` asks the system for a free one) and logged in the
``listening`` line, a client may connect from then on, and an address in use
is a clear error instead of a log line.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aoe_pack.errors import ServeError
from aoe_pack.serve.app import App, Handler, ServeLimits
from aoe_pack.serve.view import RepositoryView
from aoe_pack.storage.open import open_store

log = logging.getLogger("aoe_pack.serve")


@dataclass(frozen=True, kw_only=True)
class ServeOptions:
    """What ``aoe-pack serve`` takes (its options, one for one)."""

    repo: str
    trusted_root: bytes
    host: str = "127.0.0.1"
    port: int = 8080
    poll_interval: float = 30.0
    min_manifest_version: int | None = None
    plain_http: bool | None = None
    timeout: float | None = None
    limits: ServeLimits = field(default_factory=ServeLimits)


def _uvicorn() -> Any:
    try:
        import uvicorn
    except ImportError as e:
        raise ServeError(
            "aoe-pack serve needs uvicorn, which is not installed",
            hint="pip install 'aoe-pack[serve]'",
        ) from e
    return uvicorn


def _bind(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as e:
        raise ServeError(f"cannot listen on {host}:{port}: {e}") from e
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)  # uvicorn's backlog: connections wait there until it accepts them
    except OSError as e:
        sock.close()
        raise ServeError(
            f"cannot listen on {host}:{port}: {e.strerror or e}",
            hint="another process holds the port; choose another --port (0: any free one)",
        ) from e
    return sock


class Service:
    """A verified repository view behind a bound socket, ready to :meth:`run`."""

    def __init__(self, view: RepositoryView, app: App, sock: socket.socket, server: Any) -> None:
        self.view, self.app, self._sock, self._server = view, app, sock, server

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    @property
    def started(self) -> bool:
        return bool(self._server.started)

    def run(self) -> None:
        """Serve until :meth:`stop` (or SIGINT/SIGTERM, in the main thread)."""
        self._server.run(sockets=[self._sock])

    def stop(self) -> None:
        """Ask the server to finish its requests and return from :meth:`run`."""
        self._server.should_exit = True

    def close(self) -> None:
        self._sock.close()
        self.view.close()


def prepare(
    options: ServeOptions, *, extra_routes: Mapping[tuple[str, str], Handler] | None = None
) -> Service:
    """Verify the repository, bind the socket and set uvicorn up; nothing is served yet.

    Raises what the first read of the repository raises (a wrong root, a
    manifest that does not verify or has expired): a service that starts
    answers from a verified repository, or does not start.
    """
    uvicorn = _uvicorn()
    store = open_store(options.repo, plain_http=options.plain_http, timeout=options.timeout)
    try:
        view = RepositoryView(store, options.trusted_root, minimum=options.min_manifest_version)
    except BaseException:
        store.close()
        raise
    app = App(
        view,
        repository=options.repo,
        limits=options.limits,
        poll_interval=options.poll_interval,
        extra_routes=extra_routes,
    )
    try:
        sock = _bind(options.host, options.port)
    except ServeError:
        view.close()
        raise
    config = uvicorn.Config(
        app,
        lifespan="on",
        log_config=None,  # logs.configure decides where uvicorn's records go
        access_log=False,  # a line per decision would cost more than the decision
        server_header=False,
        ws="none",
        timeout_keep_alive=5,
        timeout_graceful_shutdown=10,
    )
    return Service(view, app, sock, uvicorn.Server(config))


def serve(
    options: ServeOptions, *, extra_routes: Mapping[tuple[str, str], Handler] | None = None
) -> None:
    """Run the service until interrupted (``aoe-pack serve``)."""
    service = prepare(options, extra_routes=extra_routes)
    host, port = service.address
    shown = f"[{host}]" if ":" in host else host
    log.info(
        "listening",
        extra={
            "fields": {
                "url": f"http://{shown}:{port}",
                "port": port,
                "pollInterval": options.poll_interval,
            }
        },
    )
    try:
        service.run()
    finally:  # after stop(); on SIGINT/SIGTERM uvicorn re-raises the signal to end the process
        service.close()
