"""The device's memory between updates (§15.6), attacked one way per test.

Each test writes a repository folder by hand (roots, manifest), runs the
device's refresh against it as ``client check`` does, and asserts the exact
error: equal-version replay, fast-forward and its recovery by a root
rotation, rollback on first contact, a mirror under another URL, a state
file built to crash the reader, and checks that share one state at once.
"""

from __future__ import annotations

import base64
import datetime as dt
import errno
import hashlib
import json
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from _cli import aoe
from _factories import NOW, make_root, manifest, release, sign_manifest, sign_root
from _killed import blocked_child, sigkill

from aoe_pack._crypto.asymmetric import KeyKind, PrivateKey, generate
from aoe_pack.client import state as client_state
from aoe_pack.client.check import ClientState, refresh, repository_identity
from aoe_pack.client.state import STATE_LOCK_WAIT, held
from aoe_pack.errors import (
    RepositoryFormatError,
    RollbackError,
    RootRotationError,
    StateLockedError,
    StoreError,
)
from aoe_pack.repository import envelope
from aoe_pack.repository.model import Manifest
from aoe_pack.repository.root import Root, new_root, verify_self_signed, verify_successor
from aoe_pack.repository.trust import Floor, verify_manifest
from aoe_pack.storage.open import open_store
from aoe_pack.storage.store import MANIFEST, Store, Stored, root_name

STOLEN_VERSION = 10**15


@pytest.fixture
def keys() -> list[PrivateKey]:
    return [generate(KeyKind.ED25519) for _ in range(3)]


class Repo:
    """A repository folder written by hand: its roots and its manifest."""

    def __init__(self, path: Path, first: Root, signers: list[PrivateKey]) -> None:
        self.path = path
        (path / "roots").mkdir(parents=True)
        self.roots: list[bytes] = []
        self.add_root(first, signers)

    def add_root(self, root: Root, signers: list[PrivateKey]) -> bytes:
        data = sign_root(root, signers)
        (self.path / root_name(root.version)).write_bytes(data)
        (self.path / "root.json").write_bytes(data)
        self.roots.append(data)
        return data

    def publish(self, version: int, signers: list[PrivateKey], *, note: str = "") -> bytes:
        # Valid at the factories' NOW and at the real now (the CLI tests read the clock).
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
        m = manifest(release("1.0.0"), version=version, expires=expires)
        doc = m.to_dict()
        if note:  # same version, other content: e.g. a release yanked or not
            doc["models"]["tag_x"]["releases"][0]["yanked"] = note
        data = sign_manifest(doc, signers)
        (self.path / MANIFEST).write_bytes(data)
        return data

    def refresh(
        self,
        state: Path,
        *,
        shipped: bytes | None = None,
        minimum: int | None = None,
        lock_wait: float = STATE_LOCK_WAIT,
        store: Store | None = None,
    ) -> tuple[Root, Manifest]:
        """``client check``'s refresh of ``state`` from this folder (or ``store``)."""
        opened = open_store(str(self.path))
        try:
            return refresh(
                store or opened,
                trusted_root=shipped or self.roots[0],
                state_path=state,
                now=NOW,
                minimum=minimum,
                lock_wait=lock_wait,
            )
        finally:
            opened.close()


REPO_ID = "5eed" * 8


def _root(version: int, keys: list[PrivateKey], threshold: int = 1) -> Root:
    """A root of this module's repository (its chain carries REPO_ID)."""
    return new_root(version, [k.public for k in keys], threshold, REPO_ID)


@pytest.fixture
def repo(tmp_path: Path, keys: list[PrivateKey]) -> Repo:
    return Repo(tmp_path / "repo", _root(1, [keys[0]]), [keys[0]])


# --- equal-version replay -----------------------------------------------------------------


