"""What an export checks before it signs anything, whatever the format."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from hashlib import sha256
from pathlib import Path
from typing import Any

import pytest
from _interop import REPO, Keys, aoe

from aoe_pack import api
from aoe_pack._jcs import canonical_json
from aoe_pack.bundle import signatures, verify
from aoe_pack.bundle.container import MEDIA_TYPE_V1, AlignedZipWriter, read_layout
from aoe_pack.bundle.format import MANIFEST_ENTRY, SIGNATURES_ENTRY
from aoe_pack.errors import IntegrityError
from aoe_pack.keys import load_signing_key


def _insider_rewrites_a_digest(bundle: Path, key: Path, out: Path) -> Path:
    """The bundle, its manifest naming another SHA-256 for labels.txt, validly re-signed.

    Its stored bytes still match the signed chunk digests, so `verify` without
    a key passes (docs/format.md §8); only the plaintext's digest tells.
    """
    data = bundle.read_bytes()
    layout = read_layout(io.BytesIO(data), file_size=len(data))
    body = {e.name: data[e.data_offset : e.data_offset + e.size] for e in layout.entries}
    manifest = json.loads(body[MANIFEST_ENTRY])
    (labels,) = [f for f in manifest["files"] if f["path"] == "labels.txt"]
    labels["sha256"] = "0" * 64
    manifest_bytes = canonical_json(manifest)
    envelope = signatures.sign_manifest(manifest_bytes, [load_signing_key(str(key))])
    buffer = io.BytesIO()
    writer = AlignedZipWriter(buffer, media_type=MEDIA_TYPE_V1, date_time=layout.date_time)
    for entry in layout.entries:  # the mimetype entry is the writer's own
        if entry.name == MANIFEST_ENTRY:
            writer.add_bytes(entry.name, manifest_bytes)
        elif entry.name == SIGNATURES_ENTRY:
            writer.add_bytes(entry.name, envelope)
        else:
            writer.add_bytes(entry.name, body[entry.name])
    writer.close()
    out.write_bytes(buffer.getvalue())
    return out


@pytest.mark.parametrize("command", ["model-signing", "provenance"])
def test_a_signer_who_recorded_a_wrong_plaintext_digest_is_not_vouched_for(
    command: str, keys: Keys, mnist_config: Path, tmp_path: Path
) -> None:
    """Signing the export would restate a digest that unpack refuses: integrity instead."""
    plain = tmp_path / "plain.aoe"
    args = ("--sign-key", keys.key("p256"), "--no-encrypt")
    aoe("build", mnist_config, "--out", plain, *args, json=True).expect()
    forged = _insider_rewrites_a_digest(plain, keys.key("p256"), tmp_path / "forged.aoe")
    aoe("verify", forged, "--trusted-key", keys.pub("p256"), json=True).expect()
    out = tmp_path / "out.json"
    r = aoe("export", command, forged, "--sign-key", keys.key("p256"), "--out", out, json=True)
    error = r.expect(1)["error"]
    assert error["code"] == IntegrityError.code
    assert "labels.txt" in error["message"]
    assert not out.exists()


@pytest.mark.parametrize("command", ["model-signing", "provenance"])
def test_an_existing_output_is_refused_before_the_bundle_is_read(
    command: str, keys: Keys, tmp_path: Path
) -> None:
    out = tmp_path / "taken"
    out.write_bytes(b"keep me")
    missing = tmp_path / "no-such.aoe"
    r = aoe("export", command, missing, "--sign-key", keys.key("p256"), "--out", out, json=True)
    assert r.expect(1)["error"]["code"] == "output"
    assert out.read_bytes() == b"keep me"


@pytest.mark.parametrize("command", ["model-signing", "provenance"])
def test_force_replaces_an_existing_output(
    command: str, keys: Keys, p256_bundle: Path, tmp_path: Path
) -> None:
    out = tmp_path / "taken"
    out.write_bytes(b"old")
    aoe(
        "export", command, p256_bundle, "--sign-key", keys.key("p256"), "--out", out, "--force",
        "--decryption-key", keys.key("device"), json=True,
    ).expect()  # fmt: skip
    assert out.read_bytes() != b"old"


def test_a_key_password_names_only_the_keys_of_the_command(
    keys: Keys, p256_bundle: Path, tmp_path: Path
) -> None:
    r = aoe(
        "export", "provenance", p256_bundle, "--sign-key", keys.key("p256"),
        "--out", tmp_path / "p.jsonl", "--key-password", keys.key("stranger"), "env://PW",
        json=True,
    )  # fmt: skip
    error = r.expect(2)["error"]
    assert "not a --sign-key or --decryption-key of this command" in error["message"]


def test_the_library_takes_key_references_as_the_command_line_does(
    keys: Keys, p256_bundle: Path, tmp_path: Path
) -> None:
    result = api.export_provenance(
        bundle=p256_bundle,
        sign_key=keys.key("p256"),
        trusted_keys=[keys.pub("p256")],
        decryption_key=keys.key("device"),
        out=tmp_path / "p.intoto.jsonl",
    )
    assert result.bundle.plaintext_checked
    assert result.statement["subject"][0]["name"] == "mnist.aoe"


# --- a bundle rewritten while it is exported ----------------------------------------------------


def _rewritten_after_the_last_payload(
    monkeypatch: pytest.MonkeyPatch, bundle: Path, rewrite: Callable[[bytearray], None]
) -> None:
    """Once the last payload has verified, another writer rewrites ``bundle`` in place."""
    data = bundle.read_bytes()
    payloads = len(read_layout(io.BytesIO(data), file_size=len(data)).entries) - 2
    original = verify.open_file
    calls = [0]

    def racing(*args: Any, **kwargs: Any) -> Iterator[bytes]:
        yield from original(*args, **kwargs)
        calls[0] += 1
        if calls[0] == payloads:
            changed = bytearray(bundle.read_bytes())
            rewrite(changed)
            with bundle.open("r+b") as f:
                f.write(changed)

    monkeypatch.setattr(verify, "open_file", racing)


def test_a_payload_rewritten_after_it_verified_is_not_what_the_export_attests(
    keys: Keys, ed25519_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bundle's digest is taken from the bytes that verified, in the same read."""
    bundle = tmp_path / "mnist.aoe"
    verified = ed25519_bundle.read_bytes()
    bundle.write_bytes(verified)
    model = (REPO / "sample_models/mnist/mnist.tflite").read_bytes()[:64]

    def backdoor(data: bytearray) -> None:
        at = data.index(model) + 32  # unencrypted: the model is stored as it is
        data[at] ^= 0xFF

    _rewritten_after_the_last_payload(monkeypatch, bundle, backdoor)

    result = api.export_provenance(
        bundle=bundle, sign_key=keys.key("ed25519"), out=tmp_path / "p.intoto.jsonl"
    )

    assert result.statement["subject"][0]["digest"]["sha256"] == sha256(verified).hexdigest()
    assert sha256(bundle.read_bytes()).hexdigest() != sha256(verified).hexdigest()


