"""Steps 12-16 of the device flow, inside the download folder (docs/format.md §15.6).

The folder is the device's own, but others may be able to write into it (a
shared storage area, another app, a compromised helper) and plant links or
files under the names used here. Everything in it is reached through
:class:`~aoe_pack._io.Folder`: no write follows a link, nothing is deleted
through one, and nothing lands outside the folder.
"""

from __future__ import annotations

from aoe_pack._io import Folder
from aoe_pack.errors import BundleMismatchError, OutputError
from aoe_pack.manifest.model import Release
from aoe_pack.manifest.trust import check_bundle_matches
from aoe_pack.publish.store import Store


def fetch_bundle(store: Store, folder: Folder, release: Release, name: str) -> None:
    """Steps 12-13: ``name`` in ``folder`` holds the release's bundle, size and SHA-256 matched.

    A bundle kept by an earlier check is used again if it still matches; only a
    regular file counts, so a link planted under ``name`` is replaced by the
    download (the rename replaces the link itself), never read or written through.
    """
    if folder.digest(name) != (release.sha256, release.size):
        store.fetch_blob(release.url, folder.path / name, max_bytes=release.size)
    got = folder.digest(name)
    if got is None:
        raise OutputError(f"{folder.path / name} was replaced while it was being downloaded")
    try:
        check_bundle_matches(release, size=got[1], sha256=got[0])
    except BundleMismatchError:
        folder.remove(name)
        raise
