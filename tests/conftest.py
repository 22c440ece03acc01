"""Shared fixtures: keys made at test time, model configs and built bundles.

Every key these fixtures hand out is generated when the session starts; the
only committed keys are the public, test-only ones of tests/vectors/. Key
fixtures are session-scoped so that hypothesis tests (which may not use
function-scoped fixtures) can share them.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import pytest

from aoe_pack._crypto import asymmetric as keys
from aoe_pack._crypto.asymmetric import PrivateKey, PublicKey
from aoe_pack.bundle import EncryptionSpec, build_bundle
from aoe_pack.config.model import ModelConfig, ModelFile

# Real servers for the repository tests, each started by its own fixture.
pytest_plugins = ["_server_oci", "_server_s3", "_server_http", "_server_nginx"]

DEFAULT_FILES: Mapping[str, bytes] = {
    "model.tflite": bytes(range(256)) * 4 + b"model",
    "labels.txt": b"cat\ndog\nbird\n",
}


def _role(path: str, model_name: str) -> str:
    if path == model_name:
        return "model"
    return "labels" if path.endswith(".txt") else "asset"


def write_config(
    root: Path,
    files: Mapping[str, bytes],
    *,
    version: str = "1.0.0",
    tag: str = "tag_x",
    model_name: str | None = None,
    update_url: str | None = None,
) -> ModelConfig:
    """Write ``files`` under ``root/m`` and return a config that packs them all.

    The model is ``model_name``, else ``model.tflite`` if present, else the
    first file given.
    """
    if model_name is None:
        model_name = "model.tflite" if "model.tflite" in files else next(iter(files))
    for rel, data in files.items():
        dest = root / "m" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
    ordered = sorted(files, key=lambda p: p != model_name)  # the model first
    return ModelConfig(
        source_path=root / "config.json",
        version=version,
        tag=tag,
        runtime="tflite",
        source="installed",
        model_dir="m",
        model_name=model_name,
        update_url=update_url,
        files=tuple(ModelFile(path=p, role=_role(p, model_name)) for p in ordered),
        canonical={"tag": tag, "version": version, "modelName": model_name}
        | ({"updateURL": update_url} if update_url else {}),
    )


@pytest.fixture(autouse=True, scope="session")
def _state_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Devices and publishers keep state under XDG_STATE_HOME: the session's, not the user's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
        yield


# --- keys -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def signer() -> PrivateKey:
    """The usual bundle signer (Ed25519)."""
    return keys.generate(keys.KeyKind.ED25519)


@pytest.fixture(scope="session")
def signer2() -> PrivateKey:
    """A second, independent signer (ECDSA P-256)."""
    return keys.generate(keys.KeyKind.P256)


@pytest.fixture(scope="session")
def x25519_key() -> PrivateKey:
    return keys.generate(keys.KeyKind.X25519)


@pytest.fixture(scope="session")
def p256_kem_key() -> PrivateKey:
    return keys.generate(keys.KeyKind.P256_KEM)


@pytest.fixture(scope="session")
def mlkem_key() -> PrivateKey:
    return keys.generate(keys.KeyKind.MLKEM768_X25519)


@pytest.fixture(scope="session")
def kek() -> bytes:
    """A symmetric key-encryption key (the AoE-style app-embedded key)."""
    return os.urandom(32)


@pytest.fixture(scope="session")
def recipients(
    x25519_key: PrivateKey, p256_kem_key: PrivateKey, mlkem_key: PrivateKey
) -> dict[str, PrivateKey]:
    """Every HPKE recipient key type, by ``keygen --type`` name."""
    return {"x25519": x25519_key, "p256-kem": p256_kem_key, "mlkem768-x25519": mlkem_key}


# --- configs and bundles --------------------------------------------------------------


class MakeConfig(Protocol):
    def __call__(
        self,
        files: Mapping[str, bytes] = ...,
        *,
        version: str = ...,
        tag: str = ...,
        model_name: str | None = ...,
        update_url: str | None = ...,
    ) -> ModelConfig: ...


class BuiltBundle(Protocol):
    def __call__(
        self,
        files: Mapping[str, bytes] = ...,
        *,
        signers: Sequence[PrivateKey] | None = ...,
        recipients: Sequence[PublicKey] = ...,
        keks: Sequence[bytes] = ...,
        version: str = ...,
        tag: str = ...,
        name: str = ...,
        update_url: str | None = ...,
    ) -> Path: ...


@pytest.fixture
def make_config(tmp_path: Path) -> MakeConfig:
    """``make_config({"model.tflite": b"...", "labels.txt": b"..."})`` -> ModelConfig.

    Every call writes its files into a fresh folder under ``tmp_path``.
    """
    counter = itertools.count()

    def make(
        files: Mapping[str, bytes] = DEFAULT_FILES,
        *,
        version: str = "1.0.0",
        tag: str = "tag_x",
        model_name: str | None = None,
        update_url: str | None = None,
    ) -> ModelConfig:
        root = tmp_path / f"src{next(counter)}"
        root.mkdir()
        return write_config(
            root, files, version=version, tag=tag, model_name=model_name, update_url=update_url
        )

    return make


@pytest.fixture
def built_bundle(tmp_path: Path, make_config: MakeConfig, signer: PrivateKey) -> BuiltBundle:
    """Build a bundle and return its path.

    ``built_bundle()`` is a small unencrypted bundle signed by ``signer``;
    ``recipients=[...]`` / ``keks=[...]`` encrypt it, ``signers=[...]`` sign it
    with other keys.
    """
    counter = itertools.count()

    def build(
        files: Mapping[str, bytes] = DEFAULT_FILES,
        *,
        signers: Sequence[PrivateKey] | None = None,
        recipients: Sequence[PublicKey] = (),
        keks: Sequence[bytes] = (),
        version: str = "1.0.0",
        tag: str = "tag_x",
        name: str = "",
        update_url: str | None = None,
    ) -> Path:
        config = make_config(files, version=version, tag=tag, update_url=update_url)
        out = tmp_path / (name or f"bundle{next(counter)}.aoe")
        build_bundle(
            config,
            out,
            signing_keys=list(signers or [signer]),
            encryption=EncryptionSpec(recipients=list(recipients), keks=list(keks)),
        )
        return out

    return build


@pytest.fixture(scope="session")
def config_writer() -> Callable[..., ModelConfig]:
    """:func:`write_config` for tests that manage their own folders (hypothesis)."""
    return write_config


def top_modules_imported_by(argv: Sequence[str]) -> tuple[object, set[str]]:
    """Run ``aoe-pack ARGV`` in a fresh interpreter: its exit code and the
    top-level packages it imported (the light-install tests check these)."""
    probe = (
        "import sys, json\n"
        "from aoe_pack.cli import cli\n"
        "try:\n"
        f"    cli({list(argv)!r})\n"
        "except SystemExit as e:\n"
        "    code = e.code\n"
        "print(json.dumps({'code': code, 'modules': sorted(sys.modules)}))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    return doc["code"], {m.split(".")[0] for m in doc["modules"]}


@pytest.fixture(scope="session")
def modules_imported_by() -> Callable[[Sequence[str]], tuple[object, set[str]]]:
    """:func:`top_modules_imported_by`, as a fixture for tests in any folder."""
    return top_modules_imported_by
