"""The device's update decision: a pure function of a verified manifest and the device.

This is the reference that Android and iOS implementations follow
(docs/format.md, "The device's decision"). The rules, in order:

1. A model tag the manifest does not list: keep what runs.
2. ``pin: "local"`` (the kill switch): run the model shipped in the app.
3. Eligible releases are those of the device's channels that are not yanked,
   whose app-version range holds the app's version, whose runtimes meet the
   device's, and whose rollout includes the device, or that are critical.
   A pin to a version makes that release the only candidate, rollout aside.
4. The running remote model was yanked, is pinned away, or (unless a pin names
   it) is older than the model shipped in the app, which an app update can
   bring: switch to the best eligible release above the local model if there
   is one, else go back to the local model.
5. Otherwise download the best eligible release if it is above what runs
   (semver precedence); else keep what runs. Narrowing a rollout stops new
   downloads; it does not take a model away (yank does).

Rollout buckets: ``SHA-256("aoe-rollout/v1" 0x00 salt 0x00 tag 0x00 device-id)``,
first 8 bytes as a big-endian unsigned integer, modulo 10 000. A device is in
when its bucket is below the release's ``basisPoints``. The same device stays
in as the percentage grows, and each release's random salt makes buckets of
different releases independent.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import struct
import weakref
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from aoe_pack.errors import ReleaseNotFoundError
from aoe_pack.repository.model import LOCAL, Manifest, ModelReleases, Release
from aoe_pack.versions import Version

BUCKETS = 10_000
_DOMAIN = b"aoe-rollout/v1\x00"
_first_8_bytes = struct.Struct(">Q").unpack_from
"""The first 8 bytes of a digest as a big-endian unsigned integer (a 1-tuple)."""


def bucket(salt: str, tag: str, device_id: str) -> int:
    """The device's rollout bucket for one release, 0-9999."""
    h = _seeded(salt, tag).copy()
    h.update(device_id.encode())
    return int(_first_8_bytes(h.digest())[0]) % BUCKETS


@functools.lru_cache(maxsize=4096)
def _seeded(salt: str, tag: str) -> Any:
    # SHA-256 over the part shared by every device, hashed once per release.
    return hashlib.sha256(b"%s%s\x00%s\x00" % (_DOMAIN, salt.encode(), tag.encode()))


class Action(enum.StrEnum):
    KEEP = "keep"
    DOWNLOAD = "download"
    REVERT_TO_LOCAL = "revert-to-local"


@dataclass(frozen=True, kw_only=True)
class Device:
    """What the decision needs to know about the device and the app."""

    device_id: str
    app_version: str
    runtimes: frozenset[str]
    channels: tuple[str, ...] = ("stable",)
    local_version: str
    """The version of the model shipped inside the app."""
    installed_version: str | None = None
    """The version of a downloaded (remote) model now in use; None if the local one runs."""


@dataclass(frozen=True)
class Decision:
    """What to do, which release, and why (for logs and ``--json``)."""

    action: Action
    tag: str
    release: Release | None
    reason: str
    running: str
    skipped: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, object]:
        return {
            "action": self.action.value,
            "tag": self.tag,
            "version": self.release.version if self.release else None,
            "url": self.release.url if self.release else None,
            "sha256": self.release.sha256 if self.release else None,
            "size": self.release.size if self.release else None,
            "reason": self.reason,
            "running": self.running,
            "skipped": list(self.skipped),
        }


def _why_not(  # noqa: PLR0911 - one early return per rule, in the documented order
    r: Release, device: Device, app: Version
) -> str | None:
    """Why ``r`` is not eligible by the tests E1-E6, which the device id has no part in.

    The rollout (E7) is the caller's: skipped for a pin, else tested last.
    """
    if r.yanked is not None:
        return f"{r.version}: yanked ({r.yanked})"
    if r.channel not in device.channels:
        return f"{r.version}: channel {r.channel}"
    if r.min_app_version is not None and app < r.min_app:
        return f"{r.version}: needs app >= {r.min_app_version}"
    if r.max_app_version is not None and r.max_app < app:
        return f"{r.version}: needs app <= {r.max_app_version}"
    if device.runtimes.isdisjoint(r.runtimes):
        return f"{r.version}: no runtime of {', '.join(r.runtimes)} on the device"
    if r.required_runtimes and not device.runtimes.issuperset(r.required_runtimes):
        missing = [x for x in r.required_runtimes if x not in device.runtimes]
        return f"{r.version}: device lacks {', '.join(missing)}"
    return None


