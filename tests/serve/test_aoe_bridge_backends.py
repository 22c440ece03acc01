"""The AoE bridge end to end on the other backends: S3 (moto), OCI (a registry), HTTP (nginx).

The release is published by the project's publisher into the backend (through
S3 or the registry, or into the folder nginx serves) and the service, with
the bridge on, reads it by URL as devices do. The device is
``_aoe_client.AoeApp`` over real HTTP: ``/upgradeModel``, then ``modelUrl``,
its MD5, the unzip, and the model files must be the bundle's, byte for byte.

The service runs in this process, so the store it opened is wrapped to count
the bundle downloads: eight apps asking at once for a release whose zip is
not built yet, while the poller takes in a new manifest, cost one download.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from _aoe_client import AoeApp, Checked
from _aoe_world import MAPPING, MODEL_DIR, Devices, World, assert_installed
from _serve import Running, eventually, running
from _server_nginx import NginxServer

from aoe_pack._crypto.asymmetric import PrivateKey
from aoe_pack.config.model import ModelConfig
from aoe_pack.publish.workflow import init_repository
from aoe_pack.serve import aoe_bridge, run
from aoe_pack.serve.aoe_bridge import AoeMapping
from aoe_pack.serve.aoe_routes import WORKERS, AoeOptions
from aoe_pack.storage.open import open_store
from aoe_pack.storage.store import Store

BACKENDS = ["s3", "oci", "nginx"]


@dataclass
class Backend:
    """A repository on a backend: the publisher's world, and the URL the service reads."""

    world: World
    url: str
    nginx: NginxServer | None = None


@pytest.fixture(params=BACKENDS)
def backend(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    signer: PrivateKey,
    config_writer: Callable[..., ModelConfig],
) -> Iterator[Backend]:
    """An empty repository, initialised by the publisher, on S3, OCI or nginx."""
    nginx: NginxServer | None = None
    if request.param == "nginx":
        nginx = request.getfixturevalue("nginx_server")
        # nginx serves a folder: the publisher writes into it, the service reads by HTTP
        publish_url, url = str(nginx.root), nginx.url
    else:
        publish_url = url = request.getfixturevalue(f"{request.param}_repo_url")
    store = open_store(publish_url)
    try:
        init_repository(store, root_keys=[signer.public], threshold=1, sign_keys=[signer])
        world = World(store, signer, tmp_path / "work", config_writer)  # type: ignore[arg-type]
        yield Backend(world, url, nginx)
    finally:
        store.close()


@dataclass
class Downloads:
    """The names the service's store fetched as blobs, in order (a bundle each)."""

    names: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    gate: threading.Event = field(default_factory=threading.Event)
    """Set: downloads go ahead. Cleared: they wait for it (at most 30 s)."""

    def __post_init__(self) -> None:
        self.gate.set()


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> Downloads:
    """Counts the blob downloads of the store ``aoe-pack serve`` opens (and can hold them)."""
    seen = Downloads()
    opened = run.open_store

    def counting(method: Callable[..., Any]) -> Callable[..., Any]:
        def fetch(name: str, *args: Any, **kwargs: Any) -> Any:
            with seen.lock:
                seen.names.append(name)
            assert seen.gate.wait(30), "the download was held for too long"
            return method(name, *args, **kwargs)

        return fetch

    def open_counted(*args: Any, **kwargs: Any) -> Store:
        store = opened(*args, **kwargs)
        # on the instance: isinstance checks (HashingStore) see the store's own class
        for method in ("fetch_blob", "fetch_blob_hashed"):
            if hasattr(store, method):
                setattr(store, method, counting(getattr(store, method)))
        return store

    monkeypatch.setattr(run, "open_store", open_counted)
    return seen


@contextlib.contextmanager
def bridge_on(backend: Backend, **options: Any) -> Iterator[Running]:
    aoe = AoeOptions(mapping=AoeMapping.parse([MAPPING]))
    with running(backend.url, backend.world.trusted_root(), aoe=aoe, **options) as service:
        yield service


