"""Every change to a repository: read, edit, sign, compare-and-swap, retry.

All manifest commands go through :func:`edit_manifest`, which works the same on
every :class:`~aoe_pack.storage.store.Store`:

1. read ``root.json`` and ``manifest.json`` (with the manifest's token);
2. check the manifest against the root (a repository we cannot trust is not
   edited), apply the edit to it, add one to its version, sign;
3. ``replace`` it only if it still has the token read in step 1; if another
   publisher got there first, wait a random moment and start again from 1.

Bundles are uploaded before step 1, under their digest, so a manifest never
names a bundle that is not fully there; a crash anywhere leaves the old
manifest or the new one. Stores whose compare-and-swap has a window (OCI
registries without conditional writes) set ``atomic_cas = False``; for them the
manifest is read back after a short settle time and the edit is redone if a
racing writer overwrote it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from aoe_pack._jcs import MAX_SAFE_INTEGER
from aoe_pack.errors import (
    RepositoryError,
    RepositoryExistsError,
    StoreConflictError,
    StoreError,
    UntrustedMetadataError,
    VersionLimitError,
)
from aoe_pack.keys import PublicKey, SigningKey
from aoe_pack.publish import floor, pending
from aoe_pack.publish.edits import add_releases
from aoe_pack.publish.split import IndexOutcome, publish_index
from aoe_pack.repository import envelope
from aoe_pack.repository.limits import DEFAULT_LIMITS
from aoe_pack.repository.model import Manifest, Models
from aoe_pack.repository.root import (
    Root,
    new_repository_id,
    new_root,
    parse_root,
    verify_self_signed,
    verify_successor,
)
from aoe_pack.repository.trust import (
    update_root,
    verify_manifest,
)
from aoe_pack.storage.store import MANIFEST, ROOT, Store, root_name

MAX_ATTEMPTS = 200
DEFAULT_EXPIRES = dt.timedelta(days=30)

Edit = Callable[[Manifest], Models]
"""Given the current manifest, the new ``models`` (raise to refuse the edit)."""


@dataclass(frozen=True)
class RepoState:
    """A repository as read at one moment, checked against its own root."""

    root: Root
    root_token: str
    manifest: Manifest
    manifest_token: str
    manifest_bytes: bytes
    root_signed_by: frozenset[str] = frozenset()
    """Key ids whose signatures on the head root verify."""
    head_bytes: bytes = b""
    """The head root's envelope, as ``roots/N.root.json`` holds it."""
    manifest_sha256: str = ""
    """SHA-256 (hex) of ``manifest_bytes``' signed payload, as the floor records it."""


