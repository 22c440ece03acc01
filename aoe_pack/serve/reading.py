"""The repository read and verified as a device reads it, for every tag at once.

A device (:mod:`aoe_pack.client.check`) walks the root chain from the root it
trusts, then reads ``index.json`` and its tag's document, or ``manifest.json``
from a repository without an index, and checks each against that root, the
version it accepted last (rollback) and the clock (expiry). The service does
the same through the same functions (:func:`~aoe_pack.client.check.trusted_chain`,
:func:`~aoe_pack.repository.split.verify_index`,
:func:`~aoe_pack.repository.split.verify_tag_document`,
:func:`~aoe_pack.repository.trust.verify_manifest`), for every tag the index
names, so that its decisions are those of a device reading the same
repository at the same moment.

What it accepted is a :class:`Snapshot`, held in memory only; the next read
starts from it: from its root (the chain only moves forward), above its
version (the floor), and conditionally (an unchanged index or manifest is
not read, parsed or verified again; only its expiry is checked). A tag
document already held at the version the index names is not fetched again.
Every tag's entry is parsed and checked when read, so a snapshot either holds
the whole repository or is refused whole.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from aoe_pack.client.check import trusted_chain
from aoe_pack.errors import ExpiredMetadataError, ReleaseNotFoundError, RepositoryError
from aoe_pack.repository.limits import DEFAULT_LIMITS
from aoe_pack.repository.model import Manifest, format_time
from aoe_pack.repository.root import Root
from aoe_pack.repository.split import RETIRED, verify_index, verify_tag_document
from aoe_pack.repository.trust import Floor, verify_manifest
from aoe_pack.storage.store import (
    INDEX,
    MANIFEST,
    NotModified,
    Store,
    Stored,
    Validators,
    read_if_changed,
    tag_document_name,
)


@dataclass(frozen=True)
class Snapshot:
    """One verified state of the repository: what every decision of the moment reads."""

    root: Root
    version: int
    """The version of the index (or manifest) accepted: ``manifestVersion`` of a decision."""
    expires: dt.datetime
    source: str
    """``index.json``, or ``manifest.json`` for a repository without an index."""
    manifests: Mapping[str, Manifest]
    """Per tag, what :func:`~aoe_pack.client.decide.decide` reads: the tag document's
    view (:meth:`~aoe_pack.repository.split.TagDocument.as_manifest`), or the manifest."""
    floor: Floor
    validators: Validators
    envelope: bytes
    """The index or manifest accepted, re-checked as it is when a new root arrives."""
    documents: Mapping[tuple[str, int], bytes]
    """The tag documents accepted, by (tag, version): immutable, so held, not re-read."""

    @property
    def tags(self) -> list[str]:
        return sorted(self.manifests)

    def require(self, tag: str) -> Manifest:
        """What ``tag``'s decision reads; :class:`ReleaseNotFoundError` as ``client check``
        refuses a tag the repository does not list."""
        found = self.manifests.get(tag)
        if found is None:
            known = ", ".join(self.tags) or "none yet"
            raise ReleaseNotFoundError(
                f"the manifest has no model {tag}; its models: {known}",
                hint="check the tag: `aoe-pack manifest show` lists the published tags",
            )
        return found

    def check_expiry(self, now: dt.datetime) -> None:
        """:class:`ExpiredMetadataError`, as a device reading it now would raise."""
        if self.expires <= now:
            raise ExpiredMetadataError(
                f"{self.source} version {self.version} expired at {format_time(self.expires)}",
                hint="the repository must be re-signed (`aoe-pack manifest resign`); the "
                "service answers no decision from a frozen repository, as a device takes none",
            )


def read_snapshot(
    store: Store,
    start: Root,
    *,
    now: dt.datetime,
    minimum: Floor | None = None,
    held: Snapshot | None = None,
) -> Snapshot:
    """The repository's state now, verified from ``start`` (or from ``held``, the last
    snapshot accepted); ``held`` itself when nothing changed and it has not expired.

    ``minimum`` is a floor from the first read on, as a device's shipped minimum
    manifest version (:func:`~aoe_pack.client.check.effective_floor`).
    """
    root, _, floor = trusted_chain(
        store,
        held.root if held else start,
        floor=held.floor if held else None,
        minimum=minimum,
    )
    index = read_if_changed(
        store,
        INDEX,
        max_bytes=DEFAULT_LIMITS.max_index_bytes,
        known=held.validators if held and held.source == INDEX else None,
    )
    if index is not None and not (isinstance(index, Stored) and index.data == RETIRED):
        return _through_index(store, root, index, now=now, floor=floor, held=held)
    manifest = read_if_changed(
        store,
        MANIFEST,
        max_bytes=DEFAULT_LIMITS.max_manifest_bytes,
        known=held.validators if held and held.source == MANIFEST else None,
    )
    if manifest is None:
        raise RepositoryError(f"{store.url} has no manifest.json")
    return _through_manifest(root, manifest, now=now, floor=floor, held=held)


def _current(got: Stored | NotModified, held: Snapshot | None) -> tuple[bytes, Validators]:
    """The document's bytes and validators: those held when ``got`` says it is unchanged."""
    if isinstance(got, NotModified):
        assert held is not None  # only a held snapshot's validators are sent
        return held.envelope, held.validators
    return got.data, got.revalidation


