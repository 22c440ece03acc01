"""Build -> verify -> unpack round trips, determinism, layout and interoperability."""

from __future__ import annotations

import os
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from _tamper import decryption_key, take_apart

from aoe_pack._crypto.asymmetric import PrivateKey
from aoe_pack.bundle import (
    EncryptionSpec,
    build_bundle,
    inspect_bundle,
    unpack_bundle,
    verify_bundle,
)
from aoe_pack.bundle.container import MEDIA_TYPE_V1, read_layout
from aoe_pack.bundle.format import (
    CHUNK_SIZE,
    DEFAULT_SOURCE_DATE_EPOCH,
    MANIFEST_ENTRY,
    SIGNATURES_ENTRY,
)
from aoe_pack.keys.load import DecryptionKey

FILES = {
    "model.tflite": os.urandom(2 * CHUNK_SIZE + 12345),
    "labels.txt": b"cat\ndog\n",
    "assets/vocab/words.bin": os.urandom(777),
}
KEMS = {
    "x25519": "DHKEM(X25519, HKDF-SHA256)",
    "p256-kem": "DHKEM(P-256, HKDF-SHA256)",
    "mlkem768-x25519": "MLKEM768-X25519",
}


def round_trip(
    bundle: Path,
    out: Path,
    signers: list[PrivateKey],
    files: dict[str, bytes],
    key: DecryptionKey | None = None,
) -> None:
    """Verify (without and with the key) and unpack; the unpacked files must equal ``files``."""
    trusted = [s.public for s in signers]
    threshold = len(signers)
    assert not verify_bundle(bundle, trusted_keys=trusted, threshold=threshold).decrypted
    result = verify_bundle(bundle, trusted_keys=trusted, threshold=threshold, decryption_key=key)
    encrypted = result.manifest.encryption is not None
    assert result.decrypted == (encrypted and key is not None)
    assert {c.keyid for c in result.signatures if c.valid} == {s.key_id for s in signers}
    unpacked = unpack_bundle(
        bundle, out, trusted_keys=trusted, threshold=threshold, decryption_key=key
    )
    assert sorted(unpacked.written) == sorted(out / p for p in files)
    assert {p.relative_to(out).as_posix(): p.read_bytes() for p in unpacked.written} == files
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == sorted(
        Path(p).name for p in files
    )


# --- recipients and signers -----------------------------------------------------------


@pytest.mark.parametrize("kind", ["x25519", "p256-kem", "mlkem768-x25519"])
def test_round_trip_hpke_recipient(
    built_bundle, signer: PrivateKey, recipients: dict[str, PrivateKey], tmp_path: Path, kind: str
) -> None:
    key = recipients[kind]
    bundle = built_bundle(FILES, recipients=[key.public])
    (recipient,) = inspect_bundle(bundle).manifest.encryption.recipients
    assert (recipient.type, recipient.keyid, recipient.kem) == ("hpke", key.key_id, KEMS[kind])
    round_trip(bundle, tmp_path / "out", [signer], FILES, decryption_key(key))


def test_round_trip_kek(built_bundle, signer: PrivateKey, kek: bytes, tmp_path: Path) -> None:
    bundle = built_bundle(FILES, keks=[kek])
    (recipient,) = inspect_bundle(bundle).manifest.encryption.recipients
    assert (recipient.type, recipient.kem) == ("kek", None)
    round_trip(bundle, tmp_path / "out", [signer], FILES, decryption_key(kek))


def test_each_of_several_recipients_can_decrypt(
    built_bundle, signer: PrivateKey, recipients: dict[str, PrivateKey], kek: bytes, tmp_path: Path
) -> None:
    bundle = built_bundle(FILES, recipients=[k.public for k in recipients.values()], keks=[kek])
    listed = inspect_bundle(bundle).manifest.encryption.recipients
    assert len(listed) == 4
    assert [(r.type, r.keyid) for r in listed] == sorted((r.type, r.keyid) for r in listed)
    for name, key in [*recipients.items(), ("kek", kek)]:
        round_trip(bundle, tmp_path / name, [signer], FILES, decryption_key(key))


