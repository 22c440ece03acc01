"""The device side of delta updates (docs/format.md §16.6), with the bundle as fallback.

A device that runs version I, chosen for release R, uses R's delta from I when
the manifest lists one smaller than R's bundle and ``<tag>-<I>/`` is installed:
it downloads the delta (capped at its recorded size, then matched against its
size and SHA-256), verifies it with R's bundle keys, decrypts it, checks the
installed files against the delta's base digests, writes every target file
into a hidden staging folder with bounded output, and accepts the result only
if each file matches R's signed SHA-256. Only then is the folder renamed to
``<tag>-<R>/``, as a full install does. Any failure on this path leaves
nothing behind and is reported, and the caller installs the full bundle.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aoe_pack._io import Folder
from aoe_pack.bundle.delta import apply_delta
from aoe_pack.client.install import _check_place, _check_spelling, _place
from aoe_pack.errors import AoePackError, DeltaBaseError, DeltaError
from aoe_pack.keys import PublicKey
from aoe_pack.keys.load import DecryptionKey
from aoe_pack.repository.model import DeltaRef, Release, delta_for
from aoe_pack.storage.store import Store


@dataclass(frozen=True, kw_only=True)
class DeltaAttempt:
    """What the delta path did: installed (``unpacked``), or why it fell back."""

    delta: DeltaRef
    unpacked: Path | None = None
    downloaded: int = 0
    """Bytes of the delta fetched (0 when it was not fetched)."""
    error: AoePackError | None = None


def try_delta(
    store: Store,
    download_dir: Path,
    *,
    tag: str,
    release: Release,
    installed_version: str | None,
    trusted_keys: Sequence[PublicKey],
    decryption_key: DecryptionKey | None,
) -> DeltaAttempt | None:
    """Install ``release`` from its delta; None when it lists none usable from this version.

    Never raises an :class:`AoePackError`: a failure is returned, for the caller
    to fall back to the bundle (and say so).
    """
    delta = delta_for(release, installed_version)
    if delta is None or installed_version is None:
        return None
    name, base = f"{tag}-{release.version}", f"{tag}-{installed_version}"
    fetched = 0
    try:
        with Folder(download_dir) as folder:
            _check_spelling(folder, name)
            _check_place(folder, name)
            if folder.kind(base) != "folder":
                raise DeltaBaseError(f"{download_dir / base} is not an installed folder")
            part = f".{name}.aoed"
            try:
                store.fetch_blob(delta.url, folder.path / part, max_bytes=delta.size)
                fetched = _size(folder, part)
                _install(folder, part, name, base, tag=tag, release=release, delta=delta,
                         trusted_keys=trusted_keys, decryption_key=decryption_key)  # fmt: skip
            finally:
                folder.remove(part)
    except AoePackError as e:
        return DeltaAttempt(delta=delta, downloaded=fetched, error=e)
    return DeltaAttempt(delta=delta, unpacked=download_dir / name, downloaded=fetched)


def _size(folder: Folder, name: str) -> int:
    st = folder.lstat(name)
    return st.st_size if st is not None else 0


def _install(
    folder: Folder,
    part: str,
    name: str,
    base: str,
    *,
    tag: str,
    release: Release,
    delta: DeltaRef,
    trusted_keys: Sequence[PublicKey],
    decryption_key: DecryptionKey | None,
) -> None:
    fd = folder.open_file(part)
    if fd is None:
        raise DeltaError(f"{folder.path / part} was replaced while it was being downloaded")
    with os.fdopen(fd, "rb") as fp:
        digest = hashlib.file_digest(fp, "sha256").hexdigest()
        if (digest, fp.tell()) != (delta.sha256, delta.size):
            raise DeltaError(
                f"the delta from {delta.from_version} is not the one the manifest lists "
                f"({fp.tell()} bytes, SHA-256 {digest[:16]}…)"
            )
        fp.seek(0)
        folder.sweep(name)
        staging_fd, staging = folder.temp_folder(name)
        try:
            apply_delta(
                fp,
                folder.path / base,
                folder.path / staging,
                tag=tag,
                version=release.version,
                trusted_keys=trusted_keys,
                decryption_key=decryption_key,
            )
            _place(folder, staging, name)
        except BaseException:
            with contextlib.suppress(OSError):
                folder.remove_tree(staging)
            raise
        finally:
            folder.release(staging_fd, staging)
