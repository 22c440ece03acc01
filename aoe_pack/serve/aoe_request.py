"""What the AoE bridge reads: the ``--aoe-model`` mapping and AoE's upgrade request.

AoE's Android SDK (github.com/didi/AoE, ``Android/aoe/service``) builds its
request in ``ModelContract.buildBodyMap`` and ``HttpManager`` as a Gson map:
``appId`` and ``modelId`` are Java longs (JSON numbers), ``modelVersionCode``
the running config's ``version`` (a string), ``kLat``/``kLng`` doubles,
``timeStamp`` a long, and ``deviceSN``, ``deviceType`` and ``sign`` strings.
:func:`parse_request` holds a body to exactly that; a request it refuses gets
a :class:`Refusal`, never an exception.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aoe_pack.config.legacy import repair_text
from aoe_pack.errors import UsageError, VersionError
from aoe_pack.serve.legacy_zip import AoeTarget
from aoe_pack.versions import Version

BAD_REQUEST = 400
NOT_MAPPED = 404
TOO_LARGE = 413
CANNOT_SERVE = 502
"""Codes of refusals: each is also the HTTP status the bridge answers with."""

_MAX_LONG = 2**63 - 1
_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SPEC = re.compile(r"(?P<app>[^:=@]*):(?P<model>[^:=@]*)=(?P<tag>[^@]*)(?:@(?P<dir>.*))?")
_FORM = "write APPID:MODELID=TAG or APPID:MODELID=TAG@MODELDIR, e.g. 72:12134=tag_mnist@mnist"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, kw_only=True)
class BridgeLimits:
    """Bounds on what the bridge reads and keeps."""

    max_body_bytes: int = 16 * 1024
    """AoE's requests are about 300 bytes."""
    max_text: int = 256
    """Longest ``deviceSN``, ``deviceType`` or ``sign``."""
    retry_after: float = 60.0
    """Seconds a release that could not be served is answered from memory, not retried."""
    max_remembered: int = 4096
    """Zips (and failures) remembered in memory; the zips on disk stay."""


DEFAULT_LIMITS = BridgeLimits()


# --- the mapping ---------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AoeModel:
    """One ``--aoe-model``: AoE's ids of a model, and our tag for it."""

    app_id: int
    model_id: int
    tag: str
    model_dir: str
    """AoE's ``modelDir`` of the model in the app (``@MODELDIR``; default: the tag)."""

    @property
    def target(self) -> AoeTarget:
        return AoeTarget(model_id=self.model_id, model_dir=self.model_dir)


def parse_aoe_model(spec: str, *, what: str = "--aoe-model") -> AoeModel:
    """``APPID:MODELID=TAG[@MODELDIR]`` as typed, else a :class:`UsageError` saying why.

    APPID is ``server.config``'s ``appId`` and MODELID the ``modelId`` of the
    model's ``model.config``, both decimal. MODELDIR is that config's
    ``modelDir``, the folder AoE downloads to and loads from; it defaults to
    the tag, which is what ``aoe-pack migrate`` names a tag after.
    """
    m = _SPEC.fullmatch(spec)
    if m is None:
        raise UsageError(f"{what} {spec!r}: {_FORM}")
    ids = []
    for part, name, where in (
        (m["app"], "APPID", "server.config's appId"),
        (m["model"], "MODELID", "the modelId of the model's model.config"),
    ):
        if not (part.isascii() and part.isdigit()) or int(part) > _MAX_LONG:
            raise UsageError(f"{what} {spec!r}: {name} must be {where}, a decimal number")
        ids.append(int(part))
    tag = m["tag"]
    if not _TAG.fullmatch(tag):
        raise UsageError(
            f"{what} {spec!r}: {tag!r} is not a tag (letters, digits, '.', '_', '-')",
            hint="`aoe-pack manifest show` lists the published tags",
        )
    model_dir = tag if m["dir"] is None else m["dir"]
    try:
        AoeTarget(model_id=ids[1], model_dir=model_dir)
    except UsageError as e:
        raise UsageError(f"{what} {spec!r}: {e.message}", hint=e.hint) from e
    return AoeModel(app_id=ids[0], model_id=ids[1], tag=tag, model_dir=model_dir)


@dataclass(frozen=True)
class AoeMapping:
    """AoE's (appId, modelId) pairs and the models they stand for."""

    models: Mapping[tuple[int, int], AoeModel]

    @classmethod
    def parse(cls, specs: Iterable[str], *, what: str = "--aoe-model") -> AoeMapping:
        """Each spec as :func:`parse_aoe_model` reads it; a pair given twice is refused."""
        models: dict[tuple[int, int], AoeModel] = {}
        for spec in specs:
            model = parse_aoe_model(spec, what=what)
            key = (model.app_id, model.model_id)
            if key in models:
                raise UsageError(
                    f"{what} {model.app_id}:{model.model_id} is given twice "
                    f"({models[key].tag} and {model.tag})",
                    hint="one AoE model id answers from one tag",
                )
            models[key] = model
        return cls(models)

    def get(self, app_id: int, model_id: int) -> AoeModel | None:
        return self.models.get((app_id, model_id))


# --- the request ---------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AoeRequest:
    """An AoE upgrade request, its fields typed as the Android SDK sends them."""

    app_id: int
    model_id: int
    model_version_code: str
    """The running version as sent (AoE compares this text)."""
    version: Version
    """The same, read as ``aoe-pack migrate`` reads AoE's versions (semver, bare ones quoted)."""
    device_sn: str
    device_type: str | None = None
    k_lat: float | None = None
    k_lng: float | None = None
    timestamp: int | None = None
    sign: str | None = None
    """Accepted and ignored: AoE's signing algorithm was never published."""


