"""AWS KMS keys (``awskms://``) against moto's real KMS server.

Every signature made here goes through ``MessageType=RAW`` (the references
end in ``?message-type=raw``), and on purpose: moto 5.2.6 implements RAW as
AWS does, but with ``DIGEST``, aoe-pack's default, it hashes the digest
again, so its signatures do not verify as AWS's do. The canary below watches
for the day moto is fixed. The default DIGEST path is proven byte for byte
against a KMS that follows AWS's documented semantics, in
test_awskms_digest.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _cli import NO_PASSWORD, Cli
from _kms import MotoKms, mnist_version, pem_from_der
from _server_s3 import _LAUNCHER, _free_port
from _tls import loopback_certificate
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from aoe_pack.errors import KeyNotEncryptedError, KeyReferenceError, KeyTypeError, SignerError
from aoe_pack.keys import load_signing_key
from aoe_pack.keys.signer import sign_with
from aoe_pack.signers import awskms
from aoe_pack.signers.awskms import _client

REPO = Path(__file__).resolve().parents[2]
aoe = Cli(env=NO_PASSWORD)


def raw(key: str) -> str:
    """The reference of ``key`` signing by RAW, the mode moto implements as AWS does."""
    return f"awskms:///{key}?message-type=raw"


def test_a_bundle_signed_in_kms_verifies_with_the_public_key_kms_exports(
    moto_kms: MotoKms, mnist_config: Path, tmp_path: Path
) -> None:
    key = moto_kms.create_key()
    der = moto_kms.public_der(key["KeyId"])
    pub = pem_from_der(der, tmp_path / "release.pub")
    bundle = tmp_path / "m.aoe"
    aoe("build", mnist_config, "--out", bundle, "--sign-key", raw(key["Alias"]), json=True).expect()

    verified = aoe("verify", bundle, "--trusted-key", pub, json=True).expect()

    assert [s["keyid"] for s in verified["signatures"]] == [hashlib.sha256(der).hexdigest()]


def test_public_key_of_a_kms_key_is_the_pem_openssl_makes_of_its_der(
    moto_kms: MotoKms, tmp_path: Path
) -> None:
    """docs/keys.md gives both ways to export a KMS key's .pub: they agree byte for byte."""
    key = moto_kms.create_key()
    by_openssl = pem_from_der(moto_kms.public_der(key["KeyId"]), tmp_path / "openssl.pub")
    out = tmp_path / "aoe.pub"
    aoe("public-key", "--sign-key", raw(key["Alias"]), "--out", out, json=True).expect()
    assert out.read_bytes() == by_openssl.read_bytes()


