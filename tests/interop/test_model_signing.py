"""OpenSSF model signing: model-signing's own verifier judges what `export model-signing` writes.

Each test unpacks a bundle, exports its signature, and runs the real
``model_signing verify key`` (the model-signing package from PyPI, in
.venv-oracles) on the folder: it must accept the folder unpack wrote, and
refuse it once a file changes, appears or goes, or under another key.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path

import pytest
from _interop import Keys, aoe
from _oracles import verify_key

from aoe_pack import api
from aoe_pack._crypto import sign as _sign
from aoe_pack.errors import ExportError, KeyTypeError, ThresholdError
from aoe_pack.keys import PublicKey, load_signing_key


def _unpack(bundle: Path, keys: Keys, out: Path, *, signer: str = "p256") -> Path:
    args = ["--trusted-key", keys.pub(signer)]
    if signer == "p256":
        args += ["--decryption-key", keys.key("device")]
    aoe("unpack", bundle, "--out", out, *args, json=True).expect()
    return out


def _export(bundle: Path, keys: Keys, out: Path, *extra: object) -> dict[str, object]:
    doc = aoe(
        "export", "model-signing", bundle, "--sign-key", keys.key("p256"), "--out", out, *extra,
        json=True,
    ).expect()  # fmt: skip
    assert isinstance(doc, dict)
    return doc


@pytest.fixture
def exported(p256_bundle: Path, keys: Keys, tmp_path: Path) -> tuple[Path, Path]:
    """(the folder unpack wrote, the signature exported for it)."""
    folder = _unpack(p256_bundle, keys, tmp_path / "mnist")
    signature = tmp_path / "mnist.sig"
    _export(p256_bundle, keys, signature, "--decryption-key", keys.key("device"))
    return folder, signature


def test_model_signing_accepts_the_folder_unpack_wrote(
    exported: tuple[Path, Path], keys: Keys
) -> None:
    folder, signature = exported
    r = verify_key(folder, signature, keys.pub("p256"))
    assert (r.returncode, r.stdout.strip()) == (0, "Verification succeeded"), r.stderr


def test_a_flipped_byte_in_a_model_file_fails_with_hash_mismatch(
    exported: tuple[Path, Path], keys: Keys
) -> None:
    folder, signature = exported
    model = folder / "mnist.tflite"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    r = verify_key(folder, signature, keys.pub("p256"))
    assert r.returncode == 1
    assert "Hash mismatch for 'mnist.tflite'" in r.stderr


def test_a_file_added_to_the_folder_fails(exported: tuple[Path, Path], keys: Keys) -> None:
    folder, signature = exported
    (folder / "extra.bin").write_bytes(b"not signed")
    r = verify_key(folder, signature, keys.pub("p256"))
    assert r.returncode == 1
    assert "Extra files found in model" in r.stderr
    assert "extra.bin" in r.stderr


def test_a_file_removed_from_the_folder_fails(exported: tuple[Path, Path], keys: Keys) -> None:
    folder, signature = exported
    (folder / "labels.txt").unlink()
    r = verify_key(folder, signature, keys.pub("p256"))
    assert r.returncode == 1
    assert "Missing files in model" in r.stderr


def test_another_public_key_fails(exported: tuple[Path, Path], keys: Keys) -> None:
    folder, signature = exported
    r = verify_key(folder, signature, keys.pub("stranger"))
    assert r.returncode == 1
    assert "Key mismatch" in r.stderr


def test_a_changed_statement_fails_its_signature(
    exported: tuple[Path, Path], keys: Keys, tmp_path: Path
) -> None:
    """Someone rewrites a digest in the signed statement to match a swapped file."""
    folder, signature = exported
    doc = json.loads(signature.read_bytes())
    statement = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    (folder / "labels.txt").write_bytes(b"swapped\n")
    for resource in statement["predicate"]["resources"]:
        if resource["name"] == "labels.txt":
            resource["digest"] = "0" * 64
    doc["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    forged = tmp_path / "forged.sig"
    forged.write_text(json.dumps(doc))
    r = verify_key(folder, forged, keys.pub("p256"))
    assert r.returncode == 1
    assert "Verification failed" in r.stderr


def test_the_signature_may_sit_inside_the_folder_when_named_as_ignored(
    p256_bundle: Path, keys: Keys, tmp_path: Path
) -> None:
    folder = _unpack(p256_bundle, keys, tmp_path / "mnist")
    doc = _export(
        p256_bundle, keys, folder / "model.sig", "--ignore-path", "model.sig",
        "--decryption-key", keys.key("device"),
    )  # fmt: skip
    assert "model.sig" in doc["ignorePaths"]
    assert verify_key(folder, folder / "model.sig", keys.pub("p256")).returncode == 0


def test_an_ed25519_signed_bundle_exports_with_a_p256_key(
    ed25519_bundle: Path, keys: Keys, tmp_path: Path
) -> None:
    """The bundle's own signer may be Ed25519: only the exporting key must be on a NIST curve."""
    folder = _unpack(ed25519_bundle, keys, tmp_path / "mnist", signer="ed25519")
    signature = tmp_path / "mnist.sig"
    doc = _export(ed25519_bundle, keys, signature, "--trusted-key", keys.pub("ed25519"))
    assert doc["plaintextChecked"] is True  # unencrypted: every digest recomputed
    assert verify_key(folder, signature, keys.pub("p256")).returncode == 0


