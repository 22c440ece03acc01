"""Bounded-memory, multi-core streaming over payload chunks.

Workers (hashlib, AES-GCM and zlib all release the GIL) read, hash and
seal/open one chunk each; the calling thread consumes results in order,
updating the whole-file digest and writing. At most ``WINDOW`` chunks are in
flight, so memory stays at a few MiB whatever the model size.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO, TypeVar

from isal.isal_zlib import crc32

from aoe_pack._crypto.stream import SegmentCipher
from aoe_pack.errors import IntegrityError, ModelFileError

T = TypeVar("T")
Progress = Callable[[int], None]
"""Called with the number of bytes just processed."""

WINDOW = 6


def worker_count() -> int:
    """Threads worth running: one per core, at least two, at most four."""
    return max(2, min(4, os.cpu_count() or 2))


def ordered(pool: ThreadPoolExecutor, jobs: Iterator[Callable[[], T]]) -> Iterator[T]:
    """Run ``jobs`` on ``pool`` with a bounded window, yielding results in order."""
    pending: deque[Future[T]] = deque()
    for job in jobs:
        pending.append(pool.submit(job))
        if len(pending) >= WINDOW:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


@dataclass(frozen=True)
class SealedChunk:
    data: bytes
    sha256: str
    crc32: int


def seal_file(
    src: BinaryIO,
    size: int,
    *,
    piece: int,
    cipher: SegmentCipher | None,
    pool: ThreadPoolExecutor,
    origin: str,
    plain: hashlib._Hash,
) -> Iterator[SealedChunk]:
    """Read ``size`` bytes of ``src`` in ``piece``-sized reads; yield stored chunks in order.

    ``plain`` is updated with every plaintext byte, in order, in this thread
    while the workers seal and hash earlier chunks.
    """
    count = max(1, -(-size // piece))

    def read_jobs() -> Iterator[Callable[[], SealedChunk]]:
        for i in range(count):
            data = src.read(piece)
            if len(data) != min(piece, size - i * piece):
                raise ModelFileError(f"{origin} changed size while it was being read")
            plain.update(data)
            yield _sealer(cipher, i, i == count - 1, data)
        if src.read(1):
            raise ModelFileError(f"{origin} grew while it was being read")

    yield from ordered(pool, read_jobs())


def _sealer(
    cipher: SegmentCipher | None, i: int, last: bool, data: bytes
) -> Callable[[], SealedChunk]:
    def run() -> SealedChunk:
        stored = cipher.seal(i, last, data) if cipher else data
        return SealedChunk(stored, hashlib.sha256(stored).hexdigest(), crc32(stored))

    return run


def open_file(
    fd: int,
    offset: int,
    size: int,
    *,
    chunk_size: int,
    chunks: tuple[str, ...],
    name: str,
    cipher: SegmentCipher | None,
    pool: ThreadPoolExecutor,
    want_plaintext: bool,
    progress: Progress | None = None,
) -> Iterator[bytes]:
    """Check every stored chunk of one entry against its digest; optionally decrypt.

    Yields plaintext chunks in order when ``want_plaintext`` (else nothing).
    Raises IntegrityError naming the first chunk that differs.
    """

    def job(i: int) -> Callable[[], bytes | None]:
        start = i * chunk_size
        length = min(chunk_size, size - start)

        def run() -> bytes | None:
            data = os.pread(fd, length, offset + start)
            if len(data) != length:
                raise IntegrityError(f"{name}: bundle ends inside chunk {i}")
            if hashlib.sha256(data).hexdigest() != chunks[i]:
                raise IntegrityError(
                    f"{name}: chunk {i} (bytes {start}-{start + length - 1}) does not match "
                    "its signed SHA-256"
                )
            if cipher is not None:
                return cipher.open(i, i == len(chunks) - 1, data)
            return data if want_plaintext else None

        return run

    for i, out in enumerate(ordered(pool, (job(i) for i in range(len(chunks))))):
        if progress:
            progress(min(chunk_size, size - i * chunk_size))
        if out is not None and want_plaintext:
            yield out
