"""Detached DSSE signatures over the bundle manifest, and the threshold check.

``aoe/signatures.json`` is a DSSE envelope without its ``payload`` field:
``{"payloadType": ..., "signatures": [{"keyid": ..., "sig": ...}]}`` in
canonical JSON, signatures sorted by key id. The payload is the bytes of
``aoe/manifest.json``; put them back (base64) to get the standard envelope.
Signing and the signature list are :mod:`aoe_pack.dsse`'s, as for repository
documents.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aoe_pack import dsse
from aoe_pack._jcs import canonical_json
from aoe_pack._quote import quote_json
from aoe_pack.bundle.format import PAYLOAD_TYPE, Limits
from aoe_pack.dsse import Signature
from aoe_pack.errors import SignatureError, ThresholdError, UsageError
from aoe_pack.keys import PublicKey, SigningKey


def sign_manifest(
    manifest_bytes: bytes, keys: Sequence[SigningKey], *, payload_type: str = PAYLOAD_TYPE
) -> bytes:
    """The canonical ``aoe/signatures.json`` bytes for ``keys``.

    ``payload_type`` is the bundle manifest's; a delta's manifest has its own
    (docs/format.md §16), so no signature on one is ever a signature on the other.
    """
    return encode_envelope(dsse.sign(payload_type, manifest_bytes, keys), payload_type)


def encode_envelope(sigs: Sequence[Signature], payload_type: str = PAYLOAD_TYPE) -> bytes:
    """Canonical JSON of a detached envelope holding ``sigs``."""
    return canonical_json({"payloadType": payload_type, "signatures": dsse.encode_signatures(sigs)})


def parse_envelope(
    data: bytes, limits: Limits, *, payload_type: str = PAYLOAD_TYPE
) -> list[Signature]:
    """Parse ``aoe/signatures.json`` strictly (canonical bytes only)."""
    try:
        doc: Any = json.loads(data)
    except (ValueError, RecursionError) as e:  # also huge integers and absurd nesting
        raise SignatureError(f"aoe/signatures.json is not valid JSON: {e}") from e
    if not isinstance(doc, dict) or set(doc) != {"payloadType", "signatures"}:
        raise SignatureError("aoe/signatures.json must hold exactly payloadType and signatures")
    if doc["payloadType"] != payload_type:
        raise SignatureError(
            f"signature payloadType is {quote_json(doc['payloadType'])}, "
            f"expected {quote_json(payload_type)}"
        )
    sigs = dsse.parse_signatures(doc["signatures"], max_signatures=limits.max_signatures)
    if encode_envelope(sigs, payload_type) != data:
        raise SignatureError("aoe/signatures.json is not in canonical form (RFC 8785)")
    return sigs


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
    manifest_bytes: bytes,
    sigs: list[Signature],
    trusted: list[PublicKey],
    threshold: int,
    *,
    payload_type: str = PAYLOAD_TYPE,
) -> list[SignatureCheck]:
    """Require ``threshold`` distinct trusted keys with valid signatures."""
    by_id = check_threshold(trusted, threshold)
    valid = dsse.valid_keyids(payload_type, manifest_bytes, sigs, by_id)
    checks = [SignatureCheck(s.keyid, s.keyid in by_id, s.keyid in valid) for s in sigs]
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
