"""macOS and Windows, simulated on Linux by taking away what they lack.

Each simulator removes what the OS lacks (attributes of ``os``, whole modules)
and makes the calls that remain behave as they do there, so that a test then
runs aoe-pack's real operations on the fallbacks.

macOS: no ``fdatasync``, ``posix_fadvise``, ``posix_fallocate``,
``sched_getaffinity``, ``memfd_create`` or file seals (``fcntl.F_ADD_SEALS``).

Windows, besides all of that:

- no ``dir_fd`` (NotImplementedError, as CPython raises there), no
  ``os.listdir(fd)``, and ``os.open`` of a folder fails (EACCES);
- no ``O_NOFOLLOW``, ``O_DIRECTORY``, ``O_NONBLOCK`` or ``O_CLOEXEC``;
  ``O_BINARY`` exists, and aoe-pack opening a file without it fails the test
  (text mode there turns LF into CRLF and stops reading at Ctrl-Z);
- no ``geteuid``/``getuid``, ``fchmod``, ``fchown``, ``mkfifo``, ``pread``,
  ``pwrite``; no ``fcntl``, ``resource`` or ``pwd`` module: ``msvcrt``
  stands in for locks (its ``locking`` takes a real flock, or fails with
  EACCES when it cannot at once);
- a file open in this process cannot be removed, renamed or renamed onto,
  and a folder holding an open file cannot be renamed; nor can a read-only
  file be removed; ``os.rename`` never replaces; ``fsync`` of a descriptor
  open only for reading fails (EBADF);
- ``subprocess`` takes no ``pass_fds``;
- :data:`aoe_pack._io.facilities.WINDOWS` is set.

Only this process's open files pin a name: the writers in these tests run in
this process. Path syntax stays POSIX (``/``), as it must on this OS.

On macOS and on Windows themselves, the tests run on what the OS really has:
there is nothing to take away (:data:`REAL`). Windows is simulated on Linux
only, which lists a process's open files in /proc (:data:`as_on_windows`);
macOS on POSIX systems only (:data:`as_on_macos`).
"""

from __future__ import annotations

import errno
import importlib
import os
import shutil
import stat
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aoe_pack._io import facilities

REAL = {"darwin": "macos", "win32": "windows"}.get(sys.platform)
"""The OS under the tests, when it is one of those simulated: nothing is taken away there."""

# Skips for OS facilities, never for a missing package: the simulation takes calls
# away, so it needs the OS under it to have them (POSIX calls; /proc/self/fd).
as_on_macos = pytest.mark.skipif(
    sys.platform == "win32", reason="simulating macOS takes POSIX calls away: Windows has none"
)
as_on_windows = pytest.mark.skipif(
    REAL != "windows" and not Path("/proc/self/fd").is_dir(),
    reason="simulating Windows needs /proc/self/fd to tell the files this process holds open",
)


def _fcntl() -> types.ModuleType:
    """``fcntl``, imported when a simulation starts: Windows has none. The Windows
    simulation keeps the module it got, then takes it away from the code under test."""
    return importlib.import_module("fcntl")


O_BINARY = 1 << 30  # a bit Linux's open() does not use, stripped before the real call

_MISSING_ON_MACOS = (
    "fdatasync",
    "posix_fadvise",
    "posix_fallocate",
    "sched_getaffinity",
    "memfd_create",
    "MFD_CLOEXEC",
    "MFD_ALLOW_SEALING",
)
_MISSING_ON_WINDOWS = (
    *_MISSING_ON_MACOS,
    "O_NOFOLLOW",
    "O_DIRECTORY",
    "O_NONBLOCK",
    "O_CLOEXEC",
    "geteuid",
    "getuid",
    "getegid",
    "getgid",
    "fchmod",
    "fchown",
    "mkfifo",
    "pread",
    "pwrite",
)
_SEALS = ("F_ADD_SEALS", "F_GET_SEALS", "F_SEAL_SEAL", "F_SEAL_SHRINK", "F_SEAL_GROW")


def macos(mp: pytest.MonkeyPatch) -> None:
    """Take away what macOS lacks (on macOS itself, nothing is there to take)."""
    for name in _MISSING_ON_MACOS:
        mp.delattr(os, name, raising=False)
    for name in (*_SEALS, "F_SEAL_WRITE"):
        mp.delattr(_fcntl(), name, raising=False)