def _best(
    entry: ModelReleases, tag: str, device: Device, app: Version, floor: Version
) -> tuple[Release | None, list[str]]:
    """The highest eligible release above ``floor`` (any version for a pin), and what was skipped.

    Releases are sorted, so the scan goes down from the newest and stops at the
    first eligible one or at ``floor``: a decision costs a few checks, not one
    per release the tag ever had. Only the rollout test depends on the device
    id; the rest of the scan is worked out once per device profile
    (:func:`_steps`), so a device pays one SHA-256 per release whose rollout
    it must test, and nothing else per release.
    """
    if entry.pin not in (None, LOCAL):
        pinned = entry.find(entry.pin)
        why = None if pinned is None else _why_not(pinned, device, app)
        if pinned is not None and why is None:
            return pinned, []
        return None, [why or f"{entry.pin}: not a release"]
    steps = _steps(entry, tag, device, app, floor)
    if steps[0].seed is None:  # decided without a bucket
        return steps[0].release, list(steps[0].passed)
    skipped: list[str] = []
    device_id = device.device_id.encode()
    for passed, r, seed, basis_points, outside in steps:
        if passed:
            skipped += passed
        if seed is None:  # the end, or a release every bucket is in
            return r, skipped
        h = seed.copy()
        h.update(device_id)
        if _first_8_bytes(h.digest())[0] % BUCKETS < basis_points:
            return r, skipped
        skipped.append(outside)
    raise AssertionError("a scan ends with a step without a rollout")  # pragma: no cover


class _Step(NamedTuple):
    """Part of a scan: releases skipped whatever the device id, then one release."""

    passed: tuple[str, ...]
    """Why each release before this one was skipped, newest first."""
    release: Release | None
    """None: the scan ends, nothing is eligible."""
    seed: Any
    """The release's bucket hash before the device id (:func:`_seeded`); None when the
    release is eligible whatever the device id (critical, or a 100% rollout)."""
    basis_points: int
    outside: str
    """Why the release is skipped when the device's bucket is outside its rollout."""


_PROFILES = 256
"""Scans remembered per tag entry: one per (channels, app, runtimes, floor) seen."""

_scans: dict[tuple[int, str], tuple[weakref.ref[ModelReleases], dict[Any, tuple[_Step, ...]]]] = {}
"""Per entry (by id, held weakly: the cache goes with the manifest) and tag."""


def _steps(
    entry: ModelReleases, tag: str, device: Device, app: Version, floor: Version
) -> tuple[_Step, ...]:
    """The scan of ``entry`` for devices like ``device`` running ``floor``, from its cache."""
    key = (id(entry), tag)
    held = _scans.get(key)
    if held is None or held[0]() is not entry:

        def forget(ref: weakref.ref[ModelReleases]) -> None:
            if _scans.get(key, (None,))[0] is ref:
                _scans.pop(key, None)

        held = _scans[key] = (weakref.ref(entry, forget), {})
    profiles = held[1]
    channels, runtimes = tuple(device.channels), frozenset(device.runtimes)
    profile = (channels, runtimes, app, floor)
    steps = profiles.get(profile)
    if steps is None:
        if len(profiles) >= _PROFILES:
            profiles.clear()
        steps = profiles[profile] = _scan(entry, tag, device, app, floor)
    return steps


