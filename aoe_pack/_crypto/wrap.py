"""Wrapping the bundle's data key for its recipients.

* HPKE (RFC 9180), base mode, single shot: KEM per recipient key type,
  HKDF-SHA256, AES-256-GCM. The stored blob is ``enc || ciphertext``.
* A symmetric key-encryption key (the AoE-style key embedded in the app):
  AES-256-GCM with a random 12-byte nonce; the blob is
  ``nonce || ciphertext || tag`` and the associated data is the same ``info``.

``info`` binds the wrapped key to one model identity (tag and version), so a
wrapped key cannot be lifted into another bundle's manifest.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from aoe_pack._crypto.asymmetric import KeyKind, PrivateKey, PublicKey
from aoe_pack.errors import DecryptionError, KeyFormatError, KeyTypeError

KEK_SIZE = 32
DATA_KEY_SIZE = 32
_KEK_NONCE = 12

# Names as written in the manifest; RFC 9180 / draft-connolly-cfrg-xwing KEM ids.
HPKE_KEMS: dict[KeyKind, tuple[str, Any]] = {
    KeyKind.X25519: ("DHKEM(X25519, HKDF-SHA256)", hpke.KEM.X25519),
    KeyKind.P256: ("DHKEM(P-256, HKDF-SHA256)", hpke.KEM.P256),
    KeyKind.P256_KEM: ("DHKEM(P-256, HKDF-SHA256)", hpke.KEM.P256),
    KeyKind.MLKEM768_X25519: ("MLKEM768-X25519", hpke.KEM.MLKEM768_X25519),
}
HPKE_KDF = "HKDF-SHA256"
HPKE_AEAD = "AES-256-GCM"


def wrap_info(tag: str, version: str) -> bytes:
    """The HPKE ``info`` / KEK associated data for one model identity."""
    return b"aoe-pack/v1 data-key\x00" + tag.encode() + b"\x00" + version.encode()


def _suite(kind: KeyKind) -> hpke.Suite:
    if kind not in HPKE_KEMS or kind is KeyKind.ED25519:
        raise KeyTypeError(
            f"a {kind.value} key cannot receive an encrypted bundle",
            hint="recipients are x25519, p256-kem or mlkem768-x25519 keys",
        )
    return hpke.Suite(HPKE_KEMS[kind][1], hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


def kem_name(key: PublicKey) -> str:
    """The manifest's name for the HPKE KEM this key uses."""
    _suite(key.kind)
    return HPKE_KEMS[key.kind][0]


def hpke_wrap(data_key: bytes, recipient: PublicKey, info: bytes) -> bytes:
    """Seal the data key to one recipient."""
    return _suite(recipient.kind).encrypt(data_key, recipient._obj, info=info)  # type: ignore[arg-type]


def hpke_unwrap(blob: bytes, key: PrivateKey, info: bytes) -> bytes:
    """Open a data key sealed to ``key``."""
    try:
        data_key = _suite(key.kind).decrypt(blob, key._obj, info=info)  # type: ignore[arg-type]
    except (InvalidTag, ValueError) as e:
        raise DecryptionError(
            f"the data key sealed to {key.key_id[:16]}… could not be opened with this key"
        ) from e
    return _data_key(data_key)


def _data_key(opened: bytes) -> bytes:
    """The opened data key, if it is one: 32 bytes (§7.1).

    Only a signer can seal another length, and AES would take 16 or 24 bytes
    as a weaker key, or fail later with a bare error.
    """
    if len(opened) != DATA_KEY_SIZE:
        raise DecryptionError(f"the sealed data key is {len(opened)} bytes, not {DATA_KEY_SIZE}")
    return opened


_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


def parse_kek(data: bytes, *, origin: str) -> bytes:
    """A 32-byte key-encryption key from a key file: exactly 64 hex characters.

    Raw binary is not accepted: a truncated hex paste would otherwise pass as
    a different 32-byte key and fail only later, as "wrong key".
    """
    text = data.strip()
    # bytes.fromhex alone would also take spaces between the digits: 62 digits
    # and 2 spaces would load as a 31-byte key.
    if len(text) == 2 * KEK_SIZE and all(c in _HEX_DIGITS for c in text):
        try:
            return bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            pass
    raise KeyFormatError(
        f"{origin}: an encryption key file holds 32 random bytes as 64 hex characters "
        f"(found {len(text)} bytes)",
        hint="create one with `aoe-pack keygen --type aes256 --out NAME`",
    )


def kek_id(kek: bytes) -> str:
    """Key id of a key-encryption key: hex SHA-256 of a labelled hash of it."""
    return hashlib.sha256(b"aoe-pack/v1 kek-id\x00" + kek).hexdigest()


def new_kek() -> bytes:
    """A fresh random key-encryption key."""
    return os.urandom(KEK_SIZE)


def kek_wrap(data_key: bytes, kek: bytes, info: bytes) -> bytes:
    """Seal the data key under a symmetric key-encryption key."""
    nonce = os.urandom(_KEK_NONCE)
    return nonce + AESGCM(kek).encrypt(nonce, data_key, info)


def kek_unwrap(blob: bytes, kek: bytes, info: bytes) -> bytes:
    """Open a data key sealed under ``kek``."""
    try:
        data_key = AESGCM(kek).decrypt(blob[:_KEK_NONCE], blob[_KEK_NONCE:], info)
    except (InvalidTag, ValueError) as e:
        raise DecryptionError("the data key could not be opened with this encryption key") from e
    return _data_key(data_key)
