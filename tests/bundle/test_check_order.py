"""Which error wins when two things are wrong at once (docs/format.md §8).

A threshold that no set of trusted keys can meet is the caller's mistake and
is reported before the file is read, by the library and the command line
alike: a device that checked the file first would report a broken bundle for
what is a broken configuration.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _cli import aoe

from aoe_pack._crypto.asymmetric import PrivateKey
from aoe_pack.bundle import unpack_bundle, verify_bundle
from aoe_pack.errors import BundleMismatchError, UsageError
from aoe_pack.keys import load_public_key


@pytest.fixture
def truncated(built_bundle) -> Path:
    """A bundle cut short by one byte: `zip-structure` for any verifier that reads it."""
    path: Path = built_bundle()
    path.write_bytes(path.read_bytes()[:-1])
    return path


@pytest.mark.parametrize(
    ("threshold", "match"),
    [(0, r"^--threshold must be at least 1$"), (2, r"^--threshold 2 exceeds the 1 distinct")],
    ids=["zero", "above-the-keys"],
)
def test_threshold_error_wins_over_a_broken_bundle(
    truncated: Path, signer: PrivateKey, tmp_path: Path, threshold: int, match: str
) -> None:
    with pytest.raises(UsageError, match=match):
        verify_bundle(truncated, trusted_keys=[signer.public], threshold=threshold)
    with pytest.raises(UsageError, match=match):
        unpack_bundle(
            truncated, tmp_path / "out", trusted_keys=[signer.public], threshold=threshold
        )
    assert not (tmp_path / "out").exists()


def test_threshold_error_wins_over_a_missing_bundle(signer: PrivateKey, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"exceeds the 1 distinct trusted key"):
        verify_bundle(tmp_path / "absent.aoe", trusted_keys=[signer.public], threshold=2)


def test_same_key_twice_counts_once_before_the_file(truncated: Path, signer: PrivateKey) -> None:
    with pytest.raises(UsageError, match=r"^--threshold 2 exceeds the 1 distinct"):
        verify_bundle(truncated, trusted_keys=[signer.public, signer.public], threshold=2)


@pytest.mark.parametrize("command", ["verify", "unpack"])
@pytest.mark.parametrize("threshold", ["0", "2"], ids=["zero", "above-the-keys"])
def test_cli_reports_the_threshold_before_the_broken_bundle(
    truncated: Path, signer: PrivateKey, tmp_path: Path, command: str, threshold: str
) -> None:
    pub = tmp_path / "signer.pub"
    pub.write_bytes(signer.public.pem)
    out = ["--out", str(tmp_path / "out")] if command == "unpack" else []
    args = [command, str(truncated), *out, "--trusted-key", str(pub), "--threshold", threshold]
    r = aoe(*args, json=True)
    assert r.exit_code == 2, r.output
    if threshold == "2":  # click refuses 0 itself, before --json output exists
        assert json.loads(r.stdout)["error"]["code"] == "usage"


_VECTORS = Path(__file__).resolve().parents[1] / "vectors"


@pytest.mark.parametrize("expect", [("aoe-pack.test-vectors", "1.0.1"), ("other.model", "1.0.0")])
def test_a_bundle_listed_as_another_model_is_refused_before_decrypting(
    tmp_path: Path, expect: tuple[str, str]
) -> None:
    """No key is given: decrypting would be a decryption error, so the mismatch came first."""
    keys = [load_public_key(str(_VECTORS / f"test-only-{k}.pub")) for k in ("ed25519", "p256")]
    with pytest.raises(BundleMismatchError) as caught:
        unpack_bundle(
            _VECTORS / "v1-x25519.aoe", tmp_path / "out", trusted_keys=keys, expect=expect
        )
    assert caught.value.message == (
        f"the bundle says it is aoe-pack.test-vectors 1.0.0, the manifest {expect[0]} {expect[1]}"
    )
    assert caught.value.code == "bundle-mismatch"
    assert not (tmp_path / "out").exists()
