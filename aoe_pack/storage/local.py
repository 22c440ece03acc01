"""A repository in a local folder: a static site any web server can serve.

Compare-and-swap is a lock plus an atomic rename: ``replace`` takes an
exclusive lock on ``.aoe-repo.lock`` (``flock``; ``msvcrt.locking`` on
Windows), compares the current file's SHA-256 with the caller's token, writes
a temp file, fsyncs it and renames it over the old one, then fsyncs the
folder (where the OS can open one: not Windows). Readers never lock: a rename
is atomic, so they see the old file or the new one, never a mix. A crash
leaves at most a ``.*.partial`` temp file, which nothing reads.

A replaced document's modification time moves on by at least a whole second:
web servers derive ``ETag`` (nginx, Apache: mtime and size) and
``Last-Modified`` from it in seconds, so two versions written within one
second would share validators, and a device revalidating the first would be
told ``304 Not Modified`` about the second until the next change.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from aoe_pack._io import atomic_output, lock_exclusive
from aoe_pack._io.facilities import base_flags, flag, opens_folders
from aoe_pack.errors import DownloadTooLargeError, StoreConflictError, StoreError
from aoe_pack.storage.store import Stored

LOCK_NAME = ".aoe-repo.lock"
_UNSAFE = frozenset("\\:\0")  # characters no document name has (see LocalStore._path)


class LocalStore:
    """The :class:`~aoe_pack.storage.store.Store` of a folder."""

    plain_files = True
    """Documents are files a web server can serve as they are (with gzip siblings)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def url(self) -> str:
        return str(self.root)

    def _path(self, name: str) -> Path:
        # Split on "/" only, whatever the OS: on Windows a backslash would be
        # another separator, and "C:x" or "a:b" a drive or a stream.
        parts = name.split("/")
        if any(p in ("", ".", "..") or not _UNSAFE.isdisjoint(p) for p in parts):
            raise StoreError(f"refusing document name {name!r} outside the repository")
        return self.root.joinpath(*parts)

    def read(self, name: str, *, max_bytes: int) -> Stored | None:
        path = self._path(name)
        try:
            with _open_regular(path) as f:
                data = f.read(max_bytes + 1)
        except FileNotFoundError:
            return None
        except OSError as e:
            raise StoreError(f"cannot read {path}: {e.strerror}") from e
        if len(data) > max_bytes:
            raise DownloadTooLargeError(f"{path} is larger than its cap of {max_bytes} bytes")
        return Stored(data, hashlib.sha256(data).hexdigest())

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / LOCK_NAME, os.O_RDWR | os.O_CREAT | base_flags(), 0o644)
        except OSError as e:
            raise StoreError(f"cannot lock repository {self.root}: {e.strerror}") from e
        try:
            lock_exclusive(fd)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def replace(self, name: str, data: bytes, *, expected: str | None) -> str:
        path = self._path(name)
        with self._locked():
            try:
                with _open_regular(path) as f:
                    current = hashlib.file_digest(f, "sha256").hexdigest()
            except FileNotFoundError:
                current = None
            except OSError as e:
                raise StoreError(f"cannot read {path}: {e.strerror}") from e
            if current != expected:
                raise StoreConflictError(f"{path} changed since it was read")
            previous = _mtime_ns(path) if current is not None else None
            with atomic_output(path) as f:
                f.write(data)
                if previous is not None:
                    _later_second(f, previous)
            _fsync_dir(path.parent)
        return hashlib.sha256(data).hexdigest()

    def put_blob(self, name: str, source: Path, *, sha256: str, size: int) -> None:
        path = self._path(name)
        if self.has_blob(name) == size:
            return
        try:
            with atomic_output(path) as out, Path(source).open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
        except OSError as e:
            raise StoreError(f"cannot upload {source} to {path}: {e.strerror}") from e
        _fsync_dir(path.parent)

    def has_blob(self, name: str) -> int | None:
        try:
            return self._path(name).stat().st_size
        except FileNotFoundError:
            return None

    def fetch_blob(self, name: str, dest: Path, *, max_bytes: int) -> None:
        """Copy a bundle, capped, to ``dest``: atomically, and never through a link there."""
        path = self._path(name)
        try:
            with _open_regular(path) as src, atomic_output(Path(dest)) as out:
                copied = 0
                while chunk := src.read(min(1 << 20, max_bytes + 1 - copied)):
                    copied += len(chunk)
                    if copied > max_bytes:
                        raise DownloadTooLargeError(
                            f"{path} is larger than its cap of {max_bytes} bytes"
                        )
                    out.write(chunk)
        except FileNotFoundError as e:
            raise StoreError(f"{path} does not exist") from e
        except OSError as e:
            raise StoreError(f"cannot copy {path}: {e.strerror}") from e

    def close(self) -> None:
        """Nothing to release."""


_SECOND = 1_000_000_000


def _mtime_ns(path: Path) -> int | None:
    with contextlib.suppress(OSError):
        return path.stat().st_mtime_ns
    return None


def _later_second(f: BinaryIO, previous_ns: int) -> None:
    """Give the file being written an mtime in a later whole second than ``previous_ns``.

    Through the open file, before it is renamed into place, so that no link
    is followed and no reader sees the new bytes with the old validators.
    Windows cannot set times through a descriptor; its servers' validators
    are not the mtime-and-size ETags this guards against.
    """
    if os.utime not in os.supports_fd:
        return
    f.flush()  # a later flush would set the mtime again
    now = os.fstat(f.fileno()).st_mtime_ns
    if now // _SECOND <= previous_ns // _SECOND:
        later = (previous_ns // _SECOND + 1) * _SECOND
        os.utime(f.fileno(), ns=(later, later))


def _open_regular(path: Path) -> io.BufferedReader:
    """Open a regular file for reading, never blocking on a FIFO or reading a device.

    A repository folder may be served from storage others can write to: a
    FIFO would block a reader forever, and a link to /dev/zero would never end.
    (Windows has no O_NONBLOCK, and no FIFO or device can sit in a folder there.)
    """
    fd = os.open(path, os.O_RDONLY | flag("O_NONBLOCK") | base_flags())
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise StoreError(f"{path} is not a regular file")
    return os.fdopen(fd, "rb")


def _fsync_dir(folder: Path) -> None:
    if not opens_folders():
        return  # Windows cannot open a folder to flush it: NTFS's journal orders the rename
    fd = os.open(folder, os.O_RDONLY | base_flags())
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
