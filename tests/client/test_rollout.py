"""Rollout buckets over a simulated fleet: proportions, monotonicity, independence.

The bucket is the documented function (``aoe_pack.client.decide`` docstring)
that Android and iOS re-implement, so it is also checked against the formula
written out here. Salts are fixed: the shares below are exact numbers for
these device ids, not samples that could flake.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import itertools
from dataclasses import replace

import pytest

from aoe_pack.client.decide import BUCKETS, Action, Device, bucket, decide
from aoe_pack.client.simulate import simulate
from aoe_pack.repository.model import Manifest, ModelReleases, Release
from aoe_pack.versions import Version

TAG = "tag_x"
FLEET = 100_000
DEVICE_IDS = [f"sim-{i:06d}" for i in range(FLEET)]  # the ids simulate() gives its devices
TOLERANCE_POINTS = 0.5


def _salt(name: str) -> str:
    return hashlib.sha256(f"salt {name}".encode()).hexdigest()[:32]


SALT_A, SALT_B, SALT_C = _salt("a"), _salt("b"), _salt("c")


def _release(
    version: str, *, rollout_bp: int, salt: str = SALT_A, critical: bool = False
) -> Release:
    sha = hashlib.sha256(version.encode()).hexdigest()
    return Release(
        version=version,
        version_code=Version.parse(version).version_code(),
        url=f"bundles/{sha}.aoe",
        size=1000,
        sha256=sha,
        runtimes=("tflite",),
        artifacts=({"runtime": "tflite"},),
        rollout_bp=rollout_bp,
        salt=salt,
        critical=critical,
    )


def _manifest(*releases: Release, pin: str | None = None) -> Manifest:
    return Manifest(
        version=1,
        expires=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
        models={TAG: ModelReleases(releases=releases, pin=pin)},
    )


DEVICE = Device(
    device_id="template",
    app_version="3.0.0",
    runtimes=frozenset({"tflite"}),
    local_version="0.9.0",
)


@functools.cache
def _buckets(salt: str, tag: str = TAG) -> tuple[int, ...]:
    """The fleet's buckets for one release (computed once per module)."""
    return tuple(bucket(salt, tag, d) for d in DEVICE_IDS)


@pytest.fixture
def buckets_a() -> tuple[int, ...]:
    return _buckets(SALT_A)


@pytest.fixture
def buckets_b() -> tuple[int, ...]:
    return _buckets(SALT_B)


def _points(count: int, total: int = FLEET) -> float:
    """A share in percentage points."""
    return 100 * count / total


# --- the bucket function ----------------------------------------------------------------


def _reference_bucket(salt: str, tag: str, device_id: str) -> int:
    message = b"aoe-rollout/v1\x00" + f"{salt}\x00{tag}\x00{device_id}".encode()
    return int.from_bytes(hashlib.sha256(message).digest()[:8], "big") % 10_000


def test_bucket_is_the_documented_formula() -> None:
    for device_id in [*DEVICE_IDS[:500], "", "ünïcødé-device", "a\x00b"]:
        assert bucket(SALT_A, TAG, device_id) == _reference_bucket(SALT_A, TAG, device_id)
    assert BUCKETS == 10_000


def test_bucket_values_are_pinned() -> None:
    # A change here moves devices in and out of every running rollout.
    assert [bucket("0" * 32, "tag_x", f"device-{i}") for i in range(5)] == [
        5100,
        8295,
        6202,
        462,
        1652,
    ]