@dataclass(frozen=True)
class Commit:
    """A manifest version this process wrote, and how many tries it took.

    ``attempts == 0``: nothing needed writing, and ``manifest`` is the current one.
    """

    manifest: Manifest
    attempts: int
    index: IndexOutcome | None = None
    """What became of the index of this version (None: no version was written)."""


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def read_state(store: Store) -> RepoState:
    """The current root and manifest; the manifest may be expired (it gets re-signed).

    The root is the head of the chain ``roots/1.root.json``, ``roots/2...``,
    each link checked as devices check it; ``root.json`` must be one of its
    links (normally the head; an earlier one while a rotation is unfinished): a
    root.json that someone with write access to the storage swapped in is
    refused. Edits then require that the head root carries a signature by one
    of the publisher's own keys (:func:`require_approved`).

    A root or manifest older than this publisher read in an edit or wrote
    before is refused (:mod:`aoe_pack.publish.floor`): the storage was rolled
    back, and an edit on top of it would sign away what it undid.
    """
    root_doc = store.read(ROOT, max_bytes=DEFAULT_LIMITS.max_root_bytes)
    if root_doc is None:
        raise RepositoryError(
            f"{store.url} is not an aoe-pack repository (no root.json)",
            hint="create it with `aoe-pack manifest init --repo ... --root-key KEY.pub "
            "--sign-key KEY.key`",
        )
    first = store.read(root_name(1), max_bytes=DEFAULT_LIMITS.max_root_bytes)
    if first is None:
        raise RepositoryError(f"{store.url} has a root.json but no roots/1.root.json")
    start = verify_self_signed(first.data, what=f"{store.url}/roots/1.root.json")
    # The floor before the chain and the manifest: another process of this publisher
    # raises it only once its write is in the storage, so what is read after it is
    # never older. A chain keeps its repositoryId; one from before ids may gain one.
    early = floor.floor_path(start, store.url) if start.repository_id else None
    held = floor.load(early) if early else None

    def fetch(n: int) -> bytes | None:
        doc = store.read(root_name(n), max_bytes=DEFAULT_LIMITS.max_root_bytes)
        return doc.data if doc else None

    root, accepted = update_root(start, fetch, max_steps=DEFAULT_LIMITS.max_chain_length)
    head = accepted[-1] if accepted else first.data
    if root_doc.data not in (first.data, *accepted):  # behind the head: a rotation stopped
        raise UntrustedMetadataError(
            f"{store.url}/root.json is not a root of the chain roots/1...{root.version}.root.json",
            hint="root.json was replaced outside aoe-pack; restore it from the chain "
            "before publishing",
        )
    _, head_env = parse_root(head)
    path = floor.floor_path(root, store.url)
    if path != early:
        held = floor.load(path)
    doc = store.read(MANIFEST, max_bytes=DEFAULT_LIMITS.max_manifest_bytes)
    if doc is None:
        raise RepositoryError(f"{store.url} has a root.json but no manifest.json")
    verified = verify_manifest(doc.data, root, now=now_utc(), check_expiry=False)
    floor.check(
        path,
        held,
        url=store.url,
        root=root,
        version=verified.manifest.version,
        sha256=verified.payload_sha256,
        same_version_is_one=getattr(store, "atomic_cas", True),
    )
    return RepoState(
        root,
        root_doc.token,
        verified.manifest,
        doc.token,
        doc.data,
        frozenset(head_env.valid_keyids(dict(root.keys))),
        head,
        verified.payload_sha256,
    )


def require_approved(state: RepoState, keys: Sequence[SigningKey]) -> None:
    """Sign nothing under a root that none of our keys signed.

    The chain's first root is only self-signed, so someone with write access to
    the storage could replace the whole chain by one listing our public keys
    beside theirs. They cannot forge our signature on it.
    """
    if not {k.key_id for k in keys} & state.root_signed_by:
        raise UntrustedMetadataError(
            f"root version {state.root.version} carries no signature by the given key(s)",
            hint="a publisher only signs under a root its own keys approved; check the "
            "repository's roots/ against the root your devices ship",
        )


def signers_for(root: Root, keys: Sequence[SigningKey]) -> list[SigningKey]:
    """The given keys that ``root`` lists; UntrustedMetadataError below its threshold."""
    usable = [k for k in keys if k.key_id in root.keys]
    if len(usable) < root.threshold:
        raise UntrustedMetadataError(
            f"{len(usable)} of the given signing key(s) are in root version {root.version}, "
            f"which needs {root.threshold}",
            hint="sign with the repository's manifest keys (manifest init --root-key / "
            "rotate-root)",
        )
    return usable


def init_repository(
    store: Store,
    *,
    root_keys: Sequence[PublicKey],
    threshold: int,
    sign_keys: Sequence[SigningKey],
    expires: dt.timedelta = DEFAULT_EXPIRES,
) -> Root:
    """Create root version 1 and an empty manifest version 1."""
    root = new_root(1, root_keys, threshold, new_repository_id())
    if store.read(ROOT, max_bytes=DEFAULT_LIMITS.max_root_bytes) is not None:
        raise RepositoryExistsError(
            f"{store.url} already has a root.json; use rotate-root to change keys"
        )
    signers = signers_for(root, sign_keys)
    root_bytes = envelope.sign(envelope.ROOT_TYPE, root.to_dict(), signers).to_bytes()
    verify_self_signed(root_bytes)
    empty = Manifest(version=1, expires=now_utc() + expires, models=Models())
    signed = envelope.sign(envelope.MANIFEST_TYPE, empty.to_dict(), signers)
    manifest_bytes = signed.to_bytes()
    # The manifest first: a repository with a root but no manifest reads as broken,
    # one with only a manifest (an init that crashed) is not initialised yet, and
    # its manifest is simply replaced.
    leftover = store.read(MANIFEST, max_bytes=DEFAULT_LIMITS.max_manifest_bytes)
    store.replace(MANIFEST, manifest_bytes, expected=leftover.token if leftover else None)
    _create(store, root_name(1), root_bytes)
    _create(store, ROOT, root_bytes)
    remember(store, root, empty, manifest_bytes)
    publish_index(
        store,
        root=root,
        previous=None,
        previous_sha256=None,
        manifest=empty,
        manifest_bytes=manifest_bytes,
        manifest_sha256=hashlib.sha256(signed.payload).hexdigest(),
        sign_keys=signers,
    )
    return root