class FakeMsvcrt(types.ModuleType):
    """``msvcrt.locking`` over a real flock, counting its calls."""

    LK_UNLCK, LK_LOCK, LK_NBLCK = 0, 1, 2

    def __init__(self, fcntl: types.ModuleType) -> None:
        super().__init__("msvcrt")
        self.calls = 0
        self._fcntl = fcntl

    def locking(self, fd: int, mode: int, nbytes: int) -> None:
        assert mode in (self.LK_LOCK, self.LK_NBLCK)
        assert nbytes == 1
        self.calls += 1
        if mode == self.LK_LOCK:
            self._fcntl.flock(fd, self._fcntl.LOCK_EX)
            return
        try:
            self._fcntl.flock(fd, self._fcntl.LOCK_EX | self._fcntl.LOCK_NB)
        except BlockingIOError:  # Windows says so with EACCES
            raise PermissionError(errno.EACCES, "Permission denied") from None


class _Popen(subprocess.Popen):  # type: ignore[type-arg]
    def __init__(self, *args: Any, pass_fds: Any = (), **kwargs: Any) -> None:
        assert not pass_fds, "pass_fds not supported on Windows."
        super().__init__(*args, **kwargs)


def windows(mp: pytest.MonkeyPatch) -> FakeMsvcrt | None:
    """Take away what Windows lacks, and make the rest behave as there (the stand-in for
    ``msvcrt``); on Windows itself, nothing (None)."""
    if REAL == "windows":
        return None
    real = _Real()
    macos(mp)
    for name in _MISSING_ON_WINDOWS:
        mp.delattr(os, name, raising=False)
    mp.setattr(os, "O_BINARY", O_BINARY, raising=False)
    mp.setattr(os, "supports_dir_fd", set())
    mp.setattr(os, "supports_fd", {os.stat})
    mp.setattr(os, "supports_follow_symlinks", {os.stat})
    mp.setattr(shutil, "_use_fd_functions", False)
    for module in ("fcntl", "resource", "pwd", "grp"):
        mp.setitem(sys.modules, module, None)
    msvcrt = FakeMsvcrt(real.fcntl)
    mp.setitem(sys.modules, "msvcrt", msvcrt)
    mp.setattr(subprocess, "Popen", _Popen)
    mp.setattr(facilities, "WINDOWS", True)
    for name, fake in real.fakes().items():
        mp.setattr(os, name, fake)
    return msvcrt


def _no_dir_fd(**fds: int | None) -> None:
    for name, fd in fds.items():
        if fd is not None:
            raise NotImplementedError(f"{name} unavailable on this platform")


def _from_aoe_pack() -> bool:
    return str(sys._getframe(2).f_globals.get("__name__", "")).startswith("aoe_pack")


