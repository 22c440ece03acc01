"""``aoe-pack sign`` as a user meets it: a second approver, exit codes, messages, inspect."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from _cli import NO_PASSWORD, Cli
from _skips import needs_symlinks

from aoe_pack.bundle import EncryptionSpec, build_bundle
from aoe_pack.keys import load_signing_key

aoe = Cli(env=NO_PASSWORD)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``ci`` signs the build, ``review`` co-signs; ``app`` is an encryption key."""
    folder = tmp_path_factory.mktemp("keys")
    for name, kind in (("ci", "ed25519"), ("review", "p256"), ("app", "x25519")):
        aoe("keygen", "--type", kind, "--out", folder / name, json=True).expect()
    return {name: folder / name for name in ("ci", "review", "app")}


def key(keys: dict[str, Path], name: str) -> Path:
    return keys[name].with_suffix(".key")


def pub(keys: dict[str, Path], name: str) -> Path:
    return keys[name].with_suffix(".pub")


@pytest.fixture
def bundle(make_config: Any, keys: dict[str, Path], tmp_path: Path) -> Path:
    """A bundle the CI key signed."""
    out = tmp_path / "model.aoe"
    ci = load_signing_key(str(key(keys, "ci")))
    build_bundle(make_config(), out, signing_keys=[ci], encryption=EncryptionSpec())
    return out


def test_review_cosigns_and_verify_passes_with_threshold_two(
    bundle: Path, keys: dict[str, Path]
) -> None:
    both = ["--trusted-key", pub(keys, "ci"), "--trusted-key", pub(keys, "review")]
    assert aoe("verify", bundle, *both, "--threshold", 2).exit_code == 1
    r = aoe("sign", bundle, "--sign-key", key(keys, "review"), "--trusted-key", pub(keys, "ci"))
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"signed: {bundle} — tag_x 1.0.0\n")
    assert aoe("verify", bundle, *both, "--threshold", 2).exit_code == 0


def test_json_names_the_keys_added_checked_and_signed(bundle: Path, keys: dict[str, Path]) -> None:
    (ci,) = aoe("inspect", bundle, json=True).expect()["signers"]
    doc = aoe(
        "sign", bundle, "--sign-key", key(keys, "review"), "--trusted-key", pub(keys, "ci"),
        json=True,
    ).expect()  # fmt: skip
    (review,) = doc["added"]
    assert doc["trustedSigners"] == [ci]
    assert doc["signers"] == sorted([ci, review])
    assert doc["size"] == bundle.stat().st_size
    assert doc["notes"] == []


def test_inspect_shows_every_signer(bundle: Path, keys: dict[str, Path]) -> None:
    aoe("sign", bundle, "--sign-key", key(keys, "review"), json=True).expect()
    signers = aoe("inspect", bundle, json=True).expect()["signers"]
    assert len(signers) == 2
    text = aoe("inspect", bundle).stdout
    assert [line.split()[1] for line in text.splitlines() if line.startswith("  signer ")] == (
        signers
    )


def test_key_that_signed_already_fails_with_exit_1(bundle: Path, keys: dict[str, Path]) -> None:
    before = bundle.read_bytes()
    r = aoe("sign", bundle, "--sign-key", key(keys, "ci"), json=True)
    error = r.expect(1)["error"]
    assert error["code"] == "already-signed"
    assert "has signed" in error["message"]
    assert bundle.read_bytes() == before


def test_sign_takes_only_the_manifest_that_was_reviewed(
    bundle: Path, make_config: Any, keys: dict[str, Path], tmp_path: Path
) -> None:
    """The digest `inspect` shows the reviewer ties `sign` to what they approved."""
    digest = aoe("inspect", bundle, json=True).expect()["manifestSha256"]
    assert f"  manifest  sha256:{digest}\n" in aoe("inspect", bundle).stdout
    other = tmp_path / "other.aoe"
    ci = load_signing_key(str(key(keys, "ci")))
    build_bundle(
        make_config({"m.bin": b"another"}), other, signing_keys=[ci], encryption=EncryptionSpec()
    )
    before = other.read_bytes()
    review = ["--sign-key", key(keys, "review"), "--expect-manifest-sha256", digest]
    error = aoe("sign", other, *review, json=True).expect(1)["error"]
    assert error["code"] == "manifest-mismatch"
    assert other.read_bytes() == before
    assert aoe("sign", bundle, *review, json=True).expect()["manifestSha256"] == digest


def test_a_malformed_expected_digest_exits_2(bundle: Path, keys: dict[str, Path]) -> None:
    before = bundle.read_bytes()
    r = aoe("sign", bundle, "--sign-key", key(keys, "review"), "--expect-manifest-sha256", "abc")
    assert r.exit_code == 2, r.output
    assert "'--expect-manifest-sha256': must be 64 hex digits (a SHA-256), got 'abc'" in r.stderr
    assert bundle.read_bytes() == before


def test_encryption_key_as_signer_fails_with_exit_1(bundle: Path, keys: dict[str, Path]) -> None:
    r = aoe("sign", bundle, "--sign-key", key(keys, "app"), json=True)
    assert r.expect(1)["error"]["code"] == "key-type"


@needs_symlinks
def test_symlinked_bundle_fails_with_exit_1(
    bundle: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    link = tmp_path / "link.aoe"
    link.symlink_to(bundle)
    r = aoe("sign", link, "--sign-key", key(keys, "review"))
    assert r.exit_code == 1
    assert "is a link; sign rewrites a bundle in place" in r.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sign", "{bundle}"], "Missing option '--sign-key'"),
        (["sign", "{bundle}", "--sign-key", "{review}", "--sign-key", "{review}"], "twice"),
        (["sign", "{bundle}", "--sign-key", "{review}", "--threshold", "2"], "--trusted-key"),
        (["sign", "{missing}", "--sign-key", "{review}"], "does not exist"),
        (["sign", "{bundle}", "--sign-key", "{missing}"], "does not exist"),
    ],
    ids=["no-key", "same-key-twice", "threshold-alone", "no-bundle", "no-key-file"],
)
def test_a_wrong_command_line_exits_2(
    bundle: Path, keys: dict[str, Path], tmp_path: Path, args: list[str], message: str
) -> None:
    names = {"bundle": bundle, "review": key(keys, "review"), "missing": tmp_path / "missing"}
    r = aoe(*(a.format(**names) for a in args))
    assert r.exit_code == 2, r.output
    assert message in r.stderr


def test_password_protected_key_takes_its_own_password(bundle: Path, tmp_path: Path) -> None:
    aoe(
        "keygen", "--out", tmp_path / "sec", json=True, env={"AOE_PACK_PASSWORD": "s3cret"}
    ).expect()
    r = aoe(
        "sign", bundle, "--sign-key", tmp_path / "sec.key",
        "--key-password", tmp_path / "sec.key", "env://SEC_PASSWORD",
        env={"SEC_PASSWORD": "s3cret"},
    )  # fmt: skip
    assert r.exit_code == 0, r.output


def test_help_has_an_example() -> None:
    text = aoe("sign", "--help").stdout
    assert "  Example:\n    aoe-pack sign mnist.aoe --sign-key keys/review.key" in text
    assert "--threshold 2" in text
    assert "sign" in aoe("--help").stdout


@pytest.mark.skipif(not hasattr(os, "link"), reason="no hard links")
def test_bundle_with_two_names_fails_with_exit_1(
    bundle: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    os.link(bundle, tmp_path / "copy.aoe")
    r = aoe("sign", bundle, "--sign-key", key(keys, "review"), json=True)
    assert r.expect(1)["error"]["code"] == "output"
