"""What the AoE bridge reads: the ``--aoe-model`` mapping and AoE's request body.

One named case per hostile input, each asserting the exact refusal: the HTTP
status, and the body AoE's SDK reads as a failure (a non-zero ``code``).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from aoe_pack.errors import UsageError
from aoe_pack.repository.model import Manifest
from aoe_pack.serve.aoe_bridge import (
    AoeBridge,
    AoeMapping,
    AoeModel,
    AoeRequest,
    Refusal,
    aoe_compare,
    parse_aoe_model,
    parse_request,
)
from aoe_pack.versions import Version

GOOD: dict[str, Any] = {
    "appId": 72,
    "modelId": 12134,
    "modelVersionCode": "1.0.0",
    "kLat": 30.28,
    "kLng": 120.15,
    "deviceSN": "864394010742586",
    "deviceType": "Pixel 8",
    "timeStamp": 1_767_225_600_000,
    "sign": "9c1185a5c5e9fc54612808977ee8f548",
}


def _body(**changes: Any) -> bytes:
    doc = {k: v for k, v in {**GOOD, **changes}.items() if v is not _DROP}
    return json.dumps(doc).encode()


_DROP = object()


# --- the mapping ---------------------------------------------------------------------


def test_the_mapping_reads_the_command_line_form() -> None:
    mapping = AoeMapping.parse(["72:12134=tag_mnist", "72:16=squeeze@models/squeeze"])

    assert mapping.get(72, 12134) == AoeModel(
        app_id=72, model_id=12134, tag="tag_mnist", model_dir="tag_mnist"
    )
    assert mapping.get(72, 16) == AoeModel(
        app_id=72, model_id=16, tag="squeeze", model_dir="models/squeeze"
    )
    assert mapping.get(73, 16) is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param(
            "tag_mnist",
            "--aoe-model 'tag_mnist': write APPID:MODELID=TAG or APPID:MODELID=TAG@MODELDIR, "
            "e.g. 72:12134=tag_mnist@mnist",
            id="no-ids",
        ),
        pytest.param(
            "72=tag_mnist",
            "--aoe-model '72=tag_mnist': write APPID:MODELID=TAG or APPID:MODELID=TAG@MODELDIR, "
            "e.g. 72:12134=tag_mnist@mnist",
            id="no-model-id",
        ),
        pytest.param(
            "app:12134=tag_mnist",
            "--aoe-model 'app:12134=tag_mnist': APPID must be server.config's appId, a decimal "
            "number",
            id="app-id-not-a-number",
        ),
        pytest.param(
            "72:-1=tag_mnist",
            "--aoe-model '72:-1=tag_mnist': MODELID must be the modelId of the model's "
            "model.config, a decimal number",
            id="negative-model-id",
        ),
        pytest.param(
            "72:٣=tag_mnist",
            "--aoe-model '72:٣=tag_mnist': MODELID must be the modelId of the model's "
            "model.config, a decimal number",
            id="non-ascii-digit",
        ),
        pytest.param(
            "72:99999999999999999999=tag_mnist",
            "--aoe-model '72:99999999999999999999=tag_mnist': MODELID must be the modelId of "
            "the model's model.config, a decimal number",
            id="model-id-beyond-a-long",
        ),
        pytest.param(
            "72:0=tag_mnist",
            "--aoe-model '72:0=tag_mnist': modelId 0: AoE needs a positive number (a Java long)",
            id="model-id-zero",
        ),
        pytest.param(
            "72:12134=tag mnist",
            "--aoe-model '72:12134=tag mnist': 'tag mnist' is not a tag (letters, digits, '.', "
            "'_', '-')",
            id="bad-tag",
        ),
        pytest.param(
            "72:12134=",
            "--aoe-model '72:12134=': '' is not a tag (letters, digits, '.', '_', '-')",
            id="empty-tag",
        ),
        pytest.param(
            "72:12134=tag_mnist@../mnist",
            "--aoe-model '72:12134=tag_mnist@../mnist': modelDir '../mnist': name the app's "
            "assets folder of the model (letters, digits, '.', '_', '-', folders joined by '/')",
            id="model-dir-escapes",
        ),
        pytest.param(
            "72:12134=tag_mnist@$1",
            "--aoe-model '72:12134=tag_mnist@$1': modelDir '$1': name the app's assets folder "
            "of the model (letters, digits, '.', '_', '-', folders joined by '/')",
            id="model-dir-java-replacement-syntax",
        ),
    ],
)
def test_a_bad_mapping_is_a_usage_error(spec: str, message: str) -> None:
    with pytest.raises(UsageError) as e:
        AoeMapping.parse([spec])
    assert e.value.message == message


def test_a_pair_mapped_twice_is_refused() -> None:
    with pytest.raises(UsageError) as e:
        AoeMapping.parse(["72:12134=tag_a", "72:12134=tag_b"])
    assert e.value.message == "--aoe-model 72:12134 is given twice (tag_a and tag_b)"


def test_a_model_dir_defaults_to_the_tag_as_migrate_names_tags() -> None:
    assert parse_aoe_model("1:2=mnist").model_dir == "mnist"


def test_the_bridge_needs_an_http_url_for_its_zips(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as e:
        AoeBridge(AoeMapping({}), zip_dir=tmp_path, public_base_url="ftp://x/zips")
    assert e.value.message == (
        "the AoE zips' public URL 'ftp://x/zips' must be an http(s) URL without a query or fragment"
    )


# --- the request ---------------------------------------------------------------------


def test_a_request_as_the_android_sdk_sends_it_is_read() -> None:
    assert parse_request(_body()) == AoeRequest(
        app_id=72,
        model_id=12134,
        model_version_code="1.0.0",
        version=Version.parse("1.0.0"),
        device_sn="864394010742586",
        device_type="Pixel 8",
        k_lat=30.28,
        k_lng=120.15,
        timestamp=1_767_225_600_000,
        sign="9c1185a5c5e9fc54612808977ee8f548",
    )


def test_fields_the_sdk_may_leave_out_are_optional_and_unknown_ones_ignored() -> None:
    body = _body(kLat=_DROP, kLng=_DROP, deviceType=_DROP, timeStamp=_DROP, sign=_DROP, x=[1])
    parsed = parse_request(body)
    assert isinstance(parsed, AoeRequest)
    assert (parsed.k_lat, parsed.device_type, parsed.timestamp, parsed.sign) == (
        None,
        None,
        None,
        None,
    )


def test_a_bare_version_is_read_as_migrate_reads_it() -> None:
    body = _body(modelVersionCode="@").replace(b'"@"', b"0.0.1")
    parsed = parse_request(body)
    assert isinstance(parsed, AoeRequest)
    assert (parsed.model_version_code, parsed.version) == ("0.0.1", Version.parse("0.0.1"))


HOSTILE = [
    pytest.param(
        b"{",
        400,
        "the body is not JSON: Expecting property name enclosed in double quotes at character 1",
        id="malformed-json",
    ),
    pytest.param(b"", 400, "the body is not JSON: Expecting value at character 0", id="empty"),
    pytest.param(b" " * 16385, 413, "the body is over 16384 bytes", id="huge"),
    pytest.param(
        b"[" * 8000 + b"]" * 8000,
        400,
        "the body is not JSON: nested too deeply",
        id="deeply-nested",
    ),
    pytest.param(b'{"appId": "\xff"}', 400, "the body is not UTF-8", id="not-utf8"),
    pytest.param(b"[]", 400, "the body must be a JSON object, not an array", id="array"),
    pytest.param(b"null", 400, "the body must be a JSON object, not null", id="null"),
    pytest.param(
        _body()[:-1] + b', "appId": 73}', 400, "the key 'appId' appears twice", id="repeated-key"
    ),
    pytest.param(
        _body(kLat="@").replace(b'"@"', b"NaN"),
        400,
        "the body is not JSON: NaN is no JSON number",
        id="nan",
    ),
    pytest.param(
        _body(kLat="@").replace(b'"@"', b"1e999"),
        400,
        "kLat is out of range",
        id="infinite-latitude",
    ),
    pytest.param(
        _body(appId="72"),
        400,
        "appId must be a whole number (AoE sends a long), not a string",
        id="app-id-as-string",
    ),
    pytest.param(
        _body(appId=True),
        400,
        "appId must be a whole number (AoE sends a long), not a boolean",
        id="app-id-boolean",
    ),
    pytest.param(
        _body(modelId=12134.0),
        400,
        "modelId must be a whole number (AoE sends a long), not a number",
        id="model-id-float",
    ),
    pytest.param(
        _body(modelId=-1),
        400,
        "modelId -1 is out of range: 0 to 9223372036854775807",
        id="model-id-negative",
    ),
    pytest.param(
        _body(modelId=2**63),
        400,
        "modelId 9223372036854775808 is out of range: 0 to 9223372036854775807",
        id="model-id-beyond-a-long",
    ),
    pytest.param(_body(appId=_DROP), 400, "appId is missing", id="no-app-id"),
    pytest.param(
        _body(modelVersionCode=_DROP),
        400,
        "modelVersionCode is missing: the version of the model AoE runs",
        id="no-version",
    ),
    pytest.param(
        _body(modelVersionCode=100),
        400,
        "modelVersionCode must be a string, not a number",
        id="version-as-number",
    ),
    pytest.param(
        _body(modelVersionCode="1.0"),
        400,
        "modelVersionCode '1.0' is not a semantic version; AoE apps that run one get no update",
        id="version-not-semver",
    ),
    pytest.param(
        _body(modelVersionCode="1" * 129),
        400,
        "modelVersionCode must be a semver string of at most 128 characters; AoE apps "
        "that run one get no update",
        id="version-too-long",
    ),
    pytest.param(
        _body(deviceSN=_DROP),
        400,
        "deviceSN is missing: it places the device in rollouts",
        id="no-device-sn",
    ),
    pytest.param(
        _body(deviceSN="  "),
        400,
        "deviceSN is empty or holds control characters: every device would fall in the "
        "same rollout bucket",
        id="blank-device-sn",
    ),
    pytest.param(
        _body(deviceSN="a\nb"),
        400,
        "deviceSN is empty or holds control characters: every device would fall in the "
        "same rollout bucket",
        id="device-sn-with-newline",
    ),
    pytest.param(
        _body(deviceSN=86439401),
        400,
        "deviceSN must be a string, not a number",
        id="device-sn-as-number",
    ),
    pytest.param(
        _body(deviceSN="x" * 257), 400, "deviceSN is over 256 characters", id="device-sn-too-long"
    ),
    pytest.param(
        _body(kLng="120.15"), 400, "kLng must be a number, not a string", id="longitude-as-string"
    ),
    pytest.param(
        _body(timeStamp=1.5),
        400,
        "timeStamp must be a whole number (AoE sends a long), not a number",
        id="timestamp-float",
    ),
    pytest.param(
        _body(sign={"a": 1}), 400, "sign must be a string, not an object", id="sign-object"
    ),
    pytest.param(
        _body(deviceSN="@").replace(b'"@"', b"1.2.3"),
        400,
        "the body is not JSON: Expecting ',' delimiter at character 107",
        id="bare-version-outside-modelVersionCode",
    ),
]


@pytest.mark.parametrize(("body", "status", "message"), HOSTILE)
def test_a_hostile_body_is_refused(body: bytes, status: int, message: str) -> None:
    assert parse_request(body) == Refusal(status, message)


@pytest.mark.parametrize(("body", "status", "message"), HOSTILE)
def test_the_bridge_answers_a_hostile_body_with_aoe_s_failure_form(
    body: bytes, status: int, message: str, tmp_path: Path
) -> None:
    bridge = AoeBridge(
        AoeMapping.parse(["72:12134=tag_mnist"]),
        zip_dir=tmp_path,
        public_base_url="https://models.example.com/aoe",
    )
    manifest = Manifest(version=1, expires=dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    no_store: Any = None  # never reached: a refused body decides nothing
    assert bridge.answer(manifest, no_store, body, root=no_store) == (
        status,
        {"code": status, "msg": message, "data": None},
    )


# --- AoE's comparison ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("v1", "v2", "sign"),
    [
        ("1.0.9", "1.0.10", 1),  # other lengths: the first is "above"
        ("1.0.10", "1.0.9", 1),
        ("1.0.1", "1.2.0", -1),  # equal lengths: as text
        ("1.2.0", "1.0.1", 1),
        ("1.1.0", "1.1.0", 0),
        ("9.9.9", "10.0.0", 1),
    ],
)
def test_aoe_compares_versions_as_its_kotlin_loader_does(v1: str, v2: str, sign: int) -> None:
    result = aoe_compare(v1, v2)
    assert (result > 0) - (result < 0) == sign
