"""DSSE v1 signatures: the one signing loop and signature list of aoe-pack.

Bundles keep their signatures apart from the signed bytes
(:mod:`aoe_pack.bundle.signatures`); repository documents carry them in an
attached envelope (:mod:`aoe_pack.repository.envelope`). Both sign the DSSE
pre-authentication encoding of (payload type, payload) with Ed25519 or
deterministic ECDSA P-256, name each key by the SHA-256 of its SPKI DER, and
write the signatures as ``[{"keyid": hex, "sig": base64}, ...]`` sorted by key id,
one per key. This module is that shared part; the container around it is each
caller's.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aoe_pack._crypto import sign as _sign
from aoe_pack.errors import SignatureError, UsageError
from aoe_pack.keys import PublicKey
from aoe_pack.keys.signer import SigningKey, sign_with

_KEYID = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Signature:
    """One signature and the id of the key that made it."""

    keyid: str
    sig: bytes


def sign(payload_type: str, payload: bytes, keys: Sequence[SigningKey]) -> tuple[Signature, ...]:
    """Signatures of ``payload`` by every key in ``keys``, sorted by key id.

    A key held by an HSM or KMS signs through its :class:`~aoe_pack.keys.signer.Signer`.
    """
    # Each signature is labelled with the id of the public key it verifies under,
    # never with what a signer object says its id is.
    ids = [k.public.key_id for k in keys]
    if len(set(ids)) != len(ids):
        raise UsageError("the same signing key was given twice")
    message = _sign.pae(payload_type, payload)
    return tuple(
        sorted(
            (Signature(keyid, sign_with(k, message)) for keyid, k in zip(ids, keys, strict=True)),
            key=lambda s: s.keyid,
        )
    )


def valid_keyids(
    payload_type: str, payload: bytes, sigs: Sequence[Signature], keys: Mapping[str, PublicKey]
) -> set[str]:
    """Ids of the keys in ``keys`` whose signature over ``payload`` verifies."""
    message = _sign.pae(payload_type, payload)
    return {
        s.keyid
        for s in sigs
        if (k := keys.get(s.keyid)) is not None and _sign.verify(k, s.sig, message)
    }


def encode_signatures(sigs: Sequence[Signature]) -> list[dict[str, str]]:
    """The JSON form of a ``signatures`` array."""
    return [{"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode()} for s in sigs]


def parse_signatures(raw: Any, *, max_signatures: int) -> list[Signature]:
    """A DSSE ``signatures`` array: non-empty, capped, one per key, sorted by key id."""
    if not isinstance(raw, list) or not raw:
        raise SignatureError("the envelope holds no signatures")
    if len(raw) > max_signatures:
        raise SignatureError(f"{len(raw)} signatures exceed the limit of {max_signatures}")
    sigs = [_parse_signature(item) for item in raw]
    keyids = [s.keyid for s in sigs]
    if len(set(keyids)) != len(keyids):
        dup = next(k for k in keyids if keyids.count(k) > 1)
        raise SignatureError(f"key {dup[:16]}… signed more than once; each key counts once")
    if keyids != sorted(keyids):
        raise SignatureError("signatures must be sorted by key id")
    return sigs


def _parse_signature(item: Any) -> Signature:
    if not isinstance(item, dict) or set(item) != {"keyid", "sig"}:
        raise SignatureError("each signature must hold exactly keyid and sig")
    keyid, sig = item["keyid"], item["sig"]
    if not isinstance(keyid, str) or not isinstance(sig, str):
        raise SignatureError("signature keyid and sig must be strings")
    if not _KEYID.fullmatch(keyid):
        raise SignatureError(f"signature key id {keyid[:70]!r} is not 64 lowercase hex digits")
    try:
        return Signature(keyid, base64.b64decode(sig, validate=True))
    except ValueError as e:  # binascii.Error, or non-ASCII text
        raise SignatureError(f"signature by {keyid[:16]}… is not valid base64") from e
