"""``pkcs11:`` keys against a real token: SoftHSM2, initialised here in a temporary folder.

The module's fixture writes a private softhsm2.conf, initialises tokens with
``softhsm2-util`` under PINs drawn now, and generates the key pairs inside the
token through python-pkcs11: no private key ever exists outside it. Bundles,
manifest edits and a root rotation are signed through the token, then checked
by a device in a fresh process that has no token, no module and no PIN: only
the public keys ``aoe-pack public-key`` wrote, and the repository.
"""

from __future__ import annotations

import _ctypes
import base64
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pkcs11
import pytest
from _cli import NO_PASSWORD, Cli
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

from aoe_pack.errors import (
    AmbiguousKeyError,
    KeyNotFoundError,
    KeyPasswordError,
    KeyReferenceError,
    KeyTypeError,
    SignerError,
    SignerModuleError,
    TokenNotFoundError,
    WrongPinError,
)
from aoe_pack.interop import open_envelope
from aoe_pack.keys import load_public_key, load_signing_key
from aoe_pack.keys.signer import Signer, sign_with
from aoe_pack.signers import pkcs11 as p11signer

REPO = Path(__file__).resolve().parents[2]
MNIST_TFLITE = REPO / "sample_models/mnist/mnist.tflite"
MODULE = "/usr/lib/softhsm/libsofthsm2.so"
"""Debian's softhsm2 (a symlink into the multiarch folder)."""
LABEL = "aoe-test"
ED25519_OID = bytes.fromhex("06032b6570")

aoe = Cli(env=NO_PASSWORD)
"""In this process, where the token was opened (its module is initialised once)."""
device = Cli(env=NO_PASSWORD, process=True)
"""A fresh process with no SOFTHSM2_CONF: it never saw the token."""


@dataclass(frozen=True)
class Hsm:
    """The SoftHSM2 set-up of this module."""

    conf: Path
    pin: str
    folder: Path

    def uri(self, obj: str | None = "ed", *, token: str = LABEL, query: str = "") -> str:
        path = f"token={token}" + (f";object={obj}" if obj is not None else "")
        return f"pkcs11:{path}?module-path={MODULE}" + (f"&{query}" if query else "")

    @property
    def env(self) -> dict[str, str]:
        """What a command signing through the token needs: the PIN, in AOE_TEST_PIN."""
        return {"AOE_TEST_PIN": self.pin}

    def pin_args(self, *uris: str) -> list[str]:
        return [a for u in uris for a in ("--key-password", u, "env://AOE_TEST_PIN")]


def _softhsm2_util(conf: Path, *args: str) -> None:
    subprocess.run(
        ["softhsm2-util", *args],
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def hsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hsm]:
    if shutil.which("softhsm2-util") is None or not Path(MODULE).is_file():
        pytest.fail("these tests need SoftHSM2: apt-get install softhsm2 (.ci/test does)")
    folder = tmp_path_factory.mktemp("softhsm2")
    (folder / "tokens").mkdir()
    conf = folder / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {folder / 'tokens'}\nobjectstore.backend = file\n"
        "log.level = ERROR\nslots.removable = false\n"
    )
    pin, so_pin = secrets.token_hex(4), secrets.token_hex(8)
    for label in (LABEL, "twin-token", "twin-token"):
        _softhsm2_util(conf, "--init-token", "--free", "--label", label,
                       "--so-pin", so_pin, "--pin", pin)  # fmt: skip
    # SoftHSM2 reads SOFTHSM2_CONF when the module is initialised, and python-pkcs11
    # keeps one initialised module per path for the process: start it on ours, loaded
    # as the signer loads it (TensorFlow, which earlier tests import, is in this process).
    lib = p11signer.load_module(os.path.realpath(MODULE))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SOFTHSM2_CONF", str(conf))
        lib.reinitialize()
    with lib.get_token(token_label=LABEL).open(rw=True, user_pin=pin) as session:
        _generate(session)
    yield Hsm(conf=conf, pin=pin, folder=folder)
    lib.finalize()


