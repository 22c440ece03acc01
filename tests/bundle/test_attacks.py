"""One test per attack on a ``.aoe`` bundle, each asserting the exact error.

Outsider attacks change bytes of a signed bundle and must be caught by the
container checks, the signatures or the signed digests. Insider attacks come
from a signer (see ``_tamper.resign``): their bundles are validly signed and
internally consistent, so verifying without the decryption key passes and only
the AEAD stream or the wrapped-key binding can catch them.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import os
import re
import struct
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from _skips import needs_symlinks
from _tamper import (
    C_CRC,
    C_EXTERNAL,
    C_MADE_BY,
    C_OFFSET,
    E_CD_OFFSET,
    E_COMMENT,
    E_COUNT,
    E_DISK,
    L_CRC,
    L_FLAGS,
    L_METHOD,
    L_VERSION,
    assemble,
    damage_base64,
    decryption_key,
    flip,
    flip_file,
    locate,
    rename_entry,
    resign,
    segments,
    set_external_attributes,
    set_method,
    sign,
    take_apart,
)

from aoe_pack._crypto import asymmetric as keys
from aoe_pack._crypto.asymmetric import PrivateKey
from aoe_pack._crypto.wrap import kek_id
from aoe_pack.bundle import VerifyResult, unpack_bundle, verify_bundle
from aoe_pack.bundle.format import CHUNK_SIZE, MANIFEST_ENTRY, SIGNATURES_ENTRY
from aoe_pack.bundle.signatures import encode_envelope
from aoe_pack.dsse import Signature
from aoe_pack.errors import (
    AoePackError,
    DecryptionError,
    IntegrityError,
    LegacyFormatError,
    ManifestError,
    NoMatchingRecipientError,
    NotABundleError,
    OutputError,
    SignatureError,
    ThresholdError,
    UnsafeEntryError,
    UnsupportedVersionError,
    ZipStructureError,
)
from aoe_pack.keys.load import DecryptionKey

MODEL = "payload/model.tflite"
LABELS = "payload/labels.txt"
SEGMENT_PLAIN = CHUNK_SIZE - 16


def verify(
    path: Path,
    *trusted: PrivateKey,
    threshold: int = 1,
    key: DecryptionKey | None = None,
) -> VerifyResult:
    return verify_bundle(
        path,
        trusted_keys=[k.public for k in trusted],
        threshold=threshold,
        decryption_key=key,
    )


@contextmanager
def raises(cls: type[AoePackError], match: str) -> Iterator[None]:
    """``pytest.raises(cls, match=match)`` that also refuses subclasses of ``cls``."""
    with pytest.raises(cls, match=match) as info:
        yield
    assert info.type is cls, f"expected {cls.__name__}, got {info.type.__name__}: {info.value}"


# --- fixtures: bundles to attack ------------------------------------------------------


@pytest.fixture
def plain(built_bundle) -> Path:
    """A small unencrypted bundle signed by ``signer``."""
    return built_bundle()


@pytest.fixture
def encrypted(built_bundle, x25519_key: PrivateKey) -> Path:
    """A small bundle encrypted for ``x25519_key``."""
    return built_bundle(recipients=[x25519_key.public])


@pytest.fixture
def large_encrypted(built_bundle, x25519_key: PrivateKey) -> Path:
    """Encrypted for ``x25519_key``: a 4-segment model and 2-segment labels."""
    files = {
        "model.tflite": os.urandom(3 * SEGMENT_PLAIN + 1000),
        "labels.txt": os.urandom(SEGMENT_PLAIN + 500),
    }
    return built_bundle(files, recipients=[x25519_key.public])


# --- one flipped byte in each region --------------------------------------------------


def test_flipped_byte_in_manifest(plain: Path, signer: PrivateKey) -> None:
    flip_file(plain, locate(plain.read_bytes())[MANIFEST_ENTRY].data.middle)
    with raises(ThresholdError, r"0 valid signatures of 1 required; .*invalid signature"):
        verify(plain, signer)


@pytest.mark.parametrize("kind", ["plain", "encrypted"])
def test_flipped_byte_in_payload(
    kind: str, plain: Path, encrypted: Path, signer: PrivateKey, x25519_key: PrivateKey
) -> None:
    path, key = (plain, None) if kind == "plain" else (encrypted, decryption_key(x25519_key))
    flip_file(path, locate(path.read_bytes())[MODEL].data.middle)
    match = r"payload/model\.tflite: chunk 0 \(bytes 0-\d+\) does not match its signed SHA-256"
    with raises(IntegrityError, match):
        verify(path, signer)
    with raises(IntegrityError, match):
        verify(path, signer, key=key)


def test_flipped_byte_in_signature(plain: Path, signer: PrivateKey) -> None:
    data = plain.read_bytes()
    where = locate(data)[SIGNATURES_ENTRY].data
    envelope = data[where.start : where.end]
    sig_at = envelope.index(b'"sig":"') + len(b'"sig":"')
    # Toggle the case of a base64 letter: still valid base64, a different signature byte.
    at = next(i for i in range(sig_at + 10, len(envelope)) if chr(envelope[i]).isalpha())
    plain.write_bytes(flip(data, where.start + at, 0x20))
    with raises(ThresholdError, r"0 valid signatures of 1 required; .*invalid signature"):
        verify(plain, signer)


@pytest.mark.parametrize(
    ("field", "match"),
    [
        (L_VERSION, r"local header field 'version needed'"),
        (L_FLAGS, r"is encrypted \(general purpose flag bit 0"),
        (L_METHOD, r"compressed entry 'payload/model\.tflite' \(method 1, local header"),
        (L_CRC, r"local header field 'crc32' .* as in the central directory record"),
        (31, r"the local header at offset \d+ names it 'p`yload/model\.tflite'"),
        (52, r"alignment extra field 'data size'"),
    ],
    ids=["version-needed", "flags", "method", "crc32", "name", "extra"],
)
def test_flipped_byte_in_local_header(
    plain: Path, signer: PrivateKey, field: int, match: str
) -> None:
    flip_file(plain, locate(plain.read_bytes())[MODEL].local_header.start + field)
    with raises(ZipStructureError, match):
        verify(plain, signer)


@pytest.mark.parametrize(
    ("field", "match"),
    [
        (C_MADE_BY, r"'payload/model\.tflite': central directory field 'version made by'"),
        (C_CRC, r"'payload/model\.tflite': local header field 'crc32'"),
        (C_EXTERNAL + 2, r"'payload/model\.tflite': external attributes 0x81a50000"),
        (C_OFFSET, r"'payload/model\.tflite' overlaps the preceding entry|gap of 1 bytes"),
    ],
    ids=["version-made-by", "crc32", "external-attributes", "local-header-offset"],
)
def test_flipped_byte_in_central_directory(
    plain: Path, signer: PrivateKey, field: int, match: str
) -> None:
    flip_file(plain, locate(plain.read_bytes())[MODEL].central_record.start + field)
    with raises(ZipStructureError, match):
        verify(plain, signer)


@pytest.mark.parametrize(
    ("field", "match"),
    [
        (0, r"no end of central directory record at the end of the file"),
        (E_DISK, r"disk numbers 1 and 0"),
        (E_COUNT, r"\d entries on this disk but \d in total"),
        (E_CD_OFFSET, r"the central directory \(offset \d+, \d+ bytes\) ends at"),
        (E_COMMENT, r"declares a 1-byte ZIP comment"),
    ],
    ids=["signature", "disk", "count", "cd-offset", "comment-length"],
)
def test_flipped_byte_in_eocd(plain: Path, signer: PrivateKey, field: int, match: str) -> None:
    flip_file(plain, locate(plain.read_bytes()).eocd.start + field)
    with raises(ZipStructureError, match):
        verify(plain, signer)


def test_flipped_byte_in_mimetype(plain: Path, signer: PrivateKey) -> None:
    data = plain.read_bytes()
    version_at = data.index(b"v1+zip")
    plain.write_bytes(flip(data, version_at + 1))  # "v1" -> "v0"
    with raises(ZipStructureError, r"the 'mimetype' local header's crc32 .* the file is corrupt"):
        verify(plain, signer)


def test_flipped_byte_in_mimetype_name(plain: Path, signer: PrivateKey) -> None:
    flip_file(plain, 30)  # "mimetype" -> "limetype": now just some ZIP file
    with raises(NotABundleError, r"this is a plain ZIP archive"):
        verify(plain, signer)


# --- truncation and trailing data -----------------------------------------------------


@pytest.mark.parametrize(
    ("where", "cls", "match"),
    [
        (lambda r: 0, NotABundleError, r"empty file \(0 bytes\)"),
        (lambda r: 20, ZipStructureError, r"20 bytes cannot hold the 'mimetype' header"),
        (lambda r: 50, ZipStructureError, r"truncated in the media type \(50 bytes\)"),
        (lambda r: r[MODEL].data.middle, ZipStructureError, r"no end of central directory"),
        (lambda r: r[MANIFEST_ENTRY].data.start, ZipStructureError, r"no end of central"),
        (lambda r: r.central_directory.middle, ZipStructureError, r"no end of central"),
        (lambda r: r.eocd.start, ZipStructureError, r"no end of central directory"),
        (lambda r: r.size - 1, ZipStructureError, r"no end of central directory"),
    ],
    ids=["empty", "in-mimetype-header", "in-media-type", "in-payload", "before-manifest",
         "in-central-directory", "before-eocd", "last-byte"],
)  # fmt: skip
def test_truncated_bundle(
    plain: Path,
    signer: PrivateKey,
    where: Callable[..., int],
    cls: type[AoePackError],
    match: str,
) -> None:
    data = plain.read_bytes()
    plain.write_bytes(data[: where(locate(data))])
    with raises(cls, match):
        verify(plain, signer)


@pytest.mark.parametrize(
    ("tail", "match"),
    [
        (b"\x00", r"1 bytes of trailing data after the end of central directory record"),
        (b"junk" * 10, r"40 bytes of trailing data after the end of central directory record"),
        (b"eocd", r"the central directory \(offset \d+, \d+ bytes\) ends at \d+, but the end"),
        (b"empty-eocd", r"lists no entries; 'mimetype' must be the first"),
    ],
    ids=["one-byte", "junk", "second-eocd", "empty-eocd"],
)
def test_appended_bytes(plain: Path, signer: PrivateKey, tail: bytes, match: str) -> None:
    data = plain.read_bytes()
    if tail == b"eocd":  # a copy of the real end record: now the last 22 bytes point back
        tail = data[locate(data).eocd.start :]
    elif tail == b"empty-eocd":  # the end record of an empty archive
        tail = b"PK\x05\x06" + bytes(18)
    plain.write_bytes(data + tail)
    with raises(ZipStructureError, match):
        verify(plain, signer)


# --- signatures -----------------------------------------------------------------------


def test_signatures_swapped_between_bundles(built_bundle, signer: PrivateKey) -> None:
    a = built_bundle({"model.tflite": b"model A"})
    b = built_bundle({"model.tflite": b"model B"})
    parts, other = take_apart(a), take_apart(b)
    a.write_bytes(
        resign(parts.manifest_bytes, parts.payloads, [], signatures=other.signatures_bytes)
    )
    with raises(ThresholdError, r"0 valid signatures of 1 required; .*invalid signature"):
        verify(a, signer)


def test_resigned_with_untrusted_key(plain: Path, signer: PrivateKey) -> None:
    mallory = keys.generate(keys.KeyKind.ED25519)
    parts = take_apart(plain)
    manifest = parts.manifest()
    manifest["model"]["version"] = "9.9.9"
    plain.write_bytes(resign(manifest, parts.payloads, [mallory]))
    with raises(
        ThresholdError,
        rf"0 valid signatures of 1 required; .*{mallory.key_id[:16]}…: key not trusted",
    ):
        verify(plain, signer)


def test_below_threshold(plain: Path, signer: PrivateKey, signer2: PrivateKey) -> None:
    with raises(
        ThresholdError, rf"^1 valid signature of 2 required; signed by {signer.key_id[:16]}…$"
    ):
        verify(plain, signer, signer2, threshold=2)


def test_duplicate_signature_same_key_counted_once(
    plain: Path, signer: PrivateKey, signer2: PrivateKey
) -> None:
    parts = take_apart(plain)
    (sig,) = json.loads(parts.signatures_bytes)["signatures"]
    one = Signature(sig["keyid"], base64.b64decode(sig["sig"]))
    envelope = encode_envelope([one, one])
    plain.write_bytes(resign(parts.manifest_bytes, parts.payloads, [], signatures=envelope))
    with raises(
        SignatureError, rf"key {signer.key_id[:16]}… signed more than once; each key counts once"
    ):
        verify(plain, signer, signer2, threshold=2)


def test_threshold_met_with_two_signers(
    built_bundle, signer: PrivateKey, signer2: PrivateKey
) -> None:
    path = built_bundle(signers=[signer, signer2])
    result = verify(path, signer, signer2, threshold=2)
    assert sorted((c.keyid, c.valid) for c in result.signatures) == sorted(
        [(signer.key_id, True), (signer2.key_id, True)]
    )


# --- keys and key wrapping ------------------------------------------------------------


def test_wrong_decryption_key(encrypted: Path, signer: PrivateKey) -> None:
    stranger = keys.generate(keys.KeyKind.X25519)
    with raises(
        NoMatchingRecipientError, rf"the bundle is not encrypted for key {stranger.key_id[:16]}"
    ):
        verify(encrypted, signer, key=decryption_key(stranger))


def test_wrong_kek(built_bundle, signer: PrivateKey, kek: bytes) -> None:
    path = built_bundle(keks=[kek])
    other = os.urandom(32)
    with raises(
        NoMatchingRecipientError,
        rf"not encrypted for key {kek_id(other)[:16]}… \(test kek\); its recipients are "
        rf"{kek_id(kek)[:16]}…",
    ):
        verify(path, signer, key=decryption_key(other))


def test_kek_recipient_wrapped_under_another_kek(
    built_bundle, signer: PrivateKey, kek: bytes
) -> None:
    """An insider names KEK B as the recipient but wraps the data key under KEK A."""
    path = built_bundle(keks=[kek])
    other = os.urandom(32)
    parts = take_apart(path)
    manifest = parts.manifest()
    manifest["encryption"]["recipients"][0]["keyid"] = kek_id(other)
    path.write_bytes(resign(manifest, parts.payloads, [signer]))
    verify(path, signer)
    with raises(DecryptionError, r"the data key could not be opened with this encryption key"):
        verify(path, signer, key=decryption_key(other))


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda w: damage_base64(w, 0), r"could not be opened with this key"),
        (lambda w: damage_base64(w, 40), r"could not be opened with this key"),
        (lambda w: damage_base64(w, -1), r"could not be opened with this key"),
        (lambda w: base64.b64encode(base64.b64decode(w)[:20]).decode(), r"could not be opened"),
        (lambda w: "!" + w[1:], r"wrapped key for [0-9a-f]{16}… is not base64"),
    ],
    ids=["enc-byte", "ciphertext-byte", "tag-byte", "truncated", "not-base64"],
)
def test_corrupted_wrapped_key(
    encrypted: Path,
    signer: PrivateKey,
    x25519_key: PrivateKey,
    damage: Callable[[str], str],
    match: str,
) -> None:
    parts = take_apart(encrypted)
    manifest = parts.manifest()
    (recipient,) = manifest["encryption"]["recipients"]
    recipient["wrapped"] = damage(recipient["wrapped"])
    encrypted.write_bytes(resign(manifest, parts.payloads, [signer]))
    verify(encrypted, signer)  # validly signed; only unwrapping can tell
    with raises(DecryptionError, match):
        verify(encrypted, signer, key=decryption_key(x25519_key))


@pytest.mark.parametrize("recipient", ["x25519", "kek"])
@pytest.mark.parametrize(("field", "value"), [("version", "1.0.1"), ("tag", "tag_y")])
def test_wrapped_key_moved_to_other_version(
    built_bundle,
    signer: PrivateKey,
    x25519_key: PrivateKey,
    kek: bytes,
    recipient: str,
    field: str,
    value: str,
) -> None:
    """The wrapped key (and ciphertext) of one release, in a re-signed manifest of another.

    Everything but the model identity is unchanged, so the data key would open
    every segment; only the HPKE ``info`` / KEK associated data (tag + version)
    refuses it.
    """
    key = x25519_key if recipient == "x25519" else kek
    if isinstance(key, bytes):
        path = built_bundle(keks=[key])
    else:
        path = built_bundle(recipients=[key.public])
    parts = take_apart(path)
    manifest = parts.manifest()
    manifest["model"][field] = value
    path.write_bytes(resign(manifest, parts.payloads, [signer]))
    verify(path, signer)
    with raises(DecryptionError, r"could not be opened with this (encryption )?key"):
        verify(path, signer, key=decryption_key(key))


# --- the segmented AEAD stream against an insider -------------------------------------


def _resign_payloads(
    path: Path, signer: PrivateKey, edit: Callable[[dict, dict[str, bytes]], None]
) -> None:
    parts = take_apart(path)
    manifest, payloads = parts.manifest(), dict(parts.payloads)
    edit(manifest, payloads)
    path.write_bytes(resign(manifest, payloads, [signer]))


def test_segments_reordered(
    large_encrypted: Path, signer: PrivateKey, x25519_key: PrivateKey
) -> None:
    def swap(manifest: dict, payloads: dict[str, bytes]) -> None:
        seg = segments(payloads[MODEL])
        assert len(seg) >= 3
        seg[0], seg[1] = seg[1], seg[0]
        payloads[MODEL] = b"".join(seg)

    _resign_payloads(large_encrypted, signer, swap)
    verify(large_encrypted, signer)
    with raises(DecryptionError, r"segment 0 of payload/model\.tflite failed authentication"):
        verify(large_encrypted, signer, key=decryption_key(x25519_key))


def test_segment_dropped(large_encrypted: Path, signer: PrivateKey, x25519_key: PrivateKey) -> None:
    def drop_last(manifest: dict, payloads: dict[str, bytes]) -> None:
        seg = segments(payloads[MODEL])
        payloads[MODEL] = b"".join(seg[:-1])
        model = next(f for f in manifest["files"] if f["path"] == "model.tflite")
        model["size"] = (len(seg) - 1) * SEGMENT_PLAIN

    _resign_payloads(large_encrypted, signer, drop_last)
    verify(large_encrypted, signer)
    # The new last segment was sealed with last=0: no segment carries the last flag.
    with raises(DecryptionError, r"segment 2 of payload/model\.tflite failed authentication"):
        verify(large_encrypted, signer, key=decryption_key(x25519_key))


@pytest.mark.parametrize("with_prefix", [False, True], ids=["segment", "segment-and-prefix"])
def test_segments_swapped_between_files(
    large_encrypted: Path, signer: PrivateKey, x25519_key: PrivateKey, with_prefix: bool
) -> None:
    def swap(manifest: dict, payloads: dict[str, bytes]) -> None:
        model, labels = segments(payloads[MODEL]), segments(payloads[LABELS])
        model[0], labels[0] = labels[0], model[0]
        payloads[MODEL], payloads[LABELS] = b"".join(model), b"".join(labels)
        if with_prefix:  # the nonce prefix travels too; the entry name (AAD) still differs
            a, b = manifest["files"]
            a["noncePrefix"], b["noncePrefix"] = b["noncePrefix"], a["noncePrefix"]

    _resign_payloads(large_encrypted, signer, swap)
    verify(large_encrypted, signer)
    with raises(DecryptionError, r"segment \d of payload/labels\.txt failed authentication"):
        verify(large_encrypted, signer, key=decryption_key(x25519_key))


# --- entry names and the file list ----------------------------------------------------


def test_renamed_payload_entry(plain: Path, signer: PrivateKey) -> None:
    plain.write_bytes(rename_entry(plain.read_bytes(), LABELS, "payload/labels.txu"))
    with raises(
        ManifestError,
        re.escape(
            "disagrees with the bundle's entries; missing from the bundle: "
            "['payload/labels.txt']; not in the manifest: ['payload/labels.txu']"
        ),
    ):
        verify(plain, signer)


def test_renamed_payload_resigned(
    encrypted: Path, signer: PrivateKey, x25519_key: PrivateKey
) -> None:
    def rename(manifest: dict, payloads: dict[str, bytes]) -> None:
        manifest["files"][0]["path"] = "labels.bin"
        payloads["payload/labels.bin"] = payloads.pop(LABELS)
        payloads[MODEL] = payloads.pop(MODEL)  # keep entries sorted

    _resign_payloads(encrypted, signer, rename)
    verify(encrypted, signer)
    with raises(DecryptionError, r"segment 0 of payload/labels\.bin failed authentication"):
        verify(encrypted, signer, key=decryption_key(x25519_key))


def test_manifest_lists_missing_file(plain: Path, signer: PrivateKey) -> None:
    parts = take_apart(plain)
    manifest = parts.manifest()
    ghost = copy.deepcopy(manifest["files"][0])
    ghost.update(path="extra.bin", role="asset")
    manifest["files"].insert(0, ghost)
    plain.write_bytes(resign(manifest, parts.payloads, [signer]))
    with raises(ManifestError, re.escape("missing from the bundle: ['payload/extra.bin']")):
        verify(plain, signer)


def test_extra_entry_not_in_manifest(plain: Path, signer: PrivateKey) -> None:
    parts = take_apart(plain)
    payloads = {"payload/extra.bin": b"smuggled", **parts.payloads}
    plain.write_bytes(resign(parts.manifest_bytes, payloads, [], signatures=parts.signatures_bytes))
    with raises(ManifestError, re.escape("not in the manifest: ['payload/extra.bin']")):
        verify(plain, signer)


def test_entry_outside_payload_folder(plain: Path, signer: PrivateKey) -> None:
    parts = take_apart(plain)
    entries = [("aaa/extra.bin", b"smuggled"), *parts.payloads.items()]
    entries += [(MANIFEST_ENTRY, parts.manifest_bytes), (SIGNATURES_ENTRY, parts.signatures_bytes)]
    plain.write_bytes(assemble(entries, date_time=parts.date_time))
    with raises(
        ZipStructureError, r"unexpected entry 'aaa/extra\.bin'; payloads live under payload/"
    ):
        verify(plain, signer)


def _file_and_folder(plain: Path, signer: PrivateKey) -> None:
    """Re-sign ``plain`` (insider) to hold both ``w`` and ``w/x``: no file system can."""
    parts = take_apart(plain)
    manifest = parts.manifest()
    model = parts.file(manifest, "model.tflite")
    items, payloads = [], {}
    # The real writer refuses ``w`` next to ``w/x``, so write ``wxx`` (same length)
    # and patch the name in both ZIP headers afterwards.
    for path, stored_as, body in (("w", "w", b"one"), ("w/x", "wxx", b"two")):
        item = copy.deepcopy(model)
        item.update(path=path, size=len(body), sha256=hashlib.sha256(body).hexdigest())
        items.append(item)
        payloads["payload/" + stored_as] = body
    manifest["files"] = items
    data = resign(manifest, payloads, [signer])
    plain.write_bytes(rename_entry(data, "payload/wxx", "payload/w/x"))


def test_file_and_folder_with_the_same_path(plain: Path, signer: PrivateKey) -> None:
    _file_and_folder(plain, signer)
    with raises(
        UnsafeEntryError, r"'payload/w/x' needs a folder where entry 'payload/w' is a file"
    ):
        verify(plain, signer)


def test_file_and_folder_with_the_same_path_unpack(
    plain: Path, signer: PrivateKey, tmp_path: Path
) -> None:
    _file_and_folder(plain, signer)
    out = tmp_path / "out"
    with raises(UnsafeEntryError, r"payload/w"):
        unpack_bundle(plain, out, trusted_keys=[signer.public])
    assert _files_under(out) == []


# --- unsafe ZIP entries in a bundle ---------------------------------------------------


def test_duplicate_entry(built_bundle, signer: PrivateKey) -> None:
    files = {"model.tflite": b"m", "labels.txt": b"l", "labels.txu": b"u"}
    path = built_bundle(files)
    path.write_bytes(rename_entry(path.read_bytes(), "payload/labels.txu", LABELS))
    with raises(UnsafeEntryError, r"duplicate entry name 'payload/labels\.txt'"):
        verify(path, signer)


def test_absolute_entry(plain: Path, signer: PrivateKey) -> None:
    plain.write_bytes(rename_entry(plain.read_bytes(), MODEL, "/payload/model.tflit"))
    with raises(UnsafeEntryError, r"entry name '/payload/model\.tflit' is an absolute path"):
        verify(plain, signer)


def test_entry_with_a_character_newer_than_unicode_14(plain: Path, signer: PrivateKey) -> None:
    """U+1FAE8 (Unicode 15): its case folding is not pinned, so no reader may accept it."""
    plain.write_bytes(rename_entry(plain.read_bytes(), MODEL, "payload/model\U0001fae8.tf"))
    with raises(UnsafeEntryError, r"has U\+1FAE8, which Unicode 14\.0\.0 does not assign"):
        verify(plain, signer)


def test_dotdot_entry(plain: Path, signer: PrivateKey) -> None:
    plain.write_bytes(rename_entry(plain.read_bytes(), MODEL, "payload/../evil.tfli"))
    with raises(
        UnsafeEntryError, r"'payload/\.\./evil\.tfli' has a '\.\.' segment that climbs out"
    ):
        verify(plain, signer)


def test_symlink_entry(plain: Path, signer: PrivateKey) -> None:
    plain.write_bytes(set_external_attributes(plain.read_bytes(), MODEL, 0o120777 << 16))
    with raises(
        UnsafeEntryError, r"entry 'payload/model\.tflite' is a symlink \(Unix mode 0o120777"
    ):
        verify(plain, signer)


def test_compressed_entry(plain: Path, signer: PrivateKey) -> None:
    plain.write_bytes(set_method(plain.read_bytes(), MODEL, 8))
    with raises(
        ZipStructureError,
        r"compressed entry 'payload/model\.tflite' \(method 8, central directory record",
    ):
        verify(plain, signer)


# --- unpack safety --------------------------------------------------------------------


@needs_symlinks
@pytest.mark.parametrize("target", ["existing-file", "dangling"])
def test_unpack_never_follows_symlink_in_out_dir(
    plain: Path, signer: PrivateKey, tmp_path: Path, target: str
) -> None:
    out, outside = tmp_path / "out", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    victim = outside / "victim"
    if target == "existing-file":
        victim.write_bytes(b"precious")
    (out / "model.tflite").symlink_to(victim)

    with raises(OutputError, r"model\.tflite already exists"):
        unpack_bundle(plain, out, trusted_keys=[signer.public])
    unpack_bundle(plain, out, trusted_keys=[signer.public], force=True)

    assert not (out / "model.tflite").is_symlink()
    assert (out / "model.tflite").read_bytes() == take_apart(plain).payloads[MODEL]
    if target == "existing-file":
        assert victim.read_bytes() == b"precious"
    else:
        assert not victim.exists()


@needs_symlinks
def test_unpack_never_follows_symlink_in_out_dir_for_folder(
    built_bundle, signer: PrivateKey, tmp_path: Path
) -> None:
    path = built_bundle({"model.tflite": b"m", "sub/weights.bin": b"w"})
    out, outside = tmp_path / "out", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    (out / "sub").symlink_to(outside, target_is_directory=True)
    with raises(
        OutputError, r"cannot use 'sub' as an output folder: .* \(symlinks are never followed\)"
    ):
        unpack_bundle(path, out, trusted_keys=[signer.public], force=True)
    assert list(outside.iterdir()) == []
    assert sorted(p.name for p in out.iterdir()) == ["sub"]  # only the planted link


def _files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if not p.is_dir())


def test_unpack_failure_leaves_no_partial_files(
    plain: Path, signer: PrivateKey, tmp_path: Path
) -> None:
    """labels.txt (first) is fine; the model's plaintext digest is wrong (insider)."""
    parts = take_apart(plain)
    manifest = parts.manifest()
    parts.file(manifest, "model.tflite")["sha256"] = "0" * 64
    plain.write_bytes(resign(manifest, parts.payloads, [signer]))
    out = tmp_path / "out"
    with raises(
        IntegrityError,
        r"model\.tflite: the model does not match the SHA-256 recorded at build time",
    ):
        unpack_bundle(plain, out, trusted_keys=[signer.public])
    assert _files_under(out) == []


