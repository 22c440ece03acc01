"""Locks on open files: a temporary's writer's, the repository's, a device state's.

``flock`` (the ``fcntl`` module) on Linux and macOS. Windows has no ``fcntl``:
the repository lock uses ``msvcrt.locking`` there, and a temporary's writer is
proven alive otherwise (an open file cannot be removed there: see
:meth:`aoe_pack._io.folder.Folder.sweep`).
"""

from __future__ import annotations

import errno
import importlib
import os
import time
from types import ModuleType

_LONGEST_PAUSE = 0.05
"""Seconds between two tries of :func:`lock_within` at most: a waiter sees a release soon."""


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


def lock_within(fd: int, seconds: float, *, at: int = 0) -> bool:
    """:func:`lock_exclusive`, waiting at most ``seconds``: False if another still holds it.

    Neither ``flock`` nor ``msvcrt.locking`` takes a timeout: the lock is tried
    without blocking, at pauses that grow to 50 ms, until the deadline.
    """
    deadline = time.monotonic() + seconds
    pause = 0.001
    while not _lock_now(fd, at):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(pause, left))
        pause = min(2 * pause, _LONGEST_PAUSE)
    return True


def _lock_now(fd: int, at: int) -> bool:
    """Lock ``fd`` exclusively if no one else holds it: whether it is locked now."""
    fcntl = _fcntl()
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        # Also a POSIX record lock, the only kind Java's FileChannel.lock takes
        # (clients/jvm): flock and record locks do not see each other, so without it
        # a JVM check and this one would both hold the state. Record locks belong to
        # the process, so between threads the flock above still decides (and a
        # waiter here that gives up and closes its descriptor drops the record lock:
        # the flock still keeps every other aoe-pack out).
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            fcntl.flock(fd, fcntl.LOCK_UN)
            if e.errno in (errno.EACCES, errno.EAGAIN):
                return False
            raise
        return True
    msvcrt = importlib.import_module("msvcrt")
    os.lseek(fd, at, os.SEEK_SET)
    try:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # one try: EACCES when another holds it
    except OSError as e:
        if e.errno not in (errno.EACCES, errno.EDEADLK):
            raise
        return False
    return True
