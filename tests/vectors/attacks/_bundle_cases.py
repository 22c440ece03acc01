"""The bundle cases of the attack corpus: base bundles and one broken bundle per attack.

Part of ``make_attacks.py`` (README.md). Outsider and ZIP cases patch bytes of the
plain base with tests/bundle/_tamper.py, keeping every other byte canonical so that
the check a case targets is the one that fires; insider cases re-sign an edited
manifest with both TEST-ONLY signing keys.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import struct
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aoe_pack._jcs import canonical_json
from aoe_pack.bundle import EncryptionSpec, build_bundle
from aoe_pack.bundle.signatures import encode_envelope
from aoe_pack.config.model import ModelConfig, ModelFile
from aoe_pack.dsse import Signature
from aoe_pack.keys import PrivateKey, keygen, load_public_key, load_signing_key

HERE = Path(__file__).resolve().parent
VECTORS = HERE.parent
TESTS = VECTORS.parent


if str(TESTS) not in sys.path:  # tests/_modules.py, also when make_attacks.py runs as a script
    sys.path.insert(0, str(TESTS))

from _modules import load_module as load  # noqa: E402

mv = load("make_vectors", VECTORS / "make_vectors.py")
tamper = load("_vector_tamper", TESTS / "bundle" / "_tamper.py")

# --- keys --------------------------------------------------------------------------------

SIGNERS: tuple[str, ...] = mv.SIGNERS  # ("ed25519", "p256"): both sign every base
OUTSIDER = "keys/test-only-outsider-ed25519"
"""A third TEST-ONLY signing key, trusted by nobody: the wrong signer, the stolen key."""
DECRYPTION_KEYS = {k: f"../test-only-{k}.key" for k in ("x25519", "p256-kem", "aes256")}
DECRYPTION_KEYS["mlkem768-x25519"] = "../test-only-mlkem768-x25519.key"


def signer(kind: str) -> PrivateKey:
    if kind == "outsider":
        return load_signing_key(str(HERE / f"{OUTSIDER}.key"))
    return load_signing_key(str(mv.key_path(kind, "key")))


def signer_ref(kind: str) -> str:
    """The public key file of a signer, relative to the corpus folder."""
    return f"{OUTSIDER}.pub" if kind == "outsider" else f"../test-only-{kind}.pub"


def make_keys(out: Path) -> None:
    if not (out / f"{OUTSIDER}.key").exists():
        (out / "keys").mkdir(parents=True, exist_ok=True)
        keygen("ed25519", out / OUTSIDER)


# --- base bundles ------------------------------------------------------------------------

PAYLOAD = {
    "model.tflite": hashlib.shake_256(mv.SEED + b"corpus model.tflite").digest(3000),
    "labels.txt": b"cat\ndog\n",
    "assets/empty.bin": b"",
    "assets/notes.txt": b"corpus\n",
}
"""Small files, so each broken bundle is a few KB; two names of equal length (16 bytes)
so that ZIP tricks can rename one entry to the other."""
ROLES = {"labels.txt": "labels", "assets/empty.bin": "asset", "assets/notes.txt": "asset"}
BASES: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # base bundle: (HPKE recipients, key-encryption keys), as make_vectors.BUNDLES
    "base-plain.aoe": ((), ()),
    "base-x25519.aoe": (("x25519",), ()),
    "base-p256-kem.aoe": (("p256-kem",), ()),
    "base-kek.aoe": ((), ("aes256",)),
    "base-mlkem.aoe": (("mlkem768-x25519",), ()),
    "base-multi.aoe": (("x25519", "p256-kem"), ("aes256",)),
}


def write_small_config(root: Path, *, encrypt: bool) -> ModelConfig:
    for rel, data in PAYLOAD.items():
        dest = root / "model" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
    extra = tuple(ModelFile(path=p, role=r) for p, r in ROLES.items())
    identity = {"version": mv.VERSION, "tag": mv.TAG, "runtime": "tflite", "source": "installed"}
    return ModelConfig(
        source_path=root / "model.config.json",
        version=mv.VERSION,
        tag=mv.TAG,
        runtime="tflite",
        source="installed",
        model_dir="model",
        model_name="model.tflite",
        files=(ModelFile(path="model.tflite", role="model"), *extra),
        encrypt=encrypt,
        canonical={
            **identity,
            "modelDir": "model",
            "modelName": "model.tflite",
            "encrypt": encrypt,
            "files": [{"path": f.path, "role": f.role} for f in extra],
        },
    )


def build_base(name: str, out: Path) -> None:
    """Build base bundle ``name`` at ``out`` as make_vectors builds its vectors."""
    hpke, keks = BASES[name]
    spec = EncryptionSpec(
        recipients=[load_public_key(str(mv.key_path(k, "pub"))) for k in hpke],
        keks=[bytes.fromhex(mv.key_path(k, "key").read_text().strip()) for k in keks],
    )
    with tempfile.TemporaryDirectory() as tmp, mv.pinned_build():
        config = write_small_config(Path(tmp), encrypt=spec.enabled)
        build_bundle(config, out, signing_keys=mv.signing_keys(), encryption=spec)


def file_digests() -> dict[str, str]:
    return {p: hashlib.sha256(d).hexdigest() for p, d in sorted(PAYLOAD.items())}


# --- cases -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BundleCase:
    name: str
    kind: str
    """valid | outsider | signature | zip | insider | decryption"""
    data: bytes | None
    """The broken bundle's bytes; None for a case on a base bundle as it is."""
    expect: Mapping[str, Any]
    description: str = ""
    base: str = "base-plain.aoe"
    trusted: tuple[str, ...] = SIGNERS
    threshold: int = 2
    key: str | None = None
    """A decryption key kind (DECRYPTION_KEYS)."""
    operation: str = "verify"

    @property
    def file(self) -> str:
        return f"bundles/{self.name}.aoe" if self.data is not None else f"bundles/{self.base}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "bundle": self.file,
            "trustedKeys": [signer_ref(k) for k in self.trusted],
            "threshold": self.threshold,
            "decryptionKey": DECRYPTION_KEYS[self.key] if self.key else None,
            "operation": self.operation,
            "expect": dict(self.expect),
        }


