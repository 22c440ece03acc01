"""A token's public points and raw ECDSA signatures, in the DER aoe-pack keys and verifies.

Checked against ``cryptography``'s own encodings of the same keys: the SPKI
built by hand must be byte for byte the one a key file of that key has, or
the key id would differ.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, utils

from aoe_pack._crypto import _der, hsm

SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
DER = serialization.Encoding.DER
RAW = serialization.Encoding.Raw


@pytest.mark.parametrize("wrapped", [True, False], ids=["octet-string", "bare"])
def test_an_ed25519_point_gives_the_spki_cryptography_writes(wrapped: bool) -> None:
    for _ in range(20):
        public = ed25519.Ed25519PrivateKey.generate().public_key()
        raw = public.public_bytes(RAW, serialization.PublicFormat.Raw)
        ec_point = _der.octet_string(raw) if wrapped else raw
        assert hsm.spki(hsm.ED25519, hsm.public_point(ec_point, hsm.ED25519)) == (
            public.public_bytes(DER, SPKI)
        )


@pytest.mark.parametrize("wrapped", [True, False], ids=["octet-string", "bare"])
def test_a_p256_point_gives_the_spki_cryptography_writes(wrapped: bool) -> None:
    for _ in range(20):
        public = ec.generate_private_key(ec.SECP256R1()).public_key()
        point = public.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        ec_point = _der.octet_string(point) if wrapped else point
        assert hsm.spki(hsm.P256, hsm.public_point(ec_point, hsm.P256)) == (
            public.public_bytes(DER, SPKI)
        )


@pytest.mark.parametrize(
    ("ec_point", "curve", "message"),
    [
        (bytes(31), hsm.ED25519, "CKA_EC_POINT holds 31 bytes, not the 32 that Ed25519 public "
         "keys have (bare or in a DER OCTET STRING)"),
        (_der.octet_string(bytes(33)), hsm.ED25519, "CKA_EC_POINT holds 35 bytes, not the 32 "
         "that Ed25519 public keys have (bare or in a DER OCTET STRING)"),
        (b"\x04" + bytes(32), hsm.P256, "CKA_EC_POINT holds 33 bytes, not the 65 that P-256 "
         "public keys have (bare or in a DER OCTET STRING)"),
        (b"\x05" + bytes(64), hsm.P256, "CKA_EC_POINT holds a P-256 point starting 05, not an "
         "uncompressed one (04 || X || Y)"),
    ],
)  # fmt: skip
def test_a_point_of_the_wrong_size_or_form_is_refused(
    ec_point: bytes, curve: str, message: str
) -> None:
    with pytest.raises(hsm.EncodingError) as info:
        hsm.public_point(ec_point, curve)
    assert str(info.value) == message


def test_raw_r_and_s_become_the_der_signature_that_verifies() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    message = b"DSSEv1 4 test 2 {}"
    r, s = utils.decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    der = hsm.ecdsa_der(raw)
    key.public_key().verify(der, message, ec.ECDSA(hashes.SHA256()))  # raises if not
    assert utils.decode_dss_signature(der) == (r, s)


def test_a_raw_signature_of_another_length_is_refused() -> None:
    with pytest.raises(hsm.EncodingError) as info:
        hsm.ecdsa_der(bytes(70))
    assert str(info.value) == "a P-256 CKM_ECDSA signature is 64 bytes (r || s), not 70"


@pytest.mark.parametrize(
    ("params", "curve"),
    [
        ("06082a8648ce3d030107", "P-256"),
        ("06032b6570", "Ed25519"),
        ("130c" + b"edwards25519".hex(), "Ed25519"),
        ("06032b6571", "Ed448"),
        ("06052b81040022", "P-384"),
        ("0500", None),
    ],
)
def test_the_curve_of_ec_params(params: str, curve: str | None) -> None:
    assert hsm.curve_of(bytes.fromhex(params)) == curve
