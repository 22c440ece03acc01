"""Locks on open files: the lock of a temporary's writer, and the repository lock.

``flock`` (the ``fcntl`` module) on Linux and macOS. Windows has no ``fcntl``:
the repository lock uses ``msvcrt.locking`` there, and a temporary's writer is
proven alive otherwise (an open file cannot be removed there: see
:meth:`aoe_pack._io.folder.Folder.sweep`).
"""

from __future__ import annotations

import errno
import importlib
import os
from types import ModuleType


def _fcntl() -> ModuleType | None:
    """The ``fcntl`` module; None where there is none (Windows)."""
    try:
        return importlib.import_module("fcntl")
    except ImportError:
        return None


def can_lock() -> bool:
    """Whether :func:`try_lock` can lock at all here (not on Windows)."""
    return _fcntl() is not None


def try_lock(fd: int) -> bool | None:
    """Lock ``fd`` exclusively without waiting: True; False when another open file
    holds it; None where locks are unsupported.

    ``flock`` locks belong to the open file, not to the process: the kernel
    drops them when the holder dies, by SIGKILL too, and a second open of the
    same file, even in the same process, does not share them. Some network
    file systems have no locks (None): there nothing can be proven dead.
    """
    fcntl = _fcntl()
    if fcntl is None:
        return None  # an open file cannot be deleted there: see Folder.sweep
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as e:
        if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL, errno.EBADF):
            return None
        raise
    return True


def lock_exclusive(fd: int, *, at: int = 0) -> None:
    """Hold an exclusive lock on the open file ``fd`` until it is closed.

    ``flock`` on POSIX; on Windows ``msvcrt.locking`` on the byte at offset
    ``at``, which the file never needs to hold (a lock past the end is
    allowed). Windows' locks are mandatory: others cannot read a locked byte,
    so a file that others read while it is locked is locked past its end.
    """
    fcntl = _fcntl()
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    msvcrt = importlib.import_module("msvcrt")
    os.lseek(fd, at, os.SEEK_SET)  # msvcrt.locking locks from the file position
    while True:
        try:
            msvcrt.locking(fd, msvcrt.LK_LOCK, 1)  # retries for ~10 s, then raises
        except OSError as e:
            if e.errno != errno.EDEADLK:
                raise
        else:
            return