def _create(store: Store, name: str, data: bytes) -> None:
    try:
        store.replace(name, data, expected=None)
    except StoreConflictError as e:
        existing = store.read(name, max_bytes=DEFAULT_LIMITS.max_manifest_bytes)
        if existing is None or existing.data != data:
            raise RepositoryExistsError(f"{store.url}: {name} already exists") from e


def edit_manifest(
    store: Store,
    edit: Edit,
    *,
    sign_keys: Sequence[SigningKey],
    expires: dt.timedelta = DEFAULT_EXPIRES,
    landed: Callable[[Manifest], bool] | None = None,
    settle: float = 0.05,
    bundle_keys: Mapping[str, str] | None = None,
    next_root: Root | None = None,
    state: RepoState | None = None,
    restart: bool = False,
) -> Commit:
    """Apply ``edit`` to the newest manifest with compare-and-swap, retrying on conflict.

    ``landed(m)`` tells whether a manifest already holds this edit; it is used
    for stores without atomic compare-and-swap to detect an overwritten write.
    ``bundle_keys`` are added to the manifest's ``bundleKeys``. With
    ``next_root``, the manifest is signed by a threshold of both the current
    root's keys and ``next_root``'s, so that it verifies under either (rotation).
    ``state``, a :func:`read_state` the caller just made, saves the first read.
    """
    rng = random.SystemRandom()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        if attempt > 1 or state is None:  # a caller's fresh read serves the first try
            state = read_state(store)
        signers = signers_for(state.root, sign_keys)
        require_approved(state, sign_keys)
        remember(
            store,
            state.root,
            state.manifest,
            state.manifest_bytes,
            payload_sha256=state.manifest_sha256 or None,
        )
        if next_root is not None:
            ids = {k.key_id for k in signers}
            signers += [k for k in signers_for(next_root, sign_keys) if k.key_id not in ids]
        models = edit(state.manifest)
        models.check_parsed()
        new = state.manifest.bump(
            expires=now_utc() + expires, models=models, bundle_keys=bundle_keys, restart=restart
        )
        signed = envelope.sign_canonical(envelope.MANIFEST_TYPE, new.canonical_json(), signers)
        data = signed.to_bytes()
        digest = hashlib.sha256(signed.payload).hexdigest()
        if swap_manifest(
            store, state, data, new, landed=landed, settle=settle, payload_sha256=digest
        ):
            outcome = publish_index(
                store,
                root=state.root,
                previous=state.manifest,
                previous_sha256=state.manifest_sha256 or None,
                manifest=new,
                manifest_bytes=data,
                manifest_sha256=digest,
                sign_keys=signers,
            )
            return Commit(new, attempt, outcome)
        _back_off(rng, attempt)
    raise StoreError(
        f"{store.url}: gave up after {MAX_ATTEMPTS} write conflicts with other publishers"
    )