def _generate(session: Any) -> None:
    """The key pairs the tests use, generated inside the token."""
    private = {Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False}

    def ed25519(label: str, key_id: bytes, extra: dict[Attribute, Any] | None = None) -> Any:
        return session.generate_keypair(
            KeyType.EC_EDWARDS, store=True, label=label, id=key_id,
            mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
            public_template={Attribute.EC_PARAMS: ED25519_OID},
            private_template={**private, **(extra or {})},
        )  # fmt: skip

    def ec(label: str, key_id: bytes, curve: str) -> Any:
        return session.generate_keypair(
            KeyType.EC, store=True, label=label, id=key_id,
            mechanism=Mechanism.EC_KEY_PAIR_GEN,
            public_template={Attribute.EC_PARAMS: encode_named_curve_parameters(curve)},
            private_template=private,
        )  # fmt: skip

    ed25519("ed", b"ed")
    ec("p256", b"p256", "secp256r1")
    ec("p256-new", b"p256-new", "secp256r1")
    ed25519("twin", b"twin-1")
    ed25519("twin", b"twin-2")
    ec("p384", b"p384", "secp384r1")
    session.generate_keypair(KeyType.RSA, 2048, store=True, label="rsa", id=b"rsa",
                             private_template=private)  # fmt: skip
    ed25519("reauth", b"reauth", {Attribute.ALWAYS_AUTHENTICATE: True})
    # A private key whose public key object (by id) is another pair's: a token
    # set up wrongly, or tampered with.
    swapped_public, _ = ed25519("swapped", b"swapped")
    other_public, _ = ed25519("other", b"other")
    swapped_public.destroy()
    other_public[Attribute.ID] = b"swapped"


def _config(folder: Path, tag: str = "tag_hsm", version: str = "1.0.0") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(MNIST_TFLITE, folder / "model.tflite")
    doc = {"version": version, "tag": tag, "runtime": "tflite", "modelDir": ".",
           "modelName": "model.tflite", "encrypt": False}  # fmt: skip
    (folder / "config.json").write_text(json.dumps(doc))
    return folder / "config.json"


def _export(hsm: Hsm, uri: str, out: Path) -> str:
    """``aoe-pack public-key`` of a token key into ``out``; its key id."""
    r = aoe("public-key", "--sign-key", uri, *hsm.pin_args(uri), "--out", out, json=True,
            env=hsm.env)  # fmt: skip
    doc = r.expect()
    assert doc["public"] == str(out)
    assert out.read_bytes().decode() == doc["pem"]
    key_id: str = doc["keyid"]
    return key_id


def _open(hsm: Hsm, obj: str | None = "ed", **kwargs: Any) -> Signer:
    key = load_signing_key(hsm.uri(obj, query=f"pin-value={hsm.pin}"), **kwargs)
    assert isinstance(key, Signer)
    return key


# --- signed in the token, verified without it ---------------------------------------------


@pytest.mark.parametrize(("obj", "kind"), [("ed", "ed25519"), ("p256", "p256")])
def test_a_bundle_signed_in_the_token_verifies_with_the_exported_public_key(
    hsm: Hsm, tmp_path: Path, obj: str, kind: str
) -> None:
    uri = hsm.uri(obj)
    pub = tmp_path / f"{obj}.pub"
    key_id = _export(hsm, uri, pub)
    bundle = tmp_path / "m.aoe"

    built = aoe("build", _config(tmp_path / "model"), "--out", bundle, "--sign-key", uri,
                *hsm.pin_args(uri), json=True, env=hsm.env)  # fmt: skip

    assert built.expect()["signers"] == [key_id]
    verified = device("verify", bundle, "--trusted-key", pub, json=True).expect()
    assert [s["keyid"] for s in verified["signatures"]] == [key_id]
    assert load_public_key(str(pub)).kind.value == kind


def test_a_fresh_process_finds_the_pkcs11_signer_through_its_entry_point(
    hsm: Hsm, tmp_path: Path
) -> None:
    uri = hsm.uri("ed")
    pub = tmp_path / "ed.pub"
    signer = Cli(env={**NO_PASSWORD, **hsm.env, "SOFTHSM2_CONF": str(hsm.conf)}, process=True)
    exported = signer("public-key", "--sign-key", uri, *hsm.pin_args(uri), "--out", pub,
                      json=True).expect()  # fmt: skip
    built = signer("build", _config(tmp_path / "model"), "--out", tmp_path / "m.aoe",
                   "--sign-key", uri, *hsm.pin_args(uri), json=True).expect()  # fmt: skip
    assert built["signers"] == [exported["keyid"]]


