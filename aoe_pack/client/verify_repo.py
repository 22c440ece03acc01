"""``manifest verify``: check a repository the way a device will (with the device's code).

It sits with the client because it is the client's own checks run over every release;
the repository is only read, through the :class:`Store` interface.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aoe_pack._io import file_sha256
from aoe_pack.bundle.delta import open_delta
from aoe_pack.bundle.verify import verify_bundle
from aoe_pack.client.check import bundle_signers, fetch_trusted
from aoe_pack.errors import BundleMismatchError, DeltaError, RepositoryError
from aoe_pack.keys import PublicKey
from aoe_pack.repository.limits import DEFAULT_LIMITS
from aoe_pack.repository.model import DeltaRef, Manifest, Release
from aoe_pack.repository.root import Root, verify_self_signed
from aoe_pack.repository.split import RETIRED, tag_document, verify_index, verify_tag_document
from aoe_pack.repository.trust import VerifiedManifest, check_bundle_matches
from aoe_pack.storage.store import INDEX, Store, tag_document_name


@dataclass(frozen=True)
class IndexReport:
    """How ``index.json`` and the tag documents stand against ``manifest.json``."""

    status: str
    """``current`` (the manifest's version), ``behind`` (an older one: a publisher
    stopped before writing it; the next edit repairs it), ``absent`` or ``retired``."""
    version: int | None = None
    tags_checked: int = 0


def check_index(
    store: Store, root: Root, verified: VerifiedManifest, *, now: dt.datetime
) -> IndexReport:
    """Check the index and every tag document it names as a device would (§15.12), and,
    when the index is the manifest's version, that it was made from this very manifest
    (``manifestSha256``) and each document holds the manifest's entry and the
    ``bundleKeys`` it names: devices reading either path decide alike."""
    doc = store.read(INDEX, max_bytes=DEFAULT_LIMITS.max_index_bytes)
    if doc is None or doc.data == RETIRED:
        return IndexReport("absent" if doc is None else "retired")
    index = verify_index(doc.data, root, now=now).index
    digest, manifest = verified.payload_sha256, verified.manifest
    if index.version > manifest.version:
        raise RepositoryError(
            f"{store.url}: {INDEX} version {index.version} is ahead of manifest.json version "
            f"{manifest.version}",
            hint="publishers write the index after the manifest; `aoe-pack manifest resign` "
            "writes one for the current manifest",
        )
    current = index.version == manifest.version
    if current and index.manifest_sha256 != digest:
        raise RepositoryError(
            f"{store.url}: {INDEX} version {index.version} was made from another manifest "
            f"(manifestSha256 {index.manifest_sha256}) than manifest.json version "
            f"{manifest.version} (payload SHA-256 {digest})",
            hint="two publishers wrote this version (a registry without compare-and-swap), "
            "or one of the two files was replaced outside aoe-pack; the next edit, or "
            "`aoe-pack manifest resign`, writes the index of the current manifest",
        )
    if current and set(index.tags) != set(manifest.models):
        differ = sorted(set(index.tags) ^ set(manifest.models))
        raise RepositoryError(
            f"{store.url}: {INDEX} and manifest.json list different tags ({', '.join(differ)})"
        )
    for tag, version in sorted(index.tags.items()):
        name = tag_document_name(tag, version)
        found = store.read(name, max_bytes=DEFAULT_LIMITS.max_manifest_bytes)
        if found is None:
            raise RepositoryError(f"{store.url}: {INDEX} names {name}, which is missing")
        got = verify_tag_document(found.data, root, tag=tag, version=version)
        want = tag_document(manifest, tag, version)
        if current and (got.model != want.model or got.bundle_keys != want.bundle_keys):
            raise RepositoryError(
                f"{store.url}: {name} does not hold manifest.json's entry of {tag}",
                hint="devices reading the index would decide on other releases than those "
                "reading manifest.json",
            )
    return IndexReport("current" if current else "behind", index.version, len(index.tags))


@dataclass(frozen=True)
class RepoReport:
    root_version: int
    manifest: Manifest
    bundles_checked: int
    index: IndexReport = IndexReport("absent")

    def to_dict(self) -> dict[str, Any]:
        return {
            "verified": True,
            "rootVersion": self.root_version,
            "manifestVersion": self.manifest.version,
            "releases": self.manifest.release_count(),
            "bundlesChecked": self.bundles_checked,
            "index": self.index.status,
            "indexVersion": self.index.version,
            "tagDocumentsChecked": self.index.tags_checked,
        }


def _check_delta(
    store: Store, d: DeltaRef, dest: Path, *, tag: str, release: Release, keys: list[PublicKey]
) -> None:
    """A listed delta is there, is the file listed, and is signed for its release."""
    store.fetch_blob(d.url, dest, max_bytes=d.size)
    sha256, got = file_sha256(dest)
    if (sha256, got) != (d.sha256, d.size):
        raise DeltaError(
            f"{tag} {release.version}: the delta from {d.from_version} ({d.url}) is not the "
            "file the manifest lists"
        )
    with open_delta(dest, trusted_keys=keys) as (_, m):
        if (m.model.tag, m.model.version, m.base_version) != (tag, release.version,
                                                              d.from_version):  # fmt: skip
            raise DeltaError(
                f"{tag} {release.version}: {d.url} is a delta from {m.base_version} to "
                f"{m.model.tag} {m.model.version}"
            )
    dest.unlink()


def verify_repository(store: Store, trusted_root: bytes, *, check_bundles: bool) -> RepoReport:
    """Root chain from ``trusted_root``, manifest signatures and expiry, the index and
    tag documents (:func:`check_index`), and bundles.

    With ``check_bundles``, every bundle is downloaded, matched against the
    manifest's size and SHA-256, and verified with its recorded signers' keys;
    so is every delta (its patches are not applied: that needs the base files).
    """
    start = verify_self_signed(trusted_root, what="--trusted-root")
    now = dt.datetime.now(dt.UTC)
    root, _, verified = fetch_trusted(store, start, now=now)
    manifest = verified.manifest
    manifest.models.check_all()
    index = check_index(store, root, verified, now=now)
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
                    # its own signatures, with the keys a device will use
                    keys = bundle_signers(manifest, r, root)
                    verify_bundle(dest, trusted_keys=keys)
                    dest.unlink()
                    checked += 1
                    for d in r.deltas:  # §16: as a device fetches and opens one
                        _check_delta(store, d, Path(tmp) / "delta.aoed", tag=tag, release=r,
                                     keys=keys)  # fmt: skip
    return RepoReport(root.version, manifest, checked, index)
