"""The AoE bridge end to end over HTTP: ``aoe-pack serve --aoe-model``, as an AoE app meets it.

The repository is published with the project's publisher (_aoe_world.py);
the service is the real one, on uvicorn on loopback: in this process
(_serve.running) or as the ``aoe-pack serve`` command in a subprocess. The
device is ``_aoe_client.AoeApp`` (written from AoE's Android sources) over
its ``HttpTransport``: it POSTs to ``/upgradeModel``, downloads ``modelUrl``,
checks its MD5, unpacks the zip and loads the model as AoE does. Each test
asserts the exact answers.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from _aoe_client import md5sum
from _aoe_world import (
    APP_ID,
    MAPPING,
    MODEL,
    MODEL_DIR,
    MODEL_ID,
    TAG,
    Devices,
    World,
    aoe_body,
    assert_installed,
    files_of,
)
from _cli import Cli
from _serve import Published, Running, running

from aoe_pack._crypto.asymmetric import PrivateKey, private_pem
from aoe_pack.client.decide import Action, Device, bucket, decide
from aoe_pack.config.model import RUNTIMES
from aoe_pack.errors import UsageError
from aoe_pack.keys.load import DecryptionKey
from aoe_pack.serve import aoe_bridge
from aoe_pack.serve.aoe_bridge import AoeMapping
from aoe_pack.serve.aoe_routes import AoeOptions
from aoe_pack.serve.app import ServeLimits
from aoe_pack.serve.run import ServeOptions, prepare

REPO = Path(__file__).resolve().parents[2]
PUBLIC = "https://models.example.com/aoe/zips"
ENCRYPTED_REFUSAL = {
    "code": 502,
    "msg": "cannot serve tag_mnist 1.1.0: tag_mnist 1.1.0 is encrypted: the AoE bridge "
    "serves an encrypted bundle only with a decryption key its operator gives it",
    "data": None,
}


@contextlib.contextmanager
def bridge_on(world: World, *specs: str, **options: Any) -> Iterator[Running]:
    """The service with the bridge on (``MAPPING`` unless ``specs`` say otherwise)."""
    limits = options.pop("limits", ServeLimits())
    aoe = AoeOptions(mapping=AoeMapping.parse(specs or [MAPPING]), **options)
    with running(world.store.url, world.trusted_root(), aoe=aoe, limits=limits) as service:
        yield service


def raw(
    port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request on its own connection: status, headers (lowercase names) and body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def declared_only(port: int, length: int) -> tuple[int, dict[str, str], Any]:
    """``POST /upgradeModel`` announcing a body of ``length`` bytes, and sending none of it."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            b"POST /upgradeModel HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {length}\r\n\r\n".encode()
        )
        response = http.client.HTTPResponse(sock)
        response.begin()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return response.status, headers, json.loads(response.read())


