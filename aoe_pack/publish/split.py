"""After a manifest commit: write the tag documents that changed, then the index.

``manifest.json`` stays the publishers' source of truth and its edit loop is
unchanged (:mod:`aoe_pack.publish.workflow`). Once an edit has committed
manifest version N, :func:`publish_index` derives from it
(:mod:`aoe_pack.repository.split`, docs/format.md §15.12):

1. the previous index is reused only when it is version N-1, was made from
   the very manifest N-1 the edit started from (its ``manifestSha256``, not
   just its version: two writers of one version on a registry without
   compare-and-swap leave an index of the other's manifest), carries a
   threshold of the root's signatures, and was signed by exactly the keys
   signing now: then only the tags whose entry changed get a document at N.
   Otherwise (the first index, an index a crash left behind, a new root or
   new signers, whose old documents might not verify under the new root)
   every tag gets one at N;
2. tag documents are created if absent (an identical one already there is
   fine); one at N with other bytes means two publishers wrote version N (a
   registry without compare-and-swap), tags whose names differ only in case
   on a case-insensitive file system (edits refuse to add such a tag, but an
   older publisher's manifest may hold both), or a manifest version restarted below
   earlier ones (``rotate-root --restart-manifest-version``): the index is
   then retired (below), never left naming an older manifest, the outcome
   says why, and the next edit rewrites every tag. A tag's new document N
   names the document M the previous index named (``previous``), and gets
   patches (``tags/<tag>/N.from-M.zst``, :mod:`aoe_pack.repository.tag_patch`)
   from M and the two documents before it, each when it verifies and the
   patch is smaller than the gzip of the whole document;
3. ``index.json``, which names the manifest's payload digest, is written with
   compare-and-swap: its token is read first, then ``manifest.json``; if the
   manifest is no longer the one this edit wrote (byte for byte, which implies
   the digest), a later edit owns the index and this one stops. Read in that
   order, a slower publisher can never put an older index over a newer one;
4. on stores of plain files (a folder, S3) each document gets a deterministic
   gzip sibling (``index.json.gz``) after it, for web servers that serve
   precompressed files, synchronised the same way.

A manifest installed without signing keys (an offline ceremony's proposal,
:mod:`aoe_pack.publish.ceremony`) cannot get a signed index: :func:`retire_index`
then empties ``index.json``, which devices read as "no index" and answer by
reading ``manifest.json``, until the next edit with keys writes a full index.

A storage error after the commit retires the index too (when it still can).
A crash anywhere leaves the index at an older version (devices still accept
it until it expires, as an old manifest) and the next edit repairs it.
"""

from __future__ import annotations

import datetime as dt
import gzip
from collections.abc import Sequence
from dataclasses import dataclass, replace

from isal import igzip

from aoe_pack.errors import AoePackError, StoreConflictError, StoreError
from aoe_pack.keys import SigningKey
from aoe_pack.repository import envelope
from aoe_pack.repository.limits import DEFAULT_LIMITS
from aoe_pack.repository.model import Manifest
from aoe_pack.repository.root import Root
from aoe_pack.repository.split import (
    RETIRED,
    Index,
    changed_tags,
    next_index,
    sign_index,
    tag_document,
    tag_document_name,
    verify_index,
    verify_tag_envelope,
)
from aoe_pack.repository.tag_patch import make_patch, patch_name
from aoe_pack.storage.store import GZIP_SUFFIX, INDEX, MANIFEST, Store

MAX_INDEX_ATTEMPTS = 50
PATCH_BASES = 3
"""A new tag document gets patches from the 3 documents before it: a device that
missed two edits of its tag still gets a patch (benchmarks/bench_wire.py: 0.4 KB
instead of 13.5 KB), for two more documents read per changed tag and edit."""
LATER_EDIT = "a later edit replaced manifest.json"


@dataclass(frozen=True)
class IndexOutcome:
    """What :func:`publish_index` did."""

    index: Index | None
    """The index written (or found already written); None when none was."""
    written_tags: tuple[str, ...] = ()
    """Tags that got a new document."""
    reason: str = ""
    """Why no index was written (for messages)."""
    patches: tuple[str, ...] = ()
    """Tag document patches written (§15.12), by name."""
    retired: bool = False
    """No index was written and the older one was retired (emptied): devices read
    ``manifest.json`` until an edit can write the index again."""

    @property
    def warning(self) -> str:
        """A message for the publisher when this edit's index is missing; empty otherwise."""
        if self.index is not None or self.reason in ("", LATER_EDIT):
            return ""
        if self.retired:
            return f"{INDEX} not written ({self.reason}); it is retired: devices read {MANIFEST}"
        return f"{INDEX} not written ({self.reason}), and it could not be retired"

    def to_dict(self) -> dict[str, object]:
        """The ``index`` member of a command's ``--json`` result."""
        if self.index is not None:
            return {"written": True, "version": self.index.version}
        return {"written": False, "why": self.reason}


def _collision(name: str) -> str:
    return (
        f"{name} exists with other content (two writers at one version, tag names that "
        "differ only in case, or a manifest version restarted below earlier ones)"
    )


