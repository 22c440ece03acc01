"""The AoE bridge end to end at the library level: an AoE app against a real repository.

``world`` (_aoe_world.py) is a folder repository initialised and published with the library
(root, manifests and bundles signed by ``signer``); ``world.verified()`` is
the root and manifest a device would trust now. ``app(...)`` is an install of
an app on AoE's SDK (``_aoe_client.AoeApp``, written from AoE's sources) that
reaches the bridge as the HTTP routes will: ``answer`` for the POST,
``zip_path`` for the download. Each test asserts the exact answers.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from _aoe_client import AoeApp, Asset, kotlin_compare_version, md5sum
from _aoe_world import (
    APP_ID,
    BASE,
    MAPPING,
    MODEL,
    MODEL_DIR,
    MODEL_ID,
    TAG,
    UPGRADE_URL,
    World,
    aoe_body,
    app_config,
    files_of,
)

from aoe_pack._crypto.asymmetric import PrivateKey
from aoe_pack.client.decide import Action, Device, bucket, decide
from aoe_pack.config.model import RUNTIMES
from aoe_pack.keys.load import DecryptionKey
from aoe_pack.serve.aoe_bridge import AoeBridge, AoeMapping
from aoe_pack.storage.local import LocalStore


@pytest.fixture
def bridge(tmp_path: Path) -> AoeBridge:
    return AoeBridge(AoeMapping.parse([MAPPING]), zip_dir=tmp_path / "zips", public_base_url=BASE)


class BridgeTransport:
    """The HTTP routes, done by the library: POST to ``answer``, GET through ``zip_path``."""

    def __init__(self, bridge: AoeBridge, world: World) -> None:
        self.bridge, self.world = bridge, world
        self.posts: list[tuple[int, dict[str, Any]]] = []

    def post(self, url: str, body: bytes) -> tuple[int, bytes]:
        assert url == UPGRADE_URL
        manifest, root = self.world.verified()
        status, doc = self.bridge.answer(manifest, self.world.store, body, root=root)
        self.posts.append((status, doc))
        return status, json.dumps(doc).encode()

    def get(self, url: str) -> bytes:
        assert url.startswith(BASE + "/"), url
        path = self.bridge.zip_path(url.removeprefix(BASE + "/"))
        assert path is not None, url
        return path.read_bytes()


AppFactory = Callable[..., AoeApp]


@pytest.fixture
def app(tmp_path: Path, world: World, bridge: AoeBridge) -> AppFactory:
    """``app(version="1.0.0", device_sn="phone-1")``: an install shipping ``version``."""
    count = iter(range(1_000_000))

    def make(version: str = "1.0.0", device_sn: str = "phone-1") -> AoeApp:
        files = files_of(version)
        return AoeApp(
            files_dir=tmp_path / f"device-{next(count)}" / "files",
            upgrade_url=UPGRADE_URL,
            app_id=APP_ID,
            device_sn=device_sn,
            asset=Asset(app_config(version, files), files),
            transport=BridgeTransport(bridge, world),
        )

    return make


def _zip_of(bridge: AoeBridge, response: dict[str, Any]) -> bytes:
    path = bridge.zip_path(response["data"]["modelUrl"].removeprefix(BASE + "/"))
    assert path is not None
    return path.read_bytes()


def _answer(bridge: AoeBridge, world: World, body: bytes) -> tuple[int, dict[str, Any]]:
    manifest, root = world.verified()
    return bridge.answer(manifest, world.store, body, root=root)


def test_an_aoe_app_downloads_checks_unpacks_and_runs_the_release(
    world: World, bridge: AoeBridge, app: AppFactory
) -> None:
    world.publish("1.1.0")
    device = app("1.0.0")
    assert device.load().version == "1.0.0"

    checked = device.check()

    assert checked.outcome == "installed"
    assert checked.request["modelVersionCode"] == "1.0.0"
    data = bytes(_zip_of(bridge, checked.response))
    name = hashlib.sha256(data).hexdigest() + ".zip"
    assert checked.response == {
        "code": 0,
        "msg": "1.1.0 > 1.0.0: in the 100% rollout",
        "data": {
            "modelVersionCode": "1.1.0",
            "modelUrl": f"{BASE}/{name}",
            "modelMd5": md5sum(data),
        },
    }
    loaded = device.load()
    assert (loaded.version, loaded.source) == ("1.1.0", "cloud")
    assert loaded.model == files_of("1.1.0")[MODEL]
    installed = device.files_dir / MODEL_DIR / "1.1.0"
    assert sorted(p.name for p in installed.iterdir()) == ["labels.txt", MODEL, "model.config"]
    for name_, content in files_of("1.1.0").items():
        assert (installed / name_).read_bytes() == content
    assert json.loads((installed / "model.config").read_bytes()) == {
        "version": "1.1.0",
        "runtime": "tensorflow",
        "source": "cloud",
        "modelId": MODEL_ID,
        "modelDir": MODEL_DIR,
        "modelName": MODEL,
        "modelSign": md5sum(files_of("1.1.0")[MODEL]),
        "modelLabelName": "labels.txt",
    }
    assert not list((device.files_dir / MODEL_DIR).glob("*.zip"))  # AoE deletes the zip


def test_an_app_on_the_newest_release_hears_no_update(
    world: World, bridge: AoeBridge, app: AppFactory
) -> None:
    world.publish("1.1.0")
    device = app("1.0.0")
    assert device.check().outcome == "installed"

    again = device.check()

    assert again.outcome == "newest"
    assert again.request["modelVersionCode"] == "1.1.0"
    assert (again.status, again.response) == (
        200,
        {"code": 0, "msg": "no update: no eligible release above 1.1.0", "data": None},
    )
    assert device.load().version == "1.1.0"


def test_a_tag_without_releases_hears_no_update(world: World, bridge: AoeBridge) -> None:
    assert _answer(bridge, world, aoe_body()) == (
        200,
        {"code": 0, "msg": "no update: the manifest has no model 'tag_mnist'", "data": None},
    )


def test_a_yanked_release_is_not_taken_back_as_aoe_has_no_way_back(
    world: World, bridge: AoeBridge, app: AppFactory
) -> None:
    world.publish("1.1.0")
    device = app("1.0.0")
    assert device.check().outcome == "installed"
    world.yank("1.1.0", "bad accuracy")

    checked = device.check()

    assert checked.outcome == "newest"
    assert checked.response == {
        "code": 0,
        "msg": "no update: 1.1.0 was yanked (bad accuracy), but AoE apps cannot go back to "
        "the app's model; no eligible release above 1.1.0",
        "data": None,
    }
    assert device.load().version == "1.1.0"  # what AoE does: it keeps the download
    fresh = app("1.0.0", device_sn="phone-2")  # and a device that never had it gets none
    assert fresh.check().response == {
        "code": 0,
        "msg": "no update: no eligible release above 1.0.0 (1.1.0: yanked (bad accuracy))",
        "data": None,
    }
    world.publish("1.2.0")  # the way forward is a newer release
    assert device.check().outcome == "installed"
    assert device.load().version == "1.2.0"
    assert device.load().model == files_of("1.2.0")[MODEL]


def test_the_rollout_reaches_the_device_sns_that_decide_puts_in_it(
    world: World, bridge: AoeBridge
) -> None:
    world.publish("1.1.0", rollout_bp=3000)
    manifest, root = world.verified()
    release = manifest.models[TAG].find("1.1.0")
    assert release is not None
    offered = []
    for i in range(2000):
        sn = f"imei-{i:015d}"
        status, doc = bridge.answer(manifest, world.store, aoe_body(device_sn=sn), root=root)
        assert status == 200
        device = Device(
            device_id=sn,
            app_version="0.0.0",
            runtimes=frozenset(RUNTIMES),
            local_version="1.0.0",
        )
        decision = decide(manifest, TAG, device)
        inside = bucket(release.salt, TAG, sn) < 3000
        assert (decision.action is Action.DOWNLOAD) is inside
        assert (doc["data"] is not None) is inside, sn
        if inside:
            assert doc["msg"] == "1.1.0 > 1.0.0: in the 30% rollout"
            offered.append(doc["data"])
        else:
            assert doc == {
                "code": 0,
                "msg": "no update: no eligible release above 1.0.0 (1.1.0: outside its 30% "
                "rollout)",
                "data": None,
            }
    assert 500 < len(offered) < 700
    assert len({json.dumps(d, sort_keys=True) for d in offered}) == 1  # one zip for all


def test_a_pin_sends_its_release_up_but_never_down(world: World, bridge: AoeBridge) -> None:
    world.publish("1.1.0")
    world.publish("1.2.0")
    world.pin("1.1.0")

    status, up = _answer(bridge, world, aoe_body("1.0.0"))
    assert (status, up["msg"], up["data"]["modelVersionCode"]) == (
        200,
        "1.1.0 > 1.0.0: pinned to 1.1.0",
        "1.1.0",
    )
    assert _answer(bridge, world, aoe_body("1.2.0")) == (
        200,
        {
            "code": 0,
            "msg": "no update: AoE apps cannot go back to an older model (pinned to 1.1.0)",
            "data": None,
        },
    )


def test_the_kill_switch_stops_downloads(world: World, bridge: AoeBridge) -> None:
    world.publish("1.1.0")
    world.pin("local")

    assert _answer(bridge, world, aoe_body("1.0.0")) == (
        200,
        {
            "code": 0,
            "msg": "no update: pinned to the local model; AoE apps keep a model they "
            "downloaded: the kill switch stops downloads",
            "data": None,
        },
    )


def test_a_release_for_newer_apps_is_not_offered_as_aoe_never_says_its_app_version(
    world: World, bridge: AoeBridge
) -> None:
    world.publish("1.1.0", min_app_version="2.0.0")

    assert _answer(bridge, world, aoe_body("1.0.0")) == (
        200,
        {
            "code": 0,
            "msg": "no update: no eligible release above 1.0.0 (1.1.0: needs app >= 2.0.0)",
            "data": None,
        },
    )


def test_a_version_aoe_would_not_load_is_not_offered(
    world: World, bridge: AoeBridge, app: AppFactory
) -> None:
    """AoE's loader keeps 1.0.9 over 1.0.10 (strings of other lengths): offering it would
    make the app download it at every start and never run it."""
    world.publish("1.0.10")
    device = app("1.0.9")
    assert kotlin_compare_version("1.0.9", "1.0.10") > 0

    checked = device.check()

    assert checked.response == {
        "code": 0,
        "msg": "no update: 1.0.10 > 1.0.9: in the 100% rollout, but AoE's loader would keep "
        "1.0.9 over 1.0.10: it compares versions as text, and only those of equal length",
        "data": None,
    }
    world.publish("1.1.0")  # same length as 1.0.9: AoE loads it
    assert device.check().outcome == "installed"
    assert device.load().version == "1.1.0"


def test_an_encrypted_bundle_is_refused_without_the_operators_key(
    world: World, bridge: AoeBridge, x25519_key: PrivateKey
) -> None:
    world.publish("1.1.0", recipients=(x25519_key.public,))
    counted = _CountingStore(world.store)
    manifest, root = world.verified()

    refused = (
        502,
        {
            "code": 502,
            "msg": "cannot serve tag_mnist 1.1.0: tag_mnist 1.1.0 is encrypted: the AoE bridge "
            "serves an encrypted bundle only with a decryption key its operator gives it",
            "data": None,
        },
    )
    assert bridge.answer(manifest, counted, aoe_body(), root=root) == refused
    assert bridge.answer(manifest, counted, aoe_body(), root=root) == refused
    assert counted.downloads == 1  # the second refusal came from memory
    assert list(bridge.zip_dir.iterdir()) == []  # nothing of the download is left


def test_an_encrypted_bundle_is_served_decrypted_with_the_operators_key(
    world: World, tmp_path: Path, x25519_key: PrivateKey, app: AppFactory
) -> None:
    world.publish("1.1.0", recipients=(x25519_key.public,))
    keyed = AoeBridge(
        AoeMapping.parse([MAPPING]),
        zip_dir=tmp_path / "keyed-zips",
        public_base_url=BASE,
        decryption_key=DecryptionKey(origin="test", private=x25519_key),
    )
    device = app("1.0.0")
    device.transport = BridgeTransport(keyed, world)

    assert device.check().outcome == "installed"
    assert device.load().model == files_of("1.1.0")[MODEL]


def test_an_unknown_app_or_model_is_refused(world: World, bridge: AoeBridge) -> None:
    world.publish("1.1.0")

    assert _answer(bridge, world, aoe_body(appId=73)) == (
        404,
        {"code": 404, "msg": "no model is mapped for appId 73 modelId 12134", "data": None},
    )
    assert _answer(bridge, world, aoe_body(modelId=1)) == (
        404,
        {"code": 404, "msg": "no model is mapped for appId 72 modelId 1", "data": None},
    )


def test_two_bridges_answer_alike(world: World, tmp_path: Path) -> None:
    """Nothing of an instance's own goes into an answer: several behind a load balancer agree."""
    world.publish("1.1.0")
    first, second = (
        AoeBridge(AoeMapping.parse([MAPPING]), zip_dir=tmp_path / name, public_base_url=BASE)
        for name in ("one", "two")
    )
    answers = [
        _answer(b, world, aoe_body(device_sn=f"sn-{i}")) for b in (first, second) for i in range(3)
    ]
    assert answers[:3] == answers[3:]
    url = answers[0][1]["data"]["modelUrl"]
    name = url.removeprefix(BASE + "/")
    one, two = first.zip_path(name), second.zip_path(name)
    assert one is not None
    assert two is not None
    assert one.read_bytes() == two.read_bytes()


