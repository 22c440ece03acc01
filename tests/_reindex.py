"""Bring ``index.json`` and the tag documents in line with a ``manifest.json`` a test wrote.

Devices read a repository through its index (docs/format.md §15.12). A test
that forges ``manifest.json`` with keys the root trusts (standing for a key
holder, or a thief of a threshold of keys) calls :func:`reindex` so that the
forgery reaches devices the way such a holder's would: as a signed index and
tag documents at the manifest's version, overwriting whatever was there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from aoe_pack.keys import SigningKey
from aoe_pack.repository import envelope
from aoe_pack.repository.model import Manifest
from aoe_pack.repository.split import next_index, sign_index, sign_tag_document, tag_document
from aoe_pack.storage.store import INDEX, MANIFEST, Store

CAP = 1 << 26


def _put(store: Store, name: str, data: bytes) -> None:
    current = store.read(name, max_bytes=CAP)
    store.replace(name, data, expected=current.token if current else None)


def reindex(store: Store, keys: Sequence[SigningKey]) -> None:
    """Sign and write the index and every tag document of the current manifest.json."""
    doc = store.read(MANIFEST, max_bytes=CAP)
    assert doc is not None
    env = envelope.parse(doc.data, envelope.MANIFEST_TYPE, what=MANIFEST)
    manifest = Manifest.from_dict(env.document())
    digest = hashlib.sha256(env.payload).hexdigest()
    index = next_index(manifest, manifest_sha256=digest, previous=None, changed=set())
    for tag in index.tags:
        tag_doc = tag_document(manifest, tag, manifest.version)
        _put(store, tag_doc.name, sign_tag_document(tag_doc, list(keys)))
    _put(store, INDEX, sign_index(index, list(keys)))
