"""Delta updates (docs/format.md §16): make, apply, and one test per attack.

The model is a real one nobody tuned for this: the sample SqueezeNet (ONNX),
and a "fine-tune" of it that changes only its classifier (``conv10``), the way
transfer learning with a frozen backbone does. benchmarks/bench_delta.py
measures the same on Keras applications.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aoe_pack._crypto.asymmetric import PrivateKey
from aoe_pack._jcs import canonical_json
from aoe_pack.bundle import _patch, signatures
from aoe_pack.bundle._patch import zstd
from aoe_pack.bundle.container import AlignedZipWriter, read_layout
from aoe_pack.bundle.delta import (
    DELTA_PAYLOAD_TYPE,
    MEDIA_TYPE_DELTA_V1,
    apply_delta,
    make_delta,
)
from aoe_pack.bundle.format import MANIFEST_ENTRY, SIGNATURES_ENTRY
from aoe_pack.bundle.unpack import unpack_bundle
from aoe_pack.bundle.verify import verify_bundle
from aoe_pack.errors import (
    DeltaBaseError,
    DeltaError,
    IntegrityError,
    ManifestError,
    NoMatchingRecipientError,
    PatchError,
    ThresholdError,
    UnsafeEntryError,
    UnsupportedVersionError,
    ZipStructureError,
)
from aoe_pack.keys.load import DecryptionKey
from tests.conftest import BuiltBundle

ROOT = Path(__file__).resolve().parents[2]
SQUEEZENET = ROOT / "sample_models" / "squeezenet"
LABELS = (SQUEEZENET / "labels.txt").read_bytes()


def _fine_tuned(model: bytes) -> bytes:
    """``model`` with only its classifier's weights moved (conv10), as a head-only fine-tune."""
    onnx = pytest.importorskip("onnx")
    np = pytest.importorskip("numpy")
    m = onnx.ModelProto()
    m.ParseFromString(model)
    rng = np.random.default_rng(7)
    for init in m.graph.initializer:
        if init.name.startswith("conv10."):
            w = np.frombuffer(init.raw_data, dtype=np.float32)
            init.raw_data = (w + rng.normal(0, 0.01, w.shape).astype(np.float32)).tobytes()
    out: bytes = m.SerializeToString()
    return out


@pytest.fixture(scope="module")
def models() -> tuple[bytes, bytes]:
    base = (SQUEEZENET / "squeezenet.onnx").read_bytes()
    return base, _fine_tuned(base)


class Release:
    def __init__(self, bundle: Path, folder: Path) -> None:
        self.bundle, self.folder = bundle, folder


@pytest.fixture
def pair(
    tmp_path: Path,
    built_bundle: BuiltBundle,
    models: tuple[bytes, bytes],
    signer: PrivateKey,
    x25519_key: PrivateKey,
) -> tuple[Release, Release]:
    """v1.0.0 installed (unpacked) and v1.1.0 built, both encrypted to ``x25519_key``."""
    out = []
    for version, model in (("1.0.0", models[0]), ("1.1.0", models[1])):
        bundle = built_bundle(
            {"model.tflite": model, "labels.txt": LABELS},
            version=version,
            recipients=[x25519_key.public],
            name=f"v{version}.aoe",
        )
        folder = tmp_path / f"tag_x-{version}"
        unpack_bundle(bundle, folder, trusted_keys=[signer.public], decryption_key=_key(x25519_key))
        out.append(Release(bundle, folder))
    return out[0], out[1]


def _key(k: PrivateKey) -> DecryptionKey:
    return DecryptionKey(origin="test key", private=k)


@pytest.fixture
def delta(
    tmp_path: Path, pair: tuple[Release, Release], signer: PrivateKey, x25519_key: PrivateKey
) -> Path:
    base, target = pair
    out = tmp_path / "d.aoed"
    make_delta(
        base.bundle,
        target.bundle,
        out,
        trusted_keys=[signer.public],
        signing_keys=[signer],
        decryption_key=_key(x25519_key),
    )
    return out


