"""Where keys meet bundles (docs/format.md §8 step 9, §10): which error, and in what order."""

from __future__ import annotations

from pathlib import Path

import pytest
from _cli import aoe
from _tamper import decryption_key

from aoe_pack._crypto.asymmetric import PrivateKey, private_pem
from aoe_pack.bundle import unpack_bundle, verify_bundle
from aoe_pack.errors import DecryptionError, SignatureError

NOT_ENCRYPTED = "the bundle is not encrypted, but a decryption key was given ({origin})"


@pytest.mark.parametrize("kind", ["recipient key", "kek"])
def test_decryption_key_for_an_unencrypted_bundle_is_refused(
    kind: str, built_bundle, signer: PrivateKey, x25519_key: PrivateKey, kek: bytes
) -> None:
    """The caller expects a confidential model; one that arrives in the clear is not it."""
    key = decryption_key(x25519_key if kind == "recipient key" else kek)
    with pytest.raises(DecryptionError) as e:
        verify_bundle(built_bundle(), trusted_keys=[signer.public], decryption_key=key)
    assert e.value.message == NOT_ENCRYPTED.format(origin=key.origin)
    assert e.value.hint == (
        "verify an unencrypted bundle without a decryption key; if it should have been "
        "encrypted, rebuild it with --recipient or --encryption-key-file"
    )


def test_decryption_key_for_an_unencrypted_bundle_is_refused_by_the_cli(
    built_bundle, signer: PrivateKey, x25519_key: PrivateKey, tmp_path: Path
) -> None:
    (tmp_path / "s.pub").write_bytes(signer.public.pem)
    (tmp_path / "d.key").write_bytes(private_pem(x25519_key, None))
    args = ["--trusted-key", tmp_path / "s.pub", "--decryption-key", tmp_path / "d.key"]
    r = aoe("verify", built_bundle(), *args, json=True)
    message = NOT_ENCRYPTED.format(origin=tmp_path / "d.key")
    assert (r.exit_code, r.doc["error"]["code"], r.doc["error"]["message"]) == (
        1,
        "decryption",
        message,
    )


def test_decryption_key_for_an_unencrypted_bundle_is_refused_by_unpack(
    built_bundle, signer: PrivateKey, x25519_key: PrivateKey, tmp_path: Path
) -> None:
    """Unpacking follows the same step 9 as verify, and writes nothing."""
    key = decryption_key(x25519_key)
    out = tmp_path / "out"
    with pytest.raises(DecryptionError) as e:
        unpack_bundle(built_bundle(), out, trusted_keys=[signer.public], decryption_key=key)
    assert e.value.message == NOT_ENCRYPTED.format(origin=key.origin)
    assert not out.exists()


def test_unencrypted_bundle_from_an_untrusted_signer_fails_on_its_signature_first(
    built_bundle, signer2: PrivateKey, x25519_key: PrivateKey
) -> None:
    """Step 9 comes after step 5: the key rule says nothing about a bundle nobody vouched for."""
    with pytest.raises(SignatureError):
        verify_bundle(
            built_bundle(), trusted_keys=[signer2.public], decryption_key=decryption_key(x25519_key)
        )


@pytest.mark.parametrize("option", ["--trusted-key", "--decryption-key"])
def test_key_errors_come_before_any_bundle_check(
    option: str, signer: PrivateKey, tmp_path: Path
) -> None:
    """§10: keys are loaded before §8 step 1, so the error does not depend on the bundle."""
    (tmp_path / "s.pub").write_bytes(signer.public.pem)
    (tmp_path / "bad.key").write_bytes(b"not a key\n")
    not_a_bundle = tmp_path / "x.aoe"
    not_a_bundle.write_bytes(b"hello")
    trusted = tmp_path / ("bad.key" if option == "--trusted-key" else "s.pub")
    extra = ["--decryption-key", tmp_path / "bad.key"] if option == "--decryption-key" else []
    for bundle in (not_a_bundle, tmp_path / "missing.aoe"):
        r = aoe("verify", bundle, "--trusted-key", trusted, *extra, json=True)
        assert (r.exit_code, r.doc["error"]["code"]) == (1, "key-format")
