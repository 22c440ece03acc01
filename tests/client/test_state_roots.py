"""Which root a device starts from: the one it remembers or the one its app ships (§15.6 step 2).

The rule: the higher ``version`` wins, and the manifest floor is kept either
way; the same version with other bytes is refused. Getting it wrong lets
whoever holds an old root's keys fork the device: starting from the older
root, it would walk into a ``roots/N+1`` they signed. The attack tests run
the device's refresh against an in-memory repository; the others call
``ClientState.load`` directly.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from aoe_pack._crypto.asymmetric import KeyKind, PrivateKey, generate
from aoe_pack.client.check import ClientState, refresh
from aoe_pack.errors import UntrustedMetadataError
from aoe_pack.repository import envelope
from aoe_pack.repository.model import Manifest
from aoe_pack.repository.root import new_root
from aoe_pack.storage.store import MANIFEST, Stored, root_name

NOW = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)


@dataclass
class MemoryStore:
    """Just enough of a Store for ``refresh``: named documents in a dict."""

    docs: dict[str, bytes] = field(default_factory=dict)
    url: str = "memory://repo"

    def read(self, name: str, *, max_bytes: int) -> Stored | None:
        data = self.docs.get(name)
        return None if data is None else Stored(data, str(len(data)))


@dataclass(frozen=True)
class Keys:
    old: PrivateKey
    """The key of root 1, rotated out because it leaked."""
    new: PrivateKey
    """The key of the genuine root 2."""
    thief: PrivateKey
    """A key of the attacker's own, which their forged root 2 names."""


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(*(generate(KeyKind.ED25519) for _ in range(3)))


def _root(version: int, key: PrivateKey, *signers: PrivateKey) -> bytes:
    doc = new_root(version, [key.public], 1).to_dict()
    return envelope.sign(envelope.ROOT_TYPE, doc, list(signers or [key])).to_bytes()


def _manifest(version: int, signers: Sequence[PrivateKey]) -> bytes:
    doc = Manifest(version=version, expires=NOW + dt.timedelta(days=30), models={}).to_dict()
    return envelope.sign(envelope.MANIFEST_TYPE, doc, list(signers)).to_bytes()


def _remember(path: Path, root: bytes, manifest_version: int | None) -> Path:
    doc = {"root": base64.b64encode(root).decode(), "manifestVersion": manifest_version}
    path.write_text(json.dumps(doc))
    return path


def _remembered_root(path: Path) -> bytes:
    return base64.b64decode(json.loads(path.read_bytes())["root"])


# --- ClientState.load ---------------------------------------------------------------------


def test_shipped_newer_root_replaces_remembered_one_and_keeps_the_floor(
    keys: Keys, tmp_path: Path
) -> None:
    root1, root2 = _root(1, keys.old), _root(2, keys.new, keys.old, keys.new)
    state = ClientState.load(_remember(tmp_path / "s.json", root1, 7), root2)
    assert (state.root, state.manifest_version) == (root2, 7)
    # The floor was set under the remembered root: its keys, not the shipped one's.
    assert state.manifest_root_keys == {keys.old.key_id}


def test_remembered_newer_root_is_kept_over_an_older_shipped_one(
    keys: Keys, tmp_path: Path
) -> None:
    root1, root2 = _root(1, keys.old), _root(2, keys.new, keys.old, keys.new)
    state = ClientState.load(_remember(tmp_path / "s.json", root2, 7), root1)
    assert (state.root, state.manifest_version) == (root2, 7)
    assert state.manifest_root_keys == {keys.new.key_id}


def test_same_root_shipped_and_remembered_is_kept(keys: Keys, tmp_path: Path) -> None:
    root1 = _root(1, keys.old)
    state = ClientState.load(_remember(tmp_path / "s.json", root1, 3), root1)
    assert (state.root, state.manifest_version, state.manifest_root_keys) == (
        root1,
        3,
        {keys.old.key_id},
    )