def test_an_ed25519_export_key_is_refused_by_name(
    ed25519_bundle: Path, keys: Keys, tmp_path: Path
) -> None:
    out = tmp_path / "mnist.sig"
    r = aoe(
        "export", "model-signing", ed25519_bundle, "--sign-key", keys.key("ed25519"),
        "--out", out, json=True,
    )  # fmt: skip
    error = r.expect(1)["error"]
    assert (error["code"], error["type"]) == ("key-type", KeyTypeError.__name__)
    assert "model-signing verifies ECDSA signatures on NIST curves only" in error["message"]
    assert not out.exists()


def test_a_bundle_the_export_key_did_not_sign_is_refused_without_trusted_keys(
    ed25519_bundle: Path, keys: Keys, tmp_path: Path
) -> None:
    """--trusted-key defaults to the export key: an Ed25519-signed bundle is then untrusted."""
    out = tmp_path / "mnist.sig"
    r = aoe(
        "export", "model-signing", ed25519_bundle, "--sign-key", keys.key("p256"), "--out", out,
        json=True,
    )  # fmt: skip
    assert r.expect(1)["error"]["code"] == ThresholdError.code
    assert not out.exists()


def test_an_ignore_path_naming_a_model_file_is_refused(
    p256_bundle: Path, keys: Keys, tmp_path: Path
) -> None:
    """model-signing would skip the file, so the signature could never verify."""
    out = tmp_path / "mnist.sig"
    r = aoe(
        "export", "model-signing", p256_bundle, "--sign-key", keys.key("p256"), "--out", out,
        "--ignore-path", "labels.txt", "--decryption-key", keys.key("device"), json=True,
    )  # fmt: skip
    assert r.expect(1)["error"]["code"] == ExportError.code
    assert not out.exists()


def test_an_ignore_path_outside_the_folder_is_a_usage_error(
    p256_bundle: Path, keys: Keys, tmp_path: Path
) -> None:
    r = aoe(
        "export", "model-signing", p256_bundle, "--sign-key", keys.key("p256"),
        "--out", tmp_path / "mnist.sig", "--ignore-path", "../model.sig", json=True,
    )  # fmt: skip
    assert r.expect(2)["error"]["code"] == "usage"


def test_digests_are_recomputed_when_the_decryption_key_is_given(
    p256_bundle: Path, keys: Keys, tmp_path: Path
) -> None:
    without = _export(p256_bundle, keys, tmp_path / "a.sig", "--trust-recorded-digests")
    with_key = _export(
        p256_bundle, keys, tmp_path / "b.sig", "--decryption-key", keys.key("device")
    )
    assert (without["plaintextChecked"], with_key["plaintextChecked"]) == (False, True)
    # Deterministic ECDSA (RFC 6979) and canonical JSON: the same bytes either way.
    assert (tmp_path / "a.sig").read_bytes() == (tmp_path / "b.sig").read_bytes()


@dataclasses.dataclass(frozen=True)
class _HeldKey:
    """A P-256 key behind a signing call, as an HSM or KMS signer plugin presents one."""

    inner: object
    calls: list[int]

    @property
    def ref(self) -> str:
        return "test-hsm:p256"

    @property
    def public(self) -> PublicKey:
        return self.inner.public  # type: ignore[attr-defined,no-any-return]

    @property
    def key_id(self) -> str:
        return self.public.key_id

    def sign(self, message: bytes) -> bytes:
        self.calls.append(len(message))
        return _sign.sign(self.inner, message)  # type: ignore[arg-type]


def test_a_key_held_by_an_hsm_or_kms_signs_the_export(
    p256_bundle: Path, keys: Keys, tmp_path: Path
) -> None:
    held = _HeldKey(load_signing_key(str(keys.key("p256"))), [])
    folder = _unpack(p256_bundle, keys, tmp_path / "mnist")
    result = api.export_model_signing(
        bundle=p256_bundle,
        sign_key=held,
        out=tmp_path / "held.sig",
        decryption_key=keys.key("device"),
    )
    assert held.calls, "the signer was never asked"
    assert result.signature.keyid == held.key_id
    assert verify_key(folder, tmp_path / "held.sig", keys.pub("p256")).returncode == 0
