"""A folder's hidden temporaries: created held, renamed into place, swept when their writer died.

A temporary is ``.<stem>.<8 random>.partial``, a file or a folder, held by its
writer for as long as the writer lives. :func:`sweep` removes only those of
ours whose writer is provably gone (SIGKILL, power cut). Age alone proves
nothing: a slow writer of a big file may be hours old. The proof depends on
what the OS offers:

- Linux and macOS: the writer holds an ``flock`` on the open temporary (file
  or folder). The kernel drops it when the writer dies, so a lock the sweep
  can take proves the writer gone.
- Windows has no ``flock``, but removes no file that is open: a removal that
  succeeds proves that nobody holds it. A writer must close its temporary
  file to rename it (Windows renames no open file), so a closed one is spared
  for :data:`CLOSED_GRACE` after its last write. Python cannot hold a folder
  open there, so a temp folder is held through an open sibling file,
  ``.<stem>.<same random>.held``, created first and removed by :func:`release`.
- Elsewhere (no locks, open files removable: a network file system without
  locks) nothing proves a writer dead, and nothing is swept.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from aoe_pack._io import facilities
from aoe_pack._io.entries import is_plain, ours
from aoe_pack._io.facilities import flag, opens_folders
from aoe_pack._io.locks import can_lock, try_lock
from aoe_pack.errors import OutputError

# Also matches the names tempfile.mkstemp gave before temporaries were locked: an
# old aoe-pack still writing one would lose it (its rename fails; nothing is corrupted).
_TEMP = re.compile(r"\.(?P<stem>.+)\.[0-9a-z_]{8}\.(?P<kind>partial|held)")
_TEMP_TRIES = 16  # a fresh random name each time: 16 clashes or lost races is no accident

CLOSED_GRACE = 300.0
"""Windows: seconds after its last write during which a closed temporary file is not swept.

Its writer closes it just before renaming it into place; only a writer
stalled for this long between the two (a suspended machine) loses its
temporary, and then its rename fails: nothing is corrupted.
"""


class Entries(Protocol):
    """What the temporaries need of a folder (:class:`aoe_pack._io.folder.Folder` is one)."""

    path: Path

    def create(self, name: str, mode: int = 0o644) -> int: ...
    def lstat(self, name: str) -> os.stat_result | None: ...
    def mkdir(self, name: str) -> None: ...
    def names(self) -> list[str]: ...
    def open_entry(self, name: str, flags: int) -> int: ...
    def remove(self, name: str) -> None: ...
    def remove_tree(self, name: str) -> None: ...
    def replace(self, src: str, dst: str) -> None: ...
    def same(self, name: str, fd: int) -> bool: ...
    def unlink(self, name: str) -> None: ...


def _held(name: str) -> str:
    """The file that holds the temp folder ``name`` on Windows."""
    return name.removesuffix(".partial") + ".held"


def temp_file(folder: Entries, stem: str, mode: int) -> tuple[int, str]:
    """A new hidden temp file for ``stem``, held for as long as the descriptor is open."""

    def make(name: str) -> tuple[int, str]:
        fd = folder.create(name, 0o600)
        fchmod = getattr(os, "fchmod", None)
        # Exactly ``mode``, whatever the umask. Windows has no fchmod (before
        # Python 3.13) and no mode bits beyond read-only, which stays clear.
        if fchmod is not None:
            fchmod(fd, mode)
        return fd, name

    return _temp(folder, stem, make)


def temp_folder(folder: Entries, stem: str) -> tuple[int, str]:
    """A new hidden temp folder for ``stem``, held until :func:`release`."""

    def make(name: str) -> tuple[int, str]:
        if opens_folders():
            folder.mkdir(name)
            return folder.open_entry(name, os.O_RDONLY | flag("O_DIRECTORY")), name
        held = _held(name)  # first: a folder seen without its open .held is a dead one's
        fd = folder.create(held, 0o600)
        try:
            folder.mkdir(name)
        except BaseException:
            os.close(fd)
            folder.remove(held)
            raise
        return fd, held

    return _temp(folder, stem, make)


def release(folder: Entries, fd: int, name: str) -> None:
    """Close the descriptor of the temp folder ``name``; on Windows remove its ``.held`` too."""
    os.close(fd)
    if not opens_folders():
        with contextlib.suppress(OSError):
            folder.remove(_held(name))


def _temp(folder: Entries, stem: str, make: Callable[[str], tuple[int, str]]) -> tuple[int, str]:
    """Make a temporary with ``make`` (its descriptor, and the name that descriptor holds)
    under fresh names until one is ours."""
    tries = raced = 0
    while tries < _TEMP_TRIES:
        tries += 1
        name = f".{stem}.{secrets.token_hex(4)}.partial"
        try:
            fd, holds = make(name)
        except (FileExistsError, FileNotFoundError):
            continue  # a name in use, or one a sweeper removed before we opened it
        except OSError as e:  # no permission, no space, too many links...
            raise OutputError(
                f"cannot create a temporary entry for {folder.path / stem}: {e.strerror}"
            ) from e
        try:
            # Never wait for this lock. Whoever took it first is a sweeper,
            # which then removes the entry, or a neighbour that could hold it
            # forever: either way the name is given up for a fresh one.
            locked = try_lock(fd)
            if locked is not False and folder.same(holds, fd):
                return fd, name
            if locked is False and folder.same(holds, fd):
                raced += 1
                with contextlib.suppress(OSError):
                    if stat.S_ISDIR(os.fstat(fd).st_mode):
                        folder.remove_tree(name)
                    else:
                        folder.remove(name)
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    why = ": another process holds the lock of every new one" if raced == tries else ""
    raise OutputError(f"cannot create a temporary entry for {folder.path / stem}{why}")


def sweep(folder: Entries, stem: str) -> list[str]:
    """Remove the temporaries of ``stem`` whose writer is dead; their names.

    Only our own (same effective uid, where the OS has uids): in a folder
    others can write to, their temporaries are theirs to clean up. An entry
    whose removal fails is left where it is: a name that cannot be removed
    must not fail every later write (the writer's own temporary has a fresh
    random name, so it never needs that one).
    """
    gone = []
    for name in folder.names():
        match = _TEMP.fullmatch(name)
        if not (match and match["stem"] == stem):
            continue
        try:
            if _remove_if_dead(folder, name, held=match["kind"] == "held"):
                gone.append(name)
        except (OSError, RecursionError):  # rmtree recurses once per level of a tree
            continue
    return gone


def _remove_if_dead(folder: Entries, name: str, *, held: bool) -> bool:
    st = folder.lstat(name)
    if st is None or not (is_plain(st) or is_plain(st, stat.S_IFDIR)) or not ours(st):
        return False  # a link, a device or another user's entry is not ours to remove
    is_dir = stat.S_ISDIR(st.st_mode)
    if can_lock() and not held and (opens_folders() or not is_dir):
        return _remove_if_unlocked(folder, name, is_dir=is_dir)
    if facilities.WINDOWS:
        return _remove_if_unheld(folder, name, st, held=held)
    return False  # open files are removable here: nothing proves a writer gone


def _remove_if_unlocked(folder: Entries, name: str, *, is_dir: bool) -> bool:
    """Remove ``name`` if we can take its writer's lock (flock)."""
    try:
        fd = folder.open_entry(name, os.O_RDONLY | flag("O_NONBLOCK"))
    except OSError:
        return False
    try:
        if try_lock(fd) is not True or not folder.same(name, fd):
            return False
        if is_dir:
            folder.remove_tree(name)
        else:
            folder.remove(name)
        return True
    finally:
        os.close(fd)


