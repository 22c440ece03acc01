"""The service on the other backends: S3 (moto), OCI (a registry) and HTTP (nginx).

The repository is published into the backend by the project's publisher
(through S3 or the registry, or into the folder nginx serves), and the service reads it by
URL as devices do. Over HTTP its polls are conditional: an unchanged
repository costs the next root's 404 and a ``304`` for the index.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from _serve import Published, eventually, release, running
from _server_nginx import NginxServer

from aoe_pack._jcs import canonical_json

DEVICE = {"tag": "tag_a", "installedVersion": "0.9.0", "appVersion": "3.0.0", "deviceId": "d-1"}


def _tampered(envelope: bytes) -> bytes:
    doc = json.loads(envelope)
    payload: dict[str, Any] = json.loads(base64.b64decode(doc["payload"]))
    payload["version"] += 5
    doc["payload"] = base64.b64encode(canonical_json(payload)).decode()
    return canonical_json(doc)


@pytest.mark.parametrize("backend", ["s3", "oci"])
def test_the_service_reads_an_object_store_or_registry(
    backend: str, request: pytest.FixtureRequest
) -> None:
    url: str = request.getfixturevalue(f"{backend}_repo_url")
    published = Published(url)
    published.set("tag_a", release("1.0.0"))
    with running(url, published.trusted_root) as service:
        status, doc = service.decide(DEVICE)
        assert (status, doc["version"], doc["repository"]) == (200, "1.0.0", url)
        published.set("tag_a", release("1.0.0"), release("1.1.0"))
        eventually(lambda: service.health()[1]["manifestVersion"] == 3)
        assert service.decide(DEVICE)[1]["version"] == "1.1.0"
        published.write("index.json", _tampered(published.read("index.json")))
        eventually(lambda: service.health()[1]["status"] == "degraded")
        assert service.health()[1]["lastError"]["code"] == "untrusted-metadata"
        assert service.decide(DEVICE)[1]["version"] == "1.1.0"


def test_the_service_reads_an_http_repository_with_conditional_requests(
    nginx_server: NginxServer,
) -> None:
    published = Published(str(nginx_server.root))
    published.set("tag_a", release("1.0.0"))
    with running(nginx_server.url, published.trusted_root, poll_interval=0.05) as service:
        assert service.decide(DEVICE)[1]["version"] == "1.0.0"
        first = len(nginx_server.wire(at_least=3))
        eventually(lambda: len(nginx_server.wire()) >= first + 6)  # three polls at least
        polls = [(r.path, r.status) for r in nginx_server.wire()[first:]]
        assert set(polls) == {("roots/2.root.json", 404), ("index.json", 304)}
        published.set("tag_a", release("1.0.0"), release("1.1.0"))
        eventually(lambda: service.health()[1]["manifestVersion"] == 3)
        assert service.decide(DEVICE)[1]["version"] == "1.1.0"
        assert ("tags/tag_a/3.json", 200) in [(r.path, r.status) for r in nginx_server.wire()]
