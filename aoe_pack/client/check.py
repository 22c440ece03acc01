"""The whole device flow: trust, decide, download, verify, decrypt.

1. Fix "now" once (TUF). Walk the root chain from the last trusted root (or
   the one shipped with the app) to the newest.
2. Fetch ``index.json`` and the tag's document (:mod:`aoe_pack.client.indexed`),
   or ``manifest.json`` from a repository without an index, with a size cap, and
   check it against that root and the last manifest version this device
   accepted (rollback) and its expiry (freeze). Only then persist the new state
   (and cache the documents, :mod:`aoe_pack.client.cache`). The state is held
   from its load to its save (:mod:`aoe_pack.client.state`).
3. Decide (:mod:`aoe_pack.client.decide`).
4. Download the chosen bundle, capped at the size the manifest promises and
   resuming an interrupted download; check its size and SHA-256 against the
   manifest (mix-and-match, substitution) before opening it.
5. Verify the bundle's own signatures with the root's keys, check that it is
   the tag and version the manifest says, decrypt and unpack it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aoe_pack.client.cache import DocumentCache
from aoe_pack.client.decide import Action, Decision, Device, decide, require_model
from aoe_pack.client.delta import DeltaAttempt, try_delta
from aoe_pack.client.indexed import IndexedRead, read_indexed
from aoe_pack.client.install import install
from aoe_pack.client.state import STATE_LOCK_WAIT, ClientState, held
from aoe_pack.errors import (
    ReleaseNotFoundError,
    RepositoryError,
    RollbackError,
    UntrustedMetadataError,
)
from aoe_pack.keys import PublicKey
from aoe_pack.keys.load import DecryptionKey
from aoe_pack.repository.limits import DEFAULT_LIMITS
from aoe_pack.repository.model import Manifest, Release
from aoe_pack.repository.root import (
    Root,
    verify_self_signed,
)
from aoe_pack.repository.trust import (
    Floor,
    VerifiedManifest,
    recorded_signers,
    update_root,
    verify_manifest,
)
from aoe_pack.storage.store import MANIFEST, Store, root_name


@dataclass(frozen=True)
class CheckResult:
    decision: Decision
    root_version: int
    manifest_version: int
    bundle: Path | None = None
    unpacked: Path | None = None
    delta: DeltaAttempt | None = None
    """The delta tried first (§16.6); with ``unpacked`` and no ``bundle``, it installed."""

    @property
    def via(self) -> str | None:
        """How the release was installed: "delta", "bundle", or None (nothing installed)."""
        if self.unpacked is None:
            return None
        return "bundle" if self.bundle is not None else "delta"

    repository: str | None = None
    """The repository address read: ``--repo``, or the local bundle's ``updateURL``."""

    def to_dict(self) -> dict[str, Any]:
        d = {
            **self.decision.to_dict(),
            "rootVersion": self.root_version,
            "manifestVersion": self.manifest_version,
            "bundle": str(self.bundle) if self.bundle else None,
            "unpacked": str(self.unpacked) if self.unpacked else None,
            "repository": self.repository,
        }
        if self.unpacked is not None:
            d["via"] = self.via
        if self.delta is not None:
            d["delta"] = {
                "from": self.delta.delta.from_version,
                "size": self.delta.delta.size,
                "downloaded": self.delta.downloaded,
                "used": self.delta.error is None,
                **(
                    {
                        "fallback": {
                            "code": self.delta.error.code,
                            "message": self.delta.error.message,
                        }
                    }
                    if self.delta.error
                    else {}
                ),
            }
        return d


def effective_floor(floor: Floor | None, root: Root, minimum: Floor | None) -> Floor | None:
    """The floor a manifest is checked against once ``root`` is trusted.

    A floor set under keys that ``root`` revokes is dropped (fast-forward
    recovery), and so is the app's shipped minimum, whose keys are those of
    the shipped root: after a revoking rotation the repository may restart
    its versions (§15.8.5). Of what holds, the higher version wins.
    """
    held = [f for f in (floor, minimum) if f is not None and f.holds_under(root)]
    return max(held, key=lambda f: f.version, default=None)


