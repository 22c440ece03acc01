"""Key files made hostile (docs/format.md §10): one named test per attack, exact errors."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from _cli import aoe

from aoe_pack._crypto import _der
from aoe_pack._crypto import asymmetric as _keys
from aoe_pack._crypto.asymmetric import KeyKind
from aoe_pack.errors import KeyFormatError
from aoe_pack.keys import keygen

ORIGIN = "k.key"
ED448_OID = _der.oid("1.3.101.113")
ED25519_OID = _der.oid("1.3.101.112")


def pem(label: str, der: bytes) -> bytes:
    b64 = base64.b64encode(der)
    body = b"".join(b64[i : i + 64] + b"\n" for i in range(0, len(b64), 64))
    return f"-----BEGIN {label}-----\n".encode() + body + f"-----END {label}-----\n".encode()


def pkcs8(algorithm: bytes, key: bytes) -> bytes:
    """A PrivateKeyInfo as RFC 8410 writes EdDSA keys: the key in a nested OCTET STRING."""
    return _der.pkcs8(algorithm, _der.octet_string(key))


def error(doc: dict) -> tuple[str, str]:
    assert "error" in doc, doc
    return doc["error"]["code"], doc["error"]["message"]


# --- third-party parsers never answer with their own exceptions -------------------------

UNSUPPORTED_ED448 = (
    "{origin}: unsupported key algorithm (Ed448, OID 1.3.101.113); aoe-pack keys are "
    "Ed25519, ECDSA P-256, X25519, P-256 or ML-KEM-768+X25519 (X-Wing)"
)
ED448_32 = pem("PRIVATE KEY", pkcs8(ED448_OID, bytes(32)))


def test_pkcs8_naming_ed448_with_a_32_byte_key_is_key_format() -> None:
    with pytest.raises(KeyFormatError) as e:
        _keys.load_private(ED448_32, None, origin=ORIGIN)
    assert e.value.message == UNSUPPORTED_ED448.format(origin=ORIGIN)


def test_encrypted_pkcs8_naming_ed448_with_a_32_byte_key_is_key_format() -> None:
    text = pem("ENCRYPTED PRIVATE KEY", _der.encrypt_pkcs8(pkcs8(ED448_OID, bytes(32)), b"pw"))
    with pytest.raises(KeyFormatError) as e:
        _keys.load_private(text, b"pw", origin=ORIGIN)
    assert e.value.message == UNSUPPORTED_ED448.format(origin=ORIGIN)


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_pkcs8_ed25519_key_of_31_bytes_is_key_format(encrypted: bool) -> None:
    info = pkcs8(ED25519_OID, bytes(31))
    text = pem("ENCRYPTED PRIVATE KEY", _der.encrypt_pkcs8(info, b"pw")) if encrypted else None
    with pytest.raises(KeyFormatError) as e:
        _keys.load_private(
            text or pem("PRIVATE KEY", info), b"pw" if encrypted else None, origin=ORIGIN
        )
    assert (
        e.value.message
        == f"{ORIGIN}: not a valid Ed25519 private key (OpenSSL refused its key data)"
    )


@pytest.fixture
def ed448_file(tmp_path: Path) -> Path:
    path = tmp_path / "ed448.key"
    path.write_bytes(ED448_32)
    return path


def test_ed448_key_as_decryption_key_is_key_format(ed448_file: Path, built_bundle, signer) -> None:
    pub = ed448_file.with_name("signer.pub")
    pub.write_bytes(signer.public.pem)
    for command in ("verify", "unpack"):
        out = ["--out", ed448_file.with_name("out")] if command == "unpack" else []
        r = aoe(
            command,
            built_bundle(),
            *out,
            "--trusted-key",
            pub,
            "--decryption-key",
            ed448_file,
            json=True,
        )
        assert (r.exit_code, error(r.doc)) == (
            1,
            ("key-format", UNSUPPORTED_ED448.format(origin=ed448_file)),
        )


def test_ed448_key_as_sign_key_is_key_format(ed448_file: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    pub = tmp_path / "k.pub"
    pub.write_bytes(_keys.generate(KeyKind.ED25519).public.pem)
    r = aoe(
        "manifest", "init", "--repo", repo, "--root-key", pub, "--sign-key", ed448_file, json=True
    )
    assert (r.exit_code, error(r.doc)) == (
        1,
        ("key-format", UNSUPPORTED_ED448.format(origin=ed448_file)),
    )


# --- §10.1: nothing but whitespace outside the PEM blocks -------------------------------


@pytest.fixture(scope="module")
def ed25519_files() -> dict[str, bytes]:
    key = _keys.generate(KeyKind.ED25519)
    return {"private": _keys.private_pem(key, None), "public": key.public.pem}


def load(kind: str, text: bytes) -> object:
    if kind == "private":
        return _keys.load_private(text, None, origin=ORIGIN)
    return _keys.load_public(text, origin=ORIGIN)


OUTSIDE = "k.key: text outside the PEM block at byte {at}; a key file holds only PEM blocks"


@pytest.mark.parametrize("kind", ["private", "public"])
def test_explanatory_text_before_the_pem_block_is_key_format(
    kind: str, ed25519_files: dict[str, bytes]
) -> None:
    with pytest.raises(KeyFormatError) as e:
        load(kind, b"Key: the release signer\n" + ed25519_files[kind])
    assert e.value.message == OUTSIDE.format(at=0)


@pytest.mark.parametrize("kind", ["private", "public"])
def test_text_after_the_pem_block_is_key_format(kind: str, ed25519_files: dict[str, bytes]) -> None:
    text = ed25519_files[kind]
    with pytest.raises(KeyFormatError) as e:
        load(kind, text + b"\n  trailing words\n")
    assert e.value.message == OUTSIDE.format(at=len(text) + 3)


@pytest.mark.parametrize("kind", ["private", "public"])
def test_text_on_the_begin_line_is_key_format(kind: str, ed25519_files: dict[str, bytes]) -> None:
    with pytest.raises(KeyFormatError) as e:
        load(kind, b"#" + ed25519_files[kind])
    assert e.value.message == OUTSIDE.format(at=0)


@pytest.mark.parametrize("kind", ["private", "public"])
def test_text_on_the_end_line_is_key_format(kind: str, ed25519_files: dict[str, bytes]) -> None:
    text = ed25519_files[kind].rstrip(b"\n")
    with pytest.raises(KeyFormatError) as e:
        load(kind, text + b"x\n")
    assert e.value.message == OUTSIDE.format(at=len(text))


@pytest.mark.parametrize("kind", ["private", "public"])
def test_whitespace_around_the_pem_block_is_accepted(
    kind: str, ed25519_files: dict[str, bytes]
) -> None:
    """Blank lines, CRLF and a missing final newline (``$(cat key)``) are not text."""
    text = ed25519_files[kind]
    for variant in (
        b"\n \t\r\n" + text + b"\r\n\n",
        text.rstrip(b"\n"),
        text.replace(b"\n", b"\r\n"),
    ):
        load(kind, variant)


# --- §10.2: a private key file may carry its public key; X-Wing's does --------------------

XWING_SEED = bytes(range(32))
NOT_ITS_PUBLIC = "k.key: the PUBLIC KEY block is not the public key of the private key"
LAYOUT = "k.key: a private key file holds one private key block, then at most its PUBLIC KEY block"


def _der_of(block: bytes) -> bytes:
    return base64.b64decode(b"".join(block.strip().split(b"\n")[1:-1]))


@pytest.mark.parametrize("password", [None, b"pw"], ids=["plain", "encrypted"])
def test_keygen_writes_the_xwing_public_key_into_the_key_file(
    password: bytes | None, tmp_path: Path
) -> None:
    """A device without ML-KEM takes its key id from the file: SHA-256 of the block's DER."""
    gen = keygen("mlkem768-x25519", tmp_path / "dev", password=password)
    text = gen.private_path.read_bytes()
    at = text.index(b"-----BEGIN PUBLIC KEY-----")
    first = b"ENCRYPTED PRIVATE KEY" if password else b"PRIVATE KEY"
    assert text.startswith(b"-----BEGIN " + first + b"-----\n")
    assert text[at:] == gen.public_path.read_bytes()
    assert hashlib.sha256(_der_of(text[at:])).hexdigest() == gen.key_id
    assert _keys.load_private(text, password, origin=ORIGIN).key_id == gen.key_id


