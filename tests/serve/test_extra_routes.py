"""Routes added by a caller (the AoE bridge's way in): exact paths, ``prefix/*``, limits.

An added route gets the snapshot of the moment, the body (read within the
service's limits) and the path; what it returns is sent as it is, and an
:class:`~aoe_pack.errors.AoePackError` it raises is a JSON refusal like the
service's own.
"""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from _serve import Published, release, running

from aoe_pack.errors import RequestError
from aoe_pack.serve.app import App, Response
from aoe_pack.serve.reading import Snapshot

DEVICE = {"tag": "tag_a", "installedVersion": "0.9.0", "appVersion": "3.0.0", "deviceId": "d-1"}


async def echo(snapshot: Snapshot, body: bytes, path: str) -> Response:
    doc = {"path": path, "body": body.decode(), "version": snapshot.version, "tags": snapshot.tags}
    return 200, {"content-type": "application/json", "x-route": "echo"}, json.dumps(doc).encode()


async def refuse(snapshot: Snapshot, body: bytes, path: str) -> Response:
    raise RequestError("this route refuses everything", hint="it is a test")


ROUTES = {
    ("POST", "/upgradeModel"): echo,
    ("GET", "/aoe/models/*"): echo,
    ("POST", "/refuse"): refuse,
}


def test_an_added_route_gets_the_snapshot_the_body_and_the_path(published: Published) -> None:
    with running(published.url, published.trusted_root, extra_routes=ROUTES) as service:
        status, doc = service.request("POST", "/upgradeModel", b'{"appId": "a"}')
        assert (status, doc) == (
            200,
            {
                "path": "/upgradeModel",
                "body": '{"appId": "a"}',
                "version": 3,
                "tags": ["tag_a", "tag_b"],
            },
        )
        status, doc = service.request("GET", "/aoe/models/ab/cd.zip")
        assert (status, doc["path"]) == (200, "/aoe/models/ab/cd.zip")
        status, doc = service.request("POST", "/aoe/models/ab.zip")
        assert (status, doc["error"]["message"]) == (405, "/aoe/models/ab.zip takes GET, not POST")
        assert service.decide(DEVICE)[0] == 200  # the service's own routes are untouched


def test_an_error_an_added_route_raises_is_a_json_refusal(published: Published) -> None:
    with running(published.url, published.trusted_root, extra_routes=ROUTES) as service:
        status, doc = service.request("POST", "/refuse", b"{}")
    assert (status, doc["error"]) == (
        400,
        {
            "code": "bad-request",
            "type": "RequestError",
            "message": "this route refuses everything",
            "hint": "it is a test",
        },
    )


def test_an_added_route_cannot_take_over_the_services_own(published: Published) -> None:
    with running(published.url, published.trusted_root) as service:
        view = service.service.view
        with pytest.raises(ValueError, match="the service's own route"):
            App(view, repository=published.url, extra_routes={("POST", "/v1/decide"): echo})
        with pytest.raises(ValueError, match="the service's own route"):
            App(view, repository=published.url, extra_routes={("POST", "/healthz"): echo})


def test_an_added_route_is_not_called_once_the_snapshot_expired(published: Published) -> None:
    published.set("tag_a", release("1.0.0"), expires=dt.timedelta(seconds=2))
    with running(published.url, published.trusted_root, extra_routes=ROUTES) as service:
        assert service.request("POST", "/upgradeModel", b"{}")[0] == 200
        time.sleep(2.1)
        status, doc = service.request("POST", "/upgradeModel", b"{}")
    assert (status, doc["error"]["code"]) == (503, "expired")
