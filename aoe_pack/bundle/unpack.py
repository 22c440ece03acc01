"""Unpack a verified bundle's model files into a folder.

Nothing becomes visible until everything is verified: every file is streamed
(decrypted when needed) into a hidden partial file, its chunks and whole-file
SHA-256 checked; only when all files passed are they moved into place. Any
failure removes the partial files. Paths are resolved component by component
through :class:`~aoe_pack._io.folder.Folder` (directory file descriptors and
``O_NOFOLLOW``; on Windows, paths checked before and after each open), so
neither a hostile entry name nor a symlink planted in the output folder can
redirect a write outside it. On Windows, names that are devices or streams
there (``aux.txt``, ``a:b``) are refused too.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from aoe_pack._io import facilities
from aoe_pack._io.folder import Folder
from aoe_pack.bundle._chunked import Progress, worker_count
from aoe_pack.bundle.format import DEFAULT_LIMITS, Limits
from aoe_pack.bundle.manifest import BundleManifest
from aoe_pack.bundle.signatures import check_threshold
from aoe_pack.bundle.verify import (
    authenticate,
    data_key_if_given,
    open_bundle,
    stream_payload,
)
from aoe_pack.errors import BundleMismatchError, DecryptionError, OutputError, UnsafeEntryError
from aoe_pack.keys import PublicKey
from aoe_pack.keys.load import DecryptionKey

# Names Windows takes for devices, whatever their extension (CON, aux.txt, COM1.bin).
_WINDOWS_DEVICES = re.compile(
    r"(CON|PRN|AUX|NUL|CONIN\$|CONOUT\$|COM[0-9\u00b9\u00b2\u00b3]|LPT[0-9\u00b9\u00b2\u00b3])",
    re.IGNORECASE,
)
# Characters Windows refuses in a name, or reads as an alternate data stream (":").
_WINDOWS_FORBIDDEN = frozenset('<>:"|?*').union(map(chr, range(32)))


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
    folder: Folder
    partial: str
    final: str
    relpath: str
    placed: bool = False


class _OutputTree:
    """The output folder, walked one folder at a time and never through a link."""

    def __init__(self, root: Path) -> None:
        _refuse_non_folder(root)
        self._made_root = _missing_folders(root)  # removed again if the unpack fails
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot create the output folder {root}: {e.strerror}") from e
        self.root = root
        self._folders: dict[tuple[str, ...], Folder] = {(): Folder(root)}
        self._created: list[tuple[Folder, str]] = []  # folders this unpack made, in order

    def folder(self, parts: list[str]) -> Folder:
        """Folder ``parts`` below the root, created if missing."""
        for depth in range(1, len(parts) + 1):
            key = tuple(parts[:depth])
            if key in self._folders:
                continue
            parent = self._folders[key[:-1]]
            try:
                parent.mkdir(key[-1])
                self._created.append((parent, key[-1]))
            except FileExistsError:
                pass
            except OSError as e:
                raise OutputError(f"cannot create {'/'.join(key)}: {e.strerror}") from e
            try:
                self._folders[key] = parent.subfolder(key[-1])
            except OSError as e:
                raise OutputError(
                    f"cannot use {key[-1]!r} as an output folder: {e.strerror} "
                    "(symlinks are never followed)"
                ) from e
        return self._folders[tuple(parts)]

    def check_target(self, folder: Folder, name: str, relpath: str, *, force: bool) -> None:
        st = folder.lstat(name)
        if st is None:
            return
        if stat.S_ISDIR(st.st_mode):
            raise OutputError(f"{self.root / relpath} is a folder; a model file goes there")
        if not force:
            raise OutputError(
                f"{self.root / relpath} already exists", hint="pass --force to replace it"
            )

    def place(self, item: _Pending, *, force: bool) -> None:
        """Move a verified partial file into place (never over a file unless ``force``)."""
        try:
            if force:
                item.folder.replace(item.partial, item.final)
            else:  # fails if the name appeared meanwhile: no silent overwrite
                item.folder.rename_new(item.partial, item.final)
        except FileExistsError as e:
            raise OutputError(f"{self.root / item.relpath} appeared while unpacking") from e
        except OSError as e:
            raise OutputError(f"cannot write {self.root / item.relpath}: {e.strerror}") from e
        item.placed = True

    def discard(self, pending: list[_Pending]) -> None:
        """Remove partial files, and the folders this unpack created if left empty."""
        for item in pending:
            with contextlib.suppress(OSError):
                item.folder.remove(item.partial)
        for parent, name in reversed(self._created):
            with contextlib.suppress(OSError):
                parent.remove_folder(name)
        for folder in self._made_root:  # deepest first; rmdir only ever removes an empty one
            with contextlib.suppress(OSError):
                folder.rmdir()

    def close(self) -> None:
        for folder in self._folders.values():
            folder.close()


def _refuse_non_folder(root: Path) -> None:
    """Say what is in the way of the output folder, rather than a bare errno."""
    try:
        st = root.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return  # mkdir says what is wrong with a parent
    if stat.S_ISLNK(st.st_mode):
        raise OutputError(f"{root} is a symbolic link; symlinks are never followed")
    if stat.S_ISREG(st.st_mode):
        raise OutputError(f"{root} is a file, not a folder")
    if not stat.S_ISDIR(st.st_mode):
        raise OutputError(f"{root} is not a folder")


def _missing_folders(root: Path) -> list[Path]:
    """``root`` and those of its parents that do not exist yet, deepest first."""
    missing = []
    while not os.path.lexists(root) and root != root.parent:
        missing.append(root)
        root = root.parent
    return missing


def _safe_parts(relpath: str) -> list[str]:
    parts = relpath.split("/")
    if relpath.startswith("/") or any(p in ("", ".", "..") or "\\" in p for p in parts):
        raise UnsafeEntryError(f"refusing to write unsafe path {relpath!r}")
    if facilities.WINDOWS:
        for part in parts:
            _refuse_on_windows(relpath, part)
    return parts


def _refuse_on_windows(relpath: str, part: str) -> None:
    """Windows writes some names elsewhere than a file of that name: refuse them there."""
    if _WINDOWS_DEVICES.fullmatch(part.split(".", 1)[0].rstrip(" ")):
        why = f"{part!r} is a device there"
    elif ":" in part:
        why = f"{part!r} is a stream of the file {part.split(':', 1)[0]!r} there"
    elif part[-1] in ". ":
        why = f"Windows drops the dot or space that {part!r} ends with"
    elif not _WINDOWS_FORBIDDEN.isdisjoint(part):
        why = f'{part!r} holds a character Windows refuses (<>"|?* or a control character)'
    else:
        return
    raise UnsafeEntryError(f"refusing to write {relpath!r} on Windows: {why}")


def unpack_bundle(
    path: Path | BinaryIO,
    out: Path,
    *,
    trusted_keys: Sequence[PublicKey],
    threshold: int = 1,
    decryption_key: DecryptionKey | None = None,
    force: bool = False,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress | None = None,
    expect: tuple[str, str] | None = None,
) -> UnpackResult:
    """Verify ``path`` and write its model files under ``out``.

    ``path`` may be a binary file already open (:func:`open_bundle`).
    ``expect`` is the ``(tag, version)`` a repository lists the bundle as: a
    bundle signed as another model is :class:`BundleMismatchError` as soon as
    its manifest is authenticated, before anything is decrypted (§15.6).
    """
    check_threshold(trusted_keys, threshold)  # before the file: §8
    with open_bundle(path, limits) as bundle:
        manifest, _ = authenticate(bundle, trusted_keys, threshold, limits)
        if expect is not None and (manifest.model.tag, manifest.model.version) != expect:
            raise BundleMismatchError(
                f"the bundle says it is {manifest.model.tag} {manifest.model.version}, "
                f"the manifest {expect[0]} {expect[1]}"
            )
        if manifest.encryption is not None and decryption_key is None:
            raise DecryptionError(
                "the bundle is encrypted; unpacking needs its decryption key",
                hint="pass --decryption-key with a recipient's private key or key file",
            )
        # A key given for a bundle that arrived in the clear is refused, as in verify (§8).
        data_key = data_key_if_given(manifest, decryption_key)
        tree = _OutputTree(Path(out))
        pending: list[_Pending] = []
        try:
            with ThreadPoolExecutor(worker_count(), thread_name_prefix="aoe-unpack") as pool:
                for f, e in zip(manifest.files, bundle.payload_entries(), strict=True):
                    *dirs, name = _safe_parts(f.path)
                    folder = tree.folder(dirs)
                    tree.check_target(folder, name, f.path, force=force)
                    partial = f".{name}.{secrets.token_hex(4)}.partial"
                    item = _Pending(folder, partial, name, f.path)
                    try:
                        out_fd = folder.create(item.partial)
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
                    except OSError as err:  # disk full, name too long, I/O error...
                        raise OutputError(f"cannot write {f.path}: {err.strerror}") from err
            for item in pending:
                tree.place(item, force=force)
        except BaseException:
            tree.discard([p for p in pending if not p.placed])
            raise
        finally:
            tree.close()
    return UnpackResult(
        out=Path(out), manifest=manifest, written=tuple(Path(out) / p.relpath for p in pending)
    )