@pytest.mark.parametrize("password", [None, b"pw"], ids=["plain", "encrypted"])
def test_xwing_key_file_whose_public_block_is_another_keys_is_key_format(
    password: bytes | None,
) -> None:
    key = _keys.xwing_from_seed(XWING_SEED)
    other = _keys.xwing_from_seed(bytes(32))
    with pytest.raises(KeyFormatError) as e:
        _keys.load_private(
            _keys.private_pem(key, password) + other.public.pem, password, origin=ORIGIN
        )
    assert e.value.message == NOT_ITS_PUBLIC


def test_public_block_before_the_private_block_is_key_format() -> None:
    key = _keys.xwing_from_seed(XWING_SEED)
    with pytest.raises(KeyFormatError) as e:
        _keys.load_private(key.public.pem + _keys.private_pem(key, None), None, origin=ORIGIN)
    assert e.value.message == LAYOUT


def test_two_public_blocks_after_the_private_block_are_key_format() -> None:
    key = _keys.xwing_from_seed(XWING_SEED)
    text = _keys.private_pem(key, None) + key.public.pem * 2
    with pytest.raises(KeyFormatError) as e:
        _keys.load_private(text, None, origin=ORIGIN)
    assert e.value.message == LAYOUT


def test_public_block_that_is_not_base64_is_key_format() -> None:
    key = _keys.xwing_from_seed(XWING_SEED)
    broken = key.public.pem.replace(b"\n", b"\n*", 1)
    with pytest.raises(KeyFormatError) as e:
        _keys.load_private(_keys.private_pem(key, None) + broken, None, origin=ORIGIN)
    assert e.value.message == NOT_ITS_PUBLIC


@pytest.mark.parametrize("kind", [k for k in KeyKind if k is not KeyKind.MLKEM768_X25519])
def test_other_key_file_followed_by_its_own_public_block_loads(kind: KeyKind) -> None:
    key = _keys.generate(kind)
    loaded = _keys.load_private(_keys.private_pem(key, None) + key.public.pem, None, origin=ORIGIN)
    assert loaded.key_id == key.key_id


def test_xwing_key_file_without_its_public_block_still_loads() -> None:
    """Files written before the public block was added: the key id is derived from the seed."""
    key = _keys.xwing_from_seed(XWING_SEED)
    assert (
        _keys.load_private(_keys.private_pem(key, None), None, origin=ORIGIN).key_id == key.key_id
    )
