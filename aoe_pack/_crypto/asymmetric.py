"""Key generation, serialisation, loading and key ids.

Every key type aoe-pack uses is one of :class:`KeyKind`. Signing keys
(Ed25519, ECDSA P-256) and recipient keys (X25519, P-256, ML-KEM-768+X25519)
are PKCS#8 / SubjectPublicKeyInfo PEM. The ML-KEM-768+X25519 key is an X-Wing
key (draft-connolly-cfrg-xwing-kem): its PKCS#8 holds only the 32-byte seed,
which CryptoKit and Java's "X-Wing" KeyFactory take as they are, and both
halves are derived from it. ``cryptography`` cannot encode X-Wing keys, so
``_der`` does (docs/format.md §10.2).

A key id is the lowercase hex SHA-256 of the public key's SubjectPublicKeyInfo
DER.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import os
import re
from dataclasses import dataclass, field

from cryptography.exceptions import InternalError, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mlkem, x25519

from aoe_pack._crypto import _der
from aoe_pack.errors import (
    KeyFormatError,
    KeyNotEncryptedError,
    KeyPasswordError,
    WrongPasswordError,
)


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
    _seed: bytes = field(default=b"", repr=False)
    """For an X-Wing key: the 32-byte seed both halves derive from; it is what is stored."""

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

XWING_OID = _der.oid("1.3.6.1.4.1.62253.25722")
"""X-Wing's OID (draft-connolly-cfrg-xwing-kem), with no parameters in PKCS#8 and SPKI."""
XWING_SEED_SIZE = 32
_MLKEM768_PUBLIC, _X25519_PUBLIC = 1184, 32
XWING_PUBLIC_SIZE = _MLKEM768_PUBLIC + _X25519_PUBLIC

# The PKCS#8 algorithms handed to ``cryptography``; X-Wing is parsed here. OpenSSL,
# under ``cryptography``, answers some keys of other algorithms (Ed448 or X448 with
# a key of the wrong length) with an InternalError rather than a ValueError, so a
# key naming any other algorithm is refused before it reaches the parser.
_TAKEN = {
    _der.oid("1.3.101.112"): "Ed25519",
    _der.oid("1.3.101.110"): "X25519",
    _der.oid("1.2.840.10045.2.1"): "EC",
}
_NOT_TAKEN = {
    _der.oid("1.3.101.113"): "Ed448",
    _der.oid("1.3.101.111"): "X448",
    _der.oid("1.2.840.113549.1.1.1"): "RSA",
    _der.oid("1.2.840.113549.1.1.10"): "RSA-PSS",
    _der.oid("1.2.840.10040.4.1"): "DSA",
    _der.oid("1.2.840.113549.1.3.1"): "DH",
    _der.oid("1.2.840.10046.2.1"): "X9.42 DH",
    _der.oid("2.16.840.1.101.3.4.4.2"): "ML-KEM-768",
}
_KEY_KINDS = "Ed25519, ECDSA P-256, X25519, P-256 or ML-KEM-768+X25519 (X-Wing)"


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


def _pem(label: str, der: bytes) -> bytes:
    """PEM as cryptography writes it: 64-character base64 lines, a final newline."""
    b64 = base64.b64encode(der)
    lines = b"".join(b64[i : i + 64] + b"\n" for i in range(0, len(b64), 64))
    return b"-----BEGIN %s-----\n%s-----END %s-----\n" % (label.encode(), lines, label.encode())


def _pem_der(block: bytes) -> tuple[bytes, bytes] | None:
    """(label, DER) of one PEM block; None if its body is not plain base64."""
    m = _PEM_BLOCK.fullmatch(block)
    assert m is not None
    body = block[block.index(b"\n") + 1 : block.rindex(b"-----END")]
    try:
        return m.group(1), base64.b64decode(b"".join(body.split()), validate=True)
    except ValueError:
        return None


def key_id_of_der(der: bytes) -> str:
    """Hex SHA-256 of SubjectPublicKeyInfo DER bytes."""
    return hashlib.sha256(der).hexdigest()


def _wrap_public(kind: KeyKind, obj: _PublicObj) -> PublicKey:
    return PublicKey(kind=kind, key_id=key_id_of_der(_spki_der(obj)), pem=_spki_pem(obj), _obj=obj)