def error(code: str) -> dict[str, str]:
    return {"error": code}


VERIFIED = {"verified": True}


def flip(data: bytes, at: int) -> bytes:
    return bytes(tamper.flip(data, at))


def put(data: bytes, at: int, fmt: str, value: int) -> bytes:
    buf = bytearray(data)
    struct.pack_into(fmt, buf, at, value)
    return bytes(buf)


def insert_gap(data: bytes, at: int, size: int) -> bytes:
    """Zero bytes inserted at ``at``, every later offset moved, so only the gap is wrong."""
    where = tamper.locate(data)
    out = bytearray(data[:at] + bytes(size) + data[at:])
    for e in where.entries.values():
        if e.name == "mimetype":
            continue
        rec = e.central_record.start + (size if e.central_record.start >= at else 0)
        (offset,) = struct.unpack_from("<I", out, rec + tamper.C_OFFSET)
        if offset >= at:
            struct.pack_into("<I", out, rec + tamper.C_OFFSET, offset + size)
    eocd = len(out) - tamper.EOCD_SIZE
    struct.pack_into("<I", out, eocd + tamper.E_CD_OFFSET, where.central_directory.start + size)
    return bytes(out)


def plain_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(zipfile.ZipInfo("model.tflite", (2023, 11, 14, 22, 13, 20)), b"not a bundle")
    return out.getvalue()


SENTINEL = 4_503_599_627_370_495  # written as 2^53, which JCS itself refuses to write

Edit = Callable[[dict[str, Any], dict[str, bytes]], None]