def test_kms_ecdsa_signatures_differ_each_time_and_each_verifies(
    moto_kms: MotoKms, mnist_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unlike a P-256 key file (RFC 6979), KMS picks a random nonce: docs/keys.md says so."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    key = moto_kms.create_key()
    pub = pem_from_der(moto_kms.public_der(key["KeyId"]), tmp_path / "release.pub")
    bundles = [tmp_path / "a.aoe", tmp_path / "b.aoe"]
    for out in bundles:
        aoe(
            "build", mnist_config, "--out", out, "--sign-key", raw(key["Alias"]), json=True
        ).expect()

    assert bundles[0].read_bytes() != bundles[1].read_bytes()
    for out in bundles:
        aoe("verify", out, "--trusted-key", pub, json=True).expect()


@pytest.mark.parametrize("form", ["KeyId", "Arn", "Alias", "AliasArn"])
def test_every_reference_form_opens_the_same_key(form: str, moto_kms: MotoKms) -> None:
    key = moto_kms.create_key()
    der = moto_kms.public_der(key["KeyId"])

    signer = load_signing_key(raw(key[form]))

    assert signer.key_id == hashlib.sha256(der).hexdigest()
    signature = sign_with(signer, b"DSSEv1 4 test 5 hello")  # verified against `der` inside
    serialization.load_der_public_key(der).verify(  # type: ignore[call-arg, union-attr]
        signature, b"DSSEv1 4 test 5 hello", ec.ECDSA(hashes.SHA256())
    )


def test_a_repository_signed_in_kms_updates_a_device_that_never_saw_kms(
    moto_kms: MotoKms, mnist_config: Path, tmp_path: Path
) -> None:
    """A bundle, a manifest edit and a root rotation, each signed in KMS; then a device checks."""
    old, new = moto_kms.create_key(), moto_kms.create_key()
    old_pub = pem_from_der(moto_kms.public_der(old["KeyId"]), tmp_path / "old.pub")
    new_pub = pem_from_der(moto_kms.public_der(new["KeyId"]), tmp_path / "new.pub")
    old_ref, new_ref = raw(old["Alias"]), raw(new["Arn"])
    repo, v1, v2 = tmp_path / "repo", tmp_path / "v1.aoe", tmp_path / "v2.aoe"

    aoe("build", mnist_config, "--out", v1, "--sign-key", old_ref, json=True).expect()
    aoe("manifest", "init", "--repo", repo, "--root-key", old_pub, "--sign-key", old_ref,
        json=True).expect()  # fmt: skip
    shipped_root = tmp_path / "app-root.json"  # what the app ships with: root version 1
    shutil.copyfile(repo / "root.json", shipped_root)
    aoe("manifest", "publish", v1, "--repo", repo, "--sign-key", old_ref, json=True).expect()
    rotated = aoe("manifest", "rotate-root", "--repo", repo, "--root-key", new_pub,
                  "--sign-key", old_ref, "--sign-key", new_ref, json=True).expect()  # fmt: skip
    assert rotated["rootVersion"] == 2
    v2_config = mnist_version(mnist_config, "1.1.0", tmp_path)
    aoe("build", v2_config, "--out", v2, "--sign-key", new_ref, json=True).expect()
    aoe("manifest", "publish", v2, "--repo", repo, "--sign-key", new_ref, json=True).expect()

    code, doc, modules = _device_check(
        "--repo", repo, "--trusted-root", shipped_root, "--tag", "tag_mnist",
        "--installed-version", "1.0.0", "--app-version", "1.0.0", "--device-id", "phone-1",
        "--state", tmp_path / "state.json", "--download", tmp_path / "models",
    )  # fmt: skip

    assert code == 0, doc
    assert (doc["action"], doc["version"], doc["rootVersion"]) == ("download", "1.1.0", 2)
    assert doc["unpacked"] is not None  # the bundle's KMS signature verified on the device
    assert "botocore" not in modules


def _device_check(*args: object) -> tuple[int, dict[str, object], set[str]]:
    """``aoe-pack client check ARGS --json`` in a fresh process with no AWS setting at all.

    Returns its exit code, its JSON document and the top-level modules it imported.
    """
    probe = (
        "import json, sys\n"
        "from aoe_pack.cli import cli\n"
        "try:\n"
        f"    cli({['client', 'check', *map(str, args), '--json']!r})\n"
        "except SystemExit as e:\n"
        "    code = e.code\n"
        "print(json.dumps({'code': code, 'modules': sorted(sys.modules)}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = str(REPO)
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=False
    )
    *document, last = out.stdout.strip().splitlines()
    probed = json.loads(last)
    return (
        probed["code"],
        json.loads("\n".join(document)),
        {m.split(".")[0] for m in probed["modules"]},
    )


# --- moto's DIGEST, as measured -------------------------------------------------------


def test_moto_still_hashes_digests_again__drop_the_raw_workaround_when_this_fails(
    moto_kms: MotoKms,
) -> None:
    """A canary. moto 5.2.6 signs ``MessageType=DIGEST`` as if it were RAW: it hashes the
    digest again, so its signature verifies only over the digest taken as a message.

    AWS signs the digest as it is. When this test fails, moto does too: then the
    tests here can drop ``?message-type=raw`` and run aoe-pack's default, DIGEST.
    """
    key = moto_kms.create_key()
    public = serialization.load_der_public_key(moto_kms.public_der(key["KeyId"]))
    assert isinstance(public, ec.EllipticCurvePublicKey)
    message = b"DSSEv1 4 test 5 hello"
    digest = hashlib.sha256(message).digest()

    signature = moto_kms.client.sign(
        KeyId=key["KeyId"], Message=digest, MessageType="DIGEST", SigningAlgorithm="ECDSA_SHA_256"
    )["Signature"]

    public.verify(signature, digest, ec.ECDSA(hashes.SHA256()))  # the digest as a message
    with pytest.raises(InvalidSignature):  # what AWS gives: ECDSA over the message itself
        public.verify(signature, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))


