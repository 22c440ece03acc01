"""The publish workflow on every backend: init, publish, edit, verify, rotate the root.

Each test runs against a fresh repository on a folder, on S3 (moto) and on an
OCI registry (``repo_url``); the servers are shared by the session. A few
tests that pin down backend-independent behaviour use a folder only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aoe_pack._crypto import asymmetric as keys
from aoe_pack._crypto.asymmetric import PrivateKey
from aoe_pack._io import file_sha256
from aoe_pack.client.check import refresh
from aoe_pack.client.verify_repo import verify_repository
from aoe_pack.errors import (
    ReleaseConflictError,
    ReleaseNotFoundError,
    RepositoryExistsError,
    RollbackError,
    RootRotationError,
    TagCollisionError,
    UntrustedMetadataError,
    UsageError,
)
from aoe_pack.publish import releases
from aoe_pack.publish.workflow import (
    init_repository,
    now_utc,
    read_state,
    rotate_root,
)
from aoe_pack.repository import envelope
from aoe_pack.repository.model import LOCAL, Release
from aoe_pack.repository.root import new_root
from aoe_pack.storage.local import LocalStore
from aoe_pack.storage.open import open_store
from aoe_pack.storage.store import MANIFEST, ROOT, Store, bundle_name, root_name
from aoe_pack.versions import Version

TAG = "tag_m"
CAP = 1 << 26


@pytest.fixture(scope="module")
def other_key() -> PrivateKey:
    """A signing key that no root of these repositories lists (until rotated in)."""
    return keys.generate(keys.KeyKind.ED25519)


@pytest.fixture
def store(repo_url: str, repo_key: PrivateKey) -> Iterator[Store]:
    """An initialised repository (root 1 over ``repo_key``, empty manifest 1)."""
    s = open_store(repo_url)
    init_repository(s, root_keys=[repo_key.public], threshold=1, sign_keys=[repo_key])
    yield s
    s.close()


@pytest.fixture
def local_store(tmp_path: Path, repo_key: PrivateKey) -> LocalStore:
    s = LocalStore(tmp_path / "local-repo")
    init_repository(s, root_keys=[repo_key.public], threshold=1, sign_keys=[repo_key])
    return s


def _doc(store: Store, name: str) -> bytes | None:
    got = store.read(name, max_bytes=CAP)
    return got.data if got else None


def _release(store: Store, tag: str = TAG, version: str = "1.0.0") -> Release:
    found = read_state(store).manifest.models[tag].find(version)
    assert found is not None
    return found


def _publish(store: Store, key: PrivateKey, *bundles: Path, **options: Any) -> Any:
    opts = releases.ReleaseOptions(**options)
    return releases.publish(store, list(bundles), sign_keys=[key], options=opts)


# --- init and publish -------------------------------------------------------------


def test_init_writes_root_1_and_an_empty_manifest_1(store: Store, repo_key: PrivateKey) -> None:
    state = read_state(store)
    assert state.root.version == 1
    assert set(state.root.keys) == {repo_key.key_id}
    assert state.root.threshold == 1
    assert state.manifest.version == 1
    assert state.manifest.release_count() == 0
    assert _doc(store, root_name(1)) == _doc(store, ROOT)
    assert state.manifest.expires > now_utc() + dt.timedelta(days=29)


def test_init_twice_is_refused_and_keeps_the_root(
    store: Store, repo_key: PrivateKey, other_key: PrivateKey
) -> None:
    root_before, manifest_before = _doc(store, ROOT), _doc(store, MANIFEST)
    with pytest.raises(RepositoryExistsError, match=r"already has a root\.json"):
        init_repository(store, root_keys=[other_key.public], threshold=1, sign_keys=[other_key])
    with pytest.raises(RepositoryExistsError, match=r"already has a root\.json"):
        init_repository(store, root_keys=[repo_key.public], threshold=1, sign_keys=[repo_key])
    assert _doc(store, ROOT) == root_before
    assert _doc(store, MANIFEST) == manifest_before


def test_publish_records_the_bundle_as_built(
    store: Store, repo_key: PrivateKey, bundle_factory: Any
) -> None:
    bundle = bundle_factory(TAG, "1.2.3")
    sha256, size = file_sha256(bundle)
    commit, added = _publish(store, repo_key, bundle, rollout_bp=2500, channel="beta")
    assert commit.manifest.version == 2
    assert [(t, r.version) for t, r in added] == [(TAG, "1.2.3")]

    state = read_state(store)
    assert state.manifest.version == 2
    assert list(state.manifest.models) == [TAG]
    r = _release(store, TAG, "1.2.3")
    assert r.version_code == Version.parse("1.2.3").version_code()
    assert r.size == size
    assert r.sha256 == sha256
    assert r.url == bundle_name(sha256)
    assert r.runtimes == ("tflite",)
    assert r.channel == "beta"
    assert r.rollout_bp == 2500
    assert r.yanked is None
    assert len(r.salt) == 32
    assert store.has_blob(r.url) == size


def test_republishing_the_same_bundle_changes_nothing(
    store: Store, repo_key: PrivateKey, bundle_factory: Any
) -> None:
    """Idempotent: the release (salt included) stays as first published, and no
    manifest version is written (the commit reports zero attempts)."""
    bundle = bundle_factory(TAG, "1.0.0")
    _publish(store, repo_key, bundle, rollout_bp=1000)
    first = read_state(store)
    commit, held = _publish(store, repo_key, bundle, rollout_bp=9000)
    second = read_state(store)
    assert commit.attempts == 0
    assert commit.manifest.version == second.manifest.version == first.manifest.version
    assert second.manifest_bytes == first.manifest_bytes
    assert [r.rollout_bp for _, r in held] == [1000]
    assert _release(store).rollout_bp == 1000  # the repeat's options are not applied


def test_republish_reports_the_release_the_manifest_holds(
    local_store: LocalStore, repo_key: PrivateKey, bundle_factory: Any
) -> None:
    """What ``publish`` returns (and ``manifest publish --json`` prints) is what devices see.

    On a repeat, nothing is added, so the result must not describe a release
    (fresh salt, new rollout) that is not in the manifest.
    """
    bundle = bundle_factory(TAG, "1.0.0")
    _publish(local_store, repo_key, bundle, rollout_bp=1000)
    commit, added = _publish(local_store, repo_key, bundle, rollout_bp=9000)
    held = commit.manifest.models[TAG].releases
    for _tag, rel in added:
        assert rel in held, (
            f"publish returned {rel.version} with salt {rel.salt} and {rel.rollout_bp} bp; "
            f"the manifest holds salt {held[0].salt} and {held[0].rollout_bp} bp"
        )


def test_a_different_bundle_for_a_published_version_is_a_release_conflict(
    store: Store, repo_key: PrivateKey, bundle_factory: Any
) -> None:
    _publish(store, repo_key, bundle_factory(TAG, "1.0.0"))
    before = _doc(store, MANIFEST)
    with pytest.raises(ReleaseConflictError, match=r"tag_m 1\.0\.0 is already published"):
        _publish(store, repo_key, bundle_factory(TAG, "1.0.0", salt=1))
    assert _doc(store, MANIFEST) == before


def test_a_tag_differing_only_in_case_from_a_published_one_is_a_tag_collision(
    store: Store, repo_key: PrivateKey, bundle_factory: Any
) -> None:
    """tags/Card/N.json and tags/card/N.json are one file on macOS and Windows."""
    _publish(store, repo_key, bundle_factory("Card", "1.0.0"))
    before = _doc(store, MANIFEST)
    bundle = bundle_factory("card", "1.0.0")
    with pytest.raises(TagCollisionError) as info:
        _publish(store, repo_key, bundle)
    assert info.value.message == (
        "tag card differs only in case from tag Card, which the manifest already has: "
        "tags/card/ and tags/Card/ would be one folder on case-insensitive file systems "
        "(macOS, Windows)"
    )
    assert info.value.code == "tag-collision"
    assert _doc(store, MANIFEST) == before
    assert store.has_blob(bundle_name(file_sha256(bundle)[0])) is None  # refused before upload
    commit, _ = _publish(store, repo_key, bundle_factory("Card", "1.1.0"))  # nothing left behind
    assert list(commit.manifest.models) == ["Card"]


def test_two_new_tags_differing_only_in_case_in_one_publish_are_a_tag_collision(
    store: Store, repo_key: PrivateKey, bundle_factory: Any
) -> None:
    before = _doc(store, MANIFEST)
    with pytest.raises(TagCollisionError) as info:
        _publish(store, repo_key, bundle_factory("Card", "1.0.0"), bundle_factory("card", "1.0.0"))
    assert info.value.message == (
        "tag card differs only in case from tag Card, which the same edit adds: "
        "tags/card/ and tags/Card/ would be one folder on case-insensitive file systems "
        "(macOS, Windows)"
    )
    assert _doc(store, MANIFEST) == before


def test_tags_differing_only_in_case_that_the_manifest_holds_stay_editable(
    local_store: LocalStore, repo_key: PrivateKey, bundle_factory: Any
) -> None:
    """An older publisher may have added both: only adding such a tag is refused."""
    import dataclasses

    _publish(local_store, repo_key, bundle_factory("Card", "1.0.0"))
    state = read_state(local_store)
    older = dataclasses.replace(  # as a publisher without the rule wrote it
        state.manifest,
        version=state.manifest.version + 1,
        models=state.manifest.models.updated("card", state.manifest.models["Card"]),
    )
    signed = envelope.sign(envelope.MANIFEST_TYPE, older.to_dict(), [repo_key]).to_bytes()
    local_store.replace(MANIFEST, signed, expected=state.manifest_token)
    commit, _ = _publish(local_store, repo_key, bundle_factory("card", "1.1.0"))
    assert list(commit.manifest.models) == ["Card", "card"]
    with pytest.raises(TagCollisionError, match="tag CARD differs only in case from tag Card,"):
        _publish(local_store, repo_key, bundle_factory("CARD", "1.0.0"))


def test_publishing_with_a_key_outside_the_root_is_untrusted(
    store: Store, repo_key: PrivateKey, other_key: PrivateKey, bundle_factory: Any
) -> None:
    before = _doc(store, MANIFEST)
    with pytest.raises(UntrustedMetadataError, match=r"0 of the given signing key\(s\)"):
        releases.publish(
            store,
            [bundle_factory(TAG, "1.0.0")],
            sign_keys=[other_key],
            trusted_keys=[repo_key.public],
        )
    assert _doc(store, MANIFEST) == before
    assert read_state(store).manifest.release_count() == 0


# --- edits ------------------------------------------------------------------------


def test_yank_rollout_pin_and_resign_each_write_one_new_version(
    store: Store, repo_key: PrivateKey, bundle_factory: Any
) -> None:
    sign = {"sign_keys": [repo_key]}
    _publish(store, repo_key, bundle_factory(TAG, "1.0.0"), bundle_factory(TAG, "1.1.0"))
    salt = _release(store, TAG, "1.1.0").salt
    assert read_state(store).manifest.version == 2

    c = releases.set_rollout(store, TAG, "1.1.0", 12.5, **sign)
    assert c.manifest.version == 3
    r = _release(store, TAG, "1.1.0")
    assert (r.rollout_bp, r.salt) == (1250, salt)  # the same devices stay in as it grows

    c = releases.yank(store, TAG, "1.0.0", reason="  bad accuracy  ", **sign)
    assert c.manifest.version == 4
    assert _release(store, TAG, "1.0.0").yanked == "bad accuracy"
    assert _release(store, TAG, "1.1.0").yanked is None

    c = releases.set_pin(store, TAG, "1.1.0", **sign)
    assert c.manifest.version == 5
    assert read_state(store).manifest.models[TAG].pin == "1.1.0"
    c = releases.set_pin(store, TAG, LOCAL, **sign)
    assert read_state(store).manifest.models[TAG].pin == LOCAL
    c = releases.set_pin(store, TAG, None, **sign)
    assert c.manifest.version == 7
    assert read_state(store).manifest.models[TAG].pin is None

    models = read_state(store).manifest.models.to_dict()
    c = releases.resign(store, expires=dt.timedelta(days=90), **sign)
    state = read_state(store)
    assert c.manifest.version == state.manifest.version == 8
    assert state.manifest.models.to_dict() == models
    assert state.manifest.expires > now_utc() + dt.timedelta(days=89)


def test_edits_of_missing_releases_are_refused_and_write_nothing(
    store: Store, repo_key: PrivateKey, bundle_factory: Any
) -> None:
    _publish(store, repo_key, bundle_factory(TAG, "1.0.0"))
    before = _doc(store, MANIFEST)
    sign = {"sign_keys": [repo_key]}
    with pytest.raises(ReleaseNotFoundError, match=r"has no release 9\.9\.9"):
        releases.yank(store, TAG, "9.9.9", reason="x", **sign)
    with pytest.raises(ReleaseNotFoundError, match=r"no model 'nope'"):
        releases.set_rollout(store, "nope", "1.0.0", 50, **sign)
    with pytest.raises(ReleaseNotFoundError, match=r"no release 2\.0\.0 to pin to"):
        releases.set_pin(store, TAG, "2.0.0", **sign)
    with pytest.raises(UsageError, match="at most two decimals"):
        releases.set_rollout(store, TAG, "1.0.0", 12.345, **sign)
    with pytest.raises(UsageError, match="--reason"):
        releases.yank(store, TAG, "1.0.0", reason="  ", **sign)
    assert _doc(store, MANIFEST) == before


# --- verify -----------------------------------------------------------------------


def test_verify_repository_with_bundles_passes(
    store: Store, repo_key: PrivateKey, bundle_factory: Any
) -> None:
    _publish(store, repo_key, bundle_factory(TAG, "1.0.0"), bundle_factory("tag_n", "2.0.0"))
    trusted = _doc(store, ROOT)
    assert trusted is not None
    report = verify_repository(store, trusted, check_bundles=True)
    assert report.root_version == 1
    assert report.manifest.version == 2
    assert report.bundles_checked == 2
    assert report.to_dict()["verified"] is True


def test_verify_repository_counts_each_release_once(
    local_store: LocalStore, repo_key: PrivateKey, bundle_factory: Any
) -> None:
    """``manifest verify --json`` reports ``releases``: one per published bundle.

    ``Models.check_all()`` parses every tag; a parsed tag must not be counted
    a second time from its raw JSON.
    """
    _publish(local_store, repo_key, bundle_factory(TAG, "1.0.0"))
    trusted = _doc(local_store, ROOT)
    assert trusted is not None
    report = verify_repository(local_store, trusted, check_bundles=True)
    assert report.bundles_checked == 1
    assert report.to_dict()["releases"] == 1
    assert len(report.manifest.models) == 1


# --- root rotation ----------------------------------------------------------------


def test_rotated_root_is_followed_from_root_1(
    store: Store, repo_key: PrivateKey, other_key: PrivateKey, bundle_factory: Any, tmp_path: Path
) -> None:
    """Rotate to a new key (signed by old and new): a client that ships root 1 follows."""
    _publish(store, repo_key, bundle_factory(TAG, "1.0.0"))
    root_1 = _doc(store, ROOT)
    assert root_1 is not None
    new = rotate_root(
        store, new_keys=[other_key.public], threshold=1, sign_keys=[repo_key, other_key]
    )
    assert new.version == 2
    assert _doc(store, root_name(2)) == _doc(store, ROOT)

    state_path = tmp_path / "device-state.json"
    root, manifest = refresh(store, trusted_root=root_1, state_path=state_path, now=now_utc())
    assert root.version == 2
    assert set(root.keys) == {other_key.key_id}
    assert manifest.version == 4  # re-signed under both roots, then under the new one
    assert manifest.models[TAG].find("1.0.0") is not None

    with pytest.raises(UntrustedMetadataError):  # the old key can no longer edit
        releases.resign(store, sign_keys=[repo_key])
    assert releases.resign(store, sign_keys=[other_key]).manifest.version == 5


def test_rotation_adding_a_key_then_dropping_the_old_one_is_followed(
    store: Store, repo_key: PrivateKey, other_key: PrivateKey, bundle_factory: Any, tmp_path: Path
) -> None:
    """The two-step rotation: root 2 lists old and new keys, root 3 only the new one."""
    _publish(store, repo_key, bundle_factory(TAG, "1.0.0"))
    root_1 = _doc(store, ROOT)
    assert root_1 is not None
    both = [repo_key, other_key]
    rotate_root(store, new_keys=[k.public for k in both], threshold=1, sign_keys=both)
    rotate_root(store, new_keys=[other_key.public], threshold=1, sign_keys=both)
    root, manifest = refresh(
        store, trusted_root=root_1, state_path=tmp_path / "s.json", now=now_utc()
    )
    assert root.version == 3
    assert set(root.keys) == {other_key.key_id}
    assert manifest.version == 6  # each rotation re-signs twice
    report = verify_repository(store, root_1, check_bundles=True)
    assert (report.root_version, report.bundles_checked) == (3, 1)


def test_rotation_signed_only_by_the_new_key_is_refused_and_writes_nothing(
    store: Store, repo_key: PrivateKey, other_key: PrivateKey, bundle_factory: Any
) -> None:
    _publish(store, repo_key, bundle_factory(TAG, "1.0.0"))
    root_before, manifest_before = _doc(store, ROOT), _doc(store, MANIFEST)
    with pytest.raises(RootRotationError, match=r"0 of the 1 required key\(s\) of root version 1"):
        rotate_root(store, new_keys=[other_key.public], threshold=1, sign_keys=[other_key])
    assert _doc(store, ROOT) == root_before
    assert _doc(store, root_name(2)) is None
    assert _doc(store, MANIFEST) == manifest_before
    state = read_state(store)
    assert (state.root.version, state.manifest.version) == (1, 2)


def test_a_refused_publish_does_not_block_later_ones(
    store: Store, repo_key: PrivateKey, bundle_factory: Any
) -> None:
    # On OCI a publisher leaves a pending record before writing; a publish refused
    # for a version conflict must leave none that later publishers try to merge.
    _publish(store, repo_key, bundle_factory(TAG, "1.0.0"))
    with pytest.raises(ReleaseConflictError):
        _publish(store, repo_key, bundle_factory(TAG, "1.0.0", salt=1))
    before = read_state(store).manifest.version
    commit, _ = _publish(store, repo_key, bundle_factory(TAG, "1.1.0"))
    assert commit.manifest.version == before + 1
    assert commit.attempts == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [({"channel": "Beta"}, "--channel 'Beta'"), ({"required_runtimes": ("GPU",)}, "'GPU'")],
)
def test_options_devices_would_refuse_are_refused_before_publishing(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        releases.ReleaseOptions(**options)


def test_init_that_crashed_after_its_manifest_can_run_again(
    tmp_path: Path, repo_key: PrivateKey
) -> None:
    half = LocalStore(tmp_path / "half")
    half.replace(MANIFEST, b"left by a crashed init", expected=None)
    init_repository(half, root_keys=[repo_key.public], threshold=1, sign_keys=[repo_key])
    assert read_state(half).manifest.version == 1


def _fake_root_and_manifest(store: Store, victim: PrivateKey) -> bytes:
    """What someone with write access to the storage but no key can write: a root
    listing the victim's public key beside theirs, and a manifest they signed."""
    attacker = keys.generate(keys.KeyKind.ED25519)
    fake = new_root(1, [victim.public, attacker.public], 1)
    fake_bytes = envelope.sign(envelope.ROOT_TYPE, fake.to_dict(), [attacker]).to_bytes()
    current = read_state(store)
    forged = current.manifest.bump(expires=current.manifest.expires, models=current.manifest.models)
    data = envelope.sign(envelope.MANIFEST_TYPE, forged.to_dict(), [attacker]).to_bytes()
    store.replace(MANIFEST, data, expected=current.manifest_token)
    return fake_bytes


