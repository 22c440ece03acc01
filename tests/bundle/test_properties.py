"""Property: whatever the file set, sizes, encryption and signers, build -> verify -> unpack
gives back exactly the bytes that went in.

Sizes cluster on the segment and chunk boundaries (a segment holds
``CHUNK_SIZE - 16`` plaintext bytes; an integrity chunk is ``CHUNK_SIZE``
stored bytes), where off-by-one errors live.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from _tamper import decryption_key
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from aoe_pack._crypto.keys import PrivateKey
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

sizes = st.one_of(st.sampled_from(BOUNDARY_SIZES), st.integers(min_value=0, max_value=300))
segment = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=8)
paths = st.lists(segment, min_size=1, max_size=3).map("/".join)


def _no_file_is_a_folder(names: list[str]) -> bool:
    """``a`` and ``a/b`` cannot both be files."""
    return not any(b.startswith(a + "/") for a in names for b in names)


file_sets = st.lists(paths, min_size=1, max_size=4, unique=True).filter(_no_file_is_a_folder)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    names=file_sets,
    data=st.data(),
    encryption=st.sampled_from(["none", "x25519", "kek", "both"]),
    two_signers=st.booleans(),
)
def test_build_verify_unpack_round_trip(
    signer: PrivateKey,
    signer2: PrivateKey,
    x25519_key: PrivateKey,
    kek: bytes,
    config_writer: Callable[..., ModelConfig],
    names: list[str],
    data: st.DataObject,
    encryption: str,
    two_signers: bool,
) -> None:
    files = {name: os.urandom(data.draw(sizes, label=f"size of {name}")) for name in names}
    event(f"encryption: {encryption}")
    event(f"multi-segment file: {any(len(b) > SEGMENT for b in files.values())}")
    signers = [signer, signer2] if two_signers else [signer]
    spec = EncryptionSpec(
        recipients=[x25519_key.public] if encryption in ("x25519", "both") else [],
        keks=[kek] if encryption in ("kek", "both") else [],
    )
    # A key given for an unencrypted bundle is refused (format §8 step 9): give none then.
    key = decryption_key(kek if encryption == "kek" else x25519_key) if spec.enabled else None
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = config_writer(root / "src", files)
        bundle = root / "model.aoe"
        built = build_bundle(config, bundle, signing_keys=signers, encryption=spec)
        assert [f.path for f in built.manifest.files] == sorted(files)

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
