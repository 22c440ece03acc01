"""``aoe-pack public-key``: the .pub of a signing key, as keygen wrote it.

For a key file it is the file keygen wrote beside it; for a key held in a
token (tests/signers/test_pkcs11.py) it is the only way to get one.
"""

from __future__ import annotations

from pathlib import Path

from _cli import NO_PASSWORD, Cli

aoe = Cli(env=NO_PASSWORD)


def test_the_public_key_of_a_key_file_is_the_pub_keygen_wrote(tmp_path: Path) -> None:
    made = aoe("keygen", "--type", "p256", "--out", tmp_path / "k", json=True).expect()
    doc = aoe("public-key", "--sign-key", tmp_path / "k.key", "--out", tmp_path / "again.pub",
              json=True).expect()  # fmt: skip
    assert (tmp_path / "again.pub").read_bytes() == (tmp_path / "k.pub").read_bytes()
    assert (doc["type"], doc["keyid"], doc["public"]) == ("p256", made["keyid"],
                                                          str(tmp_path / "again.pub"))  # fmt: skip


def test_without_out_the_pem_is_printed_alone(tmp_path: Path) -> None:
    aoe("keygen", "--out", tmp_path / "k", json=True).expect()
    r = aoe("public-key", "--sign-key", tmp_path / "k.key")
    assert r.exit_code == 0, r.output
    assert r.stdout == (tmp_path / "k.pub").read_text()


def test_an_existing_out_file_is_kept_without_force(tmp_path: Path) -> None:
    aoe("keygen", "--out", tmp_path / "k", json=True).expect()
    (tmp_path / "taken.pub").write_text("mine\n")
    r = aoe("public-key", "--sign-key", tmp_path / "k.key", "--out", tmp_path / "taken.pub",
            json=True)  # fmt: skip
    assert r.exit_code == 1
    assert r.doc["error"]["message"] == f"{tmp_path / 'taken.pub'} already exists"
    assert (tmp_path / "taken.pub").read_text() == "mine\n"
    forced = aoe("public-key", "--sign-key", tmp_path / "k.key", "--out", tmp_path / "taken.pub",
                 "--force")  # fmt: skip
    assert forced.exit_code == 0, forced.output
    assert (tmp_path / "taken.pub").read_bytes() == (tmp_path / "k.pub").read_bytes()


def test_an_encryption_key_has_no_signing_public_key_to_give(tmp_path: Path) -> None:
    aoe("keygen", "--type", "x25519", "--out", tmp_path / "d", json=True).expect()
    r = aoe("public-key", "--sign-key", tmp_path / "d.key", json=True)
    assert (r.exit_code, r.doc["error"]["code"]) == (1, "key-type")
