"""What a new root or manifest changes: the summary a key holder reads before signing.

Computed from the documents themselves (never from a description someone
wrote beside them), so what a holder is shown is what they sign: each added
release whole, the members of each changed one, and any member this version
does not know (a newer publisher's, which devices of that version may act
on). Only the tags whose signed JSON differs are parsed, and parsing checks
them as a device would, so a proposal that changes a tag into something
devices refuse is refused here too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aoe_pack.repository.model import Manifest, ModelReleases, Release, format_time
from aoe_pack.repository.root import Root


@dataclass(frozen=True)
class RootChange:
    """Root N to root N+1: keys and threshold."""

    version_before: int
    version: int
    threshold_before: int
    threshold: int
    keys: tuple[str, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "versionBefore": self.version_before,
            "version": self.version,
            "thresholdBefore": self.threshold_before,
            "threshold": self.threshold,
            "keys": list(self.keys),
            "keysAdded": list(self.added),
            "keysRemoved": list(self.removed),
        }


def root_change(old: Root, new: Root) -> RootChange:
    return RootChange(
        old.version,
        new.version,
        old.threshold,
        new.threshold,
        tuple(sorted(new.keys)),
        tuple(sorted(set(new.keys) - set(old.keys))),
        tuple(sorted(set(old.keys) - set(new.keys))),
    )


@dataclass(frozen=True)
class ReleaseChange:
    """One release added, removed, or changed (``fields``: its members that differ)."""

    tag: str
    version: str
    change: str
    """``added``, ``removed`` or ``changed``."""
    fields: tuple[str, ...] = ()
    release: Release | None = None
    """An added release, whole: everything about it is new."""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "tag": self.tag,
            "version": self.version,
            "change": self.change,
            "fields": list(self.fields),
        }
        if self.release is not None:
            d["release"] = self.release.to_dict()
        return d


@dataclass(frozen=True)
class PinChange:
    tag: str
    before: str | None
    after: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"tag": self.tag, "before": self.before, "after": self.after}


@dataclass(frozen=True)
class ManifestChange:
    """Manifest M to manifest M+1 (or 1, after a restart)."""

    version_before: int
    version: int
    expires: dt.datetime
    releases: tuple[ReleaseChange, ...]
    pins: tuple[PinChange, ...]
    bundle_keys_added: tuple[str, ...]
    bundle_keys_removed: tuple[str, ...]
    other: tuple[str, ...] = ()
    """Paths of the other members that differ: unknown ones at the top or in a tag
    (``models/TAG/NAME``), and a ``bundleKeys/ID`` whose key text changed."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "versionBefore": self.version_before,
            "version": self.version,
            "expires": format_time(self.expires),
            "releases": [r.to_dict() for r in self.releases],
            "pins": [p.to_dict() for p in self.pins],
            "bundleKeysAdded": list(self.bundle_keys_added),
            "bundleKeysRemoved": list(self.bundle_keys_removed),
            "otherMembers": list(self.other),
        }


def manifest_change(old: Manifest, new: Manifest) -> ManifestChange:
    """The releases, pins, bundle keys and other members that differ between ``old`` and
    ``new``."""
    old_raw, new_raw = old.models.to_dict(), new.models.to_dict()
    releases: list[ReleaseChange] = []
    pins: list[PinChange] = []
    other = _differing(old.extra, new.extra)
    other += [
        f"bundleKeys/{kid}"
        for kid in sorted(old.bundle_keys.keys() & new.bundle_keys.keys())
        if old.bundle_keys[kid] != new.bundle_keys[kid]
    ]
    for tag in sorted(old_raw.keys() | new_raw.keys()):
        if old_raw.get(tag) == new_raw.get(tag):
            continue
        before = old.models[tag] if tag in old.models else ModelReleases()
        after = new.models[tag] if tag in new.models else ModelReleases()
        releases += _release_changes(tag, before, after)
        if before.pin != after.pin:
            pins.append(PinChange(tag, before.pin, after.pin))
        other += [f"models/{tag}/{name}" for name in _differing(before.extra, after.extra)]
    return ManifestChange(
        old.version,
        new.version,
        new.expires,
        tuple(releases),
        tuple(pins),
        tuple(sorted(new.bundle_keys.keys() - old.bundle_keys.keys())),
        tuple(sorted(old.bundle_keys.keys() - new.bundle_keys.keys())),
        tuple(sorted(other)),
    )


def _differing(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The names of the members of ``old`` and ``new`` whose values differ."""
    return sorted(k for k in old.keys() | new.keys() if old.get(k, _ABSENT) != new.get(k, _ABSENT))


_ABSENT = object()


def _release_changes(tag: str, before: ModelReleases, after: ModelReleases) -> list[ReleaseChange]:
    old = {r.semver: r for r in before.releases}
    new = {r.semver: r for r in after.releases}
    out = []
    for v in sorted(old.keys() | new.keys()):
        a, b = old.get(v), new.get(v)
        if a is None:
            assert b is not None
            out.append(ReleaseChange(tag, b.version, "added", release=b))
        elif b is None:
            out.append(ReleaseChange(tag, a.version, "removed"))
        elif (da := a.to_dict()) != (db := b.to_dict()):
            fields = tuple(sorted(k for k in da.keys() | db.keys() if da.get(k) != db.get(k)))
            out.append(ReleaseChange(tag, b.version, "changed", fields))
    return out