def plain_files(store: Store) -> bool:
    """Whether documents are files a web server serves as they are (folder, S3)."""
    return bool(getattr(store, "plain_files", False))


FAST_GZIP_FROM = 1 << 20
"""Documents from 1 MiB up (a large manifest.json) are compressed by ISA-L."""


def gzip_sibling(data: bytes) -> bytes:
    """Deterministic gzip: no file name, mtime 0, so equal documents give equal bytes.

    Documents devices read on every check (index, tag documents) are small and
    get zlib's level 9. A large ``manifest.json``, which only clients without
    the index read, gets ISA-L's level 2: on a 6.4 MB manifest of 10,000
    releases it is 7 % larger than level 9 and 8x faster (0.018 s against
    0.148 s), which is most of what a publish into such a repository spent
    on compression.
    """
    if len(data) >= FAST_GZIP_FROM:
        return igzip.compress(data, compresslevel=2, mtime=0)
    return gzip.compress(data, compresslevel=9, mtime=0)


def _previous(
    store: Store,
    root: Root,
    old: Manifest | None,
    old_sha256: str | None,
    new: Manifest,
    signers: set[str],
) -> tuple[Index | None, set[str]]:
    """The index to build on and the tags changed since it (see step 1)."""
    if old is None or old_sha256 is None or old.version != new.version - 1:
        return None, set()
    doc = store.read(INDEX, max_bytes=DEFAULT_LIMITS.max_index_bytes)
    if doc is None:
        return None, set()
    try:
        found = verify_index(doc.data, root, now=new.expires, check_expiry=False)
    except AoePackError:
        return None, set()  # unreadable or not ours: start afresh
    if (
        found.index.version != old.version
        or found.index.manifest_sha256 != old_sha256
        or found.key_ids != signers
    ):
        return None, set()
    return found.index, changed_tags(old, new)


def index_version(store: Store, root: Root) -> int | None:
    """The version of ``index.json`` if it verifies under ``root`` (expired or not), else None."""
    doc = store.read(INDEX, max_bytes=DEFAULT_LIMITS.max_index_bytes)
    if doc is None or doc.data == RETIRED:
        return None
    try:
        return verify_index(doc.data, root, now=now_utc(), check_expiry=False).index.version
    except AoePackError:
        return None


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _create(store: Store, name: str, data: bytes) -> bool:
    """Create ``name`` with ``data``; False when another content is already there."""
    try:
        store.replace(name, data, expected=None)
    except StoreConflictError:
        existing = store.read(name, max_bytes=DEFAULT_LIMITS.max_manifest_bytes)
        return existing is not None and existing.data == data
    return True


def sync_gzip(store: Store, name: str) -> None:
    """Make ``name.gz`` the gzip of ``name`` as it is now.

    The sibling's token is read before the document, so a publisher that read
    an older document fails its compare-and-swap against one that read the
    newer: the sibling converges to the current document.
    """
    cap = DEFAULT_LIMITS.max_manifest_bytes
    for _ in range(MAX_INDEX_ATTEMPTS):
        sibling = store.read(name + GZIP_SUFFIX, max_bytes=cap)
        current = store.read(name, max_bytes=cap)
        if current is None:
            return
        packed = gzip_sibling(current.data)
        if sibling is not None and sibling.data == packed:
            return
        try:
            store.replace(name + GZIP_SUFFIX, packed, expected=sibling.token if sibling else None)
        except StoreConflictError:
            continue
        return
    raise StoreError(f"{store.url}: {name}{GZIP_SUFFIX} kept changing under this publisher")


def publish_index(
    store: Store,
    *,
    root: Root,
    previous: Manifest | None,
    previous_sha256: str | None,
    manifest: Manifest,
    manifest_bytes: bytes,
    manifest_sha256: str,
    sign_keys: Sequence[SigningKey],
) -> IndexOutcome:
    """Write the tag documents and the index of ``manifest`` (committed as ``manifest_bytes``).

    ``previous`` is the manifest the edit started from (None for a new
    repository); ``root`` the root the edit trusted. ``previous_sha256`` and
    ``manifest_sha256`` are the SHA-256 of the two manifests' signed payloads
    (what an index names as ``manifestSha256``). A storage failure says that
    the manifest itself is committed.
    """
    try:
        outcome = _publish(
            store,
            root=root,
            previous=previous,
            previous_sha256=previous_sha256,
            manifest=manifest,
            manifest_bytes=manifest_bytes,
            manifest_sha256=manifest_sha256,
            sign_keys=sign_keys,
        )
    except StoreError as e:
        lag = (
            f"{INDEX} is retired (devices read {MANIFEST})"
            if _retire_after_failure(store, manifest_bytes)
            else f"{INDEX} could not be retired and lags behind it"
        )
        e.hint = (e.hint + "; " if e.hint else "") + (
            f"manifest version {manifest.version} is committed, but {lag} "
            "until the next edit (`aoe-pack manifest resign` writes it)"
        )
        raise
    if outcome.index is None and outcome.reason != LATER_EDIT:
        # Never leave the index naming an older manifest while it is still valid.
        return replace(outcome, retired=_retire_after_failure(store, manifest_bytes))
    return outcome


