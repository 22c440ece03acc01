"""The write-behind flusher and the repository lock without what macOS and Windows lack.

- ``os.fdatasync`` and ``os.posix_fadvise`` (macOS, Windows): the write-behind
  flusher of bundle builds falls back to ``os.fsync`` and keeps the pages;
- ``fcntl`` (Windows): the folder repository's lock falls back to
  ``msvcrt.locking``, simulated here by a stand-in with its interface.
"""

from __future__ import annotations

import errno
import os
import sys
import threading
import types
from pathlib import Path

import pytest

from aoe_pack._io import WriteBehind, lock_exclusive
from aoe_pack.storage.local import LocalStore


def test_write_behind_without_fdatasync_or_fadvise_flushes_with_fsync(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delattr(os, "fdatasync", raising=False)  # neither is there on macOS or Windows
    monkeypatch.delattr(os, "posix_fadvise", raising=False)
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    failures: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: failures.append(args.exc_value))
    path = tmp_path / "out.bin"
    with path.open("wb") as f, WriteBehind(f.fileno(), window=1 << 16) as flusher:
        for i in range(8):
            f.write(bytes([i]) * (1 << 16))
            f.flush()
            flusher.written_up_to(f.tell())
    assert failures == []
    assert synced  # the flusher ran, on fsync
    assert path.read_bytes() == b"".join(bytes([i]) * (1 << 16) for i in range(8))


class _FakeMsvcrt(types.ModuleType):
    """``msvcrt.locking`` as Windows has it: LK_LOCK retries, then EDEADLK."""

    LK_LOCK = 1

    def __init__(self) -> None:
        super().__init__("msvcrt")
        self.calls = 0
        self.held: set[int] = set()

    def locking(self, fd: int, mode: int, nbytes: int) -> None:
        assert (mode, nbytes) == (self.LK_LOCK, 1)
        self.calls += 1
        if self.calls == 1:  # the first try times out, as under contention
            raise OSError(errno.EDEADLK, "Resource deadlock avoided")
        self.held.add(fd)


def test_folder_repository_locks_with_msvcrt_where_there_is_no_fcntl(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = _FakeMsvcrt()
    monkeypatch.setitem(sys.modules, "fcntl", None)
    monkeypatch.setitem(sys.modules, "msvcrt", fake)
    store = LocalStore(tmp_path / "repo")
    token = store.replace("manifest.json", b"{}", expected=None)
    assert store.read("manifest.json", max_bytes=10) is not None
    assert token
    assert fake.calls == 2  # retried after the timeout, then held
    assert fake.held


def test_lock_exclusive_raises_other_msvcrt_errors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = _FakeMsvcrt()

    def refuse(fd: int, mode: int, nbytes: int) -> None:
        raise OSError(errno.EBADF, "Bad file descriptor")

    fake.locking = refuse  # type: ignore[method-assign]
    monkeypatch.setitem(sys.modules, "fcntl", None)
    monkeypatch.setitem(sys.modules, "msvcrt", fake)
    fd = os.open(tmp_path / "lock", os.O_RDWR | os.O_CREAT)
    try:
        with pytest.raises(OSError, match="Bad file descriptor"):
            lock_exclusive(fd)
    finally:
        os.close(fd)