def swap_manifest(
    store: Store,
    state: RepoState,
    data: bytes,
    new: Manifest,
    *,
    landed: Callable[[Manifest], bool] | None = None,
    settle: float = 0.05,
    payload_sha256: str | None = None,
) -> bool:
    """Write ``data`` (the envelope of ``new``) if manifest.json is still as ``state`` read it.

    ``payload_sha256``, the digest of ``data``'s payload when the caller has it,
    saves parsing ``data`` again (see :func:`remember`).

    False when another publisher wrote first, or, on a store without atomic
    compare-and-swap, when the read-back finds the write replaced at its own
    version (or lacking what ``landed`` asks for): nothing of ours stands then.
    """
    try:
        token = store.replace(MANIFEST, data, expected=state.manifest_token)
    except StoreConflictError:
        return False
    if not (getattr(store, "atomic_cas", True) or _still_there(store, token, new, landed, settle)):
        return False
    remember(store, state.root, new, data, payload_sha256=payload_sha256)
    return True


def remember(
    store: Store,
    root: Root,
    manifest: Manifest,
    data: bytes,
    *,
    payload_sha256: str | None = None,
) -> None:
    """Raise this publisher's floor for the repository to ``root`` and ``manifest`` (whose
    envelope is ``data``): one it wrote, or read under a root its own keys approved.

    ``payload_sha256`` is the digest of ``data``'s payload when the caller has it
    (it just signed or verified ``data``): parsing a manifest of 10,000 releases
    again costs more than the rest of an edit.
    """
    if payload_sha256 is None:
        env = envelope.parse(data, envelope.MANIFEST_TYPE, what="manifest.json")
        payload_sha256 = hashlib.sha256(env.payload).hexdigest()
    path = floor.floor_path(root, store.url)
    floor.record(path, floor.load(path), root=root, version=manifest.version, sha256=payload_sha256)


def _back_off(rng: random.Random, attempt: int) -> None:
    # Full-jitter exponential backoff: racing publishers spread out instead of
    # colliding again on their next read-edit-write.
    time.sleep(rng.uniform(0, min(1.0, 0.01 * 2 ** min(attempt, 7))))


def _still_there(
    store: Store,
    token: str,
    new: Manifest,
    landed: Callable[[Manifest], bool] | None,
    settle: float,
) -> bool:
    time.sleep(settle)
    state = read_state(store)
    if state.manifest_token == token:
        return landed is None or landed(state.manifest)
    if state.manifest.version <= new.version:
        return False  # a racing writer replaced ours at the same version: redo
    return landed is None or landed(state.manifest)


def edit_repository(
    store: Store,
    edit: Callable[[Manifest], Models],
    *,
    sign_keys: Sequence[SigningKey],
    expires: dt.timedelta,
    landed: Callable[[Manifest], bool] | None = None,
    bundle_keys: Mapping[str, str] | None = None,
    next_root: Root | None = None,
) -> Commit:
    """Every edit, on any store. Without compare-and-swap (OCI), each edit also
    merges the pending records the manifest lacks and only counts as done once a
    read-back holds them all, so that a yank racing a publish loses neither."""
    if getattr(store, "atomic_cas", True):
        return edit_manifest(
            store,
            edit,
            sign_keys=sign_keys,
            expires=expires,
            landed=landed,
            bundle_keys=bundle_keys,
            next_root=next_root,
        )
    root = read_state(store).root
    found: dict[str, str] = dict(bundle_keys or {})

    def merged(m: Manifest) -> Models:
        others = pending.missing_records(store, m, root)
        for _, _, keys in others:
            found.update(keys)
        base = replace(m, models=edit(m))
        return add_releases((), [(t, r) for t, r, _ in others])(base)

    def done(m: Manifest) -> bool:
        return (landed is None or landed(m)) and not pending.missing_records(store, m, root)

    return edit_manifest(
        store,
        merged,
        sign_keys=sign_keys,
        expires=expires,
        landed=done,
        bundle_keys=found,
        next_root=next_root,
    )