def test_the_key_id_is_the_sha256_of_the_spki_der_of_the_tokens_public_key(hsm: Hsm) -> None:
    """Computed here from the token's public key objects, apart from aoe-pack's code."""
    session = pkcs11.lib(os.path.realpath(MODULE)).get_token(token_label=LABEL).open()
    with session:
        ed = session.get_key(object_class=ObjectClass.PUBLIC_KEY, label="ed")
        p256 = session.get_key(object_class=ObjectClass.PUBLIC_KEY, label="p256")
        # CKA_EC_POINT is a DER OCTET STRING (04 20 || 32 bytes) for Ed25519.
        ed_spki = bytes.fromhex("302a300506032b6570032100") + ed[Attribute.EC_POINT][2:]
        p256_spki = encode_ec_public_key(p256)  # python-pkcs11's own encoder (id-ecPublicKey)
    assert _open(hsm, "ed").key_id == hashlib.sha256(ed_spki).hexdigest()
    assert _open(hsm, "p256").key_id == hashlib.sha256(p256_spki).hexdigest()


def test_repository_edits_and_a_root_rotation_signed_in_the_token_update_a_device(
    hsm: Hsm, tmp_path: Path
) -> None:
    """Root 1 is the token's Ed25519 key, root 2 its P-256 key: both in one token, so one
    command logs in to it for two keys."""
    old, new = hsm.uri("ed"), hsm.uri("p256-new")
    old_pub, new_pub = tmp_path / "old.pub", tmp_path / "new.pub"
    old_id, new_id = _export(hsm, old, old_pub), _export(hsm, new, new_pub)
    repo, shipped = tmp_path / "repo", tmp_path / "app-root.json"
    bundle = tmp_path / "m.aoe"
    aoe("build", _config(tmp_path / "model"), "--out", bundle, "--sign-key", old,
        *hsm.pin_args(old), json=True, env=hsm.env).expect()  # fmt: skip

    aoe("manifest", "init", "--repo", repo, "--root-key", old_pub, "--sign-key", old,
        *hsm.pin_args(old), json=True, env=hsm.env).expect()  # fmt: skip
    shutil.copyfile(repo / "root.json", shipped)
    aoe("manifest", "publish", bundle, "--repo", repo, "--sign-key", old,
        *hsm.pin_args(old), json=True, env=hsm.env).expect()  # fmt: skip
    rotated = aoe("manifest", "rotate-root", "--repo", repo, "--root-key", new_pub,
                  "--sign-key", old, "--sign-key", new, *hsm.pin_args(old, new),
                  json=True, env=hsm.env).expect()  # fmt: skip
    assert rotated["rootVersion"] == 2
    rollout = aoe("manifest", "rollout", "--repo", repo, "tag_hsm", "1.0.0", "100",
                  "--sign-key", new, *hsm.pin_args(new), json=True, env=hsm.env)  # fmt: skip
    rollout_doc = rollout.expect()

    checked = device(
        "client", "check", "--repo", repo, "--trusted-root", shipped, "--tag", "tag_hsm",
        "--installed-version", "0.9.0", "--app-version", "1.0.0", "--device-id", "d1",
        "--state", tmp_path / "fresh-device.json", "--download", tmp_path / "models", json=True,
    ).expect()  # fmt: skip
    assert (checked["action"], checked["version"]) == ("download", "1.0.0")
    assert checked["rootVersion"] == 2
    assert checked["manifestVersion"] == rollout_doc["manifestVersion"]
    envelope = json.loads((repo / "roots/2.root.json").read_text())
    assert list(json.loads(base64.b64decode(envelope["payload"]))["keys"]) == [new_id]
    assert {s["keyid"] for s in envelope["signatures"]} == {old_id, new_id}


