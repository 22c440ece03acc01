"""The manifest commands: publish bundles, yank, widen or narrow a rollout, pin.

Each command is an edit (a pure function of the current manifest) handed to
:func:`aoe_pack.publish.workflow.edit_manifest`, which retries it on a fresh
manifest whenever another publisher wins the race. Edits are idempotent:
publishing the same bundle twice, or yanking twice, changes nothing more.
"""

from __future__ import annotations

import datetime as dt
import math
import secrets
import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from aoe_pack._io import file_sha256
from aoe_pack.bundle.verify import verify_bundle
from aoe_pack.errors import (
    AoePackError,
    ProposalError,
    ReleaseConflictError,
    ReleaseNotFoundError,
    ReleaseYankedError,
    UsageError,
)
from aoe_pack.keys import PublicKey, SigningKey
from aoe_pack.publish import pending
from aoe_pack.publish.ceremony import prepare_edit
from aoe_pack.publish.deltas import DeltaRequest, check_max_percent, make_release_delta
from aoe_pack.publish.edits import add_releases, holds_releases
from aoe_pack.publish.names import check_channel, check_runtime, cli_version
from aoe_pack.publish.workflow import (
    DEFAULT_EXPIRES,
    Commit,
    Edit,
    edit_manifest,
    edit_repository,
    read_state,
    require_approved,
    signers_for,
)
from aoe_pack.repository.model import LOCAL, Manifest, Models, Release
from aoe_pack.repository.proposal import Proposal
from aoe_pack.storage.store import Store, bundle_name
from aoe_pack.versions import Version

CHANNEL_DEFAULT = "stable"


@dataclass(frozen=True, kw_only=True)
class ReleaseOptions:
    """What ``manifest publish`` records besides the bundle itself."""

    channel: str = CHANNEL_DEFAULT
    rollout_bp: int = 10_000
    min_app_version: str | None = None
    max_app_version: str | None = None
    required_runtimes: tuple[str, ...] = ()
    critical: bool = False

    def __post_init__(self) -> None:
        check_channel(self.channel)
        for r in self.required_runtimes:
            check_runtime(r, "--require-runtime")
        if not 0 <= self.rollout_bp <= 10_000:
            raise UsageError("--rollout must be between 0 and 100 (percent)")
        lo = self.min_app_version and cli_version(self.min_app_version, "--min-app-version")
        hi = self.max_app_version and cli_version(self.max_app_version, "--max-app-version")
        if lo and hi and hi < lo:
            raise UsageError("--max-app-version is below --min-app-version")


def percent_to_bp(percent: float) -> int:
    """``--rollout 12.5`` → 1250 basis points (hundredths of a percent)."""
    if not math.isfinite(percent):
        raise UsageError(f"rollout {percent} is not a number between 0 and 100")
    bp = round(percent * 100)
    if not 0 <= bp <= 10_000 or abs(bp - percent * 100) > 1e-6:
        raise UsageError(f"rollout {percent} must be 0-100 with at most two decimals")
    return bp