def test_a_kms_that_hashes_digests_again_is_named_with_the_way_out(moto_kms: MotoKms) -> None:
    key = moto_kms.create_key()
    ref = f"awskms:///{key['Alias']}"  # the default: DIGEST

    with pytest.raises(SignerError) as info:
        load_signing_key(ref)  # which signs a challenge

    assert info.value.message == (
        f"{ref}: the KMS at {moto_kms.endpoint} hashed the digest again "
        "(MessageType=DIGEST), unlike AWS KMS"
    )
    assert info.value.hint == (
        "with such a server, add ?message-type=raw to the key reference "
        "(messages of at most 4096 bytes)"
    )


# --- refusals, each by name -----------------------------------------------------------


def test_an_unknown_alias_is_a_reference_that_names_nothing(
    moto_kms: MotoKms, mnist_config: Path, tmp_path: Path
) -> None:
    ref = raw("alias/no-such-key")
    r = aoe("build", mnist_config, "--out", tmp_path / "m.aoe", "--sign-key", ref, json=True)

    assert r.exit_code == 2  # as a key file that does not exist
    assert r.doc["error"]["code"] == "key-reference"
    assert r.doc["error"]["message"] == (
        f"{ref} names no AWS KMS key (us-east-1, {moto_kms.endpoint}): "
        "Alias arn:aws:kms:us-east-1:123456789012:alias/no-such-key is not found."
    )
    assert not (tmp_path / "m.aoe").exists()


def test_an_rsa_signing_key_is_refused_as_a_key_of_the_wrong_kind(
    moto_kms: MotoKms, mnist_config: Path, tmp_path: Path
) -> None:
    key = moto_kms.create_key("RSA_2048", "SIGN_VERIFY")
    ref = raw(key["Alias"])
    r = aoe("build", mnist_config, "--out", tmp_path / "m.aoe", "--sign-key", ref, json=True)

    assert r.exit_code == 1
    assert r.doc["error"]["code"] == "key-type"
    assert r.doc["error"]["message"] == (
        f"{ref} is a RSA_2048 KMS key; aoe-pack signs with ECC_NIST_P256 (ECDSA P-256) "
        "or ECC_NIST_EDWARDS25519 keys"
    )


def test_an_encryption_key_is_refused_as_not_a_signing_key(moto_kms: MotoKms) -> None:
    key = moto_kms.create_key("RSA_2048", "ENCRYPT_DECRYPT")
    ref = raw(key["Alias"])

    with pytest.raises(KeyTypeError) as info:
        load_signing_key(ref)

    assert info.value.message == f"{ref} is a ENCRYPT_DECRYPT KMS key, not a signing key"
    assert info.value.hint == (
        "create a signing key: aws kms create-key --key-spec ECC_NIST_P256 --key-usage SIGN_VERIFY"
    )


def test_no_credentials_is_named_with_where_they_come_from(
    moto_kms: MotoKms, monkeypatch: pytest.MonkeyPatch, mnist_config: Path, tmp_path: Path
) -> None:
    key = moto_kms.create_key()
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    ref = raw(key["Alias"])

    r = aoe("build", mnist_config, "--out", tmp_path / "m.aoe", "--sign-key", ref, json=True)

    assert r.exit_code == 1
    assert r.doc["error"]["code"] == "signer"
    assert r.doc["error"]["message"] == (
        f"no usable AWS credentials for {ref}: Unable to locate credentials"
    )
    assert r.doc["error"]["hint"].startswith("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")