def _apply(delta: Path, base: Path, out: Path, signer: PrivateKey, key: PrivateKey) -> Any:
    out.mkdir()
    return apply_delta(
        delta,
        base,
        out,
        tag="tag_x",
        version="1.1.0",
        trusted_keys=[signer.public],
        decryption_key=_key(key),
    )


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


# --- it works, and it is small --------------------------------------------------------------


def test_applying_a_delta_gives_the_target_release_files(
    tmp_path: Path,
    pair: tuple[Release, Release],
    delta: Path,
    signer: PrivateKey,
    x25519_key: PrivateKey,
) -> None:
    base, target = pair
    result = _apply(delta, base.folder, tmp_path / "new", signer, x25519_key)
    assert _files(tmp_path / "new") == _files(target.folder)
    assert [f.path for f in result.files] == ["labels.txt", "model.tflite"]
    methods = {t.path: t.method for t in result.manifest.target_files}
    assert methods == {"labels.txt": "copy", "model.tflite": "zstd-patch-from"}


def test_a_head_only_fine_tune_delta_is_a_fraction_of_the_bundle(
    pair: tuple[Release, Release], delta: Path
) -> None:
    # SqueezeNet's classifier is 29 % of its weights; the delta carries little else.
    _, target = pair
    assert delta.stat().st_size < 0.35 * target.bundle.stat().st_size


def test_the_delta_is_encrypted_for_the_target_recipients_only(
    tmp_path: Path, pair: tuple[Release, Release], delta: Path, signer: PrivateKey
) -> None:
    from aoe_pack._crypto import asymmetric

    stranger = asymmetric.generate(asymmetric.KeyKind.X25519)
    with pytest.raises(NoMatchingRecipientError):
        _apply(delta, pair[0].folder, tmp_path / "new", signer, stranger)


def test_a_delta_is_not_a_bundle(delta: Path, signer: PrivateKey) -> None:
    with pytest.raises(UnsupportedVersionError, match="an unrecognised format"):
        verify_bundle(delta, trusted_keys=[signer.public])


# --- attacks ----------------------------------------------------------------------------------


def test_delta_for_another_base_is_refused(
    tmp_path: Path, pair: tuple[Release, Release], delta: Path, signer: PrivateKey,
    x25519_key: PrivateKey,
) -> None:  # fmt: skip
    base, _ = pair
    model = base.folder / "model.tflite"
    model.write_bytes(model.read_bytes()[:-1] + b"\x00")
    with pytest.raises(DeltaBaseError, match="differs from the file the delta was made from"):
        _apply(delta, base.folder, tmp_path / "new", signer, x25519_key)


def test_delta_with_a_missing_base_file_is_refused(
    tmp_path: Path, pair: tuple[Release, Release], delta: Path, signer: PrivateKey,
    x25519_key: PrivateKey,
) -> None:  # fmt: skip
    base, _ = pair
    (base.folder / "labels.txt").unlink()
    with pytest.raises(DeltaBaseError, match="cannot be read"):
        _apply(delta, base.folder, tmp_path / "new", signer, x25519_key)


def test_truncated_delta_is_refused(
    tmp_path: Path, pair: tuple[Release, Release], delta: Path, signer: PrivateKey,
    x25519_key: PrivateKey,
) -> None:  # fmt: skip
    delta.write_bytes(delta.read_bytes()[:-100])
    with pytest.raises(ZipStructureError):
        _apply(delta, pair[0].folder, tmp_path / "new", signer, x25519_key)


