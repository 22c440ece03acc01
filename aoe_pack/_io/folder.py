"""A folder whose entries are reached without following links, and its locked temporaries."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from aoe_pack._io import facilities, temporaries
from aoe_pack._io.capped import read_upto
from aoe_pack._io.entries import is_link, is_plain, own_file
from aoe_pack._io.facilities import base_flags, dir_fds, flag, opens_folders
from aoe_pack.errors import OutputError

# Windows: how long a rename onto a file that someone holds open is retried (a
# reader of the repository, a virus scanner, an indexer), about 2 s in all.
_PINNED_WAITS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


class Folder:
    """A folder whose entries are created, opened, renamed and removed without following links.

    The folder is the path the caller names, links in it included, as any tool
    takes a path. Every entry inside it is reached by name relative to an open
    descriptor of the folder with ``O_NOFOLLOW``, so a symbolic link planted
    under a name we use is never followed: a file is written to a new name
    created exclusively (``O_EXCL``) and renamed into place, which replaces a
    link there rather than writing through it, and a removal removes the link,
    never what it points to.

    Where the OS has no ``dir_fd`` and no ``O_NOFOLLOW`` (Windows), every entry
    is reached by path instead: each name is checked with ``lstat`` before it
    is opened and compared with what was opened after, and the folder itself
    (and each folder above it, up to the one the caller named) must still be
    the one first seen. A link or junction that is in place when we look is
    refused, never written through; one swapped in and out again between two
    looks is not seen (docs/platforms.md).

    Temporaries are hidden, ``.<name>.<8 random>.partial``, and held by their
    writer for as long as it lives. :meth:`sweep` removes only our own whose
    writer died without cleaning up (SIGKILL, power cut): see
    :mod:`aoe_pack._io.temporaries`.
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
        self._seen: os.stat_result | None = None  # without dir_fd: the folder first seen
        self._parent: Folder | None = None
        try:
            if dir_fds():
                self._fd = os.open(self.path, os.O_RDONLY | flag("O_DIRECTORY") | base_flags())
            else:
                self._seen = self.path.stat()
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
        return (name, self._fd) if self._fd is not None else (str(self.path / name), None)

    def _check_intact(self) -> None:
        """Without ``dir_fd``: this folder, and each above it, is still the one first seen.

        The folder the caller named may be reached through links (as when it
        was first seen); a folder below it must be a plain folder, never a link
        or junction swapped in since.
        """
        folder: Folder | None = self
        while folder is not None and folder._seen is not None:
            try:
                if folder._parent is None:
                    st = folder.path.stat()
                    ok = stat.S_ISDIR(st.st_mode)
                else:
                    st = folder.path.lstat()
                    ok = is_plain(st, stat.S_IFDIR)
            except OSError:
                ok = False
            if not (ok and os.path.samestat(st, folder._seen)):
                raise OutputError(
                    f"{folder.path} was replaced while in use; refusing to go on through it"
                )
            folder = folder._parent

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

    def names(self) -> list[str]:
        """The names in this folder, as the folder spells them."""
        return os.listdir(self._fd if self._fd is not None else self.path)  # noqa: PTH208 (an fd)

    def same(self, name: str, fd: int) -> bool:
        """Whether ``name`` is, right now, the very entry open as ``fd``."""
        st = self.lstat(name)
        return st is not None and os.path.samestat(st, os.fstat(fd))

    def create(self, name: str, mode: int = 0o644) -> int:
        """Open a new regular file for writing; an existing name, a link too, is FileExistsError."""
        where, dir_fd = self._at(name)
        if self._fd is None and self.lstat(name) is not None:
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), where)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | flag("O_NOFOLLOW") | base_flags()
        fd = os.open(where, flags, mode, dir_fd=dir_fd)
        if self._fd is None:
            if not (is_plain(os.fstat(fd)) and self.same(name, fd)):
                os.close(fd)  # something slipped in between the lstat and the open
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), where)
            self._close_unless_intact(fd)
        return fd

    def _close_unless_intact(self, fd: int) -> None:
        try:
            self._check_intact()
        except OutputError:
            os.close(fd)
            raise

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
        # O_NONBLOCK: a FIFO planted under our name must not block open() (Windows
        # has none, and no FIFO can sit in a folder there).
        flags |= flag("O_NOFOLLOW") | flag("O_NONBLOCK") | base_flags()
        try:
            fd = os.open(where, flags, dir_fd=dir_fd)
        except OSError as e:
            if isinstance(e, FileNotFoundError | PermissionError) or e.errno in (
                errno.ELOOP,
                errno.EMLINK,
            ):
                return None  # removed, or swapped for a link since the lstat; or unreadable
            raise
        if not (own_file(os.fstat(fd)) and self.same(name, fd)):
            os.close(fd)
            return None
        if self._fd is None:
            self._close_unless_intact(fd)
        return fd

    def read(self, name: str, *, limit: int) -> bytes | None:
        """At most ``limit`` bytes of a regular file, or None (see :meth:`open_file`).

        Read in chunks (:func:`~aoe_pack._io.capped.read_upto`): a small file
        costs its size, never ``limit``.
        """
        fd = self.open_file(name)
        if fd is None:
            return None
        with os.fdopen(fd, "rb", buffering=0) as f:
            return read_upto(f, limit)

    def subfolder(self, name: str) -> Folder:
        """The folder ``name`` in this one (:meth:`mkdir` makes it), reached without a link.

        A link there, or anything but a folder, is an OSError (ELOOP, ENOTDIR),
        never followed. The result must be closed, as this folder must.
        """
        where, dir_fd = self._at(name)
        sub = Folder.__new__(Folder)
        sub.path, sub._parent, sub._fd, sub._seen = self.path / name, self, None, None
        if self._fd is not None:
            flags = os.O_RDONLY | flag("O_DIRECTORY") | flag("O_NOFOLLOW") | base_flags()
            sub._fd = os.open(where, flags, dir_fd=dir_fd)
            return sub
        st = sub.path.lstat()
        if not is_plain(st, stat.S_IFDIR):
            code = errno.ELOOP if is_link(st) else errno.ENOTDIR
            raise OSError(code, os.strerror(code), where)
        sub._seen = st
        self._check_intact()
        return sub

    def replace(self, src: str, dst: str) -> None:
        """Rename ``src`` over ``dst``: a link at ``dst`` is replaced, never followed.

        Windows renames nothing onto a file that someone holds open: there the
        rename is retried for about two seconds, the time a reader takes to
        read a document, before the PermissionError is raised.
        """
        (s, sfd), (d, dfd) = self._at(src), self._at(dst)
        for wait in (*_PINNED_WAITS, None):
            try:
                os.replace(s, d, src_dir_fd=sfd, dst_dir_fd=dfd)
            except PermissionError:
                if wait is None or not facilities.WINDOWS:
                    raise
                time.sleep(wait)
            else:
                return

    def rename_new(self, src: str, dst: str) -> None:
        """Rename ``src`` to ``dst`` unless it exists: FileExistsError, even if it just appeared.

        A hard link then an unlink of ``src`` on POSIX; a plain rename on
        Windows, whose rename never replaces. Where the file system has no
        hard links (FAT, exFAT, some network shares), ``dst`` is looked up and
        then renamed onto: a name that appears between the two is replaced.
        """
        (s, sfd), (d, dfd) = self._at(src), self._at(dst)
        if facilities.WINDOWS:
            os.rename(s, d, src_dir_fd=sfd, dst_dir_fd=dfd)
            return
        follow = {"follow_symlinks": False} if os.link in os.supports_follow_symlinks else {}
        try:
            os.link(s, d, src_dir_fd=sfd, dst_dir_fd=dfd, **follow)
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            if self.lstat(dst) is not None:
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), d) from e
            os.rename(s, d, src_dir_fd=sfd, dst_dir_fd=dfd)
            return
        os.unlink(s, dir_fd=sfd)

    def remove(self, name: str) -> None:
        """Remove a file, or a link (not its target); a missing name is fine."""
        with contextlib.suppress(FileNotFoundError):
            self.unlink(name)

    def unlink(self, name: str) -> None:
        """Remove a file, or a link (not its target); FileNotFoundError if there is none."""
        where, fd = self._at(name)
        os.unlink(where, dir_fd=fd)

    def mkdir(self, name: str, mode: int = 0o755) -> None:
        """Create the folder ``name``; FileExistsError if the name is taken, by a link too.

        ``mode`` is masked by the umask, as ``mkdir`` does.
        """
        where, fd = self._at(name)
        os.mkdir(where, mode, dir_fd=fd)

    def open_entry(self, name: str, flags: int) -> int:
        """``os.open`` of the entry ``name`` itself: never through a link, where the OS
        has ``O_NOFOLLOW`` (else :meth:`same` tells, after the open)."""
        where, fd = self._at(name)
        return os.open(where, flags | flag("O_NOFOLLOW") | base_flags(), dir_fd=fd)

    def remove_folder(self, name: str) -> None:
        """Remove an empty folder (OSError if it is not empty)."""
        where, fd = self._at(name)
        os.rmdir(where, dir_fd=fd)

    def remove_tree(self, name: str) -> None:
        """Remove a folder and what it holds; links in it are removed, never followed."""
        where, fd = self._at(name)
        with contextlib.suppress(FileNotFoundError):
            # fd-based where it can be, path-based on Windows: either way it refuses a
            # link (or junction) at ``where`` and removes, never follows, those inside.
            shutil.rmtree(where, dir_fd=fd)

    def fsync(self) -> None:
        """Make the renames and removals in this folder survive a power cut.

        Windows cannot open a folder to flush it: there NTFS's own journal
        orders the renames, and a power cut may undo the last ones.
        """
        if self._fd is not None:
            os.fsync(self._fd)
        elif opens_folders():
            fd = os.open(self.path, os.O_RDONLY | base_flags())
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    # --- temporaries (aoe_pack._io.temporaries) ------------------------------------------

    def temp_file(self, stem: str, mode: int = 0o644) -> tuple[int, str]:
        """Create a hidden temp file for ``stem``, held for as long as the descriptor is open."""
        return temporaries.temp_file(self, stem, mode)

    def temp_folder(self, stem: str) -> tuple[int, str]:
        """Create a hidden temp folder for ``stem``, held until :meth:`release`."""
        return temporaries.temp_folder(self, stem)

    def release(self, fd: int, name: str) -> None:
        """Let go of the temp folder ``name`` (or what it was renamed to) held by ``fd``."""
        temporaries.release(self, fd, name)

    def sweep(self, stem: str) -> list[str]:
        """Remove the temporaries of ``stem`` whose writer is dead; their names."""
        return temporaries.sweep(self, stem)

    @contextlib.contextmanager
    def output(self, name: str, *, mode: int = 0o644) -> Iterator[BinaryIO]:
        """Write ``name`` through a held temp file, then rename it into place.

        A crash or an exception leaves the old entry (or nothing) under ``name``,
        never a half-written file; the fsync before the rename makes the new
        file survive a power cut too. Dead writers' temporaries of ``name`` are
        swept first.
        """
        with temporaries.output(self, name, mode=mode) as fp:
            yield fp
