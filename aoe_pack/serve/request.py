"""A decision request: JSON in, the device ``client check`` would describe.

The members are ``client check``'s options (docs/serve.md)::

    {"tag": "tag_mnist", "installedVersion": "1.0.0", "localVersion": "1.0.0",
     "appVersion": "3.2.0", "deviceId": "3f1c...", "runtimes": ["tflite"],
     "channels": ["stable"]}

``tag``, ``installedVersion``, ``appVersion`` and ``deviceId`` are required, as
the options are; ``localVersion`` defaults to ``installedVersion``, ``runtimes``
to every runtime and ``channels`` to ``stable``, as ``client check`` does. Each
value is checked by the function that checks the option (a version, a
channel, a runtime name), so a request the command line would refuse is
refused here too, as a :class:`~aoe_pack.errors.RequestError` naming the
member. Unknown members are refused, not ignored: a typo (``appversion``)
would otherwise decide for another device than the one meant.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any

from aoe_pack.client.decide import Device
from aoe_pack.errors import RequestError, UsageError
from aoe_pack.publish.names import check_channel, check_runtime, cli_version

ALL_RUNTIMES = ("tflite", "onnx", "ort", "mnn", "ncnn")
"""A device's runtimes when the request names none (``client check``'s default)."""

_STRINGS = ("tag", "installedVersion", "localVersion", "appVersion", "deviceId")
_LISTS = ("runtimes", "channels")
MEMBERS = (*_STRINGS, *_LISTS)
REQUIRED = ("tag", "installedVersion", "appVersion", "deviceId")
MAX_LIST = 64
"""Runtimes or channels in one request: far more than any device has."""


@dataclass(frozen=True)
class DecisionRequest:
    """Which tag, for which device."""

    tag: str
    device: Device


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise RequestError(f"the member {key!r} appears twice")
        seen[key] = value
    return seen


def parse_request(body: bytes) -> DecisionRequest:
    """The request in ``body``, checked (module docstring); :class:`RequestError` if not."""
    try:
        doc = json.loads(body.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError as e:
        raise RequestError("the body is not UTF-8 text", hint="send JSON") from e
    except (ValueError, RecursionError) as e:  # also a number too long, nesting too deep
        raise RequestError(
            f"the body is not JSON: {e}", hint="send one JSON object (module docs)"
        ) from e
    if not isinstance(doc, dict):
        raise RequestError(f"the body must be a JSON object, not {type(doc).__name__}")
    _check_members(doc)
    try:
        device = device_for(
            device_id=doc["deviceId"],
            app_version=doc["appVersion"],
            runtimes=tuple(doc.get("runtimes", ())),
            channels=tuple(doc.get("channels", ())),
            local_version=doc.get("localVersion") or doc["installedVersion"],
            installed_version=doc["installedVersion"],
        )
    except UsageError as e:  # the option's own check, the member named in its message
        raise RequestError(e.message, hint=e.hint) from e
    return DecisionRequest(doc["tag"], device)


def _check_members(doc: dict[str, Any]) -> None:
    """Every member known, the required ones there, each of its type."""
    for key in doc:
        if key not in MEMBERS:
            close = difflib.get_close_matches(key, MEMBERS, n=1)
            raise RequestError(
                f"unknown member {key!r}",
                hint=f"did you mean {close[0]!r}?"
                if close
                else f"the members are {', '.join(MEMBERS)}",
            )
    missing = [k for k in REQUIRED if k not in doc]
    if missing:
        raise RequestError(f"the member {missing[0]!r} is required")
    for key in _STRINGS:
        if key in doc and not isinstance(doc[key], str):
            raise RequestError(f"{key} must be a string, not {_kind(doc[key])}")
    for key in _LISTS:
        value = doc.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise RequestError(f"{key} must be a list of strings")
        if key in doc and not value:
            raise RequestError(f"{key} is empty", hint=f"leave {key} out for the default")
        if len(value) > MAX_LIST:
            raise RequestError(f"{key} has {len(value)} entries; at most {MAX_LIST} are taken")


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def device_for(
    *,
    device_id: str,
    app_version: str,
    runtimes: tuple[str, ...],
    channels: tuple[str, ...],
    local_version: str,
    installed_version: str | None,
) -> Device:
    """The :class:`Device` ``client check`` builds from the same values (its ``_device``)."""
    if installed_version:
        cli_version(installed_version, "installedVersion")
    for text, what in ((app_version, "appVersion"), (local_version, "localVersion")):
        cli_version(text, what)
    if not device_id.strip():
        raise UsageError(
            "deviceId is empty: every device would fall in the same rollout bucket",
            hint="send a stable per-install id (e.g. a random UUID kept by the app)",
        )
    for channel in channels:
        check_channel(channel, "channels:")
    for runtime in runtimes:
        check_runtime(runtime, "runtimes:")
    return Device(
        device_id=device_id,
        app_version=app_version,
        runtimes=frozenset(runtimes or ALL_RUNTIMES),
        channels=channels or ("stable",),
        local_version=local_version,
        installed_version=(
            installed_version if installed_version and installed_version != local_version else None
        ),
    )
