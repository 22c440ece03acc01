"""Small file-system helpers shared by every command that writes."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from aoe_pack.errors import OutputError


@contextlib.contextmanager
def atomic_output(
    path: Path, *, mode: int = 0o644, overwrite: bool = True, durable: bool = True
) -> Iterator[BinaryIO]:
    """Write ``path`` through a temp file in the same folder, then ``os.replace``.

    A crash or an exception leaves the old file (or nothing) in place, never a
    half-written one. ``durable`` adds an fsync before the rename, so the data
    also survives a power cut; that costs ~0.4 s per GiB here, which bundle
    builds skip (a CI artifact is rebuilt, not recovered, after a power cut).
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise OutputError(f"{path} already exists", hint="pass --force to overwrite it")
    folder = path.parent if str(path.parent) else Path()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=folder)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror}") from e
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w+b") as fp:
            yield fp
            fp.flush()
            if durable:
                os.fsync(fp.fileno())
        Path(tmp).replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            Path(tmp).unlink()
        raise


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644, overwrite: bool = True) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_output(path, mode=mode, overwrite=overwrite) as fp:
        fp.write(data)
