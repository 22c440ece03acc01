"""Repositories on every backend, and small real bundles to publish into them.

``repo_url`` is parametrised over the three destinations; the S3 and OCI ones
come from real servers (moto in server mode, Debian's docker-registry) that
the fixtures in ``tests/_server_s3.py`` and ``tests/_server_oci.py`` start.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from aoe_pack._crypto import asymmetric as keys
from aoe_pack._crypto.asymmetric import PrivateKey, private_pem
from aoe_pack.bundle import EncryptionSpec, build_bundle
from aoe_pack.config.model import ModelConfig

BACKENDS = ["local", "s3", "oci"]


@pytest.fixture(scope="session")
def repo_key() -> PrivateKey:
    """The manifest and bundle signer of the repositories under test."""
    return keys.generate(keys.KeyKind.ED25519)


@pytest.fixture
def keyfiles(tmp_path: Path, repo_key: PrivateKey) -> tuple[Path, Path]:
    """``repo_key`` as the files the CLI takes: (release.key, release.pub)."""
    key, pub = tmp_path / "release.key", tmp_path / "release.pub"
    key.write_bytes(private_pem(repo_key, None))
    pub.write_bytes(repo_key.public.pem)
    return key, pub


@pytest.fixture(params=BACKENDS)
def repo_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty repository URL on each backend."""
    if request.param == "local":
        return str(tmp_path / "repo")
    fixture = "s3_repo_url" if request.param == "s3" else "oci_repo_url"
    url: str = request.getfixturevalue(fixture)
    return url


BundleFactory = Callable[..., Path]


@pytest.fixture(scope="session")
def bundle_factory(
    tmp_path_factory: pytest.TempPathFactory,
    repo_key: PrivateKey,
    config_writer: Callable[..., ModelConfig],
) -> BundleFactory:
    """``bundle_factory(tag, version)``: a small signed bundle (cached per tag and version)."""
    root = tmp_path_factory.mktemp("bundles")
    cache: dict[tuple[str, str, int], Path] = {}

    def make(tag: str = "tag_m", version: str = "1.0.0", *, salt: int = 0) -> Path:
        key = (tag, version, salt)
        if key not in cache:
            src = root / f"{tag}-{version}-{salt}"
            src.mkdir()
            files = {"model.tflite": os.urandom(2048) + f"{tag} {version} {salt}".encode()}
            config = config_writer(src, files, version=version, tag=tag)
            out = root / f"{tag}-{version}-{salt}.aoe"
            build_bundle(config, out, signing_keys=[repo_key], encryption=EncryptionSpec())
            cache[key] = out
        return cache[key]

    return make
