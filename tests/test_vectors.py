"""The committed format-v1 test vectors (tests/vectors/, docs/format.md §14).

Every run verifies and decrypts each committed bundle with the TEST-ONLY keys,
rebuilds the deterministic golden ``v1-plain.aoe`` byte for byte, checks the
primitive vectors of ``expected.json``, and runs the second verifier written
from docs/format.md alone (``_independent_verifier.py``) against the vectors,
fresh bundles and broken ones, requiring the same error codes as aoe-pack.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import shutil
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _modules import load_module
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from aoe_pack._crypto.sign import pae
from aoe_pack._crypto.stream import SegmentCipher, stored_size
from aoe_pack._jcs import canonical_json
from aoe_pack.bundle import EncryptionSpec, build_bundle, unpack_bundle, verify_bundle
from aoe_pack.bundle.container import FileKind, dos_datetime, sniff
from aoe_pack.bundle.format import CHUNK_SIZE, PAYLOAD_TYPE
from aoe_pack.bundle.verify import data_key_for
from aoe_pack.errors import AoePackError
from aoe_pack.keys import keygen, load_decryption_key, load_public_key, load_signing_key

TESTS = Path(__file__).parent
VECTORS = TESTS / "vectors"


mv = load_module("make_vectors", VECTORS / "make_vectors.py")
iv = load_module("_independent_verifier", TESTS / "_independent_verifier.py")
tamper = load_module("_vector_tamper", TESTS / "bundle" / "_tamper.py")
EXPECTED: dict[str, Any] = json.loads((VECTORS / "expected.json").read_text())
BUNDLES = list(EXPECTED["bundles"])
ENCRYPTED = [(b, k) for b in BUNDLES for k in EXPECTED["bundles"][b]["decryptWith"]]


@pytest.fixture(autouse=True, scope="module")
def _unencrypted_keys() -> Iterator[None]:
    """The test-only keys have no password; a password in the environment would be refused."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("AOE_PACK_PASSWORD", raising=False)
        yield


def trusted_keys() -> list[Any]:
    return [load_public_key(str(mv.key_path(k, "pub"))) for k in mv.SIGNERS]


def trusted_pems() -> list[bytes]:
    return [mv.key_path(k, "pub").read_bytes() for k in mv.SIGNERS]


def payload_sha256s(bundle: str) -> dict[str, str]:
    return {f["entry"]: f["sha256"] for f in EXPECTED["bundles"][bundle]["files"]}


# --- the committed bundles, through aoe-pack -------------------------------------------


def test_vectors_are_the_expected_files() -> None:
    names = {p.name for p in VECTORS.iterdir() if p.suffix in (".aoe", ".key", ".pub")}
    keys = {p for p in names if not p.endswith(".aoe")}
    assert {p for p in names if p.endswith(".aoe")} == set(BUNDLES)
    assert all(k.startswith("test-only-") for k in keys), "every committed key is TEST-ONLY"
    assert "TEST-ONLY" in (VECTORS / "README.md").read_text(encoding="utf-8")
    for name, item in EXPECTED["bundles"].items():
        data = (VECTORS / name).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (item["size"], item["sha256"])
    assert sum((VECTORS / n).stat().st_size for n in names) < 12 << 20


@pytest.mark.parametrize("bundle", BUNDLES)
def test_committed_bundle_verifies_with_the_test_only_keys(bundle: str) -> None:
    result = verify_bundle(VECTORS / bundle, trusted_keys=trusted_keys(), threshold=2)
    assert sorted(s.keyid for s in result.signatures if s.valid) == sorted(
        EXPECTED["bundles"][bundle]["signers"]
    )
    assert {f.entry: f.sha256 for f in result.manifest.files} == payload_sha256s(bundle)
    assert result.bytes_checked == sum(
        f["storedSize"] for f in EXPECTED["bundles"][bundle]["files"]
    )