def test_root_json_swapped_by_a_storage_writer_is_refused(
    store: Store, repo_key: PrivateKey
) -> None:
    fake = _fake_root_and_manifest(store, repo_key)
    old = store.read(ROOT, max_bytes=CAP)
    assert old is not None
    store.replace(ROOT, fake, expected=old.token)
    with pytest.raises(UntrustedMetadataError, match="is not a root of the chain"):
        releases.resign(store, sign_keys=[repo_key])


def test_whole_root_chain_swapped_by_a_storage_writer_gets_no_signature(
    store: Store, repo_key: PrivateKey
) -> None:
    # The first root is only self-signed, so the chain itself can be forged; the
    # publisher's own signature on the head root cannot.
    fake = _fake_root_and_manifest(store, repo_key)
    for name in (root_name(1), ROOT):
        old = store.read(name, max_bytes=CAP)
        assert old is not None
        store.replace(name, fake, expected=old.token)
    with pytest.raises(UntrustedMetadataError, match="carries no signature by the given key"):
        releases.resign(store, sign_keys=[repo_key])


def test_rotation_stopped_before_switching_root_json_is_finished_by_a_rerun(
    local_store: LocalStore, repo_key: PrivateKey, other_key: PrivateKey
) -> None:
    class StopAtRootJson(LocalStore):
        def replace(self, name: str, data: bytes, *, expected: str | None) -> str:
            if name == ROOT:
                raise RuntimeError("stopped here")
            return super().replace(name, data, expected=expected)

    both = [repo_key, other_key]
    with pytest.raises(RuntimeError, match="stopped here"):
        rotate_root(
            StopAtRootJson(local_store.root),
            new_keys=[other_key.public],
            threshold=1,
            sign_keys=both,
        )
    assert _doc(local_store, ROOT) != _doc(local_store, root_name(2))  # root.json lags
    root = rotate_root(local_store, new_keys=[other_key.public], threshold=1, sign_keys=both)
    assert root.version == 2
    assert _doc(local_store, root_name(3)) is None  # no second rotation
    assert _doc(local_store, ROOT) == _doc(local_store, root_name(2))
    state = read_state(local_store)
    assert state.root.version == 2
    assert releases.resign(local_store, sign_keys=[other_key]).manifest.version > 1


