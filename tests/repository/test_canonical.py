"""The fast canonical forms are RFC 8785's bytes, as ``rfc8785`` writes them.

``canonical_json_integral`` takes ``json.dumps`` where it is provably JCS,
``Envelope.to_bytes`` puts the base64 payload in without the JSON encoder, and
a manifest read from a repository keeps each tag's bytes to sign them again
(``canonical_object``, ``canonical_manifest``, ``Manifest.canonical_json``).
Each is checked here against the ``rfc8785`` package on hostile and generated
documents: unicode (astral, BMP above the surrogates, keys sorting differently
in UTF-16), escapes and control characters, integers up to 2**53-1, and
nesting. ``loads_integral`` pauses the garbage collector: it must leave it as
it found it.
"""

from __future__ import annotations

import base64
import datetime as dt
import gc
import threading
from dataclasses import replace
from typing import Any

import pytest
import rfc8785
from _factories import make_root
from hypothesis import given, settings
from hypothesis import strategies as st
from test_model import golden_manifest

from aoe_pack import dsse
from aoe_pack._crypto import asymmetric as keys
from aoe_pack._jcs import (
    MAX_SAFE_INTEGER,
    canonical_json,
    canonical_json_integral,
    canonical_object,
)
from aoe_pack.dsse import Signature
from aoe_pack.errors import RepositoryFormatError
from aoe_pack.repository import envelope
from aoe_pack.repository.model import canonical_manifest
from aoe_pack.repository.trust import verify_manifest

# Characters that matter to JCS: escapes, controls, DEL, the BMP above the
# surrogates (U+E000-U+FFFF sorts below astral characters by UTF-16 code
# units, above them by code points), astral ones, and plain ASCII.
_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(['"', "\\", "/", "\b", "\f", "\n", "\r", "\t", "\x00", "\x1f", "\x7f"]),
        st.characters(min_codepoint=0x20, max_codepoint=0x7E),
        st.characters(min_codepoint=0x80, max_codepoint=0xD7FF),
        st.characters(min_codepoint=0xE000, max_codepoint=0xFFFF),
        st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF),
    ),
    max_size=12,
)
_INTS = st.one_of(
    st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER),
    st.sampled_from([0, -1, MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, 10**15, 2**31]),
)
_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), _INTS, _TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(_TEXT, inner, max_size=5)),
    max_leaves=40,
)

HOSTILE: list[Any] = [
    {"\ue000": 1, "\U0001f600": 2},  # code point order and UTF-16 order disagree
    {"b": 1, "a": {"d": [], "c": {}}, "": None},
    {"é": "e\u0301", "ascii": "\u2028\u2029"},
    ["\x00\x01\x1f\x7f", '"\\/', "\b\f\n\r\t"],
    {"n": [MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, 0, -0, 1]},
    [[[[[[[[[[[]]]]]]]]]]],
    "",
    {"k" * 300: "v" * 3000},
]


def _rfc8785(value: Any) -> bytes:
    out: bytes = rfc8785.dumps(value)
    return out


@pytest.mark.parametrize("value", HOSTILE)
def test_integral_canonical_form_is_rfc8785_on_hostile_documents(value: Any) -> None:
    assert canonical_json_integral(value) == _rfc8785(value)


@settings(max_examples=300, deadline=None)
@given(_JSON)
def test_integral_canonical_form_is_rfc8785_on_generated_documents(value: Any) -> None:
    assert canonical_json_integral(value) == _rfc8785(value)


_SIGNATURES = st.lists(
    st.builds(
        Signature,
        keyid=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
        sig=st.binary(max_size=80),
    ),
    max_size=3,
)


@settings(max_examples=400, deadline=None)
@given(payload=st.binary(max_size=300), payload_type=_TEXT, signatures=_SIGNATURES)
def test_envelope_bytes_are_rfc8785_of_the_envelope(
    payload: bytes, payload_type: str, signatures: list[Signature]
) -> None:
    env = envelope.Envelope(payload_type, payload, tuple(signatures))
    whole = {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": payload_type,
        "signatures": dsse.encode_signatures(signatures),
    }
    assert env.to_bytes() == _rfc8785(whole)


