"""Helpers: a repository published by the project's publisher, the service running on it.

``Published`` publishes with :mod:`aoe_pack.publish.workflow` into any store
(a folder, S3 through moto, the folder nginx serves); releases are the
deterministic ones of tests/repository/_factories.py (the service never
downloads a bundle). :func:`running` starts the real service (uvicorn,
``aoe_pack.serve.run.prepare``) on a free loopback port in a thread, and
:class:`Running` talks to it over real HTTP.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aoe_pack._crypto.asymmetric import KeyKind, PrivateKey, generate
from aoe_pack.publish.workflow import DEFAULT_EXPIRES, edit_manifest, init_repository
from aoe_pack.repository.limits import DEFAULT_LIMITS
from aoe_pack.repository.model import Manifest, ModelReleases, Models, Release
from aoe_pack.serve.app import Handler
from aoe_pack.serve.run import ServeOptions, Service, prepare
from aoe_pack.storage.open import open_store
from aoe_pack.storage.store import ROOT, Store

sys.path.insert(0, str(Path(__file__).parents[1] / "repository"))
from _factories import release

__all__ = ["Published", "Running", "eventually", "release", "running"]


class Published:
    """A repository at ``url``, published and edited by the project's own publisher."""

    def __init__(self, url: str, key: PrivateKey | None = None) -> None:
        self.url = url
        self.key = key or generate(KeyKind.ED25519)
        self.store: Store = open_store(url)
        init_repository(self.store, root_keys=[self.key.public], threshold=1, sign_keys=[self.key])
        found = self.store.read(ROOT, max_bytes=DEFAULT_LIMITS.max_root_bytes)
        assert found is not None
        self.trusted_root = found.data

    def set(
        self,
        tag: str,
        *releases: Release,
        pin: str | None = None,
        expires: dt.timedelta = DEFAULT_EXPIRES,
    ) -> int:
        """Make ``tag``'s entry exactly ``releases`` (and ``pin``); the new manifest version."""

        def edit(m: Manifest) -> Models:
            return m.models.updated(tag, ModelReleases(releases=releases, pin=pin))

        return edit_manifest(
            self.store, edit, sign_keys=[self.key], expires=expires
        ).manifest.version

    def read(self, name: str) -> bytes:
        found = self.store.read(name, max_bytes=DEFAULT_LIMITS.max_manifest_bytes)
        assert found is not None, name
        return found.data

    def write(self, name: str, data: bytes) -> None:
        """Replace a document behind the publisher's back (an attacker, a broken mirror)."""
        found = self.store.read(name, max_bytes=DEFAULT_LIMITS.max_manifest_bytes)
        self.store.replace(name, data, expected=found.token if found else None)


@dataclass
class Running:
    """A service on loopback, spoken to over HTTP (one connection per request)."""

    service: Service

    @property
    def port(self) -> int:
        return self.service.address[1]

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        return response.status, json.loads(data)

    def decide(self, request: dict[str, Any] | bytes) -> tuple[int, Any]:
        body = request if isinstance(request, bytes) else json.dumps(request).encode()
        return self.request("POST", "/v1/decide", body, {"content-type": "application/json"})

    def health(self) -> tuple[int, Any]:
        return self.request("GET", "/healthz")


@contextmanager
def running(
    published_url: str,
    trusted_root: bytes,
    *,
    extra_routes: Mapping[tuple[str, str], Handler] | None = None,
    **options: Any,
) -> Iterator[Running]:
    """``aoe-pack serve`` on a free port, in a thread, for as long as the ``with`` lasts."""
    options.setdefault("poll_interval", 0.1)
    service = prepare(
        ServeOptions(repo=published_url, trusted_root=trusted_root, port=0, **options),
        extra_routes=extra_routes,
    )
    thread = threading.Thread(target=service.run, name="aoe-serve", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not service.started:
            assert thread.is_alive(), "the service ended before it started"
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.01)
        yield Running(service)
    finally:
        service.stop()
        thread.join(timeout=15)
        service.close()
        assert not thread.is_alive(), "the service did not stop"


def eventually(check: Callable[[], bool], *, timeout: float = 10.0) -> None:
    """Wait until ``check()`` holds (the service polls every 0.1 s in these tests)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
