"""``manifest verify``: check a repository the way a device will."""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aoe_pack.errors import BundleMismatchError, RepositoryError
from aoe_pack.manifest.model import Manifest
from aoe_pack.manifest.root import verify_self_signed
from aoe_pack.manifest.trust import (
    MAX_MANIFEST_BYTES,
    MAX_ROOT_BYTES,
    check_bundle_matches,
    update_root,
    verify_manifest,
)
from aoe_pack.publish.releases import file_sha256
from aoe_pack.publish.store import MANIFEST, Store, root_name


@dataclass(frozen=True)
class RepoReport:
    root_version: int
    manifest: Manifest
    bundles_checked: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "verified": True,
            "rootVersion": self.root_version,
            "manifestVersion": self.manifest.version,
            "releases": self.manifest.release_count(),
            "bundlesChecked": self.bundles_checked,
        }


def verify_repository(store: Store, trusted_root: bytes, *, check_bundles: bool) -> RepoReport:
    """Root chain from ``trusted_root``, manifest signatures and expiry, and bundles."""
    start = verify_self_signed(trusted_root, what="--trusted-root")

    def fetch(n: int) -> bytes | None:
        doc = store.read(root_name(n), max_bytes=MAX_ROOT_BYTES)
        return doc.data if doc else None

    root, _ = update_root(start, fetch)
    doc = store.read(MANIFEST, max_bytes=MAX_MANIFEST_BYTES)
    if doc is None:
        raise RepositoryError(f"{store.url} has no manifest.json")
    manifest = verify_manifest(doc.data, root, now=dt.datetime.now(dt.UTC)).manifest
    manifest.models.check_all()
    checked = 0
    if check_bundles:
        with tempfile.TemporaryDirectory(prefix="aoe-verify-") as tmp:
            for tag, entry in sorted(manifest.models.items()):
                for r in entry.releases:
                    size = store.has_blob(r.url)
                    if size is None:
                        raise BundleMismatchError(f"{tag} {r.version}: {r.url} is missing")
                    dest = Path(tmp) / "bundle.aoe"
                    store.fetch_blob(r.url, dest, max_bytes=r.size)
                    sha256, got = file_sha256(dest)
                    check_bundle_matches(r, size=got, sha256=sha256)
                    dest.unlink()
                    checked += 1
    return RepoReport(root.version, manifest, checked)