def fetch_trusted(
    store: Store,
    start: Root,
    *,
    now: dt.datetime,
    floor: Floor | None = None,
    minimum: Floor | None = None,
) -> tuple[Root, list[bytes], VerifiedManifest]:
    """Walk the root chain from ``start``, then fetch and verify the manifest.

    Returns the newest root, the root envelopes accepted on the way (to
    persist) and the verified manifest. Shared by devices and ``manifest
    verify``, which must agree.
    """

    root, accepted, floor = trusted_chain(store, start, floor=floor, minimum=minimum)
    return root, accepted, fetch_manifest(store, root, now=now, floor=floor)


def trusted_chain(
    store: Store, start: Root, *, floor: Floor | None, minimum: Floor | None
) -> tuple[Root, list[bytes], Floor | None]:
    """Step 3: the newest root, the envelopes accepted on the way, and the floor that holds."""

    def fetch_root(n: int) -> bytes | None:
        doc = store.read(root_name(n), max_bytes=DEFAULT_LIMITS.max_root_bytes)
        return doc.data if doc else None

    root, accepted = update_root(start, fetch_root)
    return root, accepted, effective_floor(floor, root, minimum)


def fetch_manifest(
    store: Store, root: Root, *, now: dt.datetime, floor: Floor | None
) -> VerifiedManifest:
    """Steps 4-9 through ``manifest.json``."""
    doc = store.read(MANIFEST, max_bytes=DEFAULT_LIMITS.max_manifest_bytes)
    if doc is None:
        raise RepositoryError(f"{store.url} has no manifest.json")
    return verify_manifest(
        doc.data,
        root,
        now=now,
        last_version=floor.version if floor else None,
        last_sha256=floor.payload_sha256 if floor else None,
    )


@dataclass(frozen=True)
class Refreshed:
    """The outcome of steps 1-10: the trusted root and what the decision reads."""

    root: Root
    manifest: Manifest
    """The verified manifest, or (through the index) a view of the tag's document."""
    indexed: IndexedRead | None = None
    """The index and tag document it came through; None for manifest.json."""

    def require(self, tag: str) -> None:
        """:class:`ReleaseNotFoundError` if the repository does not list ``tag``."""
        if self.indexed is None:
            require_model(self.manifest, tag)
        elif self.indexed.document is None:
            known = ", ".join(self.indexed.tags) or "none yet"
            raise ReleaseNotFoundError(
                f"the manifest has no model {tag}; its models: {known}",
                hint="check --tag: `aoe-pack manifest show` lists the published tags",
            )


def refresh(
    store: Store,
    *,
    trusted_root: bytes,
    state_path: Path,
    now: dt.datetime,
    minimum: int | None = None,
    lock_wait: float = STATE_LOCK_WAIT,
) -> tuple[Root, Manifest]:
    """Steps 1-2 through ``manifest.json``: the newest trusted root and the verified
    manifest; state saved. ``minimum`` and ``lock_wait`` as in :func:`refresh_tag`."""
    done = refresh_tag(
        store,
        trusted_root=trusted_root,
        state_path=state_path,
        now=now,
        minimum=minimum,
        lock_wait=lock_wait,
    )
    return done.root, done.manifest


def refresh_tag(
    store: Store,
    *,
    trusted_root: bytes,
    state_path: Path,
    now: dt.datetime,
    minimum: int | None = None,
    tag: str | None = None,
    lock_wait: float = STATE_LOCK_WAIT,
) -> Refreshed:
    """Steps 1-2 for ``tag``: through the index when the repository has one (and a tag
    is given), else through ``manifest.json``; state saved, documents cached.

    ``minimum`` is the manifest version the app shipped with: a floor from the
    first contact on, held while the trusted root keeps a threshold of the
    shipped root's keys (:func:`effective_floor`). The state is held from its
    load to its save, waiting at most ``lock_wait`` seconds for another check
    of the repository (:func:`aoe_pack.client.state.held`, else
    :class:`~aoe_pack.errors.StateLockedError`).
    """
    with held(state_path, wait=lock_wait):
        return _refresh_held(
            store,
            trusted_root=trusted_root,
            state_path=state_path,
            now=now,
            minimum=minimum,
            tag=tag,
        )


