"""``aoe-pack serve`` on a folder repository: health, updates, refusals, two instances.

Each test runs the real service (uvicorn on loopback, tests/serve/_serve.py)
on a repository the project's publisher wrote, and changes the repository
under it: a new release, a tampered or rolled-back index, an expired
manifest. A refused change leaves the last good snapshot answering, and
``/healthz`` says why.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from _cli import Cli
from _serve import Published, eventually, release, running

from aoe_pack._jcs import canonical_json
from aoe_pack.errors import ExpiredMetadataError, ServeError, UntrustedMetadataError
from aoe_pack.publish.split import retire_index
from aoe_pack.repository.root import verify_self_signed
from aoe_pack.serve.reading import read_snapshot
from aoe_pack.serve.run import ServeOptions, prepare

REPO = Path(__file__).resolve().parents[2]
DEVICE = {"tag": "tag_a", "installedVersion": "0.9.0", "appVersion": "3.0.0", "deviceId": "d-1"}


def tampered(envelope: bytes, **changes: Any) -> bytes:
    """``envelope`` with its payload changed and its signatures kept (they no longer verify)."""
    doc = json.loads(envelope)
    payload = json.loads(base64.b64decode(doc["payload"]))
    payload.update(changes)
    doc["payload"] = base64.b64encode(canonical_json(payload)).decode()
    return canonical_json(doc)


def test_health_reports_the_verified_repository(published: Published) -> None:
    with running(published.url, published.trusted_root) as service:
        status, health = service.health()
    assert status == 200
    assert {k: health[k] for k in ("status", "manifestVersion", "rootVersion", "source")} == {
        "status": "ok",
        "manifestVersion": 3,
        "rootVersion": 1,
        "source": "index.json",
    }
    assert (health["tags"], health["lastError"], health["repository"]) == (2, None, published.url)
    assert health["lastRefresh"] >= health["lastChange"]


def test_a_decision_is_answered_as_client_check_answers_it(published: Published) -> None:
    with running(published.url, published.trusted_root) as service:
        status, doc = service.decide({**DEVICE, "tag": "tag_b", "runtimes": ["onnx"]})
    assert status == 200
    assert doc == {
        "ok": True,
        "action": "download",
        "tag": "tag_b",
        "version": "2.0.0",
        "url": release("2.0.0").url,
        "sha256": release("2.0.0").sha256,
        "size": 4096,
        "reason": "2.0.0 > 0.9.0: in the 100% rollout",
        "running": "0.9.0 (local)",
        "skipped": [],
        "rootVersion": 1,
        "manifestVersion": 3,
        "bundle": None,
        "unpacked": None,
        "repository": published.url,
    }


def test_a_new_manifest_is_picked_up_without_a_restart(published: Published) -> None:
    with running(published.url, published.trusted_root) as service:
        assert service.decide(DEVICE)[1]["manifestVersion"] == 3
        published.set("tag_a", release("1.0.0"), release("1.2.0"))
        eventually(lambda: service.health()[1]["manifestVersion"] == 4)
        status, doc = service.decide(DEVICE)
        assert (status, doc["version"], doc["manifestVersion"]) == (200, "1.2.0", 4)
        assert service.health()[1]["status"] == "ok"


def test_a_tampered_newer_index_leaves_the_last_good_one_answering(published: Published) -> None:
    with running(published.url, published.trusted_root) as service:
        before = service.decide(DEVICE)
        published.write("index.json", tampered(published.read("index.json"), version=9))
        eventually(lambda: service.health()[1]["status"] == "degraded")
        status, health = service.health()
        assert (status, health["manifestVersion"]) == (200, 3)
        assert health["lastError"]["code"] == "untrusted-metadata"
        assert health["lastError"]["message"].startswith("index.json has 0 of the 1 required")
        assert service.decide(DEVICE) == before  # still the last good snapshot's answer
        published.set("tag_a", release("1.0.0"), release("1.3.0"))  # a good one repairs it
        eventually(lambda: service.health()[1]["status"] == "ok")
        assert service.decide(DEVICE)[1]["version"] == "1.3.0"
        assert service.health()[1]["lastError"] is None


def test_a_rolled_back_index_is_refused(published: Published) -> None:
    old = published.read("index.json")  # version 3
    published.set("tag_a", release("1.0.0", yanked="crashes on start"))
    with running(published.url, published.trusted_root) as service:
        assert service.decide(DEVICE)[1]["action"] == "keep"  # 1.0.0 is yanked
        published.write("index.json", old)  # validly signed, older: it would undo the yank
        eventually(lambda: service.health()[1]["status"] == "degraded")
        health = service.health()[1]
        assert (health["lastError"]["code"], health["manifestVersion"]) == ("rollback", 4)
        status, doc = service.decide(DEVICE)
        assert (status, doc["action"], doc["manifestVersion"]) == (200, "keep", 4)


def test_a_tampered_manifest_is_refused_where_there_is_no_index(published: Published) -> None:
    retire_index(published.store, manifest_bytes=published.read("manifest.json"))
    with running(published.url, published.trusted_root) as service:
        assert service.health()[1]["source"] == "manifest.json"
        before = service.decide(DEVICE)
        published.write("manifest.json", tampered(published.read("manifest.json"), version=9))
        eventually(lambda: service.health()[1]["status"] == "degraded")
        assert service.health()[1]["lastError"]["code"] == "untrusted-metadata"
        assert service.decide(DEVICE) == before


def test_an_expired_repository_answers_no_decision(published: Published) -> None:
    published.set("tag_a", release("1.0.0"), expires=dt.timedelta(seconds=2))
    with running(published.url, published.trusted_root) as service:
        assert service.decide(DEVICE)[0] == 200
        time.sleep(2.1)
        status, doc = service.decide(DEVICE)
        assert (status, doc["error"]["code"]) == (503, "expired")
        status, health = service.health()
        assert (status, health["status"]) == (503, "failing")
        eventually(lambda: (service.health()[1]["lastError"] or {}).get("code") == "expired")


def test_the_service_does_not_start_on_a_repository_its_root_does_not_trust(
    published: Published, tmp_path: Path
) -> None:
    other = Published(str(tmp_path / "other"))
    with (
        pytest.raises(UntrustedMetadataError, match="root version 1's keys"),
        running(published.url, other.trusted_root),
    ):
        pass


def test_the_service_does_not_start_on_an_expired_repository(published: Published) -> None:
    published.set("tag_a", release("1.0.0"), expires=dt.timedelta(seconds=1))
    time.sleep(1.1)
    with (
        pytest.raises(ExpiredMetadataError, match=r"index\.json version 4 expired"),
        running(published.url, published.trusted_root),
    ):
        pass


def test_two_instances_answer_alike(published: Published) -> None:
    requests = [
        {**DEVICE, "deviceId": f"device-{i}", "installedVersion": v, "appVersion": "3.0.0"}
        for i in range(150)
        for v in ("0.9.0", "1.0.0")
    ]
    with (
        running(published.url, published.trusted_root) as one,
        running(published.url, published.trusted_root) as two,
    ):
        first = [one.decide(r) for r in requests]
        assert first == [two.decide(r) for r in requests]
        assert {doc["version"] for _, doc in first} == {"1.0.0", "1.1.0", None}  # a real mix
        published.set("tag_a", release("1.0.0"), release("1.1.0", rollout_bp=2000))
        eventually(
            lambda: one.health()[1]["manifestVersion"] == two.health()[1]["manifestVersion"] == 4
        )
        assert [one.decide(r) for r in requests] == [two.decide(r) for r in requests]


def test_an_unchanged_repository_is_read_conditionally_and_not_verified_again(
    published: Published,
) -> None:
    start = verify_self_signed(published.trusted_root)
    now = dt.datetime.now(dt.UTC)
    first = read_snapshot(published.store, start, now=now)
    assert read_snapshot(published.store, start, now=now, held=first) is first
    published.set("tag_b", release("2.0.0", runtimes=("onnx",)), release("2.1.0"))
    second = read_snapshot(published.store, start, now=now, held=first)
    assert second.version == 4
    # tag_a's document did not change: the held, verified entry is reused as it is
    assert second.manifests["tag_a"].models is first.manifests["tag_a"].models
    assert second.manifests["tag_b"].models is not first.manifests["tag_b"].models


def test_the_command_serves_and_logs_one_json_object_per_line(published: Published) -> None:
    root = Path(published.url).parent / "root.json"
    root.write_bytes(published.trusted_root)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with subprocess.Popen(
        [
            *(sys.executable, "-m", "aoe_pack", "serve", "--repo", published.url),
            *("--trusted-root", str(root), "--port", "0", "--poll-interval", "0.2", "--json-logs"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    ) as proc:
        try:
            _talk_to(proc, published)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=15)
    assert proc.returncode in (0, -signal.SIGTERM)


def _talk_to(proc: subprocess.Popen[bytes], published: Published) -> None:
    assert proc.stderr is not None
    lines = []
    while not lines or lines[-1]["event"] != "listening":
        line = proc.stderr.readline()
        assert line, f"the service ended: {proc.wait()}"
        lines.append(json.loads(line))
    assert lines[0]["event"] == "verified"
    assert (lines[0]["manifestVersion"], lines[0]["level"]) == (3, "info")
    conn = http.client.HTTPConnection("127.0.0.1", lines[-1]["port"], timeout=5)
    conn.request("POST", "/v1/decide", body=json.dumps(DEVICE))
    doc = json.loads(conn.getresponse().read())
    conn.close()
    assert (doc["action"], doc["manifestVersion"]) == ("download", 3)
    published.write("index.json", tampered(published.read("index.json"), version=9))
    while (event := json.loads(proc.stderr.readline()))["event"] != "refused":
        pass
    assert (event["level"], event["code"], event["manifestVersion"]) == (
        "warning",
        "untrusted-metadata",
        3,
    )


def test_a_port_in_use_is_a_serve_error(published: Published) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServeError, match=f"cannot listen on 127.0.0.1:{port}") as e:
            prepare(
                ServeOptions(repo=published.url, trusted_root=published.trusted_root, port=port)
            )
    assert e.value.code == "serve"


def test_the_command_exits_1_with_the_error_when_the_repository_does_not_verify(
    published: Published, tmp_path: Path
) -> None:
    other = tmp_path / "other-root.json"
    other.write_bytes(Published(str(tmp_path / "other")).trusted_root)
    ran = Cli()("serve", "--repo", published.url, "--trusted-root", other, "--port", "0")
    assert ran.exit_code == 1
    assert "error: index.json has 0 of the 1 required signature(s)" in ran.stderr, ran.output
