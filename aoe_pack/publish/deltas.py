"""Publishing delta updates (docs/format.md §16): make, upload, record in the release.

A delta is made from the two releases' bundles (fetched from the repository,
size and SHA-256 matched against their releases, unless given locally), signed
with bundle keys the target release already trusts, uploaded like a bundle
(immutable, content-addressed) and recorded in the target release's
``deltas``. One that is not smaller than the target's bundle is never
recorded: the device would gain nothing and could only lose time.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from aoe_pack._io import file_sha256
from aoe_pack.bundle.delta import DeltaResult, make_delta
from aoe_pack.errors import DeltaError, ReleaseNotFoundError, UsageError
from aoe_pack.keys import PublicKey, SigningKey
from aoe_pack.keys.load import DecryptionKey
from aoe_pack.publish.workflow import (
    DEFAULT_EXPIRES,
    Commit,
    edit_manifest,
    read_state,
    require_approved,
    signers_for,
)
from aoe_pack.repository.model import DeltaRef, Manifest, Models, Release, worth_offering
from aoe_pack.repository.trust import recorded_signers
from aoe_pack.storage.store import Store, delta_name
from aoe_pack.versions import Version


@dataclass(frozen=True, kw_only=True)
class DeltaOutcome:
    """One delta asked for: recorded, or skipped and why."""

    tag: str
    from_version: str
    to_version: str
    bundle_size: int
    ref: DeltaRef | None
    """None: not recorded (``reason`` says why)."""
    size: int
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "tag": self.tag,
            "from": self.from_version,
            "to": self.to_version,
            "size": self.size,
            "bundleSize": self.bundle_size,
            "recorded": self.ref is not None,
        }
        if self.ref is not None:
            d.update(url=self.ref.url, sha256=self.ref.sha256)
        if self.reason:
            d["reason"] = self.reason
        return d


DEFAULT_MAX_PERCENT = 75
"""A delta is recorded only up to this share of the bundle (§16.5).