def test_buckets_cover_the_range_uniformly(buckets_a: tuple[int, ...]) -> None:
    assert min(buckets_a) >= 0
    assert max(buckets_a) < BUCKETS
    for decile in range(10):
        share = _points(sum(1 for b in buckets_a if b // 1000 == decile))
        assert abs(share - 10) <= TOLERANCE_POINTS, (decile, share)


# --- proportions ------------------------------------------------------------------------


@pytest.mark.parametrize("basis_points", [100, 1_000, 2_500, 5_000, 9_000])
@pytest.mark.parametrize("salt", [SALT_A, SALT_C], ids=["salt-a", "salt-c"])
def test_rollout_share_is_within_half_a_point_of_its_target(basis_points: int, salt: str) -> None:
    inside = sum(1 for b in _buckets(salt) if b < basis_points)
    target = basis_points / 100
    assert abs(_points(inside) - target) <= TOLERANCE_POINTS, (target, _points(inside))


def test_zero_and_full_rollouts_are_exact(buckets_a: tuple[int, ...]) -> None:
    assert sum(1 for b in buckets_a if b < 0) == 0
    assert sum(1 for b in buckets_a if b < 10_000) == FLEET


def test_simulated_fleet_downloads_in_the_rollout_share() -> None:
    m = _manifest(_release("1.0.0", rollout_bp=2_500))
    result = simulate(m, TAG, DEVICE, devices=FLEET)
    assert set(result.outcomes) == {"download 1.0.0", "keep"}
    assert sum(result.outcomes.values()) == FLEET
    assert abs(_points(result.outcomes["download 1.0.0"]) - 25) <= TOLERANCE_POINTS
    # the decision uses exactly the bucket: the same devices, not just the same count
    expected = sum(1 for b in _buckets(SALT_A) if b < 2_500)
    assert result.outcomes["download 1.0.0"] == expected


def test_critical_release_reaches_the_whole_fleet_at_zero_percent() -> None:
    m = _manifest(_release("1.0.0", rollout_bp=0, critical=True))
    result = simulate(m, TAG, DEVICE, devices=10_000)
    assert result.outcomes == {"download 1.0.0": 10_000}


def test_pinned_release_reaches_the_whole_fleet_whatever_its_rollout() -> None:
    m = _manifest(_release("1.0.0", rollout_bp=100), pin="1.0.0")
    result = simulate(m, TAG, DEVICE, devices=10_000)
    assert result.outcomes == {"download 1.0.0": 10_000}


# --- monotonicity ------------------------------------------------------------------------


STEPS = [0, 1, 100, 1_000, 2_500, 5_000, 9_000, 9_999, 10_000]


def test_device_in_at_p_stays_in_at_every_larger_p(buckets_a: tuple[int, ...]) -> None:
    previous: set[int] = set()
    for bp in STEPS:
        inside = {i for i, b in enumerate(buckets_a) if b < bp}
        assert previous <= inside, bp
        previous = inside
    assert len(previous) == FLEET


def test_widening_a_rollout_only_adds_devices_to_the_decision() -> None:
    devices = [replace(DEVICE, device_id=d) for d in DEVICE_IDS[:3_000]]
    downloading: dict[int, set[str]] = {}
    for bp in STEPS:
        m = _manifest(_release("1.0.0", rollout_bp=bp))
        downloading[bp] = {
            d.device_id for d in devices if decide(m, TAG, d).action is Action.DOWNLOAD
        }
    for low, high in itertools.pairwise(STEPS):
        assert downloading[low] <= downloading[high], (low, high)
    assert downloading[0] == set()
    assert len(downloading[10_000]) == len(devices)


# --- independence ------------------------------------------------------------------------


def test_two_half_rollouts_with_different_salts_overlap_by_a_quarter(
    buckets_a: tuple[int, ...], buckets_b: tuple[int, ...]
) -> None:
    both = sum(1 for a, b in zip(buckets_a, buckets_b, strict=True) if a < 5_000 and b < 5_000)
    assert abs(_points(both) - 25) <= TOLERANCE_POINTS, _points(both)


@pytest.mark.parametrize(("bp_a", "bp_b"), [(1_000, 5_000), (2_500, 2_500), (9_000, 1_000)])
def test_overlap_of_two_rollouts_is_the_product_of_their_shares(
    buckets_a: tuple[int, ...], buckets_b: tuple[int, ...], bp_a: int, bp_b: int
) -> None:
    both = sum(1 for a, b in zip(buckets_a, buckets_b, strict=True) if a < bp_a and b < bp_b)
    expected = (bp_a / 100) * (bp_b / 100) / 100
    assert abs(_points(both) - expected) <= TOLERANCE_POINTS, (expected, _points(both))


def test_the_early_devices_of_one_release_are_not_the_early_devices_of_the_next(
    buckets_a: tuple[int, ...], buckets_b: tuple[int, ...]
) -> None:
    first_a = [i for i, b in enumerate(buckets_a) if b < 1_000]
    in_b_too = sum(1 for i in first_a if buckets_b[i] < 1_000)
    assert abs(_points(in_b_too, len(first_a)) - 10) <= 1.0  # a 10% sample of a 10% sample


def test_same_salt_under_another_tag_is_independent(buckets_a: tuple[int, ...]) -> None:
    other_tag = _buckets(SALT_A, "other_tag")
    both = sum(1 for a, b in zip(buckets_a, other_tag, strict=True) if a < 5_000 and b < 5_000)
    assert abs(_points(both) - 25) <= TOLERANCE_POINTS


def test_same_salt_and_tag_give_the_same_devices(buckets_a: tuple[int, ...]) -> None:
    # the control: the salt is what separates releases (a widened rollout keeps it)
    assert tuple(bucket(SALT_A, TAG, d) for d in DEVICE_IDS) == buckets_a


# --- the boundary, through decide() ---------------------------------------------------------
#
# A device is in when bucket < basisPoints. Shares over a fleet barely move when
# the comparison is off by one (one bucket in 10,000), so these tests pick the
# devices that sit exactly on the edge.


@functools.cache
def _device_in_bucket(target: int, salt: str = SALT_A) -> Device:
    """A device whose bucket for ``salt`` is ``target``, found by trying ids in order."""
    for i in itertools.count():
        device_id = f"edge-{i}"
        if bucket(salt, TAG, device_id) == target:
            return replace(DEVICE, device_id=device_id)
    raise AssertionError("unreachable")


def _decide_at(bucket_value: int, basis_points: int) -> Action:
    m = _manifest(_release("1.0.0", rollout_bp=basis_points))
    return decide(m, TAG, _device_in_bucket(bucket_value)).action


@pytest.mark.parametrize("basis_points", [1, 2_500, 9_999])
def test_device_whose_bucket_equals_basis_points_is_outside_the_rollout(
    basis_points: int,
) -> None:
    m = _manifest(_release("1.0.0", rollout_bp=basis_points))
    d = decide(m, TAG, _device_in_bucket(basis_points))
    assert d.action is Action.KEEP
    assert d.skipped == (f"1.0.0: outside its {basis_points / 100:g}% rollout",)


@pytest.mark.parametrize("basis_points", [1, 2_500, 10_000])
def test_device_whose_bucket_is_one_below_basis_points_is_inside_the_rollout(
    basis_points: int,
) -> None:
    assert _decide_at(basis_points - 1, basis_points) is Action.DOWNLOAD


def test_zero_percent_rollout_leaves_out_even_the_device_in_bucket_zero() -> None:
    assert _decide_at(0, 0) is Action.KEEP


def test_full_rollout_takes_in_even_the_device_in_the_last_bucket() -> None:
    assert _decide_at(BUCKETS - 1, 10_000) is Action.DOWNLOAD


def test_edge_devices_really_sit_on_the_edge() -> None:
    # The searches above must find what they claim, or the tests prove nothing.
    for target in (0, 1, 2_499, 2_500, 9_998, 9_999):
        assert bucket(SALT_A, TAG, _device_in_bucket(target).device_id) == target
