"""What a directory entry is, judged from its ``lstat``: plain, ours, ours alone."""

from __future__ import annotations

import os
import stat

from aoe_pack._io.facilities import euid

_REPARSE = getattr(stat, "FILE_ATTRIBUTE_REPARSE_POINT", 0)


def is_plain(st: os.stat_result, kind: int = stat.S_IFREG) -> bool:
    """A regular file (or folder) itself: not a link, junction or other reparse point."""
    return stat.S_IFMT(st.st_mode) == kind and not getattr(st, "st_file_attributes", 0) & _REPARSE


def ours(st: os.stat_result) -> bool:
    """Owned by our effective uid; always true where the OS has no uids (Windows)."""
    uid = euid()
    return uid is None or st.st_uid == uid


def own_file(st: os.stat_result) -> bool:
    """A regular file, ours, with no other name (:meth:`Folder.own_file`)."""
    return is_plain(st) and st.st_nlink == 1 and ours(st)


def is_link(st: os.stat_result) -> bool:
    """A symbolic link or, on Windows, a junction or other reparse point: it leads elsewhere."""
    return stat.S_ISLNK(st.st_mode) or bool(getattr(st, "st_file_attributes", 0) & _REPARSE)