def _scan(
    entry: ModelReleases, tag: str, device: Device, app: Version, floor: Version
) -> tuple[_Step, ...]:
    """The releases above ``floor``, newest first, as steps: each test but the rollout
    done now, and a rollout of 0% or 100% needs no bucket either."""
    steps: list[_Step] = []
    passed: list[str] = []
    for r in reversed(entry.releases):
        if not floor < r.semver:
            break
        why = _why_not(r, device, app)
        if why is not None:
            passed.append(why)
        elif r.critical or r.rollout_bp >= BUCKETS:  # every bucket is below it
            steps.append(_Step(tuple(passed), r, None, r.rollout_bp, ""))
            return tuple(steps)
        elif r.rollout_bp <= 0:  # no bucket is below it
            passed.append(_outside(r))
        else:
            steps.append(_Step(tuple(passed), r, _seeded(r.salt, tag), r.rollout_bp, _outside(r)))
            passed = []
    steps.append(_Step(tuple(passed), None, None, 0, ""))
    return tuple(steps)


def _outside(r: Release) -> str:
    return f"{r.version}: outside its {r.rollout_percent:g}% rollout"


def _why_leave(entry: ModelReleases, remote: Version, local: Version) -> str | None:
    """Why the device must stop running its downloaded model, if it must (rule 4)."""
    current = entry.find(str(remote))
    if current is not None and current.yanked is not None:
        return f"{remote} was yanked: {current.yanked}"
    if entry.pin is not None:  # "local" is handled before; a version pin overrides age
        return None if Version.parse(entry.pin) == remote else f"pinned to {entry.pin}"
    if remote < local:
        return f"the app's own model {local} is newer than the downloaded {remote}"
    return None


def require_model(manifest: Manifest, tag: str) -> None:
    """:class:`ReleaseNotFoundError` naming the tags there are, if the manifest lacks ``tag``.

    Rule 1 keeps what runs for such a tag: an app may ship before its model's
    first release. Where a person typed the tag, it is a typo to report.
    """
    if tag not in manifest.models:
        known = ", ".join(manifest.models) or "none yet"
        raise ReleaseNotFoundError(
            f"the manifest has no model {tag}; its models: {known}",
            hint="check --tag: `aoe-pack manifest show` lists the published tags",
        )


def decide(  # noqa: PLR0911 - one return per rule of the module docstring
    manifest: Manifest, tag: str, device: Device
) -> Decision:
    """Apply the rules of the module docstring."""
    local = Version.parse(device.local_version, what="local model version")
    remote = Version.parse(device.installed_version) if device.installed_version else None
    running = str(remote) if remote is not None else f"{local} (local)"
    entry = manifest.models.get(tag)
    if entry is None:
        return Decision(Action.KEEP, tag, None, f"the manifest has no model {tag!r}", running)
    if entry.pin == LOCAL:
        if remote is None:
            return Decision(Action.KEEP, tag, None, "pinned to the local model", running)
        return Decision(
            Action.REVERT_TO_LOCAL, tag, None, "pinned to the local model (kill switch)", running
        )
    app = Version.parse(device.app_version, what="app version")
    gone = _why_leave(entry, remote, local) if remote is not None else None
    base = remote if remote is not None and gone is None else local
    best, skipped = _best(entry, tag, device, app, base)
    if gone is not None:
        if best is not None and local < best.semver:
            return Decision(
                Action.DOWNLOAD,
                tag,
                best,
                f"{gone}; {best.version} replaces it",
                running,
                tuple(skipped),
            )
        return Decision(Action.REVERT_TO_LOCAL, tag, None, gone, running, tuple(skipped))
    if best is not None and base < best.semver:
        why = "critical release" if best.critical else f"in the {best.rollout_percent:g}% rollout"
        if entry.pin is not None:
            why = f"pinned to {entry.pin}"
        return Decision(
            Action.DOWNLOAD, tag, best, f"{best.version} > {base}: {why}", running, tuple(skipped)
        )
    if entry.pin is not None and best is not None and best.semver < base:
        return Decision(
            Action.DOWNLOAD, tag, best, f"pinned to {entry.pin}", running, tuple(skipped)
        )
    reason = f"no eligible release above {base}"
    if skipped:
        reason += f" ({skipped[0]})"
    return Decision(Action.KEEP, tag, None, reason, running, tuple(skipped))
