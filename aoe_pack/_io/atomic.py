"""Write a file atomically: all of it under its name, or what was there before."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from aoe_pack._io.folder import Folder
from aoe_pack.errors import OutputError


def refuse_existing(path: Path) -> None:
    """:class:`OutputError` if anything is at ``path``, a dangling link included.

    For commands that overwrite only with ``--force``, to refuse before any
    long work; :func:`atomic_output` checks again when it writes.
    """
    if os.path.lexists(path):
        raise _exists(path)


def _exists(path: Path) -> OutputError:
    return OutputError(f"{path} already exists", hint="pass --force to overwrite it")


@contextlib.contextmanager
def atomic_output(path: Path, *, mode: int = 0o644, overwrite: bool = True) -> Iterator[BinaryIO]:
    """Write ``path`` atomically, never through a link there (:meth:`Folder.output`)."""
    path = Path(path)
    with Folder(path.parent) as folder:
        if not overwrite and folder.lstat(path.name) is not None:
            raise _exists(path)
        with folder.output(path.name, mode=mode) as fp:
            yield fp


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644, overwrite: bool = True) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_output(path, mode=mode, overwrite=overwrite) as fp:
        fp.write(data)