def upgrade(port: int, body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    status, _, data = raw(port, "POST", "/upgradeModel", body, headers)
    return status, json.loads(data)


# --- an app's update, over HTTP ------------------------------------------------------


def test_an_aoe_app_updates_over_http_through_the_zip_and_its_md5(
    world: World, tmp_path: Path
) -> None:
    world.publish("1.1.0")
    with bridge_on(world) as service:
        device = Devices(tmp_path, service.port)("1.0.0")
        assert device.load().version == "1.0.0"

        checked = device.check()

        assert checked.outcome == "installed"
        assert checked.status == 200
        url = checked.response["data"]["modelUrl"]
        prefix = f"http://127.0.0.1:{service.port}/aoe/zips/"
        assert url.startswith(prefix)
        status, headers, data = raw(
            service.port, "GET", url.removeprefix(f"http://127.0.0.1:{service.port}")
        )
        assert status == 200
        assert (headers["content-type"], headers["content-length"]) == (
            "application/zip",
            str(len(data)),
        )
        assert checked.response == {
            "code": 0,
            "msg": "1.1.0 > 1.0.0: in the 100% rollout",
            "data": {
                "modelVersionCode": "1.1.0",
                "modelUrl": prefix + hashlib.sha256(data).hexdigest() + ".zip",
                "modelMd5": md5sum(data),
            },
        }
    assert_installed(device, "1.1.0")
    assert json.loads((device.files_dir / MODEL_DIR / "1.1.0" / "model.config").read_bytes()) == {
        "version": "1.1.0",
        "runtime": "tensorflow",
        "source": "cloud",
        "modelId": MODEL_ID,
        "modelDir": MODEL_DIR,
        "modelName": MODEL,
        "modelSign": md5sum(files_of("1.1.0")[MODEL]),
        "modelLabelName": "labels.txt",
    }


def test_an_app_on_the_newest_release_hears_no_update_over_http(
    world: World, tmp_path: Path
) -> None:
    world.publish("1.1.0")
    with bridge_on(world) as service:
        device = Devices(tmp_path, service.port)("1.0.0")
        assert device.check().outcome == "installed"

        again = device.check()

    assert again.outcome == "newest"
    assert again.request["modelVersionCode"] == "1.1.0"
    assert (again.status, again.response) == (
        200,
        {"code": 0, "msg": "no update: no eligible release above 1.1.0", "data": None},
    )
    assert_installed(device, "1.1.0")


def test_each_mapped_model_is_answered_from_its_own_tag(world: World, tmp_path: Path) -> None:
    """The snapshot holds a manifest per tag (index.json and tag documents): the bridge
    reads the one of the tag the request's ids map to."""
    world.publish("1.1.0")
    world.publish("2.0.0", tag="tag_other")
    specs = (MAPPING, f"{APP_ID}:7=tag_other@other", f"{APP_ID}:8=tag_absent@absent")
    with bridge_on(world, *specs) as service:
        assert service.health()[1]["source"] == "index.json"
        mnist = upgrade(service.port, aoe_body("1.0.0"))
        other_answer = upgrade(service.port, aoe_body("1.0.0", modelId=7))
        absent = upgrade(service.port, aoe_body("1.0.0", modelId=8))

    assert (mnist[0], mnist[1]["data"]["modelVersionCode"]) == (200, "1.1.0")
    assert (
        other_answer[0],
        other_answer[1]["msg"],
        other_answer[1]["data"]["modelVersionCode"],
    ) == (
        200,
        "2.0.0 > 1.0.0: in the 100% rollout",
        "2.0.0",
    )
    assert mnist[1]["data"]["modelUrl"] != other_answer[1]["data"]["modelUrl"]
    assert absent == (
        200,
        {"code": 0, "msg": "no update: the manifest has no model 'tag_absent'", "data": None},
    )


def test_the_rollout_over_http_reaches_the_device_sns_that_decide_puts_in_it(
    world: World,
) -> None:
    world.publish("1.1.0", rollout_bp=3000)
    manifest, _ = world.verified()
    release = manifest.models[TAG].find("1.1.0")
    assert release is not None
    offered = []
    with bridge_on(world) as service:
        for i in range(400):
            sn = f"imei-{i:015d}"
            status, doc = upgrade(service.port, aoe_body(device_sn=sn))
            assert status == 200
            device = Device(
                device_id=sn,
                app_version="0.0.0",
                runtimes=frozenset(RUNTIMES),
                local_version="1.0.0",
            )
            inside = decide(manifest, TAG, device).action is Action.DOWNLOAD
            assert inside is (bucket(release.salt, TAG, sn) < 3000)
            if inside:
                assert (doc["msg"], doc["data"]["modelVersionCode"]) == (
                    "1.1.0 > 1.0.0: in the 30% rollout",
                    "1.1.0",
                ), sn
                offered.append(doc["data"])
            else:
                assert doc == {
                    "code": 0,
                    "msg": "no update: no eligible release above 1.0.0 (1.1.0: outside its 30% "
                    "rollout)",
                    "data": None,
                }, sn
    assert 60 < len(offered) < 180  # 30% of 400, give or take five standard deviations
    assert len({json.dumps(d, sort_keys=True) for d in offered}) == 1  # one zip for all


def test_the_public_url_is_the_base_of_model_url(world: World) -> None:
    world.publish("1.1.0")
    with bridge_on(world, public_url=PUBLIC + "/") as service:
        status, doc = upgrade(service.port, aoe_body())
        name = doc["data"]["modelUrl"].removeprefix(PUBLIC + "/")
        got, headers, data = raw(service.port, "GET", f"/aoe/zips/{name}")
    assert status == 200
    assert name == hashlib.sha256(data).hexdigest() + ".zip"
    assert (got, headers["content-type"], doc["data"]["modelMd5"]) == (
        200,
        "application/zip",
        md5sum(data),
    )


# --- what the bridge does not serve --------------------------------------------------


def test_the_bridge_is_off_by_default(world: World) -> None:
    world.publish("1.1.0")
    with running(world.store.url, world.trusted_root()) as service:
        posted = upgrade(service.port, aoe_body())
        got = service.request("GET", "/aoe/zips/" + "0" * 64 + ".zip")
    assert posted == (
        404,
        {
            "ok": False,
            "error": {
                "code": "unknown-endpoint",
                "type": "UnknownEndpointError",
                "message": "no endpoint /upgradeModel",
            },
        },
    )
    assert got == (
        404,
        {
            "ok": False,
            "error": {
                "code": "unknown-endpoint",
                "type": "UnknownEndpointError",
                "message": f"no endpoint /aoe/zips/{'0' * 64}.zip",
            },
        },
    )


@pytest.mark.parametrize(
    "name", ["0" * 64 + ".zip", "../repo/index.json", "%2e%2e/index.json", "a.zip", ""]
)
def test_a_zip_the_bridge_did_not_build_is_a_404(world: World, name: str) -> None:
    with bridge_on(world) as service:
        status, doc = service.request("GET", f"/aoe/zips/{name}")
    shown = name.replace("%2e", ".")
    assert (status, doc) == (
        404,
        {
            "ok": False,
            "error": {
                "code": "unknown-endpoint",
                "type": "UnknownEndpointError",
                "message": f"no AoE zip {shown!r} here",
                "hint": "modelUrl names a zip of this bridge's --aoe-zip-dir; ask "
                "/upgradeModel again for the current one",
            },
        },
    )


def test_an_encrypted_bundle_is_refused_over_http_without_a_key(
    world: World, x25519_key: PrivateKey, tmp_path: Path
) -> None:
    world.publish("1.1.0", recipients=(x25519_key.public,))
    with bridge_on(world) as service:
        device = Devices(tmp_path, service.port)("1.0.0")
        checked = device.check()
    assert (checked.outcome, checked.status, checked.response) == (
        "network-failed",
        502,
        ENCRYPTED_REFUSAL,
    )
    assert device.load().version == "1.0.0"


def test_an_encrypted_bundle_is_served_over_http_with_the_key(
    world: World, x25519_key: PrivateKey, tmp_path: Path
) -> None:
    world.publish("1.1.0", recipients=(x25519_key.public,))
    key = DecryptionKey(origin="test", private=x25519_key)
    with bridge_on(world, decryption_key=key) as service:
        device = Devices(tmp_path, service.port)("1.0.0")
        assert device.check().outcome == "installed"
    assert_installed(device, "1.1.0")


# --- hostile requests ----------------------------------------------------------------


def test_malformed_json_over_http_is_a_400_in_aoes_shape(world: World) -> None:
    with bridge_on(world) as service:
        answer = upgrade(service.port, b'{"appId": 72,')
    assert answer == (
        400,
        {
            "code": 400,
            "msg": "the body is not JSON: Expecting property name enclosed in double quotes "
            "at character 13",
            "data": None,
        },
    )


def test_a_huge_body_over_http_is_a_413_in_aoes_shape(world: World) -> None:
    with bridge_on(world) as service:
        status, headers, doc = declared_only(service.port, 1 << 30)
    assert (status, headers["connection"], doc) == (
        413,
        "close",
        {"code": 413, "msg": "the body is larger than 16384 bytes", "data": None},
    )


def test_a_body_over_the_bridges_cap_sent_without_its_length_is_a_413(world: World) -> None:
    """Chunked, so the cap is found while reading: AoE's 16 KiB, not the service's 64 KiB."""
    pieces = [b" " * 10_000, b" " * 10_000, b"{}"]
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    with (
        bridge_on(world) as service,
        socket.create_connection(("127.0.0.1", service.port), timeout=30) as sock,
    ):
        # One write: the server reads it whole, and its close after the 413 resets nothing.
        sock.sendall(
            b"POST /upgradeModel HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body
        )
        response = http.client.HTTPResponse(sock)
        response.begin()
        answer = response.status, json.loads(response.read())
    assert answer == (
        413,
        {"code": 413, "msg": "the body is larger than 16384 bytes", "data": None},
    )


def test_a_stalled_body_is_a_408_in_aoes_shape(world: World) -> None:
    with (
        bridge_on(world, limits=ServeLimits(body_timeout=0.5)) as service,
        socket.create_connection(("127.0.0.1", service.port), timeout=10) as sock,
    ):
        sock.sendall(b"POST /upgradeModel HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        response = sock.makefile("rb").read()
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ")
    assert json.loads(body) == {
        "code": 408,
        "msg": "the body did not arrive within 0.5 s",
        "data": None,
    }


def test_hostile_requests_do_not_disturb_a_concurrent_good_one(
    world: World, tmp_path: Path
) -> None:
    world.publish("1.1.0")
    hostile: dict[bytes, tuple[int, Any]] = {
        b'{"appId": 72,': (
            400,
            {
                "code": 400,
                "msg": "the body is not JSON: Expecting property name enclosed in double "
                "quotes at character 13",
                "data": None,
            },
        ),
        b"\xff\xfe": (400, {"code": 400, "msg": "the body is not UTF-8", "data": None}),
        b"[]": (
            400,
            {"code": 400, "msg": "the body must be a JSON object, not an array", "data": None},
        ),
    }
    too_large = (
        413,
        "close",
        {"code": 413, "msg": "the body is larger than 16384 bytes", "data": None},
    )
    with (
        bridge_on(world, limits=ServeLimits(body_timeout=5)) as service,
        socket.create_connection(("127.0.0.1", service.port), timeout=10) as stalled,
        ThreadPoolExecutor(6) as pool,
    ):
        stalled.sendall(b"POST /upgradeModel HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{")
        bad = [(pool.submit(upgrade, service.port, body), body) for body in [*hostile] * 10]
        huge = [pool.submit(declared_only, service.port, 1 << 30) for _ in range(10)]
        device = Devices(tmp_path, service.port)("1.0.0")
        checked = device.check()  # the first request of 1.1.0: the zip is built meanwhile
        for future, body in bad:
            assert future.result() == hostile[body], body
        assert [(f.result()[0], f.result()[1]["connection"], f.result()[2]) for f in huge] == (
            [too_large] * 10
        )
    assert checked.outcome == "installed"
    assert_installed(device, "1.1.0")


def test_a_bundle_being_fetched_holds_up_no_other_request(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bridge blocks while it downloads a bundle: it does so in its own threads, and
    the event loop goes on answering decisions, health and other AoE apps."""
    world.publish("1.1.0")
    entered, release = threading.Event(), threading.Event()
    fetch = aoe_bridge.fetch_bundle

    @contextlib.contextmanager
    def held_fetch(*args: Any, **kwargs: Any) -> Iterator[Any]:
        entered.set()
        assert release.wait(30)
        with fetch(*args, **kwargs) as bundle:
            yield bundle

    monkeypatch.setattr(aoe_bridge, "fetch_bundle", held_fetch)
    with bridge_on(world) as service, ThreadPoolExecutor(1) as pool:
        device = Devices(tmp_path, service.port)("1.0.0")
        first = pool.submit(device.check)
        assert entered.wait(10)
        start = time.monotonic()
        health = service.health()
        newest = upgrade(service.port, aoe_body("1.1.0", device_sn="phone-2"))
        unmapped = upgrade(service.port, aoe_body(appId=73))
        elapsed = time.monotonic() - start
        assert not first.done()
        release.set()
        checked = first.result(timeout=30)
    assert elapsed < 5
    assert (health[0], health[1]["status"]) == (200, "ok")
    assert newest == (
        200,
        {"code": 0, "msg": "no update: no eligible release above 1.1.0", "data": None},
    )
    assert unmapped == (
        404,
        {"code": 404, "msg": "no model is mapped for appId 73 modelId 12134", "data": None},
    )
    assert checked.outcome == "installed"


def test_a_wildcard_host_needs_a_public_url(world: World) -> None:
    aoe = AoeOptions(mapping=AoeMapping.parse([MAPPING]))
    options = ServeOptions(
        repo=world.store.url,
        trusted_root=world.trusted_root(),
        host="0.0.0.0",  # noqa: S104 - refused before anything listens
        port=0,
        aoe=aoe,
    )
    with pytest.raises(UsageError) as e:
        prepare(options)
    assert e.value.message == (
        "--host 0.0.0.0 listens on every address, so the AoE zips' URL cannot be derived from it"
    )
    assert e.value.hint == (
        "give --aoe-public-url, the URL at which the apps reach this server's /aoe/zips "
        "(e.g. https://models.example.com/aoe/zips)"
    )


# --- the command ---------------------------------------------------------------------


def _start(world: World, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    root = tmp_path / "root.json"
    root.write_bytes(world.trusted_root())
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "aoe_pack", "serve", "--repo", world.store.url),
            *("--trusted-root", str(root), "--port", "0", "--json-logs"),
            *args,
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
    )


def _events(proc: subprocess.Popen[bytes]) -> dict[str, dict[str, Any]]:
    """The log lines up to ``listening``, by event."""
    assert proc.stderr is not None
    events: dict[str, dict[str, Any]] = {}
    while "listening" not in events:
        line = proc.stderr.readline()
        assert line, f"the service ended: {proc.wait()}"
        doc = json.loads(line)
        events[doc["event"]] = doc
    return events


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)


def test_the_command_serves_an_encrypted_bundle_with_its_aoe_key_and_password(
    world: World, x25519_key: PrivateKey, tmp_path: Path
) -> None:
    world.publish("1.1.0", recipients=(x25519_key.public,))
    key = tmp_path / "bridge.key"
    key.write_bytes(private_pem(x25519_key, b"bridge password"))
    with _start(
        world,
        tmp_path,
        *("--aoe-model", MAPPING, "--aoe-decryption-key", str(key)),
        *("--key-password", str(key), "env://BRIDGE_KEY_PASSWORD"),
        env={"BRIDGE_KEY_PASSWORD": "bridge password"},
    ) as proc:
        try:
            events = _events(proc)
            port = events["listening"]["port"]
            bridge = events["aoe-bridge"]
            zip_dir = Path(bridge["zipDir"])
            device = Devices(tmp_path, port)("1.0.0")
            checked = device.check()
            assert [p.suffix for p in zip_dir.iterdir()] == [".zip"]
        finally:
            _stop(proc)
    assert (bridge["level"], bridge["publicUrl"], bridge["decryptionKey"]) == (
        "warning",
        f"http://127.0.0.1:{port}/aoe/zips/",
        True,
    )
    assert bridge["models"] == [f"{APP_ID}:{MODEL_ID}={TAG}@{MODEL_DIR}"]
    assert checked.outcome == "installed"
    assert checked.response["data"]["modelUrl"].startswith(f"http://127.0.0.1:{port}/aoe/zips/")
    assert_installed(device, "1.1.0")
    assert proc.returncode == -signal.SIGTERM
    assert not zip_dir.exists()  # the temporary folder went with the service


def test_the_command_refuses_an_encrypted_bundle_without_an_aoe_key(
    world: World, x25519_key: PrivateKey, tmp_path: Path
) -> None:
    world.publish("1.1.0", recipients=(x25519_key.public,))
    zips = tmp_path / "zips"
    with _start(
        world,
        tmp_path,
        *("--aoe-model", MAPPING, "--aoe-zip-dir", str(zips), "--aoe-public-url", PUBLIC),
    ) as proc:
        try:
            events = _events(proc)
            answer = upgrade(events["listening"]["port"], aoe_body())
        finally:
            _stop(proc)
    assert (events["aoe-bridge"]["publicUrl"], events["aoe-bridge"]["decryptionKey"]) == (
        PUBLIC + "/",
        False,
    )
    assert answer == (502, ENCRYPTED_REFUSAL)
    assert list(zips.iterdir()) == []  # a folder of the operator's stays, and holds nothing


def test_bridge_options_without_aoe_model_are_a_usage_error(
    published: Published, tmp_path: Path
) -> None:
    root = tmp_path / "root.json"
    root.write_bytes(published.trusted_root)
    ran = Cli()(
        *("serve", "--repo", published.url, "--trusted-root", root, "--port", "0"),
        *("--aoe-zip-dir", tmp_path / "zips", "--aoe-public-url", PUBLIC),
    )
    assert ran.exit_code == 2, ran.output
    assert (
        "error: --aoe-public-url, --aoe-zip-dir configure the AoE bridge (docs/aoe-bridge.md), "
        "which is off"
    ) in ran.stderr
    assert not (tmp_path / "zips").exists()


def test_a_malformed_aoe_model_is_a_usage_error(published: Published, tmp_path: Path) -> None:
    root = tmp_path / "root.json"
    root.write_bytes(published.trusted_root)
    ran = Cli()(
        *("serve", "--repo", published.url, "--trusted-root", root, "--port", "0"),
        *("--aoe-model", "72=tag_mnist"),
    )
    assert ran.exit_code == 2, ran.output
    assert (
        "error: --aoe-model '72=tag_mnist': write APPID:MODELID=TAG or "
        "APPID:MODELID=TAG@MODELDIR, e.g. 72:12134=tag_mnist@mnist"
    ) in ran.stderr