def resigned(
    base: bytes,
    edit: Edit | None = None,
    *,
    keys: Sequence[str] = SIGNERS,
    manifest_bytes: Callable[[dict[str, Any]], bytes] = canonical_json,
    signatures: Callable[[bytes], bytes] | None = None,
) -> bytes:
    """``base`` with its manifest (and payloads) edited by an insider, re-signed by ``keys``
    (or with the envelope ``signatures`` makes of the manifest bytes)."""
    parts = tamper.take_apart(base)
    manifest, payloads = parts.manifest(), dict(parts.payloads)
    if edit is not None:
        edit(manifest, payloads)
    for item in manifest["files"]:
        if "payload/" + item["path"] in payloads:
            tamper.restamp(item, payloads["payload/" + item["path"]])
    raw = manifest_bytes(manifest).replace(str(SENTINEL).encode(), str(2**53).encode())
    env = signatures(raw) if signatures else None
    sign_with = [signer(k) for k in keys]
    return bytes(tamper.resign(raw, payloads, sign_with, signatures=env, date_time=parts.date_time))


def envelope_of(change: Callable[[list[Signature]], list[Signature]]) -> Callable[[bytes], bytes]:
    """An envelope of both signers' signatures over the manifest, listed as ``change`` says."""

    def make(raw: bytes) -> bytes:
        env = json.loads(tamper.sign(raw, [signer(k) for k in SIGNERS]))
        sigs = [Signature(s["keyid"], base64.b64decode(s["sig"])) for s in env["signatures"]]
        return bytes(encode_envelope(change(sigs)))

    return make


def pretty_envelope(raw: bytes) -> bytes:
    return json.dumps(json.loads(tamper.sign(raw, [signer(k) for k in SIGNERS])), indent=1).encode()


def other_bytes_envelope(raw: bytes) -> bytes:
    return bytes(tamper.sign(raw + b"\n", [signer(k) for k in SIGNERS]))


def edit_recipient(change: Callable[[dict[str, Any]], None]) -> Edit:
    def edit(m: dict[str, Any], _: dict[str, bytes]) -> None:
        (r,) = m["encryption"]["recipients"]
        change(r)

    return edit


def edit_payload(entry: str, change: Callable[[bytes], bytes]) -> Edit:
    def edit(_: dict[str, Any], payloads: dict[str, bytes]) -> None:
        payloads[entry] = change(payloads[entry])

    return edit


def edit_file(path: str, change: Callable[[dict[str, Any]], None]) -> Edit:
    def edit(m: dict[str, Any], _: dict[str, bytes]) -> None:
        change(next(f for f in m["files"] if f["path"] == path))

    return edit


def swap_payloads(a: str, b: str) -> Edit:
    """Two files' ciphertexts swapped, each cut or padded to the other's size."""

    def edit(_: dict[str, Any], payloads: dict[str, bytes]) -> None:
        pa, pb = payloads[a], payloads[b]
        payloads[a], payloads[b] = (
            (pb + bytes(len(pa)))[: len(pa)],
            (pa + bytes(len(pb)))[: len(pb)],
        )

    return edit


def insider_edits() -> dict[str, tuple[Edit, str | None, str]]:
    """tests/test_vectors.py's insider edits: (edit, decryption key kind, its code)."""
    tv = load("_corpus_test_vectors", TESTS / "test_vectors.py")
    kinds = {f"test-only-{k}.key": k for k in DECRYPTION_KEYS}

    def on_manifest(edit: Callable[[dict[str, Any]], None]) -> Edit:
        return lambda m, _: edit(m)

    return {
        name: (on_manifest(edit), kinds[key] if key else None, tv.ATTACKS[name])
        for name, (edit, key) in tv.INSIDER.items()
    }


def bundle_cases(bases: Mapping[str, bytes]) -> list[BundleCase]:
    cases: list[BundleCase] = []
    add = lambda *a, **kw: cases.append(BundleCase(*a, **kw))  # noqa: E731 - a table's verb
    valid_cases(add)
    outsider_cases(add, bases)
    signature_cases(add, bases["base-plain.aoe"])
    zip_cases(add, bases["base-plain.aoe"])
    insider_cases(add, bases)
    decryption_cases(add, bases)
    return cases


Add = Callable[..., None]


