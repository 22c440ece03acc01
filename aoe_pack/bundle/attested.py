"""Verify a bundle's payloads and hash the whole file in one pass: the digest of what verified.

An export names a bundle by the SHA-256 of its file (docs/interop.md). Hashed
in a second read after verification, the file could be rewritten in between
(it is not locked: anything with write access may), and the statement would
vouch for bytes that were never verified. Here the file is read once, in
order, and every byte hashed is a byte that verified:

- each payload's stored chunks are hashed as they are checked against their
  signed digests (and decrypted, or hashed as plaintext, as ``unpack`` would);
- the bytes around them (ZIP headers, the manifest and signature entries, the
  central directory) are hashed as read, then parsed again as a container:
  they must be the very layout, manifest and signatures that were
  authenticated.

A file changed meanwhile fails one of these, by name (``integrity``); it is
never attested.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from aoe_pack._io.pread import pread
from aoe_pack.bundle._chunked import Progress
from aoe_pack.bundle.container import read_layout
from aoe_pack.bundle.format import DEFAULT_LIMITS, Limits
from aoe_pack.bundle.manifest import BundleManifest
from aoe_pack.bundle.verify import OpenedBundle, stream_payload
from aoe_pack.errors import BundleFormatError, IntegrityError


@dataclass(frozen=True)
class FileDigest:
    """The SHA-256 and size of a bundle file, of the bytes that verified."""

    sha256: str
    size: int


def verify_and_hash(
    bundle: OpenedBundle,
    manifest: BundleManifest,
    *,
    data_key: bytes | None,
    check_plaintext: bool,
    pool: ThreadPoolExecutor,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress | None = None,
) -> FileDigest:
    """Check every payload of an authenticated ``bundle`` and hash its file in the same pass.

    ``manifest`` is what :func:`~aoe_pack.bundle.verify.authenticate` returned
    for ``bundle``; ``data_key`` decrypts, and ``check_plaintext`` has each
    file's plaintext SHA-256 recomputed (an unencrypted bundle, or a data key).
    """
    size = bundle.layout.file_size
    digest = hashlib.sha256()
    around: list[tuple[int, bytes]] = []  # every byte that is not a payload's, by offset

    def read_up_to(start: int, end: int) -> None:
        data = pread(bundle.fd, end - start, start)
        if len(data) != end - start:
            raise _changed(bundle, "it is shorter than when it was opened")
        digest.update(data)
        around.append((start, data))

    at = 0
    for f, e in zip(manifest.files, bundle.payload_entries(), strict=True):
        read_up_to(at, e.data_offset)
        stream_payload(
            bundle,
            f,
            e,
            data_key=data_key,
            pool=pool,
            progress=progress,
            sink=_discard if check_plaintext else None,
            stored=digest.update,
        )
        at = e.data_offset + e.size
    read_up_to(at, size)
    if os.fstat(bundle.fd).st_size != size:
        raise _changed(bundle, f"it is no longer {size} bytes")
    _check_same_container(bundle, around, limits)
    return FileDigest(sha256=digest.hexdigest(), size=size)


def _check_same_container(
    bundle: OpenedBundle, around: Sequence[tuple[int, bytes]], limits: Limits
) -> None:
    """The bytes hashed around the payloads parse to the container that was authenticated."""
    size = bundle.layout.file_size
    try:
        layout = read_layout(
            io.BufferedReader(_Sparse(around, size)),
            file_size=size,
            max_entries=limits.max_entries,
            media_types=(bundle.layout.media_type,),
        )
    except BundleFormatError as e:
        raise _changed(bundle, f"its container no longer parses ({e.message})") from e
    if layout != bundle.layout:
        raise _changed(bundle, "its ZIP structure differs from the one verified")
    manifest_entry, signatures_entry = layout.entries[-2:]
    if _bytes_at(around, manifest_entry.data_offset, manifest_entry.size) != bundle.manifest_bytes:
        raise _changed(bundle, "its manifest differs from the one verified")
    if (
        _bytes_at(around, signatures_entry.data_offset, signatures_entry.size)
        != bundle.signatures_bytes
    ):
        raise _changed(bundle, "its signatures differ from those verified")


def _bytes_at(around: Sequence[tuple[int, bytes]], offset: int, size: int) -> bytes | None:
    """``size`` bytes at ``offset`` from one region read around the payloads, else None."""
    for start, data in around:
        if start <= offset and offset + size <= start + len(data):
            return data[offset - start : offset - start + size]
    return None


class _Sparse(io.RawIOBase):
    """A file of ``size`` bytes holding ``around`` at their offsets, and zeros elsewhere.

    The container is parsed from it without a second read of the file. Its
    parser never reads payload bytes, so the zeros are never read in a bundle
    whose structure is the one verified; in any other, the layouts differ.
    """

    def __init__(self, around: Sequence[tuple[int, bytes]], size: int) -> None:
        super().__init__()
        self._around = around
        self._size = size
        self._at = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._at, io.SEEK_END: self._size}[whence]
        self._at = max(0, base + offset)
        return self._at

    def tell(self) -> int:
        return self._at

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        n = max(0, min(len(buffer), self._size - self._at))
        view = memoryview(buffer).cast("B")
        view[:n] = bytes(n)
        for start, data in self._around:
            lo, hi = max(start, self._at), min(start + len(data), self._at + n)
            if lo < hi:
                view[lo - self._at : hi - self._at] = data[lo - start : hi - start]
        self._at += n
        return n


def _discard(_: bytes) -> None:
    return


def _changed(bundle: OpenedBundle, how: str) -> IntegrityError:
    name = bundle.path if bundle.path is not None else "the bundle"
    return IntegrityError(
        f"{name} changed while it was being verified: {how}; its digest was not taken",
        hint="something wrote the file meanwhile: find what, and run the command again once "
        "the file stays as it is",
    )
