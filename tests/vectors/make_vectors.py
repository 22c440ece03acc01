"""Generate the committed test vectors of bundle format v1 (docs/format.md).

    .venv/bin/python tests/vectors/make_vectors.py                   # first time only
    .venv/bin/python tests/vectors/make_vectors.py --update-goldens  # after an intended change
    .venv/bin/python tests/vectors/make_vectors.py --update-goldens --only v1-mlkem.aoe

Every key written here is TEST-ONLY and public (README.md). Keys are made once
and kept; ``--update-goldens`` rebuilds the bundles (``--only``: just those) and
``expected.json`` with them. ``v1-plain.aoe`` is deterministic:
``tests/test_vectors.py`` rebuilds it with :func:`build_plain` and requires the
same bytes. The encrypted bundles draw a fresh data key, nonce prefixes and
HPKE ephemerals, so they are built once; their data keys are recovered with the
test-only recipient keys and recorded so that devices can check every
primitive step.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from unittest import mock

import aoe_pack.bundle.build as build_module
from aoe_pack._crypto.sign import pae
from aoe_pack._crypto.stream import TAG_SIZE, SegmentCipher, stored_size
from aoe_pack.bundle import EncryptionSpec, build_bundle, verify_bundle
from aoe_pack.bundle.container import dos_datetime
from aoe_pack.bundle.format import CHUNK_SIZE, PAYLOAD_TYPE
from aoe_pack.bundle.verify import data_key_for, open_bundle
from aoe_pack.config.model import ModelConfig, ModelFile
from aoe_pack.keys import (
    DecryptionKey,
    PrivateKey,
    keygen,
    load_decryption_key,
    load_public_key,
    load_signing_key,
)

HERE = Path(__file__).resolve().parent
EPOCH = 1_700_000_000  # 2023-11-14T22:13:20Z; SOURCE_DATE_EPOCH of every vector
TAG, VERSION = "aoe-pack.test-vectors", "1.0.0"
SEED = b"aoe-pack format v1 test vector "
MODEL_SIZE = 1_100_000  # two 1 MiB chunks / AES-GCM segments
# The manifest's provenance records the toolchain; the golden pins it so that it
# tests the format, not the interpreter or library versions that built it.
TOOLCHAIN = {"aoe-pack": "0.1.0", "python": "3.11.7", "cryptography": "50.0.2"}

KEY_KINDS = ("ed25519", "p256", "x25519", "p256-kem", "mlkem768-x25519", "aes256")
SIGNERS = ("ed25519", "p256")
BUNDLES: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # name: (HPKE recipients, key-encryption keys)
    "v1-plain.aoe": ((), ()),
    "v1-x25519.aoe": (("x25519",), ()),
    "v1-kek.aoe": ((), ("aes256",)),
    "v1-mlkem.aoe": (("mlkem768-x25519",), ()),
    "v1-multi.aoe": (("x25519", "p256-kem"), ("aes256",)),
}
# model.updateURL (§5.2.4) was defined after the encrypted vectors were built: the plain
# one carries it, the others show that a bundle without it reads as before.
UPDATE_URL = {"v1-plain.aoe": "https://models.example.com/test-vectors/"}
SEGMENT_VECTOR = ("v1-x25519.aoe", "payload/model.tflite")
# Where the raw public key starts in the SPKI DER (§6.3): after a fixed prefix.
RAW_KEY_OFFSET = {"ed25519": 12, "x25519": 12, "mlkem768-x25519": 24}


def key_path(kind: str, suffix: str, vectors: Path = HERE) -> Path:
    return vectors / f"test-only-{kind}.{suffix}"


def payload_files() -> dict[str, bytes]:
    """The model files of every vector; the model is SHAKE256(SEED + path)[:MODEL_SIZE]."""
    return {
        "model.tflite": hashlib.shake_256(SEED + b"model.tflite").digest(MODEL_SIZE),
        "labels.txt": b"cat\ndog\n",
        "assets/empty.bin": b"",
    }


def write_config(root: Path, *, encrypt: bool, update_url: str | None = None) -> ModelConfig:
    files = payload_files()
    for rel, data in files.items():
        dest = root / "model" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
    extra = (
        ModelFile(path="labels.txt", role="labels"),
        ModelFile(path="assets/empty.bin", role="asset"),
    )
    return ModelConfig(
        source_path=root / "model.config.json",
        version=VERSION,
        tag=TAG,
        runtime="tflite",
        source="installed",
        model_dir="model",
        model_name="model.tflite",
        files=(ModelFile(path="model.tflite", role="model"), *extra),
        encrypt=encrypt,
        update_url=update_url,
        canonical={
            "version": VERSION,
            "tag": TAG,
            "runtime": "tflite",
            "source": "installed",
            "modelDir": "model",
            "modelName": "model.tflite",
            "encrypt": encrypt,
            "files": [{"path": f.path, "role": f.role} for f in extra],
        }
        | ({"updateURL": update_url} if update_url else {}),
    )


@contextlib.contextmanager
def pinned_build() -> Iterator[None]:
    """SOURCE_DATE_EPOCH and the recorded toolchain fixed, as for every vector."""
    with (
        mock.patch.dict(os.environ, {"SOURCE_DATE_EPOCH": str(EPOCH)}),
        mock.patch.object(build_module, "__version__", TOOLCHAIN["aoe-pack"]),
        mock.patch.object(
            build_module.platform, "python_version", return_value=TOOLCHAIN["python"]
        ),
        mock.patch.object(
            build_module, "cryptography_version", return_value=TOOLCHAIN["cryptography"]
        ),
    ):
        yield


def signing_keys(vectors: Path = HERE) -> list[PrivateKey]:
    return [load_signing_key(str(key_path(k, "key", vectors))) for k in SIGNERS]


def build_vector(name: str, out: Path, vectors: Path = HERE) -> None:
    """Build the vector bundle ``name`` at ``out`` with the committed test-only keys."""
    hpke, keks = BUNDLES[name]
    spec = EncryptionSpec(
        recipients=[load_public_key(str(key_path(k, "pub", vectors))) for k in hpke],
        keks=[bytes.fromhex(key_path(k, "key", vectors).read_text().strip()) for k in keks],
    )
    with tempfile.TemporaryDirectory() as tmp, pinned_build():
        config = write_config(Path(tmp), encrypt=spec.enabled, update_url=UPDATE_URL.get(name))
        build_bundle(config, out, signing_keys=signing_keys(vectors), encryption=spec)


def build_plain(out: Path, vectors: Path = HERE) -> None:
    """Rebuild the deterministic golden ``v1-plain.aoe`` at ``out``."""
    build_vector("v1-plain.aoe", out, vectors)


def decryption_key(kind: str, vectors: Path = HERE) -> DecryptionKey:
    return load_decryption_key(str(key_path(kind, "key", vectors)))


# --- expected.json -------------------------------------------------------------------


def _pem_ders(pem: bytes, label: str = "PUBLIC KEY") -> list[bytes]:
    blocks = pem.decode().split(f"-----END {label}-----")[:-1]
    return [base64.b64decode(b.split(f"-----BEGIN {label}-----")[1]) for b in blocks]


def key_vectors(vectors: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in KEY_KINDS:
        if kind == "aes256":
            kek = bytes.fromhex(key_path(kind, "key", vectors).read_text().strip())
            label = b"aoe-pack/v1 kek-id\x00"
            out[kind] = {
                "file": key_path(kind, "key", vectors).name,
                "keyid": hashlib.sha256(label + kek).hexdigest(),
                "keyidInputHex": (label + kek).hex(),
            }
            continue
        pub = key_path(kind, "pub", vectors)
        ders = _pem_ders(pub.read_bytes())
        out[kind] = {
            "file": pub.name,
            "keyid": load_public_key(str(pub)).key_id,
            "spkiDerHex": [d.hex() for d in ders],
        }
        if kind in RAW_KEY_OFFSET:
            out[kind]["rawHex"] = ders[0][RAW_KEY_OFFSET[kind] :].hex()
        if kind == "mlkem768-x25519":  # §10.2: the PKCS#8 holds the bare 32-byte X-Wing seed
            (pkcs8,) = _pem_ders(key_path(kind, "key", vectors).read_bytes(), "PRIVATE KEY")
            out[kind]["pkcs8DerHex"] = pkcs8.hex()
            out[kind]["seedHex"] = pkcs8[22:].hex()
    return out


def _recipients(manifest: Any) -> list[dict[str, Any]]:
    out = []
    for r in manifest.encryption.recipients:
        blob = base64.b64decode(r.wrapped)
        item: dict[str, Any] = {"type": r.type, "keyid": r.keyid, "blobLength": len(blob)}
        if r.type == "hpke":
            item |= {"kem": r.kem, "encLength": len(blob) - 48, "encHex": blob[:-48].hex()}
        else:
            item |= {"nonceHex": blob[:12].hex(), "ciphertextAndTagHex": blob[12:].hex()}
        out.append(item)
    return out


def segment_vector(bundle: Path, entry: str, manifest: Any, data_key: bytes) -> dict[str, Any]:
    f = next(x for x in manifest.files if x.entry == entry)
    prefix = bytes.fromhex(f.nonce_prefix)
    aad = entry.encode()
    cipher = SegmentCipher(data_key, prefix, aad)
    with open_bundle(bundle) as ob:
        e = next(x for x in ob.payload_entries() if x.name == entry)
        stored = os.pread(ob.fd, e.size, e.data_offset)
    segs = []
    count = len(f.stored.chunks)
    for i in range(count):
        ct = stored[i * CHUNK_SIZE : (i + 1) * CHUNK_SIZE]
        last = i == count - 1
        nonce = prefix + i.to_bytes(4, "big") + (b"\x01" if last else b"\x00")
        plain = cipher.open(i, last, ct)
        segs.append(
            {
                "index": i,
                "last": last,
                "nonceHex": nonce.hex(),
                "storedOffset": i * CHUNK_SIZE,
                "ciphertextLength": len(ct),
                "plaintextLength": len(plain),
                "ciphertextSha256": hashlib.sha256(ct).hexdigest(),
                "tagHex": ct[-TAG_SIZE:].hex(),
                "plaintextSha256": hashlib.sha256(plain).hexdigest(),
            }
        )
    return {
        "bundle": bundle.name,
        "entry": entry,
        "dataKeyHex": data_key.hex(),
        "noncePrefixHex": prefix.hex(),
        "aadHex": aad.hex(),
        "plaintextSize": f.size,
        "storedSize": f.stored.size,
        "segments": segs,
    }


def bundle_vectors(vectors: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    trusted = [load_public_key(str(key_path(k, "pub", vectors))) for k in SIGNERS]
    out: dict[str, Any] = {}
    segment: dict[str, Any] = {}
    for name, (hpke, keks) in BUNDLES.items():
        path = vectors / name
        result = verify_bundle(path, trusted_keys=trusted, threshold=len(trusted))
        m = result.manifest
        with open_bundle(path) as ob:
            manifest_bytes = ob.manifest_bytes
        item: dict[str, Any] = {
            "size": path.stat().st_size,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "signers": sorted(s.keyid for s in result.signatures),
            "manifestSha256": hashlib.sha256(manifest_bytes).hexdigest(),
            "paeSha256": hashlib.sha256(pae(PAYLOAD_TYPE, manifest_bytes)).hexdigest(),
            "decryptWith": [key_path(k, "key", vectors).name for k in (*hpke, *keks)],
            "files": [
                {"entry": f.entry, "size": f.size, "sha256": f.sha256, "storedSize": f.stored.size}
                for f in m.files
            ],
        }
        if m.encryption is not None:
            keys_ = [decryption_key(k, vectors) for k in (*hpke, *keks)]
            data_keys = {data_key_for(m, k) for k in keys_}
            assert len(data_keys) == 1, f"{name}: recipients disagree on the data key"
            (data_key,) = data_keys
            item["dataKeyHex"] = data_key.hex()
            item["noncePrefixes"] = {f.entry: f.nonce_prefix for f in m.files}
            info = b"aoe-pack/v1 data-key\x00" + TAG.encode() + b"\x00" + VERSION.encode()
            item["infoHex"] = info.hex()
            item["recipients"] = _recipients(m)
            if name == SEGMENT_VECTOR[0]:
                segment = segment_vector(path, SEGMENT_VECTOR[1], m, data_key)
        out[name] = item
    return out, segment


def expected(vectors: Path) -> dict[str, Any]:
    sample = b'{"hello":"world"}'
    bundles, segment = bundle_vectors(vectors)
    time, date = dos_datetime(EPOCH)
    return {
        "comment": "Test vectors for docs/format.md. Every key and data key here is TEST-ONLY.",
        "toolchain": TOOLCHAIN,
        "model": {"tag": TAG, "version": VERSION},
        "sourceDateEpoch": EPOCH,
        "dosTime": time,
        "dosDate": date,
        "payload": {
            "generator": "model.tflite = SHAKE256(seed || 'model.tflite')[:size]",
            "seedHex": SEED.hex(),
            "files": {
                path: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                for path, data in payload_files().items()
            },
        },
        "pae": {
            "payloadType": PAYLOAD_TYPE,
            "payloadHex": sample.hex(),
            "paeHex": pae(PAYLOAD_TYPE, sample).hex(),
        },
        "storedSizes": [
            {"plaintext": n, "stored": stored_size(n, CHUNK_SIZE)}
            for n in (0, 1, CHUNK_SIZE - TAG_SIZE, CHUNK_SIZE - TAG_SIZE + 1, MODEL_SIZE)
        ],
        "keys": key_vectors(vectors),
        "bundles": bundles,
        "segmentVector": segment,
    }


# --- command line --------------------------------------------------------------------


REPOSITORY_ID = "a0e0" * 8
REPOSITORY_VECTORS = (
    "repo-root.json",
    "repo-manifest.json",
    "repo-index.json",
    "repo-tag.json",
    "repo-tag-4.json",
)
"""A split repository (docs/format.md §15.12): root 1 over both test-only signing keys
(threshold 2), manifest version 3 with two tags, its index (whose ``manifestSha256`` is
that manifest's payload digest), and the tag document of ``TAG`` at version 2; and
``TAG``'s next document, at version 4 (one release more, ``previous`` 2). Deterministic
(Ed25519, RFC 6979 ECDSA): the test rebuilds them."""
TAG_PATCH_VECTOR = "repo-tag-4.from-2.zst"
"""The patch from ``repo-tag.json`` to ``repo-tag-4.json`` (§15.12). zstd promises the
same frame only from the same library version and level, so the test only decodes it."""


def repository_vectors(vectors: Path) -> dict[str, bytes]:
    """The bytes of :data:`REPOSITORY_VECTORS`, signed by the test-only signing keys."""
    import datetime as dt

    from aoe_pack.repository import envelope
    from aoe_pack.repository.model import Manifest, ModelReleases, Release
    from aoe_pack.repository.root import new_root
    from aoe_pack.repository.split import Index, sign_index, sign_tag_document, tag_document

    keys = signing_keys(vectors)
    root = new_root(1, [k.public for k in keys], 2, REPOSITORY_ID)
    sha = hashlib.sha256(b"aoe-pack test vector bundle").hexdigest()
    release = Release(
        version=VERSION,
        version_code=10_000_999,
        url=f"bundles/{sha}.aoe",
        size=1234,
        sha256=sha,
        runtimes=("tflite",),
        artifacts=({"runtime": "tflite"},),
        salt="00112233445566778899aabbccddeeff",
        signers=(keys[0].key_id,),
    )
    manifest = Manifest(
        version=3,
        expires=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
        models={TAG: ModelReleases(releases=(release,)), "other.model": ModelReleases()},
        bundle_keys={keys[0].key_id: keys[0].public.pem.decode()},
    )
    signed_manifest = envelope.sign(envelope.MANIFEST_TYPE, manifest.to_dict(), keys)
    index = Index(
        version=3,
        expires=manifest.expires,
        manifest_sha256=hashlib.sha256(signed_manifest.payload).hexdigest(),
        tags={TAG: 2, "other.model": 3},
    )
    sha2 = hashlib.sha256(b"aoe-pack test vector bundle 1.1.0").hexdigest()
    release2 = Release(
        version="1.1.0",
        version_code=10_100_999,
        url=f"bundles/{sha2}.aoe",
        size=1235,
        sha256=sha2,
        runtimes=("tflite",),
        artifacts=({"runtime": "tflite"},),
        salt="ffeeddccbbaa99887766554433221100",
        signers=(keys[0].key_id,),
    )
    manifest4 = Manifest(
        version=4,
        expires=manifest.expires,
        models={
            TAG: ModelReleases(releases=(release, release2)),
            "other.model": ModelReleases(),
        },
        bundle_keys=manifest.bundle_keys,
    )
    return {
        "repo-root.json": envelope.sign(envelope.ROOT_TYPE, root.to_dict(), keys).to_bytes(),
        "repo-manifest.json": signed_manifest.to_bytes(),
        "repo-index.json": sign_index(index, keys),
        "repo-tag.json": sign_tag_document(tag_document(manifest, TAG, 2), keys),
        "repo-tag-4.json": sign_tag_document(tag_document(manifest4, TAG, 4, previous=2), keys),
    }


def tag_patch_vector(vectors: Path) -> bytes:
    """:data:`TAG_PATCH_VECTOR`, made from the committed tag documents."""
    from aoe_pack.repository import envelope
    from aoe_pack.repository.tag_patch import make_patch

    old, new = (
        envelope.parse((vectors / n).read_bytes(), envelope.TAG_TYPE, what=n)
        for n in ("repo-tag.json", "repo-tag-4.json")
    )
    return make_patch(old.payload, new)


def make_keys(vectors: Path) -> None:
    for kind in KEY_KINDS:
        if not key_path(kind, "key", vectors).exists():
            keygen(kind, vectors / f"test-only-{kind}")
            print(f"made TEST-ONLY key {key_path(kind, 'key', vectors).name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--update-goldens",
        action="store_true",
        help="rewrite the committed bundles and expected.json (an intended format change)",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=list(BUNDLES),
        metavar="BUNDLE",
        help="with --update-goldens, rebuild only this bundle (repeatable) and keep the others' "
        "bytes, e.g. after deleting and so regenerating the test-only key it is encrypted for",
    )
    parser.add_argument("--dir", type=Path, default=HERE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    vectors: Path = args.dir
    outputs = [vectors / n for n in (*BUNDLES, "expected.json")]
    if not args.update_goldens and (existing := [p.name for p in outputs if p.exists()]):
        print(
            f"refusing to overwrite {', '.join(existing)}; pass --update-goldens if the "
            "format changed on purpose",
            file=sys.stderr,
        )
        return 2
    make_keys(vectors)
    for name in args.only or BUNDLES:
        build_vector(name, vectors / name, vectors)
        print(f"wrote {name} ({(vectors / name).stat().st_size} bytes)")
    for name, data in repository_vectors(vectors).items():
        (vectors / name).write_bytes(data)
        print(f"wrote {name}")
    (vectors / TAG_PATCH_VECTOR).write_bytes(tag_patch_vector(vectors))
    print(f"wrote {TAG_PATCH_VECTOR}")
    text = json.dumps(expected(vectors), indent=2) + "\n"
    (vectors / "expected.json").write_text(text)
    print("wrote expected.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
