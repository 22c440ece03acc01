"""The few DER structures aoe-pack writes itself, and PBES2 (RFC 8018) around them.

``cryptography`` has no encoding for X-Wing keys, so their PKCS#8 (RFC 5958)
and SubjectPublicKeyInfo (RFC 5280) are built and parsed here, and so is the
PKCS#8 encryption. The decoder accepts exact DER only: definite lengths in
their shortest form, low tag numbers, minimal non-negative INTEGERs, no bytes
after the value. Anything else is a :class:`DerError`, because a key file that
two parsers could read differently must not be a key file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

INTEGER, BIT_STRING, OCTET_STRING, NULL, OBJECT_IDENTIFIER, SEQUENCE = 2, 3, 4, 5, 6, 0x30
_NAMES = {
    INTEGER: "INTEGER",
    BIT_STRING: "BIT STRING",
    OCTET_STRING: "OCTET STRING",
    NULL: "NULL",
    OBJECT_IDENTIFIER: "OBJECT IDENTIFIER",
    SEQUENCE: "SEQUENCE",
}


class DerError(ValueError):
    """The bytes are not the exact DER structure expected; the message says where."""


class WrongPasswordError(Exception):
    """PBES2 decryption gave no valid plaintext: the password (or the ciphertext) is wrong."""


# --- encoding ---------------------------------------------------------------------------


def tlv(tag: int, content: bytes) -> bytes:
    """One DER value: tag, shortest definite length, content."""
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def sequence(*items: bytes) -> bytes:
    """A SEQUENCE of already-encoded values."""
    return tlv(SEQUENCE, b"".join(items))


def integer(n: int) -> bytes:
    """A non-negative INTEGER in its minimal two's-complement form."""
    assert n >= 0
    return tlv(INTEGER, n.to_bytes(n.bit_length() // 8 + 1, "big"))


def octet_string(data: bytes) -> bytes:
    """An OCTET STRING."""
    return tlv(OCTET_STRING, data)


def bit_string(data: bytes) -> bytes:
    """A BIT STRING of whole bytes (zero unused bits)."""
    return tlv(BIT_STRING, b"\x00" + data)


def oid(dotted: str) -> bytes:
    """An OBJECT IDENTIFIER from its dotted form."""
    first, second, *rest = (int(arc) for arc in dotted.split("."))
    body = b""
    for arc in (40 * first + second, *rest):
        chunk = [arc & 0x7F]
        while arc := arc >> 7:
            chunk.append(0x80 | (arc & 0x7F))
        body += bytes(reversed(chunk))
    return tlv(OBJECT_IDENTIFIER, body)


def dotted(encoded: bytes) -> str:
    """The dotted form of an encoded OBJECT IDENTIFIER (for messages)."""
    arcs, arc = [], 0
    for byte in encoded[2:]:
        arc = arc << 7 | byte & 0x7F
        if not byte & 0x80:
            arcs.append(arc)
            arc = 0
    first = min(arcs[0] // 40, 2) if arcs else 0
    return ".".join(str(a) for a in (first, arcs[0] - 40 * first, *arcs[1:])) if arcs else "?"


NULL_VALUE = tlv(NULL, b"")


# --- decoding ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Value:
    """One decoded DER value; ``der`` is its whole encoding (tag, length and content)."""

    tag: int
    content: bytes
    der: bytes
    content_at: int
    """Where ``content`` starts in the outermost value (for messages)."""


def _read(data: bytes, at: int, base: int = 0) -> Value:
    """The value starting at ``at`` of ``data``, which starts at ``base`` of the outermost."""
    where = base + at
    if len(data) - at < 2:
        raise DerError(f"truncated DER value at byte {where}")
    tag, first = data[at], data[at + 1]
    if tag & 0x1F == 0x1F:
        raise DerError(f"unsupported high tag number form at byte {where}")
    start = at + 2
    if first < 0x80:
        length = first
    elif first == 0x80:
        raise DerError(f"indefinite length at byte {where} (BER, not DER)")
    else:
        size = first & 0x7F
        raw = data[start : start + size]
        if size > 4 or len(raw) < size:
            raise DerError(f"bad length field at byte {where}")
        length = int.from_bytes(raw, "big")
        if raw[0] == 0 or length < 0x80:
            raise DerError(f"length at byte {where} is not in its shortest form (not DER)")
        start += size
    end = start + length
    if end > len(data):
        name = _NAMES.get(tag, f"tag {tag:#04x}")
        raise DerError(f"{name} at byte {where} runs past the end of its container")
    return Value(tag, data[start:end], data[at:end], base + start)


def decode(data: bytes, tag: int) -> Value:
    """The single value that is all of ``data``; its tag must be ``tag``."""
    value = _read(data, 0)
    if len(value.der) != len(data):
        extra = len(data) - len(value.der)
        raise DerError(f"{extra} extra byte{'s' * (extra != 1)} after the DER value")
    _expect(value, tag)
    return value


def items(value: Value) -> list[Value]:
    """The elements of a SEQUENCE."""
    _expect(value, SEQUENCE)
    out, at = [], 0
    while at < len(value.content):
        out.append(_read(value.content, at, value.content_at))
        at += len(out[-1].der)
    return out


def children(value: Value, *tags: int) -> list[Value]:
    """The elements of a SEQUENCE, exactly one of each tag in ``tags``, in order."""
    out = items(value)
    if len(out) != len(tags):
        raise DerError(f"SEQUENCE has {len(out)} elements, expected {len(tags)}")
    for item, tag in zip(out, tags, strict=True):
        _expect(item, tag)
    return out


def _expect(value: Value, tag: int) -> None:
    if value.tag != tag:
        got = _NAMES.get(value.tag, f"tag {value.tag:#04x}")
        raise DerError(f"expected {_NAMES[tag]}, found {got}")


def to_int(value: Value) -> int:
    """A non-negative INTEGER, refusing non-minimal encodings."""
    _expect(value, INTEGER)
    c = value.content
    if not c or c[0] & 0x80:
        raise DerError("INTEGER is empty or negative")
    if len(c) > 1 and c[0] == 0 and not c[1] & 0x80:
        raise DerError("INTEGER is not in its shortest form (not DER)")
    return int.from_bytes(c, "big")


# --- PKCS#8 and SubjectPublicKeyInfo with parameterless algorithms ---------------------


def pkcs8(algorithm: bytes, private_key: bytes) -> bytes:
    """PrivateKeyInfo v0: SEQUENCE { 0, SEQUENCE { ``algorithm`` }, OCTET STRING }."""
    return sequence(integer(0), sequence(algorithm), octet_string(private_key))


def spki(algorithm: bytes, public_key: bytes) -> bytes:
    """SubjectPublicKeyInfo: SEQUENCE { SEQUENCE { ``algorithm`` }, BIT STRING }."""
    return sequence(sequence(algorithm), bit_string(public_key))


def parse_pkcs8(der: bytes, algorithm: bytes) -> bytes:
    """The privateKey octets of a PKCS#8 that :func:`pkcs8` could have written."""
    version, alg, key = children(decode(der, SEQUENCE), INTEGER, SEQUENCE, OCTET_STRING)
    if to_int(version) != 0:
        raise DerError("PKCS#8 version must be 0 (no attributes or public key)")
    _expect_algorithm(alg, algorithm)
    return key.content


def parse_spki(der: bytes, algorithm: bytes) -> bytes:
    """The public key bytes of a SubjectPublicKeyInfo that :func:`spki` could have written."""
    alg, key = children(decode(der, SEQUENCE), SEQUENCE, BIT_STRING)
    _expect_algorithm(alg, algorithm)
    if key.content[:1] != b"\x00":
        raise DerError("the public key BIT STRING must have 0 unused bits")
    return key.content[1:]


def _expect_algorithm(alg: Value, algorithm: bytes) -> None:
    if alg.content != algorithm:
        raise DerError(
            f"the algorithm must be {dotted(algorithm)} with no parameters; "
            f"found AlgorithmIdentifier {alg.der.hex()}"
        )


# --- PBES2: PBKDF2-HMAC-SHA256 and AES-256-CBC (RFC 8018) ------------------------------

OID_PBES2 = oid("1.2.840.113549.1.5.13")
OID_PBKDF2 = oid("1.2.840.113549.1.5.12")
OID_HMAC_SHA256 = oid("1.2.840.113549.2.9")
OID_AES256_CBC = oid("2.16.840.1.101.3.4.1.42")
PBKDF2_ITERATIONS = 600_000
"""What we write: OWASP's 2023 figure for PBKDF2-HMAC-SHA256."""
MAX_ITERATIONS = 10_000_000
"""What we read at most: beyond it, loading a key file would take minutes."""
_SALT, _IV, _KEY = 16, 16, 32


def _kek(password: bytes, salt: bytes, iterations: int) -> bytes:
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=_KEY, salt=salt, iterations=iterations)
    return kdf.derive(password)


def encrypt_pkcs8(private_key_info: bytes, password: bytes) -> bytes:
    """EncryptedPrivateKeyInfo DER: PBES2 with a fresh 16-byte salt and IV."""
    salt, iv = os.urandom(_SALT), os.urandom(_IV)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(private_key_info) + padder.finalize()
    enc = Cipher(algorithms.AES(_kek(password, salt, PBKDF2_ITERATIONS)), modes.CBC(iv)).encryptor()
    sealed = enc.update(padded) + enc.finalize()
    prf = sequence(OID_HMAC_SHA256, NULL_VALUE)
    kdf = sequence(OID_PBKDF2, sequence(octet_string(salt), integer(PBKDF2_ITERATIONS), prf))
    scheme = sequence(OID_PBES2, sequence(kdf, sequence(OID_AES256_CBC, octet_string(iv))))
    return sequence(scheme, octet_string(sealed))


@dataclass(frozen=True)
class _Pbes2:
    salt: bytes
    iterations: int
    iv: bytes
    sealed: bytes


def _pbes2_fields(der: bytes) -> _Pbes2 | None:
    """The PBES2 fields, or None when ``der`` does not use exactly our algorithms."""
    try:
        scheme, sealed = children(decode(der, SEQUENCE), SEQUENCE, OCTET_STRING)
        scheme_oid, params = children(scheme, OBJECT_IDENTIFIER, SEQUENCE)
        kdf, cipher = children(params, SEQUENCE, SEQUENCE)
        kdf_oid, kdf_params = children(kdf, OBJECT_IDENTIFIER, SEQUENCE)
        cipher_oid, iv = children(cipher, OBJECT_IDENTIFIER, OCTET_STRING)
        # PBKDF2-params: salt, iterationCount, keyLength OPTIONAL, prf DEFAULT hmacWithSHA1.
        fields = items(kdf_params)
    except DerError:
        return None
    if len(fields) < 2 or (fields[0].tag, fields[1].tag) != (OCTET_STRING, INTEGER):
        return None
    salt, count, *rest = fields
    key_length = rest.pop(0) if rest and rest[0].tag == INTEGER else None
    prf = rest.pop(0) if rest and rest[0].tag == SEQUENCE else None
    ours = (scheme_oid.der, kdf_oid.der, cipher_oid.der) == (OID_PBES2, OID_PBKDF2, OID_AES256_CBC)
    # RFC 8018 gives the PRF NULL parameters; some writers leave them out.
    prf_ok = prf is not None and prf.content in (OID_HMAC_SHA256, OID_HMAC_SHA256 + NULL_VALUE)
    if rest or not (ours and prf_ok):
        return None
    if key_length is not None and to_int(key_length) != _KEY:
        raise DerError(f"PBKDF2 keyLength must be {_KEY} for AES-256")
    return _Pbes2(salt.content, to_int(count), iv.content, sealed.content)


def decrypt_pkcs8(der: bytes, password: bytes) -> bytes | None:
    """The PrivateKeyInfo DER inside an EncryptedPrivateKeyInfo.

    None when the key is not encrypted with PBES2, PBKDF2-HMAC-SHA256 and
    AES-256-CBC (the caller may hand it to another parser); :class:`DerError`
    for a malformed one; :class:`WrongPasswordError` when it does not decrypt.
    """
    f = _pbes2_fields(der)
    if f is None:
        return None
    if not 8 <= len(f.salt) <= 64:
        raise DerError(f"PBKDF2 salt is {len(f.salt)} bytes; expected 8 to 64")
    if not 1 <= f.iterations <= MAX_ITERATIONS:
        raise DerError(f"PBKDF2 iteration count {f.iterations} is outside 1..{MAX_ITERATIONS}")
    if len(f.iv) != _IV:
        raise DerError(f"AES-256-CBC IV is {len(f.iv)} bytes; expected {_IV}")
    if not f.sealed or len(f.sealed) % 16:
        raise DerError(f"encrypted data is {len(f.sealed)} bytes, not whole AES blocks")
    dec = Cipher(algorithms.AES(_kek(password, f.salt, f.iterations)), modes.CBC(f.iv)).decryptor()
    padded = dec.update(f.sealed) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        plain = unpadder.update(padded) + unpadder.finalize()
        decode(plain, SEQUENCE)
    except (ValueError, DerError) as e:
        # Bad padding, or padding that passed by chance over garbage.
        raise WrongPasswordError from e
    return plain