def test_a_bundle_whose_signatures_are_rewritten_during_the_export_is_refused(
    keys: Keys, ed25519_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bytes past the payloads, hashed after they verified: parsed again, and compared."""
    bundle = tmp_path / "mnist.aoe"
    bundle.write_bytes(ed25519_bundle.read_bytes())

    def forge(data: bytearray) -> None:
        at = data.rindex(b'"sig":"') + len(b'"sig":"')
        data[at] = ord("A") if data[at] != ord("A") else ord("B")

    _rewritten_after_the_last_payload(monkeypatch, bundle, forge)
    out = tmp_path / "p.intoto.jsonl"

    with pytest.raises(IntegrityError) as info:
        api.export_provenance(bundle=bundle, sign_key=keys.key("ed25519"), out=out)

    assert info.value.message == (
        f"{bundle} changed while it was being verified: its signatures differ from those "
        "verified; its digest was not taken"
    )
    assert not out.exists()


@pytest.mark.parametrize("command", ["model-signing", "provenance"])
def test_an_encrypted_bundle_without_its_key_is_refused_unless_recorded_digests_are_trusted(
    command: str, keys: Keys, p256_bundle: Path, tmp_path: Path
) -> None:
    """Its file digests would be attested by a key that never recomputed them."""
    out = tmp_path / "out"
    export = ("export", command, p256_bundle, "--sign-key", keys.key("p256"), "--out", out)

    refused = aoe(*export, json=True).expect(1)["error"]

    assert refused == {
        "code": "key-missing",
        "type": "MissingKeyError",
        "message": f"{p256_bundle} is encrypted and no decryption key was given: its files' "
        "digests could not be recomputed, only copied from its signed manifest",
        "hint": "pass --decryption-key (a recipient's key) to have them recomputed, or "
        "--trust-recorded-digests to attest the digests the bundle's signers recorded",
    }
    assert not out.exists()
    trusted = aoe(*export, "--trust-recorded-digests", json=True).expect()
    assert trusted["plaintextChecked"] is False
    assert out.exists()
