"""The pending-record repair of stores without compare-and-swap, made deterministic.

An OCI registry only loses a write in a race; here a folder store that says
it has no atomic compare-and-swap (as ``OciStore`` does) and lists its
``pending/`` records lets each situation be set up exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aoe_pack._crypto.asymmetric import PrivateKey
from aoe_pack.publish import pending, releases
from aoe_pack.publish.workflow import init_repository, read_state
from aoe_pack.storage.local import LocalStore


class NonAtomicFolder(LocalStore):
    """A folder store with the OCI store's two extra traits."""

    atomic_cas = False

    def list_pending(self) -> list[str]:
        folder = self.root / "pending"
        return sorted(f"pending/{p.name}" for p in folder.glob("*.json")) if folder.exists() else []


def _repo(tmp_path: Path, key: PrivateKey) -> NonAtomicFolder:
    store = NonAtomicFolder(tmp_path / "repo")
    init_repository(store, root_keys=[key.public], threshold=1, sign_keys=[key])
    return store


def _lost_release(store: NonAtomicFolder, key: PrivateKey, bundle: Path) -> str:
    """A publish whose manifest write was overwritten: bundle and record are there,
    the manifest does not name it (what a racing writer at the same version leaves)."""
    state = read_state(store)
    tag, rel, signers = releases.release_of_bundle(bundle, [key.public], releases.ReleaseOptions())
    store.put_blob(rel.url, bundle, sha256=rel.sha256, size=rel.size)
    pending.write_records(store, [(tag, rel)], [key], signers)
    assert read_state(store).manifest_bytes == state.manifest_bytes
    return rel.version


def test_a_yank_racing_a_publish_brings_the_lost_release_back(
    tmp_path: Path, repo_key: PrivateKey, bundle_factory: Any
) -> None:
    store = _repo(tmp_path, repo_key)
    releases.publish(store, [bundle_factory("race", "1.0.0")], sign_keys=[repo_key])
    lost = _lost_release(store, repo_key, bundle_factory("race", "1.1.0"))
    commit = releases.yank(store, "race", "1.0.0", reason="bad", sign_keys=[repo_key])
    held = {r.version: r.yanked for r in commit.manifest.models["race"].releases}
    assert held == {"1.0.0": "bad", lost: None}


def test_a_junk_pending_record_blocks_nothing(
    tmp_path: Path, repo_key: PrivateKey, bundle_factory: Any
) -> None:
    store = _repo(tmp_path, repo_key)
    junk = store.root / "pending" / ("c" * 64 + ".json")
    junk.parent.mkdir(parents=True)
    junk.write_bytes(b"anyone with push access can write this")
    commit, _ = releases.publish(store, [bundle_factory("junk", "1.0.0")], sign_keys=[repo_key])
    assert [r.version for r in commit.manifest.models["junk"].releases] == ["1.0.0"]
    assert commit.attempts == 1


def test_a_lost_release_of_a_tag_differing_only_in_case_blocks_nothing(
    tmp_path: Path, repo_key: PrivateKey, bundle_factory: Any
) -> None:
    """Two publishers raced with Card and card: card's write was lost, and its record is
    not merged beside Card (they would share one folder on macOS and Windows), nor does
    it keep the next edit from finishing."""
    store = _repo(tmp_path, repo_key)
    _lost_release(store, repo_key, bundle_factory("card", "1.0.0"))
    commit, _ = releases.publish(store, [bundle_factory("Card", "1.0.0")], sign_keys=[repo_key])
    assert list(commit.manifest.models) == ["Card"]
    assert commit.attempts == 1
    assert pending.missing_records(store, commit.manifest, read_state(store).root) == []