def test_shipped_root_of_same_version_but_other_bytes_is_refused(
    keys: Keys, tmp_path: Path
) -> None:
    path = _remember(tmp_path / "s.json", _root(1, keys.old), 3)
    with pytest.raises(
        UntrustedMetadataError,
        match=r"^--trusted-root differs from the root version 1 that .*s\.json remembers "
        r"for this repository$",
    ) as e:
        ClientState.load(path, _root(1, keys.thief))
    assert e.value.code == "untrusted-metadata"
    assert e.value.hint is not None
    assert "delete" in e.value.hint


def test_without_state_the_shipped_root_is_used_with_no_floor(keys: Keys, tmp_path: Path) -> None:
    root1 = _root(1, keys.old)
    assert ClientState.load(tmp_path / "none.json", root1) == ClientState(root1, None)


# --- the attacks, through the device's refresh ---------------------------------------------


def _forked_repo(keys: Keys) -> MemoryStore:
    """What a thief of root 1's key serves: their own root 2 and a manifest they signed."""
    return MemoryStore(
        {
            root_name(1): _root(1, keys.old),
            root_name(2): _root(2, keys.thief, keys.old, keys.thief),
            MANIFEST: _manifest(9, [keys.thief]),
        }
    )


def test_old_shipped_root_cannot_take_a_device_back_to_leaked_keys(
    keys: Keys, tmp_path: Path
) -> None:
    # The device already walked to the genuine root 2; an app build that
    # still ships root 1 must not restart the walk from root 1, where the
    # thief's root 2 would be accepted.
    root1, root2 = _root(1, keys.old), _root(2, keys.new, keys.old, keys.new)
    state = _remember(tmp_path / "s.json", root2, 5)
    with pytest.raises(UntrustedMetadataError, match=r"^manifest\.json"):
        refresh(_forked_repo(keys), trusted_root=root1, state_path=state, now=NOW)
    assert _remembered_root(state) == root2


def test_newer_shipped_root_bypasses_a_forked_chain(keys: Keys, tmp_path: Path) -> None:
    # The app update ships the genuine root 2; the device must start there,
    # not from its remembered root 1, whose key the thief holds.
    root1, root2 = _root(1, keys.old), _root(2, keys.new, keys.old, keys.new)
    state = _remember(tmp_path / "s.json", root1, 5)
    with pytest.raises(UntrustedMetadataError, match=r"^manifest\.json"):
        refresh(_forked_repo(keys), trusted_root=root2, state_path=state, now=NOW)
    assert _remembered_root(state) == root1  # a failed update remembers nothing


def test_newer_shipped_root_is_remembered_after_an_update(keys: Keys, tmp_path: Path) -> None:
    root1, root2 = _root(1, keys.old), _root(2, keys.new, keys.old, keys.new)
    repo = MemoryStore(
        {root_name(1): root1, root_name(2): root2, MANIFEST: _manifest(5, [keys.new])}
    )
    state = _remember(tmp_path / "s.json", root1, 5)
    root, manifest = refresh(repo, trusted_root=root2, state_path=state, now=NOW)
    assert (root.version, manifest.version) == (2, 5)
    remembered = ClientState.load(state, root2)
    assert (remembered.root, remembered.manifest_version) == (root2, 5)
    assert remembered.manifest_root_keys == frozenset({keys.new.key_id})


def test_device_refuses_an_app_that_ships_another_repositorys_root(
    keys: Keys, tmp_path: Path
) -> None:
    state = _remember(tmp_path / "s.json", _root(1, keys.old), 5)
    repo = MemoryStore({root_name(1): _root(1, keys.thief), MANIFEST: _manifest(9, [keys.thief])})
    with pytest.raises(UntrustedMetadataError, match=r"^--trusted-root differs"):
        refresh(repo, trusted_root=_root(1, keys.thief), state_path=state, now=NOW)
