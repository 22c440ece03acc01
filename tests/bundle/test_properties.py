"""Property: whatever the file set, sizes, contents, recipients and signers, build -> verify ->
unpack gives back exactly the bytes that went in.

Sizes cluster on the segment and chunk boundaries (a segment holds
``CHUNK_SIZE - 16`` plaintext bytes; an integrity chunk is ``CHUNK_SIZE``
stored bytes), where off-by-one errors live.

Every input comes from Hypothesis, so a failure replays and shrinks: small
files are drawn byte by byte, and a file past ``DRAWN_BYTES`` is the SHAKE256
expansion of a drawn seed (Hypothesis cannot draw megabytes, and a repeating
pattern could hide segments swapped in the stream). The run is derandomized and
keeps no example database, so CI runs the same examples every time; the
explicit examples put every recipient kind in every run.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from _tamper import decryption_key
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from aoe_pack._crypto.asymmetric import PrivateKey
from aoe_pack.bundle import EncryptionSpec, build_bundle, unpack_bundle, verify_bundle
from aoe_pack.bundle.format import CHUNK_SIZE
from aoe_pack.config.model import ModelConfig

SEGMENT = CHUNK_SIZE - 16
BOUNDARY_SIZES = (
    0, 1, 15, 16, 17,
    SEGMENT - 1, SEGMENT, SEGMENT + 1,
    CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1,
    2 * SEGMENT,
)  # fmt: skip
DRAWN_BYTES = 512
# "none" encrypts nothing; the others are the kinds a bundle can be encrypted to.
HPKE_KINDS = ("x25519", "p256-kem", "mlkem768-x25519")
RECIPIENT_KINDS = ("kek", *HPKE_KINDS)
DECRYPT_WITH = ("none", *RECIPIENT_KINDS)

sizes = st.one_of(st.sampled_from(BOUNDARY_SIZES), st.integers(min_value=0, max_value=300))
segment = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=8)
paths = st.lists(segment, min_size=1, max_size=3).map("/".join)


def _expand(seed: bytes, size: int) -> bytes:
    return hashlib.shake_256(seed).digest(size)


def contents(size: int) -> st.SearchStrategy[bytes]:
    if size <= DRAWN_BYTES:
        return st.binary(min_size=size, max_size=size)
    return st.binary(min_size=16, max_size=16).map(lambda seed: _expand(seed, size))


def _no_file_is_a_folder(names: list[str]) -> bool:
    """``a`` and ``a/b`` cannot both be files."""
    return not any(b.startswith(a + "/") for a in names for b in names)


names = st.lists(paths, min_size=1, max_size=4, unique=True).filter(_no_file_is_a_folder)


@st.composite
def file_sets(draw: st.DrawFn) -> dict[str, bytes]:
    return {name: draw(sizes.flatmap(contents), label=name) for name in draw(names)}


# Every kind as the key that decrypts, one with a second, multi-segment file and
# all the other recipients beside it.
EXAMPLES = [({"m.bin": b"", "a/b.txt": b"\x00\xff"}, kind, (), False) for kind in DECRYPT_WITH] + [
    (
        {"m.bin": b"model", "w.bin": _expand(b"seed", SEGMENT + 1)},
        kind,
        tuple(k for k in RECIPIENT_KINDS if k != kind),
        True,
    )
    for kind in RECIPIENT_KINDS
]


def _with_examples(test: Callable[..., None]) -> Callable[..., None]:
    for files, kind, others, two in reversed(EXAMPLES):
        test = example(files=files, decrypt_with=kind, others=others, two_signers=two)(test)
    return test


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    files=file_sets(),
    decrypt_with=st.sampled_from(DECRYPT_WITH),
    others=st.lists(st.sampled_from(RECIPIENT_KINDS), unique=True, max_size=2).map(tuple),
    two_signers=st.booleans(),
)
@_with_examples
def test_build_verify_unpack_round_trip(
    signer: PrivateKey,
    signer2: PrivateKey,
    recipients: Mapping[str, PrivateKey],
    kek: bytes,
    config_writer: Callable[..., ModelConfig],
    files: dict[str, bytes],
    decrypt_with: str,
    others: Sequence[str],
    two_signers: bool,
) -> None:
    kinds = set() if decrypt_with == "none" else {decrypt_with, *others}
    event(f"decrypt with: {decrypt_with}")
    event(f"recipients: {len(kinds)}")
    event(f"multi-segment file: {any(len(b) > SEGMENT for b in files.values())}")
    signers = [signer, signer2] if two_signers else [signer]
    spec = EncryptionSpec(
        recipients=[recipients[k].public for k in HPKE_KINDS if k in kinds],
        keks=[kek] if "kek" in kinds else [],
    )
    key = None
    if decrypt_with != "none":
        key = decryption_key(kek if decrypt_with == "kek" else recipients[decrypt_with])
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = config_writer(root / "src", files)
        bundle = root / "model.aoe"
        built = build_bundle(config, bundle, signing_keys=signers, encryption=spec)
        assert [f.path for f in built.manifest.files] == sorted(files)
        recipient_count = (
            len(built.manifest.encryption.recipients) if built.manifest.encryption else 0
        )
        assert recipient_count == len(kinds)

        trusted = [s.public for s in signers]
        threshold = len(signers)
        plain_check = verify_bundle(bundle, trusted_keys=trusted, threshold=threshold)
        assert not plain_check.decrypted
        full = verify_bundle(bundle, trusted_keys=trusted, threshold=threshold, decryption_key=key)
        assert full.decrypted == spec.enabled
        assert {f.path: f.size for f in full.manifest.files} == {
            k: len(v) for k, v in files.items()
        }

        out = root / "out"
        unpack_bundle(bundle, out, trusted_keys=trusted, threshold=threshold, decryption_key=key)
        unpacked = {
            p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()
        }
        assert unpacked == files