# --- the publisher's floor: storage rolled back ----------------------------------------------


def _published_then_yanked(store: LocalStore, key: PrivateKey, bundle_factory: Any) -> bytes:
    """Publish 1.0.0 (manifest 2), yank it (3); manifest 2's bytes, to put back."""
    releases.publish(store, [bundle_factory(TAG, "1.0.0")], sign_keys=[key])
    before_yank = (store.root / MANIFEST).read_bytes()
    releases.yank(store, TAG, "1.0.0", reason="leaks data", sign_keys=[key])
    return before_yank


def _files(store: LocalStore) -> dict[str, bytes]:
    return {
        p.relative_to(store.root).as_posix(): p.read_bytes()
        for p in sorted(store.root.rglob("*"))
        if p.is_file() and p.name != ".aoe-repo.lock"
    }


def test_edit_on_a_manifest_rolled_back_past_a_yank_is_refused(
    local_store: LocalStore, repo_key: PrivateKey, bundle_factory: Any
) -> None:
    """Someone with write access puts manifest 2 back: a re-sign would undo the yank."""
    (local_store.root / MANIFEST).write_bytes(
        _published_then_yanked(local_store, repo_key, bundle_factory)
    )
    before = _files(local_store)
    with pytest.raises(RollbackError) as e:
        releases.resign(local_store, sign_keys=[repo_key])
    assert e.value.message == (
        f"{local_store.url}/manifest.json is version 2, older than version 3, which this "
        "publisher already saw or wrote"
    )
    assert e.value.hint is not None
    assert "restore the newest manifest.json" in e.value.hint
    assert _files(local_store) == before


