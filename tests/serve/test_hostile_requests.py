"""Bad requests to ``POST /v1/decide``: each its own test, with its exact status and code.

Every refusal is the JSON failure document of the command line
(schemas/cli/common.schema.json, ``$defs/failure``), and none disturbs the
requests around it: the last tests send good requests while a client
stalls, and while bad requests arrive from other threads.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from _serve import Published, Running, release, running
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from aoe_pack.serve.app import ServeLimits

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "cli"
GOOD = {"tag": "tag_a", "installedVersion": "0.9.0", "appVersion": "3.0.0", "deviceId": "d-1"}


def _failure_validator() -> Draft202012Validator:
    common = json.loads((SCHEMAS / "common.schema.json").read_text(encoding="utf-8"))
    registry: Registry[Any] = Registry().with_resource(
        common["$id"], Resource.from_contents(common)
    )
    return Draft202012Validator({"$ref": f"{common['$id']}#/$defs/failure"}, registry=registry)


FAILURE = _failure_validator()


@pytest.fixture(scope="module")
def module_repo(tmp_path_factory: pytest.TempPathFactory) -> Published:
    p = Published(str(tmp_path_factory.mktemp("hostile") / "repo"))
    p.set("tag_a", release("1.0.0"))
    return p


@pytest.fixture(scope="module")
def service(module_repo: Published) -> Iterator[Running]:
    limits = ServeLimits(max_body_bytes=64 * 1024, body_timeout=0.5)
    with running(module_repo.url, module_repo.trusted_root, limits=limits) as s:
        yield s


def refused(answer: tuple[int, Any], status: int, code: str) -> str:
    """The message of a refusal with ``status`` and ``code``; the document is checked too."""
    got, doc = answer
    assert (got, doc["ok"], doc["error"]["code"]) == (status, False, code), doc
    assert list(FAILURE.iter_errors(doc)) == []
    message: str = doc["error"]["message"]
    return message


def test_malformed_json_is_a_400_bad_request(service: Running) -> None:
    message = refused(service.decide(b'{"tag": "tag_a",'), 400, "bad-request")
    assert message.startswith("the body is not JSON: ")


def test_a_body_that_is_not_utf8_is_a_400_bad_request(service: Running) -> None:
    assert refused(service.decide(b"\xff\xfe{}"), 400, "bad-request") == (
        "the body is not UTF-8 text"
    )


def test_a_json_array_is_a_400_bad_request(service: Running) -> None:
    message = refused(service.decide(b"[1, 2]"), 400, "bad-request")
    assert message == "the body must be a JSON object, not list"


def test_deeply_nested_json_is_a_400_bad_request(service: Running) -> None:
    message = refused(service.decide(b"[" * 60_000), 400, "bad-request")
    assert message.startswith("the body is not JSON")


def test_a_body_over_the_cap_is_refused_from_its_content_length(service: Running) -> None:
    # Declared, not sent: the service answers before reading a byte of it.
    assert refused(_declared_only(service, 10**9), 413, "request-too-large") == (
        "the body is larger than 65536 bytes"
    )


def _declared_only(service: Running, length: int) -> tuple[int, Any]:
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/decide HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {length}\r\n\r\n".encode()
        )
        return _response(sock)


def _response(sock: socket.socket) -> tuple[int, Any]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    length = next(
        int(v) for k, _, v in (h.partition(": ") for h in lines[1:]) if k == "content-length"
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk
        body += chunk
    return int(lines[0].split()[1]), json.loads(body)


def test_a_chunked_body_over_the_cap_is_413(service: Running) -> None:
    big = json.dumps({**GOOD, "deviceId": "x" * 70_000}).encode()

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(big), 8192):
            yield big[i : i + 8192]

    conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
    try:
        conn.request("POST", "/v1/decide", body=chunks(), encode_chunked=True)
        response = conn.getresponse()
        answer = response.status, json.loads(response.read())
    finally:
        conn.close()
    refused(answer, 413, "request-too-large")


def test_an_unknown_tag_is_404_release_not_found(service: Running) -> None:
    message = refused(service.decide({**GOOD, "tag": "tag_z"}), 404, "release-not-found")
    assert message == "the manifest has no model tag_z; its models: tag_a"


def test_a_member_of_the_wrong_type_is_400(service: Running) -> None:
    message = refused(service.decide({**GOOD, "appVersion": 3}), 400, "bad-request")
    assert message == "appVersion must be a string, not int"


def test_a_list_of_the_wrong_type_is_400(service: Running) -> None:
    message = refused(service.decide({**GOOD, "runtimes": "tflite"}), 400, "bad-request")
    assert message == "runtimes must be a list of strings"


def test_an_unknown_member_is_400_and_names_the_one_meant(service: Running) -> None:
    doc = {k: v for k, v in GOOD.items() if k != "appVersion"} | {"appversion": "3.0.0"}
    status, answer = service.decide(doc)
    assert refused((status, answer), 400, "bad-request") == "unknown member 'appversion'"
    assert answer["error"]["hint"] == "did you mean 'appVersion'?"


def test_a_missing_member_is_400(service: Running) -> None:
    doc = {k: v for k, v in GOOD.items() if k != "deviceId"}
    assert refused(service.decide(doc), 400, "bad-request") == "the member 'deviceId' is required"


def test_a_member_given_twice_is_400(service: Running) -> None:
    body = b'{"tag": "tag_a", "tag": "tag_b", "installedVersion": "1.0.0"}'
    assert refused(service.decide(body), 400, "bad-request") == "the member 'tag' appears twice"


def test_a_version_that_is_not_semver_is_400_naming_the_member(service: Running) -> None:
    message = refused(service.decide({**GOOD, "appVersion": "three"}), 400, "bad-request")
    assert "appVersion" in message


def test_an_empty_device_id_is_400(service: Running) -> None:
    message = refused(service.decide({**GOOD, "deviceId": " "}), 400, "bad-request")
    assert message.startswith("deviceId is empty")


def test_a_channel_devices_cannot_match_is_400(service: Running) -> None:
    message = refused(service.decide({**GOOD, "channels": ["Beta!"]}), 400, "bad-request")
    assert message.startswith("channels: 'Beta!'")


def test_an_unknown_endpoint_is_404(service: Running) -> None:
    message = refused(service.request("GET", "/v2/everything"), 404, "unknown-endpoint")
    assert message == "no endpoint /v2/everything"


def test_a_wrong_method_is_405(service: Running) -> None:
    message = refused(service.request("GET", "/v1/decide"), 405, "unknown-endpoint")
    assert message == "/v1/decide takes POST, not GET"


def test_a_client_that_stalls_after_its_headers_holds_up_no_one_else(service: Running) -> None:
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as stalled:
        stalled.sendall(
            b"POST /v1/decide HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n" + b'{"tag": '
        )
        started = time.monotonic()
        for _ in range(20):  # answered while the stalled body waits
            assert service.decide(GOOD)[0] == 200
        assert time.monotonic() - started < 0.5  # well inside the stalled body's timeout
        status, doc = _response(stalled)  # then it times out on its own
    assert refused((status, doc), 408, "request-timeout") == "the body did not arrive within 0.5 s"


def test_bad_requests_do_not_disturb_good_ones(service: Running) -> None:
    good = service.decide(GOOD)
    bad: list[dict[str, Any] | bytes] = [
        b"{",
        b"\x00" * 1000,
        {**GOOD, "tag": "nope"},
        {**GOOD, "runtimes": [1]},
        {**GOOD, "installedVersion": "x.y"},
    ]

    def one(i: int) -> tuple[int, Any]:
        return service.decide(GOOD if i % 2 else bad[i // 2 % len(bad)])

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(one, range(200)))
    assert [a for i, a in enumerate(answers) if i % 2] == [good] * 100
    assert all(status in (400, 404) for status, _ in answers[::2])