def _through_index(
    store: Store,
    root: Root,
    got: Stored | NotModified,
    *,
    now: dt.datetime,
    floor: Floor | None,
    held: Snapshot | None,
) -> Snapshot:
    if isinstance(got, NotModified) and held is not None and root is held.root:
        held.check_expiry(now)  # the same bytes under the same root: only time moved
        return held
    data, validators = _current(got, held)
    verified = verify_index(
        data,
        root,
        now=now,
        last_version=floor.version if floor else None,
        last_sha256=floor.index_sha256 if floor else None,
    )
    index = verified.index
    same_root = held is not None and root is held.root
    manifests: dict[str, Manifest] = {}
    documents: dict[tuple[str, int], bytes] = {}
    for tag, version in sorted(index.tags.items()):
        key = (tag, version)
        previous = held.manifests.get(tag) if held and key in held.documents else None
        if previous is not None and same_root:  # immutable and verified under this root
            assert held is not None
            documents[key] = held.documents[key]
            manifests[tag] = dataclasses.replace(
                previous, version=index.version, expires=index.expires
            )
            continue
        doc_bytes = held.documents.get(key) if held else None
        if doc_bytes is None:
            name = tag_document_name(tag, version)
            doc = store.read(name, max_bytes=DEFAULT_LIMITS.max_manifest_bytes)
            if doc is None:
                raise RepositoryError(
                    f"{store.url}: {INDEX} version {index.version} names {name}, which is missing",
                    hint="the repository is incomplete (a publisher wrote the index before "
                    "the document, or the document was deleted)",
                )
            doc_bytes = doc.data
        document = verify_tag_document(doc_bytes, root, tag=tag, version=version)
        manifest = document.as_manifest(index)
        manifest.models.check_all()  # parsed now: a decision never meets a bad entry
        manifests[tag], documents[key] = manifest, doc_bytes
    index_floor = floor if floor is not None and floor.version == index.version else None
    return Snapshot(
        root=root,
        version=index.version,
        expires=index.expires,
        source=INDEX,
        manifests=manifests,
        floor=Floor(
            index.version,
            index_floor.payload_sha256 if index_floor else None,
            frozenset(root.keys),
            verified.payload_sha256,
        ),
        validators=validators,
        envelope=data,
        documents=documents,
    )


def _through_manifest(
    root: Root,
    got: Stored | NotModified,
    *,
    now: dt.datetime,
    floor: Floor | None,
    held: Snapshot | None,
) -> Snapshot:
    if isinstance(got, NotModified) and held is not None and root is held.root:
        held.check_expiry(now)
        return held
    data, validators = _current(got, held)
    verified = verify_manifest(
        data,
        root,
        now=now,
        last_version=floor.version if floor else None,
        last_sha256=floor.payload_sha256 if floor else None,
    )
    manifest = verified.manifest
    manifest.models.check_all()
    same = floor is not None and floor.version == manifest.version
    return Snapshot(
        root=root,
        version=manifest.version,
        expires=manifest.expires,
        source=MANIFEST,
        manifests=dict.fromkeys(manifest.models, manifest),
        floor=Floor(
            manifest.version,
            verified.payload_sha256,
            frozenset(root.keys),
            floor.index_sha256 if same and floor else None,
        ),
        validators=validators,
        envelope=data,
        documents={},
    )
