"""The AoE bridge over HTTP: ``POST /upgradeModel`` and ``GET /aoe/zips/<name>``.

:class:`AoeRoutes` puts an :class:`~aoe_pack.serve.aoe_bridge.AoeBridge`
behind the service's application as two :class:`~aoe_pack.serve.app.Route`:

- ``POST /upgradeModel`` answers from the snapshot of the moment (its
  manifests, verified as a device verifies them, and the root that verified
  them) and the store the service reads. The bridge blocks (its first answer
  for a release downloads the bundle and builds the zip), so it runs in a pool
  of its own threads: the event loop, and the poller's refreshes, never wait
  for it. Every refusal of the route, the service's own too (a body over the
  bridge's 16 KiB, one too slow, an expired snapshot), is in AoE's shape,
  ``{"code": <status>, "msg", "data": null}``.
- ``GET /aoe/zips/<sha256>.zip`` sends a zip the bridge built, from the file,
  a chunk at a time; any other name is a ``404`` (``unknown-endpoint``).

The bridge is off unless ``aoe-pack serve`` is given ``--aoe-model``
(:class:`AoeOptions`); docs/aoe-bridge.md says what it costs the devices.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from aoe_pack.errors import AoePackError, UnknownEndpointError, UsageError
from aoe_pack.keys.load import DecryptionKey
from aoe_pack.repository.model import Manifest
from aoe_pack.serve.aoe_bridge import AoeBridge, AoeMapping
from aoe_pack.serve.app import FileBody, Response, Route, json_response
from aoe_pack.serve.reading import Snapshot
from aoe_pack.storage.store import Store

log = logging.getLogger("aoe_pack.serve")

UPGRADE = "/upgradeModel"
"""Where AoE's SDK posts (the path of ``server.config``'s ``upgradeUrl``)."""
ZIPS = "/aoe/zips"
"""Where the zips are served, by name; ``modelUrl`` is the public URL of it."""
WORKERS = 8
"""Threads answering ``/upgradeModel`` at once; more requests wait their turn, on the loop."""


@dataclass(frozen=True, kw_only=True)
class AoeOptions:
    """The bridge's options of ``aoe-pack serve``, one for one."""

    mapping: AoeMapping
    """``--aoe-model``: AoE's (appId, modelId) pairs and their tags."""
    decryption_key: DecryptionKey | None = None
    """``--aoe-decryption-key``: without it, encrypted bundles are refused (502)."""
    public_url: str | None = None
    """``--aoe-public-url``: ``modelUrl``'s base; None: ``http://HOST:PORT/aoe/zips``."""
    zip_dir: Path | None = None
    """``--aoe-zip-dir``: None: a temporary folder, removed when the service stops."""


def default_public_url(host: str, port: int) -> str:
    """``http://HOST:PORT/aoe/zips``: the zips' URL for apps that reach the service at
    ``host``; a :class:`UsageError` for a wildcard host, which no app can reach."""
    try:
        wildcard = host == "" or ipaddress.ip_address(host).is_unspecified
    except ValueError:  # a name
        wildcard = False
    if wildcard:
        given = host or "''"
        raise UsageError(
            f"--host {given} listens on every address, so the AoE zips' URL "
            "cannot be derived from it",
            hint="give --aoe-public-url, the URL at which the apps reach this server's "
            f"{ZIPS} (e.g. https://models.example.com{ZIPS})",
        )
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{ZIPS}"


def aoe_refusal(error: AoePackError, status: int) -> Response:
    """A refusal as AoE's SDK reads one: a non-zero ``code`` (the HTTP status) and no data."""
    return json_response(status, {"code": status, "msg": error.message, "data": None})


def manifest_for(snapshot: Snapshot, tag: str) -> Manifest:
    """What a device of ``tag`` reads in ``snapshot``: the tag's manifest, or, for a tag
    the repository does not list, an empty one at the snapshot's version (the decision
    then says "the manifest has no model", as it does for a device)."""
    found = snapshot.manifests.get(tag)
    return (
        found if found is not None else Manifest(version=snapshot.version, expires=snapshot.expires)
    )


