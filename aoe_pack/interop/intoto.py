"""in-toto Statement v1 in a DSSE envelope: the attestation layout other tools read.

A statement (https://github.com/in-toto/attestation, ``spec/v1/statement.md``)
names its subjects by digest and says something about them in a typed
predicate. It travels as the payload of a standard DSSE envelope of type
``application/vnd.in-toto+json``: ``{"payload": base64, "payloadType": ...,
"signatures": [{"keyid": ..., "sig": ...}]}``. aoe-pack signs the payload's
canonical bytes (RFC 8785) through :func:`aoe_pack.dsse.sign`, so a key held
by an HSM or KMS signs here as it signs bundles, with the same key ids.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aoe_pack import dsse
from aoe_pack._jcs import canonical_json
from aoe_pack._quote import quote_json
from aoe_pack.bundle.signatures import check_threshold
from aoe_pack.errors import SignatureError, ThresholdError
from aoe_pack.keys import PublicKey, SigningKey

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
MAX_ENVELOPE_SIGNATURES = 32


@dataclass(frozen=True, kw_only=True)
class Subject:
    """An artifact a statement is about: a name and its SHA-256."""

    name: str
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "digest": {"sha256": self.sha256}}


def statement(
    *, subjects: Sequence[Subject], predicate_type: str, predicate: Mapping[str, Any]
) -> dict[str, Any]:
    """An in-toto Statement v1 as a JSON object."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [s.to_dict() for s in subjects],
        "predicateType": predicate_type,
        "predicate": dict(predicate),
    }


def sign_statement(
    doc: Mapping[str, Any], keys: Sequence[SigningKey]
) -> tuple[bytes, dict[str, Any]]:
    """The statement's canonical bytes, and the DSSE envelope carrying them signed by ``keys``."""
    payload = canonical_json(dict(doc))
    sigs = dsse.sign(PAYLOAD_TYPE, payload, keys)
    envelope = {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": PAYLOAD_TYPE,
        "signatures": dsse.encode_signatures(sigs),
    }
    return payload, envelope


def open_envelope(
    data: bytes, *, trusted_keys: Sequence[PublicKey], threshold: int = 1
) -> dict[str, Any]:
    """The statement inside a DSSE envelope, once ``threshold`` trusted keys' signatures verify.

    Reads the envelopes :func:`sign_statement` writes (one per file, or one
    JSON line); raises :class:`SignatureError` for anything else or too few
    valid signatures.
    """
    by_id = check_threshold(trusted_keys, threshold)
    try:
        doc: Any = json.loads(data)
    except (ValueError, RecursionError) as e:
        raise SignatureError(f"the envelope is not JSON: {e}") from e
    if not isinstance(doc, dict) or set(doc) != {"payload", "payloadType", "signatures"}:
        raise SignatureError("a DSSE envelope holds exactly payload, payloadType and signatures")
    if doc["payloadType"] != PAYLOAD_TYPE:
        raise SignatureError(
            f"payloadType is {quote_json(doc['payloadType'])}, expected {quote_json(PAYLOAD_TYPE)}"
        )
    if not isinstance(doc["payload"], str):
        raise SignatureError("the envelope's payload must be a base64 string")
    try:
        payload = base64.b64decode(doc["payload"], validate=True)
    except ValueError as e:  # binascii.Error, or non-ASCII text
        raise SignatureError("the envelope's payload is not valid base64") from e
    sigs = dsse.parse_signatures(doc["signatures"], max_signatures=MAX_ENVELOPE_SIGNATURES)
    good = dsse.valid_keyids(PAYLOAD_TYPE, payload, sigs, by_id)
    if len(good) < threshold:
        raise ThresholdError(
            f"{len(good)} valid signature(s) by trusted keys, {threshold} required",
            hint="pass the signer's .pub; an invalid signature means the statement changed",
        )
    try:
        found: Any = json.loads(payload)
    except (ValueError, RecursionError) as e:
        raise SignatureError(f"the signed payload is not JSON: {e}") from e
    if not isinstance(found, dict) or found.get("_type") != STATEMENT_TYPE:
        raise SignatureError(f"the signed payload is not an in-toto statement ({STATEMENT_TYPE})")
    return found