def test_a_process_that_imported_tensorflow_first_signs_through_the_token(hsm: Hsm) -> None:
    """TensorFlow exports BoringSSL under OpenSSL's names: SoftHSM2 loaded after it called
    those and crashed at its first login (a training script that signs, as the API allows)."""
    uri = hsm.uri("p256", query=f"pin-value={hsm.pin}")
    code = (
        "import tensorflow\n"
        "from aoe_pack.keys import load_signing_key\n"
        "from aoe_pack.keys.signer import sign_with\n"
        f"print(len(sign_with(load_signing_key({uri!r}), b'message')))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "SOFTHSM2_CONF": str(hsm.conf), "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert 70 <= int(run.stdout.split()[-1]) <= 72  # a DER ECDSA P-256 signature


def test_token_ed25519_signatures_are_deterministic_and_p256_ones_are_not(hsm: Hsm) -> None:
    """What docs/keys.md tells users: re-signing through the token changes ECDSA bytes."""
    ed, p256 = _open(hsm, "ed"), _open(hsm, "p256")
    message = b"DSSEv1 4 test 2 {}"
    assert sign_with(ed, message) == sign_with(ed, message)
    assert sign_with(p256, message) != sign_with(p256, message)


# --- where the module and the PIN come from --------------------------------------------------


def test_the_module_can_come_from_aoe_pack_pkcs11_module(
    hsm: Hsm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AOE_PACK_PKCS11_MODULE", MODULE)
    key = load_signing_key(f"pkcs11:token={LABEL};object=ed?pin-value={hsm.pin}")
    assert key.key_id == _open(hsm, "ed").key_id


def test_the_module_can_be_named_as_p11_kit_registers_it(hsm: Hsm) -> None:
    """Debian's softhsm2 registers itself with p11-kit as softhsm2."""
    key = load_signing_key(
        f"pkcs11:token={LABEL};object=ed?module-name=softhsm2&pin-value={hsm.pin}"
    )
    assert isinstance(key, p11signer.Pkcs11Signer)
    assert key.module == os.path.realpath(MODULE)


def test_the_pin_can_come_from_a_pin_source_file_uri(hsm: Hsm, tmp_path: Path) -> None:
    (tmp_path / "pin").write_text(hsm.pin + "\n")
    key = load_signing_key(hsm.uri("ed", query=f"pin-source=file://{tmp_path / 'pin'}"))
    assert key.key_id == _open(hsm, "ed").key_id


def test_the_pin_can_come_from_aoe_pack_pkcs11_pin(
    hsm: Hsm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AOE_PACK_PKCS11_PIN", hsm.pin)
    assert load_signing_key(hsm.uri("ed")).key_id == _open(hsm, "ed").key_id


def test_key_password_takes_precedence_over_the_uris_pin_source(hsm: Hsm, tmp_path: Path) -> None:
    (tmp_path / "stale-pin").write_text("00000000")
    uri = hsm.uri("ed", query=f"pin-source={tmp_path / 'stale-pin'}")
    key = load_signing_key(uri, password=str(_pin_file(tmp_path, hsm.pin)))
    assert key.key_id == _open(hsm, "ed").key_id


def _pin_file(folder: Path, pin: str) -> Path:
    path = folder / "pin"
    path.write_text(pin)
    return path


def test_a_key_that_needs_its_pin_for_every_signature_signs(hsm: Hsm) -> None:
    """CKA_ALWAYS_AUTHENTICATE: the PIN is given again after C_SignInit, each time."""
    key = _open(hsm, "reauth")
    assert len(sign_with(key, b"message")) == 64


def test_a_login_the_application_holds_is_used_and_left_in_place(hsm: Hsm) -> None:
    """A token's login belongs to the process: aoe-pack must not log the application out."""
    token = pkcs11.lib(os.path.realpath(MODULE)).get_token(token_label=LABEL)
    with token.open(user_pin=hsm.pin) as session:
        key = _open(hsm, "ed")
        assert len(sign_with(key, b"message")) == 64
        assert session.get_key(object_class=ObjectClass.PRIVATE_KEY, label="ed") is not None


def test_the_signers_ref_hides_a_pin_value(hsm: Hsm) -> None:
    key = _open(hsm, "ed")
    assert hsm.pin not in key.ref
    assert key.ref == hsm.uri("ed", query="pin-value=***")
    assert hsm.pin not in repr(key)


# --- each error, by name --------------------------------------------------------------------


def _error(cls: type[Exception], ref: str, **kwargs: Any) -> Any:
    with pytest.raises(cls) as info:
        load_signing_key(ref, **kwargs)
    assert type(info.value) is cls
    return info.value


def test_a_wrong_pin_is_refused_by_name(hsm: Hsm) -> None:
    uri = hsm.uri("ed", query="pin-value=00000000")
    e = _error(WrongPinError, uri)
    assert e.message == (
        f"{hsm.uri('ed', query='pin-value=***')}: wrong PIN for token '{LABEL}' (from pin-value)"
    )
    assert e.code == "wrong-pin"


def test_a_wrong_pin_from_the_command_line_exits_1(hsm: Hsm, tmp_path: Path) -> None:
    uri = hsm.uri("ed")
    r = aoe("public-key", "--sign-key", uri, *hsm.pin_args(uri), json=True,
            env={"AOE_TEST_PIN": "00000000"})  # fmt: skip
    assert r.doc["error"] == {
        "code": "wrong-pin", "type": "WrongPinError",
        "message": f"{uri}: wrong PIN for token '{LABEL}' (from --key-password)",
        "hint": "check the PIN; a token locks itself after a few wrong ones",
    }  # fmt: skip
    assert r.exit_code == 1


def test_a_token_that_is_not_there_is_refused_listing_the_tokens(hsm: Hsm) -> None:
    uri = hsm.uri("ed", token="no-such-token", query=f"pin-value={hsm.pin}")
    e = _error(TokenNotFoundError, uri)
    shown = hsm.uri("ed", token="no-such-token", query="pin-value=***")
    assert e.message.startswith(
        f"{shown}: no token matches; the module has token='{LABEL}' (serial "
    )
    assert e.message.count("token='twin-token'") == 2
    assert e.hint == "name the token by its label (token=) or serial (serial=)"


def test_a_missing_token_on_the_command_line_exits_2(hsm: Hsm, tmp_path: Path) -> None:
    uri = hsm.uri("ed", token="no-such-token")
    r = aoe("build", _config(tmp_path / "model"), "--out", tmp_path / "m.aoe", "--sign-key", uri,
            *hsm.pin_args(uri), json=True, env=hsm.env)  # fmt: skip
    assert (r.exit_code, r.doc["error"]["code"]) == (2, "token-not-found")


def test_two_tokens_of_one_label_are_refused_listing_both(hsm: Hsm) -> None:
    e = _error(AmbiguousKeyError, hsm.uri("ed", token="twin-token", query=f"pin-value={hsm.pin}"))
    assert ": 2 tokens match: token='twin-token' (serial " in e.message
    assert e.hint == "add serial= to name one token"


def test_a_key_that_is_not_in_the_token_is_refused_listing_its_keys(hsm: Hsm) -> None:
    e = _error(KeyNotFoundError, hsm.uri("no-such-key", query=f"pin-value={hsm.pin}"))
    assert e.message.startswith(
        f"{hsm.uri('no-such-key', query='pin-value=***')}: token '{LABEL}' has no private key "
        "of that label and id; its private keys: "
    )
    assert "object='ed' id=%65%64 (EC_EDWARDS)" in e.message
    assert "object='rsa' id=%72%73%61 (RSA)" in e.message
    assert e.code == "key-not-found"


def test_two_keys_that_match_are_refused_listing_both(hsm: Hsm) -> None:
    e = _error(AmbiguousKeyError, hsm.uri("twin", query=f"pin-value={hsm.pin}"))
    assert e.message == (
        f"{hsm.uri('twin', query='pin-value=***')}: 2 private keys of token '{LABEL}' match: "
        "object='twin' id=%74%77%69%6e%2d%31 (EC_EDWARDS); "
        "object='twin' id=%74%77%69%6e%2d%32 (EC_EDWARDS)"
    )
    assert e.hint == "add object= and id= to name one key"


def test_an_id_tells_two_keys_of_one_label_apart(hsm: Hsm) -> None:
    uri = f"pkcs11:token={LABEL};object=twin;id=twin-2?module-path={MODULE}&pin-value={hsm.pin}"
    assert len(sign_with(load_signing_key(uri), b"m")) == 64


def test_a_uri_with_pin_value_and_pin_source_is_refused(hsm: Hsm) -> None:
    e = _error(KeyReferenceError, hsm.uri("ed", query="pin-value=1234&pin-source=/etc/pin"))
    assert e.message == (
        f"bad pkcs11: URI {hsm.uri('ed', query='pin-value=***&pin-source=/etc/pin')}: "
        "it has both pin-value and pin-source; give one"
    )


def test_a_module_that_is_not_a_pkcs11_library_is_refused(hsm: Hsm) -> None:
    """A real shared library, already loaded here, without C_GetFunctionList."""
    library = os.path.realpath(_ctypes.__file__)
    uri = f"pkcs11:token={LABEL};object=ed?module-path={library}&pin-value={hsm.pin}"
    e = _error(SignerModuleError, uri)
    assert e.message.startswith(f"{uri.replace(hsm.pin, '***')}: {library} is not a PKCS#11 module")
    assert e.message.endswith("undefined symbol: C_GetFunctionList)")
    assert e.code == "signer-module"


def test_a_module_that_is_not_a_library_at_all_is_refused(hsm: Hsm, tmp_path: Path) -> None:
    fake = tmp_path / "libfake.so"
    fake.write_text("not a library\n" * 512)
    e = _error(SignerModuleError, f"pkcs11:object=ed?module-path={fake}&pin-value=1")
    assert e.message == (
        f"pkcs11:object=ed?module-path={fake}&pin-value=***: {fake} is not a PKCS#11 module "
        f"that loads here ({fake}: invalid ELF header)"
    )


def test_a_module_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "libnone.so"
    e = _error(SignerModuleError, f"pkcs11:object=ed?module-path={missing}")
    assert e.message == (
        f"pkcs11:object=ed?module-path={missing}: the PKCS#11 module {missing} (from "
        "module-path) does not exist"
    )


def test_a_relative_module_path_is_refused() -> None:
    e = _error(SignerModuleError, "pkcs11:object=ed?module-path=lib/libsofthsm2.so")
    assert e.message == (
        "pkcs11:object=ed?module-path=lib/libsofthsm2.so: the PKCS#11 module "
        "lib/libsofthsm2.so (from module-path) is a relative path"
    )


def test_a_module_name_nobody_registers_is_refused() -> None:
    e = _error(SignerModuleError, "pkcs11:object=ed?module-name=aoe-no-such-module")
    assert e.message.startswith(
        "pkcs11:object=ed?module-name=aoe-no-such-module: no PKCS#11 module is named "
        "'aoe-no-such-module' (looked in "
    )


def test_no_module_at_all_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AOE_PACK_PKCS11_MODULE", raising=False)
    e = _error(KeyReferenceError, "pkcs11:token=t;object=ed")
    assert e.message == "pkcs11:token=t;object=ed names no PKCS#11 module"


def test_no_pin_for_a_token_that_needs_one_is_refused(
    hsm: Hsm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AOE_PACK_PKCS11_PIN", raising=False)
    e = _error(KeyPasswordError, hsm.uri("ed"))
    assert e.message == f"{hsm.uri('ed')}: token '{LABEL}' needs a PIN, and none was given"
    assert e.hint is not None
    assert "AOE_PACK_PKCS11_PIN" in e.hint


def test_a_pin_that_is_not_utf8_is_refused(hsm: Hsm, tmp_path: Path) -> None:
    (tmp_path / "pin").write_bytes(b"\xff\xfe")
    e = _error(KeyPasswordError, hsm.uri("ed"), password=str(tmp_path / "pin"))
    assert e.message == (
        f"{hsm.uri('ed')}: the PIN from --key-password is not UTF-8 text, as a PKCS#11 PIN is"
    )


def test_a_pin_source_of_another_scheme_is_refused(hsm: Hsm) -> None:
    e = _error(KeyReferenceError, hsm.uri("ed", query="pin-source=https://example.com/pin"))
    assert e.message == (
        f"{hsm.uri('ed', query='pin-source=https://example.com/pin')}: pin-source https: is "
        "not supported"
    )


def test_a_pin_source_file_uri_never_reads_an_environment_variable(
    hsm: Hsm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pin-source is a file: file:env://VAR read the variable, as --key-password would."""
    monkeypatch.setenv("AOE_TEST_PIN", hsm.pin)
    uri = hsm.uri("ed", query="pin-source=file:env://AOE_TEST_PIN")
    e = _error(KeyReferenceError, uri)
    assert e.message == (
        f"{uri}: pin-source file:env://AOE_TEST_PIN is not a file URI of an absolute path"
    )


def test_a_key_password_for_a_uri_with_a_pin_value_is_two_answers_to_one_question(
    hsm: Hsm,
) -> None:
    """The --key-password used to win silently over the PIN written in the URI."""
    uri = hsm.uri("ed", query="pin-value=00000000")
    r = aoe("public-key", "--sign-key", uri, *hsm.pin_args(uri), json=True, env=hsm.env)
    assert r.expect(2)["error"] == {
        "code": "usage", "type": "UsageError",
        "message": f"{hsm.uri('ed', query='pin-value=***')}: --key-password gives the token's "
                   "PIN, and so does the URI's pin-value; give one",
        "hint": "drop pin-value from the URI (it puts the PIN on the command line), or drop "
                "the --key-password",
    }  # fmt: skip
    assert "00000000" not in r.output


def test_provenance_signed_twice_by_a_token_p256_key_differs_but_verifies(
    hsm: Hsm, tmp_path: Path
) -> None:
    """What docs/interop.md says: exports repeat byte for byte only with deterministic keys."""
    aoe("keygen", "--type", "ed25519", "--out", tmp_path / "release", json=True).expect()
    bundle = tmp_path / "m.aoe"
    aoe("build", _config(tmp_path / "model"), "--out", bundle, "--sign-key",
        tmp_path / "release.key", json=True).expect()  # fmt: skip
    exported: dict[str, list[bytes]] = {}
    for obj in ("p256", "ed"):
        uri = hsm.uri(obj)
        for n in range(2):
            out = tmp_path / f"{obj}-{n}.jsonl"
            aoe("export", "provenance", bundle, "--sign-key", uri, *hsm.pin_args(uri),
                "--trusted-key", tmp_path / "release.pub", "--out", out, json=True,
                env=hsm.env).expect()  # fmt: skip
            exported.setdefault(obj, []).append(out.read_bytes())
    first, second = (json.loads(e) for e in exported["p256"])
    assert first["payload"] == second["payload"]
    assert first["signatures"] != second["signatures"]  # ECDSA in a token: a fresh nonce
    assert exported["ed"][0] == exported["ed"][1]  # Ed25519: deterministic everywhere
    public = tmp_path / "p256.pub"
    _export(hsm, hsm.uri("p256"), public)
    for envelope in exported["p256"]:
        open_envelope(envelope, trusted_keys=[load_public_key(str(public))])


@pytest.mark.parametrize(
    ("obj", "named"),
    [("rsa", "is a RSA key"), ("p384", "is a key on curve P-384")],
)
def test_a_key_type_aoe_pack_does_not_sign_with_is_refused(hsm: Hsm, obj: str, named: str) -> None:
    uri = hsm.uri(obj, query=f"pin-value={hsm.pin}")
    e = _error(KeyTypeError, uri)
    assert e.message.startswith(f"{hsm.uri(obj, query='pin-value=***')} {named}; aoe-pack signs")


def test_a_uri_naming_a_public_key_is_refused(hsm: Hsm) -> None:
    e = _error(
        KeyReferenceError, f"pkcs11:token={LABEL};object=ed;type=public?module-path={MODULE}"
    )
    assert e.message.endswith("names a public object; a signing key is a private key")


def test_a_vendor_path_attribute_is_refused_not_ignored(hsm: Hsm) -> None:
    e = _error(KeyReferenceError, f"pkcs11:object=ed;x-slot=2?module-path={MODULE}")
    assert e.message.endswith(": aoe-pack cannot match the vendor path attribute x-slot")


MISMATCH = (
    "{ref}: the token's public key object does not belong to its private key: a random "
    "challenge signed with the key does not verify under it"
)


def test_a_public_key_object_of_another_pair_is_refused_when_the_key_is_opened(
    hsm: Hsm,
) -> None:
    """The token claims another pair's public key: refused before anything trusts it."""
    uri = hsm.uri("swapped", query=f"pin-value={hsm.pin}")
    e = _error(SignerError, uri)
    assert e.message == MISMATCH.format(ref=hsm.uri("swapped", query="pin-value=***"))


@pytest.fixture(scope="module")
def planted(hsm: Hsm) -> str:
    """A key pair whose public key object someone without the PIN replaced with their own.

    A public object may be written in a read/write session that never logged in:
    the attacker needs access to the token's module and files, not its PIN.
    """
    token = pkcs11.lib(os.path.realpath(MODULE)).get_token(token_label=LABEL)
    with token.open(rw=True, user_pin=hsm.pin) as session:
        session.generate_keypair(
            KeyType.EC, store=True, label="victim", id=b"victim",
            mechanism=Mechanism.EC_KEY_PAIR_GEN,
            public_template={Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
            private_template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False},
        )  # fmt: skip
    attacker = ec.generate_private_key(ec.SECP256R1()).public_key()
    point = attacker.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    with token.open(rw=True) as session:  # no PIN
        for genuine in session.get_objects(
            {Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.ID: b"victim"}
        ):
            genuine.destroy()
        session.create_object({
            Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.KEY_TYPE: KeyType.EC,
            Attribute.TOKEN: True, Attribute.PRIVATE: False, Attribute.VERIFY: True,
            Attribute.ID: b"victim", Attribute.LABEL: "victim",
            Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1"),
            Attribute.EC_POINT: bytes([0x04, len(point)]) + point,
        })  # fmt: skip
    return hsm.uri("victim")


def _repository_proposal(folder: Path) -> Path:
    """A proposal to re-sign a repository whose root key is a key file."""
    key = folder / "root"
    aoe("keygen", "--type", "p256", "--out", key, json=True).expect()
    repo, proposal = folder / "repo", folder / "proposal.json"
    aoe("manifest", "init", "--repo", repo, "--root-key", key.with_suffix(".pub"),
        "--sign-key", key.with_suffix(".key"), json=True).expect()  # fmt: skip
    aoe("manifest", "resign", "--repo", repo, "--prepare", "--out", proposal, json=True).expect()
    return proposal


@pytest.mark.parametrize("command", ["public-key", "build", "manifest sign-proposal"])
def test_a_planted_public_key_object_is_refused_before_it_is_exported_or_used(
    hsm: Hsm, planted: str, tmp_path: Path, command: str
) -> None:
    """Else `public-key` would export the attacker's key, to become a --root-key."""
    out = tmp_path / "out"
    args: dict[str, list[object]] = {
        "public-key": ["public-key", "--out", out],
        "build": ["build", _config(tmp_path / "model"), "--out", out],
        "manifest sign-proposal": ["manifest", "sign-proposal", _repository_proposal(tmp_path),
                                   "--out", out],
    }  # fmt: skip

    r = aoe(*args[command], "--sign-key", planted, *hsm.pin_args(planted), json=True,
            env=hsm.env)  # fmt: skip

    assert r.expect(1)["error"]["code"] == "signer"
    assert r.doc["error"]["message"] == MISMATCH.format(ref=planted)
    assert not out.exists()


def test_a_token_key_signs_nothing_when_the_key_was_deleted_meanwhile(hsm: Hsm) -> None:
    key = _open(hsm, "p256")
    token = pkcs11.lib(os.path.realpath(MODULE)).get_token(token_label=LABEL)
    with token.open(rw=True, user_pin=hsm.pin) as session:
        doomed = _generate_one(session, "doomed")
        signer = _open(hsm, "doomed")
        doomed.destroy()
    with pytest.raises(SignerError) as info:
        sign_with(signer, b"message")
    assert str(info.value) == (
        f"{signer.ref}: the key is no longer the only one of its label and id in token "
        f"'{LABEL}' (0 found)"
    )
    assert len(sign_with(key, b"message")) > 64  # DER


def _generate_one(session: Any, label: str) -> Any:
    _, private = session.generate_keypair(
        KeyType.EC_EDWARDS, store=True, label=label, id=label.encode(),
        mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
        public_template={Attribute.EC_PARAMS: ED25519_OID},
    )  # fmt: skip
    return private
