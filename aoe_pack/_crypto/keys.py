"""Key generation, serialisation, loading and key ids.

Every key type aoe-pack uses is one of :class:`KeyKind`. Signing keys
(Ed25519, ECDSA P-256) and recipient keys (X25519, P-256, ML-KEM-768+X25519)
are PKCS#8 / SubjectPublicKeyInfo PEM. The hybrid ML-KEM-768+X25519 key has no
standard single encoding yet, so its files hold two PEM blocks: the ML-KEM-768
key first, then the X25519 key (docs/format.md, "Keys").

A key id is the lowercase hex SHA-256 of the public key's SubjectPublicKeyInfo
DER (for the hybrid: of the ML-KEM DER followed by the X25519 DER).
"""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mlkem, x25519

from aoe_pack.errors import KeyFormatError, KeyPasswordError


class KeyKind(enum.StrEnum):
    """The key types ``aoe-pack keygen --type`` offers."""

    ED25519 = "ed25519"
    P256 = "p256"
    X25519 = "x25519"
    P256_KEM = "p256-kem"
    MLKEM768_X25519 = "mlkem768-x25519"

    @property
    def signs(self) -> bool:
        """True for signing keys, False for encryption-recipient keys."""
        return self in (KeyKind.ED25519, KeyKind.P256)


_PrivateObj = (
    ed25519.Ed25519PrivateKey
    | ec.EllipticCurvePrivateKey
    | x25519.X25519PrivateKey
    | hpke.MLKEM768X25519PrivateKey
)
_PublicObj = (
    ed25519.Ed25519PublicKey
    | ec.EllipticCurvePublicKey
    | x25519.X25519PublicKey
    | hpke.MLKEM768X25519PublicKey
)


@dataclass(frozen=True, eq=False)
class PublicKey:
    """An opaque public key with its kind and key id."""

    kind: KeyKind
    key_id: str
    pem: bytes
    _obj: _PublicObj

    @property
    def algorithm(self) -> str:
        """Human-readable algorithm name."""
        return _ALGORITHM_NAMES[self.kind]


@dataclass(frozen=True, eq=False)
class PrivateKey:
    """An opaque private key; ``public`` is its public half."""

    kind: KeyKind
    public: PublicKey
    _obj: _PrivateObj
    _parts: tuple[object, ...] = ()
    """For the hybrid key: the ML-KEM-768 and X25519 halves, serialised apart."""

    @property
    def key_id(self) -> str:
        """The key id of the public half."""
        return self.public.key_id


_ALGORITHM_NAMES = {
    KeyKind.ED25519: "Ed25519",
    KeyKind.P256: "ECDSA P-256",
    KeyKind.X25519: "X25519",
    KeyKind.P256_KEM: "P-256",
    KeyKind.MLKEM768_X25519: "ML-KEM-768+X25519",
}

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----\r?\n?", re.DOTALL)


def _spki_der(obj: object) -> bytes:
    assert hasattr(obj, "public_bytes")
    der: bytes = obj.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der


def _spki_pem(obj: object) -> bytes:
    assert hasattr(obj, "public_bytes")
    pem: bytes = obj.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem


def key_id_of_der(der: bytes) -> str:
    """Hex SHA-256 of SubjectPublicKeyInfo DER bytes."""
    return hashlib.sha256(der).hexdigest()


def _wrap_public(kind: KeyKind, obj: _PublicObj, parts: tuple[object, ...] = ()) -> PublicKey:
    if kind is KeyKind.MLKEM768_X25519:
        ders = b"".join(_spki_der(p) for p in parts)
        pem = b"".join(_spki_pem(p) for p in parts)
        return PublicKey(kind=kind, key_id=key_id_of_der(ders), pem=pem, _obj=obj)
    return PublicKey(kind=kind, key_id=key_id_of_der(_spki_der(obj)), pem=_spki_pem(obj), _obj=obj)


def generate(kind: KeyKind) -> PrivateKey:
    """Generate a fresh key pair of ``kind``."""
    if kind is KeyKind.ED25519:
        return _from_private_obj(ed25519.Ed25519PrivateKey.generate(), kind)
    if kind in (KeyKind.P256, KeyKind.P256_KEM):
        return _from_private_obj(ec.generate_private_key(ec.SECP256R1()), kind)
    if kind is KeyKind.X25519:
        return _from_private_obj(x25519.X25519PrivateKey.generate(), kind)
    return _hybrid_private(mlkem.MLKEM768PrivateKey.generate(), x25519.X25519PrivateKey.generate())


def _hybrid_private(mk: mlkem.MLKEM768PrivateKey, xk: x25519.X25519PrivateKey) -> PrivateKey:
    obj = hpke.MLKEM768X25519PrivateKey(mk, xk)
    pub_obj = hpke.MLKEM768X25519PublicKey(mk.public_key(), xk.public_key())
    public = _wrap_public(KeyKind.MLKEM768_X25519, pub_obj, (mk.public_key(), xk.public_key()))
    return PrivateKey(kind=KeyKind.MLKEM768_X25519, public=public, _obj=obj, _parts=(mk, xk))


