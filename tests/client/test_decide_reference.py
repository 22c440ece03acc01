"""The decision against a plain transcription of docs/format.md §15.7, on generated fleets.

``decide()`` scans from the newest release down, stops at the floor, and
remembers per device profile (channels, app, runtimes, floor) everything but
the rollout test. ``reference()`` below does none of that: it tests every
release on E1-E7 in the documented order, takes the best eligible one over
all candidates, and applies rules 1-6 one after the other, with the bucket
computed from its formula. Both must give the same action, release, reason,
running version and skipped releases for every manifest and device here,
including the worst case: 100 releases above what the device runs, none
eligible for it.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import importlib
import random
from collections.abc import Iterator
from dataclasses import replace

import pytest

from aoe_pack.client.decide import Action, Decision, Device, decide
from aoe_pack.errors import VersionError
from aoe_pack.repository.model import LOCAL, Manifest, ModelReleases, Release
from aoe_pack.versions import Version

TAG = "tag_ref"
# The module, not the function that aoe_pack.client exports under the same name.
decide_module = importlib.import_module("aoe_pack.client.decide")

# --- the reference: §15.7 as written ----------------------------------------------------------


def _bucket(salt: str, tag: str, device_id: str) -> int:
    message = b"aoe-rollout/v1\x00" + salt.encode() + b"\x00" + tag.encode() + b"\x00"
    digest = hashlib.sha256(message + device_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000


def _ineligible(  # noqa: PLR0911 - one return per test, E1 to E7
    r: Release, tag: str, d: Device, app: Version, *, rollout: bool
) -> str | None:
    """The first of E1-E7 that ``r`` fails, as the reference reports it; None if eligible."""
    runtimes = d.runtimes
    if r.yanked is not None:  # E1
        return f"{r.version}: yanked ({r.yanked})"
    if r.channel not in d.channels:  # E2
        return f"{r.version}: channel {r.channel}"
    if r.min_app_version is not None and app < Version.parse(r.min_app_version):  # E3
        return f"{r.version}: needs app >= {r.min_app_version}"
    if r.max_app_version is not None and Version.parse(r.max_app_version) < app:  # E4
        return f"{r.version}: needs app <= {r.max_app_version}"
    if not any(x in runtimes for x in r.runtimes):  # E5
        return f"{r.version}: no runtime of {', '.join(r.runtimes)} on the device"
    missing = [x for x in r.required_runtimes if x not in runtimes]  # E6
    if missing:
        return f"{r.version}: device lacks {', '.join(missing)}"
    if rollout and not r.critical and not _bucket(r.salt, tag, d.device_id) < r.rollout_bp:
        return f"{r.version}: outside its {r.rollout_bp / 100:g}% rollout"  # E7
    return None


def reference(  # noqa: PLR0911, PLR0912 - rules 1 to 6 in a row, as the text gives them
    manifest: Manifest, tag: str, d: Device
) -> Decision:
    local = Version.parse(d.local_version, what="local model version")
    installed = Version.parse(d.installed_version) if d.installed_version else None
    running = str(installed) if installed is not None else f"{local} (local)"
    if tag not in manifest.models:  # rule 1
        return Decision(Action.KEEP, tag, None, f"the manifest has no model {tag!r}", running)
    entry = manifest.models[tag]
    pin = entry.pin
    if pin == LOCAL:  # rule 2
        if installed is None:
            return Decision(Action.KEEP, tag, None, "pinned to the local model", running)
        return Decision(
            Action.REVERT_TO_LOCAL, tag, None, "pinned to the local model (kill switch)", running
        )
    app = Version.parse(d.app_version, what="app version")
    by_precedence = {r.semver: r for r in entry.releases}
    # The candidates and best, over every candidate.
    if pin is not None:
        candidates = [r for r in entry.releases if r.semver == Version.parse(pin)]
    else:
        candidates = list(entry.releases)
    why = {id(r): _ineligible(r, tag, d, app, rollout=pin is None) for r in candidates}
    eligible = [r for r in candidates if why[id(r)] is None]
    best = max(eligible, key=lambda r: r.semver) if eligible else None
    # Rule 3: is the installed version gone?
    gone = None
    if installed is not None:
        current = by_precedence.get(installed)
        if current is not None and current.yanked is not None:
            gone = f"{installed} was yanked: {current.yanked}"
        elif pin is not None:
            gone = None if Version.parse(pin) == installed else f"pinned to {pin}"
        elif installed < local:
            gone = f"the app's own model {local} is newer than the downloaded {installed}"
    base = installed if installed is not None and gone is None else local
    # What the device reports: for a pin, why its release is out; otherwise every
    # ineligible release above base and above best, newest first.
    if pin is not None:
        skipped = [] if best is not None else [why[id(candidates[0])] or f"{pin}: not a release"]
    else:
        skipped = [
            str(why[id(r)])
            for r in sorted(candidates, key=lambda r: r.semver, reverse=True)
            if base < r.semver and (best is None or best.semver < r.semver)
        ]
    if gone is not None:
        if best is not None and local < best.semver:
            reason = f"{gone}; {best.version} replaces it"
            return Decision(Action.DOWNLOAD, tag, best, reason, running, tuple(skipped))
        return Decision(Action.REVERT_TO_LOCAL, tag, None, gone, running, tuple(skipped))
    if best is not None and base < best.semver:  # rule 4
        if pin is not None:
            because = f"pinned to {pin}"
        elif best.critical:
            because = "critical release"
        else:
            because = f"in the {best.rollout_bp / 100:g}% rollout"
        reason = f"{best.version} > {base}: {because}"
        return Decision(Action.DOWNLOAD, tag, best, reason, running, tuple(skipped))
    if pin is not None and best is not None and best.semver < base:  # rule 5
        return Decision(Action.DOWNLOAD, tag, best, f"pinned to {pin}", running, tuple(skipped))
    reason = f"no eligible release above {base}"  # rule 6
    if skipped:
        reason += f" ({skipped[0]})"
    return Decision(Action.KEEP, tag, None, reason, running, tuple(skipped))


# --- generated manifests and devices ----------------------------------------------------------

VERSIONS = [
    "0.9.0",
    "1.0.0-alpha",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1",
    "1.0.9",
    "1.0.10",
    "1.1.0-beta.2",
    "1.1.0",
    "1.2.0",
    "2.0.0-rc.3",
    "2.0.0",
    "2.1.0",
    "3.0.0",
]
APPS = ["0.1.0", "1.0.0", "2.3.0", "2.3.0+build.7", "3.0.0-rc.1", "5.0.0", "9.9.9"]
RUNTIMES = ["tflite", "mnn", "gpu", "npu"]
BASIS_POINTS = [0, 1, 500, 2500, 5000, 9999, 10_000]


def _release(rng: random.Random, version: str) -> Release:
    sha = hashlib.sha256(f"{version} {rng.random()}".encode()).hexdigest()
    runtimes = tuple(sorted(rng.sample(RUNTIMES, rng.randint(1, 2))))
    lo, hi = sorted(rng.sample(APPS, 2), key=Version.parse)
    return Release(
        version=version,
        version_code=Version.parse(version).version_code(),
        url=f"bundles/{sha}.aoe",
        size=4096,
        sha256=sha,
        runtimes=runtimes,
        artifacts=tuple({"runtime": r} for r in runtimes),
        channel=rng.choice(["stable", "stable", "beta"]),
        rollout_bp=rng.choice(BASIS_POINTS),
        salt=hashlib.sha256(f"salt {rng.random()}".encode()).hexdigest()[:32],
        min_app_version=lo if rng.random() < 0.3 else None,
        max_app_version=hi if rng.random() < 0.2 else None,
        required_runtimes=tuple(rng.sample(RUNTIMES, rng.randint(0, 1))),
        critical=rng.random() < 0.1,
        yanked="crashes" if rng.random() < 0.15 else None,
    )


def _manifest(rng: random.Random) -> Manifest:
    versions = rng.sample(VERSIONS, rng.randint(0, len(VERSIONS)))
    releases = tuple(_release(rng, v) for v in versions)
    pin: str | None = None
    roll = rng.random()
    if roll < 0.08:
        pin = LOCAL
    elif roll < 0.2 and releases:
        pin = rng.choice(releases).version + rng.choice(["", "+meta"])
    return _wrap(ModelReleases(releases=releases, pin=pin))


def _wrap(entry: ModelReleases) -> Manifest:
    return Manifest(version=1, expires=dt.datetime(2030, 1, 1, tzinfo=dt.UTC), models={TAG: entry})


def _device(rng: random.Random, n: int) -> Device:
    local = rng.choice(VERSIONS)
    installed = rng.choice([None, None, *VERSIONS, "1.5.0", "1.0.0+other"])
    return Device(
        device_id=f"device-{n}-{rng.random()}",
        app_version=rng.choice(APPS),
        runtimes=frozenset(rng.sample(RUNTIMES, rng.randint(0, 3))),
        channels=tuple(rng.sample(["stable", "beta"], rng.randint(1, 2))),
        local_version=local,
        installed_version=installed,
    )


def _same(manifest: Manifest, tag: str, device: Device) -> None:
    expected = reference(manifest, tag, device)
    got = decide(manifest, tag, device)
    assert got == expected, (device, manifest.models.get(tag))
    assert got.release is expected.release  # the manifest's own release object


def test_generated_manifests_and_devices_decide_as_the_reference() -> None:
    """400 manifests, each for 15 devices, of which 5 share one profile (the cache's key)."""
    rng = random.Random(20261206)
    for m in range(400):
        manifest = _manifest(rng)
        devices = [_device(rng, m * 100 + i) for i in range(10)]
        devices += [replace(devices[0], device_id=f"twin-{m}-{i}") for i in range(5)]
        for device in devices:
            _same(manifest, TAG, device)
            _same(manifest, "other_tag", device)
        for device in devices:  # decided again, from what the first pass cached
            _same(manifest, TAG, device)


def _worst(kind: dict[str, object]) -> Iterator[Release]:
    """100 releases above 1.1.0, each failing the one test ``kind`` sets."""
    rng = random.Random(str(kind))
    for i in range(100):
        r = _release(rng, f"2.{i}.0")
        base = {"channel": "stable", "rollout_bp": 10_000, "critical": False, "yanked": None}
        base |= {"min_app_version": None, "max_app_version": None}
        base |= {"runtimes": ("tflite",), "required_runtimes": ()}
        yield replace(r, **{**base, **kind})


@pytest.mark.parametrize(
    "kind",
    [
        {"yanked": "crashes"},
        {"channel": "beta"},
        {"min_app_version": "9.0.0"},
        {"max_app_version": "2.0.0"},
        {"runtimes": ("mnn",)},
        {"required_runtimes": ("tflite", "gpu", "npu")},
        {"rollout_bp": 0},
        {"rollout_bp": 1},
        {"rollout_bp": 9_000},  # a few devices are in one of them: the scan stops there
    ],
    ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()),
)
def test_worst_case_of_100_releases_above_what_runs_decides_as_the_reference(
    kind: dict[str, object],
) -> None:
    manifest = _wrap(ModelReleases(releases=tuple(_worst(kind))))
    for n in range(300):
        device = Device(
            device_id=f"fleet-{n}",
            app_version="2.3.0",
            runtimes=frozenset({"tflite"}),
            channels=("stable",),
            local_version="1.0.0",
            installed_version="1.1.0" if n % 2 else None,
        )
        _same(manifest, TAG, device)


