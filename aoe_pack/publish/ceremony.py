"""Offline ceremonies: prepare a change, have each key holder sign it apart, install it.

``rotate-root`` and every edit sign in one process, with a threshold of keys
on one machine. Keys meant to stay offline with different holders take this
way instead (as TUF's and Sigstore's root-signing ceremonies do):

1. :func:`prepare_rotation` or :func:`prepare_edit` reads the repository and
   writes a :class:`~aoe_pack.repository.proposal.Proposal`: the exact root
   N+1 (and bridging manifest) or manifest M+1 to install, unsigned, with the
   root and manifest it applies on top of;
2. each holder runs :func:`sign_proposal` on their own machine, without the
   repository, after reading :func:`inspect_proposal`'s summary;
3. :func:`apply_proposal` checks the proposal as devices will check what it
   installs, checks that the repository is still where the proposal started,
   and installs it by the workflow's compare-and-swap, only once every
   threshold is met.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aoe_pack._io import FileTooLargeError, read_capped, write_atomic
from aoe_pack.errors import (
    ExpiredMetadataError,
    ProposalError,
    ProposalIncompleteError,
    ProposalStaleError,
    RepositoryError,
    RepositoryFormatError,
    UntrustedMetadataError,
)
from aoe_pack.keys import PublicKey, SigningKey
from aoe_pack.publish.split import retire_index
from aoe_pack.publish.workflow import (
    DEFAULT_EXPIRES,
    Edit,
    RepoState,
    install_root,
    load_root_file,
    next_root,
    now_utc,
    read_state,
    swap_manifest,
)
from aoe_pack.repository import envelope
from aoe_pack.repository.changes import (
    ManifestChange,
    RootChange,
    manifest_change,
    root_change,
)
from aoe_pack.repository.limits import DEFAULT_LIMITS
from aoe_pack.repository.model import Manifest, format_time
from aoe_pack.repository.proposal import (
    Kind,
    Proposal,
    RoleStatus,
    describe_status,
    new_proposal,
    parse_proposal,
)
from aoe_pack.repository.root import Root, verify_successor
from aoe_pack.repository.trust import recorded_signers, verify_manifest
from aoe_pack.storage.store import MANIFEST, ROOT, Store

_PREPARE_AGAIN = (
    "another edit landed since the proposal was prepared: prepare it again and have it signed anew"
)


# --- prepare ---------------------------------------------------------------------------------


def prepare_rotation(
    store: Store,
    *,
    new_keys: Sequence[PublicKey],
    threshold: int,
    expires: dt.timedelta = DEFAULT_EXPIRES,
    restart_manifest_version: bool = False,
) -> Proposal:
    """Propose root N+1 over ``new_keys``, and the manifest that carries devices over to it.

    The manifest keeps every release, gets the next version (1 with
    ``restart_manifest_version``, as :func:`~aoe_pack.publish.workflow.rotate_root`)
    and expires ``expires`` from now: the ceremony must end before then.
    """
    state = read_state(store)
    if {k.key_id for k in new_keys} == set(state.root.keys) and threshold == state.root.threshold:
        raise ProposalError(
            f"root version {state.root.version} already has these keys and threshold: "
            "there is nothing to rotate",
            hint="name the new root's keys with --root-key and its --threshold",
        )
    root = next_root(state.root, new_keys, threshold, restart_manifest_version)
    manifest = state.manifest.bump(
        expires=now_utc() + expires,
        models=state.manifest.models,
        restart=restart_manifest_version,
    )
    return new_proposal(
        base_root=state.head_bytes,
        base_manifest=state.manifest_bytes,
        manifest=manifest,
        root=root,
    )


def prepare_edit(
    store: Store,
    edit: Edit,
    *,
    expires: dt.timedelta = DEFAULT_EXPIRES,
    bundle_keys: dict[str, str] | None = None,
    state: RepoState | None = None,
) -> Proposal:
    """Propose the manifest that ``edit`` makes of the current one (its next version).

    The edit is applied and checked exactly as a signed edit is
    (:func:`~aoe_pack.publish.workflow.edit_manifest`), but nothing is signed
    or written: the proposal is returned.
    """
    state = state or read_state(store)
    models = edit(state.manifest)
    models.check_parsed()
    manifest = state.manifest.bump(
        expires=now_utc() + expires, models=models, bundle_keys=bundle_keys
    )
    return new_proposal(
        base_root=state.head_bytes, base_manifest=state.manifest_bytes, manifest=manifest
    )


# --- files -----------------------------------------------------------------------------------


def read_proposal(path: str | os.PathLike[str]) -> Proposal:
    """Read and parse a proposal file (capped at the largest a proposal can be)."""
    cap = DEFAULT_LIMITS.max_proposal_bytes
    try:
        data = read_capped(path, cap)
    except FileTooLargeError as e:
        raise RepositoryFormatError(f"{path} holds more than {cap} bytes: not a proposal") from e
    except OSError as e:
        raise RepositoryError(f"cannot read the proposal {path}: {e.strerror}") from e
    return parse_proposal(data, what=Path(path).name)


def write_proposal(
    path: str | os.PathLike[str], proposal: Proposal, *, overwrite: bool = False
) -> None:
    """Write the proposal file atomically (a holder's copy is never left half-written)."""
    write_atomic(Path(path), proposal.to_bytes(), overwrite=overwrite)


# --- sign and inspect ------------------------------------------------------------------------


def check_base(
    proposal: Proposal, *, trusted_root: bytes | None = None, key_id: str | None = None
) -> bool:
    """Check the root the proposal applies on top of; True when ``trusted_root`` vouched for it.

    With ``trusted_root`` (the repository's current root, from a source the
    holder trusts), the base root must be that root. Without it, the base root
    must carry a signature by ``key_id``, if given: as a publisher signs only
    under a root its own keys approved (``require_approved``), a holder signs
    nothing on top of a root their key never signed, which anyone who can
    write to the storage could otherwise have swapped in.
    """
    base = proposal.base_root
    if trusted_root is not None:
        trusted = load_root_file(trusted_root)
        if _root_payload(trusted_root) != _root_payload(proposal.base_root_bytes):
            other = " (another root of that version)" if trusted.version == base.version else ""
            raise UntrustedMetadataError(
                f"the proposal applies on top of root version {base.version}, not on the "
                f"trusted root, version {trusted.version}{other}",
                hint="pass the repository's current root.json, from a source you trust; "
                "a proposal prepared elsewhere is not signed",
            )
        return True
    if key_id is not None and key_id not in proposal.base_root_signed_by:
        raise UntrustedMetadataError(
            f"root version {base.version}, which the proposal applies on top of, carries no "
            f"signature by key {key_id[:16]}…",
            hint="pass --trusted-root with the repository's current root.json, from a source "
            "you trust (a key the new root adds always needs it)",
        )
    return False


def sign_proposal(
    proposal: Proposal,
    key: SigningKey,
    *,
    trusted_root: bytes | None = None,
    now: dt.datetime | None = None,
) -> Proposal:
    """``proposal`` with ``key``'s signature on every proposed document. No repository needed.

    Refused: a key the proposal does not need, a key that signed it already,
    a base root that neither ``trusted_root`` nor the key vouches for
    (:func:`check_base`), a proposed manifest that has expired, and one with a
    release devices would refuse for its signers (:func:`check_signers`).
    """
    proposal.check_signer(key.key_id)
    check_base(proposal, trusted_root=trusted_root, key_id=key.key_id)
    _check_unexpired(proposal, now or now_utc())
    check_signers(proposal)
    return proposal.with_signature(key)


def check_signers(proposal: Proposal) -> None:
    """Every release the proposal adds or changes, and every one when it removes a
    bundle key, names signers its ``bundleKeys`` holds: devices refuse it otherwise."""
    m = proposal.manifest
    change = manifest_change(proposal.base_manifest, m)
    tags = {r.tag for r in change.releases if r.change != "removed"}
    if change.bundle_keys_removed or any(p.startswith("bundleKeys/") for p in change.other):
        tags = set(m.models)
    for tag in sorted(tags):
        for release in m.models[tag].releases:
            recorded_signers(m, release, what=f"the proposed manifest's {tag}")


def _check_unexpired(proposal: Proposal, now: dt.datetime) -> None:
    m = proposal.manifest
    if m.expires <= now:
        raise ExpiredMetadataError(
            f"the proposed manifest version {m.version} expired at {format_time(m.expires)}",
            hint="prepare the proposal again, with an --expires long enough for the ceremony",
        )


@dataclass(frozen=True)
class ProposalReport:
    """What a proposal changes, and who signed it: what a holder reads before signing."""

    proposal: Proposal
    root: RootChange | None
    manifest: ManifestChange
    status: tuple[RoleStatus, ...]

    @property
    def complete(self) -> bool:
        return all(s.missing == 0 for s in self.status)

    def to_dict(self) -> dict[str, Any]:
        p = self.proposal
        d: dict[str, Any] = {
            "kind": str(p.kind),
            "repositoryId": p.base_root.repository_id,
            "base": {
                "rootVersion": p.base_root.version,
                "manifestVersion": p.base_manifest.version,
                "manifestSha256": p.base_manifest_sha256,
                "manifestExpires": format_time(p.base_manifest.expires),
            },
            "manifest": self.manifest.to_dict(),
            "signatures": [s.to_dict() for s in self.status],
            "complete": self.complete,
        }
        if self.root is not None:
            d["root"] = self.root.to_dict()
        return d


def inspect_proposal(proposal: Proposal) -> ProposalReport:
    """The changes a proposal makes and how far each threshold is."""
    root = None if proposal.root is None else root_change(proposal.base_root, proposal.root)
    return ProposalReport(
        proposal,
        root,
        manifest_change(proposal.base_manifest, proposal.manifest),
        proposal.status(),
    )


# --- apply -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Installed:
    """What :func:`apply_proposal` installed."""

    kind: Kind
    root: Root
    """The repository's root now."""
    manifest: Manifest
    """The manifest the proposal installed."""
    resumed: bool = False
    """An install that had stopped part-way was finished."""
    resign_needed: bool = False
    """After a rotation: another publisher's edit, signed under the old root alone, landed
    between the manifest and the new root; re-sign it under the new root."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind),
            "rootVersion": self.root.version,
            "manifestVersion": self.manifest.version,
            "expires": format_time(self.manifest.expires),
            "resumed": self.resumed,
            "resignNeeded": self.resign_needed,
        }


def apply_proposal(
    store: Store, proposal: Proposal, *, now: dt.datetime | None = None, settle: float = 0.05
) -> Installed:
    """Install a fully signed proposal, by compare-and-swap, as devices will accept it.

    Checked before anything is written: the repository is the proposal's
    (its ``repositoryId``); it is still at the root and manifest the proposal
    was prepared against (else ``ProposalStaleError``: another edit landed,
    or this proposal was installed already); every threshold is met (else
    ``ProposalIncompleteError``, naming who may still sign); the proposed
    root follows the current one and the proposed manifest verifies under
    it (and under the new root), is newer and has not expired, as a device
    checks them; and every release it adds names an uploaded bundle.

    A rotation is then written in the order of ``rotate_root`` (manifest,
    ``roots/N+1.root.json``, ``root.json``), so a device keeps updating
    wherever it stops; applying the same proposal again finishes it.
    """
    now = now or now_utc()
    state = read_state(store)
    _check_repository(store, state, proposal)
    current_sha256 = _payload_sha256(state.manifest_bytes)
    landed = current_sha256 == proposal.manifest_sha256
    if landed:
        # An install that stopped after the manifest: finish retiring its index.
        retire_index(store, manifest_bytes=state.manifest_bytes)
    if proposal.root is not None and _root_installed(state, proposal):
        return _finish_rotation(store, state, proposal, now)
    if landed and proposal.root is None:
        raise ProposalStaleError(
            f"this proposal is installed already: {store.url}/manifest.json is its manifest "
            f"version {proposal.manifest.version}",
            hint="a proposal is installed once; prepare a new one for the next change",
        )
    _check_base_is_current(store, state, proposal, manifest_landed=landed)
    _check_complete(proposal)
    new_root = _verify_as_devices(state, current_sha256, proposal, now)
    for tag, version, url, size in _added_bundles(proposal):
        if store.has_blob(url) != size:
            raise RepositoryError(
                f"{tag} {version}: its bundle {url} is not in {store.url}",
                hint="the bundles of a proposed publish are uploaded when it is prepared; "
                "prepare it again against this repository",
            )
    manifest_bytes = proposal.manifest_envelope.to_bytes()
    if not landed:
        # No keys here to sign an index of this manifest: devices are to read
        # manifest.json. Retired before the swap, so that no stop in between
        # leaves an index naming the older manifest (harmless if the swap fails).
        retire_index(store, manifest_bytes=state.manifest_bytes)
    if not landed and not swap_manifest(
        store, state, manifest_bytes, proposal.manifest, settle=settle
    ):
        raise ProposalStaleError(
            f"another publisher wrote {store.url}/manifest.json while the proposal was "
            "being installed; nothing of it was installed",
            hint=_PREPARE_AGAIN,
        )
    # Again after the swap: an index written in between, and the gzip siblings.
    retire_index(store, manifest_bytes=manifest_bytes)
    if proposal.root_envelope is None:
        return Installed(Kind.EDIT, state.root, proposal.manifest)
    assert new_root is not None
    install_root(store, state, new_root.version, proposal.root_envelope.to_bytes())
    return Installed(
        Kind.ROTATION,
        new_root,
        proposal.manifest,
        resumed=landed,
        resign_needed=not _manifest_verifies(store, new_root, now),
    )


def _root_payload(data: bytes) -> bytes:
    return envelope.parse(data, envelope.ROOT_TYPE, what="root").payload


def _payload_sha256(data: bytes) -> str:
    env = envelope.parse(data, envelope.MANIFEST_TYPE, what="manifest.json")
    return hashlib.sha256(env.payload).hexdigest()


def _check_repository(store: Store, state: RepoState, p: Proposal) -> None:
    ours, theirs = p.base_root.repository_id, state.root.repository_id
    if ours is not None and theirs is not None and ours != theirs:
        raise ProposalError(
            f"the proposal was prepared for repository {ours}; {store.url} is repository {theirs}",
            hint="install a proposal in the repository it was prepared against",
        )


def _root_installed(state: RepoState, p: Proposal) -> bool:
    """Whether the proposal's root is the chain's head already (installed, or stopped after)."""
    assert p.root_envelope is not None
    return _root_payload(state.head_bytes) == p.root_envelope.payload


def _finish_rotation(store: Store, state: RepoState, p: Proposal, now: dt.datetime) -> Installed:
    current = store.read(ROOT, max_bytes=DEFAULT_LIMITS.max_root_bytes)
    if current is not None and current.data == state.head_bytes:
        raise ProposalStaleError(
            f"this proposal is installed already: {store.url} is at its root version "
            f"{state.root.version}",
            hint="a proposal is installed once; prepare a new one for the next change",
        )
    # roots/N+1 is there and root.json still names root N: the switch stopped.
    store.replace(ROOT, state.head_bytes, expected=state.root_token)
    return Installed(
        Kind.ROTATION,
        state.root,
        p.manifest,
        resumed=True,
        resign_needed=not _manifest_verifies(store, state.root, now),
    )


def _check_base_is_current(
    store: Store, state: RepoState, p: Proposal, *, manifest_landed: bool
) -> None:
    if state.head_bytes != p.base_root_bytes:
        other = (
            " (another root of that version)" if state.root.version == p.base_root.version else ""
        )
        raise ProposalStaleError(
            f"{store.url} is at root version {state.root.version}{other}; the proposal was "
            f"prepared against root version {p.base_root.version}",
            hint=_PREPARE_AGAIN,
        )
    if manifest_landed or state.manifest_bytes == p.base_manifest_bytes:
        return
    same = state.manifest.version == p.base_manifest.version
    raise ProposalStaleError(
        f"{store.url}/manifest.json is {'another manifest at ' if same else ''}version "
        f"{state.manifest.version}; the proposal was prepared against version "
        f"{p.base_manifest.version}",
        hint=_PREPARE_AGAIN,
    )


def _check_complete(p: Proposal) -> None:
    short = describe_status(p.status(), only_missing=True)
    if short:
        raise ProposalIncompleteError(
            "the proposal is below threshold; nothing was installed: " + "; ".join(short),
            hint="have the missing key holders run `aoe-pack manifest sign-proposal` on it",
        )


def _verify_as_devices(
    state: RepoState, current_sha256: str, p: Proposal, now: dt.datetime
) -> Root | None:
    """Check the proposed documents exactly as a device on either root will check them."""
    new_root = None
    roots = [state.root]
    if p.root_envelope is not None:
        new_root = verify_successor(state.root, p.root_envelope.to_bytes())
        roots.append(new_root)
    data = p.manifest_envelope.to_bytes()
    # A restart (rotate-root --restart-manifest-version) is allowed only to a root that
    # revokes the old keys, under which devices drop their floor (§15.6 step 3).
    keep = not p.restarts_manifest_version
    for root in roots:
        verify_manifest(
            data,
            root,
            now=now,
            last_version=state.manifest.version if keep else None,
            last_sha256=current_sha256 if keep else None,
        )
    check_signers(p)
    return new_root


def _added_bundles(p: Proposal) -> list[tuple[str, str, str, int]]:
    change = manifest_change(p.base_manifest, p.manifest)  # checks every changed tag
    out = []
    for r in change.releases:
        if r.change != "added":
            continue
        rel = p.manifest.models[r.tag].find(r.version)
        assert rel is not None
        out.append((r.tag, r.version, rel.url, rel.size))
    return out


def _manifest_verifies(store: Store, root: Root, now: dt.datetime) -> bool:
    doc = store.read(MANIFEST, max_bytes=DEFAULT_LIMITS.max_manifest_bytes)
    if doc is None:
        return False
    try:
        verify_manifest(doc.data, root, now=now, check_expiry=False)
    except RepositoryError:
        return False
    return True
