"""Steps 12-16 of the device flow, inside the download folder (docs/format.md §15.6).

The folder is the device's own, but others may be able to write into it (a
shared storage area, another app, a compromised helper) and plant links or
files under the names used here. Everything in it is reached through
:class:`~aoe_pack._io.folder.Folder`: no write follows a link, nothing is deleted
through one, nothing lands outside the folder, and a failed update leaves
nothing new behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from aoe_pack._io import Folder
from aoe_pack.bundle.unpack import unpack_bundle
from aoe_pack.errors import BundleMismatchError, OutputError
from aoe_pack.keys import PublicKey
from aoe_pack.keys.load import DecryptionKey
from aoe_pack.repository.model import Release
from aoe_pack.repository.trust import check_bundle_matches
from aoe_pack.storage.store import HashingStore, Store


def install(
    store: Store,
    download_dir: Path,
    *,
    tag: str,
    release: Release,
    trusted_keys: Sequence[PublicKey],
    decryption_key: DecryptionKey | None,
) -> tuple[Path, Path]:
    """Download, match, verify, decrypt and unpack ``release``: (bundle, unpacked folder).

    The bundle is kept as ``<tag>-<version>.aoe`` (a later check reuses it if
    it still matches), the files go to ``<tag>-<version>/``.
    """
    name = f"{tag}-{release.version}"
    with Folder(download_dir) as folder:
        _check_spelling(folder, name + ".aoe")
        _check_place(folder, name)  # before spending a download on it
        with fetch_bundle(store, folder, release, name + ".aoe") as bundle:
            _unpack(
                folder,
                bundle,
                name,
                tag=tag,
                release=release,
                trusted_keys=trusted_keys,
                decryption_key=decryption_key,
            )
    return download_dir / (name + ".aoe"), download_dir / name


@contextlib.contextmanager
def fetch_bundle(store: Store, folder: Folder, release: Release, name: str) -> Iterator[BinaryIO]:
    """Steps 12-13: the release's bundle, size and SHA-256 matched, open to unpack.

    The bytes are hashed through the descriptor that the unpack then reads, so
    that what is unpacked is what was checked: reopening by name would read
    whatever was swapped in meanwhile. Only a regular file of ours under this
    one name is opened (:meth:`Folder.open_file`); anything else there (a link,
    a hard link, another user's file) is replaced by a download, never read
    or written through. A bundle kept by an earlier check is used again if it
    still matches.
    """
    fp, got = _open_hashed(folder, name)
    if got != (release.sha256, release.size):
        if fp is not None:
            fp.close()
        fp, got = _download(store, folder, release, name)
    if fp is None or got is None:
        raise OutputError(f"{folder.path / name} was replaced while it was being downloaded")
    try:
        check_bundle_matches(release, size=got[1], sha256=got[0])
    except BundleMismatchError:
        fp.close()  # first: Windows removes no open file
        folder.remove(name)
        raise
    with fp:
        yield fp


def _download(
    store: Store, folder: Folder, release: Release, name: str
) -> tuple[BinaryIO | None, tuple[str, int] | None]:
    """Download the bundle and open it, with its SHA-256 and size.

    A store that hashes while receiving (:class:`HashingStore`) spares reading
    a whole bundle again. The file is then opened by name as any kept file is
    (:meth:`Folder.open_file`: a regular file of ours, no link), so it must be
    the very file that was written and hashed (its device, inode and size,
    :meth:`HashedBlob.is_file`): whoever can write into the folder could
    rename another bundle onto the name in between, and a bundle of the same
    release signed by the same keys would pass every check of the unpack.
    """
    if not isinstance(store, HashingStore):
        store.fetch_blob(release.url, folder.path / name, max_bytes=release.size)
        return _open_hashed(folder, name)
    got = store.fetch_blob_hashed(release.url, folder.path / name, max_bytes=release.size)
    fd = folder.open_file(name)
    if fd is None:
        return None, None
    fp = os.fdopen(fd, "rb")
    if not got.is_file(os.fstat(fd)):
        fp.close()
        raise OutputError(
            f"{folder.path / name} is not the file that was downloaded and hashed: it was "
            "replaced since; refusing to unpack it",
            hint="something else writes into the download folder: give --download a folder "
            "only this app can write to",
        )
    return fp, (got.sha256, got.size)


def _open_hashed(folder: Folder, name: str) -> tuple[BinaryIO | None, tuple[str, int] | None]:
    """``name`` opened (:meth:`Folder.open_file`) with its SHA-256 and size; or None, None."""
    fd = folder.open_file(name)
    if fd is None:
        return None, None
    fp = os.fdopen(fd, "rb")
    try:
        digest = hashlib.file_digest(fp, "sha256").hexdigest()
    except BaseException:
        fp.close()
        raise
    return fp, (digest, fp.tell())


def _check_place(folder: Folder, name: str) -> None:
    """Only a real folder (an earlier install of this release) may be replaced at ``name``.

    A link there could lead anywhere, and a file is something the user put
    there: neither is deleted, nor written through, without the user saying so.
    """
    _check_spelling(folder, name)
    kind = folder.kind(name)
    path = folder.path / name
    if kind == "link":
        raise OutputError(
            f"{path} is a symbolic link; refusing to replace it or write where it points",
            hint=f"remove the link to install {name} there",
        )
    if kind in ("file", "other"):
        what = "a file, not a folder" if kind == "file" else "not a folder"
        raise OutputError(
            f"{path} is {what}; refusing to delete it",
            hint=f"move it away to install {name} there",
        )


def _check_spelling(folder: Folder, name: str) -> None:
    """Refuse ``name`` where the folder finds it under another spelling.

    macOS and Windows file systems mostly ignore case: there ``tag_x-1.0.0``
    is the very entry ``TAG_X-1.0.0`` of another tag, whose kept bundle or
    installed files this install would replace.
    """
    if folder.lstat(name) is None:
        return
    names = folder.names()
    if name in names:
        return
    other = next((repr(n) for n in names if n.casefold() == name.casefold()), "another entry")
    raise OutputError(
        f"{folder.path / name} is {other} on this file system, which ignores case",
        hint="install models whose tags differ only in case into different --download folders",
    )


def _unpack(
    folder: Folder,
    bundle: BinaryIO,
    name: str,
    *,
    tag: str,
    release: Release,
    trusted_keys: Sequence[PublicKey],
    decryption_key: DecryptionKey | None,
) -> None:
    """Steps 14-16 into a hidden, locked folder, renamed to ``name`` only once all passed.

    The staging folder's lock lets the next check remove it if this one is
    killed (:meth:`Folder.sweep`); any failure here removes it at once.
    """
    folder.sweep(name)
    fd, staging = folder.temp_folder(name)
    try:
        try:
            # The identity is checked once the manifest is authenticated, before
            # anything is decrypted (§15.6, after step 7).
            unpack_bundle(
                bundle,
                folder.path / staging,
                trusted_keys=trusted_keys,
                decryption_key=decryption_key,
                expect=(tag, release.version),
            )
        except BundleMismatchError:
            bundle.close()  # first: Windows removes no open file
            folder.remove(name + ".aoe")  # signed as another model: never installable as this one
            raise
        _place(folder, staging, name)
    except BaseException:
        with contextlib.suppress(OSError):
            folder.remove_tree(staging)
        raise
    finally:
        folder.release(fd, staging)


def _place(folder: Folder, staging: str, name: str) -> None:
    """Rename ``staging`` to ``name``, replacing an earlier install of the same release.

    The old folder is first renamed aside to a hidden name (which the next
    sweep removes if we die here), so it is never deleted in place, and a
    link or file that appeared at ``name`` meanwhile is refused, not removed.
    """
    _check_place(folder, name)
    aside = None
    try:
        if folder.kind(name) == "folder":
            aside = f".{name}.{os.urandom(4).hex()}.partial"
            folder.replace(name, aside)
        folder.replace(staging, name)
    except OSError as e:
        if aside is not None:
            with contextlib.suppress(OSError):
                folder.replace(aside, name)
        raise OutputError(f"cannot install {folder.path / name}: {e.strerror}") from e
    if aside is not None:
        with contextlib.suppress(OSError):
            folder.remove_tree(aside)
    folder.fsync()
