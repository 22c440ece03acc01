"""The one capped reader of the files a user names (keys, KEKs, trusted roots)."""

from __future__ import annotations

import errno
import os


class FileTooLargeError(OSError):
    """A file held more bytes than :func:`read_capped` takes.

    An ``OSError`` (EFBIG), so that a caller handling read errors reports it
    even where it does not name it; callers name it to say what the cap is for.
    """

    def __init__(self, path: str | os.PathLike[str], cap: int) -> None:
        super().__init__(errno.EFBIG, f"holds more than {cap} bytes", os.fspath(path))
        self.cap = cap


def read_capped(path: str | os.PathLike[str], cap: int) -> bytes:
    """All bytes of the file at ``path``; :class:`FileTooLargeError` past ``cap`` bytes.

    Reads at most ``cap + 1`` bytes, whatever the file is, and never asks
    ``stat()``: a FIFO (``--trusted-key <(...)``), ``/dev/zero`` or a /proc file
    report a size that says nothing of what ``read()`` returns, and a regular
    file can grow between the two calls. Every file a user names for a key, a
    KEK or a trusted root is read through here.
    """
    n = 0
    with open(path, "rb", buffering=0) as f, memoryview(bytearray(cap + 1)) as buf:  # noqa: PTH123
        while n <= cap and (got := f.readinto(buf[n:])):
            n += got
        if n > cap:
            raise FileTooLargeError(path, cap)
        return bytes(buf[:n])
