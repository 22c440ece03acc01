"""Keys made at test time, and the mnist sample packed as it is, for the interop tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from _interop import REPO, Keys, aoe

from aoe_pack._crypto import asymmetric as _keys


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    folder = tmp_path_factory.mktemp("keys")
    for name, kind in (
        ("p256", _keys.KeyKind.P256),
        ("stranger", _keys.KeyKind.P256),
        ("ed25519", _keys.KeyKind.ED25519),
        ("device", _keys.KeyKind.X25519),
    ):
        key = _keys.generate(kind)
        (folder / f"{name}.key").write_bytes(_keys.private_pem(key, None))
        (folder / f"{name}.pub").write_bytes(key.public.pem)
    return Keys(folder)


@pytest.fixture(scope="session")
def mnist_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The mnist sample as it is (its .tflite and labels, no conversion): fast."""
    folder = tmp_path_factory.mktemp("mnist")
    for name in ("mnist.tflite", "labels.txt"):
        shutil.copy(REPO / "sample_models" / "mnist" / name, folder / name)
    doc = json.loads((REPO / "sample_models" / "mnist" / "config.json").read_text())
    doc.pop("targets")
    doc["modelName"] = "mnist.tflite"
    (folder / "config.json").write_text(json.dumps(doc, indent=2))
    return folder / "config.json"


@pytest.fixture(scope="session")
def p256_bundle(tmp_path_factory: pytest.TempPathFactory, keys: Keys, mnist_config: Path) -> Path:
    """mnist, signed by the P-256 key and encrypted for the device key."""
    out = tmp_path_factory.mktemp("bundles") / "mnist.aoe"
    args = ("--sign-key", keys.key("p256"), "--recipient", keys.pub("device"))
    aoe("build", mnist_config, "--out", out, *args, json=True).expect()
    return out


@pytest.fixture(scope="session")
def ed25519_bundle(
    tmp_path_factory: pytest.TempPathFactory, keys: Keys, mnist_config: Path
) -> Path:
    """mnist, unencrypted, signed by the Ed25519 key."""
    out = tmp_path_factory.mktemp("bundles") / "mnist-ed25519.aoe"
    args = ("--sign-key", keys.key("ed25519"), "--no-encrypt")
    aoe("build", mnist_config, "--out", out, *args, json=True).expect()
    return out
