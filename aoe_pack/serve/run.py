"""The service on uvicorn: bind, serve, poll, stop.

uvicorn is a maintained ASGI server (encode), small (h11 is its one required
dependency), and what ASGI applications are commonly deployed on, alone or
behind a process manager; with ``uvloop`` installed it picks it up. Its HTTP
is always h11's, with a deadline for a request's headers that uvicorn lacks
(:mod:`aoe_pack.serve.protocol`), so ``httptools`` is not used even when
installed. It is imported here only, when the service starts: ``aoe-pack
verify`` and ``client check`` never load it (the ``[serve]`` extra).

The listening socket is bound (and listens) before uvicorn starts, so the
port is known (``--port 0`` asks the system for a free one) and logged in the
``listening`` line, a client may connect from then on, and an address in use
is a clear error instead of a log line.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aoe_pack.errors import ServeError
from aoe_pack.serve.app import App, Handler, Route, ServeLimits
from aoe_pack.serve.view import RepositoryView
from aoe_pack.storage.open import open_store

if TYPE_CHECKING:
    # The bridge (and the client code it downloads bundles with) loads only when it is on.
    from aoe_pack.serve.aoe_routes import AoeOptions

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
    aoe: AoeOptions | None = None
    """The AoE bridge (``--aoe-*``); None: off, and ``/upgradeModel`` is a 404."""


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

    def __init__(
        self,
        view: RepositoryView,
        app: App,
        sock: socket.socket,
        server: Any,
        *,
        on_close: tuple[Callable[[], None], ...] = (),
    ) -> None:
        self.view, self.app, self._sock, self._server = view, app, sock, server
        self._on_close = on_close

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
        try:
            self._sock.close()
            self.view.close()
        finally:
            for close in self._on_close:
                close()


def prepare(
    options: ServeOptions,
    *,
    extra_routes: Mapping[tuple[str, str], Handler | Route] | None = None,
) -> Service:
    """Verify the repository, bind the socket and set uvicorn up; nothing is served yet.

    Raises what the first read of the repository raises (a wrong root, a
    manifest that does not verify or has expired): a service that starts
    answers from a verified repository, or does not start. With
    ``options.aoe``, the AoE bridge's routes are added
    (:class:`~aoe_pack.serve.aoe_routes.AoeRoutes`).
    """
    uvicorn = _uvicorn()
    if options.aoe is not None and options.aoe.public_url is None:
        from aoe_pack.serve.aoe_routes import default_public_url

        default_public_url(options.host, options.port)  # refused before the repository is read
    store = open_store(options.repo, plain_http=options.plain_http, timeout=options.timeout)
    try:
        view = RepositoryView(store, options.trusted_root, minimum=options.min_manifest_version)
    except BaseException:
        store.close()
        raise
    try:
        sock = _bind(options.host, options.port)
    except ServeError:
        view.close()
        raise
    routes = dict(extra_routes or {})
    on_close: tuple[Callable[[], None], ...] = ()
    if options.aoe is not None:
        from aoe_pack.serve.aoe_routes import AoeRoutes

        try:
            port = int(sock.getsockname()[1])  # the one the system chose for --port 0
            aoe = AoeRoutes.open(options.aoe, store, host=options.host, port=port)
        except BaseException:
            sock.close()
            view.close()
            raise
        routes.update(aoe.routes())
        on_close = (aoe.close,)
    try:
        app = App(
            view,
            repository=options.repo,
            limits=options.limits,
            poll_interval=options.poll_interval,
            extra_routes=routes,
        )
    except BaseException:
        sock.close()
        view.close()
        for close in on_close:
            close()
        raise
    from aoe_pack.serve.protocol import with_header_timeout  # imports uvicorn

    config = uvicorn.Config(
        app,
        http=with_header_timeout(options.limits.header_timeout),
        lifespan="on",
        log_config=None,  # logs.configure decides where uvicorn's records go
        access_log=False,  # a line per decision would cost more than the decision
        server_header=False,
        ws="none",
        timeout_keep_alive=5,
        timeout_graceful_shutdown=10,
    )
    return Service(view, app, sock, uvicorn.Server(config), on_close=on_close)


class _TerminatedError(BaseException):
    """SIGTERM, raised once uvicorn has finished the requests in flight (below)."""


def _terminated(signum: int, frame: Any) -> None:
    raise _TerminatedError


def serve(
    options: ServeOptions,
    *,
    extra_routes: Mapping[tuple[str, str], Handler | Route] | None = None,
) -> None:
    """Run the service until interrupted (``aoe-pack serve``).

    uvicorn stops on SIGINT or SIGTERM, then raises the signal again for the
    handler that was there before it. Python's default for SIGTERM ends the
    process at once, which would leave the AoE bridge's temporary zips on disk:
    here SIGTERM unwinds, the service closes, and the process then ends by
    SIGTERM all the same.
    """
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
    main = threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGTERM, _terminated) if main else None
    terminated = False
    try:
        service.run()
    except _TerminatedError:
        terminated = True
    finally:  # after stop(); on SIGINT uvicorn re-raises it: KeyboardInterrupt
        service.close()
        if before is not None:
            signal.signal(signal.SIGTERM, before)
    if terminated:
        signal.raise_signal(signal.SIGTERM)