def test_concurrent_requests_share_one_build(world: World, bridge: AoeBridge) -> None:
    world.publish("1.1.0")
    counted = _CountingStore(world.store)
    manifest, root = world.verified()
    start = threading.Barrier(8)

    def ask(i: int) -> tuple[int, dict[str, Any]]:
        start.wait()
        return bridge.answer(manifest, counted, aoe_body(device_sn=f"sn-{i}"), root=root)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, range(8)))

    assert counted.downloads == 1
    assert all(a == answers[0] for a in answers)
    assert answers[0][1]["data"]["modelVersionCode"] == "1.1.0"
    assert [p.name for p in bridge.zip_dir.iterdir()] == [
        answers[0][1]["data"]["modelUrl"].removeprefix(BASE + "/")
    ]


def test_a_bare_version_is_read_as_migrate_reads_it(world: World, bridge: AoeBridge) -> None:
    world.publish("1.1.0")
    body = aoe_body("@").replace(b'"@"', b"1.0.0")
    assert b'"modelVersionCode": 1.0.0,' in body

    status, doc = _answer(bridge, world, body)

    assert (status, doc["msg"], doc["data"]["modelVersionCode"]) == (
        200,
        "1.1.0 > 1.0.0: in the 100% rollout",
        "1.1.0",
    )


class _CountingStore:
    """A store that counts the bundle downloads made through it."""

    def __init__(self, store: LocalStore) -> None:
        self._store = store
        self.downloads = 0

    def fetch_blob(self, *args: Any, **kwargs: Any) -> Any:
        self.downloads += 1
        return self._store.fetch_blob(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)
