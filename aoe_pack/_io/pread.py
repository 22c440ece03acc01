"""Read and write at an offset without moving the file position (reads from many threads)."""

from __future__ import annotations

import os
import threading

_POSITION = threading.Lock()


def pread(fd: int, size: int, offset: int) -> bytes:
    """Up to ``size`` bytes of ``fd`` from ``offset`` (fewer only at the end of the file).

    ``os.pread`` where the OS has it. Windows has none: there a seek and a
    read, under a lock that every such read takes, put the position back as
    it was. Reads through this function are then one at a time (hashing and
    decryption still run in parallel); a read of the same descriptor that
    bypasses it while one runs would see the position moved.
    """
    call = getattr(os, "pread", None)
    if call is not None:
        data: bytes = call(fd, size, offset)
        return data
    with _POSITION:
        was = os.lseek(fd, 0, os.SEEK_CUR)
        try:
            os.lseek(fd, offset, os.SEEK_SET)
            parts = []
            while size > 0 and (part := os.read(fd, size)):
                parts.append(part)
                size -= len(part)
            return b"".join(parts)
        finally:
            os.lseek(fd, was, os.SEEK_SET)


def pwrite(fd: int, data: bytes, offset: int) -> None:
    """Write all of ``data`` to ``fd`` at ``offset``.

    ``os.pwrite`` where the OS has it; on Windows a seek and writes under the
    lock of :func:`pread`, which put the position back as it was.
    """
    view = memoryview(data)
    call = getattr(os, "pwrite", None)
    if call is not None:
        while view:
            view = view[call(fd, view, offset + len(data) - len(view)) :]
        return
    with _POSITION:
        was = os.lseek(fd, 0, os.SEEK_CUR)
        try:
            os.lseek(fd, offset, os.SEEK_SET)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.lseek(fd, was, os.SEEK_SET)