def test_an_endpoint_nothing_listens_on_is_named_at_once(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _free_port()  # nothing listens there
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    ref = raw("alias/release")

    started = time.monotonic()
    with pytest.raises(SignerError) as info:
        load_signing_key(ref)

    assert time.monotonic() - started < 5
    assert info.value.message == (
        f"cannot reach AWS KMS at http://127.0.0.1:{port} for {ref}: "
        f'Could not connect to the endpoint URL: "http://127.0.0.1:{port}/"'
    )


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A TCP port that takes connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_an_endpoint_that_never_answers_times_out_by_name(
    aws: None, silent_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", silent_endpoint)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setattr(_client, "READ_TIMEOUT", 0.5)  # 30 s otherwise
    ref = raw("alias/release")

    started = time.monotonic()
    with pytest.raises(SignerError) as info:
        load_signing_key(ref)

    assert time.monotonic() - started < 5
    assert info.value.message == (
        f"AWS KMS at {silent_endpoint} did not answer kms:GetPublicKey for {ref} in time: "
        f'Read timeout on endpoint URL: "{silent_endpoint}/"'
    )


def test_a_message_past_4096_bytes_is_refused_when_raw_is_forced(moto_kms: MotoKms) -> None:
    """moto would sign it (it does not enforce KMS's limit); AWS would not: refused first."""
    key = moto_kms.create_key()
    ref = raw(key["Alias"])
    signer = load_signing_key(ref)
    sign_with(signer, b"x" * awskms.RAW_LIMIT)  # at the limit: signed

    with pytest.raises(SignerError) as info:
        sign_with(signer, b"x" * (awskms.RAW_LIMIT + 1))

    assert info.value.message == (
        f"{ref}: 4097 bytes to sign, but KMS signs at most 4096 bytes with message-type=raw"
    )
    assert info.value.hint == (
        "drop ?message-type=raw: by default KMS signs the message's SHA-256, whatever its size"
    )


def test_a_password_for_a_kms_key_is_refused(moto_kms: MotoKms, tmp_path: Path) -> None:
    key = moto_kms.create_key()
    ref = raw(key["Alias"])
    password = tmp_path / "pw"
    password.write_text("secret\n")

    with pytest.raises(KeyNotEncryptedError) as info:
        load_signing_key(ref, password=str(password))

    assert info.value.message == (
        f"{ref} is an AWS KMS key, which takes no password, but --key-password gives it one"
    )


def test_the_default_retries_are_standard_mode_four_tries_and_short_timeouts(
    moto_kms: MotoKms,
) -> None:
    signer = load_signing_key(raw(moto_kms.create_key()["Alias"]))
    assert isinstance(signer, awskms.AwsKmsSigner)

    config = signer._client.meta.config
    assert config.retries == {"total_max_attempts": 4, "mode": "standard"}
    assert (config.connect_timeout, config.read_timeout) == (10.0, 30.0)


# --- an endpoint in the reference -----------------------------------------------------


@pytest.fixture(scope="module")
def tls_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A second moto server, by HTTPS with a CA of its own: (HOST:PORT, the CA certificate)."""
    import ssl

    folder = tmp_path_factory.mktemp("tls-moto")
    cert_file, key_file = loopback_certificate(folder, "aoe-pack test KMS")
    port = _free_port()
    log = folder / "moto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, "-H", "127.0.0.1", "-p", str(port),
             "--ssl-cert", str(cert_file), "--ssl-key", str(key_file)],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    context = ssl.create_default_context(cafile=str(cert_file))
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with (
                    socket.create_connection(("127.0.0.1", port), timeout=1) as sock,
                    context.wrap_socket(sock, server_hostname="127.0.0.1"),
                ):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"moto by HTTPS did not start:\n{log.read_text()}")
                time.sleep(0.1)
        yield f"127.0.0.1:{port}", cert_file
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_an_endpoint_in_the_reference_is_reached_by_https_before_any_configured_one(
    moto_kms: MotoKms, tls_moto: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key is only in the HTTPS server; AWS_ENDPOINT_URL_KMS points at the other moto."""
    host, ca = tls_moto
    monkeypatch.setenv("AWS_CA_BUNDLE", str(ca))
    import botocore.session

    there = botocore.session.get_session().create_client(
        "kms", region_name="us-east-1", endpoint_url=f"https://{host}"
    )
    key = there.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    der = there.get_public_key(KeyId=key["KeyId"])["PublicKey"]
    there.close()

    signer = load_signing_key(f"awskms://{host}/{key['KeyId']}?message-type=raw")

    assert signer.key_id == hashlib.sha256(der).hexdigest()
    sign_with(signer, b"DSSEv1 4 test 5 hello")
    with pytest.raises(KeyReferenceError, match=r"^awskms:///\S+ names no AWS KMS key"):
        load_signing_key(f"awskms:///{key['KeyId']}?message-type=raw")  # at the configured one
