"""What the KMS tests share: moto's KMS as a test drives it, key export, configs.

Used by tests/signers and by tests/test_ci_recipe.py (docs/ci.md's set-up).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass(frozen=True)
class MotoKms:
    """moto's KMS, and a client of the test's own to make keys in it."""

    endpoint: str
    client: Any

    def create_key(
        self, spec: str = "ECC_NIST_P256", usage: str = "SIGN_VERIFY", *, alias: str | None = None
    ) -> Any:
        """A new key under ``alias`` (default: a fresh one): its metadata, with ``Alias`` and
        ``AliasArn`` added."""
        meta = self.client.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]
        alias = alias or f"alias/aoe-test-{uuid.uuid4().hex[:12]}"
        self.client.create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
        return {**meta, "Alias": alias, "AliasArn": meta["Arn"].split(":key/")[0] + ":" + alias}

    def public_der(self, key_id: str) -> bytes:
        der: bytes = self.client.get_public_key(KeyId=key_id)["PublicKey"]
        return der


def pem_from_der(der: bytes, out: Path) -> Path:
    """What docs/keys.md tells users: ``openssl pkey -pubin -inform DER`` of GetPublicKey's DER."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is not installed; docs/keys.md exports KMS public keys with it")
    der_file = out.with_suffix(".der")
    der_file.write_bytes(der)
    subprocess.run(
        ["openssl", "pkey", "-pubin", "-inform", "DER", "-in", der_file, "-out", out], check=True
    )
    return out


def mnist_version(config: Path, version: str, tmp_path: Path) -> Path:
    """A copy of the ``mnist_config`` folder at another version."""
    folder = tmp_path / f"mnist-{version}"
    shutil.copytree(config.parent, folder)
    doc = json.loads((folder / "config.json").read_text())
    doc["version"] = version
    (folder / "config.json").write_text(json.dumps(doc))
    return folder / "config.json"
