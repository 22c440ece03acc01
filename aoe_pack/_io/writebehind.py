"""Flush a large output in the background while it is written (bundle builds)."""

from __future__ import annotations

import errno
import os
import threading

from aoe_pack.errors import OutputError


def _sync_data(fd: int) -> None:
    # macOS and Windows have no fdatasync: fsync flushes the metadata too.
    sync = getattr(os, "fdatasync", None) or os.fsync
    sync(fd)


def _drop_pages(fd: int, start: int, end: int) -> None:
    # Only Linux and the BSDs have posix_fadvise; elsewhere the cache keeps the
    # pages, which costs speed on a cold VM, not correctness.
    advise = getattr(os, "posix_fadvise", None)
    if advise is not None:
        advise(fd, start, end - start, os.POSIX_FADV_DONTNEED)


class WriteBehind:
    """Flush a file being written in the background and drop its written pages.

    A large sequential write into the page cache makes the kernel find fresh
    memory for every page. On the VMs we build on, fresh guest memory is
    faulted in from the host at ~0.4 GB/s (dd: 1 GiB in 2.7 s cold, 0.24 s
    warm). Flushing each completed window and dropping its pages keeps the
    page cache small and recycled, so a cold 1 GiB write takes ~0.7 s, and the
    data is on disk by the time the file is renamed into place.
    """

    def __init__(self, fd: int, *, window: int = 32 << 20) -> None:
        self._fd = fd
        self._window = window
        self._flushed = 0
        self._busy = threading.Lock()
        self._thread: threading.Thread | None = None
        self._error: OSError | None = None

    def written_up_to(self, position: int) -> None:
        """Tell the flusher that bytes before ``position`` are final."""
        if position - self._flushed < self._window or not self._busy.acquire(blocking=False):
            return
        start, self._flushed = self._flushed, position
        self._thread = threading.Thread(
            target=self._flush, args=(start, position), name="aoe-write-behind", daemon=True
        )
        self._thread.start()

    def _flush(self, start: int, end: int) -> None:
        try:
            _sync_data(self._fd)
            _drop_pages(self._fd, start, end)
        except OSError as e:  # reported by close(); advice failing (EINVAL) is not fatal
            if self._error is None or self._error.errno == errno.EINVAL:
                self._error = e  # the first real error wins: Linux reports it only once
        finally:
            self._busy.release()

    def close(self) -> None:
        """Wait for the flusher; raise if a flush failed (e.g. disk full)."""
        if self._thread is not None:
            self._thread.join()
        if self._error is not None and self._error.errno != errno.EINVAL:
            raise OutputError(f"writing the output failed: {self._error.strerror}")

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            self.close()
        elif self._thread is not None:  # never leave it flushing a file being discarded
            self._thread.join()
