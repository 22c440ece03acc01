"""Keys held elsewhere sign through plugins found by their reference's scheme.

``tests/fixtures/plugins/aoe-pack-filekms`` is a signer plugin written as a
third party would: installed beside aoe-pack, it is found through the
``aoe_pack.signers`` entry points with no change to aoe-pack.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from _cli import NO_PASSWORD, Cli

from aoe_pack import api, dsse
from aoe_pack.errors import KeyReferenceError, SignerError
from aoe_pack.keys import keygen, load_public_key, load_signing_key
from aoe_pack.keys import signer as signer_module

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "tests/fixtures/plugins/aoe-pack-filekms"
MNIST = REPO / "sample_models/mnist/config.json"

aoe = Cli(env=NO_PASSWORD, process=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--no-build-isolation", "--target", str(site), str(PLUGIN)],
        check=True, capture_output=True,
    )  # fmt: skip
    return site


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("keys")
    for name, kind in (("ed", "ed25519"), ("p256", "p256")):
        keygen(kind, folder / name)
    return folder


def _env(site: Path) -> dict[str, str]:
    return {"PYTHONPATH": f"{site}{':' if sys.platform != 'win32' else ';'}{REPO}"}


@pytest.mark.parametrize("name", ["ed", "p256"])
def test_a_plugin_key_signs_a_bundle_that_verifies_as_its_file_key_would(
    name: str, site: Path, keys: Path, tmp_path: Path
) -> None:
    bundle = tmp_path / "m.aoe"
    ref = f"filekms:///{(keys / f'{name}.key').as_posix().lstrip('/')}"
    built = aoe("build", MNIST, "--out", bundle, "--sign-key", ref, "--no-encrypt",
                json=True, env=_env(site))  # fmt: skip
    assert built.exit_code == 0, built.output
    verified = aoe("verify", bundle, "--trusted-key", keys / f"{name}.pub", json=True)
    assert (
        verified.expect()["signatures"][0]["keyid"]
        == load_public_key(str(keys / f"{name}.pub")).key_id
    )


def test_a_plugin_key_signs_repository_documents(site: Path, keys: Path, tmp_path: Path) -> None:
    ref = f"filekms:///{(keys / 'p256.key').as_posix().lstrip('/')}"
    repo = tmp_path / "repo"
    init = aoe("manifest", "init", "--repo", repo, "--root-key", keys / "p256.pub",
               "--sign-key", ref, json=True, env=_env(site))  # fmt: skip
    assert init.exit_code == 0, init.output
    shown = aoe("manifest", "verify", "--repo", repo, "--trusted-root", repo / "root.json",
                json=True)  # fmt: skip
    assert shown.exit_code == 0, shown.output


def test_a_signer_that_signs_with_another_key_is_refused_by_name(
    site: Path, keys: Path, tmp_path: Path
) -> None:
    ref = f"filekms://wrong-key/{(keys / 'ed.key').as_posix().lstrip('/')}"
    r = aoe("build", MNIST, "--out", tmp_path / "m.aoe", "--sign-key", ref, "--no-encrypt",
            json=True, env=_env(site))  # fmt: skip
    assert r.exit_code == 1
    assert r.doc["error"]["code"] == "signer"
    assert r.doc["error"]["message"] == (
        f"{ref}: the public key the filekms: signer reports does not belong to its private "
        "key: a random challenge signed with the key does not verify under it"
    )
    assert not (tmp_path / "m.aoe").exists()


def test_a_signer_that_fails_is_reported_with_its_reference(
    site: Path, keys: Path, tmp_path: Path
) -> None:
    ref = f"filekms://down/{(keys / 'ed.key').as_posix().lstrip('/')}"
    r = aoe("build", MNIST, "--out", tmp_path / "m.aoe", "--sign-key", ref, "--no-encrypt",
            json=True, env=_env(site))  # fmt: skip
    assert r.exit_code == 1
    assert r.doc["error"]["message"] == (
        f"{ref} could not sign: ConnectionError: the KMS is unreachable"
    )


def test_a_scheme_no_plugin_registers_is_a_key_reference_error() -> None:
    with pytest.raises(KeyReferenceError) as info:
        load_signing_key("gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k")
    assert str(info.value).startswith("no signer is installed for gcpkms:// keys (installed: ")
    assert "awskms:, pkcs11:" in str(info.value)


def test_a_windows_drive_path_is_a_path_not_a_scheme(tmp_path: Path) -> None:
    with pytest.raises(KeyReferenceError, match=r"^key file C:\\keys\\a\.key does not exist$"):
        load_signing_key("C:\\keys\\a.key")


class _Remote:
    """A Signer object handed to the library directly (no entry point)."""

    def __init__(self, key_file: Path) -> None:
        self._key = load_signing_key(str(key_file))
        self.ref = f"remote:{key_file.name}"

    @property
    def public(self):  # type: ignore[no-untyped-def]
        return self._key.public

    @property
    def key_id(self) -> str:
        return self._key.key_id

    def sign(self, message: bytes) -> bytes:
        from aoe_pack.keys.signer import sign_with

        return sign_with(self._key, message)


def test_the_library_takes_a_signer_object(keys: Path, tmp_path: Path) -> None:
    signer = _Remote(keys / "ed.key")
    built = api.build(configs=MNIST, out=tmp_path / "m.aoe", sign_keys=[signer], encrypt=False)
    result = api.verify(bundle=built.result.path, trusted_keys=[keys / "ed.pub"])
    assert [s.keyid for s in result.signatures] == [signer.key_id]
    bad = _BadSigner(keys / "ed.key")
    with pytest.raises(SignerError, match="does not verify under its own public key"):
        api.build(configs=MNIST, out=tmp_path / "x.aoe", sign_keys=[bad], encrypt=False)


class _BadSigner(_Remote):
    def sign(self, message: bytes) -> bytes:
        return bytes(64)


# --- a key id that names another key -----------------------------------------------------------


class _Liar(_Remote):
    """Signs with one key and reports the id of another (``claimed``)."""

    def __init__(self, key_file: Path, claimed: Path) -> None:
        super().__init__(key_file)
        self.ref = "liar://kms/key?pin-value=73915286"
        self._claimed = load_public_key(str(claimed)).key_id

    @property
    def key_id(self) -> str:
        return self._claimed


def test_a_plugin_signer_whose_key_id_names_another_key_is_refused(
    keys: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Its signatures would carry the id of a key that never made them."""
    factories = {"liar": lambda: lambda ref, pin=None: _Liar(keys / "ed.key", keys / "p256.pub")}
    monkeypatch.setattr(signer_module, "signer_factories", lambda: factories)
    real, claimed = (load_public_key(str(keys / n)).key_id for n in ("ed.pub", "p256.pub"))

    with pytest.raises(SignerError) as info:
        load_signing_key("liar://kms/key?pin-value=73915286")

    assert info.value.message == (
        f"liar://kms/key?pin-value=*** reports key id {claimed[:16]}…, but the id of its "
        f"public key is {real[:16]}…"
    )
    with pytest.raises(SignerError) as given:  # handed to the library as an object
        api.build(configs=MNIST, out=tmp_path / "m.aoe",
                  sign_keys=[_Liar(keys / "ed.key", keys / "p256.pub")], encrypt=False)  # fmt: skip
    assert given.value.message == info.value.message
    assert not (tmp_path / "m.aoe").exists()


def test_dsse_labels_a_signature_with_the_key_that_made_it(keys: Path) -> None:
    liar = _Liar(keys / "ed.key", keys / "p256.pub")
    real = load_public_key(str(keys / "ed.pub"))

    [signature] = dsse.sign("t", b"payload", [liar])

    assert signature.keyid == real.key_id
    assert dsse.valid_keyids("t", b"payload", [signature], {real.key_id: real}) == {real.key_id}