def test_a_device_profile_seen_after_many_others_still_decides_as_the_reference() -> None:
    """More profiles than the cache keeps: it starts again, and answers do not change."""
    rng = random.Random(7)
    manifest = _manifest(rng)
    while not manifest.models[TAG].releases or manifest.models[TAG].pin is not None:
        manifest = _manifest(rng)
    for n in range(decide_module._PROFILES * 2 + 3):
        device = replace(_device(rng, n), channels=("stable", f"c{n}"))
        _same(manifest, TAG, device)


def test_the_cache_goes_with_the_manifest() -> None:
    """A decision remembers scans per entry, weakly: dropping the manifest drops them."""
    rng = random.Random(3)
    manifest = _manifest(rng)
    decide(manifest, TAG, _device(rng, 0))
    key = (id(manifest.models[TAG]), TAG)
    if manifest.models[TAG].pin == LOCAL:
        return  # rule 2 looks at nothing else
    assert key in decide_module._scans
    del manifest
    gc.collect()
    assert key not in decide_module._scans


def test_an_invalid_app_version_is_refused_as_the_reference_refuses_it() -> None:
    manifest = _wrap(ModelReleases(releases=tuple(_worst({"rollout_bp": 1}))))
    device = Device(
        device_id="d", app_version="2.3", runtimes=frozenset({"tflite"}), local_version="1.0.0"
    )
    with pytest.raises(VersionError) as want:
        reference(manifest, TAG, device)
    with pytest.raises(VersionError) as got:
        decide(manifest, TAG, device)
    assert got.value.message == want.value.message
