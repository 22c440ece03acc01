"""The one interface every repository destination implements.

A repository is a handful of named documents plus content-addressed bundles:

- ``root.json`` and ``roots/<N>.root.json``: the trusted-key chain;
- ``manifest.json``: the signed list of releases, the publishers' source of truth;
- ``index.json`` and ``tags/<tag>/<N>.json``: the same releases split per tag,
  so that a device reads only its own;
- ``bundles/<sha256>.aoe``: immutable bundles, named by their digest;
- ``deltas/<sha256>.aoed``: immutable deltas between releases (docs/format.md §16).

A :class:`Store` moves those bytes and nothing else. It knows no signatures,
no versions and no retries: :mod:`aoe_pack.publish.workflow` does that, the
same way for every backend. Two operations carry the safety of concurrent
publishing:

- :meth:`Store.put_blob` makes a bundle visible only once it is complete;
- :meth:`Store.replace` is a compare-and-swap on a document: it writes only if
  the document still has the token the caller read, and raises
  :class:`~aoe_pack.errors.StoreConflictError` otherwise.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

MANIFEST = "manifest.json"
ROOT = "root.json"
INDEX = "index.json"
GZIP_SUFFIX = ".gz"
"""A document's gzip sibling (``index.json.gz``), for servers that serve it precompressed."""

_HEX64 = re.compile(r"[0-9a-f]{64}")
_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def root_name(version: int) -> str:
    """The document name of root ``version`` in the chain."""
    return f"roots/{version}.root.json"


def tag_document_name(tag: str, version: int) -> str:
    """The name of ``tag``'s document at manifest version ``version`` (written once)."""
    if not _TAG.fullmatch(tag) or version < 1:
        raise ValueError(f"not a tag document: {tag!r} at version {version}")
    return f"tags/{tag}/{version}.json"


def bundle_name(sha256: str) -> str:
    """The content-addressed name of a bundle, also its URL relative to the repository."""
    if not _HEX64.fullmatch(sha256):
        raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
    return f"bundles/{sha256}.aoe"


def delta_name(sha256: str) -> str:
    """The content-addressed name of a delta (docs/format.md §16), also its URL."""
    if not _HEX64.fullmatch(sha256):
        raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
    return f"deltas/{sha256}.aoed"


@dataclass(frozen=True)
class Validators:
    """What identifies the version of a document a reader already holds.

    Over HTTP these are the server's caching validators (RFC 9110 §8.8): the
    ``ETag`` and ``Last-Modified`` of the answer that brought the bytes, sent
    back as ``If-None-Match`` and ``If-Modified-Since``. Elsewhere ``etag`` is
    the store's token (:attr:`Stored.token`). A device keeps them with the last
    document it accepted, so an unchanged repository costs a ``304``.
    """

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class NotModified:
    """The answer to a conditional read when the document is still the one held."""

    validators: Validators


@dataclass(frozen=True)
class Stored:
    """A document's bytes and the opaque token that identifies this version of it.

    The token is what :meth:`Store.replace` compares: an S3 ETag, an OCI
    manifest digest, or the SHA-256 of a local file. ``validators`` are what a
    later conditional read sends (:func:`read_if_changed`); None means the
    token alone.
    """

    data: bytes
    token: str
    validators: Validators | None = None

    @property
    def revalidation(self) -> Validators:
        """The validators to keep for the next conditional read of this document."""
        return self.validators or Validators(etag=self.token)


class Store(Protocol):
    """Bytes in and out of one repository destination."""

    @property
    def url(self) -> str:
        """Where the repository is, as the user wrote it (for messages)."""
        ...

    def read(self, name: str, *, max_bytes: int) -> Stored | None:
        """A document's bytes and token, or None if it does not exist.

        Raises :class:`~aoe_pack.errors.DownloadTooLargeError` past ``max_bytes``.
        """
        ...

    def replace(self, name: str, data: bytes, *, expected: str | None) -> str:
        """Write ``data`` if the document's token is still ``expected``.

        ``expected=None`` means the document must not exist yet. Returns the new
        token. Raises :class:`~aoe_pack.errors.StoreConflictError` when another
        writer got there first; the document is then unchanged by this call.
        """
        ...

    def put_blob(self, name: str, source: Path, *, sha256: str, size: int) -> None:
        """Upload an immutable, content-addressed file.

        Visible under ``name`` only when complete; a no-op when it is already
        there. ``sha256`` and ``size`` describe ``source`` (already verified).
        """
        ...

    def has_blob(self, name: str) -> int | None:
        """The size of an uploaded blob, or None when it is not there."""
        ...

    def fetch_blob(self, name: str, dest: Path, *, max_bytes: int) -> None:
        """Download a blob to ``dest`` (for ``manifest verify --bundles``)."""
        ...

    def close(self) -> None:
        """Release connections and background servers' sessions."""
        ...


@runtime_checkable
class ConditionalStore(Protocol):
    """A store that can answer "unchanged" without sending the document (HTTP)."""

    def read_if_changed(
        self, name: str, *, max_bytes: int, known: Validators | None
    ) -> Stored | NotModified | None:
        """Like :meth:`Store.read`, but :class:`NotModified` when ``known`` still holds."""
        ...


def read_if_changed(
    store: Store, name: str, *, max_bytes: int, known: Validators | None
) -> Stored | NotModified | None:
    """A document unless it is still the version ``known`` names; None when missing.

    Stores that speak conditional requests save the bytes on the wire; the
    others read the document and compare its token, which still saves the
    caller from parsing and verifying it again.
    """
    if isinstance(store, ConditionalStore):
        return store.read_if_changed(name, max_bytes=max_bytes, known=known)
    doc = store.read(name, max_bytes=max_bytes)
    if doc is not None and known is not None and known.etag == doc.token:
        return NotModified(known)
    return doc


@dataclass(frozen=True)
class HashedBlob:
    """A blob hashed while it was written: its size, its SHA-256 and which file holds them.

    The digest is of the bytes written to one file, not of whatever its name
    leads to later: whoever can write into the folder may rename another file
    onto that name between the download and the next open of it.
    """

    size: int
    sha256: str
    file: tuple[int, int]
    """``(st_dev, st_ino)`` of the file written (a rename keeps them)."""

    def is_file(self, st: os.stat_result) -> bool:
        """Whether ``st`` (the ``fstat`` of an open file) is the file hashed, at its size."""
        return (st.st_dev, st.st_ino, st.st_size) == (*self.file, self.size)


@runtime_checkable
class HashingStore(Protocol):
    """A store that hashes a blob while downloading it (HTTP and ``file://``)."""

    def fetch_blob_hashed(self, name: str, dest: Path, *, max_bytes: int) -> HashedBlob:
        """Like :meth:`Store.fetch_blob`, with the size, SHA-256 and file of ``dest``."""
        ...