@dataclass(frozen=True, kw_only=True)
class Published:
    """What publishing bundles did ([aoe_pack.api.publish][])."""

    commit: Commit
    """The manifest version written (``attempts == 0``: none was needed)."""
    releases: tuple[tuple[str, Release], ...]
    """Each bundle's release as the manifest now holds it, with its tag."""
    options: ReleaseOptions
    """The settings asked for."""

    @property
    def changed(self) -> bool:
        """Whether a new manifest version was written (False: all were published before)."""
        return self.commit.attempts != 0

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` result of ``aoe-pack manifest publish``."""
        return {
            "manifestVersion": self.commit.manifest.version,
            "expires": self.commit.manifest.expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "attempts": self.commit.attempts,
            "changed": self.changed,
            **({"index": self.commit.index.to_dict()} if self.commit.index else {}),
            "releases": [{"tag": t, **r.to_dict()} for t, r in self.releases],
        }

    def kept_first_settings(self) -> list[tuple[str, Release]]:
        """Releases published before with other settings than asked: they keep their first.

        Change those with ``set_rollout`` or by publishing a new version.
        """
        asked = self.options
        return [
            (tag, r)
            for tag, r in self.releases
            if (r.channel, r.rollout_bp, r.min_app_version, r.max_app_version, r.critical)
            != (
                asked.channel,
                asked.rollout_bp,
                asked.min_app_version,
                asked.max_app_version,
                asked.critical,
            )
            or r.required_runtimes != asked.required_runtimes
        ]


def release_of_bundle(
    path: Path, trusted_keys: Sequence[PublicKey], options: ReleaseOptions
) -> tuple[str, Release, dict[str, str]]:
    """Verify ``path`` and describe it as a release of its tag.

    Also returns the PEMs of the keys whose signatures verified: the manifest
    records them, so devices can check the bundle after the root rotates.
    """
    # The whole-file digest (the bundle's name in the repository) is taken on
    # another thread while the verify checks every chunk: both hash, and
    # hashlib lets them run on two cores over the same freshly cached pages.
    with ThreadPoolExecutor(1, thread_name_prefix="aoe-publish-hash") as pool:
        whole = pool.submit(file_sha256, path)
        result = verify_bundle(path, trusted_keys=trusted_keys)
        sha256, size = whole.result()
    model = result.manifest.model
    version = Version.parse(model.version, what=f"{path.name}: version")
    artifacts = sorted(
        {(f.runtime, f.variant or "") for f in result.manifest.files if f.runtime}
        or {(model.runtime, "")}
    )
    by_id = {k.key_id: k for k in trusted_keys}
    signers = {c.keyid: by_id[c.keyid].pem.decode() for c in result.signatures if c.valid}
    release = Release(
        version=model.version,
        version_code=version.version_code(),
        url=bundle_name(sha256),
        size=size,
        sha256=sha256,
        runtimes=tuple(sorted({r for r, _ in artifacts})),
        artifacts=tuple(
            {"runtime": r, "variant": v} if v else {"runtime": r} for r, v in artifacts
        ),
        channel=options.channel,
        rollout_bp=options.rollout_bp,
        salt=secrets.token_hex(16),
        min_app_version=options.min_app_version,
        max_app_version=options.max_app_version,
        required_runtimes=options.required_runtimes,
        critical=options.critical,
        signers=tuple(sorted(signers)),
    )
    return model.tag, release, signers


def publish(
    store: Store,
    bundles: Sequence[Path],
    *,
    sign_keys: Sequence[SigningKey],
    trusted_keys: Sequence[PublicKey] = (),
    options: ReleaseOptions = ReleaseOptions(),
    expires: dt.timedelta = DEFAULT_EXPIRES,
    on_bundle: Callable[[Path, str, Release], None] | None = None,
    deltas: DeltaRequest | None = None,
) -> tuple[Commit, list[tuple[str, Release]]]:
    """Verify and upload each bundle, then add them all in one manifest version.

    ``deltas``: also make deltas from earlier releases to the (one) bundle,
    and record those smaller than it in its release, in the same version.
    """
    state = read_state(store)  # an uninitialised or untrusted repository gets no uploads
    signers_for(state.root, sign_keys)
    require_approved(state, sign_keys)
    keys = list(trusted_keys) or [k.public for k in sign_keys]
    new, bundle_keys = _releases_of(bundles, keys, options)
    add_releases(new)(state.manifest)  # a conflict is refused before any upload
    if holds_releases(new)(state.manifest):
        held = [(tag, state.manifest.models[tag].find(rel.version)) for tag, rel in new]
        return Commit(state.manifest, 0), [(t, r) for t, r in held if r is not None]
    with tempfile.TemporaryDirectory(prefix="aoe-delta-") as tmp:
        if deltas is not None and deltas.from_versions:
            new = _with_new_deltas(
                store, replace(state.manifest, bundle_keys={**state.manifest.bundle_keys,
                                                             **bundle_keys}),
                new, bundles, deltas, sign_keys, Path(tmp),
            )  # fmt: skip
        _upload(store, new, bundles, on_bundle)
    if getattr(store, "atomic_cas", True):
        commit = edit_manifest(
            store,
            add_releases(new),
            sign_keys=sign_keys,
            expires=expires,
            landed=holds_releases(new),
            bundle_keys=bundle_keys,
            state=state,
        )
    else:
        commit = _publish_repairing(
            store, new, sign_keys=sign_keys, expires=expires, bundle_keys=bundle_keys
        )
    # Report what the manifest holds: a bundle published before keeps its first record.
    held = [(tag, commit.manifest.models[tag].find(rel.version)) for tag, rel in new]
    return commit, [(tag, rel) for tag, rel in held if rel is not None]


def _with_new_deltas(
    store: Store,
    manifest: Manifest,
    new: list[tuple[str, Release]],
    bundles: Sequence[Path],
    request: DeltaRequest,
    sign_keys: Sequence[SigningKey],
    tmp: Path,
) -> list[tuple[str, Release]]:
    """``new`` with deltas made and uploaded for its one bundle (§16.5)."""
    if len(new) != 1:
        raise UsageError("--delta-from needs exactly one bundle to publish")
    (tag, target), bundle = new[0], Path(bundles[0])
    refs = []
    for base in request.from_versions:
        outcome, path = make_release_delta(
            store,
            manifest,
            tag=tag,
            target=target,
            from_version=base,
            sign_keys=list(request.sign_keys) or list(sign_keys),
            decryption_key=request.decryption_key,
            tmp=tmp,
            target_bundle=bundle,
            max_percent=check_max_percent(request.max_percent),
        )
        if outcome.ref is not None and path is not None:
            store.put_blob(outcome.ref.url, path, sha256=outcome.ref.sha256, size=outcome.ref.size)
            refs.append(outcome.ref)
        if request.on_delta is not None:
            request.on_delta(outcome)
    return [(tag, replace(target, deltas=tuple(refs)))]


def prepare_publish(
    store: Store,
    bundles: Sequence[Path],
    *,
    trusted_keys: Sequence[PublicKey] = (),
    options: ReleaseOptions = ReleaseOptions(),
    expires: dt.timedelta = DEFAULT_EXPIRES,
    on_bundle: Callable[[Path, str, Release], None] | None = None,
) -> tuple[Proposal, list[tuple[str, Release]]]:
    """Verify and upload each bundle, and propose the manifest that adds them (unsigned).

    For a ceremony (:mod:`aoe_pack.publish.ceremony`). The bundles are
    checked and uploaded now, as :func:`publish` does, under their digest:
    no manifest names them until the proposal is installed. They are
    verified against ``trusted_keys``, by default the keys of the root.
    """
    state = read_state(store)
    keys = list(trusted_keys) or list(state.root.keys.values())
    new, bundle_keys = _releases_of(bundles, keys, options)
    add_releases(new)(state.manifest)  # a conflict is refused before any upload
    if holds_releases(new)(state.manifest):
        raise ProposalError(
            f"manifest version {state.manifest.version} holds every bundle given already: "
            "there is nothing to propose"
        )
    _upload(store, new, bundles, on_bundle)
    proposal = prepare_edit(
        store, add_releases(new), expires=expires, bundle_keys=bundle_keys, state=state
    )
    return proposal, new


def _releases_of(
    bundles: Sequence[Path], keys: Sequence[PublicKey], options: ReleaseOptions
) -> tuple[list[tuple[str, Release]], dict[str, str]]:
    """Every bundle verified and described, before any is uploaded."""
    new: list[tuple[str, Release]] = []
    bundle_keys: dict[str, str] = {}
    for path in bundles:
        try:
            tag, rel, signers = release_of_bundle(Path(path), keys, options)
        except AoePackError as e:
            e.message = f"{Path(path).name}: {e.message}"
            raise
        if any(t == tag and r.semver == rel.semver for t, r in new):
            raise ReleaseConflictError(f"{Path(path).name}: {tag} {rel.version} is given twice")
        new.append((tag, rel))
        bundle_keys.update(signers)
    return new, bundle_keys


def _upload(
    store: Store,
    new: Sequence[tuple[str, Release]],
    bundles: Sequence[Path],
    on_bundle: Callable[[Path, str, Release], None] | None,
) -> None:
    for (tag, rel), path in zip(new, bundles, strict=True):
        store.put_blob(rel.url, Path(path), sha256=rel.sha256, size=rel.size)
        if on_bundle is not None:
            on_bundle(Path(path), tag, rel)


def _publish_repairing(
    store: Store,
    new: Sequence[tuple[str, Release]],
    *,
    sign_keys: Sequence[SigningKey],
    expires: dt.timedelta,
    bundle_keys: Mapping[str, str],
) -> Commit:
    """Publish on a store without compare-and-swap (:mod:`aoe_pack.publish.pending`)."""
    state = read_state(store)
    add_releases(new)(state.manifest)  # refuse a conflict before leaving any record
    pending.write_records(store, new, signers_for(state.root, sign_keys), bundle_keys)
    return edit_repository(
        store,
        add_releases(new),
        sign_keys=sign_keys,
        expires=expires,
        landed=holds_releases(new),
        bundle_keys=bundle_keys,
    )


def _change_release(
    tag: str, version: str, change: Callable[[Release], Release]
) -> Callable[[Manifest], Models]:
    def edit(m: Manifest) -> Models:
        entry = m.models.get(tag)
        if entry is None:
            raise ReleaseNotFoundError(f"the repository has no model {tag!r}")
        target = entry.find(str(cli_version(version, "VERSION")))
        if target is None:
            known = ", ".join(r.version for r in entry.releases) or "none"
            raise ReleaseNotFoundError(f"{tag} has no release {version} (releases: {known})")
        releases = tuple(change(r) if r is target else r for r in entry.releases)
        return m.models.updated(tag, replace(entry, releases=releases))

    return edit


def yank_edit(tag: str, version: str, *, reason: str, update_reason: bool = False) -> Edit:
    """The edit of :func:`yank` (for :func:`~aoe_pack.publish.ceremony.prepare_edit` too)."""
    reason = reason.strip()
    if not reason:
        raise UsageError("--reason must say why the release is yanked")

    def change(r: Release) -> Release:
        if r.yanked is not None and r.yanked != reason and not update_reason:
            raise ReleaseYankedError(
                f"{tag} {r.version} is already yanked ({r.yanked})",
                hint="pass --update-reason to replace the reason devices report",
            )
        return replace(r, yanked=reason)

    return _change_release(tag, version, change)


def yank(
    store: Store,
    tag: str,
    version: str,
    *,
    reason: str,
    sign_keys: Sequence[SigningKey],
    expires: dt.timedelta = DEFAULT_EXPIRES,
    update_reason: bool = False,
) -> Commit:
    """Withdraw a release: devices running it go back to the local model.

    Yanking a yanked release again with the same reason changes nothing;
    another reason is refused unless ``update_reason``, so that the reason
    devices report does not change under them by accident.
    """
    edit = yank_edit(tag, version, reason=reason, update_reason=update_reason)
    return edit_repository(store, edit, sign_keys=sign_keys, expires=expires)


def rollout_edit(tag: str, version: str, percent: float) -> Edit:
    """The edit of :func:`set_rollout`."""
    bp = percent_to_bp(percent)

    def change(r: Release) -> Release:
        if r.yanked is not None:
            raise ReleaseYankedError(
                f"{tag} {r.version} is yanked ({r.yanked}): no device downloads it, "
                "whatever its rollout",
                hint="publish a new version and roll that out",
            )
        return replace(r, rollout_bp=bp)

    return _change_release(tag, version, change)


def set_rollout(
    store: Store,
    tag: str,
    version: str,
    percent: float,
    *,
    sign_keys: Sequence[SigningKey],
    expires: dt.timedelta = DEFAULT_EXPIRES,
) -> Commit:
    """Widen or narrow a rollout. The salt stays, so devices already in stay in.

    A yanked release is refused: no device downloads it, whatever its rollout.
    """
    edit = rollout_edit(tag, version, percent)
    return edit_repository(store, edit, sign_keys=sign_keys, expires=expires)


def pin_edit(tag: str, pin: str | None) -> Edit:
    """The edit of :func:`set_pin`."""

    def edit(m: Manifest) -> Models:
        entry = m.models.get(tag)
        if entry is None:
            raise ReleaseNotFoundError(f"the repository has no model {tag!r}")
        if pin not in (None, LOCAL):
            target = entry.find(str(cli_version(pin, "pin")))
            if target is None:
                raise ReleaseNotFoundError(f"{tag} has no release {pin} to pin to")
            if target.yanked is not None:
                raise ReleaseYankedError(
                    f"{tag} {pin} is yanked ({target.yanked}): devices would not run it",
                    hint="pin a release devices may run, or `local` for the kill switch",
                )
        return m.models.updated(tag, replace(entry, pin=pin))

    return edit


def set_pin(
    store: Store,
    tag: str,
    pin: str | None,
    *,
    sign_keys: Sequence[SigningKey],
    expires: dt.timedelta = DEFAULT_EXPIRES,
) -> Commit:
    """Pin every device to one release, to ``local`` (kill switch), or unpin (None)."""
    return edit_repository(store, pin_edit(tag, pin), sign_keys=sign_keys, expires=expires)


def resign_edit(m: Manifest) -> Models:
    """The edit of :func:`resign`: the same releases."""
    return m.models


def resign(
    store: Store, *, sign_keys: Sequence[SigningKey], expires: dt.timedelta = DEFAULT_EXPIRES
) -> Commit:
    """A new manifest version with the same releases and a fresh expiry."""
    return edit_repository(store, resign_edit, sign_keys=sign_keys, expires=expires)