@dataclass(frozen=True)
class Refusal:
    """Why a request gets no decision: an AoE ``code`` (and HTTP status) and a message."""

    code: int
    message: str


class _MalformedError(ValueError):
    pass


def parse_request(body: bytes, limits: BridgeLimits = DEFAULT_LIMITS) -> AoeRequest | Refusal:
    """The request in ``body``, or the :class:`Refusal` naming its first fault.

    Strict: a UTF-8 JSON object without repeated keys or NaN; ``appId``,
    ``modelId``, ``modelVersionCode`` and ``deviceSN`` present; every field
    of the SDK's of its JSON type (numbers as numbers, not strings). Keys
    the SDK does not send are ignored. AoE once shipped a config with
    ``"version": 0.0.1``, not JSON: a bare version as ``modelVersionCode``
    is read as ``aoe-pack migrate`` reads it, and nowhere else.
    """
    if len(body) > limits.max_body_bytes:
        return Refusal(TOO_LARGE, f"the body is over {limits.max_body_bytes} bytes")
    try:
        doc = _json(body.decode("utf-8"))
        if not isinstance(doc, dict):
            raise _MalformedError(f"the body must be a JSON object, not {_kind(doc)}")  # noqa: TRY301
        return _request(doc, limits)
    except UnicodeDecodeError:
        return Refusal(BAD_REQUEST, "the body is not UTF-8")
    except RecursionError:
        return Refusal(BAD_REQUEST, "the body is not JSON: nested too deeply")
    except _MalformedError as e:
        return Refusal(BAD_REQUEST, str(e))


def _json(text: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_object, parse_constant=_constant)
    except json.JSONDecodeError as e:
        repaired = repair_text(text)
        if len(repaired.values) != 1 or not re.search(
            r'"modelVersionCode"\s*:\s*$', repaired.text[: repaired.values[0][0]]
        ):
            raise _MalformedError(f"the body is not JSON: {e.msg} at character {e.pos}") from e
        try:
            return json.loads(repaired.text, object_pairs_hook=_object, parse_constant=_constant)
        except json.JSONDecodeError:
            raise _MalformedError(f"the body is not JSON: {e.msg} at character {e.pos}") from e


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for key, value in pairs:
        if key in doc:
            raise _MalformedError(f"the key {key!r} appears twice")
        doc[key] = value
    return doc


def _constant(name: str) -> Any:
    raise _MalformedError(f"the body is not JSON: {name} is no JSON number")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _request(doc: dict[str, Any], limits: BridgeLimits) -> AoeRequest:
    text = doc.get("modelVersionCode")
    if "modelVersionCode" not in doc:
        raise _MalformedError("modelVersionCode is missing: the version of the model AoE runs")
    if not isinstance(text, str):
        raise _MalformedError(f"modelVersionCode must be a string, not {_kind(text)}")
    try:
        version = Version.parse(text, what="modelVersionCode")
    except VersionError as e:
        raise _MalformedError(f"{e.message}; AoE apps that run one get no update") from e
    lat, lng = _number(doc, "kLat"), _number(doc, "kLng")
    return AoeRequest(
        app_id=_long(doc, "appId", required=True),
        model_id=_long(doc, "modelId", required=True),
        model_version_code=text,
        version=version,
        device_sn=_device_sn(doc, limits),
        device_type=_text(doc, "deviceType", limits),
        k_lat=lat,
        k_lng=lng,
        timestamp=_long(doc, "timeStamp"),
        sign=_text(doc, "sign", limits),
    )


def _long(doc: dict[str, Any], key: str, *, required: bool = False) -> Any:
    if key not in doc:
        if required:
            raise _MalformedError(f"{key} is missing")
        return None
    value = doc[key]
    if type(value) is not int:
        raise _MalformedError(
            f"{key} must be a whole number (AoE sends a long), not {_kind(value)}"
        )
    if not 0 <= value <= _MAX_LONG:
        raise _MalformedError(f"{key} {value} is out of range: 0 to {_MAX_LONG}")
    return value


def _number(doc: dict[str, Any], key: str) -> float | None:
    if key not in doc:
        return None
    value = doc[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _MalformedError(f"{key} must be a number, not {_kind(value)}")
    if not math.isfinite(value):  # a huge literal becomes inf
        raise _MalformedError(f"{key} is out of range")
    return float(value)


def _text(doc: dict[str, Any], key: str, limits: BridgeLimits) -> str | None:
    if key not in doc:
        return None
    value = doc[key]
    if not isinstance(value, str):
        raise _MalformedError(f"{key} must be a string, not {_kind(value)}")
    if len(value) > limits.max_text:
        raise _MalformedError(f"{key} is over {limits.max_text} characters")
    return value


def _device_sn(doc: dict[str, Any], limits: BridgeLimits) -> str:
    if "deviceSN" not in doc:
        raise _MalformedError("deviceSN is missing: it places the device in rollouts")
    value = _text(doc, "deviceSN", limits)
    assert value is not None
    if not value.strip() or _CONTROL.search(value):
        raise _MalformedError(
            "deviceSN is empty or holds control characters: every device would fall in the "
            "same rollout bucket"
        )
    return value