def _remove_if_unheld(folder: Entries, name: str, st: os.stat_result, *, held: bool) -> bool:
    """Windows: remove ``name`` if no writer holds it (or, for a folder, its ``.held``)."""
    if held:  # its folder was renamed into place or removed: an orphan once closed
        return stat.S_ISREG(st.st_mode) and _remove_if_closed(folder, name)
    if stat.S_ISDIR(st.st_mode):
        if folder.lstat(_held(name)) is not None and not _remove_if_closed(folder, _held(name)):
            return False
        folder.remove_tree(name)
        return True
    if time.time() - st.st_mtime < CLOSED_GRACE:
        return False  # perhaps closed by its writer to be renamed this very moment
    return _remove_if_closed(folder, name)


def _remove_if_closed(folder: Entries, name: str) -> bool:
    """Windows: remove a file unless some process holds it open.

    Python opens files without FILE_SHARE_DELETE, so a removal that succeeds
    proves that no writer holds it.
    """
    try:
        folder.unlink(name)
    except OSError:
        return False
    return True


@contextlib.contextmanager
def output(folder: Entries, name: str, *, mode: int = 0o644) -> Iterator[BinaryIO]:
    """:meth:`Folder.output`: a held temp file renamed over ``name`` once complete."""
    try:
        sweep(folder, name)
        fd, tmp = temp_file(folder, name, mode)
    except OSError as e:
        raise OutputError(f"cannot write {folder.path / name}: {e.strerror}") from e
    try:
        with os.fdopen(fd, "w+b") as fp:
            yield fp
            fp.flush()
            os.fsync(fp.fileno())
            if not facilities.WINDOWS:  # while the lock is held, so that no sweeper takes it
                _rename(folder, tmp, name)
        if facilities.WINDOWS:  # which renames no open file: see CLOSED_GRACE
            _rename(folder, tmp, name)
    except BaseException:
        with contextlib.suppress(OSError):
            folder.remove(tmp)
        raise


def _rename(folder: Entries, tmp: str, name: str) -> None:
    try:
        folder.replace(tmp, name)
    except OSError as e:
        raise OutputError(f"cannot write {folder.path / name}: {e.strerror}") from e