@pytest.mark.parametrize(("bundle", "key"), ENCRYPTED)
def test_committed_bundle_decrypts_to_the_expected_plaintext(
    bundle: str, key: str, tmp_path: Path
) -> None:
    dkey = load_decryption_key(str(VECTORS / key))
    result = verify_bundle(
        VECTORS / bundle, trusted_keys=trusted_keys(), threshold=2, decryption_key=dkey
    )
    assert result.decrypted
    assert data_key_for(result.manifest, dkey).hex() == EXPECTED["bundles"][bundle]["dataKeyHex"]
    unpack_bundle(VECTORS / bundle, tmp_path, trusted_keys=trusted_keys(), decryption_key=dkey)
    written = {
        "payload/" + p.relative_to(tmp_path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in tmp_path.rglob("*")
        if p.is_file()
    }
    assert written == payload_sha256s(bundle)


def test_plain_golden_is_byte_identical_when_rebuilt(tmp_path: Path) -> None:
    rebuilt = tmp_path / "v1-plain.aoe"
    mv.build_plain(rebuilt)
    assert rebuilt.read_bytes() == (VECTORS / "v1-plain.aoe").read_bytes(), (
        "rebuilding tests/vectors/v1-plain.aoe gave different bytes: the bundle format or the "
        "writer changed. If that was intended, run `.venv/bin/python tests/vectors/make_vectors.py "
        "--update-goldens`, say so in docs/format.md (§13), and commit the new vectors; if not, "
        "the change breaks byte-for-byte reproducibility of released bundles."
    )


def test_repository_vectors_are_byte_identical_when_rebuilt() -> None:
    for name, data in mv.repository_vectors(VECTORS).items():
        assert data == (VECTORS / name).read_bytes(), (
            f"rebuilding tests/vectors/{name} gave different bytes: the repository documents "
            "(docs/format.md §15) or their writer changed"
        )


def test_repository_vectors_verify_as_a_device_reads_them() -> None:
    import datetime as dt

    from aoe_pack.repository.root import verify_self_signed
    from aoe_pack.repository.split import verify_index, verify_tag_document
    from aoe_pack.repository.trust import verify_manifest

    now = dt.datetime(2029, 1, 1, tzinfo=dt.UTC)
    root = verify_self_signed((VECTORS / "repo-root.json").read_bytes())
    assert root.threshold == 2
    manifest = verify_manifest((VECTORS / "repo-manifest.json").read_bytes(), root, now=now)
    index = verify_index((VECTORS / "repo-index.json").read_bytes(), root, now=now).index
    assert index.version == manifest.manifest.version == 3
    assert index.manifest_sha256 == manifest.payload_sha256  # made from this very manifest
    assert set(index.tags) == set(manifest.manifest.models)
    doc = verify_tag_document(
        (VECTORS / "repo-tag.json").read_bytes(), root, tag=mv.TAG, version=index.tags[mv.TAG]
    )
    assert dict(doc.model) == manifest.manifest.models.to_dict()[mv.TAG]
    assert dict(doc.bundle_keys) == dict(manifest.manifest.bundle_keys)


def test_tag_patch_vector_rebuilds_the_next_tag_document() -> None:
    """Decode only: zstd promises the same frame only from the same library version."""
    from aoe_pack.repository import envelope
    from aoe_pack.repository.root import verify_self_signed
    from aoe_pack.repository.split import verify_tag_document
    from aoe_pack.repository.tag_patch import apply_patch

    root = verify_self_signed((VECTORS / "repo-root.json").read_bytes())
    old = (VECTORS / "repo-tag.json").read_bytes()
    new = (VECTORS / "repo-tag-4.json").read_bytes()
    base = envelope.parse(old, envelope.TAG_TYPE, what="repo-tag.json").payload
    patch = (VECTORS / mv.TAG_PATCH_VECTOR).read_bytes()
    assert apply_patch(base, patch, what=mv.TAG_PATCH_VECTOR) == new
    assert apply_patch(base, mv.tag_patch_vector(VECTORS), what="rebuilt") == new
    doc = verify_tag_document(new, root, tag=mv.TAG, version=4)
    assert (doc.previous, len(doc.model["releases"])) == (2, 2)


def test_make_vectors_refuses_to_overwrite_without_the_flag(tmp_path: Path) -> None:
    shutil.copy(VECTORS / "expected.json", tmp_path)
    assert mv.main(["--dir", str(tmp_path)]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["expected.json"]


# --- primitive vectors -------------------------------------------------------------------


def test_payload_generator() -> None:
    files = mv.payload_files()
    seed = bytes.fromhex(EXPECTED["payload"]["seedHex"])
    assert files["model.tflite"] == hashlib.shake_256(seed + b"model.tflite").digest(1_100_000)
    assert {p: hashlib.sha256(d).hexdigest() for p, d in files.items()} == {
        p: f["sha256"] for p, f in EXPECTED["payload"]["files"].items()
    }


def test_pae_vector() -> None:
    v = EXPECTED["pae"]
    body = bytes.fromhex(v["payloadHex"])
    expected = b"DSSEv1 43 application/vnd.aoe.bundle.manifest.v1+json 17 " + body
    assert pae(v["payloadType"], body) == bytes.fromhex(v["paeHex"]) == expected
    assert v["payloadType"] == PAYLOAD_TYPE


@pytest.mark.parametrize("kind", mv.KEY_KINDS)
def test_key_id_vector(kind: str) -> None:
    v = EXPECTED["keys"][kind]
    if kind == "aes256":
        assert load_decryption_key(str(VECTORS / v["file"])).key_id == v["keyid"]
        assert hashlib.sha256(bytes.fromhex(v["keyidInputHex"])).hexdigest() == v["keyid"]
        return
    ders = [bytes.fromhex(d) for d in v["spkiDerHex"]]
    assert hashlib.sha256(b"".join(ders)).hexdigest() == v["keyid"]
    assert load_public_key(str(VECTORS / v["file"])).key_id == v["keyid"]
    if kind in mv.SIGNERS:
        assert load_signing_key(str(mv.key_path(kind, "key"))).key_id == v["keyid"]
        assert iv.public_key((VECTORS / v["file"]).read_bytes())[0] == v["keyid"]
    else:
        assert load_decryption_key(str(mv.key_path(kind, "key"))).key_id == v["keyid"]
        assert iv.decryption_key(mv.key_path(kind, "key").read_bytes())[1] == v["keyid"]
    if "rawHex" in v:  # §6.3, §11.2: the raw key is the SPKI minus a fixed prefix
        offset = mv.RAW_KEY_OFFSET[kind]
        assert ders[0][offset:].hex() == v["rawHex"]
        assert len(ders[0]) == {12: 44, 24: 1240}[offset]
    if "seedHex" in v:  # §10.2: an X-Wing PKCS#8 is a fixed 22-byte prefix and the seed
        pkcs8 = bytes.fromhex(v["pkcs8DerHex"])
        assert pkcs8.hex() == "3034020100300d060b2b0601040183e62d81c87a0420" + v["seedHex"]
        assert mv._pem_ders(mv.key_path(kind, "key").read_bytes(), "PRIVATE KEY") == [pkcs8]
        # §10.2: the key file also holds its public key, so its key id needs no ML-KEM.
        public = mv._pem_ders(mv.key_path(kind, "key").read_bytes(), "PUBLIC KEY")
        assert public == ders
        assert hashlib.sha256(public[0]).hexdigest() == v["keyid"]


def test_head_bytes_and_dos_time() -> None:
    head = (VECTORS / "v1-plain.aoe").read_bytes()[:71]
    time, date = dos_datetime(EXPECTED["sourceDateEpoch"])
    assert (time, date) == (EXPECTED["dosTime"], EXPECTED["dosDate"])
    assert head == (
        b"PK\x03\x04\x0a\x00\x00\x08\x00\x00"
        + struct.pack("<HH", time, date)
        + bytes.fromhex("9f1e3fdd")
        + struct.pack("<IIHH", 33, 33, 8, 0)
        + b"mimetypeapplication/vnd.aoe.bundle.v1+zip"
    )
    assert sniff(head) is FileKind.AOE_V1


def test_stored_size_vectors() -> None:
    for v in EXPECTED["storedSizes"]:
        n = v["plaintext"]
        formula = n + 16 * max(1, -(-n // (CHUNK_SIZE - 16)))
        assert stored_size(n, CHUNK_SIZE) == formula == v["stored"]


def test_segment_vector() -> None:
    v = EXPECTED["segmentVector"]
    key, prefix = bytes.fromhex(v["dataKeyHex"]), bytes.fromhex(v["noncePrefixHex"])
    aad = bytes.fromhex(v["aadHex"])
    assert aad == v["entry"].encode() == b"payload/model.tflite"
    data = _read(v["bundle"])
    _, at, size, _ = next(e for e in iv.read_entries(data) if e[0] == v["entry"])
    assert size == v["storedSize"] == stored_size(v["plaintextSize"], CHUNK_SIZE)
    cipher = SegmentCipher(key, prefix, aad)
    plaintext = b""
    for s in v["segments"]:
        nonce = bytes.fromhex(s["nonceHex"])
        assert nonce == prefix + s["index"].to_bytes(4, "big") + bytes([s["last"]])
        assert s["last"] == (s["index"] == len(v["segments"]) - 1)
        ct = data[at + s["storedOffset"] : at + s["storedOffset"] + s["ciphertextLength"]]
        assert hashlib.sha256(ct).hexdigest() == s["ciphertextSha256"]
        assert ct[-16:].hex() == s["tagHex"]
        plain = AESGCM(key).decrypt(nonce, ct, aad)
        assert plain == cipher.open(s["index"], s["last"], ct)
        assert (len(plain), hashlib.sha256(plain).hexdigest()) == (
            s["plaintextLength"],
            s["plaintextSha256"],
        )
        plaintext += plain
    assert plaintext == mv.payload_files()["model.tflite"]
    wrong_last = prefix + (0).to_bytes(4, "big") + b"\x01"  # `last` is authenticated
    with pytest.raises(InvalidTag):
        AESGCM(key).decrypt(wrong_last, data[at : at + CHUNK_SIZE], aad)


def _read(bundle: str) -> bytes:
    return (VECTORS / bundle).read_bytes()


@pytest.mark.parametrize("bundle", [b for b in BUNDLES if "recipients" in EXPECTED["bundles"][b]])
def test_wrapped_key_vectors(bundle: str) -> None:
    v = EXPECTED["bundles"][bundle]
    info = b"aoe-pack/v1 data-key\x00" + mv.TAG.encode() + b"\x00" + mv.VERSION.encode()
    assert bytes.fromhex(v["infoHex"]) == info
    lengths = {"DHKEM(X25519, HKDF-SHA256)": 32, "DHKEM(P-256, HKDF-SHA256)": 65}
    lengths["MLKEM768-X25519"] = 1120
    for r in v["recipients"]:
        if r["type"] == "hpke":
            assert r["encLength"] == lengths[r["kem"]] == len(bytes.fromhex(r["encHex"]))
            assert r["blobLength"] == r["encLength"] + 48
        else:
            assert r["blobLength"] == 60
            kek = bytes.fromhex(mv.key_path("aes256", "key").read_text().strip())
            nonce, sealed = bytes.fromhex(r["nonceHex"]), bytes.fromhex(r["ciphertextAndTagHex"])
            assert AESGCM(kek).decrypt(nonce, sealed, info).hex() == v["dataKeyHex"]


def _extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()


def _expand(prk: bytes, info: bytes, n: int) -> bytes:
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out, i = out + t, i + 1
    return out[:n]


def _labeled(sid: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    return _extract(salt, b"HPKE-v1" + sid + label + ikm)


def _labeled_expand(sid: bytes, prk: bytes, label: bytes, info: bytes, n: int) -> bytes:
    return _expand(prk, n.to_bytes(2, "big") + b"HPKE-v1" + sid + label + info, n)


def _open_base(kem_id: bytes, shared: bytes, info: bytes, ct: bytes) -> bytes:
    """RFC 9180 key schedule (mode_base), KDF 0x0001, AEAD 0x0002, then Open with empty AAD."""
    suite = b"HPKE" + kem_id + b"\x00\x01\x00\x02"
    context = b"\x00" + _labeled(suite, b"", b"psk_id_hash", b"")  # mode_base || psk_id_hash
    context += _labeled(suite, b"", b"info_hash", info)
    secret = _labeled(suite, shared, b"secret", b"")
    key = _labeled_expand(suite, secret, b"key", context, 32)
    nonce = _labeled_expand(suite, secret, b"base_nonce", context, 12)
    return AESGCM(key).decrypt(nonce, ct, b"")


def _wrapped(bundle: str) -> bytes:
    manifest = iv.parse_manifest(_manifest_bytes(bundle))
    return base64.b64decode(manifest["encryption"]["recipients"][0]["wrapped"])


def test_hpke_x25519_key_schedule_by_hand() -> None:
    """RFC 9180 base mode done by hand: KEM 0x0020, KDF 0x0001, AEAD 0x0002, empty AAD (§7.4)."""
    v = EXPECTED["bundles"]["v1-x25519.aoe"]
    (r,) = v["recipients"]
    blob = _wrapped("v1-x25519.aoe")
    enc, ct = blob[:32], blob[32:]
    assert enc.hex() == r["encHex"]
    sk = serialization.load_pem_private_key(mv.key_path("x25519", "key").read_bytes(), None)
    assert isinstance(sk, x25519.X25519PrivateKey)
    pk_r = sk.public_key().public_bytes_raw()
    kem = b"KEM\x00\x20"
    dh = sk.exchange(x25519.X25519PublicKey.from_public_bytes(enc))
    eae_prk = _labeled(kem, b"", b"eae_prk", dh)
    shared = _labeled_expand(kem, eae_prk, b"shared_secret", enc + pk_r, 32)
    data_key = _open_base(b"\x00\x20", shared, bytes.fromhex(v["infoHex"]), ct)
    assert data_key.hex() == v["dataKeyHex"]


def test_hpke_xwing_by_hand_from_the_seed() -> None:
    """§10.2 and §7.4 by hand: seed → keys, X-Wing Decap, key schedule with KEM id 0x647A."""
    v = EXPECTED["bundles"]["v1-mlkem.aoe"]
    k = EXPECTED["keys"]["mlkem768-x25519"]
    (r,) = v["recipients"]
    blob = _wrapped("v1-mlkem.aoe")
    enc, ct = blob[:1120], blob[1120:]
    assert enc.hex() == r["encHex"]
    expanded = hashlib.shake_256(bytes.fromhex(k["seedHex"])).digest(96)
    mk = mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64])
    xk = x25519.X25519PrivateKey.from_private_bytes(expanded[64:])
    pk_x = xk.public_key().public_bytes_raw()
    assert (mk.public_key().public_bytes_raw() + pk_x).hex() == k["rawHex"]
    ss_m = mk.decapsulate(enc[:1088])
    ct_x = enc[1088:]
    ss_x = xk.exchange(x25519.X25519PublicKey.from_public_bytes(ct_x))
    shared = hashlib.sha3_256(ss_m + ss_x + ct_x + pk_x + b"\\.//^\\").digest()
    data_key = _open_base(b"\x64\x7a", shared, bytes.fromhex(v["infoHex"]), ct)
    assert data_key.hex() == v["dataKeyHex"]


def _manifest_bytes(bundle: str) -> bytes:
    data = _read(bundle)
    _, at, size, _ = iv.read_entries(data)[-2]
    return data[at : at + size]


def test_manifest_and_pae_digests() -> None:
    for name, v in EXPECTED["bundles"].items():
        body = _manifest_bytes(name)
        assert hashlib.sha256(body).hexdigest() == v["manifestSha256"]
        assert hashlib.sha256(pae(PAYLOAD_TYPE, body)).hexdigest() == v["paeSha256"]


# --- the independent verifier (docs/format.md alone) ------------------------------------------


@pytest.mark.parametrize("bundle", BUNDLES)
def test_independent_verifier_accepts_every_vector(bundle: str) -> None:
    manifest = iv.verify(VECTORS / bundle, trusted_pems(), threshold=2)
    assert {"payload/" + f["path"]: f["sha256"] for f in manifest["files"]} == payload_sha256s(
        bundle
    )


@pytest.mark.parametrize(("bundle", "key"), ENCRYPTED)
def test_independent_verifier_decrypts_every_vector(bundle: str, key: str) -> None:
    iv.verify(VECTORS / bundle, trusted_pems(), threshold=2, key=(VECTORS / key).read_bytes())
    assert iv.data_key(
        iv.parse_manifest(_manifest_bytes(bundle)), (VECTORS / key).read_bytes()
    ) == bytes.fromhex(EXPECTED["bundles"][bundle]["dataKeyHex"])


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Bundles built now by aoe-pack with keys made now: plain, and for every recipient type."""
    root = tmp_path_factory.mktemp("fresh")
    for kind in mv.KEY_KINDS:
        keygen(kind, root / kind)
    config = mv.write_config(root / "src", encrypt=True)
    signers = [load_signing_key(str(root / f"{k}.key")) for k in mv.SIGNERS]
    specs = {
        "plain": EncryptionSpec(),
        "all": EncryptionSpec(
            recipients=[
                load_public_key(str(root / f"{k}.pub"))
                for k in ("x25519", "p256-kem", "mlkem768-x25519")
            ],
            keks=[bytes.fromhex((root / "aes256.key").read_text())],
        ),
    }
    for name, spec in specs.items():
        build_bundle(config, root / f"{name}.aoe", signing_keys=signers, encryption=spec)
    return {"root": root, "plain": root / "plain.aoe", "all": root / "all.aoe"}


def test_only_the_plain_vector_carries_an_update_url() -> None:
    """§5.2.4 came after the encrypted vectors: a bundle without it must read as before."""
    trusted = [load_public_key(str(mv.key_path(k, "pub"))) for k in mv.SIGNERS]
    for name in mv.BUNDLES:
        model = verify_bundle(VECTORS / name, trusted_keys=trusted, threshold=2).manifest.model
        assert model.update_url == mv.UPDATE_URL.get(name)
    pems = [mv.key_path(k, "pub").read_bytes() for k in mv.SIGNERS]
    plain = iv.verify(VECTORS / "v1-plain.aoe", pems, threshold=2, key=None)
    assert plain["model"]["updateURL"] == "https://models.example.com/test-vectors/"


@pytest.mark.parametrize("key", [None, "x25519", "p256-kem", "mlkem768-x25519", "aes256"])
def test_independent_verifier_accepts_fresh_bundles(
    fresh: dict[str, Path], key: str | None
) -> None:
    trusted = [(fresh["root"] / f"{k}.pub").read_bytes() for k in mv.SIGNERS]
    key_text = (fresh["root"] / f"{key}.key").read_bytes() if key else None
    for bundle in (fresh["plain"], fresh["all"]):
        manifest = iv.verify(bundle, trusted, threshold=2, key=key_text)
        assert manifest["model"]["tag"] == mv.TAG


def _flip(data: bytes, at: int) -> bytes:
    out = bytearray(data)
    out[at] ^= 0x01
    return bytes(out)


def _broken(case: str) -> tuple[bytes, str | None, tuple[str, ...]]:
    """(bundle bytes, decryption key file or None, trusted signer kinds) for one attack."""
    data = _read("v1-x25519.aoe")
    end = len(data) - 22
    (cd_off,) = struct.unpack_from("<I", data, end + 16)
    entries = {name: (at, size) for name, at, size, _ in iv.read_entries(data)}
    model_at, model_size = entries["payload/model.tflite"]
    manifest_at, manifest_size = entries["aoe/manifest.json"]
    first = "payload/assets/empty.bin"  # its local header follows mimetype's, at offset 71
    v2 = bytearray(data)
    v2[66] = ord("2")  # media type v2, with a consistent crc32: a future version
    v2[14:18] = (zlib.crc32(bytes(v2[38:71]))).to_bytes(4, "little")
    cases: dict[str, bytes] = {
        "media-type-prefix": _flip(data, 40),
        "media-type-version-byte": _flip(data, 66),
        "future-version": bytes(v2),
        "mimetype-header-time": _flip(data, 10),
        "payload-header-name": _flip(data, 71 + 30),
        "alignment-padding": _flip(data, 71 + 30 + len(first) + 6),
        "first-chunk": _flip(data, model_at + 100),
        "last-chunk": _flip(data, model_at + model_size - 1),
        "first-chunk-decrypting": _flip(data, model_at + 100),
        "manifest": _flip(data, manifest_at + manifest_size // 2),
        "envelope-json": _flip(data, entries["aoe/signatures.json"][0]),
        "central-version-made-by": _flip(data, cd_off + 4),
        "central-crc32": _flip(data, cd_off + 46 + len("mimetype") + 16),
        "end-record-count": _flip(data, end + 10),
        "end-record-cd-offset": _flip(data, end + 16),
        "truncated": data[:-1],
        "trailing-byte": data + b"\0",
        "empty-file": b"",
        "legacy-atenc": b"\x01" + (16).to_bytes(4, "big") + bytes(16) + bytes(16),
        "plain-zip": _zip_with_one_file(),
        "untrusted-signer": data,
        "wrong-decryption-key": data,
    }
    key = {"first-chunk-decrypting": "test-only-x25519.key"}.get(case)
    key = "test-only-mlkem768-x25519.key" if case == "wrong-decryption-key" else key
    trusted = ("p256-kem",) if case == "untrusted-signer" else mv.SIGNERS
    if case in INSIDER:
        edit, key = INSIDER[case]
        return _insider(edit), key, mv.SIGNERS
    return cases[case], key, trusted


def _recipients_under_two_types(m: dict[str, Any]) -> None:
    """The KEK's id also listed as an HPKE recipient: distinct (type, keyid) pairs, one key id."""
    kek = next(r for r in m["encryption"]["recipients"] if r["type"] == "kek")
    twin = dict(kek, type="hpke", kem="DHKEM(X25519, HKDF-SHA256)")
    m["encryption"]["recipients"] = sorted(
        [*m["encryption"]["recipients"], twin], key=lambda r: (r["type"], r["keyid"])
    )


def _kek_id_as_hpke(m: dict[str, Any]) -> None:
    """The KEK's recipient relabelled ``hpke``: its key id matches the KEK, its type cannot."""
    kek = next(r for r in m["encryption"]["recipients"] if r["type"] == "kek")
    kek.update(type="hpke", kem="DHKEM(X25519, HKDF-SHA256)")
    m["encryption"]["recipients"].sort(key=lambda r: (r["type"], r["keyid"]))


def _labels_one_folder_up(m: dict[str, Any]) -> None:
    """``labels.txt`` listed as ``../labels.txt``: no entry can have that name (§4.7)."""
    next(f for f in m["files"] if f["path"] == "labels.txt")["path"] = "../labels.txt"
    m["files"].sort(key=lambda f: f["path"])


# Broken vectors an insider makes: v1-multi.aoe with one manifest edit, validly
# re-signed by both test-only signing keys (deterministic signatures, so the
# bytes are the same on every run). Each: (edit, decryption key or None).
INSIDER: dict[str, tuple[Callable[[dict[str, Any]], None], str | None]] = {
    "recipients-unsorted": (lambda m: m["encryption"]["recipients"].reverse(), None),
    "recipient-key-id-twice": (_recipients_under_two_types, None),
    "recipient-type-not-the-keys": (_kek_id_as_hpke, "test-only-aes256.key"),
    "config-non-integer": (lambda m: m["config"].update(rtol=0.001), None),
    "role-empty": (lambda m: m["files"][0].update(role=""), None),
    "path-climbs-out": (_labels_one_folder_up, None),
    "uint-above-2-53": (lambda m: m.update(sourceDateEpoch=SENTINEL), None),
    "update-url-cleartext": (lambda m: m["model"].update(updateURL="http://models.example/"), None),
    "update-url-userinfo": (
        lambda m: m["model"].update(updateURL="https://ci:token@models.example/"),
        None,
    ),
    "update-url-not-a-string": (lambda m: m["model"].update(updateURL=["https://x.ex/"]), None),
}


SENTINEL = 4_503_599_627_370_495  # written as 2^53, which JCS itself refuses to write


def _insider(edit: Callable[[dict[str, Any]], None]) -> bytes:
    parts = tamper.take_apart(VECTORS / "v1-multi.aoe")
    manifest = parts.manifest()
    edit(manifest)
    raw = canonical_json(manifest).replace(str(SENTINEL).encode(), str(2**53).encode())
    return bytes(tamper.resign(raw, parts.payloads, mv.signing_keys(), date_time=parts.date_time))


def _zip_with_one_file() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("model.tflite", b"not a bundle")
    return out.getvalue()


ATTACKS = {
    "media-type-prefix": "not-a-bundle",
    "media-type-version-byte": "zip-structure",
    "future-version": "unsupported-version",
    "mimetype-header-time": "zip-structure",
    "payload-header-name": "zip-structure",
    "alignment-padding": "zip-structure",
    "first-chunk": "integrity",
    "last-chunk": "integrity",
    "first-chunk-decrypting": "integrity",
    "manifest": "threshold",
    "envelope-json": "signature",
    "central-version-made-by": "zip-structure",
    "central-crc32": "zip-structure",
    "end-record-count": "zip-structure",
    "end-record-cd-offset": "zip-structure",
    "truncated": "zip-structure",
    "trailing-byte": "zip-structure",
    "empty-file": "not-a-bundle",
    "legacy-atenc": "legacy-aoe-format",
    "plain-zip": "not-a-bundle",
    "untrusted-signer": "threshold",
    "wrong-decryption-key": "no-matching-recipient",
    "recipients-unsorted": "manifest",
    "recipient-key-id-twice": "manifest",
    "recipient-type-not-the-keys": "decryption",
    "config-non-integer": "manifest",
    "role-empty": "manifest",
    "path-climbs-out": "manifest",
    "uint-above-2-53": "manifest",
    "update-url-cleartext": "manifest",
    "update-url-userinfo": "manifest",
    "update-url-not-a-string": "manifest",
}


@pytest.mark.parametrize(("case", "code"), ATTACKS.items())
def test_both_verifiers_reject_with_the_same_code(case: str, code: str, tmp_path: Path) -> None:
    data, key, trusted = _broken(case)
    path = tmp_path / "broken.aoe"
    path.write_bytes(data)
    dkey = load_decryption_key(str(VECTORS / key)) if key else None
    with pytest.raises(AoePackError) as ours:
        verify_bundle(
            path,
            trusted_keys=[load_public_key(str(mv.key_path(k, "pub"))) for k in trusted],
            decryption_key=dkey,
        )
    with pytest.raises(iv.Reject) as theirs:
        iv.verify(
            path,
            [mv.key_path(k, "pub").read_bytes() for k in trusted],
            key=(VECTORS / key).read_bytes() if key else None,
        )
    assert (ours.value.code, theirs.value.code) == (code, code), (ours.value, theirs.value)


@pytest.mark.parametrize("case", ["truncated", "empty-file", "untrusted-signer"])
def test_both_verifiers_refuse_an_impossible_threshold_before_the_file(
    case: str, tmp_path: Path
) -> None:
    """§8: a threshold above the trusted keys is `usage`, whatever is wrong with the file."""
    data, _, _ = _broken(case)
    path = tmp_path / "broken.aoe"
    path.write_bytes(data)
    signer = mv.SIGNERS[0]
    with pytest.raises(AoePackError) as ours:
        verify_bundle(
            path, trusted_keys=[load_public_key(str(mv.key_path(signer, "pub")))], threshold=2
        )
    with pytest.raises(iv.Reject) as theirs:
        iv.verify(path, [mv.key_path(signer, "pub").read_bytes()], threshold=2)
    assert (ours.value.code, theirs.value.code) == ("usage", "usage")
