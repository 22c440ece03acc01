"""Each private key its own password source: ``--key-password KEY SOURCE``.

Keys under different passwords, and keys with none, in one command, with no
terminal to ask in; and each way a password can be wrong, by name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from aoe_pack._crypto import asymmetric as _keys
from aoe_pack.cli import cli
from aoe_pack.errors import PasswordSourceError
from aoe_pack.keys.password import MAX_PASSWORD_FILE, read_password

REPO = Path(__file__).resolve().parents[2]


def aoe(*args: object) -> Any:
    """Run the CLI in-process with no terminal: a prompt would fail, not wait."""
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def error_of(result: Any) -> dict[str, Any]:
    doc = json.loads(result.stdout)
    assert doc["ok"] is False
    error: dict[str, Any] = doc["error"]
    return error


@pytest.fixture(autouse=True)
def _no_global_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AOE_PACK_PASSWORD", raising=False)


@pytest.fixture
def keyring(tmp_path: Path) -> dict[str, Path]:
    """Three signing keys: ``a`` under password A, ``b`` under B, ``plain`` under none.

    Each as NAME.key and NAME.pub in ``tmp_path/keys``.
    """
    folder = tmp_path / "keys"
    folder.mkdir()
    out = {}
    for name, kind, password in (
        ("a", _keys.KeyKind.ED25519, b"password A"),
        ("b", _keys.KeyKind.P256, b"password B"),
        ("plain", _keys.KeyKind.ED25519, None),
    ):
        key = _keys.generate(kind)
        (folder / f"{name}.key").write_bytes(_keys.key_file(key, password))
        (folder / f"{name}.pub").write_bytes(key.public.pem)
        out[name] = folder / f"{name}.key"
    return out


@pytest.fixture
def password_b(tmp_path: Path) -> Path:
    """Key ``b``'s password in a file, with the newline ``echo`` leaves."""
    path = tmp_path / "b.password"
    path.write_bytes(b"password B\n")
    return path


def init(repo: Path, keyring: dict[str, Path], *extra: object) -> Any:
    """``manifest init`` with key ``a`` as the root's only key (its password from PW_A)."""
    return aoe(
        "manifest", "init", "--repo", repo,
        "--root-key", keyring["a"].with_suffix(".pub"),
        "--sign-key", keyring["a"],
        *extra, "--json",
    )  # fmt: skip


# --- several keys, several passwords, no terminal -------------------------------------------