@pytest.mark.parametrize("which", ["ed25519", "p256", "both"])
def test_round_trip_signers(
    built_bundle, signer: PrivateKey, signer2: PrivateKey, tmp_path: Path, which: str
) -> None:
    signers = {"ed25519": [signer], "p256": [signer2], "both": [signer, signer2]}[which]
    bundle = built_bundle(FILES, signers=signers)
    round_trip(bundle, tmp_path / "out", signers, FILES)


def test_one_trusted_signer_of_two_meets_threshold_one(
    built_bundle, signer: PrivateKey, signer2: PrivateKey
) -> None:
    bundle = built_bundle(FILES, signers=[signer, signer2])
    result = verify_bundle(bundle, trusted_keys=[signer2.public])
    assert {(c.keyid, c.trusted, c.valid) for c in result.signatures} == {
        (signer.key_id, False, False),
        (signer2.key_id, True, True),
    }


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_empty_model_file(
    built_bundle, signer: PrivateKey, x25519_key: PrivateKey, tmp_path: Path, encrypted: bool
) -> None:
    files = {"model.tflite": b""}
    bundle = built_bundle(files, recipients=[x25519_key.public] if encrypted else [])
    (f,) = inspect_bundle(bundle).manifest.files
    assert (f.size, f.stored.size, len(f.stored.chunks)) == (0, 16 if encrypted else 0, 1)
    key = decryption_key(x25519_key) if encrypted else None
    round_trip(bundle, tmp_path / "out", [signer], files, key)


# --- determinism ----------------------------------------------------------------------


def test_unencrypted_build_is_deterministic(
    make_config, signer: PrivateKey, signer2: PrivateKey, tmp_path: Path
) -> None:
    config = make_config(FILES)
    a, b = tmp_path / "a.aoe", tmp_path / "b.aoe"
    for out in (a, b):
        build_bundle(config, out, signing_keys=[signer, signer2], encryption=EncryptionSpec())
    assert a.read_bytes() == b.read_bytes()


def test_source_date_epoch_sets_the_zip_timestamps(
    make_config, signer: PrivateKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config(FILES)
    default, stamped = tmp_path / "default.aoe", tmp_path / "stamped.aoe"
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    build_bundle(config, default, signing_keys=[signer], encryption=EncryptionSpec())
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000001")  # odd: DOS rounds down to 2 s
    build_bundle(config, stamped, signing_keys=[signer], encryption=EncryptionSpec())

    assert default.read_bytes() != stamped.read_bytes()
    for path, epoch, when in (
        (default, DEFAULT_SOURCE_DATE_EPOCH, (1980, 1, 1, 0, 0, 0)),
        (stamped, 1700000001, (2023, 11, 14, 22, 13, 20)),
    ):
        with zipfile.ZipFile(path) as z:
            assert {info.date_time for info in z.infolist()} == {when}
        assert inspect_bundle(path).manifest.source_date_epoch == epoch
    assert datetime(2023, 11, 14, 22, 13, 21, tzinfo=UTC).timestamp() == 1700000001


def test_encrypted_builds_differ(
    make_config, signer: PrivateKey, x25519_key: PrivateKey, tmp_path: Path
) -> None:
    config = make_config(FILES)
    spec = EncryptionSpec(recipients=[x25519_key.public])
    a, b = tmp_path / "a.aoe", tmp_path / "b.aoe"
    for out in (a, b):
        build_bundle(config, out, signing_keys=[signer], encryption=spec)
    assert a.read_bytes() != b.read_bytes()
    pa, pb = take_apart(a), take_apart(b)
    prefixes = [{f["path"]: f["noncePrefix"] for f in p.manifest()["files"]} for p in (pa, pb)]
    assert set(prefixes[0].values()).isdisjoint(prefixes[1].values())
    assert pa.payloads["payload/model.tflite"] != pb.payloads["payload/model.tflite"]
    for out in (a, b):
        verify_bundle(out, trusted_keys=[signer.public], decryption_key=decryption_key(x25519_key))


# --- layout and interoperability ------------------------------------------------------


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_every_entry_is_64_byte_aligned(
    built_bundle, x25519_key: PrivateKey, encrypted: bool
) -> None:
    files = {"model.tflite": b"m" * 1001, "a.bin": b"a" * 3, "b/c.bin": b"", "labels.txt": b"l"}
    bundle = built_bundle(files, recipients=[x25519_key.public] if encrypted else [])
    with bundle.open("rb") as fp:
        layout = read_layout(fp, file_size=bundle.stat().st_size)
    names = [e.name for e in layout.entries]
    assert names == [*sorted("payload/" + p for p in files), MANIFEST_ENTRY, SIGNATURES_ENTRY]
    assert [e.data_offset % 64 for e in layout.entries] == [0] * len(names)


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_python_zipfile_reads_the_bundle(
    built_bundle, x25519_key: PrivateKey, encrypted: bool
) -> None:
    bundle = built_bundle(FILES, recipients=[x25519_key.public] if encrypted else [])
    with zipfile.ZipFile(bundle) as z:
        assert z.testzip() is None
        assert z.namelist() == [
            "mimetype",
            *sorted("payload/" + p for p in FILES),
            MANIFEST_ENTRY,
            SIGNATURES_ENTRY,
        ]
        assert z.read("mimetype") == MEDIA_TYPE_V1
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_STORED}
        if not encrypted:
            assert {p: z.read("payload/" + p) for p in FILES} == FILES