def test_unpack_failure_leaves_no_partial_files_encrypted(
    large_encrypted: Path, signer: PrivateKey, x25519_key: PrivateKey, tmp_path: Path
) -> None:
    def swap(manifest: dict, payloads: dict[str, bytes]) -> None:
        seg = segments(payloads[MODEL])
        seg[1], seg[2] = seg[2], seg[1]
        payloads[MODEL] = b"".join(seg)

    _resign_payloads(large_encrypted, signer, swap)
    out = tmp_path / "out"
    with raises(DecryptionError, r"segment 1 of payload/model\.tflite failed authentication"):
        unpack_bundle(
            large_encrypted,
            out,
            trusted_keys=[signer.public],
            decryption_key=decryption_key(x25519_key),
        )
    assert _files_under(out) == []


def test_unpack_refuses_overwrite_without_force(
    plain: Path, signer: PrivateKey, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "labels.txt").write_bytes(b"keep me")
    with raises(OutputError, r"labels\.txt already exists"):
        unpack_bundle(plain, out, trusted_keys=[signer.public])
    assert (out / "labels.txt").read_bytes() == b"keep me"
    assert _files_under(out) == [out / "labels.txt"]
    unpack_bundle(plain, out, trusted_keys=[signer.public], force=True)
    assert (out / "labels.txt").read_bytes() == take_apart(plain).payloads[LABELS]