def valid_cases(add: Add) -> None:
    """Every base verifies, and unpacks with each of its keys to the same files."""
    files = {"files": file_digests()}
    for base, (hpke, keks) in BASES.items():
        stem = base.removesuffix(".aoe").removeprefix("base-")
        add(f"valid-{stem}-verify", "valid", None, VERIFIED, base=base)
        if not hpke and not keks:
            add(f"valid-{stem}-unpack", "valid", None, files, base=base, operation="unpack")
        for k in (*hpke, *keks):
            add(f"valid-{stem}-unpack-{k}", "valid", None, files, base=base, key=k,
                operation="unpack")  # fmt: skip
    add("valid-multi-verify-decrypting-kek", "valid", None, VERIFIED, "verify with the KEK",
        base="base-multi.aoe", key="aes256")  # fmt: skip


def outsider_cases(add: Add, bases: Mapping[str, bytes]) -> None:
    """Bytes of a signed bundle changed."""
    plain, x25519 = bases["base-plain.aoe"], bases["base-x25519.aoe"]
    at = tamper.locate(plain)
    v2 = bytearray(plain)
    v2[66] = ord("2")  # media type v2 with a consistent crc32: a future version
    v2[14:18] = zlib.crc32(bytes(v2[38:71])).to_bytes(4, "little")
    model, cd, eocd = at["payload/model.tflite"].data, at.central_directory, at.eocd
    labels_record = at["payload/labels.txt"].central_record.start
    first_padding = 71 + 30 + len("payload/assets/empty.bin") + 6
    legacy = b"\x01" + (16).to_bytes(4, "big") + bytes(32)
    table = [  # name, bytes, code, what changed
        ("media-type-prefix", flip(plain, 40), "not-a-bundle", "a byte of the media type"),
        ("media-type-version-byte", flip(plain, 66), "zip-structure", "media type v1 -> v0"),
        ("future-version", bytes(v2), "unsupported-version", "media type v2, crc32 consistent"),
        ("mimetype-header-time", flip(plain, 10), "zip-structure", "mimetype's DOS time"),
        ("payload-header-name", flip(plain, 71 + 30), "zip-structure", "a local header name"),
        ("alignment-padding", flip(plain, first_padding), "zip-structure", "alignment padding"),
        ("flipped-payload-byte", flip(plain, model.start + 100), "integrity", "model data"),
        ("flipped-last-payload-byte", flip(plain, model.end - 1), "integrity", "model data"),
        ("flipped-manifest-byte", flip(plain, at["aoe/manifest.json"].data.middle), "threshold",
         "a byte in the middle of the manifest"),
        ("flipped-envelope-byte", flip(plain, at["aoe/signatures.json"].data.start), "signature",
         "the signatures envelope's first byte"),
        ("central-version-made-by", flip(plain, cd.start + 4), "zip-structure",
         "the first central record's version made by"),
        ("central-crc32", flip(plain, labels_record + tamper.C_CRC), "zip-structure",
         "a central record's crc32 (the local header disagrees)"),
        ("end-record-count", flip(plain, eocd.start + tamper.E_COUNT), "zip-structure",
         "the end record's entry count"),
        ("end-record-cd-offset", flip(plain, eocd.start + tamper.E_CD_OFFSET), "zip-structure",
         "the end record's central directory offset"),
        ("truncated", plain[:-1], "zip-structure", "the last byte cut"),
        ("truncated-half", plain[: len(plain) // 2], "zip-structure", "half of the file"),
        ("trailing-byte", plain + b"\0", "zip-structure", "one byte appended"),
        ("trailing-end-record", plain + plain[eocd.start :], "zip-structure",
         "a second end record appended"),
        ("empty-file", b"", "not-a-bundle", "zero bytes"),
        ("legacy-atenc", legacy, "legacy-aoe-format", "the legacy AoE atenc header"),
        ("plain-zip", plain_zip(), "not-a-bundle", "a ZIP written by Python's zipfile"),
    ]  # fmt: skip
    for name, data, code, what in table:
        add(name, "outsider", data, error(code), f"outsider: {what}")
    flipped = flip(x25519, tamper.locate(x25519)["payload/model.tflite"].data.start + 100)
    add(
        "flipped-ciphertext-byte",
        "outsider",
        flipped,
        error("integrity"),
        "outsider: a ciphertext byte, verified without the key",
        base="base-x25519.aoe",
    )
    add("flipped-ciphertext-byte-decrypting", "outsider", flipped, error("integrity"),
        "outsider: a ciphertext byte, unpacked with the key (digests first)",
        base="base-x25519.aoe", key="x25519", operation="unpack")  # fmt: skip


def signature_cases(add: Add, plain: bytes) -> None:
    """The threshold and the signatures envelope."""
    only_ed = resigned(plain, keys=("ed25519",))
    unsorted = envelope_of(lambda s: sorted(s, key=lambda x: x.keyid, reverse=True))
    add(
        "below-threshold",
        "signature",
        only_ed,
        error("threshold"),
        "signed by one of the two trusted keys, threshold 2",
    )
    add(
        "one-signer-threshold-1",
        "signature",
        only_ed,
        VERIFIED,
        "the same bundle with threshold 1 verifies",
        threshold=1,
    )
    add(
        "wrong-signer",
        "signature",
        resigned(plain, keys=("outsider",)),
        error("threshold"),
        "signed only by a key nobody trusts",
        threshold=1,
    )
    add(
        "untrusted-signer",
        "signature",
        None,
        error("threshold"),
        "the base, trusting only a key that did not sign it",
        trusted=("outsider",),
        threshold=1,
    )
    add(
        "threshold-above-trusted-keys",
        "signature",
        None,
        error("usage"),
        "threshold 2 with one trusted key: refused before the file",
        trusted=("ed25519",),
    )
    add(
        "threshold-above-trusted-keys-broken-file",
        "signature",
        b"",
        error("usage"),
        "the impossible threshold wins over an empty file",
        trusted=("ed25519",),
    )
    add(
        "signatures-unsorted",
        "signature",
        resigned(plain, signatures=unsorted),
        error("signature"),
        "the envelope's signatures not sorted by keyid",
    )
    add(
        "duplicate-keyid",
        "signature",
        resigned(plain, signatures=envelope_of(lambda s: [s[0], s[0], *s[1:]])),
        error("signature"),
        "one key's signature listed twice",
    )
    add(
        "signature-of-other-bytes",
        "signature",
        resigned(plain, signatures=other_bytes_envelope),
        error("threshold"),
        "valid signatures over the manifest plus a newline",
    )
    add("envelope-not-canonical", "signature", resigned(plain, signatures=pretty_envelope),
        error("signature"), "aoe/signatures.json pretty-printed")  # fmt: skip


def zip_cases(add: Add, plain: bytes) -> None:
    """ZIP tricks on the plain base, every other byte canonical."""
    at = tamper.locate(plain)
    notes, empty, labels = (
        "payload/assets/notes.txt",
        "payload/assets/empty.bin",
        "payload/labels.txt",
    )
    named = lambda new: tamper.rename_entry(plain, labels, new)  # noqa: E731
    mode = lambda m: tamper.set_external_attributes(plain, labels, m << 16)  # noqa: E731
    flags = lambda f: tamper.set_u16_both(plain, labels, tamper.L_FLAGS, 8, f)  # noqa: E731
    comment, disk = at.eocd.start + tamper.E_COMMENT, at.eocd.start + tamper.E_DISK
    count = put(plain, at.eocd.start + tamper.E_ON_DISK, "<H", 0xFFFF)
    count = put(count, at.eocd.start + tamper.E_COUNT, "<H", 0xFFFF)
    overlap = put(
        plain, at[labels].central_record.start + tamper.C_OFFSET, "<I", at[empty].local_header.start
    )
    table = [  # name, bytes, code, what
        ("duplicate-entry", tamper.rename_entry(plain, notes, empty), "unsafe-entry",
         "two entries named payload/assets/empty.bin"),
        ("case-duplicate-entry", tamper.rename_entry(plain, notes, "payload/assets/EMPTY.bin"),
         "unsafe-entry", "names that differ only by case"),
        ("path-traversal", named("payload/../els.txt"), "unsafe-entry", "a '..' segment"),
        ("absolute-path", named("/ayload/labels.txt"), "unsafe-entry", "an absolute name"),
        ("backslash-path", named("payload\\labels.txt"), "unsafe-entry", "a backslash"),
        ("drive-letter-path", named("C:/load/labels.txt"), "unsafe-entry", "a drive letter"),
        ("nul-in-name", named("payload/lab\0ls.txt"), "unsafe-entry", "a NUL in a name"),
        ("entry-outside-payload", named("payloat/labels.txt"), "zip-structure",
         "an entry outside payload/ and aoe/"),
        ("overlapping-entries", overlap, "zip-structure",
         "a central record pointing into the previous entry"),
        ("gap-between-entries", insert_gap(plain, at[labels].local_header.start, 64),
         "zip-structure", "64 zero bytes between two entries"),
        ("gap-before-central-directory", insert_gap(plain, at.central_directory.start, 64),
         "zip-structure", "64 zero bytes before the central directory"),
        ("data-descriptor", flags(0x0808), "zip-structure", "general purpose bit 3"),
        ("encrypted-flag", flags(0x0801), "zip-structure", "general purpose bit 0"),
        ("compressed-entry", tamper.set_method(plain, labels, 8), "zip-structure",
         "method 8 (deflate) claimed in both headers"),
        ("zip-comment", put(plain, comment, "<H", 5) + b"hello", "zip-structure",
         "a 5-byte ZIP comment"),
        ("comment-length-without-comment", put(plain, comment, "<H", 5), "zip-structure",
         "a comment length past the end"),
        ("multi-disk", put(plain, disk, "<H", 1), "zip-structure", "a multi-disk end record"),
        ("zip64-entry-count", count, "limit-exceeded", "entry counts of 0xFFFF (ZIP64)"),
        ("symlink-entry", mode(0o120777), "unsafe-entry", "a symlink mode"),
        ("directory-entry", mode(0o040755), "unsafe-entry", "a directory mode"),
        ("executable-entry", mode(0o100755), "zip-structure", "mode 0o100755, not 0o100644"),
        ("mimetype-crc", put(plain, 14, "<I", 0), "zip-structure", "mimetype's crc32 zeroed"),
        ("mimetype-extra-field", put(plain, 28, "<H", 4), "zip-structure",
         "mimetype's extra field length set"),
        ("local-crc-disagrees", put(plain, at[labels].local_header.start + tamper.L_CRC, "<I", 0),
         "zip-structure", "a local crc32 unlike the central one"),
    ]  # fmt: skip
    for name, data, code, what in table:
        add(name, "zip", data, error(code), f"ZIP: {what}")


def insider_cases(add: Add, bases: Mapping[str, bytes]) -> None:
    """A manifest edited and validly re-signed by both signers."""
    plain, x25519 = bases["base-plain.aoe"], bases["base-x25519.aoe"]
    for name, (edit, key, code) in insider_edits().items():
        add(
            f"insider-{name}",
            "insider",
            resigned(bases["base-multi.aoe"], edit),
            error(code),
            f"insider (tests/test_vectors.py): {name}",
            base="base-multi.aoe",
            key=key,
        )
    pretty = lambda m: json.dumps(m, indent=2, sort_keys=True).encode()  # noqa: E731
    wrong = edit_file("labels.txt", lambda f: f.update(sha256=hashlib.sha256(b"bird").hexdigest()))
    add(
        "manifest-not-canonical",
        "insider",
        resigned(plain, manifest_bytes=pretty),
        error("manifest"),
        "a pretty-printed manifest, validly signed",
    )
    add(
        "manifest-format-v2",
        "insider",
        resigned(plain, lambda m, _: m.update(format="aoe-bundle/v2")),
        error("unsupported-version"),
        "manifest format aoe-bundle/v2",
    )
    add(
        "insider-plaintext-digest",
        "insider",
        resigned(plain, wrong),
        error("integrity"),
        "a plaintext sha256 that labels.txt does not have",
        operation="unpack",
    )
    add(
        "insider-plaintext-digest-verify",
        "insider",
        resigned(plain, wrong),
        VERIFIED,
        "the same, verified: the signed chunk digests hold, and verify spends no second pass "
        "on the whole-file digest of a file sent in the clear (§8)",
    )
    add(
        "insider-plaintext-digest-encrypted",
        "insider",
        resigned(x25519, wrong),
        error("integrity"),
        "a plaintext sha256 that decrypted labels.txt does not have",
        base="base-x25519.aoe",
        key="x25519",
    )
    add("insider-plaintext-file-in-encrypted", "insider",
        resigned(x25519, edit_file("labels.txt", lambda f: f.pop("noncePrefix"))),
        error("manifest"), "one file's noncePrefix dropped in an encrypted bundle",
        base="base-x25519.aoe")  # fmt: skip


def decryption_cases(add: Add, bases: Mapping[str, bytes]) -> None:
    """Keys that do not fit, and an insider's damage that only decryption can see."""
    x25519 = bases["base-x25519.aoe"]
    on_x = {"base": "base-x25519.aoe", "key": "x25519"}
    new_version: Edit = lambda m, _: m["model"].update(version="1.0.1")  # noqa: E731
    kem = edit_recipient(lambda r: r.update(kem="DHKEM(P-256, HKDF-SHA256)"))
    wrapped = edit_recipient(lambda r: r.update(wrapped=tamper.damage_base64(r["wrapped"], 40)))
    model = "payload/model.tflite"
    add(
        "wrong-decryption-key",
        "decryption",
        None,
        error("no-matching-recipient"),
        "a key that is none of the recipients",
        base="base-x25519.aoe",
        key="mlkem768-x25519",
    )
    add(
        "wrong-kek",
        "decryption",
        None,
        error("no-matching-recipient"),
        "a KEK for an HPKE-only bundle",
        base="base-x25519.aoe",
        key="aes256",
    )
    add(
        "key-for-plain-bundle",
        "decryption",
        None,
        error("decryption"),
        "a decryption key for a bundle sent in the clear",
        key="x25519",
    )
    add(
        "unpack-encrypted-without-key",
        "decryption",
        None,
        error("decryption"),
        "no key to unpack with",
        base="base-x25519.aoe",
        operation="unpack",
    )
    add(
        "kem-mismatch",
        "decryption",
        resigned(x25519, kem),
        error("decryption"),
        "the X25519 recipient relabelled DHKEM(P-256, HKDF-SHA256)",
        **on_x,
    )
    add(
        "wrapped-key-damaged",
        "decryption",
        resigned(x25519, wrapped),
        error("decryption"),
        "one byte of the wrapped key flipped by an insider",
        **on_x,
    )
    add(
        "wrapped-key-other-version",
        "decryption",
        resigned(x25519, new_version),
        error("decryption"),
        "the manifest's version changed: HPKE info no longer fits",
        **on_x,
    )
    add(
        "wrapped-kek-other-version",
        "decryption",
        resigned(bases["base-kek.aoe"], new_version),
        error("decryption"),
        "the manifest's version changed: the KEK's AAD no longer fits",
        base="base-kek.aoe",
        key="aes256",
    )
    add(
        "flipped-segment",
        "decryption",
        resigned(x25519, edit_payload(model, lambda b: flip(b, 100))),
        error("decryption"),
        "an insider flips a ciphertext byte and re-stamps digests",
        operation="unpack",
        **on_x,
    )
    add(
        "segment-tag-flipped",
        "decryption",
        resigned(x25519, edit_payload("payload/labels.txt", lambda b: flip(b, len(b) - 1))),
        error("decryption"),
        "an insider flips the AEAD tag of labels.txt's one segment",
        **on_x,
    )
    add(
        "segment-truncated",
        "decryption",
        resigned(x25519, edit_payload("payload/labels.txt", lambda b: b[:-1])),
        error("manifest"),
        "an insider drops a byte of a segment: the size no longer fits",
        **on_x,
    )
    add(
        "segments-swapped-between-files",
        "decryption",
        resigned(x25519, swap_payloads("payload/assets/notes.txt", "payload/labels.txt")),
        error("decryption"),
        "an insider swaps two files' ciphertexts (the entry name is the AAD)",
        **on_x,
    )
    add("flipped-segment-mlkem", "decryption",
        resigned(bases["base-mlkem.aoe"], edit_payload(model, lambda b: flip(b, 100))),
        error("decryption"), "as flipped-segment, through X-Wing", base="base-mlkem.aoe",
        key="mlkem768-x25519")  # fmt: skip