def generate(kind: KeyKind) -> PrivateKey:
    """Generate a fresh key pair of ``kind``."""
    if kind is KeyKind.ED25519:
        return _from_private_obj(ed25519.Ed25519PrivateKey.generate(), kind)
    if kind in (KeyKind.P256, KeyKind.P256_KEM):
        return _from_private_obj(ec.generate_private_key(ec.SECP256R1()), kind)
    if kind is KeyKind.X25519:
        return _from_private_obj(x25519.X25519PrivateKey.generate(), kind)
    return xwing_from_seed(os.urandom(XWING_SEED_SIZE))


# --- X-Wing ---------------------------------------------------------------------------


def xwing_from_seed(seed: bytes) -> PrivateKey:
    """The X-Wing key pair of a 32-byte seed.

    As draft-connolly-cfrg-xwing-kem's expandDecapsulationKey: SHAKE256(seed, 96)
    gives the ML-KEM-768 seed ``d || z`` (64 bytes) and the X25519 scalar (32 bytes).
    """
    if len(seed) != XWING_SEED_SIZE:
        raise KeyFormatError(f"an X-Wing seed is {XWING_SEED_SIZE} bytes, not {len(seed)}")
    expanded = hashlib.shake_256(seed).digest(96)
    mk = mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64])
    xk = x25519.X25519PrivateKey.from_private_bytes(expanded[64:96])
    public = _xwing_public(mk.public_key(), xk.public_key())
    obj = hpke.MLKEM768X25519PrivateKey(mk, xk)
    return PrivateKey(kind=KeyKind.MLKEM768_X25519, public=public, _obj=obj, _seed=seed)


def _xwing_public(mk: mlkem.MLKEM768PublicKey, xk: x25519.X25519PublicKey) -> PublicKey:
    spki = _der.spki(XWING_OID, mk.public_bytes_raw() + xk.public_bytes_raw())
    return PublicKey(
        kind=KeyKind.MLKEM768_X25519,
        key_id=key_id_of_der(spki),
        pem=_pem("PUBLIC KEY", spki),
        _obj=hpke.MLKEM768X25519PublicKey(mk, xk),
    )


def _xwing_private_der(der: bytes, *, origin: str) -> PrivateKey:
    try:
        seed = _der.parse_pkcs8(der, XWING_OID)
    except _der.DerError as e:
        raise KeyFormatError(f"{origin}: not a valid X-Wing private key ({e})") from e
    if len(seed) != XWING_SEED_SIZE:
        raise KeyFormatError(
            f"{origin}: not a valid X-Wing private key (the seed is {len(seed)} bytes, "
            f"expected {XWING_SEED_SIZE})"
        )
    return xwing_from_seed(seed)


def _xwing_public_der(der: bytes, *, origin: str) -> PublicKey:
    try:
        raw = _der.parse_spki(der, XWING_OID)
    except _der.DerError as e:
        raise KeyFormatError(f"{origin}: not a valid X-Wing public key ({e})") from e
    if len(raw) != XWING_PUBLIC_SIZE:
        raise KeyFormatError(
            f"{origin}: not a valid X-Wing public key (the key is {len(raw)} bytes, "
            f"expected {XWING_PUBLIC_SIZE})"
        )
    try:
        mk = mlkem.MLKEM768PublicKey.from_public_bytes(raw[:_MLKEM768_PUBLIC])
    except ValueError as e:  # FIPS 203's encapsulation key check
        raise KeyFormatError(
            f"{origin}: not a valid X-Wing public key (its ML-KEM-768 half is invalid)"
        ) from e
    return _xwing_public(mk, x25519.X25519PublicKey.from_public_bytes(raw[_MLKEM768_PUBLIC:]))


def _names_xwing(der: bytes) -> bool:
    # cryptography knows no X-Wing keys: any DER naming the OID is parsed, strictly, here.
    return XWING_OID in der


# --- other key types -------------------------------------------------------------------


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
    if key.kind is KeyKind.MLKEM768_X25519:
        info = _der.pkcs8(XWING_OID, key._seed)
        if password:
            return _pem("ENCRYPTED PRIVATE KEY", _der.encrypt_pkcs8(info, password))
        return _pem("PRIVATE KEY", info)
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    obj = key._obj
    assert not isinstance(obj, hpke.MLKEM768X25519PrivateKey)
    return obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


_SPACE = b" \t\r\n"


