"""§15.6 step 4 through the index: ``index.json``, then the device's tag document.

Instead of the whole ``manifest.json``, a device reads the small signed index
(conditionally: an unchanged one costs a ``304``), checks it exactly as it
checks a manifest (signatures, top level, rollback against the same floor,
expiry), then the one tag document the index names for its tag, from its
cache when it holds that version, else rebuilt from the older version it
holds and a small patch (``tags/<tag>/N.from-M.zst``), else downloaded whole.
The tag document must carry a threshold of the trusted root's signatures and
be that tag at that version: another one served under its name is refused
(``mix-and-match``). The decision then runs on the tag's entry as on the
manifest's.

A repository without ``index.json`` (published by an earlier aoe-pack), or
whose ``index.json`` is empty (retired: a manifest was installed without keys
to sign its index), is read through ``manifest.json`` as before:
:func:`read_indexed` returns None. Deleting or emptying the index is within
reach of anyone who can write the storage, and gains them nothing: the
manifest is checked against the same floor.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from aoe_pack.client.cache import DocumentCache
from aoe_pack.errors import AoePackError, RepositoryError
from aoe_pack.repository.limits import DEFAULT_LIMITS
from aoe_pack.repository.model import Manifest, Models
from aoe_pack.repository.root import Root
from aoe_pack.repository.split import (
    RETIRED,
    TagDocument,
    VerifiedIndex,
    VerifiedTag,
    verify_index,
    verify_tag_document,
    verify_tag_envelope,
)
from aoe_pack.repository.tag_patch import apply_patch, patch_name
from aoe_pack.repository.trust import Floor
from aoe_pack.storage.store import (
    INDEX,
    NotModified,
    Store,
    Stored,
    Validators,
    read_if_changed,
    tag_document_name,
)


@dataclass(frozen=True)
class IndexedRead:
    """A verified index, and the verified document of the device's tag (if listed)."""

    verified: VerifiedIndex
    validators: Validators
    tag: str
    document: TagDocument | None
    document_bytes: bytes | None

    @property
    def manifest(self) -> Manifest:
        """What the decision reads: the tag's entry at the index's version and expiry."""
        index = self.verified.index
        if self.document is None:
            return Manifest(version=index.version, expires=index.expires, models=Models())
        return self.document.as_manifest(index)

    @property
    def tags(self) -> list[str]:
        return sorted(self.verified.index.tags)


def read_indexed(
    store: Store,
    root: Root,
    *,
    tag: str,
    now: dt.datetime,
    floor: Floor | None,
    cache: DocumentCache,
) -> IndexedRead | None:
    """The index and ``tag``'s document, verified; None when the repository has no index."""

    def verify(data: bytes) -> VerifiedIndex:
        return verify_index(
            data,
            root,
            now=now,
            last_version=floor.version if floor else None,
            last_sha256=floor.index_sha256 if floor else None,
        )

    cached = cache.index()
    got = read_if_changed(
        store,
        INDEX,
        max_bytes=DEFAULT_LIMITS.max_index_bytes,
        known=cached.validators if cached else None,
    )
    if got is None or (isinstance(got, Stored) and got.data == RETIRED):
        return None  # no index, or one retired by a keyless install: manifest.json
    verified: VerifiedIndex | None = None
    if isinstance(got, NotModified):
        assert cached is not None
        try:
            verified, validators = verify(cached.data), got.validators
        except AoePackError:
            verified = None  # a damaged or stale cache: read the index afresh
        if verified is None:
            fresh = store.read(INDEX, max_bytes=DEFAULT_LIMITS.max_index_bytes)
            if fresh is None or fresh.data == RETIRED:
                return None
            got = fresh
    if verified is None:
        assert not isinstance(got, NotModified)
        verified, validators = verify(got.data), got.revalidation
    version = verified.index.tags.get(tag)
    if version is None:  # a tag the index lacks is a tag the manifest lacks
        return IndexedRead(verified, validators, tag, None, None)
    held = _cached_document(cache, root, tag)
    if held is not None and held.document.version < version:
        held = _through_patch(store, root, tag, version, held)
    if held is not None and held.document.version == version:
        return IndexedRead(verified, validators, tag, held.document, held.envelope_bytes)
    name = tag_document_name(tag, version)
    doc = store.read(name, max_bytes=DEFAULT_LIMITS.max_manifest_bytes)
    if doc is None:
        raise RepositoryError(
            f"{store.url}: {INDEX} version {verified.index.version} names {name}, which is missing",
            hint="the repository is incomplete (a publisher wrote the index before the "
            "document, or the document was deleted); keep the current model",
        )
    document = verify_tag_document(doc.data, root, tag=tag, version=version)
    return IndexedRead(verified, validators, tag, document, doc.data)


def _cached_document(cache: DocumentCache, root: Root, tag: str) -> VerifiedTag | None:
    """The cached document of ``tag``, verified under ``root`` at whatever version it is."""
    data = cache.tag(tag)
    if data is None:
        return None
    try:
        return verify_tag_envelope(data, root, tag=tag, version=None)
    except AoePackError:
        return None  # damaged, or not ours: the index's version is fetched


def _through_patch(
    store: Store, root: Root, tag: str, version: int, base: VerifiedTag
) -> VerifiedTag | None:
    """``tag``'s document ``version`` rebuilt from the cached ``base`` and a patch.

    None, for the caller to fetch the whole document, when there is no patch
    or anything about it fails: reading it, applying it, or any check of the
    document it rebuilds, which are exactly those of a downloaded one. A patch
    carries no trust of its own, so it can cost a device a request, never a
    check.
    """
    name = patch_name(tag, version, base.document.version)
    try:
        patch = store.read(name, max_bytes=DEFAULT_LIMITS.max_manifest_bytes)
        if patch is None:
            return None
        data = apply_patch(base.payload, patch.data, what=name)
        return verify_tag_envelope(data, root, tag=tag, version=version)
    except AoePackError:
        return None
