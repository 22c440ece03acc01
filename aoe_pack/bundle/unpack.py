"""Unpack a verified bundle's model files into a folder.

Nothing becomes visible until everything is verified: every file is streamed
(decrypted when needed) into a hidden partial file, its chunks and whole-file
SHA-256 checked; only when all files passed are they moved into place. Any
failure removes the partial files. Paths are resolved component by component
with directory file descriptors and ``O_NOFOLLOW``, so neither a hostile entry
name nor a symlink planted in the output folder can redirect a write outside it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aoe_pack._crypto.keys import PublicKey
from aoe_pack.bundle._pipeline import Progress, worker_count
from aoe_pack.bundle.format import DEFAULT_LIMITS, Limits
from aoe_pack.bundle.manifest import BundleManifest
from aoe_pack.bundle.verify import authenticate, data_key_for, open_bundle, stream_payload
from aoe_pack.errors import DecryptionError, OutputError, UnsafeEntryError
from aoe_pack.keys.load import DecryptionKey

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True, kw_only=True)
class UnpackResult:
    """What ``unpack`` wrote."""

    out: Path
    manifest: BundleManifest
    written: tuple[Path, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "model": self.manifest.model.to_dict(),
            "files": [str(p) for p in self.written],
        }


@dataclass
class _Pending:
    dir_fd: int
    partial: str
    final: str
    relpath: str


def _open_dir(parent_fd: int | None, name: str, *, create: bool) -> int:
    if create:
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o755, dir_fd=parent_fd)
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as e:
        raise OutputError(
            f"cannot use {name!r} as an output folder: {e.strerror} (symlinks are never followed)"
        ) from e


def _safe_parts(relpath: str) -> list[str]:
    parts = relpath.split("/")
    if relpath.startswith("/") or any(p in ("", ".", "..") or "\\" in p for p in parts):
        raise UnsafeEntryError(f"refusing to write unsafe path {relpath!r}")
    return parts


def unpack_bundle(
    path: Path,
    out: Path,
    *,
    trusted_keys: Sequence[PublicKey],
    threshold: int = 1,
    decryption_key: DecryptionKey | None = None,
    force: bool = False,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress | None = None,
) -> UnpackResult:
    """Verify ``path`` and write its model files under ``out``."""
    with open_bundle(path, limits) as bundle:
        manifest, _ = authenticate(bundle, trusted_keys, threshold, limits)
        data_key = None
        if manifest.encryption is not None:
            if decryption_key is None:
                raise DecryptionError(
                    "the bundle is encrypted; unpacking needs its decryption key",
                    hint="pass --decryption-key with a recipient's private key or key file",
                )
            data_key = data_key_for(manifest, decryption_key)
        Path(out).mkdir(parents=True, exist_ok=True)
        root_fd = _open_dir(None, str(out), create=False)
        pending: list[_Pending] = []
        dir_fds: list[int] = [root_fd]
        try:
            with ThreadPoolExecutor(worker_count(), thread_name_prefix="aoe-unpack") as pool:
                for f, e in zip(manifest.files, bundle.payload_entries(), strict=True):
                    *dirs, name = _safe_parts(f.path)
                    fd = root_fd
                    for d in dirs:
                        fd = _open_dir(fd, d, create=True)
                        dir_fds.append(fd)
                    if not force and _exists(fd, name):
                        raise OutputError(
                            f"{Path(out) / f.path} already exists",
                            hint="pass --force to replace it",
                        )
                    item = _Pending(fd, f".{name}.{secrets.token_hex(4)}.partial", name, f.path)
                    out_fd = os.open(item.partial, _FILE_FLAGS, 0o644, dir_fd=fd)
                    pending.append(item)
                    with os.fdopen(out_fd, "wb") as sink:
                        stream_payload(
                            bundle,
                            f,
                            e,
                            data_key=data_key,
                            pool=pool,
                            progress=progress,
                            sink=sink.write,
                        )
                        sink.flush()
                        os.fsync(sink.fileno())
            for item in pending:
                os.replace(item.partial, item.final, src_dir_fd=item.dir_fd, dst_dir_fd=item.dir_fd)
                item.partial = ""
        finally:
            for item in pending:
                if item.partial:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(item.partial, dir_fd=item.dir_fd)
            for fd in dir_fds:
                os.close(fd)
    return UnpackResult(
        out=Path(out), manifest=manifest, written=tuple(Path(out) / p.relpath for p in pending)
    )


def _exists(dir_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True