def bundle_gets(nginx: NginxServer) -> list[tuple[str, int]]:
    return [(r.path, r.status) for r in nginx.wire() if r.path.startswith("bundles/")]


def test_an_aoe_app_updates_from_each_backend(
    backend: Backend, downloads: Downloads, tmp_path: Path
) -> None:
    backend.world.publish("1.1.0")
    bundle_url = backend.world.verified()[0].models["tag_mnist"].releases[0].url
    with bridge_on(backend) as service:
        port = service.port
        device = Devices(tmp_path, port)("1.0.0")
        assert device.load().version == "1.0.0"

        checked = device.check()

    assert (checked.outcome, checked.status) == ("installed", 200)
    assert checked.response["msg"] == "1.1.0 > 1.0.0: in the 100% rollout"
    assert checked.response["data"]["modelVersionCode"] == "1.1.0"
    assert checked.response["data"]["modelUrl"].startswith(f"http://127.0.0.1:{port}/aoe/zips/")
    assert_installed(device, "1.1.0")
    assert downloads.names == [bundle_url]
    if backend.nginx is not None:
        assert bundle_gets(backend.nginx) == [(bundle_url, 200)]


def test_eight_apps_at_once_during_a_refresh_cost_one_download(
    backend: Backend,
    downloads: Downloads,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The zip of 1.1.0 is not built when eight apps ask for it at once; meanwhile a new
    manifest (another tag's release) is published and the poller takes it in. Every
    app gets the same zip and installs it; the store downloaded the bundle once."""
    assert WORKERS == 8  # all eight are in the bridge at once, none waits on the loop
    backend.world.publish("1.1.0")
    bundle_url = backend.world.verified()[0].models["tag_mnist"].releases[0].url
    arrived, all_in = [0], threading.Event()
    answer_lock = threading.Lock()
    legacy_zip = aoe_bridge.AoeBridge.legacy_zip

    def counted_zip(self: aoe_bridge.AoeBridge, *args: Any, **kwargs: Any) -> Any:
        with answer_lock:
            arrived[0] += 1
            if arrived[0] == WORKERS:
                all_in.set()
        return legacy_zip(self, *args, **kwargs)

    monkeypatch.setattr(aoe_bridge.AoeBridge, "legacy_zip", counted_zip)
    downloads.gate.clear()
    with bridge_on(backend, poll_interval=0.05) as service, ThreadPoolExecutor(WORKERS) as pool:
        first_version = service.health()[1]["manifestVersion"]
        make = Devices(tmp_path, service.port)
        devices = [make("1.0.0", device_sn=f"phone-{i}") for i in range(WORKERS)]
        start = threading.Barrier(WORKERS)

        def check(device: AoeApp) -> Checked:
            start.wait(10)
            return device.check()

        futures = [pool.submit(check, d) for d in devices]
        assert all_in.wait(20), f"only {arrived[0]} requests reached the bridge"
        backend.world.publish("2.0.0", tag="tag_other")
        eventually(lambda: service.health()[1]["manifestVersion"] > first_version)
        downloads.gate.set()  # the download overlaps the poller's next refreshes
        results = [f.result(timeout=60) for f in futures]
        assert service.health()[1]["status"] == "ok"

    answers = [r.response for r in results]
    assert [(r.outcome, r.status) for r in results] == [("installed", 200)] * WORKERS
    assert all(a == answers[0] for a in answers)
    assert answers[0]["data"]["modelVersionCode"] == "1.1.0"
    for device in devices:
        assert_installed(device, "1.1.0")
        assert sorted(p.name for p in (device.files_dir / MODEL_DIR).iterdir()) == ["1.1.0"]
    assert downloads.names == [bundle_url]
    if backend.nginx is not None:
        assert bundle_gets(backend.nginx) == [(bundle_url, 200)]
