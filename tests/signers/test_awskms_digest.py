"""AWS KMS keys through aoe-pack's default, ``MessageType=DIGEST``, and KMS's refusals.

These run against ``_fake_kms.py``: a KMS that answers KMS's own protocol
with AWS's documented ``Sign`` semantics (DIGEST skips the hashing step; pure
Ed25519 takes RAW only), which moto 5.2.6 does not implement (it hashes a
digest again and has no Ed25519 keys; test_awskms.py keeps a canary on it).
Its ECDSA is deterministic (RFC 6979), as a P-256 key file's is, so a bundle
signed through KMS can be compared byte for byte with the same key's file.
Everything on aoe-pack's side is unchanged: the real botocore client, the
signer, the CLI.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from _cli import NO_PASSWORD, Cli
from _fake_kms import ACCOUNT, REGION, FakeKms
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from aoe_pack.bundle import EncryptionSpec, build_bundle
from aoe_pack.config.model import ModelConfig
from aoe_pack.errors import KeyTypeError, SignerError
from aoe_pack.keys import load_signing_key
from aoe_pack.keys.signer import sign_with
from aoe_pack.signers import awskms

aoe = Cli(env=NO_PASSWORD)


def _key_file(kind: str, folder: Path) -> tuple[Path, object]:
    """A key made by ``aoe-pack keygen``: its .key path and the key itself, for the fake."""
    aoe("keygen", "--type", kind, "--out", folder / kind, json=True).expect()
    key = serialization.load_pem_private_key((folder / f"{kind}.key").read_bytes(), None)
    return folder / f"{kind}.key", key


@pytest.mark.parametrize(("kind", "message_type"), [("p256", "DIGEST"), ("ed25519", "RAW")])
def test_a_bundle_signed_in_kms_is_byte_for_byte_the_one_its_key_file_signs(
    kind: str,
    message_type: str,
    fake_kms: FakeKms,
    mnist_config: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """P-256 by DIGEST (the default): KMS is sent SHA-256(PAE) and signs it as it is.

    The bytes are equal only if the signature KMS returns is the one the key
    file gives: DER ECDSA over SHA-256 of the same PAE (RFC 6979 nonces on
    both sides here), or pure Ed25519 over the PAE.
    """
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    key_file, private = _key_file(kind, tmp_path)
    kms_key = fake_kms.add(private, alias="alias/release")
    from_file, from_kms = tmp_path / "file.aoe", tmp_path / "kms.aoe"
    aoe("build", mnist_config, "--out", from_file, "--sign-key", key_file, json=True).expect()

    aoe("build", mnist_config, "--out", from_kms, "--sign-key", "awskms:///alias/release",
        json=True).expect()  # fmt: skip

    assert from_kms.read_bytes() == from_file.read_bytes()
    verified = aoe("verify", from_kms, "--trusted-key", key_file.with_suffix(".pub"), json=True)
    assert [s["keyid"] for s in verified.expect()["signatures"]] == [
        hashlib.sha256(kms_key.spki).hexdigest()
    ]
    challenge, sign = fake_kms.calls("Sign")  # the key's check when opened, then the build
    assert (sign["KeyId"], sign["MessageType"]) == (kms_key.arn, message_type)
    assert (challenge["KeyId"], challenge["MessageType"]) == (kms_key.arn, message_type)
    if message_type == "DIGEST":
        assert len(base64.b64decode(sign["Message"])) == 32  # only the digest left the machine


def _configs(write_config: Callable[..., ModelConfig], root: Path, n: int) -> list[ModelConfig]:
    configs = []
    for i in range(n):
        (root / str(i)).mkdir(parents=True)
        files = {"model.tflite": b"model %d" % i}
        configs.append(write_config(root / str(i), files, version=f"1.0.{i}", tag="tag_big"))
    return configs


def test_a_manifest_past_4096_bytes_signs_by_digest_and_a_device_accepts_it(
    fake_kms: FakeKms, tmp_path: Path, config_writer: Callable[..., ModelConfig]
) -> None:
    """KMS signs at most 4096 bytes as a message; a manifest of many releases is more."""
    kms_key = fake_kms.add(ec.generate_private_key(ec.SECP256R1()), alias="alias/release")
    ref = "awskms:///alias/release"
    pub = tmp_path / "release.pub"
    pub.write_bytes(load_signing_key(ref).public.pem)
    signer = load_signing_key(ref)
    bundles = []
    for config in _configs(config_writer, tmp_path / "src", 12):
        out = tmp_path / f"{config.version}.aoe"
        build_bundle(config, out, signing_keys=[signer], encryption=EncryptionSpec())
        bundles.append(out)
    repo = tmp_path / "repo"
    aoe("manifest", "init", "--repo", repo, "--root-key", pub, "--sign-key", ref,
        json=True).expect()  # fmt: skip

    aoe("manifest", "publish", *bundles, "--repo", repo, "--sign-key", ref, json=True).expect()

    assert (repo / "manifest.json").stat().st_size > 2 * awskms.RAW_LIMIT
    assert {s["MessageType"] for s in fake_kms.calls("Sign")} == {"DIGEST"}
    assert {s["KeyId"] for s in fake_kms.calls("Sign")} == {kms_key.arn}
    checked = aoe("client", "check", "--repo", repo, "--trusted-root", repo / "root.json",
                  "--tag", "tag_big", "--installed-version", "1.0.0", "--app-version", "1.0.0",
                  "--device-id", "phone-1", "--state", tmp_path / "state.json", "--runtime",
                  "tflite", json=True)  # fmt: skip
    assert (checked.expect()["action"], checked.doc["version"]) == ("download", "1.0.11")


def test_an_ed25519_kms_key_refuses_a_document_past_4096_bytes_before_asking_kms(
    fake_kms: FakeKms,
) -> None:
    fake_kms.add(ed25519.Ed25519PrivateKey.generate(), alias="alias/root")
    ref = "awskms:///alias/root"
    signer = load_signing_key(ref)
    sign_with(signer, b"x" * awskms.RAW_LIMIT)  # at the limit: signed

    with pytest.raises(SignerError) as info:
        sign_with(signer, b"x" * (awskms.RAW_LIMIT + 1))

    assert info.value.message == (
        f"{ref}: 4097 bytes to sign, but a KMS Ed25519 key signs at most 4096 bytes"
    )
    assert info.value.hint == (
        "KMS has no digest form of pure Ed25519; sign this document with an ECC_NIST_P256 "
        "KMS key, whose digest signing has no size limit"
    )
    assert len(fake_kms.calls("Sign")) == 2  # the check when opened, and the 4096 bytes


def test_an_ed25519_kms_key_asked_to_sign_digests_is_refused(fake_kms: FakeKms) -> None:
    fake_kms.add(ed25519.Ed25519PrivateKey.generate(), alias="alias/root")
    ref = "awskms:///alias/root?message-type=digest"

    with pytest.raises(KeyTypeError) as info:
        load_signing_key(ref)

    assert info.value.message == (
        f"{ref}: an Ed25519 KMS key cannot sign digests as aoe-pack verifies them"
    )


def test_the_key_is_looked_up_once_then_signs_by_its_arn(fake_kms: FakeKms) -> None:
    """An alias moved to another key during a signing run cannot switch keys under it."""
    first = fake_kms.add(ec.generate_private_key(ec.SECP256R1()), alias="alias/release")
    signer = load_signing_key("awskms:///alias/release")
    fake_kms.add(ec.generate_private_key(ec.SECP256R1()), alias="alias/release")  # moved

    for i in range(3):
        sign_with(signer, b"message %d" % i)

    assert [c["KeyId"] for c in fake_kms.calls("GetPublicKey")] == ["alias/release"]
    assert [c["KeyId"] for c in fake_kms.calls("Sign")] == [first.arn] * 4  # 1: the check


def test_a_kms_that_signs_with_another_key_than_it_reports_is_refused(
    fake_kms: FakeKms, mnist_config: Path, tmp_path: Path
) -> None:
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    fake_kms.add(
        ec.generate_private_key(ec.SECP256R1()),
        alias="alias/release",
        reported_public=other.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )
    ref = "awskms:///alias/release"

    r = aoe("build", mnist_config, "--out", tmp_path / "m.aoe", "--sign-key", ref, json=True)

    assert r.exit_code == 1
    assert r.doc["error"]["message"] == (
        f"{ref}: the public key AWS KMS reports does not belong to its private key: a random "
        "challenge signed with the key does not verify under it"
    )
    assert not (tmp_path / "m.aoe").exists()


def test_a_kms_whose_public_key_is_not_of_its_key_spec_is_refused(fake_kms: FakeKms) -> None:
    fake_kms.add(
        ec.generate_private_key(ec.SECP256R1()),
        alias="alias/release",
        reported_public=ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
    )

    with pytest.raises(SignerError) as info:
        load_signing_key("awskms:///alias/release")

    assert info.value.message == (
        "awskms:///alias/release: KMS reports a ECC_NIST_P256 key but returned a Ed25519 public key"
    )


def test_a_symmetric_key_is_refused_as_not_a_signing_key(fake_kms: FakeKms) -> None:
    """AWS answers GetPublicKey for a symmetric key with UnsupportedOperationException."""
    key = fake_kms.add(
        object(), alias="alias/data", spec="SYMMETRIC_DEFAULT", usage="ENCRYPT_DECRYPT"
    )
    ref = "awskms:///alias/data"

    with pytest.raises(KeyTypeError) as info:
        load_signing_key(ref)

    assert info.value.message == (
        f"{ref} is not an asymmetric signing key (UnsupportedOperationException): "
        f"{key.arn} key usage is ENCRYPT_DECRYPT which is not valid for GetPublicKey."
    )


def test_access_denied_names_the_permissions_a_signer_needs(
    fake_kms: FakeKms, mnist_config: Path, tmp_path: Path
) -> None:
    fake_kms.add(ec.generate_private_key(ec.SECP256R1()), alias="alias/release")
    denial = (
        f"User: arn:aws:iam::{ACCOUNT}:user/ci is not authorized to perform: kms:Sign "
        "because no identity-based policy allows the kms:Sign action"
    )
    fake_kms.fail["Sign"] = ("AccessDeniedException", denial)
    ref = "awskms:///alias/release"

    r = aoe("build", mnist_config, "--out", tmp_path / "m.aoe", "--sign-key", ref, json=True)

    assert r.exit_code == 1
    assert r.doc["error"]["code"] == "signer"
    assert r.doc["error"]["message"] == f"AWS KMS denied kms:Sign on {ref}: {denial}"
    assert r.doc["error"]["hint"] == (
        "the caller needs kms:GetPublicKey and kms:Sign on the key, from its key policy "
        "or an IAM policy"
    )


def test_throttling_is_retried_then_named(
    fake_kms: FakeKms, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_kms.add(ec.generate_private_key(ec.SECP256R1()), alias="alias/release")
    fake_kms.fail["Sign"] = ("ThrottlingException", "Rate exceeded")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")  # 4 by default: a second of backoff, not more
    ref = "awskms:///alias/release"

    with pytest.raises(SignerError) as info:
        load_signing_key(ref)  # which signs a challenge

    assert len(fake_kms.calls("Sign")) == 2
    assert info.value.message == (
        f"AWS KMS throttled kms:Sign on {ref} (2 attempts): Rate exceeded"
    )


def test_a_disabled_key_is_named_with_how_to_enable_it(fake_kms: FakeKms) -> None:
    key = fake_kms.add(ec.generate_private_key(ec.SECP256R1()), alias="alias/release")
    fake_kms.fail["GetPublicKey"] = ("DisabledException", f"{key.arn} is disabled.")

    with pytest.raises(SignerError) as info:
        load_signing_key("awskms:///alias/release")

    assert info.value.message == (
        f"awskms:///alias/release cannot be used in its present state (DisabledException): "
        f"{key.arn} is disabled."
    )
    assert info.value.hint == (
        "enable the key (aws kms enable-key) or cancel its deletion (aws kms cancel-key-deletion)"
    )


def test_rejected_credentials_are_named(fake_kms: FakeKms) -> None:
    fake_kms.fail["GetPublicKey"] = (
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    )

    with pytest.raises(SignerError) as info:
        load_signing_key("awskms:///alias/release")

    assert info.value.message == (
        "AWS KMS rejected the credentials used for awskms:///alias/release "
        "(UnrecognizedClientException): The security token included in the request is invalid."
    )


# --- where the key is looked for ------------------------------------------------------


def test_a_key_arn_brings_its_own_region(
    fake_kms: FakeKms, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = fake_kms.add(ec.generate_private_key(ec.SECP256R1()))
    monkeypatch.delenv("AWS_REGION")

    signer = load_signing_key(f"awskms:///{key.arn}")

    assert isinstance(signer, awskms.AwsKmsSigner)
    assert signer._client.meta.region_name == REGION


def test_aws_region_wins_over_aws_default_region(
    fake_kms: FakeKms, monkeypatch: pytest.MonkeyPatch
) -> None:
    """botocore reads only AWS_DEFAULT_REGION; the AWS CLI and SDKs prefer AWS_REGION."""
    fake_kms.add(ec.generate_private_key(ec.SECP256R1()), alias="alias/release")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")

    signer = load_signing_key("awskms:///alias/release")

    assert isinstance(signer, awskms.AwsKmsSigner)
    assert signer._client.meta.region_name == REGION


def test_no_region_at_all_is_named(fake_kms: FakeKms, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION")

    with pytest.raises(SignerError) as info:
        load_signing_key("awskms:///alias/release")

    assert info.value.message == "no AWS region for awskms:///alias/release"
    assert info.value.hint == ("set AWS_REGION (or AWS_DEFAULT_REGION), or name the key by its ARN")


def test_aws_endpoint_url_serves_kms_too(
    fake_kms: FakeKms, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_kms.add(ec.generate_private_key(ec.SECP256R1()), alias="alias/release")
    monkeypatch.delenv("AWS_ENDPOINT_URL_KMS")
    monkeypatch.setenv("AWS_ENDPOINT_URL", fake_kms.endpoint)

    sign_with(load_signing_key("awskms:///alias/release"), b"message")

    assert len(fake_kms.calls("Sign")) == 2  # the check when opened, and the message


def test_an_aws_profile_that_does_not_exist_is_named(
    fake_kms: FakeKms, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "release-signer")

    with pytest.raises(SignerError) as info:
        load_signing_key("awskms:///alias/release")

    assert info.value.message == (
        "cannot open awskms:///alias/release: The config profile (release-signer) could not "
        "be found"
    )
    assert info.value.hint == "AWS_PROFILE names a profile of ~/.aws/config"
