"""The one capped reader of the files a user names (keys, KEKs, trusted roots)."""

from __future__ import annotations

import errno
import os
from typing import Protocol

CHUNK = 64 * 1024
"""Bytes asked for per read: what is held grows with what the file gives, not with the cap."""


class FileTooLargeError(OSError):
    """A file held more bytes than :func:`read_capped` takes.

    An ``OSError`` (EFBIG), so that a caller handling read errors reports it
    even where it does not name it; callers name it to say what the cap is for.
    """

    def __init__(self, path: str | os.PathLike[str], cap: int) -> None:
        super().__init__(errno.EFBIG, f"holds more than {cap} bytes", os.fspath(path))
        self.cap = cap


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes | None: ...


def read_upto(f: Readable, limit: int) -> bytes:
    """The bytes of ``f`` up to its end or ``limit`` bytes, whichever comes first.

    Read in chunks, so that a small file costs its size and never ``limit``
    (a single ``read(limit)`` allocates all of it up front); a file without
    end (``/dev/zero``, a FIFO that keeps writing) costs ``limit``.
    """
    chunks: list[bytes] = []
    n = 0
    while n < limit and (chunk := f.read(min(CHUNK, limit - n))):
        chunks.append(chunk)
        n += len(chunk)
    return b"".join(chunks)


def read_capped(path: str | os.PathLike[str], cap: int) -> bytes:
    """All bytes of the file at ``path``; :class:`FileTooLargeError` past ``cap`` bytes.

    Reads at most ``cap + 1`` bytes, in chunks (:func:`read_upto`), whatever
    the file is, and never asks ``stat()``: a FIFO (``--trusted-key <(...)``),
    ``/dev/zero`` or a /proc file report a size that says nothing of what
    ``read()`` returns, and a regular file can grow between the two calls.
    Every file a user names for a key, a KEK or a trusted root is read
    through here.
    """
    with open(path, "rb", buffering=0) as f:  # noqa: PTH123
        data = read_upto(f, cap + 1)
    if len(data) > cap:
        raise FileTooLargeError(path, cap)
    return data