Above it the saving is small, while a device whose delta fails pays the delta
and then the bundle, and the repository keeps one more file per version. A
full retrain (91 %) or a requantisation (89 %) lands above it; a head-only
fine-tune (under 1 %) far below (benchmarks/bench_delta.py).
"""


def check_max_percent(value: int) -> int:
    if not 1 <= value <= 99:
        raise UsageError(f"--delta-max-percent {value}: use 1-99 (a delta must be smaller)")
    return value


@dataclass(frozen=True, kw_only=True)
class DeltaRequest:
    """Deltas asked for when publishing a bundle (``--delta-from``)."""

    from_versions: tuple[str, ...]
    decryption_key: DecryptionKey | None = None
    """Opens both bundles when they are encrypted (a recipient of both)."""
    sign_keys: tuple[SigningKey, ...] = ()
    """Sign the deltas (default: the manifest's signing keys); one must have signed the bundle."""
    max_percent: int = DEFAULT_MAX_PERCENT
    on_delta: Callable[[DeltaOutcome], None] | None = None


def _release(models: Models, tag: str, version: str) -> Release:
    entry = models.get(tag)
    found = entry.find(version) if entry is not None else None
    if found is None:
        raise ReleaseNotFoundError(f"the repository has no release {tag} {version}")
    return found


def _bundle(store: Store, release: Release, local: Path | None, tmp: Path) -> Path:
    """The release's bundle: ``local`` if given, else downloaded; matched either way."""
    path = local
    if path is None:
        path = tmp / release.url.replace("/", "_")
        store.fetch_blob(release.url, path, max_bytes=release.size)
    sha256, size = file_sha256(path)
    if (sha256, size) != (release.sha256, release.size):
        raise DeltaError(
            f"{path} is not the bundle of release {release.version} "
            f"(SHA-256 {sha256[:16]}…, the release says {release.sha256[:16]}…)"
        )
    return path


def make_release_delta(
    store: Store,
    manifest: Manifest,
    *,
    tag: str,
    target: Release,
    from_version: str,
    sign_keys: Sequence[SigningKey],
    decryption_key: DecryptionKey | None,
    tmp: Path,
    target_bundle: Path | None = None,
    base_bundle: Path | None = None,
    max_percent: int = DEFAULT_MAX_PERCENT,
) -> tuple[DeltaOutcome, Path | None]:
    """Make the delta from ``from_version`` to ``target``: (outcome, file to upload or None)."""
    base = _release(manifest.models, tag, from_version)
    if not base.semver < target.semver:
        raise UsageError(f"a delta from {from_version} is not from before {target.version}")
    # Each bundle is pinned by its release's SHA-256 (matched below); its signatures
    # are checked with the keys recorded for either release (a key may have rotated).
    trusted = _trusted(manifest, target, sign_keys)
    trusted += [k for k in recorded_signers(manifest, base) if k not in trusted]
    base_path = _bundle(store, base, base_bundle, tmp)
    target_path = _bundle(store, target, target_bundle, tmp)
    out = tmp / f"{tag}-{from_version}-{target.version}.aoed"
    result: DeltaResult = make_delta(
        base_path,
        target_path,
        out,
        trusted_keys=trusted,
        signing_keys=list(sign_keys),
        decryption_key=decryption_key,
    )
    outcome = DeltaOutcome(
        tag=tag,
        from_version=base.version,
        to_version=target.version,
        bundle_size=target.size,
        ref=None,
        size=result.size,
    )
    pct = 100 * result.size / target.size
    if not worth_offering(result.size, target.size):
        reason = f"the delta is {result.size} bytes ({pct:.0f} % of the bundle): not smaller"
        return replace(outcome, reason=reason), None
    if 100 * result.size > max_percent * target.size:
        reason = (
            f"the delta is {pct:.0f} % of the bundle, above --delta-max-percent {max_percent}: "
            "too little to save"
        )
        return replace(outcome, reason=reason), None
    ref = DeltaRef(
        from_version=base.version,
        url=delta_name(result.sha256),
        size=result.size,
        sha256=result.sha256,
    )
    return replace(outcome, ref=ref), out


def _trusted(
    manifest: Manifest, target: Release, sign_keys: Sequence[SigningKey]
) -> list[PublicKey]:
    """The keys the device will verify the delta with: the release's bundle signers.

    At least one signing key given must be among them, or no device could
    verify the delta.
    """
    keys = recorded_signers(manifest, target)
    mine = {k.public.key_id for k in sign_keys}
    if keys and not mine & {k.key_id for k in keys}:
        raise UsageError(
            f"none of the signing keys signed the bundle of {target.version}: devices verify "
            "a delta with the keys that signed the release's bundle",
            hint="sign the delta with --delta-sign-key KEY, a key that signed the bundle",
        )
    return keys or [k.public for k in sign_keys]


def with_deltas(tag: str, version: str, refs: Sequence[DeltaRef]) -> Callable[[Manifest], Models]:
    """The edit that records ``refs`` in release ``tag`` ``version`` (idempotent).

    A delta from a version that has one already is left as it was: the first
    stays (deltas are not reproducible byte for byte: their nonces are random).
    """

    def edit(m: Manifest) -> Models:
        entry = m.models.get(tag)
        target = entry.find(version) if entry is not None else None
        if entry is None or target is None:
            raise ReleaseNotFoundError(f"the repository has no release {tag} {version}")
        have = {Version.parse(d.from_version) for d in target.deltas}
        new = [r for r in refs if Version.parse(r.from_version) not in have]
        if not new:
            return m.models
        deltas = tuple(sorted((*target.deltas, *new), key=lambda d: Version.parse(d.from_version)))
        changed = replace(target, deltas=deltas)
        releases = tuple(changed if r is target else r for r in entry.releases)
        return m.models.updated(tag, replace(entry, releases=releases))

    return edit


def add_deltas(
    store: Store,
    *,
    tag: str,
    version: str,
    from_versions: Sequence[str],
    sign_keys: Sequence[SigningKey],
    decryption_key: DecryptionKey | None = None,
    delta_sign_keys: Sequence[SigningKey] = (),
    max_percent: int = DEFAULT_MAX_PERCENT,
    expires: dt.timedelta = DEFAULT_EXPIRES,
) -> tuple[Commit, list[DeltaOutcome]]:
    """``manifest add-delta``: deltas to a release already published, in one manifest edit."""
    if not from_versions:
        raise UsageError("name at least one --from VERSION")
    state = read_state(store)
    signers_for(state.root, sign_keys)
    require_approved(state, sign_keys)
    target = _release(state.manifest.models, tag, version)
    outcomes: list[DeltaOutcome] = []
    with tempfile.TemporaryDirectory(prefix="aoe-delta-") as tmp:
        for base in from_versions:
            outcome, path = make_release_delta(
                store,
                state.manifest,
                tag=tag,
                target=target,
                from_version=base,
                sign_keys=list(delta_sign_keys) or list(sign_keys),
                decryption_key=decryption_key,
                tmp=Path(tmp),
                max_percent=check_max_percent(max_percent),
            )
            if outcome.ref is not None and path is not None:
                store.put_blob(outcome.ref.url, path, sha256=outcome.ref.sha256,
                               size=outcome.ref.size)  # fmt: skip
            outcomes.append(outcome)
    refs = [o.ref for o in outcomes if o.ref is not None]
    if not refs:
        return Commit(state.manifest, 0), outcomes
    edit = with_deltas(tag, target.version, refs)
    commit = edit_manifest(
        store,
        edit,
        sign_keys=sign_keys,
        expires=expires,
        landed=lambda m: edit(m) is m.models,
        state=state,
    )
    return commit, outcomes