def _refresh_held(
    store: Store,
    *,
    trusted_root: bytes,
    state_path: Path,
    now: dt.datetime,
    minimum: int | None,
    tag: str | None,
) -> Refreshed:
    """:func:`refresh_tag`'s work, the state held."""
    state = ClientState.load(state_path, trusted_root)
    start = verify_self_signed(state.root, what="trusted root")
    shipped_floor = None
    if minimum is not None:
        shipped = verify_self_signed(trusted_root, what="--trusted-root")
        shipped_floor = Floor(minimum, None, frozenset(shipped.keys))
    cache = DocumentCache.beside(state_path)
    indexed: IndexedRead | None = None
    try:
        root, accepted, floor = trusted_chain(
            store, start, floor=state.floor, minimum=shipped_floor
        )
        if tag is not None:
            indexed = read_indexed(store, root, tag=tag, now=now, floor=floor, cache=cache)
        verified = None if indexed else fetch_manifest(store, root, now=now, floor=floor)
    except (RollbackError, UntrustedMetadataError) as e:
        if state.manifest_version is not None:  # what this device remembers may be why
            e.hint = (e.hint + "; " if e.hint else "") + (
                f"this device's state is {state_path} (delete it only if the repository "
                "was re-created on purpose)"
            )
        raise
    # One version floor; each kind of document keeps its digest for that version only.
    if indexed is not None:
        version, manifest = indexed.verified.index.version, indexed.manifest
        manifest_sha = floor.payload_sha256 if floor and floor.version == version else None
        index_sha: str | None = indexed.verified.payload_sha256
    else:
        assert verified is not None
        version, manifest = verified.manifest.version, verified.manifest
        manifest_sha = verified.payload_sha256
        index_sha = floor.index_sha256 if floor and floor.version == version else None
    ClientState(
        accepted[-1] if accepted else state.root,
        version,
        manifest_sha,
        frozenset(root.keys),
        index_sha,
    ).save(state_path, root)
    if indexed is not None:
        cache.save(
            index=indexed.verified.envelope_bytes,
            validators=indexed.validators,
            tag=indexed.tag,
            document=indexed.document_bytes,
        )
    return Refreshed(root, manifest, indexed)


def repository_identity(shipped_root: bytes) -> str | None:
    """The repository's ``repositoryId``, read from the root the app ships.

    Every root of a chain carries the same id (§15.3), so the same repository
    under another URL (a mirror, a CDN) has the same identity and a device
    keeps one state for it. It comes from the shipped root alone, never from
    the network: a mirror cannot choose it. None for a chain from before ids.
    """
    return verify_self_signed(shipped_root, what="--trusted-root").repository_id


def bundle_signers(manifest: Manifest, release: Release, root: Root) -> list[PublicKey]:
    """The keys a release's bundle must be signed by.

    The keys the manifest recorded when the bundle was published (its signature
    vouches for them, so a bundle stays installable after the root rotates),
    or, for a release that records none, the root's keys.
    """
    return recorded_signers(manifest, release) or list(root.keys.values())


def check(
    store: Store,
    *,
    tag: str,
    device: Device,
    trusted_root: bytes,
    state_path: Path,
    download_dir: Path | None = None,
    decryption_key: DecryptionKey | None = None,
    now: dt.datetime | None = None,
    minimum: int | None = None,
    require_tag: bool = False,
    lock_wait: float = STATE_LOCK_WAIT,
) -> CheckResult:
    """Run the device flow once (module docstring); ``minimum`` and ``lock_wait`` as in
    :func:`refresh_tag`.

    With ``require_tag``, a tag the manifest lacks is refused
    (:func:`~aoe_pack.client.decide.require_model`) instead of kept.
    """
    now = now or dt.datetime.now(dt.UTC)
    done = refresh_tag(
        store,
        trusted_root=trusted_root,
        state_path=state_path,
        now=now,
        minimum=minimum,
        tag=tag,
        lock_wait=lock_wait,
    )
    root, manifest = done.root, done.manifest
    if require_tag:
        done.require(tag)
    decision = decide(manifest, tag, device)
    result = CheckResult(decision, root.version, manifest.version)
    release = decision.release
    if download_dir is None or decision.action is not Action.DOWNLOAD or release is None:
        return result
    keys = bundle_signers(manifest, release, root)
    attempt = try_delta(
        store,
        download_dir,
        tag=tag,
        release=release,
        installed_version=device.installed_version,
        trusted_keys=keys,
        decryption_key=decryption_key,
    )
    if attempt is not None and attempt.unpacked is not None:  # §16.6: the delta did it
        return CheckResult(
            decision, root.version, manifest.version, None, attempt.unpacked, attempt
        )
    bundle, unpacked = install(
        store,
        download_dir,
        tag=tag,
        release=release,
        trusted_keys=keys,
        decryption_key=decryption_key,
    )
    return CheckResult(decision, root.version, manifest.version, bundle, unpacked, attempt)