def test_flipped_byte_in_a_delta_patch_is_refused(
    tmp_path: Path, pair: tuple[Release, Release], delta: Path, signer: PrivateKey,
    x25519_key: PrivateKey,
) -> None:  # fmt: skip
    data = bytearray(delta.read_bytes())
    with delta.open("rb") as fp:
        layout = read_layout(fp, file_size=len(data), media_types=(MEDIA_TYPE_DELTA_V1,))
    entry = layout.entries[0]
    data[entry.data_offset + entry.size // 2] ^= 0x01
    delta.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        _apply(delta, pair[0].folder, tmp_path / "new", signer, x25519_key)


def test_delta_signed_by_an_untrusted_key_is_refused(
    tmp_path: Path, pair: tuple[Release, Release], delta: Path, signer2: PrivateKey,
    x25519_key: PrivateKey,
) -> None:  # fmt: skip
    with pytest.raises(ThresholdError):
        _apply(delta, pair[0].folder, tmp_path / "new", signer2, x25519_key)


def test_delta_for_another_release_is_refused(
    tmp_path: Path, pair: tuple[Release, Release], delta: Path, signer: PrivateKey,
    x25519_key: PrivateKey,
) -> None:  # fmt: skip
    (tmp_path / "new").mkdir()
    with pytest.raises(DeltaError, match=r"leads to tag_x 1\.1\.0, the release is tag_x 1\.2\.0"):
        apply_delta(
            delta, pair[0].folder, tmp_path / "new", tag="tag_x", version="1.2.0",
            trusted_keys=[signer.public], decryption_key=_key(x25519_key),
        )  # fmt: skip


# An insider (a publisher bug, or a stolen bundle key) signs whatever it likes: the
# device still checks every output byte against the target digests, and bounds the work.


def _resign(
    delta: Path,
    signer: PrivateKey,
    mutate: Callable[[dict[str, Any]], None] = lambda _: None,
    *,
    patch: bytes | None = None,
) -> None:
    """Rewrite ``delta`` with its manifest changed by ``mutate`` (and its one patch
    replaced by the unencrypted ``patch``), consistently signed by ``signer``."""
    raw = delta.read_bytes()
    with delta.open("rb") as fp:
        layout = read_layout(fp, file_size=len(raw), media_types=(MEDIA_TYPE_DELTA_V1,))
    doc = json.loads(raw[layout.entries[-2].data_offset :][: layout.entries[-2].size])
    mutate(doc)
    entries = layout.entries[:-2]
    with delta.open("wb") as out:
        w = AlignedZipWriter(out, media_type=MEDIA_TYPE_DELTA_V1, date_time=layout.date_time)
        for e, f in zip(entries, doc["files"], strict=True):
            data = raw[e.data_offset : e.data_offset + e.size]
            if patch is not None:
                doc.pop("encryption", None)
                f.pop("noncePrefix", None)
                data = patch
                f["size"] = len(patch)
                f["sha256"] = hashlib.sha256(patch).hexdigest()
                f["stored"]["chunks"] = [hashlib.sha256(patch).hexdigest()]
                f["stored"]["size"] = len(patch)
            entry = w.add_bytes("payload/" + f["path"], data)
            f["stored"]["crc32"] = entry.crc32
        body = canonical_json(doc)
        w.add_bytes(MANIFEST_ENTRY, body)
        w.add_bytes(
            SIGNATURES_ENTRY,
            signatures.sign_manifest(body, [signer], payload_type=DELTA_PAYLOAD_TYPE),
        )
        w.close()


def _model_target(doc: dict[str, Any]) -> dict[str, Any]:
    t: dict[str, Any] = next(t for t in doc["target"]["files"] if t["path"] == "model.tflite")
    return t


def test_delta_whose_result_does_not_match_the_signed_sha256_is_refused(
    tmp_path: Path, pair: tuple[Release, Release], delta: Path, signer: PrivateKey,
    x25519_key: PrivateKey,
) -> None:  # fmt: skip
    def wrong(doc: dict[str, Any]) -> None:
        _model_target(doc)["sha256"] = "0" * 64

    _resign(delta, signer, wrong)
    with pytest.raises(IntegrityError, match="does not match the release's signed SHA-256"):
        _apply(delta, pair[0].folder, tmp_path / "new", signer, x25519_key)


def test_patch_that_would_write_outside_the_folder_is_refused(
    tmp_path: Path, pair: tuple[Release, Release], delta: Path, signer: PrivateKey,
    x25519_key: PrivateKey,
) -> None:  # fmt: skip
    def escape(doc: dict[str, Any]) -> None:
        labels = next(t for t in doc["target"]["files"] if t["path"] == "labels.txt")
        labels["path"] = "../labels.txt"
        doc["target"]["files"].sort(key=lambda t: t["path"])

    _resign(delta, signer, escape)
    with pytest.raises(ManifestError, match=r"'\.\.' segment"):
        _apply(delta, pair[0].folder, tmp_path / "new", signer, x25519_key)
    assert not (tmp_path / "labels.txt").exists()


def _unsized(data: bytes, *, window_log: int) -> bytes:
    """A zstd frame holding ``data`` whose header does not say its size."""
    p = zstd.CompressionParameter
    cctx = zstd.ZstdCompressor(options={p.window_log: window_log, p.content_size_flag: 0})
    return cctx.compress(data) + cctx.flush()


def test_patch_producing_more_than_the_target_size_is_refused(
    tmp_path: Path, pair: tuple[Release, Release], delta: Path, signer: PrivateKey,
    x25519_key: PrivateKey,
) -> None:  # fmt: skip
    # a decompression bomb: 64 MiB of zeros in a few KiB, for a target of the model's size
    _resign(delta, signer, patch=_unsized(bytes(64 << 20), window_log=20))
    with pytest.raises(PatchError, match="does not declare its output size"):
        _apply(delta, pair[0].folder, tmp_path / "new", signer, x25519_key)


def test_patch_declaring_another_size_is_refused() -> None:
    patch = _patch.make_patch(b"a" * 1000, b"a" * 2000)
    with pytest.raises(PatchError, match="declares 2000 bytes of output, the target is 1000"):
        b"".join(_patch.apply_patch(b"a" * 1000, patch, target_size=1000, name="m"))


def test_decoding_stops_at_the_target_size() -> None:
    # past the header check (a frame may lie about its size): the output bound itself
    pieces = _patch._bounded(
        b"", _unsized(bytes(64 << 20), window_log=10), target_size=1000, name="bomb"
    )
    with pytest.raises(PatchError, match="more than 1000 bytes"):
        next(pieces)  # the first piece already overflows: nothing of it is handed out


def test_patch_asking_for_a_huge_window_is_refused() -> None:
    frame = _unsized(b"x" * 100, window_log=30)
    with pytest.raises(PatchError, match="corrupt"):
        b"".join(_patch._bounded(b"", frame, target_size=100, name="m"))


def test_corrupt_patch_is_refused() -> None:
    patch = _patch.make_patch(b"a" * 1000, b"a" * 900 + b"b" * 100)
    broken = patch[:-6] + bytes(x ^ 0xFF for x in patch[-6:])
    with pytest.raises(PatchError):
        b"".join(_patch.apply_patch(b"a" * 1000, broken, target_size=1000, name="m"))


def test_truncated_patch_is_refused() -> None:
    patch = _patch.make_patch(b"a" * 1000, bytes(range(256)) * 8)
    with pytest.raises(PatchError, match="truncated"):
        b"".join(_patch.apply_patch(b"a" * 1000, patch[:-10], target_size=2048, name="m"))


def test_a_patch_from_nothing_is_a_plain_frame() -> None:
    target = bytes(range(256)) * 40
    patch = _patch.make_patch(b"", target)
    assert b"".join(_patch.apply_patch(b"", patch, target_size=len(target), name="n")) == target


def test_delta_with_an_unsafe_target_name_never_reaches_the_file_system() -> None:
    from aoe_pack.bundle.container import check_name

    with pytest.raises(UnsafeEntryError):
        check_name("/etc/passwd")


def test_no_single_flipped_byte_of_a_delta_gets_through(
    tmp_path: Path, pair: tuple[Release, Release], delta: Path, signer: PrivateKey,
    x25519_key: PrivateKey,
) -> None:  # fmt: skip
    """Flip one bit anywhere (headers, padding, patches, manifest, signatures): refused."""
    import random

    from aoe_pack.errors import AoePackError

    good = delta.read_bytes()
    rng = random.Random(1)
    offsets = sorted(
        {rng.randrange(len(good)) for _ in range(40)} | {0, 40, len(good) - 23, len(good) - 1}
    )
    for i, offset in enumerate(offsets):
        broken = bytearray(good)
        broken[offset] ^= 1 << rng.randrange(8)
        delta.write_bytes(bytes(broken))
        out = tmp_path / f"out{i}"
        with pytest.raises(AoePackError):
            _apply(delta, pair[0].folder, out, signer, x25519_key)