def test_unpack_over_existing_folder(plain: Path, signer: PrivateKey, tmp_path: Path) -> None:
    """--force replaces files, but a folder where a model file goes is an OutputError."""
    out = tmp_path / "out"
    (out / "model.tflite").mkdir(parents=True)
    (out / "model.tflite" / "keep").write_bytes(b"keep me")
    with raises(OutputError, r"model\.tflite"):
        unpack_bundle(plain, out, trusted_keys=[signer.public], force=True)
    assert (out / "model.tflite" / "keep").read_bytes() == b"keep me"


def test_unpack_encrypted_without_key(encrypted: Path, signer: PrivateKey, tmp_path: Path) -> None:
    with raises(DecryptionError, r"the bundle is encrypted; unpacking needs its decryption key"):
        unpack_bundle(encrypted, tmp_path / "out", trusted_keys=[signer.public])
    assert not (tmp_path / "out").exists() or _files_under(tmp_path / "out") == []


# --- plaintext digests ----------------------------------------------------------------


def test_plaintext_digest_mismatch_encrypted(
    encrypted: Path, signer: PrivateKey, x25519_key: PrivateKey
) -> None:
    parts = take_apart(encrypted)
    manifest = parts.manifest()
    parts.file(manifest, "model.tflite")["sha256"] = "0" * 64
    encrypted.write_bytes(resign(manifest, parts.payloads, [signer]))
    with raises(
        IntegrityError, r"model\.tflite: the decrypted model does not match the SHA-256 recorded"
    ):
        verify(encrypted, signer, key=decryption_key(x25519_key))


