"""Attached DSSE envelopes for the repository's root and manifest.

The bundle keeps its signatures apart from its manifest (``aoe/signatures.json``);
a repository document is a single file, so that one atomic write replaces
document and signatures together:

    {"payload": base64(canonical JSON), "payloadType": ..., "signatures": [...]}

in RFC 8785 canonical form, signatures sorted by key id. Signing and key ids
are exactly those of bundles (DSSE v1 PAE; Ed25519 or deterministic ECDSA P-256).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aoe_pack._crypto import sign as _sign
from aoe_pack._crypto.asymmetric import PrivateKey, PublicKey
from aoe_pack._jcs import canonical_json_integral as canonical_json
from aoe_pack._jcs import json_values_beyond
from aoe_pack._quote import quote_json
from aoe_pack.bundle.dsse import Signature, parse_signature_list
from aoe_pack.errors import (
    RepositoryFormatError,
    SignatureError,
    UntrustedMetadataError,
    UsageError,
)

MANIFEST_TYPE = "application/vnd.aoe.repository.manifest.v1+json"
ROOT_TYPE = "application/vnd.aoe.repository.root.v1+json"
MAX_SIGNATURES = 32
MAX_ENVELOPE_VALUES = 1_000
"""JSON values an envelope may hold: 7, and 5 per signature (167 at most); the rest is slack.

Counted before parsing, as every document here comes from a repository not yet trusted.
"""
MAX_DOCUMENT_VALUES = 2_000_000
"""JSON values a signed root or manifest may hold, counted before parsing.

A release is ~35 values in ~450 bytes, so 2 million is what the 32 MiB envelope
cap holds of honest releases (~55 000); it keeps a payload of ``{}`` (3 bytes of
JSON, 64 of dict) from becoming gigabytes of objects.
"""
MAX_SAFE_INTEGER = 2**53 - 1
"""Integers beyond this lose precision in JavaScript and in RFC 8785; refused."""


def _no_float(text: str) -> Any:
    raise ValueError(f"floating-point number {text[:40]} (repository documents hold none)")


def _safe_int(text: str) -> int:
    value = int(text)
    if abs(value) > MAX_SAFE_INTEGER:
        raise ValueError(f"integer {text[:40]} is beyond 2**53-1")
    return value


def _canonical_or_none(make: Callable[[], bytes]) -> bytes | None:
    # JSON text may hold a lone surrogate ("\\ud800") that no UTF-8 encoder takes:
    # such a document has no canonical form, so it cannot match the signed bytes.
    try:
        return make()
    except (UnicodeError, ValueError, RecursionError):
        return None


def loads_integral(data: bytes) -> Any:
    """``json.loads`` that refuses floats and unsafe integers (see canonical_json_integral)."""
    return json.loads(data, parse_float=_no_float, parse_int=_safe_int, parse_constant=_no_float)


@dataclass(frozen=True)
class Envelope:
    """A parsed envelope: the signed payload bytes and who signed them."""

    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]
    body: Any = field(default=None, compare=False, repr=False)
    """The parsed payload, when :func:`parse` already has it."""

    def to_bytes(self) -> bytes:
        return canonical_json(
            {
                "payload": base64.b64encode(self.payload).decode(),
                "payloadType": self.payload_type,
                "signatures": [
                    {"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode()}
                    for s in self.signatures
                ],
            }
        )

    def document(self) -> Any:
        """The payload as JSON (it was checked to be canonical when parsed)."""
        return self.body if self.body is not None else loads_integral(self.payload)

    def valid_keyids(self, keys: dict[str, PublicKey]) -> set[str]:
        """Ids of the keys in ``keys`` whose signature over the payload verifies."""
        message = _sign.pae(self.payload_type, self.payload)
        return {
            s.keyid
            for s in self.signatures
            if (k := keys.get(s.keyid)) is not None and _sign.verify(k, s.sig, message)
        }


def sign(payload_type: str, document: Any, keys: list[PrivateKey]) -> Envelope:
    """Canonicalise ``document`` and sign it with every key in ``keys``."""
    if not keys:
        raise UsageError("at least one --sign-key is needed")
    ids = [k.key_id for k in keys]
    if len(set(ids)) != len(ids):
        raise UsageError("the same signing key was given twice")
    payload = canonical_json(document)
    message = _sign.pae(payload_type, payload)
    sigs = sorted(
        (Signature(k.key_id, _sign.sign(k, message)) for k in keys), key=lambda s: s.keyid
    )
    return Envelope(payload_type, payload, tuple(sigs))


def _check_values(text: bytes, limit: int, what: str) -> None:
    values = json_values_beyond(text, limit)
    if values is not None:
        raise RepositoryFormatError(f"{what} holds {values} JSON values; the limit is {limit}")


def parse(data: bytes, payload_type: str, *, what: str) -> Envelope:
    """Parse an envelope strictly: canonical bytes, the expected type, canonical payload."""
    _check_values(data, MAX_ENVELOPE_VALUES, what)
    try:
        doc: Any = json.loads(data)
    except (ValueError, RecursionError) as e:
        raise RepositoryFormatError(f"{what} is not valid JSON: {e}") from e
    if not isinstance(doc, dict) or set(doc) != {"payload", "payloadType", "signatures"}:
        raise RepositoryFormatError(
            f"{what} must be a DSSE envelope holding exactly payload, payloadType and signatures"
        )
    if doc["payloadType"] != payload_type:
        raise RepositoryFormatError(
            f"{what} has payloadType {quote_json(doc['payloadType'])}, "
            f"expected {quote_json(payload_type)}"
        )
    if not isinstance(doc["payload"], str):
        raise RepositoryFormatError(f"{what}: payload must be a base64 string")
    try:
        payload = base64.b64decode(doc["payload"], validate=True)
    except (binascii.Error, ValueError) as e:
        raise RepositoryFormatError(f"{what}: payload is not valid base64") from e
    try:
        sigs = parse_signature_list(doc["signatures"], max_signatures=MAX_SIGNATURES)
    except SignatureError as e:
        raise UntrustedMetadataError(f"{what}: {e}") from e
    env = Envelope(payload_type, payload, tuple(sigs))
    if _canonical_or_none(env.to_bytes) != data:
        raise RepositoryFormatError(f"{what} is not in canonical form (RFC 8785)")
    _check_values(payload, MAX_DOCUMENT_VALUES, f"{what}: the signed payload")
    try:
        body = loads_integral(payload)
    except (ValueError, RecursionError) as e:
        raise RepositoryFormatError(f"{what}: the signed payload is not valid JSON: {e}") from e
    if _canonical_or_none(lambda: canonical_json(body)) != payload:
        raise RepositoryFormatError(f"{what}: the signed payload is not canonical JSON")
    return Envelope(payload_type, payload, tuple(sigs), body)
