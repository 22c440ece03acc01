"""What a PKCS#11 token says about a key and a signature, in the DER aoe-pack uses.

A token reports an elliptic-curve key as its curve (``CKA_EC_PARAMS``) and its
public point (``CKA_EC_POINT``), and a CKM_ECDSA signature as the raw
``r || s``. aoe-pack names a key by the SHA-256 of its
SubjectPublicKeyInfo DER and verifies DER ECDSA signatures (``sign.py``), so
both are converted here: the SPKI by hand, because ``cryptography`` has no
constructor from a raw Ed25519 point wrapped this way and python-pkcs11's
helper encodes Ed25519 keys as id-ecPublicKey; the signature through
``cryptography``'s own DER encoder.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import utils

from aoe_pack._crypto import _der

ED25519, P256 = "Ed25519", "P-256"

_ID_EC_PUBLIC_KEY = _der.oid("1.2.840.10045.2.1")
_PRIME256V1 = _der.oid("1.2.840.10045.3.1.7")
_ED25519 = _der.oid("1.3.101.112")

CURVES: dict[bytes, str] = {
    _PRIME256V1: P256,
    _ED25519: ED25519,
    # PKCS#11 v3.0 also lets a token name the Edwards curves by a PrintableString.
    _der.tlv(0x13, b"edwards25519"): ED25519,
    _der.oid("1.3.101.113"): "Ed448",
    _der.tlv(0x13, b"edwards448"): "Ed448",
    _der.oid("1.3.132.0.34"): "P-384",
    _der.oid("1.3.132.0.35"): "P-521",
    _der.oid("1.3.132.0.10"): "secp256k1",
}
"""``CKA_EC_PARAMS`` values (DER) and the curves they name; only Ed25519 and P-256 sign here."""

_POINT_SIZES = {ED25519: 32, P256: 65}
_P256_SIGNATURE = 64


class EncodingError(ValueError):
    """The token's bytes are not the encoding the key's curve has; the message says how."""


def curve_of(ec_params: bytes) -> str | None:
    """The curve ``CKA_EC_PARAMS`` names, or None for one aoe-pack does not know."""
    return CURVES.get(ec_params)


def public_point(ec_point: bytes, curve: str) -> bytes:
    """The public key bytes in ``CKA_EC_POINT``: Ed25519's 32, or P-256's uncompressed 65.

    The standard wraps them in a DER OCTET STRING; some tokens give them bare.
    The two cannot be confused: the wrapped form is two bytes longer.
    """
    size = _POINT_SIZES[curve]
    try:
        wrapped = _der.decode(ec_point, _der.OCTET_STRING).content
    except _der.DerError:
        wrapped = None
    point = wrapped if wrapped is not None and len(wrapped) == size else ec_point
    if len(point) != size:
        raise EncodingError(
            f"CKA_EC_POINT holds {len(ec_point)} bytes, not the {size} that {curve} public keys "
            "have (bare or in a DER OCTET STRING)"
        )
    if curve == P256 and point[0] != 0x04:
        raise EncodingError(
            f"CKA_EC_POINT holds a P-256 point starting {point[0]:02x}, not an uncompressed one "
            "(04 || X || Y)"
        )
    return point


def spki(curve: str, point: bytes) -> bytes:
    """The SubjectPublicKeyInfo DER of an Ed25519 or P-256 public point.

    Byte for byte what ``cryptography`` writes for the same key (RFC 8410 §4,
    RFC 5480 §2), so the key id is the one a key file of that key gets.
    """
    if curve == ED25519:
        return _der.spki(_ED25519, point)
    return _der.sequence(_der.sequence(_ID_EC_PUBLIC_KEY, _PRIME256V1), _der.bit_string(point))


def ecdsa_der(raw: bytes) -> bytes:
    """A P-256 CKM_ECDSA signature, raw ``r || s``, as DER (as ``sign.verify`` takes it)."""
    if len(raw) != _P256_SIGNATURE:
        raise EncodingError(f"a P-256 CKM_ECDSA signature is 64 bytes (r || s), not {len(raw)}")
    half = _P256_SIGNATURE // 2
    return utils.encode_dss_signature(
        int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
    )
