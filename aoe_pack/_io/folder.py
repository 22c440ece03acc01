"""A folder whose entries are reached without following links, and its locked temporaries."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from aoe_pack._io.entries import is_link, is_plain, ours, own_file
from aoe_pack._io.locks import try_lock, unlink_if_closed
from aoe_pack.errors import OutputError

# Windows has neither O_NOFOLLOW nor dir_fd: there every name is checked with
# lstat before and after it is opened, and reparse points (links, junctions)
# are refused.
_AT = sys.platform != "win32"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO planted under our name must not block open()
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_OPEN = getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
# Also matches the names tempfile.mkstemp gave before temporaries were locked: an
# old aoe-pack still writing one would lose it (its rename fails; nothing is corrupted).
_TEMP = re.compile(r"\.(?P<stem>.+)\.[0-9a-z_]{8}\.partial")
_TEMP_TRIES = 16  # a fresh random name each time: 16 clashes or lost races is no accident


class Folder:
    """A folder whose entries are created, opened, renamed and removed without following links.

    The folder is the path the caller names, links in it included, as any tool
    takes a path. Every entry inside it is reached by name relative to an open
    descriptor of the folder with ``O_NOFOLLOW``, so a symbolic link planted
    under a name we use is never followed: a file is written to a new name
    created exclusively (``O_EXCL``) and renamed into place, which replaces a
    link there rather than writing through it, and a removal removes the link,
    never what it points to.

    Temporaries are hidden, ``.<name>.<8 random>.partial``, and locked by their
    writer for as long as it lives. :meth:`sweep` removes only our own whose
    lock it can take, i.e. whose writer died without cleaning up (SIGKILL,
    power cut). Age proves nothing: a slow writer of a big file may be hours old.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except FileExistsError as e:
            raise OutputError(f"{self.path} is not a folder") from e
        except OSError as e:
            raise OutputError(f"cannot create the folder {self.path}: {e.strerror}") from e
        self._fd: int | None = None
        if _AT:
            try:
                self._fd = os.open(self.path, os.O_RDONLY | _DIRECTORY | _OPEN)
            except OSError as e:
                raise OutputError(f"cannot open the folder {self.path}: {e.strerror}") from e

    def __enter__(self) -> Folder:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _at(self, name: str) -> tuple[str, int | None]:
        """``name`` as the OS calls take it: relative to our descriptor where there is one."""
        if name in ("", ".", "..") or any(c in name for c in "/\\\0"):
            raise OutputError(f"refusing to use {name!r} as a name in {self.path}")
        return (name, self._fd) if _AT else (str(self.path / name), None)

    def lstat(self, name: str) -> os.stat_result | None:
        """The entry itself (a link is not followed), or None when there is none."""
        where, fd = self._at(name)
        try:
            return os.stat(where, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def kind(self, name: str) -> str | None:
        """What ``name`` is: None (nothing), "file", "folder", "link" or "other".

        "link" covers symbolic links and, on Windows, junctions and other
        reparse points: anything that leads somewhere else.
        """
        st = self.lstat(name)
        if st is None:
            return None
        if is_plain(st) or is_plain(st, stat.S_IFDIR):
            return "file" if stat.S_ISREG(st.st_mode) else "folder"
        if is_link(st):
            return "link"
        return "other"

    def _same(self, name: str, fd: int) -> bool:
        st = self.lstat(name)
        return st is not None and os.path.samestat(st, os.fstat(fd))

    def create(self, name: str, mode: int = 0o644) -> int:
        """Open a new regular file for writing; an existing name, a link too, is FileExistsError."""
        where, dir_fd = self._at(name)
        if not _AT and self.lstat(name) is not None:
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), where)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _OPEN
        fd = os.open(where, flags, mode, dir_fd=dir_fd)
        if not _AT and not (is_plain(os.fstat(fd)) and self._same(name, fd)):
            os.close(fd)  # something slipped in between the lstat and the open
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), where)
        return fd

    def own_file(self, name: str) -> os.stat_result | None:
        """The entry if it is a regular file of ours under this one name, else None.

        Only such a file is trusted or written to: a hard link's other name
        (st_nlink > 1) lets whoever holds it read our writes, or change the
        bytes after we checked them, from outside the folder, and another
        user's file is theirs to change at will.
        """
        st = self.lstat(name)
        return st if st is not None and own_file(st) else None

    def open_file(self, name: str, flags: int = os.O_RDONLY) -> int | None:
        """Open a regular file of ours (:meth:`own_file`); None for anything else.

        None too if it is missing, a link, or one the OS will not open for us:
        the callers then take it as absent and write a new file in its place.
        """
        if self.own_file(name) is None:
            return None
        where, dir_fd = self._at(name)
        try:
            fd = os.open(where, flags | _NOFOLLOW | _NONBLOCK | _OPEN, dir_fd=dir_fd)
        except OSError as e:
            if isinstance(e, FileNotFoundError | PermissionError) or e.errno in (
                errno.ELOOP,
                errno.EMLINK,
            ):
                return None  # removed, or swapped for a link since the lstat; or unreadable
            raise
        if not (own_file(os.fstat(fd)) and self._same(name, fd)):
            os.close(fd)
            return None
        return fd

    def read(self, name: str, *, limit: int) -> bytes | None:
        """At most ``limit`` bytes of a regular file, or None (see :meth:`open_file`)."""
        fd = self.open_file(name)
        if fd is None:
            return None
        with os.fdopen(fd, "rb") as f:
            return f.read(limit)

    def replace(self, src: str, dst: str) -> None:
        """Rename ``src`` over ``dst``: a link at ``dst`` is replaced, never followed."""
        (s, sfd), (d, dfd) = self._at(src), self._at(dst)
        os.replace(s, d, src_dir_fd=sfd, dst_dir_fd=dfd)

    def remove(self, name: str) -> None:
        """Remove a file, or a link (not its target); a missing name is fine."""
        where, fd = self._at(name)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(where, dir_fd=fd)

    def remove_tree(self, name: str) -> None:
        """Remove a folder and what it holds; links in it are removed, never followed."""
        where, fd = self._at(name)
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(where, dir_fd=fd)  # fd-based, and refuses a link at ``where``

    def fsync(self) -> None:
        """Make the renames and removals in this folder survive a power cut."""
        if self._fd is not None:
            os.fsync(self._fd)

    # --- locked temporaries ------------------------------------------------------------

    def temp_file(self, stem: str, mode: int = 0o644) -> tuple[int, str]:
        """Create a hidden temp file for ``stem``, locked for as long as the descriptor is open."""

        def make(name: str) -> int:
            fd = self.create(name, 0o600)
            if hasattr(os, "fchmod"):
                os.fchmod(fd, mode)  # exactly ``mode``, whatever the umask
            return fd

        fd, name = self._temp(stem, make)
        assert fd is not None
        return fd, name

    def temp_folder(self, stem: str) -> tuple[int | None, str]:
        """Create a hidden temp folder for ``stem``, locked where the OS can (not Windows)."""

        def make(name: str) -> int | None:
            where, dir_fd = self._at(name)
            os.mkdir(where, 0o755, dir_fd=dir_fd)
            if not _AT:
                return None
            return os.open(where, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _OPEN, dir_fd=dir_fd)

        return self._temp(stem, make)

    def _temp(self, stem: str, make: Callable[[str], int | None]) -> tuple[int | None, str]:
        tries = raced = 0
        while tries < _TEMP_TRIES:
            tries += 1
            name = f".{stem}.{secrets.token_hex(4)}.partial"
            try:
                fd = make(name)
            except (FileExistsError, FileNotFoundError):
                continue  # a name in use, or one a sweeper removed before we opened it
            except OSError as e:  # no permission, no space, too many links...
                raise OutputError(
                    f"cannot create a temporary entry for {self.path / stem}: {e.strerror}"
                ) from e
            if fd is None:
                return fd, name
            try:
                # Never wait for this lock. Whoever took it first is a sweeper,
                # which then removes the entry, or a neighbour that could hold it
                # forever: either way the name is given up for a fresh one.
                locked = try_lock(fd)
                if locked is not False and self._same(name, fd):
                    return fd, name
                if locked is False and self._same(name, fd):
                    raced += 1
                    with contextlib.suppress(OSError):
                        if stat.S_ISDIR(os.fstat(fd).st_mode):
                            self.remove_tree(name)
                        else:
                            self.remove(name)
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
        why = ": another process holds the lock of every new one" if raced == tries else ""
        raise OutputError(f"cannot create a temporary entry for {self.path / stem}{why}")

    def sweep(self, stem: str) -> list[str]:
        """Remove the temporaries of ``stem`` whose writer is dead; their names.

        Only our own (same effective uid, where the OS has uids): in a folder
        others can write to, their temporaries are theirs to clean up. An entry
        whose removal fails is left where it is: a name that cannot be removed
        must not fail every later write (the writer's own temporary has a fresh
        random name, so it never needs that one).
        """
        names = os.listdir(self._fd if self._fd is not None else self.path)  # noqa: PTH208 (an fd)
        gone = []
        for name in names:
            match = _TEMP.fullmatch(name)
            if not (match and match["stem"] == stem):
                continue
            try:
                if self._remove_if_dead(name):
                    gone.append(name)
            except (OSError, RecursionError):  # rmtree recurses once per level of a tree
                continue
        return gone

    def _remove_if_dead(self, name: str) -> bool:
        st = self.lstat(name)
        if st is None or not (is_plain(st) or is_plain(st, stat.S_IFDIR)) or not ours(st):
            return False  # a link, a device or another user's entry is not ours to remove
        if not _AT:
            return not stat.S_ISDIR(st.st_mode) and unlink_if_closed(self.path / name)
        where, dir_fd = self._at(name)
        try:
            fd = os.open(where, os.O_RDONLY | _NOFOLLOW | _NONBLOCK | _OPEN, dir_fd=dir_fd)
        except OSError:
            return False
        try:
            if try_lock(fd) is not True or not self._same(name, fd):
                return False
            if stat.S_ISDIR(st.st_mode):
                self.remove_tree(name)
            else:
                self.remove(name)
            return True
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def output(self, name: str, *, mode: int = 0o644) -> Iterator[BinaryIO]:
        """Write ``name`` through a locked temp file, then rename it into place.

        A crash or an exception leaves the old entry (or nothing) under ``name``,
        never a half-written file; the fsync before the rename makes the new
        file survive a power cut too. Dead writers' temporaries of ``name`` are
        swept first.
        """
        try:
            self.sweep(name)
            fd, tmp = self.temp_file(name, mode)
        except OSError as e:
            raise OutputError(f"cannot write {self.path / name}: {e.strerror}") from e
        try:
            with os.fdopen(fd, "w+b") as fp:
                yield fp
                fp.flush()
                os.fsync(fp.fileno())
                try:  # while the lock is held, so that no sweeper takes the temp
                    self.replace(tmp, name)
                except OSError as e:
                    raise OutputError(f"cannot write {self.path / name}: {e.strerror}") from e
        except BaseException:
            with contextlib.suppress(OSError):
                self.remove(tmp)
            raise
