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
import contextlib
import gc
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from aoe_pack import dsse
from aoe_pack._jcs import MAX_SAFE_INTEGER, json_values_beyond
from aoe_pack._jcs import canonical_json_integral as canonical_json
from aoe_pack._quote import quote_json
from aoe_pack.dsse import Signature
from aoe_pack.errors import (
    RepositoryFormatError,
    SignatureError,
    UntrustedMetadataError,
    UsageError,
)
from aoe_pack.keys import PublicKey, SigningKey
from aoe_pack.repository.limits import DEFAULT_LIMITS, Limits

MANIFEST_TYPE = "application/vnd.aoe.repository.manifest.v1+json"
ROOT_TYPE = "application/vnd.aoe.repository.root.v1+json"
INDEX_TYPE = "application/vnd.aoe.repository.index.v1+json"
TAG_TYPE = "application/vnd.aoe.repository.tag.v1+json"


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
    with _collector_paused():
        return json.loads(
            data, parse_float=_no_float, parse_int=_safe_int, parse_constant=_no_float
        )


_pauses = 0
_pauses_lock = threading.Lock()


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside (other threads' pauses included).

    Parsing a manifest of 10,000 releases makes some 400,000 dicts and lists,
    and the collector, run every 700 new ones, walks the growing heap again
    and again, for nothing: a parse makes no reference cycles, so what it
    builds, kept or dropped, is freed by reference counts alone.
    """
    global _pauses  # noqa: PLW0603 - one count for the process, as the collector is one
    with _pauses_lock:
        ours = _pauses > 0 or gc.isenabled()  # else someone else turned it off: theirs
        if ours:
            _pauses += 1
            gc.disable()
    try:
        yield
    finally:
        if ours:
            with _pauses_lock:
                _pauses -= 1
                if _pauses == 0:
                    gc.enable()


@dataclass(frozen=True)
class Envelope:
    """A parsed envelope: the signed payload bytes and who signed them."""

    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]
    body: Any = field(default=None, compare=False, repr=False)
    """The parsed payload, when :func:`parse` already has it."""

    def to_bytes(self) -> bytes:
        """The envelope in canonical form (RFC 8785).

        The same bytes as ``canonical_json`` of the whole object, built without
        running the payload through the JSON encoder (8.5 MB of base64 at
        10,000 releases): its key sorts first ("payload" is a prefix of
        "payloadType"), and base64 text has no character JSON escapes.
        """
        rest = canonical_json(
            {
                "payloadType": self.payload_type,
                "signatures": dsse.encode_signatures(self.signatures),
            }
        )
        return b"".join((b'{"payload":"', base64.b64encode(self.payload), b'",', rest[1:]))

    def document(self) -> Any:
        """The payload as JSON (it was checked to be canonical when parsed)."""
        return self.body if self.body is not None else loads_integral(self.payload)

    def valid_keyids(self, keys: dict[str, PublicKey]) -> set[str]:
        """Ids of the keys in ``keys`` whose signature over the payload verifies."""
        return dsse.valid_keyids(self.payload_type, self.payload, self.signatures, keys)


def sign(payload_type: str, document: Any, keys: Sequence[SigningKey]) -> Envelope:
    """Canonicalise ``document`` and sign it with every key in ``keys``."""
    if not keys:
        raise UsageError("at least one --sign-key is needed")
    return sign_canonical(payload_type, canonical_json(document), keys)


def sign_canonical(payload_type: str, payload: bytes, keys: Sequence[SigningKey]) -> Envelope:
    """Sign ``payload``, which the caller made canonical, with every key in ``keys``."""
    if not keys:
        raise UsageError("at least one --sign-key is needed")
    return Envelope(payload_type, payload, dsse.sign(payload_type, payload, keys))


def _check_values(text: bytes, limit: int, what: str) -> None:
    values = json_values_beyond(text, limit)
    if values is not None:
        raise RepositoryFormatError(f"{what} holds {values} JSON values; the limit is {limit}")


def parse(
    data: bytes,
    payload_type: str,
    *,
    what: str,
    limits: Limits = DEFAULT_LIMITS,
    unsigned: bool = False,
    canonical: Callable[[Any], bytes] = canonical_json,
) -> Envelope:
    """Parse an envelope strictly: canonical bytes, the expected type, canonical payload.

    ``unsigned`` admits an empty ``signatures`` array: a proposed document
    (:mod:`aoe_pack.repository.proposal`) that no one has signed yet. Nothing
    a device or publisher reads from a repository is parsed so.
    ``canonical`` writes the parsed payload in canonical form, to compare: any
    function that returns ``canonical_json``'s bytes (one that keeps parts of
    them on the way, say).
    """
    _check_values(data, limits.max_envelope_values, what)
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
        sigs = (
            []
            if unsigned and doc["signatures"] == []
            else dsse.parse_signatures(doc["signatures"], max_signatures=limits.max_signatures)
        )
    except SignatureError as e:
        raise UntrustedMetadataError(f"{what}: {e}") from e
    env = Envelope(payload_type, payload, tuple(sigs))
    if _canonical_or_none(env.to_bytes) != data:
        raise RepositoryFormatError(f"{what} is not in canonical form (RFC 8785)")
    _check_values(payload, limits.max_document_values, f"{what}: the signed payload")
    try:
        body = loads_integral(payload)
    except (ValueError, RecursionError) as e:
        raise RepositoryFormatError(f"{what}: the signed payload is not valid JSON: {e}") from e
    if _canonical_or_none(lambda: canonical(body)) != payload:
        raise RepositoryFormatError(f"{what}: the signed payload is not canonical JSON")
    return Envelope(payload_type, payload, tuple(sigs), body)
