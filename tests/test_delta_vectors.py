"""The committed delta vectors (docs/format.md §16.8) verify and apply as recorded."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from _modules import load_module

from aoe_pack.bundle.delta import apply_delta, open_delta
from aoe_pack.bundle.unpack import unpack_bundle
from aoe_pack.bundle.verify import open_bundle
from aoe_pack.keys import load_public_key

VECTORS = Path(__file__).parent / "vectors"
DELTA = VECTORS / "delta"


mdv = load_module("make_delta_vectors", VECTORS / "make_delta_vectors.py")
mv = mdv.mv
EXPECTED: dict[str, Any] = json.loads((DELTA / "delta.json").read_text())


def _trusted() -> list[Any]:
    return [load_public_key(str(mv.key_path(k, "pub", VECTORS))) for k in mv.SIGNERS]


def _key(name: str) -> Any:
    hpke = mdv.DELTAS[name][2]
    return mv.decryption_key(hpke[0], VECTORS) if hpke else None


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file()
    }


@pytest.mark.parametrize("name", sorted(mdv.DELTAS))
def test_delta_vector_is_the_file_recorded(name: str) -> None:
    path = DELTA / name
    assert path.stat().st_size == EXPECTED[name]["size"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == EXPECTED[name]["sha256"]
    for role in ("base", "target"):
        bundle = (VECTORS if role == "base" else DELTA) / EXPECTED[name][role]["bundle"]
        assert (
            hashlib.sha256(bundle.read_bytes()).hexdigest() == EXPECTED[name][role]["bundleSha256"]
        )


@pytest.mark.parametrize("name", sorted(mdv.DELTAS))
def test_delta_vector_turns_the_base_into_the_target(name: str, tmp_path: Path) -> None:
    base, target, _ = mdv.DELTAS[name]
    key = _key(name)
    unpack_bundle(VECTORS / base, tmp_path / "base", trusted_keys=_trusted(), threshold=2,
                  decryption_key=key)  # fmt: skip
    unpack_bundle(DELTA / target, tmp_path / "want", trusted_keys=_trusted(), threshold=2,
                  decryption_key=key)  # fmt: skip
    (tmp_path / "got").mkdir()
    apply_delta(
        DELTA / name, tmp_path / "base", tmp_path / "got", tag=mv.TAG,
        version=mdv.TARGET_VERSION, trusted_keys=_trusted(), threshold=2, decryption_key=key,
    )  # fmt: skip
    got = _digests(tmp_path / "got")
    assert got == _digests(tmp_path / "want")
    assert got == {f["path"]: f["sha256"] for f in EXPECTED[name]["target"]["files"]}


def test_encrypted_delta_vector_is_encrypted_to_the_target_recipients() -> None:
    with open_delta(DELTA / "v1-delta-x25519.aoed", trusted_keys=_trusted(), threshold=2) as (
        _,
        m,
    ):
        delta_enc = m.encryption
    with open_bundle(DELTA / "v1-delta-x25519-target.aoe") as b:
        target_enc = b.parse_manifest().encryption
    assert delta_enc == target_enc


def test_unencrypted_delta_vector_is_rebuilt_byte_for_byte(tmp_path: Path) -> None:
    out = tmp_path / "v1-delta.aoed"
    mdv.build_delta("v1-delta.aoed", out, VECTORS)
    assert out.read_bytes() == (DELTA / "v1-delta.aoed").read_bytes(), (
        "the delta writer or zstd changed; if intended, run "
        "tests/vectors/make_delta_vectors.py --update-goldens"
    )