def _blocks(data: bytes, *, origin: str) -> list[bytes]:
    """The PEM blocks of a key file; KeyFormatError for anything but whitespace around them.

    RFC 7468 lets parsers skip "explanatory text"; we do not (docs/format.md
    §10.1). A key file is a secret or a trust anchor: text that one parser
    skips and another reads (a comment naming the wrong owner, a line that
    looks like a second key) must not make two readings of one file possible.
    """
    found = list(_PEM_BLOCK.finditer(data))
    if not found:
        return []
    at = 0
    for start, end in [*((m.start(), m.end()) for m in found), (len(data), len(data))]:
        gap = data[at:start]
        if gap.strip(_SPACE):
            stray = at + len(gap) - len(gap.lstrip(_SPACE))
            raise KeyFormatError(
                f"{origin}: text outside the PEM block at byte {stray}; "
                "a key file holds only PEM blocks",
                hint="remove the text before -----BEGIN and after -----END",
            )
        at = end
    return [m.group(0) for m in found]


def key_file(key: PrivateKey, password: bytes | None) -> bytes:
    """The bytes of a ``NAME.key`` file: the private key's PEM; for X-Wing, then its public key.

    Deriving an X-Wing public key from the seed takes ML-KEM key generation; with
    the public key in the file, a device without ML-KEM still knows its key id
    and can match recipients (docs/format.md §10.2).
    """
    pem = private_pem(key, password)
    return pem + key.public.pem if key.kind is KeyKind.MLKEM768_X25519 else pem


def _label(block: bytes) -> bytes:
    m = _PEM_BLOCK.match(block)
    assert m is not None
    return m.group(1)


def load_private(data: bytes, password: bytes | None, *, origin: str) -> PrivateKey:
    """Parse a private key file: one PKCS#8 PEM block (maybe encrypted), maybe its public key.

    A ``PUBLIC KEY`` block after the private key (``key_file`` writes one for
    X-Wing) must be the public key the private key derives.
    """
    blocks = _blocks(data, origin=origin)
    public = [b for b in blocks if _label(b) == b"PUBLIC KEY"]
    private = [b for b in blocks if _label(b) != b"PUBLIC KEY"]
    if not private:
        raise KeyFormatError(f"{origin}: no PEM private key found")
    if len(private) != 1:
        raise KeyFormatError(f"{origin}: expected one PEM private key, found {len(private)}")
    if blocks[0] is not private[0] or len(public) > 1:
        raise KeyFormatError(
            f"{origin}: a private key file holds one private key block, "
            "then at most its PUBLIC KEY block"
        )
    key = _parse_private_block(private[0], password, origin=origin)
    if public:
        der = _pem_der(public[0])
        if der is None or key_id_of_der(der[1]) != key.key_id:
            raise KeyFormatError(
                f"{origin}: the PUBLIC KEY block is not the public key of the private key"
            )
    return key


def _parse_private_block(block: bytes, password: bytes | None, *, origin: str) -> PrivateKey:
    parsed = _pem_der(block)
    name = None
    if parsed is not None:
        label, der = parsed
        if label == b"PRIVATE KEY" and _names_xwing(der):
            if password:
                raise _not_encrypted(origin)
            return _xwing_private_der(der, origin=origin)
        if label == b"PRIVATE KEY":
            name = _check_algorithm(der, origin=origin)
        if label == b"ENCRYPTED PRIVATE KEY":
            if not password:
                raise _is_encrypted(origin)
            key = _decrypt(der, password, origin=origin)
            if key is not None:
                return key
    return _from_private_obj(_load_private_block(block, password, name, origin=origin), None)


def _decrypt(der: bytes, password: bytes, *, origin: str) -> PrivateKey | None:
    """An EncryptedPrivateKeyInfo in the PBES2 profile we write; None for other schemes."""
    try:
        plain = _der.decrypt_pkcs8(der, password)
    except _der.WrongPasswordError as e:
        raise WrongPasswordError(f"{origin}: wrong password for the private key") from e
    except _der.DerError as e:
        raise KeyFormatError(f"{origin}: not a valid encrypted private key ({e})") from e
    if plain is None:
        return None
    if _names_xwing(plain):
        return _xwing_private_der(plain, origin=origin)
    name = _check_algorithm(plain, origin=origin)
    try:
        obj = serialization.load_der_private_key(plain, password=None)
    except ValueError as e:
        raise KeyFormatError(f"{origin}: not a valid PEM private key ({e})") from e
    except UnsupportedAlgorithm as e:
        raise KeyFormatError(f"{origin}: unsupported key algorithm ({e})") from e
    except InternalError as e:
        raise _refused(origin, name) from e
    return _from_private_obj(obj, None)