def test_a_publisher_without_state_edits_and_starts_a_floor(
    local_store: LocalStore,
    repo_key: PrivateKey,
    bundle_factory: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A new machine has no floor, as a device on its first update; its edit sets one."""
    _published_then_yanked(local_store, repo_key, bundle_factory)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "new-machine"))
    assert releases.resign(local_store, sign_keys=[repo_key]).manifest.version == 4
    root = read_state(local_store).root
    kept = tmp_path / "new-machine" / "aoe-pack" / "publisher" / f"{root.repository_id}.json"
    doc = json.loads(kept.read_text())
    assert (doc["rootVersion"], doc["manifestVersion"]) == (1, 4)


def test_the_floor_holds_the_digest_of_the_manifest_written(
    local_store: LocalStore,
    repo_key: PrivateKey,
    bundle_factory: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The edit hands the floor the digest it signed instead of parsing what it wrote again:
    it must be the digest of the payload that manifest.json now holds."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    releases.publish(local_store, [bundle_factory(TAG, "1.0.0")], sign_keys=[repo_key])
    data = (local_store.root / MANIFEST).read_bytes()
    payload = envelope.parse(data, envelope.MANIFEST_TYPE, what="manifest.json").payload
    root = read_state(local_store).root
    kept = tmp_path / "state" / "aoe-pack" / "publisher" / f"{root.repository_id}.json"
    doc = json.loads(kept.read_text())
    assert (doc["manifestVersion"], doc["manifestSha256"]) == (
        2,
        hashlib.sha256(payload).hexdigest(),
    )


def test_root_chain_cut_back_past_a_rotation_is_refused(
    local_store: LocalStore, repo_key: PrivateKey, other_key: PrivateKey
) -> None:
    """roots/2 removed, root.json and manifest.json put back: the rotated-out key would sign."""
    before = {name: _doc(local_store, name) for name in (ROOT, MANIFEST)}
    both = [repo_key, other_key]
    rotate_root(local_store, new_keys=[other_key.public], threshold=1, sign_keys=both)
    (local_store.root / root_name(2)).unlink()
    for name, data in before.items():
        assert data is not None
        (local_store.root / name).write_bytes(data)
    with pytest.raises(RollbackError) as e:
        releases.resign(local_store, sign_keys=[repo_key])
    assert e.value.message == (
        f"{local_store.url} is at root version 1, older than version 2, which this publisher "
        "already saw"
    )