def test_envelope_of_a_payload_type_without_utf8_form_is_refused_as_before() -> None:
    """A lone surrogate has no UTF-8 bytes: no canonical form to write, as with the encoder."""
    env = envelope.Envelope("type/\ud800", b"{}", ())
    with pytest.raises(UnicodeEncodeError):
        env.to_bytes()


def test_parse_leaves_the_collector_on() -> None:
    assert gc.isenabled()
    envelope.loads_integral(b'{"a":[1,2,{"b":null}]}')
    assert gc.isenabled()


def test_parse_that_fails_leaves_the_collector_on() -> None:
    with pytest.raises(ValueError, match="beyond 2"):
        envelope.loads_integral(b"[9007199254740992]")
    assert gc.isenabled()
    data = envelope.Envelope("t", b"[9007199254740992]", ()).to_bytes()
    with pytest.raises(RepositoryFormatError, match="is beyond 2"):
        envelope.parse(data, "t", what="doc", unsigned=True)
    assert gc.isenabled()


def test_parse_leaves_a_collector_turned_off_by_the_caller_off() -> None:
    gc.disable()
    try:
        envelope.loads_integral(b"[1]")
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_parses_in_threads_leave_the_collector_on() -> None:
    document = b"[" + b",".join(b'{"a":[1,2,3]}' for _ in range(20_000)) + b"]"
    errors: list[BaseException] = []

    def parse() -> None:
        try:
            for _ in range(3):
                envelope.loads_integral(document)
        except BaseException as e:  # noqa: BLE001 - reported to the test below
            errors.append(e)

    threads = [threading.Thread(target=parse) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert gc.isenabled()


# --- a manifest's tags, encoded once --------------------------------------------------------

_NAMES = st.one_of(_TEXT, st.sampled_from(["models", "keyboard-lm", "\ue000", "\U0001f600"]))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_NAMES, _JSON, max_size=6))
def test_an_object_of_canonical_members_is_rfc8785(value: dict[str, Any]) -> None:
    members = {name: canonical_json_integral(v) for name, v in value.items()}
    assert canonical_object(members) == _rfc8785(value)


_MANIFESTS = st.one_of(
    _JSON,
    st.fixed_dictionaries(
        {"models": st.dictionaries(_NAMES, _JSON, max_size=4)},
        optional={"version": _INTS, "x-extra": _JSON, "\U0001f600": _JSON, "_type": _TEXT},
    ),
)


@settings(max_examples=200, deadline=None)
@given(_MANIFESTS)
def test_canonical_manifest_is_rfc8785_and_keeps_each_tag(document: Any) -> None:
    entries: dict[str, bytes] = {}
    assert canonical_manifest(document, entries) == _rfc8785(document)
    models = document.get("models") if isinstance(document, dict) else None
    if isinstance(models, dict):
        assert entries == {tag: _rfc8785(entry) for tag, entry in models.items()}
    else:
        assert entries == {}


def test_a_parsed_manifest_signs_the_bytes_it_was_read_from() -> None:
    """Read through verify_manifest, then unchanged, read, edited, bumped: each time the
    bytes to sign are canonical_json of the document, and untouched tags are reused."""
    signer = keys.generate(keys.KeyKind.ED25519)
    root = make_root(1, [signer.public])
    doc = golden_manifest().to_dict()
    doc["models"]["zz.tag"] = {"releases": [], "x-note": "caf\u00e9 \u2028 \U0001f600"}
    data = envelope.sign(envelope.MANIFEST_TYPE, doc, [signer]).to_bytes()
    verified = verify_manifest(data, root, now=dt.datetime(2029, 1, 1, tzinfo=dt.UTC))
    m = verified.manifest
    payload = envelope.parse(data, envelope.MANIFEST_TYPE, what="m").payload
    assert m.canonical_json() == payload == canonical_json(m.to_dict())
    assert m.models["keyboard-lm"].releases  # read: parsed, the raw bytes no longer used
    assert m.canonical_json() == payload
    scenes = m.models["scene_cls"]
    edited = m.models.updated("scene_cls", replace(scenes, pin=None))
    new = m.bump(expires=m.expires, models=edited, bundle_keys={"k": "pem"})
    assert new.canonical_json() == canonical_json(new.to_dict()) == _rfc8785(new.to_dict())
    assert new.canonical_json() != payload