def _check_algorithm(private_key_info: bytes, *, origin: str) -> str | None:
    """The name of a PKCS#8's algorithm; KeyFormatError unless aoe-pack takes it.

    None when the DER does not parse here: then ``cryptography`` judges it.
    """
    try:
        alg = _der.items(_der.decode(private_key_info, _der.SEQUENCE))[1]
        oid = _der.items(alg)[0]
    except (_der.DerError, IndexError):
        return None
    if oid.tag != _der.OBJECT_IDENTIFIER:
        return None
    if oid.der in _TAKEN:
        return _TAKEN[oid.der]
    name = f"{_NOT_TAKEN[oid.der]}, " if oid.der in _NOT_TAKEN else ""
    raise KeyFormatError(
        f"{origin}: unsupported key algorithm ({name}OID {_der.dotted(oid.der)}); "
        f"aoe-pack keys are {_KEY_KINDS}"
    )


def _refused(origin: str, name: str | None) -> KeyFormatError:
    # OpenSSL's InternalError text blames "another library"; the key is what is wrong.
    return KeyFormatError(
        f"{origin}: not a valid {name or 'PEM'} private key (OpenSSL refused its key data)"
    )


def _not_encrypted(origin: str) -> KeyNotEncryptedError:
    return KeyNotEncryptedError(
        f"{origin}: the key is not encrypted but a password was given",
        hint="unset AOE_PACK_PASSWORD for this key",
    )


def _is_encrypted(origin: str) -> KeyPasswordError:
    return KeyPasswordError(
        f"{origin}: the private key is encrypted",
        hint="set AOE_PACK_PASSWORD or run in a terminal to be prompted",
    )


def _load_private_block(
    block: bytes, password: bytes | None, name: str | None, *, origin: str
) -> object:
    try:
        return serialization.load_pem_private_key(block, password=password or None)
    except TypeError as e:
        # cryptography raises TypeError both for "password needed" and "not encrypted".
        raise (_not_encrypted(origin) if password else _is_encrypted(origin)) from e
    except ValueError as e:
        if b"ENCRYPTED" in block:
            raise WrongPasswordError(f"{origin}: wrong password for the private key") from e
        raise KeyFormatError(f"{origin}: not a valid PEM private key ({e})") from e
    except UnsupportedAlgorithm as e:
        raise KeyFormatError(f"{origin}: unsupported key algorithm ({e})") from e
    except InternalError as e:
        raise _refused(origin, name) from e


def load_public(data: bytes, *, origin: str) -> PublicKey:
    """Parse a public key file: one SPKI PEM block."""
    blocks = _blocks(data, origin=origin)
    if not blocks:
        raise KeyFormatError(
            f"{origin}: no PEM public key found",
            hint="pass the .pub file written by `aoe-pack keygen`",
        )
    if len(blocks) != 1:
        raise KeyFormatError(f"{origin}: expected one PEM public key, found {len(blocks)}")
    parsed = _pem_der(blocks[0])
    if parsed is not None and parsed[0] == b"PUBLIC KEY" and _names_xwing(parsed[1]):
        return _xwing_public_der(parsed[1], origin=origin)
    try:
        obj = serialization.load_pem_public_key(blocks[0])
    except (ValueError, UnsupportedAlgorithm) as e:
        raise KeyFormatError(f"{origin}: not a valid PEM public key ({e})") from e
    except InternalError as e:
        raise KeyFormatError(
            f"{origin}: not a valid PEM public key (OpenSSL refused its key data)"
        ) from e
    if isinstance(obj, ed25519.Ed25519PublicKey):
        return _wrap_public(KeyKind.ED25519, obj)
    if isinstance(obj, x25519.X25519PublicKey):
        return _wrap_public(KeyKind.X25519, obj)
    if isinstance(obj, ec.EllipticCurvePublicKey) and isinstance(obj.curve, ec.SECP256R1):
        return _wrap_public(KeyKind.P256, obj)
    raise KeyFormatError(f"{origin}: unsupported public key type {type(obj).__name__}")