def test_equal_version_replay_with_other_content_is_refused(
    repo: Repo, keys: list[PrivateKey], tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    repo.publish(5, [keys[0]], note="bad model")
    repo.refresh(state)
    # A second, validly signed manifest at version 5, without the yank.
    repo.publish(5, [keys[0]])
    with pytest.raises(RollbackError, match=r"version 5 .* same version, different content"):
        repo.refresh(state)
    assert ClientState.load(state, repo.roots[0]).manifest_version == 5


def test_same_manifest_fetched_again_is_accepted(
    repo: Repo, keys: list[PrivateKey], tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    repo.publish(5, [keys[0]])
    repo.refresh(state)
    _, m = repo.refresh(state)
    assert m.version == 5


def test_equal_version_replay_is_refused_by_the_pure_check(keys: list[PrivateKey]) -> None:
    root = make_root(1, [keys[0].public])
    first = verify_manifest(
        sign_manifest(manifest(release("1.0.0"), version=3), [keys[0]]), root, now=NOW
    )
    other = sign_manifest(manifest(release("2.0.0"), version=3), [keys[0]])
    with pytest.raises(RollbackError, match="same version, different content"):
        verify_manifest(other, root, now=NOW, last_version=3, last_sha256=first.payload_sha256)


def test_resigned_same_payload_is_the_same_manifest(keys: list[PrivateKey]) -> None:
    root = make_root(1, [keys[0].public, keys[1].public])
    m = manifest(release("1.0.0"), version=3)
    once = verify_manifest(sign_manifest(m, [keys[0]]), root, now=NOW)
    # More signatures over the same payload: other envelope bytes, same document.
    twice = sign_manifest(m, [keys[0], keys[1]])
    again = verify_manifest(twice, root, now=NOW, last_version=3, last_sha256=once.payload_sha256)
    assert again.payload_sha256 == once.payload_sha256


# --- fast-forward and recovery (TUF 5.3.11) -----------------------------------------------


def test_fast_forward_is_recovered_by_a_rotation_that_revokes_the_key(
    repo: Repo, keys: list[PrivateKey], tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    stolen, owner_new = keys[0], keys[1]
    repo.publish(7, [stolen])
    repo.refresh(state)
    # The thief signs a manifest at a huge version and serves it (a mirror, a MITM).
    repo.publish(STOLEN_VERSION, [stolen])
    repo.refresh(state)
    assert ClientState.load(state, repo.roots[0]).manifest_version == STOLEN_VERSION
    # The owners publish again: refused, the device is stuck above it.
    repo.publish(8, [stolen])
    with pytest.raises(RollbackError, match=f"older than version {STOLEN_VERSION}"):
        repo.refresh(state)
    # The owners rotate the root to a new key (signed by the old and the new)
    # and publish with it: the floor the revoked key set no longer holds.
    repo.add_root(_root(2, [owner_new]), [stolen, owner_new])
    repo.publish(8, [owner_new])
    root, m = repo.refresh(state)
    assert (root.version, m.version) == (2, 8)
    # And the device is protected again from here on.
    repo.publish(7, [owner_new])
    with pytest.raises(RollbackError, match="older than version 8"):
        repo.refresh(state)


def test_rotation_that_keeps_the_signer_keeps_the_floor(
    repo: Repo, keys: list[PrivateKey], tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    repo.publish(9, [keys[0]])
    repo.refresh(state)
    repo.add_root(_root(2, [keys[0], keys[1]]), [keys[0], keys[1]])
    repo.publish(4, [keys[0]])
    with pytest.raises(RollbackError, match="older than version 9"):
        repo.refresh(state)


@pytest.mark.parametrize(
    ("new_keys", "threshold"),
    [((1, 2), 1), ((0, 1), 2)],
    ids=["revoking-one-of-two-keys", "raising-the-threshold"],
)
def test_rotation_keeping_enough_old_keys_keeps_the_floor(
    new_keys: tuple[int, int], threshold: int, tmp_path: Path, keys: list[PrivateKey]
) -> None:
    """Root {A, B} -> {B, C}, or -> {A, B} needing both: an old manifest A and B signed
    still verifies under the new root, so the floor must stay."""
    a, b, _ = keys
    repo = Repo(tmp_path / "repo", _root(1, [a, b]), [a, b])
    old = repo.publish(3, [a, b])
    state = tmp_path / "state.json"
    repo.publish(7, [a])
    repo.refresh(state)
    repo.add_root(_root(2, [keys[i] for i in new_keys], threshold), keys)
    (repo.path / MANIFEST).write_bytes(old)  # replayed: valid under root 2
    with pytest.raises(RollbackError, match="version 3 is older than version 7"):
        repo.refresh(state)


def _legacy_state(path: Path, root: bytes, version: int) -> Path:
    """A state as written before digests and root keys were kept."""
    path.write_text(
        json.dumps({"root": base64.b64encode(root).decode(), "manifestVersion": version})
    )
    return path


def test_legacy_state_falls_back_to_the_remembered_root(
    repo: Repo, keys: list[PrivateKey], tmp_path: Path
) -> None:
    """An old state still gets rollback checks, and recovery by a revoking rotation."""
    state = _legacy_state(tmp_path / "state.json", repo.roots[0], STOLEN_VERSION)
    repo.publish(4, [keys[0]])
    with pytest.raises(RollbackError, match=f"older than version {STOLEN_VERSION}"):
        repo.refresh(state)
    repo.add_root(_root(2, [keys[1]]), [keys[0], keys[1]])
    repo.publish(4, [keys[1]])
    assert repo.refresh(state)[1].version == 4


def test_legacy_state_recovers_when_the_app_ships_the_revoking_root(
    repo: Repo, keys: list[PrivateKey], tmp_path: Path
) -> None:
    """The remembered root, not the newer shipped one, stands for the old floor's keys."""
    state = _legacy_state(tmp_path / "state.json", repo.roots[0], STOLEN_VERSION)
    second = repo.add_root(_root(2, [keys[1]]), [keys[0], keys[1]])
    repo.publish(1, [keys[1]])
    assert repo.refresh(state, shipped=second)[1].version == 1


def test_floor_holds_under_counts_the_threshold(keys: list[PrivateKey]) -> None:
    a, b, c = keys
    floor = Floor(5, None, frozenset({a.public.key_id, b.public.key_id}))
    assert floor.holds_under(_root(2, [a, c], threshold=1))
    assert floor.holds_under(_root(2, [a, b], threshold=2))
    assert not floor.holds_under(_root(2, [a, c], threshold=2))
    assert not floor.holds_under(_root(2, [c]))


# --- first contact ------------------------------------------------------------------------


def test_first_contact_rollback_is_refused_with_the_shipped_floor(
    repo: Repo, keys: list[PrivateKey], tmp_path: Path
) -> None:
    repo.publish(3, [keys[0]])  # an old, still unexpired manifest replayed to a new install
    with pytest.raises(RollbackError, match="version 3 is older than version 6"):
        repo.refresh(tmp_path / "state.json", minimum=6)
    assert not (tmp_path / "state.json").exists()
    repo.publish(6, [keys[0]])
    assert repo.refresh(tmp_path / "state.json", minimum=6)[1].version == 6


def test_shipped_floor_survives_a_fast_forward_reset(
    repo: Repo, keys: list[PrivateKey], tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    repo.publish(STOLEN_VERSION, [keys[0]])
    repo.refresh(state, minimum=6)
    # A rotation that keeps the shipped root's key keeps the shipped minimum.
    repo.add_root(_root(2, [keys[0], keys[1]]), [keys[0], keys[1]])
    repo.publish(5, [keys[1]])
    with pytest.raises(RollbackError, match="older than version"):
        repo.refresh(state, minimum=6)


def test_shipped_floor_is_dropped_by_a_revoking_rotation(
    repo: Repo, keys: list[PrivateKey], tmp_path: Path
) -> None:
    """An app built during a fast-forward (minimum 2**53-1) still follows the restart."""
    state = tmp_path / "state.json"
    repo.publish(STOLEN_VERSION, [keys[0]])
    repo.add_root(_root(2, [keys[1]]), [keys[0], keys[1]])
    repo.publish(1, [keys[1]])
    assert repo.refresh(state, minimum=2**53 - 1)[1].version == 1


# --- a mirror is the same repository ------------------------------------------------------


def _check(repo: str, root: Path, state_home: Path, *extra: str) -> dict[str, Any]:
    result = aoe(
        "client",
        "check",
        "--repo",
        repo,
        "--trusted-root",
        root,
        "--tag",
        "tag_x",
        "--installed-version",
        "1.0.0",
        "--app-version",
        "1.0.0",
        "--device-id",
        "d1",
        "--json",
        *extra,
        env={"XDG_STATE_HOME": str(state_home)},
    )
    doc = json.loads(result.stdout)
    assert isinstance(doc, dict), result.stdout
    return {"exit": result.exit_code, **doc}


def test_mirror_under_another_url_shares_the_state(
    repo: Repo, keys: list[PrivateKey], tmp_path: Path
) -> None:
    shipped = tmp_path / "root.json"
    shipped.write_bytes(repo.roots[0])
    repo.publish(3, [keys[0]])
    mirror = tmp_path / "mirror"
    shutil.copytree(repo.path, mirror)  # a mirror that froze at version 3
    repo.publish(4, [keys[0]])
    assert _check(str(repo.path), shipped, tmp_path / "xdg")["manifestVersion"] == 4
    doc = _check(str(mirror), shipped, tmp_path / "xdg")
    assert doc["exit"] == 1
    assert doc["error"]["code"] == "rollback", doc
    names = sorted(p.name for p in (tmp_path / "xdg" / "aoe-pack" / "client").iterdir())
    assert names == [f"{REPO_ID}.json", f"{REPO_ID}.json.lock"]  # one state, and its lock


def test_identity_is_the_shipped_roots_repository_id(repo: Repo, keys: list[PrivateKey]) -> None:
    second = repo.add_root(_root(2, [keys[1]]), [keys[0], keys[1]])
    assert repository_identity(repo.roots[0]) == REPO_ID
    assert repository_identity(second) == REPO_ID


def test_mirror_with_a_forged_root_1_gets_the_same_state(
    repo: Repo, keys: list[PrivateKey], tmp_path: Path
) -> None:
    """A mirror whose roots/1 lists the real key and its own cannot pick a fresh state."""
    a, b, thief = keys
    second = repo.add_root(_root(2, [b]), [a, b])
    repo.publish(9, [b])
    shipped = tmp_path / "root.json"
    shipped.write_bytes(second)
    assert _check(str(repo.path), shipped, tmp_path / "xdg")["manifestVersion"] == 9
    mirror = tmp_path / "mirror"
    shutil.copytree(repo.path, mirror)
    forged = new_root(1, [a.public, thief.public], 1, "f0" * 16)
    (mirror / root_name(1)).write_bytes(sign_root(forged, [thief]))
    (mirror / MANIFEST).write_bytes(sign_manifest(manifest(release("1.0.0"), version=5), [b]))
    doc = _check(str(mirror), shipped, tmp_path / "xdg")
    assert doc["error"]["code"] == "rollback", doc
    names = sorted(p.name for p in (tmp_path / "xdg" / "aoe-pack" / "client").iterdir())
    assert names == [f"{REPO_ID}.json", f"{REPO_ID}.json.lock"]


def test_rotation_to_another_repository_id_is_refused(repo: Repo, keys: list[PrivateKey]) -> None:
    current = verify_self_signed(repo.roots[0])
    other = new_root(2, [keys[0].public], 1, "ab" * 16)
    with pytest.raises(RootRotationError, match=r"names repository abab.*, not 5eed"):
        verify_successor(current, sign_root(other, [keys[0]]))


def test_rotation_may_give_an_old_chain_its_id(keys: list[PrivateKey]) -> None:
    old = make_root(1, [keys[0].public])  # a chain from before repository ids
    named = new_root(2, [keys[0].public], 1, REPO_ID)
    assert verify_successor(old, sign_root(named, [keys[0]])).repository_id == REPO_ID


# --- the state file, hostile --------------------------------------------------------------


def test_state_nested_2000_deep_is_a_named_error(repo: Repo, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text("[" * 2000 + "]" * 2000)
    with pytest.raises(
        RepositoryFormatError, match=r"client state .* is unreadable: RecursionError"
    ):
        ClientState.load(state, repo.roots[0])


def test_state_too_large_is_a_named_error(repo: Repo, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_bytes(b" " * (5 << 20))
    with pytest.raises(RepositoryFormatError, match="unreadable: larger than 4194304 bytes"):
        ClientState.load(state, repo.roots[0])


def test_state_with_a_bad_digest_is_a_named_error(repo: Repo, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    doc = {"root": base64.b64encode(repo.roots[0]).decode(), "manifestVersion": 2}
    state.write_text(json.dumps({**doc, "manifestSha256": "XYZ"}))
    with pytest.raises(RepositoryFormatError, match="manifestSha256 must be 64 lowercase hex"):
        ClientState.load(state, repo.roots[0])


def test_state_round_trips_digest_and_root_keys(
    repo: Repo, keys: list[PrivateKey], tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    data = repo.publish(2, [keys[0]])
    repo.refresh(state)
    loaded = ClientState.load(state, repo.roots[0])
    payload = envelope.parse(data, envelope.MANIFEST_TYPE, what="m").payload
    assert loaded.manifest_sha256 == hashlib.sha256(payload).hexdigest()
    assert loaded.manifest_root_keys == frozenset({keys[0].public.key_id})


# --- checks that share one state at once -----------------------------------------------------


class _Reading:
    """A repository folder read through ``on_read(name)``, called before each read."""

    def __init__(self, path: Path, on_read: Any) -> None:
        self._store = open_store(str(path))
        self._on_read = on_read

    @property
    def url(self) -> str:
        return self._store.url

    def read(self, name: str, *, max_bytes: int) -> Stored | None:
        self._on_read(name)
        return self._store.read(name, max_bytes=max_bytes)


def _mirror_at_3_origin_at_4(repo: Repo, keys: list[PrivateKey], tmp_path: Path) -> Path:
    repo.publish(3, [keys[0]])
    mirror = tmp_path / "mirror"
    shutil.copytree(repo.path, mirror)  # a mirror that froze at version 3
    repo.publish(4, [keys[0]])
    return mirror


def test_two_checks_racing_on_one_state_never_lower_its_floor(
    repo: Repo, keys: list[PrivateKey], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Check A reads a mirror frozen at 3, slowly; check B reads the origin at 4 meanwhile.

    Interleaved (A loads, B loads, B saves 4, A saves 3), A would bring the
    floor back to 3, and every later check would accept manifest 3 again. B
    must wait for A instead: it starts from A's 3, and saves 4.
    """
    state = tmp_path / "state.json"
    mirror = _mirror_at_3_origin_at_4(repo, keys, tmp_path)
    tries: list[int] = []
    b_waits = threading.Event()
    real_lock = client_state.lock_within

    def lock_within(fd: int, seconds: float) -> bool:
        tries.append(fd)
        if len(tries) == 2:  # B has come to the lock that A holds
            b_waits.set()
        return real_lock(fd, seconds)

    monkeypatch.setattr(client_state, "lock_within", lock_within)

    a_reads = threading.Event()

    def a_slow(name: str) -> None:
        a_reads.set()  # A is on the network, the state loaded
        if name == MANIFEST:
            b_waits.wait(10)  # (without a lock, until B is done: the interleaving above)

    seen_by_b: list[int | None] = []

    def b_first(name: str) -> None:
        if not seen_by_b:  # the floor on disk when B started to read the repository
            saved = state.exists() and json.loads(state.read_text())["manifestVersion"]
            seen_by_b.append(saved or None)

    a: list[object] = []
    thread = threading.Thread(
        target=lambda: a.append(repo.refresh(state, store=_Reading(mirror, a_slow))[1].version)
    )
    thread.start()
    assert a_reads.wait(10)
    b = repo.refresh(state, store=_Reading(repo.path, b_first))[1].version
    b_waits.set()
    thread.join(30)
    assert (a, b) == ([3], 4)
    assert ClientState.load(state, repo.roots[0]).manifest_version == 4
    assert seen_by_b == [3]  # B loaded only once A had saved


def test_a_floor_saved_meanwhile_by_a_check_that_does_not_lock_is_kept(
    repo: Repo, keys: list[PrivateKey], tmp_path: Path
) -> None:
    """Another writer of the state (an older aoe-pack, another implementation) saves 4
    while check A, which read 3, is on the network: A's save must not lower it."""
    state = tmp_path / "state.json"
    mirror = _mirror_at_3_origin_at_4(repo, keys, tmp_path)
    elsewhere = tmp_path / "elsewhere.json"
    repo.refresh(elsewhere)  # what that writer saves: 4, its digest, its root keys

    def meanwhile(name: str) -> None:
        if name == MANIFEST:
            shutil.copyfile(elsewhere, state)

    assert repo.refresh(state, store=_Reading(mirror, meanwhile))[1].version == 3
    assert state.read_bytes() == elsewhere.read_bytes()
    with pytest.raises(RollbackError, match=r"version 3 .* older than version 4"):
        repo.refresh(state, store=_Reading(mirror, lambda name: None))


def test_a_state_another_check_holds_is_a_named_error_after_the_wait(
    repo: Repo, keys: list[PrivateKey], tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    repo.publish(2, [keys[0]])
    with held(state):  # another open of the lock file: another check, to flock
        started = time.monotonic()
        with pytest.raises(StateLockedError) as caught:
            repo.refresh(state, lock_wait=0.2)
        assert time.monotonic() - started >= 0.2
    assert caught.value.message == (
        f"another check holds the client state {state}: its lock state.json.lock was still "
        "held after 0.2 s"
    )
    assert caught.value.code == "state-locked"
    assert not state.exists()  # nothing remembered
    assert repo.refresh(state, lock_wait=0.2)[1].version == 2  # released: the next goes on


_HOLDER = """
import sys, time
from pathlib import Path
from aoe_pack.client.state import held

with held(Path(sys.argv[1])):
    print("ready", flush=True)
    time.sleep(600)
"""


def test_a_state_held_by_a_killed_check_is_free_again(
    repo: Repo, keys: list[PrivateKey], tmp_path: Path
) -> None:
    """The lock is the holder's open file's: killed, it holds nothing, and the lock file
    it leaves behind stops no one."""
    state = tmp_path / "state.json"
    repo.publish(2, [keys[0]])
    with blocked_child(_HOLDER, str(state)) as child:
        with pytest.raises(StateLockedError, match=r"still held after 0\.1 s"):
            repo.refresh(state, lock_wait=0.1)
        sigkill(child)
    assert (tmp_path / "state.json.lock").exists()
    assert repo.refresh(state, lock_wait=0.1)[1].version == 2


def _locks_fail(monkeypatch: pytest.MonkeyPatch, err: int) -> None:
    def fail(fd: int, seconds: float) -> bool:
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr(client_state, "lock_within", fail)


@pytest.mark.parametrize("err", [errno.ENOLCK, errno.EOPNOTSUPP], ids=["ENOLCK", "EOPNOTSUPP"])
def test_a_state_on_a_file_system_without_locks_is_checked_unlocked(
    err: int, repo: Repo, keys: list[PrivateKey], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some network file systems have no locks: checks go on, and the save still keeps
    the floor (test_a_floor_saved_meanwhile_by_a_check_that_does_not_lock_is_kept)."""
    _locks_fail(monkeypatch, err)
    repo.publish(2, [keys[0]])
    assert repo.refresh(tmp_path / "state.json")[1].version == 2


def test_a_state_that_cannot_be_locked_is_a_named_error(
    repo: Repo, keys: list[PrivateKey], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _locks_fail(monkeypatch, errno.EIO)
    repo.publish(2, [keys[0]])
    state = tmp_path / "state.json"
    with pytest.raises(StoreError) as caught:
        repo.refresh(state)
    assert caught.value.message == (
        f"cannot lock the client state {state}: {os.strerror(errno.EIO)}"
    )
    assert not state.exists()