# --- inspect --------------------------------------------------------------------------


def test_inspect_output_fields(
    built_bundle, signer: PrivateKey, signer2: PrivateKey, x25519_key: PrivateKey, kek: bytes
) -> None:
    bundle = built_bundle(
        FILES, signers=[signer, signer2], recipients=[x25519_key.public], keks=[kek]
    )
    info = inspect_bundle(bundle).to_dict()
    assert set(info) == {
        "bundle", "verified", "size", "mediaType", "format", "model", "files", "signers",
        "encryption", "provenance", "config", "sourceDateEpoch", "manifestSha256",
    }  # fmt: skip

    assert info["bundle"] == str(bundle)
    assert info["verified"] is False
    assert info["size"] == bundle.stat().st_size
    assert info["mediaType"] == MEDIA_TYPE_V1.decode()
    assert info["format"] == "aoe-bundle/v1"
    assert info["model"] == {
        "tag": "tag_x", "name": "model.tflite", "version": "1.0.0", "runtime": "tflite",
    }  # fmt: skip
    assert sorted(info["signers"]) == sorted([signer.key_id, signer2.key_id])
    assert info["encryption"]["aead"] == "AES-256-GCM"
    assert info["encryption"]["segmentSize"] == CHUNK_SIZE
    assert {(r["type"], r["keyid"]) for r in info["encryption"]["recipients"]} == {
        ("hpke", x25519_key.key_id),
        ("kek", decryption_key(kek).key_id),
    }
    assert info["sourceDateEpoch"] == DEFAULT_SOURCE_DATE_EPOCH
    assert info["provenance"]["builder"]["name"] == "aoe-pack"
    assert info["config"]["tag"] == "tag_x"
    by_path = {f["path"]: f for f in info["files"]}
    assert list(by_path) == sorted(FILES)
    model = by_path["model.tflite"]
    assert model["role"] == "model"
    assert model["runtime"] == "tflite"
    assert model["encrypted"] is True
    assert model["size"] == len(FILES["model.tflite"])
    assert model["storedSize"] == len(FILES["model.tflite"]) + 3 * 16  # three segment tags
    assert by_path["labels.txt"]["role"] == "labels"
    assert info["provenance"]["source"]["sha256"] == model["sha256"]