def test_plaintext_digest_mismatch_unencrypted(
    plain: Path, signer: PrivateKey, tmp_path: Path
) -> None:
    """An insider's whole-file SHA-256 that disagrees with the signed chunks.

    verify authenticates every stored byte through the chunk digests and, for a
    plaintext payload, does not spend a second pass on the whole-file digest
    (docs/format.md, "Verification"); the moment the plaintext is produced,
    the whole-file digest is checked, so unpack refuses it.
    """
    parts = take_apart(plain)
    manifest = parts.manifest()
    parts.file(manifest, "model.tflite")["sha256"] = "0" * 64
    plain.write_bytes(resign(manifest, parts.payloads, [signer]))
    verify(plain, signer)
    with raises(IntegrityError, r"model\.tflite: the model does not match the SHA-256"):
        unpack_bundle(plain, tmp_path / "out", trusted_keys=[signer.public])
    assert _files_under(tmp_path / "out") == []


# --- things that are not bundles ------------------------------------------------------


def test_legacy_atenc_file_is_recognised(tmp_path: Path, signer: PrivateKey) -> None:
    plaintext = b"\x1ctflite model bytes"
    legacy = (
        b"\x01"
        + struct.pack(">I", len(plaintext))
        + hashlib.md5(plaintext).digest()  # noqa: S324 - the legacy format's own checksum
        + os.urandom(32)
    )
    path = tmp_path / "model.atenc"
    path.write_bytes(legacy)
    with raises(LegacyFormatError, r"legacy AoE atenc v1 encrypted model \(first byte 0x01\)"):
        verify(path, signer)