class AoeRoutes:
    """The bridge's routes, its worker threads and its zip folder (module docstring)."""

    def __init__(self, bridge: AoeBridge, store: Store, *, owned_zip_dir: bool = False) -> None:
        """``store``: the one the service's view reads (the snapshot's bundles are
        there). ``owned_zip_dir``: :meth:`close` removes the bridge's ``zip_dir``."""
        self.bridge, self.store = bridge, store
        self._owned = owned_zip_dir
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="aoe-bridge")

    @classmethod
    def open(cls, options: AoeOptions, store: Store, *, host: str, port: int) -> AoeRoutes:
        """The bridge of ``options``, for a service listening on ``host``:``port``."""
        public_url = options.public_url or default_public_url(host, port)
        if options.zip_dir is None:
            zip_dir, owned = Path(tempfile.mkdtemp(prefix="aoe-pack-aoe-zips-")), True
        else:
            zip_dir, owned = options.zip_dir, False
            try:
                zip_dir.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise UsageError(f"--aoe-zip-dir {zip_dir}: {e.strerror or e}") from e
        try:
            bridge = AoeBridge(
                options.mapping,
                zip_dir=zip_dir,
                public_base_url=public_url,
                decryption_key=options.decryption_key,
            )
        except BaseException:
            if owned:
                shutil.rmtree(zip_dir, ignore_errors=True)
            raise
        log.warning(
            "aoe-bridge",
            extra={
                "fields": {
                    "models": [
                        f"{m.app_id}:{m.model_id}={m.tag}@{m.model_dir}"
                        for m in options.mapping.models.values()
                    ],
                    "publicUrl": bridge.public_base_url,
                    "zipDir": str(zip_dir),
                    "decryptionKey": options.decryption_key is not None,
                    "note": "AoE apps get AoE's guarantees only: an MD5 from this server, "
                    "nothing signed (docs/aoe-bridge.md)",
                }
            },
        )
        return cls(bridge, store, owned_zip_dir=owned)

    def routes(self) -> dict[tuple[str, str], Route]:
        return {
            ("POST", UPGRADE): Route(
                self.upgrade, max_body_bytes=self.bridge.limits.max_body_bytes, refuse=aoe_refusal
            ),
            ("GET", f"{ZIPS}/*"): Route(self.download),
        }

    async def upgrade(self, snapshot: Snapshot, body: bytes, path: str) -> Response:
        """``POST /upgradeModel``: :meth:`AoeBridge.answer_with` in the bridge's threads."""
        answer = functools.partial(
            self.bridge.answer_with,
            functools.partial(manifest_for, snapshot),
            self.store,
            body,
            root=snapshot.root,
        )
        status, doc = await asyncio.get_running_loop().run_in_executor(self._pool, answer)
        return json_response(status, doc)

    async def download(self, snapshot: Snapshot, body: bytes, path: str) -> Response:
        """``GET /aoe/zips/<name>``: the zip, sent from its file."""
        name = path.removeprefix(f"{ZIPS}/")
        found = self.bridge.zip_path(name)
        try:
            if found is None:
                raise FileNotFoundError(name)  # noqa: TRY301 - one 404 for both
            file = await asyncio.to_thread(found.open, "rb")
        except FileNotFoundError:
            raise UnknownEndpointError(
                f"no AoE zip {name!r} here",
                hint="modelUrl names a zip of this bridge's --aoe-zip-dir; "
                "ask /upgradeModel again for the current one",
            ) from None
        size = os.fstat(file.fileno()).st_size
        headers = {
            "content-type": "application/zip",
            # named by its SHA-256: the same name is always the same bytes
            "cache-control": "public, max-age=31536000, immutable",
        }
        return 200, headers, FileBody(file, size)

    def close(self) -> None:
        """Stop taking work (an answer being built finishes in its thread) and remove the
        zip folder if it is a temporary one."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._owned:
            shutil.rmtree(self.bridge.zip_dir, ignore_errors=True)
