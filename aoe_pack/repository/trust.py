"""What a client believes, and the checks that move it forward. No I/O here.

Like python-tuf's ``TrustedMetadataSet``, this is a state machine fed with
bytes: the caller fetches (HTTP, a folder, a registry) and persists; this
module only decides. That keeps every attack test a pure function call.

The order is TUF's: update the root chain first, then the manifest, against a
"now" fixed once per update.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from aoe_pack.errors import (
    BundleMismatchError,
    ExpiredMetadataError,
    RepositoryError,
    RepositoryFormatError,
    RollbackError,
    UntrustedMetadataError,
)
from aoe_pack.keys import PublicKey
from aoe_pack.repository import envelope
from aoe_pack.repository.limits import DEFAULT_LIMITS
from aoe_pack.repository.model import Manifest, Release, canonical_manifest, format_time
from aoe_pack.repository.root import Root, bundle_key, verify_successor


@dataclass(frozen=True)
class VerifiedManifest:
    """A manifest whose signatures, version and expiry were checked."""

    manifest: Manifest
    envelope_bytes: bytes
    signed_by: frozenset[str]
    payload_sha256: str = ""
    """SHA-256 (hex) of the signed payload: what makes two manifests the same one."""


@dataclass(frozen=True)
class Floor:
    """What a device remembers of the last manifest it accepted (§15.6).

    ``version`` stops rollback; ``payload_sha256`` stops a different manifest
    at the same version (equal-version replay). ``root_keys`` are the key ids
    of the root that trusted it: a rotation to a root that keeps fewer than
    its threshold of them revokes the floor too, since no manifest those keys
    signed can verify any more (fast-forward recovery, TUF 5.3.11).
    """

    version: int
    payload_sha256: str | None
    root_keys: frozenset[str]
    index_sha256: str | None = None
    """The payload digest of the index accepted at ``version`` (index.json N stands for
    manifest.json N: one version floor, one digest per kind of document)."""

    def holds_under(self, root: Root) -> bool:
        """Whether ``root`` keeps at least its threshold of the keys that set this floor.

        Only a rotation that revokes them drops a floor: one that removes some
        keys, adds others or raises the threshold keeps it, so an old manifest
        the remaining keys signed still cannot roll a device back.
        """
        return len(self.root_keys & set(root.keys)) >= root.threshold


def update_root(
    trusted: Root,
    fetch: Callable[[int], bytes | None],
    *,
    max_steps: int = DEFAULT_LIMITS.max_root_steps,
) -> tuple[Root, list[bytes]]:
    """Walk ``roots/N.root.json`` from the trusted version to the newest.

    Returns the newest trusted root and the envelopes accepted on the way (to
    persist). ``fetch(n)`` returns root ``n``'s bytes, or None past the end.
    """
    accepted: list[bytes] = []
    for _ in range(max_steps + 1):
        data = fetch(trusted.version + 1)
        if data is None:
            return trusted, accepted
        if len(accepted) == max_steps:
            break
        trusted = verify_successor(trusted, data)
        accepted.append(data)
    raise RepositoryError(
        f"the root chain grows by more than {max_steps} versions at once",
        hint="a repository cannot make a client walk an endless root chain; "
        "ship a newer --trusted-root with the app",
    )


def verify_manifest(
    data: bytes,
    root: Root,
    *,
    now: dt.datetime,
    last_version: int | None = None,
    last_sha256: str | None = None,
    check_expiry: bool = True,
) -> VerifiedManifest:
    """Signatures, then rollback (and equal-version replay), then freeze, as a client must.

    ``last_sha256`` is the payload digest of the manifest accepted at
    ``last_version``: another document at that same version is refused.
    """
    entries: dict[str, bytes] = {}
    env = envelope.parse(
        data,
        envelope.MANIFEST_TYPE,
        what="manifest.json",
        canonical=lambda body: canonical_manifest(body, entries),
    )
    good = env.valid_keyids(dict(root.keys))
    if len(good) < root.threshold:
        raise UntrustedMetadataError(
            f"manifest.json has {len(good)} of the {root.threshold} required signature(s) "
            f"from root version {root.version}'s keys",
            hint="the manifest was changed after signing, or signed with a key the root "
            "does not list",
        )
    manifest = Manifest.from_dict(env.document(), raw_json=entries)
    if last_version is not None and manifest.version < last_version:
        raise RollbackError(
            f"manifest version {manifest.version} is older than version {last_version}, "
            "which this client already accepted",
            hint="a mirror or attacker is serving an old manifest; keep the current model",
        )
    digest = hashlib.sha256(env.payload).hexdigest()
    if manifest.version == last_version and last_sha256 is not None and digest != last_sha256:
        raise RollbackError(
            f"manifest version {manifest.version} is not the version {last_version} this "
            "client already accepted: same version, different content",
            hint="a replayed or conflicting manifest (it could, say, undo a yank); keep the "
            "current model and check again later: publishers never leave two manifests at "
            "one version",
        )
    if check_expiry and manifest.expires <= now:
        raise ExpiredMetadataError(
            f"manifest version {manifest.version} expired at {format_time(manifest.expires)}",
            hint="the repository must be re-signed (any manifest command, or "
            "`aoe-pack manifest resign`); a frozen repository cannot hold devices back",
        )
    return VerifiedManifest(manifest, data, frozenset(good), digest)


def recorded_signers(
    manifest: Manifest, release: Release, *, what: str = "manifest"
) -> list[PublicKey]:
    """The keys ``manifest``'s ``bundleKeys`` hold for the signers ``release`` names (none
    when it names none): a device checks the bundle with them, and refuses a signer
    that ``bundleKeys`` lacks or holds as another key (``what`` names the manifest)."""
    keys = []
    for kid in release.signers:
        pem = manifest.bundle_keys.get(kid)
        if pem is None:
            raise RepositoryFormatError(
                f"{what}: {release.version} names signer {kid[:16]}…, which bundleKeys lacks"
            )
        keys.append(bundle_key(kid, pem))
    return keys


def check_bundle_matches(release: Release, *, size: int, sha256: str) -> None:
    """A downloaded bundle must be exactly what the manifest promised."""
    if size != release.size:
        raise BundleMismatchError(
            f"bundle for {release.version} is {size} bytes; the manifest says {release.size}"
        )
    if sha256 != release.sha256:
        raise BundleMismatchError(
            f"bundle for {release.version} has SHA-256 {sha256[:16]}…; the manifest says "
            f"{release.sha256[:16]}… (substituted or mixed-up bundle)"
        )
