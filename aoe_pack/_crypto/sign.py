"""Signatures over DSSE pre-authentication encoding (PAE) bytes.

Ed25519 signs the PAE bytes directly (RFC 8032). ECDSA P-256 signs SHA-256 of
them with RFC 6979 deterministic nonces, so signing the same bundle twice gives
the same bytes; the signature is DER-encoded (as ``java.security.Signature``
``SHA256withECDSA`` and CryptoKit's ``derRepresentation`` use).
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from aoe_pack._crypto.asymmetric import PrivateKey, PublicKey
from aoe_pack.errors import KeyTypeError


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def sign(key: PrivateKey, message: bytes) -> bytes:
    """Sign ``message`` with a signing key."""
    obj = key._obj
    if isinstance(obj, ed25519.Ed25519PrivateKey):
        return obj.sign(message)
    if isinstance(obj, ec.EllipticCurvePrivateKey) and key.kind.signs:
        return obj.sign(message, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    raise KeyTypeError(
        f"key {key.key_id[:16]}… is a {key.public.algorithm} encryption key, not a signing key",
        hint="sign with an ed25519 or p256 key (aoe-pack keygen --type ed25519)",
    )


def verify(key: PublicKey, signature: bytes, message: bytes) -> bool:
    """True when ``signature`` is valid for ``message`` under ``key``."""
    obj = key._obj
    try:
        if isinstance(obj, ed25519.Ed25519PublicKey):
            obj.verify(signature, message)
            return True
        if isinstance(obj, ec.EllipticCurvePublicKey):
            obj.verify(signature, message, ec.ECDSA(hashes.SHA256()))
            return True
    except InvalidSignature:
        return False
    return False