def _retire_after_failure(store: Store, manifest_bytes: bytes) -> bool:
    """Retire the index of an older manifest when this edit cannot write its own;
    False when that failed too, or when a later edit owns the index."""
    try:
        return retire_index(store, manifest_bytes=manifest_bytes)
    except StoreError:  # the gzip siblings may have failed after index.json was emptied
        try:
            doc = store.read(INDEX, max_bytes=DEFAULT_LIMITS.max_index_bytes)
        except StoreError:
            return False
        return doc is None or doc.data == RETIRED


def _write_patches(
    store: Store, root: Root, tag: str, base: int, version: int, new: envelope.Envelope
) -> list[str]:
    """Write patches to ``new`` (``tag``'s document ``version``) from its document
    ``base`` and the ones before it; the names written.

    The walk follows each document's ``previous`` back, at most
    :data:`PATCH_BASES` documents, and stops at one that is missing or does
    not verify under ``root`` (a device holding it could not have accepted it
    either). A patch not smaller than the gzip of the whole document is not
    written: a device fetches that for no more bytes.
    """
    full = len(gzip_sibling(new.to_bytes()))
    cap = DEFAULT_LIMITS.max_manifest_bytes
    written: list[str] = []
    older: int | None = base
    after = version  # each step goes strictly back: no loop
    for _ in range(PATCH_BASES):
        if older is None or older >= after:
            break
        found = store.read(tag_document_name(tag, older), max_bytes=cap)
        if found is None:
            break
        try:
            verified = verify_tag_envelope(found.data, root, tag=tag, version=older)
        except AoePackError:
            break
        patch = make_patch(verified.payload, new)
        name = patch_name(tag, version, older)
        if len(patch) < full and _create(store, name, patch):
            written.append(name)
        after = older
        older = verified.document.previous
    return written


def _publish(
    store: Store,
    *,
    root: Root,
    previous: Manifest | None,
    previous_sha256: str | None,
    manifest: Manifest,
    manifest_bytes: bytes,
    manifest_sha256: str,
    sign_keys: Sequence[SigningKey],
) -> IndexOutcome:
    ids = {k.key_id for k in sign_keys}
    base, changed = _previous(store, root, previous, previous_sha256, manifest, ids)
    index = next_index(manifest, manifest_sha256=manifest_sha256, previous=base, changed=changed)
    fresh = sorted(t for t, v in index.tags.items() if v == manifest.version)
    gz = plain_files(store)
    patched: list[str] = []
    for tag in fresh:
        before = base.tags.get(tag) if base is not None else None
        doc = tag_document(manifest, tag, manifest.version, previous=before)
        signed = envelope.sign(envelope.TAG_TYPE, doc.to_dict(), sign_keys)
        data = signed.to_bytes()
        if not _create(store, doc.name, data):
            return IndexOutcome(None, reason=_collision(doc.name))
        if gz:
            _create(store, doc.name + GZIP_SUFFIX, gzip_sibling(data))
        if before is not None:
            patched += _write_patches(store, root, tag, before, manifest.version, signed)
    data = sign_index(index, sign_keys)
    for _ in range(MAX_INDEX_ATTEMPTS):
        current = store.read(INDEX, max_bytes=DEFAULT_LIMITS.max_index_bytes)
        committed = store.read(MANIFEST, max_bytes=DEFAULT_LIMITS.max_manifest_bytes)
        # The bytes this edit wrote, so the payload the index's manifestSha256 names.
        if committed is None or committed.data != manifest_bytes:
            return IndexOutcome(None, reason=LATER_EDIT)
        if current is not None and current.data == data:
            break
        try:
            store.replace(INDEX, data, expected=current.token if current else None)
        except StoreConflictError:
            continue
        break
    else:
        raise StoreError(f"{store.url}: {INDEX} kept changing under this publisher")
    if gz:
        sync_gzip(store, INDEX)
        sync_gzip(store, MANIFEST)
    return IndexOutcome(index, tuple(fresh), patches=tuple(patched))


def retire_index(store: Store, *, manifest_bytes: bytes) -> bool:
    """Empty ``index.json`` while ``manifest.json`` is ``manifest_bytes``; False if a
    later edit replaced the manifest (its own index is then the one that counts).

    For a manifest committed without keys to sign its index: leaving the older
    index in place would keep index-reading devices on the older releases (a
    yank would not reach them) until it expires.
    """
    for _ in range(MAX_INDEX_ATTEMPTS):
        current = store.read(INDEX, max_bytes=DEFAULT_LIMITS.max_index_bytes)
        committed = store.read(MANIFEST, max_bytes=DEFAULT_LIMITS.max_manifest_bytes)
        if committed is None or committed.data != manifest_bytes:
            return False
        if current is None or current.data == RETIRED:
            break
        try:
            store.replace(INDEX, RETIRED, expected=current.token)
        except StoreConflictError:
            continue
        break
    else:
        raise StoreError(f"{store.url}: {INDEX} kept changing under this publisher")
    if plain_files(store):
        sync_gzip(store, INDEX)
        sync_gzip(store, MANIFEST)
    return True
