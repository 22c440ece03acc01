"""Generate the delta-update test vectors (docs/format.md §16.8).

    .venv/bin/python tests/vectors/make_delta_vectors.py --update-goldens

The base releases are the committed ``v1-plain.aoe`` and ``v1-x25519.aoe``
(version 1.0.0). The targets and deltas are written to ``delta/``. The
targets, version 1.1.0, change what a head-only fine-tune changes: the last
64 KiB of ``model.tflite`` are drawn anew (SHAKE256 of ``SEED + "head 1.1.0"``)
and ``labels.txt`` gains a line; ``assets/empty.bin`` stays.

``delta.json`` records, per delta, its size and SHA-256, the base and target
bundles' SHA-256, every target file's digest and how it is made, the patches'
sizes, and for the encrypted one the data key and nonce prefixes. Every key
is TEST-ONLY (README.md). ``v1-delta.aoed`` (unencrypted) is reproducible
with the same zstd; the encrypted one draws nonce prefixes.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from aoe_pack.bundle import EncryptionSpec, build_bundle
from aoe_pack.bundle.delta import make_delta, open_delta
from aoe_pack.bundle.verify import unwrap_data_key
from aoe_pack.config.model import ModelConfig
from aoe_pack.keys import load_public_key

HERE = Path(__file__).resolve().parent
OUT = HERE / "delta"


def _make_vectors() -> Any:
    spec = importlib.util.spec_from_file_location("make_vectors", HERE / "make_vectors.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_vectors", module)
    spec.loader.exec_module(module)
    return module


mv = _make_vectors()
TARGET_VERSION = "1.1.0"
HEAD = 1 << 16
DELTAS = {
    # delta: (base bundle, target bundle, HPKE recipients of the target)
    "v1-delta.aoed": ("v1-plain.aoe", "v1-delta-target.aoe", ()),
    "v1-delta-x25519.aoed": ("v1-x25519.aoe", "v1-delta-x25519-target.aoe", ("x25519",)),
}


def target_files() -> dict[str, bytes]:
    base = mv.payload_files()
    model = base["model.tflite"]
    head = hashlib.shake_256(mv.SEED + b"head " + TARGET_VERSION.encode()).digest(HEAD)
    return {
        "model.tflite": model[:-HEAD] + head,
        "labels.txt": base["labels.txt"] + b"bird\n",
        "assets/empty.bin": b"",
    }


def _target_config(root: Path, *, encrypt: bool) -> ModelConfig:
    config: ModelConfig = mv.write_config(root, encrypt=encrypt)
    for rel, data in target_files().items():
        (root / "model" / rel).write_bytes(data)
    return replace(
        config,
        version=TARGET_VERSION,
        canonical={**config.canonical, "version": TARGET_VERSION},
    )


def build_target(name: str, out: Path, vectors: Path = HERE) -> None:
    """Build the target bundle ``name`` at ``out`` with the committed test-only keys."""
    _, _, hpke = next(v for v in DELTAS.values() if v[1] == name)
    spec = EncryptionSpec(
        recipients=[load_public_key(str(mv.key_path(k, "pub", vectors))) for k in hpke]
    )
    with tempfile.TemporaryDirectory() as tmp, mv.pinned_build():
        config = _target_config(Path(tmp), encrypt=spec.enabled)
        build_bundle(config, out, signing_keys=mv.signing_keys(vectors), encryption=spec)


def build_delta(name: str, out: Path, vectors: Path = HERE) -> None:
    """Make the delta ``name`` at ``out`` from the committed base and target bundles."""
    base, target, hpke = DELTAS[name]
    trusted = [load_public_key(str(mv.key_path(k, "pub", vectors))) for k in mv.SIGNERS]
    with mv.pinned_build():
        make_delta(
            vectors / base,
            vectors / "delta" / target,
            out,
            trusted_keys=trusted,
            signing_keys=mv.signing_keys(vectors),
            decryption_key=mv.decryption_key(hpke[0], vectors) if hpke else None,
        )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def expected(vectors: Path = HERE) -> dict[str, Any]:
    trusted = [load_public_key(str(mv.key_path(k, "pub", vectors))) for k in mv.SIGNERS]
    out: dict[str, Any] = {}
    for name, (base, target, hpke) in DELTAS.items():
        path = vectors / "delta" / name
        with open_delta(path, trusted_keys=trusted, threshold=2) as (_, m):
            doc: dict[str, Any] = {
                "size": path.stat().st_size,
                "sha256": _sha256(path),
                "base": {"bundle": base, "version": m.base_version, "bundleSha256": _sha256(
                    vectors / base)},
                "target": {
                    "bundle": target,
                    "version": m.model.version,
                    "bundleSha256": _sha256(vectors / "delta" / target),
                    "files": [t.to_dict() for t in m.target_files],
                },
                "patches": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in m.files],
            }  # fmt: skip
            if m.encryption is not None:
                key = mv.decryption_key(hpke[0], vectors)
                doc["dataKeyHex"] = unwrap_data_key(m.encryption, m.model, key).hex()
                doc["noncePrefixes"] = {f.path: f.nonce_prefix for f in m.files}
        out[name] = doc
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update-goldens", action="store_true", help="rewrite the vectors")
    args = parser.parse_args(argv)
    if not args.update_goldens:
        parser.error("pass --update-goldens to rewrite the committed delta vectors")
    OUT.mkdir(exist_ok=True)
    for _, target, _ in DELTAS.values():
        build_target(target, OUT / target)
    for name in DELTAS:
        build_delta(name, OUT / name)
    (OUT / "delta.json").write_text(json.dumps(expected(), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
