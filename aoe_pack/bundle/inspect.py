"""Describe a bundle without any key (nothing in the output is verified)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aoe_pack.bundle import signatures
from aoe_pack.bundle.format import DEFAULT_LIMITS, Limits
from aoe_pack.bundle.manifest import BundleManifest
from aoe_pack.bundle.verify import open_bundle


@dataclass(frozen=True, kw_only=True)
class InspectResult:
    """Identity, files, signers, recipients and provenance, as the bundle claims them."""

    path: Path
    size: int
    media_type: str
    manifest: BundleManifest
    manifest_sha256: str
    """SHA-256 (hex) of the manifest's bytes: the bundle's identity, which every
    signature covers (compare it with ``aoe-pack sign --expect-manifest-sha256``)."""
    signer_keyids: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "bundle": str(self.path),
            "verified": False,
            "size": self.size,
            "mediaType": self.media_type,
            "format": m.format.value,
            "model": m.model.to_dict(),
            "manifestSha256": self.manifest_sha256,
            "files": [
                {
                    "path": f.path,
                    "role": f.role,
                    "runtime": f.runtime,
                    "variant": f.variant,
                    "size": f.size,
                    "storedSize": f.stored.size,
                    "sha256": f.sha256,
                    "encrypted": f.encrypted,
                }
                for f in m.files
            ],
            "signers": list(self.signer_keyids),
            "encryption": m.encryption.to_dict() if m.encryption else None,
            "provenance": dict(m.provenance),
            "config": dict(m.config),
            "sourceDateEpoch": m.source_date_epoch,
        }


def inspect_bundle(path: Path, *, limits: Limits = DEFAULT_LIMITS) -> InspectResult:
    """Read what a bundle says about itself. Use ``verify`` before trusting any of it."""
    with open_bundle(path, limits) as bundle:
        sigs = signatures.parse_envelope(bundle.signatures_bytes, limits)
        manifest = bundle.parse_manifest(limits)
        return InspectResult(
            path=Path(path),
            size=bundle.layout.file_size,
            media_type=bundle.layout.media_type.decode("ascii", "replace"),
            manifest=manifest,
            manifest_sha256=hashlib.sha256(bundle.manifest_bytes).hexdigest(),
            signer_keyids=tuple(s.keyid for s in sigs),
        )