def _from_private_obj(obj: object, kind: KeyKind | None) -> PrivateKey:
    if isinstance(obj, ed25519.Ed25519PrivateKey):
        k = KeyKind.ED25519
    elif isinstance(obj, x25519.X25519PrivateKey):
        k = KeyKind.X25519
    elif isinstance(obj, ec.EllipticCurvePrivateKey):
        if not isinstance(obj.curve, ec.SECP256R1):
            raise KeyFormatError(f"unsupported elliptic curve {obj.curve.name}; use P-256")
        k = kind if kind in (KeyKind.P256, KeyKind.P256_KEM) else KeyKind.P256
    else:
        raise KeyFormatError(f"unsupported private key type {type(obj).__name__}")
    pub = obj.public_key()
    return PrivateKey(kind=k, public=_wrap_public(k, pub), _obj=obj)


def for_key_agreement(key: PrivateKey) -> PrivateKey:
    """The same key marked for HPKE: a P-256 PEM does not say whether it signs or decrypts."""
    if key.kind is KeyKind.P256:
        return _from_private_obj(key._obj, KeyKind.P256_KEM)
    return key


def private_pem(key: PrivateKey, password: bytes | None) -> bytes:
    """PKCS#8 PEM of ``key``, encrypted when ``password`` is given."""
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    fmt, pem = serialization.PrivateFormat.PKCS8, serialization.Encoding.PEM
    out = b""
    for part in key._parts or (key._obj,):
        assert hasattr(part, "private_bytes")
        out += part.private_bytes(pem, fmt, enc)
    return out


def _blocks(data: bytes) -> list[bytes]:
    return [m.group(0) for m in _PEM_BLOCK.finditer(data)]


def load_private(data: bytes, password: bytes | None, *, origin: str) -> PrivateKey:
    """Parse a private key file's bytes (one or, for the hybrid, two PEM blocks)."""
    blocks = _blocks(data)
    if not blocks:
        raise KeyFormatError(f"{origin}: no PEM private key found")
    objs = [_load_private_block(b, password, origin=origin) for b in blocks]
    if len(objs) == 2 and isinstance(objs[0], mlkem.MLKEM768PrivateKey):
        if not isinstance(objs[1], x25519.X25519PrivateKey):
            raise KeyFormatError(f"{origin}: hybrid key's second block must be X25519")
        return _hybrid_private(objs[0], objs[1])
    if len(objs) != 1:
        raise KeyFormatError(f"{origin}: expected one PEM private key, found {len(objs)}")
    return _from_private_obj(objs[0], None)


def _load_private_block(block: bytes, password: bytes | None, *, origin: str) -> object:
    try:
        return serialization.load_pem_private_key(block, password=password or None)
    except TypeError as e:
        # cryptography raises TypeError both for "password needed" and "not encrypted".
        if password:
            raise KeyPasswordError(
                f"{origin}: the key is not encrypted but a password was given",
                hint="unset AOE_PACK_PASSWORD for this key",
            ) from e
        raise KeyPasswordError(
            f"{origin}: the private key is encrypted",
            hint="set AOE_PACK_PASSWORD or run in a terminal to be prompted",
        ) from e
    except ValueError as e:
        if b"ENCRYPTED" in block:
            raise KeyPasswordError(f"{origin}: wrong password for the private key") from e
        raise KeyFormatError(f"{origin}: not a valid PEM private key ({e})") from e
    except UnsupportedAlgorithm as e:
        raise KeyFormatError(f"{origin}: unsupported key algorithm ({e})") from e


def load_public(data: bytes, *, origin: str) -> PublicKey:
    """Parse a public key file (SPKI PEM; two blocks for the hybrid)."""
    blocks = _blocks(data)
    if not blocks:
        raise KeyFormatError(
            f"{origin}: no PEM public key found",
            hint="pass the .pub file written by `aoe-pack keygen`",
        )
    try:
        objs = [serialization.load_pem_public_key(b) for b in blocks]
    except (ValueError, UnsupportedAlgorithm) as e:
        raise KeyFormatError(f"{origin}: not a valid PEM public key ({e})") from e
    if len(objs) == 2:
        mk, xk = objs
        if not (isinstance(mk, mlkem.MLKEM768PublicKey) and isinstance(xk, x25519.X25519PublicKey)):
            raise KeyFormatError(f"{origin}: two PEM blocks must be ML-KEM-768 then X25519")
        hybrid = hpke.MLKEM768X25519PublicKey(mk, xk)
        return _wrap_public(KeyKind.MLKEM768_X25519, hybrid, (mk, xk))
    if len(objs) != 1:
        raise KeyFormatError(f"{origin}: expected one PEM public key, found {len(objs)}")
    obj = objs[0]
    if isinstance(obj, ed25519.Ed25519PublicKey):
        return _wrap_public(KeyKind.ED25519, obj)
    if isinstance(obj, x25519.X25519PublicKey):
        return _wrap_public(KeyKind.X25519, obj)
    if isinstance(obj, ec.EllipticCurvePublicKey) and isinstance(obj.curve, ec.SECP256R1):
        return _wrap_public(KeyKind.P256, obj)
    raise KeyFormatError(f"{origin}: unsupported public key type {type(obj).__name__}")