def rotate_root(
    store: Store,
    *,
    new_keys: Sequence[PublicKey],
    threshold: int,
    sign_keys: Sequence[SigningKey],
    expires: dt.timedelta = DEFAULT_EXPIRES,
    restart_manifest_version: bool = False,
    warn: Callable[[str], None] | None = None,
) -> Root:
    """Replace root N by root N+1, signed by ``sign_keys``.

    ``warn`` is told when the index of the re-signed manifest could not be
    written (after a restart, the new versions' tag document names are the old
    sequence's: the index is retired until the versions pass them, §15.12).

    With ``restart_manifest_version`` the manifest starts again at version 1:
    the way out of a fast-forward (a stolen key signed a huge version). It is
    allowed only when root N+1 keeps fewer than its threshold of root N's
    keys, since only then does every device drop the floor those keys set
    (docs/format.md §15.6 step 3); otherwise devices would refuse version 1.

    The new root must carry a threshold of the old keys' and of the new keys'
    signatures; it is checked exactly as clients will check it before anything
    is written. Then, in this order: the manifest is re-signed under both roots,
    ``roots/N+1.root.json`` is written, ``root.json`` is switched, and the
    manifest is re-signed once more, under the new root alone: an edit made
    with the old root while the rotation ran is replaced, and any edit that
    raced the switch fails its compare-and-swap and retries under the new root.
    """
    state = read_state(store)
    if {k.key_id for k in new_keys} == set(state.root.keys) and threshold == state.root.threshold:
        require_approved(state, sign_keys)
        # Already rotated (a second run, or one that stopped after writing the
        # new root): finish the switch and the re-sign; start no new rotation.
        head = store.read(root_name(state.root.version), max_bytes=DEFAULT_LIMITS.max_root_bytes)
        if head is not None:
            current = store.read(ROOT, max_bytes=DEFAULT_LIMITS.max_root_bytes)
            if current is not None and current.data != head.data:
                store.replace(ROOT, head.data, expected=current.token)
        edit_repository(store, lambda m: m.models, sign_keys=sign_keys, expires=expires)
        return state.root
    root = next_root(state.root, new_keys, threshold, restart_manifest_version)
    keys = list({k.key_id: k for k in sign_keys}.values())
    data = envelope.sign(envelope.ROOT_TYPE, root.to_dict(), keys).to_bytes()
    verify_successor(state.root, data)
    require_approved(state, sign_keys)
    # The manifest first, signed under both roots: a device that walks to the new
    # root must find a manifest it accepts, whenever this process stops.
    edit_manifest(
        store,
        lambda m: m.models,
        sign_keys=sign_keys,
        expires=expires,
        next_root=root,
        restart=restart_manifest_version,
    )
    install_root(store, state, root.version, data)
    commit = edit_repository(store, lambda m: m.models, sign_keys=sign_keys, expires=expires)
    if warn is not None and commit.index is not None and commit.index.warning:
        warn(commit.index.warning)
    return root


def next_root(
    current: Root, new_keys: Sequence[PublicKey], threshold: int, restart_manifest_version: bool
) -> Root:
    """Root ``current.version + 1`` over ``new_keys``, refused before anything is signed.

    ``restart_manifest_version`` (the manifest starts again at 1) is refused
    unless the new root revokes the old keys (see :func:`rotate_root`).
    """
    if current.version >= MAX_SAFE_INTEGER:
        raise VersionLimitError(f"root version {current.version} is the last one (2**53-1)")
    # A chain keeps its id; a chain from before ids gets one now.
    root = new_root(
        current.version + 1,
        new_keys,
        threshold,
        current.repository_id or new_repository_id(),
    )
    kept = len(set(root.keys) & set(current.keys))
    if restart_manifest_version and kept >= root.threshold:
        raise RepositoryError(
            f"--restart-manifest-version needs a root that revokes the old keys: root "
            f"version {root.version} keeps {kept} of them, at least its threshold "
            f"{root.threshold}, so devices keep their manifest version floor and would "
            "refuse version 1",
            hint="rotate to keys of which fewer than the threshold were in the old root",
        )
    return root


def install_root(store: Store, state: RepoState, version: int, data: bytes) -> None:
    """Steps 2 and 3 of a rotation: create ``roots/N.root.json``, then switch root.json.

    The manifest must already verify under the new root (step 1).
    """
    _create(store, root_name(version), data)
    store.replace(ROOT, data, expected=state.root_token)


def load_root_file(data: bytes) -> Root:
    """A root a user passes with --trusted-root (its own keys must have signed it)."""
    parse_root(data)  # a precise format error before the signature check
    return verify_self_signed(data)
