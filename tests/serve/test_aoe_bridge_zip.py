"""The legacy zip: built only from a bundle that verifies, deterministic, laid out for AoE.

Bundles come from the suite's ``built_bundle`` fixture (signed by ``signer``).
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from _aoe_client import md5sum

from aoe_pack._crypto.asymmetric import PrivateKey
from aoe_pack.errors import (
    BundleFormatError,
    BundleMismatchError,
    DecryptionError,
    ThresholdError,
    UnsafeEntryError,
)
from aoe_pack.keys.load import DecryptionKey
from aoe_pack.serve.aoe_bridge import AoeBridge, AoeMapping
from aoe_pack.serve.legacy_zip import AoeTarget, build_legacy_zip, entry_name

TARGET = AoeTarget(model_id=12134, model_dir="mnist")
FILES = {"model.tflite": bytes(range(256)) * 64, "labels.txt": b"cat\ndog\n"}


def _build(bundle: Path, out: Path, signer: PrivateKey, **options: Any) -> Any:
    return build_legacy_zip(bundle, out, target=TARGET, trusted_keys=[signer.public], **options)


def test_the_zip_is_the_same_bytes_each_time_and_named_by_its_sha256(
    built_bundle: Any, signer: PrivateKey, tmp_path: Path
) -> None:
    bundle = built_bundle(FILES, version="1.2.0")

    first = _build(bundle, tmp_path / "one", signer)
    second = _build(bundle, tmp_path / "two", signer)

    data = first.path.read_bytes()
    assert data == second.path.read_bytes()
    assert first.name == f"{hashlib.sha256(data).hexdigest()}.zip"
    assert (first.md5, first.sha256, first.size) == (
        md5sum(data),
        hashlib.sha256(data).hexdigest(),
        len(data),
    )
    assert (first.tag, first.version) == ("tag_x", "1.2.0")
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == [first.name]  # no leftovers


def test_the_zip_holds_the_files_under_one_folder_with_aoe_s_config(
    built_bundle: Any, signer: PrivateKey, tmp_path: Path
) -> None:
    zipped = _build(built_bundle(FILES, version="1.2.0"), tmp_path, signer)

    with zipfile.ZipFile(zipped.path) as zf:
        infos = zf.infolist()
        assert [i.filename for i in infos] == [
            "model/labels.txt",
            "model/model.config",
            "model/model.tflite",
        ]
        for info in infos:
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.compress_type == zipfile.ZIP_STORED
            assert info.external_attr == 0o100644 << 16
            assert ".." not in info.filename.split("/")
        assert zf.read("model/model.tflite") == FILES["model.tflite"]
        assert zf.read("model/labels.txt") == FILES["labels.txt"]
        assert json.loads(zf.read("model/model.config")) == {
            "version": "1.2.0",
            "runtime": "tensorflow",
            "source": "cloud",
            "modelId": 12134,
            "modelDir": "mnist",
            "modelName": "model.tflite",
            "modelSign": md5sum(FILES["model.tflite"]),
            "modelLabelName": "labels.txt",
        }


def test_an_unsafe_path_never_becomes_an_entry() -> None:
    for path in ("../evil", "a/../../evil", "/etc/passwd", "a\\..\\b", "a//b", "."):
        with pytest.raises(UnsafeEntryError) as e:
            entry_name(path)
        assert e.value.message == f"refusing to put the unsafe path {path!r} in an AoE zip"


def test_a_bundle_signed_by_another_key_is_refused(
    built_bundle: Any, signer: PrivateKey, signer2: PrivateKey, tmp_path: Path
) -> None:
    bundle = built_bundle(FILES, signers=[signer2])

    with pytest.raises(ThresholdError) as e:
        _build(bundle, tmp_path / "zips", signer)
    assert e.value.message == (
        f"0 valid signatures of 1 required; {signer2.public.key_id[:16]}…: key not trusted"
    )
    assert not list((tmp_path / "zips").iterdir())


def test_a_bundle_of_another_release_is_refused(
    built_bundle: Any, signer: PrivateKey, tmp_path: Path
) -> None:
    with pytest.raises(BundleMismatchError) as e:
        _build(built_bundle(FILES, version="1.2.0"), tmp_path, signer, expect=("tag_x", "1.3.0"))
    assert e.value.message == "the bundle says it is tag_x 1.2.0, the manifest tag_x 1.3.0"


def test_an_encrypted_bundle_needs_the_operators_key(
    built_bundle: Any, signer: PrivateKey, x25519_key: PrivateKey, tmp_path: Path
) -> None:
    bundle = built_bundle(FILES, version="1.2.0", recipients=[x25519_key.public])

    with pytest.raises(DecryptionError) as e:
        _build(bundle, tmp_path / "zips", signer)
    assert e.value.message == (
        "tag_x 1.2.0 is encrypted: the AoE bridge serves an encrypted bundle only with a "
        "decryption key its operator gives it"
    )
    assert not list((tmp_path / "zips").iterdir())

    key = DecryptionKey(origin="test", private=x25519_key)
    zipped = _build(bundle, tmp_path / "zips", signer, decryption_key=key)
    with zipfile.ZipFile(zipped.path) as zf:
        assert zf.read("model/model.tflite") == FILES["model.tflite"]


def test_an_unencrypted_bundle_is_served_whatever_key_the_bridge_holds(
    built_bundle: Any, signer: PrivateKey, x25519_key: PrivateKey, tmp_path: Path
) -> None:
    key = DecryptionKey(origin="test", private=x25519_key)
    zipped = _build(built_bundle(FILES), tmp_path, signer, decryption_key=key)
    with zipfile.ZipFile(zipped.path) as zf:
        assert zf.read("model/model.tflite") == FILES["model.tflite"]


def test_a_bundle_holding_a_model_config_cannot_be_an_aoe_zip(
    built_bundle: Any, signer: PrivateKey, tmp_path: Path
) -> None:
    bundle = built_bundle({**FILES, "model.config": b"{}"})

    with pytest.raises(BundleFormatError) as e:
        _build(bundle, tmp_path, signer)
    assert e.value.message == (
        "tag_x 1.0.0 carries a file named model.config, the name AoE reads its config from: "
        "it cannot be served as an AoE zip"
    )


def test_a_model_in_a_subfolder_cannot_be_an_aoe_zip(
    make_config: Any, signer: PrivateKey, tmp_path: Path
) -> None:
    from aoe_pack.bundle import EncryptionSpec, build_bundle

    config = make_config({"sub/model.tflite": b"weights"}, model_name="sub/model.tflite")
    bundle = tmp_path / "sub.aoe"
    build_bundle(config, bundle, signing_keys=[signer], encryption=EncryptionSpec())

    with pytest.raises(BundleFormatError) as e:
        _build(bundle, tmp_path / "zips", signer)
    assert e.value.message == (
        "tag_x 1.0.0: AoE loads 'sub/model.tflite' only from the top of the model's folder, "
        "not from a subfolder"
    )


def test_the_bridge_serves_zip_names_only(tmp_path: Path) -> None:
    bridge = AoeBridge(
        AoeMapping({}), zip_dir=tmp_path / "zips", public_base_url="https://x.example/aoe"
    )
    (tmp_path / "zips").mkdir()
    name = "a" * 64 + ".zip"
    (tmp_path / "zips" / name).write_bytes(b"PK")
    (tmp_path / "secret").write_text("no")

    assert bridge.zip_path(name) == tmp_path / "zips" / name
    for hostile in ("../secret", "A" * 64 + ".zip", "b" * 64 + ".zip", ".", "", name + "/"):
        assert bridge.zip_path(hostile) is None
