"""Exhaustive single-byte tamper sweep: every byte of a bundle matters.

For a small bundle, each byte in turn is xor-ed with a mask and the result
must fail verification with an :class:`AoePackError` (never pass, never crash
with another exception). All undetected positions are collected so that a
failure shows every one of them, named by region.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from _tamper import decryption_key, flip, locate

from aoe_pack._crypto.asymmetric import PrivateKey
from aoe_pack.bundle import verify_bundle
from aoe_pack.bundle.container import read_layout
from aoe_pack.bundle.format import MANIFEST_ENTRY
from aoe_pack.errors import AoePackError
from aoe_pack.keys.load import DecryptionKey

SMALL_FILES = {
    "model.tflite": bytes(range(100)),
    "labels.txt": b"zero\none\ntwo\n",
}
MASKS = pytest.mark.parametrize("mask", [0x01, 0x80], ids=["xor01", "xor80"])

Check = Callable[[Path], object]


def sweep(bundle: Path, check: Check, mask: int = 0x01) -> list[str]:
    """Flip every byte of ``bundle`` in turn; describe the flips ``check`` did not reject."""
    original = bundle.read_bytes()
    regions = locate(original)
    check(bundle)  # the untouched bundle passes
    tampered = bundle.with_name("tampered.aoe")
    problems = []
    for offset in range(len(original)):
        tampered.write_bytes(flip(original, offset, mask))
        try:
            check(tampered)
        except AoePackError:
            continue
        except Exception as e:  # noqa: BLE001 - any other exception is a finding to report
            problems.append(f"{regions.describe(offset)}: crashed with {e!r}")
        else:
            problems.append(f"{regions.describe(offset)}: verified")
    return problems


def verifier(
    trusted: Sequence[PrivateKey], *, threshold: int = 1, key: DecryptionKey | None = None
) -> Check:
    def check(path: Path) -> object:
        return verify_bundle(
            path,
            trusted_keys=[k.public for k in trusted],
            threshold=threshold,
            decryption_key=key,
        )

    return check


def test_sweep_reports_what_a_weak_check_misses(built_bundle) -> None:
    """The harness itself: a check that reads only the ZIP headers misses the manifest bytes."""
    bundle = built_bundle(SMALL_FILES)

    def headers_only(path: Path) -> object:
        with path.open("rb") as fp:
            return read_layout(fp, file_size=path.stat().st_size)

    missed = sweep(bundle, headers_only)
    manifest = locate(bundle.read_bytes())[MANIFEST_ENTRY].data
    assert len(missed) >= len(manifest)
    assert f"{manifest.start} ('{MANIFEST_ENTRY}' data +0): verified" in missed


@MASKS
def test_every_byte_flip_is_detected_unencrypted(
    built_bundle, signer: PrivateKey, mask: int
) -> None:
    bundle = built_bundle(SMALL_FILES)
    assert sweep(bundle, verifier([signer]), mask) == []


@MASKS
def test_every_byte_flip_is_detected_with_two_signers(
    built_bundle, signer: PrivateKey, signer2: PrivateKey, mask: int
) -> None:
    bundle = built_bundle(SMALL_FILES, signers=[signer, signer2])
    assert sweep(bundle, verifier([signer, signer2], threshold=2), mask) == []


@pytest.mark.slow
@MASKS
def test_every_byte_flip_is_detected_encrypted(
    built_bundle, signer: PrivateKey, x25519_key: PrivateKey, kek: bytes, mask: int
) -> None:
    bundle = built_bundle(SMALL_FILES, recipients=[x25519_key.public], keks=[kek])
    assert sweep(bundle, verifier([signer], key=decryption_key(x25519_key)), mask) == []


@pytest.mark.slow
def test_every_byte_flip_is_detected_encrypted_without_key(
    built_bundle, signer: PrivateKey, x25519_key: PrivateKey
) -> None:
    bundle = built_bundle(SMALL_FILES, recipients=[x25519_key.public])
    assert sweep(bundle, verifier([signer])) == []