def test_plain_zip_is_not_a_bundle(tmp_path: Path, signer: PrivateKey) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("model.tflite", b"model")
    path = tmp_path / "model.zip"
    path.write_bytes(buf.getvalue())
    with raises(NotABundleError, r"this is a plain ZIP archive \(its first entry is 'model\.tf'"):
        verify(path, signer)


# --- the manifest ---------------------------------------------------------------------


def test_not_canonical_manifest(plain: Path, signer: PrivateKey) -> None:
    parts = take_apart(plain)
    pretty = json.dumps(parts.manifest(), indent=2, sort_keys=True).encode()
    plain.write_bytes(resign(pretty, parts.payloads, [signer]))
    with raises(ManifestError, r"aoe/manifest\.json is not in canonical form \(RFC 8785\)"):
        verify(plain, signer)


def test_manifest_from_the_future(plain: Path, signer: PrivateKey) -> None:
    parts = take_apart(plain)
    manifest = parts.manifest()
    manifest["format"] = "aoe-bundle/v2"
    plain.write_bytes(resign(manifest, parts.payloads, [signer]))
    with raises(UnsupportedVersionError, r"manifest format 'aoe-bundle/v2' is not supported"):
        verify(plain, signer)


def test_plaintext_file_in_encrypted_bundle(encrypted: Path, signer: PrivateKey) -> None:
    """An insider drops one file's nonce prefix so a device would take it as plaintext."""
    parts = take_apart(encrypted)
    manifest = parts.manifest()
    del parts.file(manifest, "labels.txt")["noncePrefix"]
    encrypted.write_bytes(resign(manifest, parts.payloads, [signer]))
    with raises(
        ManifestError, r"manifest\.files\[0\]\.noncePrefix must be present exactly when encrypted"
    ):
        verify(encrypted, signer)


def test_signature_over_other_manifest_bytes(plain: Path, signer: PrivateKey) -> None:
    """A valid signature over different bytes (one more trailing newline) must not count."""
    parts = take_apart(plain)
    envelope = sign(parts.manifest_bytes + b"\n", [signer])
    plain.write_bytes(resign(parts.manifest_bytes, parts.payloads, [], signatures=envelope))
    with raises(ThresholdError, r"invalid signature"):
        verify(plain, signer)
