"""A manifest at the last version readers accept, and the way out (§15.8.5).

A key thief who signs a manifest at 2**53-1 used to brick the repository:
the next edit wrote 2**53, which every reader refuses, and no command could
repair it. Edits past the limit are refused before anything is written; a
rotation to new keys that restarts the manifest at version 1 recovers
publishers and devices alike.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from aoe_pack._crypto import asymmetric as keys
from aoe_pack._crypto.asymmetric import PrivateKey
from aoe_pack._jcs import MAX_SAFE_INTEGER
from aoe_pack.client.check import refresh
from aoe_pack.errors import RepositoryError, RollbackError, VersionLimitError
from aoe_pack.publish import releases
from aoe_pack.publish.workflow import init_repository, now_utc, read_state, rotate_root
from aoe_pack.repository import envelope
from aoe_pack.storage.local import LocalStore
from aoe_pack.storage.store import MANIFEST, ROOT


@pytest.fixture
def other_key() -> PrivateKey:
    return keys.generate(keys.KeyKind.ED25519)


@pytest.fixture
def last(tmp_path: Path, repo_key: PrivateKey) -> LocalStore:
    """A repository whose manifest a thief with ``repo_key`` pushed to 2**53-1."""
    store = LocalStore(tmp_path / "repo")
    init_repository(store, root_keys=[repo_key.public], threshold=1, sign_keys=[repo_key])
    state = read_state(store)
    m = dataclasses.replace(state.manifest, version=MAX_SAFE_INTEGER)
    data = envelope.sign(envelope.MANIFEST_TYPE, m.to_dict(), [repo_key]).to_bytes()
    store.replace(MANIFEST, data, expected=state.manifest_token)
    return store


def _bytes(store: LocalStore, name: str) -> bytes:
    got = store.read(name, max_bytes=1 << 24)
    assert got is not None
    return got.data


def test_resign_at_the_last_version_is_refused_and_writes_nothing(
    last: LocalStore, repo_key: PrivateKey
) -> None:
    before = _bytes(last, MANIFEST)
    with pytest.raises(VersionLimitError, match=r"version 9007199254740991 is the last one"):
        releases.resign(last, sign_keys=[repo_key])
    assert _bytes(last, MANIFEST) == before


def test_restart_after_a_revoking_rotation_recovers_devices_and_publishers(
    last: LocalStore, repo_key: PrivateKey, other_key: PrivateKey, tmp_path: Path
) -> None:
    root_1 = _bytes(last, ROOT)
    device = tmp_path / "device.json"
    _, seen = refresh(last, trusted_root=root_1, state_path=device, now=now_utc())
    assert seen.version == MAX_SAFE_INTEGER  # the device took the thief's manifest
    rotate_root(
        last,
        new_keys=[other_key.public],
        threshold=1,
        sign_keys=[repo_key, other_key],
        restart_manifest_version=True,
    )
    root, m = refresh(last, trusted_root=root_1, state_path=device, now=now_utc())
    assert (root.version, m.version) == (2, 2)  # restarted at 1, re-signed under root 2
    assert releases.resign(last, sign_keys=[other_key]).manifest.version == 3


def test_restart_keeping_the_old_keys_is_refused(
    last: LocalStore, repo_key: PrivateKey, other_key: PrivateKey
) -> None:
    before = _bytes(last, ROOT)
    with pytest.raises(RepositoryError, match="keeps 1 of them, at least its threshold 1"):
        rotate_root(
            last,
            new_keys=[repo_key.public, other_key.public],
            threshold=1,
            sign_keys=[repo_key, other_key],
            restart_manifest_version=True,
        )
    assert _bytes(last, ROOT) == before


def test_without_restart_a_device_at_the_limit_stays_safe(
    last: LocalStore, repo_key: PrivateKey, tmp_path: Path
) -> None:
    """An old manifest replayed to a device that holds the limit is still rollback."""
    device = tmp_path / "device.json"
    refresh(last, trusted_root=_bytes(last, ROOT), state_path=device, now=now_utc())
    state = read_state(last)
    old = dataclasses.replace(state.manifest, version=7, expires=now_utc() + dt.timedelta(days=1))
    data = envelope.sign(envelope.MANIFEST_TYPE, old.to_dict(), [repo_key]).to_bytes()
    last.replace(MANIFEST, data, expected=state.manifest_token)
    with pytest.raises(RollbackError, match="older than version 9007199254740991"):
        refresh(last, trusted_root=_bytes(last, ROOT), state_path=device, now=now_utc())