class _Real:
    """The real calls, and Windows-like stand-ins built on them."""

    def __init__(self) -> None:
        self.open, self.stat, self.lstat = os.open, os.stat, os.lstat
        self.unlink, self.rename, self.replace = os.unlink, os.rename, os.replace
        self.mkdir, self.rmdir, self.link = os.mkdir, os.rmdir, os.link
        self.listdir, self.scandir, self.fsync = os.listdir, os.scandir, os.fsync
        self.readlink = os.readlink
        self.fcntl = _fcntl()

    def open_here(self, path: str) -> bool:
        """Whether this process holds ``path`` open (for a folder: anything in it)."""
        try:
            target = self.lstat(path)
        except OSError:
            return False
        inside = os.path.realpath(path) + "/" if stat.S_ISDIR(target.st_mode) else None
        for entry in self.listdir("/proc/self/fd"):
            link = f"/proc/self/fd/{entry}"
            try:
                st = self.stat(link)
                if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
                    return True
                if inside is not None and self.readlink(link).startswith(inside):
                    return True
            except OSError:
                continue
        return False

    def pinned(self, *paths: Any) -> None:
        for path in paths:
            if self.open_here(os.fspath(path)):
                raise PermissionError(
                    errno.EACCES, "The process cannot access the file: it is open", path
                )

    def fakes(self) -> dict[str, Callable[..., Any]]:
        return {
            "open": self.open_,
            "stat": self.stat_,
            "lstat": self.lstat_,
            "unlink": self.unlink_,
            "remove": self.unlink_,
            "rename": self.rename_,
            "replace": self.replace_,
            "mkdir": self.mkdir_,
            "rmdir": self.rmdir_,
            "link": self.link_,
            "listdir": self.listdir_,
            "scandir": self.scandir_,
            "fsync": self.fsync_,
        }

    def open_(self, path: Any, flags: int, mode: int = 0o777, *, dir_fd: Any = None) -> int:
        _no_dir_fd(dir_fd=dir_fd)
        if Path(path).is_dir():
            raise PermissionError(errno.EACCES, "Permission denied", path)
        if flags & O_BINARY:
            flags &= ~O_BINARY
        elif _from_aoe_pack():
            raise AssertionError(f"aoe-pack opened {path} without O_BINARY: text mode")
        return self.open(path, flags, mode)

    def stat_(self, path: Any, *, dir_fd: Any = None, follow_symlinks: bool = True) -> Any:
        _no_dir_fd(dir_fd=dir_fd)
        return self.stat(path, follow_symlinks=follow_symlinks)

    def lstat_(self, path: Any, *, dir_fd: Any = None) -> Any:
        _no_dir_fd(dir_fd=dir_fd)
        return self.lstat(path)

    def unlink_(self, path: Any, *, dir_fd: Any = None) -> None:
        _no_dir_fd(dir_fd=dir_fd)
        self.pinned(path)
        st = self.lstat(path)
        if stat.S_ISREG(st.st_mode) and not st.st_mode & stat.S_IWUSR:
            raise PermissionError(errno.EACCES, "Access is denied: read-only", path)
        self.unlink(path)

    def rename_(
        self, src: Any, dst: Any, *, src_dir_fd: Any = None, dst_dir_fd: Any = None
    ) -> None:
        _no_dir_fd(src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)
        self.pinned(src)
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "Cannot create a file when it exists", dst)
        self.rename(src, dst)

    def replace_(
        self, src: Any, dst: Any, *, src_dir_fd: Any = None, dst_dir_fd: Any = None
    ) -> None:
        _no_dir_fd(src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)
        self.pinned(src, dst)
        self.replace(src, dst)

    def mkdir_(self, path: Any, mode: int = 0o777, *, dir_fd: Any = None) -> None:
        _no_dir_fd(dir_fd=dir_fd)
        self.mkdir(path, mode)

    def rmdir_(self, path: Any, *, dir_fd: Any = None) -> None:
        _no_dir_fd(dir_fd=dir_fd)
        self.rmdir(path)

    def link_(
        self,
        src: Any,
        dst: Any,
        *,
        src_dir_fd: Any = None,
        dst_dir_fd: Any = None,
        follow_symlinks: bool = True,
    ) -> None:
        _no_dir_fd(src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)
        if not follow_symlinks:
            raise NotImplementedError("link: follow_symlinks unavailable on this platform")
        self.link(src, dst)

    def listdir_(self, path: Any = ".") -> list[Any]:
        if isinstance(path, int):
            raise TypeError("listdir: path should be string, bytes or os.PathLike, not int")
        return self.listdir(path)

    def scandir_(self, path: Any = ".") -> Any:
        if isinstance(path, int):
            raise TypeError("scandir: path should be string, bytes or os.PathLike, not int")
        return self.scandir(path)

    def fsync_(self, fd: Any) -> None:
        fd = fd if isinstance(fd, int) else fd.fileno()
        if self.fcntl.fcntl(fd, self.fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY:
            raise OSError(errno.EBADF, "Bad file descriptor")
        self.fsync(fd)


def case_insensitive(mp: pytest.MonkeyPatch) -> None:
    """Look names up as macOS and Windows file systems mostly do: ignoring case.

    Only ``lstat`` (``os.stat`` without following links) is simulated: a name
    that is not there, spelled as given, finds an entry spelled otherwise.
    """
    real_stat, real_listdir = os.stat, os.listdir

    def stat_(path: Any, *, dir_fd: int | None = None, follow_symlinks: bool = True) -> Any:
        try:
            return real_stat(path, dir_fd=dir_fd, follow_symlinks=follow_symlinks)
        except FileNotFoundError:
            if follow_symlinks or isinstance(path, int):
                raise
            head, name = os.path.split(os.fspath(path))
            names = real_listdir(dir_fd if dir_fd is not None and not head else head or ".")
            for other in names:
                if other.casefold() == name.casefold():
                    spelled = str(Path(head) / other)
                    return real_stat(spelled, dir_fd=dir_fd, follow_symlinks=False)
            raise

    mp.setattr(os, "stat", stat_)