def test_rotate_root_with_two_passwords_and_an_unencrypted_key(
    tmp_path: Path, keyring: dict[str, Path], password_b: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Root 1 needs a and b (threshold 2); root 2 needs b and plain (threshold 2)."""
    monkeypatch.setenv("PW_A", "password A")
    repo = tmp_path / "repo"
    a, b, plain = keyring["a"], keyring["b"], keyring["plain"]
    created = aoe(
        "manifest", "init", "--repo", repo,
        "--root-key", a.with_suffix(".pub"), "--root-key", b.with_suffix(".pub"),
        "--threshold", 2,
        "--sign-key", a, "--sign-key", b,
        "--key-password", a, "env://PW_A", "--key-password", b, password_b,
        "--json",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    root1 = tmp_path / "root1.json"
    root1.write_bytes((repo / "root.json").read_bytes())

    rotated = aoe(
        "manifest", "rotate-root", "--repo", repo,
        "--root-key", b.with_suffix(".pub"), "--root-key", plain.with_suffix(".pub"),
        "--threshold", 2,
        "--sign-key", plain, "--sign-key", b, "--sign-key", a,
        "--key-password", b, password_b, "--key-password", a, "env://PW_A",
        "--json",
    )  # fmt: skip

    assert rotated.exit_code == 0, rotated.output
    doc = json.loads(rotated.stdout)
    assert (doc["rootVersion"], doc["threshold"], len(doc["keys"])) == (2, 2, 2)
    verified = aoe("manifest", "verify", "--repo", repo, "--trusted-root", root1, "--json")
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.stdout)["rootVersion"] == 2


def test_manifest_edit_with_threshold_two_under_two_passwords(
    tmp_path: Path, keyring: dict[str, Path], password_b: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PW_A", "password A")
    repo = tmp_path / "repo"
    a, b = keyring["a"], keyring["b"]
    both = (
        "--sign-key", a, "--sign-key", b,
        "--key-password", b, password_b, "--key-password", a, "env://PW_A",
    )  # fmt: skip
    created = aoe(
        "manifest", "init", "--repo", repo,
        "--root-key", a.with_suffix(".pub"), "--root-key", b.with_suffix(".pub"),
        "--threshold", 2, *both,
    )  # fmt: skip
    assert created.exit_code == 0, created.output

    resigned = aoe("manifest", "resign", "--repo", repo, *both, "--json")

    assert resigned.exit_code == 0, resigned.output
    assert json.loads(resigned.stdout)["manifestVersion"] == 2


def test_key_password_comes_before_aoe_pack_password(
    tmp_path: Path, keyring: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key's own source wins; AOE_PACK_PASSWORD stays the fallback of the others."""
    monkeypatch.setenv("AOE_PACK_PASSWORD", "password B")
    monkeypatch.setenv("PW_A", "password A")
    repo = tmp_path / "repo"
    a, b = keyring["a"], keyring["b"]
    r = aoe(
        "manifest", "init", "--repo", repo,
        "--root-key", a.with_suffix(".pub"), "--root-key", b.with_suffix(".pub"),
        "--threshold", 2,
        "--sign-key", a, "--sign-key", b, "--key-password", a, "env://PW_A",
        "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.output


def _signed_mnist(tmp_path: Path, key: Path, *password: object) -> Path:
    """The mnist sample as it is, signed with ``key`` (its password from ``password``)."""
    config = tmp_path / "mnist" / "config.json"
    config.parent.mkdir()
    doc = json.loads((REPO / "sample_models/mnist/config.json").read_text())
    doc.pop("targets")
    doc["modelName"] = "mnist.tflite"
    config.write_text(json.dumps(doc))
    for name in ("mnist.tflite", "labels.txt"):
        (config.parent / name).write_bytes((REPO / "sample_models/mnist" / name).read_bytes())
    out = tmp_path / "m.aoe"
    r = aoe("build", config, "--out", out, "--no-encrypt", "--sign-key", key, *password, "--json")
    assert r.exit_code == 0, r.output
    return out


def test_build_signs_with_a_key_password_file(
    tmp_path: Path, keyring: dict[str, Path], password_b: Path
) -> None:
    out = _signed_mnist(tmp_path, keyring["b"], "--key-password", keyring["b"], password_b)
    verified = aoe("verify", out, "--trusted-key", keyring["b"].with_suffix(".pub"))
    assert verified.exit_code == 0, verified.output


def test_manifest_publish_with_a_key_password(
    tmp_path: Path, keyring: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """publish also takes --delta-sign-key and --decryption-key: a password for its
    --sign-key is one of its keys' all the same."""
    monkeypatch.setenv("PW_A", "password A")
    a, repo = keyring["a"], tmp_path / "repo"
    password = ("--key-password", a, "env://PW_A")
    assert init(repo, keyring, *password).exit_code == 0
    bundle = _signed_mnist(tmp_path, a, *password)

    published = aoe("manifest", "publish", bundle, "--repo", repo, "--sign-key", a, *password,
                    "--json")  # fmt: skip
    assert published.exit_code == 0, published.output
    assert json.loads(published.stdout)["manifestVersion"] == 2
    # add-delta takes the same three key options: past the passwords, what is missing
    # is an earlier release to make a delta from.
    r = aoe("manifest", "add-delta", "tag_mnist", "1.0.0", "--from", "0.9.0", "--repo", repo,
            "--sign-key", a, *password, "--json")  # fmt: skip
    assert r.exit_code == 1, r.output
    assert error_of(r) == {
        "code": "release-not-found",
        "message": "the repository has no release tag_mnist 0.9.0",
        "type": "ReleaseNotFoundError",
    }


def test_key_password_naming_a_key_publish_was_not_given(
    tmp_path: Path, keyring: dict[str, Path], password_b: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PW_A", "password A")
    a, b, repo = keyring["a"], keyring["b"], tmp_path / "repo"
    password = ("--key-password", a, "env://PW_A")
    assert init(repo, keyring, *password).exit_code == 0
    bundle = _signed_mnist(tmp_path, a, *password)

    r = aoe(
        "manifest", "publish", bundle, "--repo", repo, "--sign-key", a, *password,
        "--key-password", b, password_b, "--json",
    )  # fmt: skip

    assert r.exit_code == 2
    assert error_of(r) == {
        "code": "usage",
        "type": "UsageError",
        "message": f"--key-password names {b}, which is not a --sign-key of this command "
        f"(given: {a})",
        "hint": "write KEY exactly as it is given to --sign-key",
    }


def test_verify_decrypts_with_a_password_protected_decryption_key(
    tmp_path: Path, built_bundle: Any, signer: _keys.PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    device = _keys.generate(_keys.KeyKind.X25519)
    bundle = built_bundle(recipients=[device.public])
    device_key, signer_pub = tmp_path / "device.key", tmp_path / "signer.pub"
    device_key.write_bytes(_keys.key_file(device, b"device pw"))
    signer_pub.write_bytes(signer.public.pem)
    monkeypatch.setenv("DEVICE_PW", "device pw")

    r = aoe(
        "verify", bundle, "--trusted-key", signer_pub,
        "--decryption-key", device_key, "--key-password", device_key, "env://DEVICE_PW",
        "--json",
    )  # fmt: skip

    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["decrypted"] is True


# --- each error by name ---------------------------------------------------------------------


def test_key_password_for_an_unencrypted_key(
    tmp_path: Path, keyring: dict[str, Path], password_b: Path
) -> None:
    plain = keyring["plain"]
    r = aoe(
        "manifest", "init", "--repo", tmp_path / "repo",
        "--root-key", plain.with_suffix(".pub"),
        "--sign-key", plain, "--key-password", plain, password_b, "--json",
    )  # fmt: skip
    assert r.exit_code == 1
    assert error_of(r) == {
        "code": "key-not-encrypted",
        "type": "KeyNotEncryptedError",
        "message": f"{plain} is not encrypted, but --key-password gives it a password "
        f"({password_b})",
        "hint": f"drop the --key-password of {plain}",
    }


def test_aoe_pack_password_for_an_unencrypted_key(
    tmp_path: Path, keyring: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AOE_PACK_PASSWORD", "password A")
    plain = keyring["plain"]
    r = aoe(
        "manifest", "init", "--repo", tmp_path / "repo",
        "--root-key", plain.with_suffix(".pub"), "--sign-key", plain, "--json",
    )  # fmt: skip
    assert r.exit_code == 1
    assert error_of(r) == {
        "code": "key-not-encrypted",
        "type": "KeyNotEncryptedError",
        "message": f"{plain} is not encrypted, but AOE_PACK_PASSWORD gives it a password",
        "hint": "unset AOE_PACK_PASSWORD; give each encrypted key its own "
        "--key-password KEY SOURCE",
    }


def test_key_password_for_an_encryption_key_file(
    tmp_path: Path, built_bundle: Any, signer: _keys.PrivateKey, kek: bytes, password_b: Path
) -> None:
    bundle = built_bundle(keks=[kek])
    kek_file, signer_pub = tmp_path / "app.kek", tmp_path / "signer.pub"
    kek_file.write_bytes(kek.hex().encode() + b"\n")
    signer_pub.write_bytes(signer.public.pem)
    r = aoe(
        "verify", bundle, "--trusted-key", signer_pub,
        "--decryption-key", kek_file, "--key-password", kek_file, password_b, "--json",
    )  # fmt: skip
    assert r.exit_code == 1
    assert error_of(r)["code"] == "key-not-encrypted"
    assert error_of(r)["message"] == (
        f"{kek_file} is an encryption key file, never password-protected, "
        f"but --key-password gives it a password ({password_b})"
    )


def test_key_password_naming_an_unset_variable(
    tmp_path: Path, keyring: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PW_NOWHERE", raising=False)
    a = keyring["a"]
    r = init(tmp_path / "repo", keyring, "--key-password", a, "env://PW_NOWHERE")
    assert r.exit_code == 1
    assert error_of(r) == {
        "code": "password-source",
        "type": "PasswordSourceError",
        "message": f"the password source env://PW_NOWHERE of {a} names environment "
        "variable 'PW_NOWHERE', which is not set",
        "hint": "export PW_NOWHERE with the key's password, or name a password file",
    }


def test_key_password_naming_a_missing_file(tmp_path: Path, keyring: dict[str, Path]) -> None:
    a, missing = keyring["a"], tmp_path / "no-such.password"
    r = init(tmp_path / "repo", keyring, "--key-password", a, missing)
    assert r.exit_code == 1
    assert error_of(r) == {
        "code": "password-source",
        "type": "PasswordSourceError",
        "message": f"the password file {missing} of {a} does not exist",
        "hint": "a password source is env://VAR or the path of a file holding the password",
    }


def test_key_password_that_is_wrong(
    tmp_path: Path, keyring: dict[str, Path], password_b: Path
) -> None:
    a = keyring["a"]
    r = init(tmp_path / "repo", keyring, "--key-password", a, password_b)
    assert r.exit_code == 1
    assert error_of(r) == {
        "code": "wrong-password",
        "type": "WrongPasswordError",
        "message": f"{a}: wrong password for the private key (from --key-password {password_b})",
        "hint": f"check that {password_b} holds the password of {a}",
    }
    assert not (tmp_path / "repo").exists()


def test_encrypted_key_without_a_password_and_no_terminal(
    tmp_path: Path, keyring: dict[str, Path]
) -> None:
    a = keyring["a"]
    r = init(tmp_path / "repo", keyring)
    assert r.exit_code == 1
    assert error_of(r) == {
        "code": "key-password",
        "type": "KeyPasswordError",
        "message": f"{a}: the private key is encrypted and there is no terminal to ask",
        "hint": f"pass --key-password {a} SOURCE (env://VAR or a file), or set AOE_PACK_PASSWORD",
    }


def test_key_password_naming_a_key_the_command_was_not_given(
    tmp_path: Path, keyring: dict[str, Path], password_b: Path
) -> None:
    a, b = keyring["a"], keyring["b"]
    r = init(tmp_path / "repo", keyring, "--key-password", b, password_b)
    assert r.exit_code == 2
    assert error_of(r) == {
        "code": "usage",
        "type": "UsageError",
        "message": f"--key-password names {b}, which is not a --sign-key of this command "
        f"(given: {a})",
        "hint": "write KEY exactly as it is given to --sign-key",
    }


def test_key_password_given_twice_for_one_key(
    tmp_path: Path, keyring: dict[str, Path], password_b: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PW_A", "password A")
    a = keyring["a"]
    r = init(
        tmp_path / "repo",
        keyring,
        "--key-password",
        a,
        "env://PW_A",
        "--key-password",
        a,
        password_b,
    )
    assert r.exit_code == 2
    assert error_of(r)["message"] == f"--key-password names {a} twice; give each key one source"


# --- password files ---------------------------------------------------------------------------


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"], ids=["lf", "crlf"])
def test_password_file_drops_one_trailing_newline(tmp_path: Path, newline: bytes) -> None:
    path = tmp_path / "pw"
    path.write_bytes(b"secret" + newline)
    assert read_password(str(path), key="k.key") == b"secret"


def test_password_file_keeps_all_but_the_last_newline(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_bytes(b" secret \n\n")
    assert read_password(str(path), key="k.key") == b" secret \n"


def test_password_file_past_its_cap(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_bytes(b"x" * (MAX_PASSWORD_FILE + 1))
    with pytest.raises(PasswordSourceError) as e:
        read_password(str(path), key="k.key")
    assert e.value.message == (
        f"the password file {path} of k.key holds more than {MAX_PASSWORD_FILE} bytes"
    )


def test_a_password_file_name_with_a_nul_is_refused_by_name() -> None:
    with pytest.raises(PasswordSourceError) as info:
        read_password("/tmp/a\x00b", key="k.key")
    assert info.value.message == (
        "the password file '/tmp/a\\x00b' of k.key has a NUL character in its name"
    )


def test_password_file_holding_only_a_newline(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_bytes(b"\n")
    with pytest.raises(PasswordSourceError) as e:
        read_password(str(path), key="k.key")
    assert e.value.message == f"the password source {path} of k.key is empty"
