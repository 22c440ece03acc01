"""Locks on open files: the lock of a temporary's writer, and the repository lock."""

from __future__ import annotations

import errno
import importlib
import sys
from pathlib import Path
from types import ModuleType

_fcntl: ModuleType | None = None if sys.platform == "win32" else importlib.import_module("fcntl")
"""POSIX file locks; None on Windows, which locks with msvcrt (:func:`lock_exclusive`)."""


def try_lock(fd: int) -> bool | None:
    """Lock ``fd`` exclusively without waiting: True; False when another open file
    holds it; None where locks are unsupported.

    ``flock`` locks belong to the open file, not to the process: the kernel
    drops them when the holder dies, by SIGKILL too, and a second open of the
    same file, even in the same process, does not share them. Some network
    file systems have no locks (None): there nothing can be proven dead.
    """
    if _fcntl is None:
        return None  # an open file cannot be deleted there: see Folder._remove_if_dead
    try:
        _fcntl.flock(fd, _fcntl.LOCK_EX | _fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as e:
        if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL, errno.EBADF):
            return None
        raise
    return True


def unlink_if_closed(path: Path) -> bool:
    """Windows: remove a file unless some process holds it open.

    Python opens files without FILE_SHARE_DELETE, so a removal that succeeds
    proves the writer gone. A folder offers no such proof: it is never swept.
    """
    try:
        path.unlink()
    except OSError:
        return False
    return True


def lock_exclusive(fd: int) -> None:
    """Hold an exclusive lock on the open file ``fd`` until it is closed.

    ``flock`` on POSIX; on Windows ``msvcrt.locking`` on its first byte, which
    the lock file never needs to hold (a lock past the end is allowed).
    """
    if _fcntl is not None:
        _fcntl.flock(fd, _fcntl.LOCK_EX)
        return
    msvcrt = importlib.import_module("msvcrt")
    while True:
        try:
            msvcrt.locking(fd, msvcrt.LK_LOCK, 1)  # retries for ~10 s, then raises
        except OSError as e:
            if e.errno != errno.EDEADLK:
                raise
        else:
            return
