"""Detached DSSE signatures over the manifest.

``aoe/signatures.json`` is a DSSE envelope without its ``payload`` field:
``{"payloadType": ..., "signatures": [{"keyid": ..., "sig": ...}]}`` in
canonical JSON, signatures sorted by key id. The payload is the bytes of
``aoe/manifest.json``; put them back (base64) to get the standard envelope.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aoe_pack._crypto import sign as _sign
from aoe_pack._crypto.asymmetric import PrivateKey, PublicKey
from aoe_pack._jcs import canonical_json
from aoe_pack._quote import quote_json
from aoe_pack.bundle.format import PAYLOAD_TYPE, Limits
from aoe_pack.errors import SignatureError, ThresholdError, UsageError

_KEYID = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Signature:
    """One signature and the id of the key that made it."""

    keyid: str
    sig: bytes


def sign_manifest(manifest_bytes: bytes, keys: list[PrivateKey]) -> bytes:
    """The canonical ``aoe/signatures.json`` bytes for ``keys``."""
    ids = [k.key_id for k in keys]
    if len(set(ids)) != len(ids):
        raise UsageError("the same signing key was given twice")
    message = _sign.pae(PAYLOAD_TYPE, manifest_bytes)
    sigs = sorted(
        (Signature(k.key_id, _sign.sign(k, message)) for k in keys), key=lambda s: s.keyid
    )
    return encode_envelope(sigs)


def encode_envelope(sigs: list[Signature]) -> bytes:
    """Canonical JSON of a detached envelope holding ``sigs``."""
    return canonical_json(
        {
            "payloadType": PAYLOAD_TYPE,
            "signatures": [
                {"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode()} for s in sigs
            ],
        }
    )


def parse_envelope(data: bytes, limits: Limits) -> list[Signature]:
    """Parse ``aoe/signatures.json`` strictly (canonical bytes only)."""
    try:
        doc: Any = json.loads(data)
    except (ValueError, RecursionError) as e:  # also huge integers and absurd nesting
        raise SignatureError(f"aoe/signatures.json is not valid JSON: {e}") from e
    if not isinstance(doc, dict) or set(doc) != {"payloadType", "signatures"}:
        raise SignatureError("aoe/signatures.json must hold exactly payloadType and signatures")
    if doc["payloadType"] != PAYLOAD_TYPE:
        raise SignatureError(
            f"signature payloadType is {quote_json(doc['payloadType'])}, "
            f"expected {quote_json(PAYLOAD_TYPE)}"
        )
    sigs = parse_signature_list(doc["signatures"], max_signatures=limits.max_signatures)
    if encode_envelope(sigs) != data:
        raise SignatureError("aoe/signatures.json is not in canonical form (RFC 8785)")
    return sigs


def parse_signature_list(raw: Any, *, max_signatures: int) -> list[Signature]:
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


@dataclass(frozen=True)
class SignatureCheck:
    """The outcome for one signature in the envelope."""

    keyid: str
    trusted: bool
    valid: bool


def check_threshold(trusted: Sequence[PublicKey], threshold: int) -> dict[str, PublicKey]:
    """The trusted keys by id, if ``threshold`` is one they can reach (a caller's error if not).

    Verifiers call this before they open the bundle (docs/format.md §8): a
    threshold no file could meet is the caller's mistake, whatever the file.
    """
    if threshold < 1:
        raise UsageError("--threshold must be at least 1")
    by_id = {k.key_id: k for k in trusted}
    if threshold > len(by_id):
        raise UsageError(
            f"--threshold {threshold} exceeds the {len(by_id)} distinct trusted key(s) given"
        )
    return by_id


def check_signatures(
    manifest_bytes: bytes, sigs: list[Signature], trusted: list[PublicKey], threshold: int
) -> list[SignatureCheck]:
    """Require ``threshold`` distinct trusted keys with valid signatures."""
    by_id = check_threshold(trusted, threshold)
    message = _sign.pae(PAYLOAD_TYPE, manifest_bytes)
    checks = []
    for s in sigs:
        key = by_id.get(s.keyid)
        checks.append(
            SignatureCheck(
                s.keyid, key is not None, key is not None and _sign.verify(key, s.sig, message)
            )
        )
    good = sum(c.valid for c in checks)
    if good < threshold:
        raise _too_few(checks, threshold)
    return checks


def _too_few(checks: list[SignatureCheck], threshold: int) -> ThresholdError:
    """Say how many signatures counted, by whom, and why each other one did not."""
    valid = [c.keyid for c in checks if c.valid]
    parts = [f"signed by {', '.join(f'{k[:16]}…' for k in valid)}"] if valid else []
    parts += [
        f"{c.keyid[:16]}…: {'invalid signature' if c.trusted else 'key not trusted'}"
        for c in checks
        if not c.valid
    ]
    noun = "signature" if len(valid) == 1 else "signatures"
    if len(valid) == len(checks):  # every signature counted: there are just too few
        hint = (
            f"the bundle carries {len(checks)} {noun}: build it with more --sign-key keys, "
            "or verify with a lower --threshold"
        )
    else:
        hint = (
            "pass the signer's .pub with --trusted-key; an invalid signature means the "
            "manifest was changed after signing"
        )
    return ThresholdError(
        f"{len(valid)} valid {noun} of {threshold} required; {'; '.join(parts)}", hint=hint
    )
