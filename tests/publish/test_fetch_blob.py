"""``fetch_blob`` on every backend writes its destination atomically and never through a link.

A device or ``manifest verify`` fetches a bundle into a folder others may
write to; the destination name may hold a planted link, and a bundle over its
cap must leave nothing under that name (docs/format.md: no leftovers).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aoe_pack._crypto.asymmetric import PrivateKey
from aoe_pack.errors import DownloadTooLargeError
from aoe_pack.publish import releases
from aoe_pack.publish.workflow import init_repository
from aoe_pack.storage.open import open_store


def _published(repo_url: str, repo_key: PrivateKey, bundle_factory: Any) -> tuple[Any, str, int]:
    store = open_store(repo_url)
    init_repository(store, root_keys=[repo_key.public], threshold=1, sign_keys=[repo_key])
    _, added = releases.publish(store, [bundle_factory("fetch", "1.0.0")], sign_keys=[repo_key])
    release = added[0][1]
    return store, release.url, release.size


def test_fetch_blob_never_follows_a_link_at_its_destination(
    repo_url: str, repo_key: PrivateKey, bundle_factory: Any, tmp_path: Path
) -> None:
    store, url, size = _published(repo_url, repo_key, bundle_factory)
    victim = tmp_path / "outside" / "created"
    victim.parent.mkdir()
    dest = tmp_path / "downloads" / "b.aoe"
    dest.parent.mkdir()
    dest.symlink_to(victim)
    try:
        store.fetch_blob(url, dest, max_bytes=size)
    finally:
        store.close()
    assert not victim.exists()
    assert not dest.is_symlink()
    assert dest.read_bytes() == bundle_factory("fetch", "1.0.0").read_bytes()


def test_oversized_bundle_leaves_no_file_under_its_name(
    repo_url: str, repo_key: PrivateKey, bundle_factory: Any, tmp_path: Path
) -> None:
    store, url, size = _published(repo_url, repo_key, bundle_factory)
    dest = tmp_path / "downloads" / "b.aoe"
    dest.parent.mkdir()
    try:
        with pytest.raises(DownloadTooLargeError, match=rf"(than|of) {size - 1}\b"):
            store.fetch_blob(url, dest, max_bytes=size - 1)
    finally:
        store.close()
    assert list(dest.parent.iterdir()) == []
