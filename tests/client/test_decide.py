"""The device's update decision, rule by rule (aoe_pack.client.decide docstring)."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence

import pytest

from aoe_pack.client.decide import Action, Decision, Device, bucket, decide
from aoe_pack.errors import RepositoryFormatError, VersionError
from aoe_pack.repository.model import LOCAL, Manifest, ModelReleases, Release
from aoe_pack.versions import Version

TAG = "tag_x"


def _salt(text: str) -> str:
    return hashlib.sha256(f"salt {text}".encode()).hexdigest()[:32]


def rel(
    version: str,
    *,
    channel: str = "stable",
    rollout_bp: int = 10_000,
    salt: str | None = None,
    runtimes: Sequence[str] = ("tflite",),
    required_runtimes: Sequence[str] = (),
    min_app: str | None = None,
    max_app: str | None = None,
    critical: bool = False,
    yanked: str | None = None,
) -> Release:
    sha = hashlib.sha256(f"bundle {version}".encode()).hexdigest()
    return Release(
        version=version,
        version_code=Version.parse(version).version_code(),
        url=f"bundles/{sha}.aoe",
        size=4096,
        sha256=sha,
        runtimes=tuple(runtimes),
        artifacts=tuple({"runtime": r} for r in runtimes),
        channel=channel,
        rollout_bp=rollout_bp,
        salt=salt or _salt(version),
        min_app_version=min_app,
        max_app_version=max_app,
        required_runtimes=tuple(required_runtimes),
        critical=critical,
        yanked=yanked,
    )


def mf(*releases: Release, pin: str | None = None) -> Manifest:
    return Manifest(
        version=1,
        expires=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
        models={TAG: ModelReleases(releases=releases, pin=pin)},
    )


def dev(
    *,
    local: str = "1.0.0",
    installed: str | None = None,
    app: str = "5.0.0",
    runtimes: Sequence[str] = ("tflite",),
    channels: Sequence[str] = ("stable",),
    device_id: str = "device-1",
) -> Device:
    return Device(
        device_id=device_id,
        app_version=app,
        runtimes=frozenset(runtimes),
        channels=tuple(channels),
        local_version=local,
        installed_version=installed,
    )


def _version(d: Decision) -> str | None:
    return d.release.version if d.release else None


def _device_ids(salt: str, *, inside: bool, bp: int) -> str:
    """A device id whose bucket for ``salt`` is below ``bp`` (inside) or not."""
    return next(
        f"device-{i}" for i in range(100_000) if (bucket(salt, TAG, f"device-{i}") < bp) == inside
    )


# --- rules 1 and 5: unknown tags, the best release above what runs ---------------------------


def test_tag_not_in_the_manifest_keeps_what_runs() -> None:
    d = decide(mf(rel("2.0.0")), "other_tag", dev(installed="1.5.0"))
    assert d.action is Action.KEEP
    assert d.release is None
    assert d.reason == "the manifest has no model 'other_tag'"
    assert d.running == "1.5.0"


def test_best_release_above_local_is_downloaded_by_semver_not_text() -> None:
    d = decide(mf(rel("1.0.9"), rel("1.0.10")), TAG, dev(local="1.0.0"))
    assert d.action is Action.DOWNLOAD
    assert _version(d) == "1.0.10"  # AoE picked 1.0.9: "1.0.9" > "1.0.10" as text
    assert d.reason == "1.0.10 > 1.0.0: in the 100% rollout"
    assert d.running == "1.0.0 (local)"


def test_nothing_above_what_runs_keeps_it() -> None:
    m = mf(rel("1.0.9"), rel("1.0.10"))
    assert decide(m, TAG, dev(local="1.0.10")).action is Action.KEEP
    d = decide(m, TAG, dev(local="1.0.0", installed="1.0.10"))
    assert d.action is Action.KEEP
    assert d.reason == "no eligible release above 1.0.10"
    newer_local = decide(m, TAG, dev(local="1.1.0"))
    assert newer_local.action is Action.KEEP  # no downgrade below the app's own model
    assert newer_local.reason == "no eligible release above 1.1.0"


def test_installed_remote_release_is_compared_not_the_local_one() -> None:
    m = mf(rel("1.1.0"), rel("1.2.0"))
    d = decide(m, TAG, dev(local="1.0.0", installed="1.1.0"))
    assert (d.action, _version(d)) == (Action.DOWNLOAD, "1.2.0")
    assert d.reason.startswith("1.2.0 > 1.1.0")


def test_installed_release_that_left_the_manifest_is_kept() -> None:
    d = decide(mf(rel("1.1.0")), TAG, dev(local="1.0.0", installed="1.3.0"))
    assert d.action is Action.KEEP
    assert d.reason == "no eligible release above 1.3.0"


def test_pre_release_sorts_below_its_release_in_the_decision() -> None:
    m = mf(rel("2.0.0-rc.1", channel="beta"), rel("2.0.0"))
    d = decide(m, TAG, dev(local="1.0.0", installed="2.0.0-rc.1", channels=("stable", "beta")))
    assert (d.action, _version(d)) == (Action.DOWNLOAD, "2.0.0")


def test_decision_to_dict() -> None:
    d = decide(mf(rel("1.1.0"), rel("1.2.0", runtimes=("onnx",)), rel("1.3.0")), TAG, dev())
    r = d.release
    assert r is not None
    assert d.to_dict() == {
        "action": "download",
        "tag": TAG,
        "version": "1.3.0",
        "url": r.url,
        "sha256": r.sha256,
        "size": 4096,
        "reason": "1.3.0 > 1.0.0: in the 100% rollout",
        "running": "1.0.0 (local)",
        "skipped": [],  # only releases above the chosen one are examined and reported
    }
    keep = decide(mf(), TAG, dev()).to_dict()
    assert keep["version"] is keep["url"] is keep["sha256"] is keep["size"] is None


# --- rollout and critical ---------------------------------------------------------------


def test_device_outside_the_rollout_keeps_what_runs() -> None:
    r = rel("1.1.0", rollout_bp=1_000)
    outside = _device_ids(r.salt, inside=False, bp=1_000)
    d = decide(mf(r), TAG, dev(device_id=outside))
    assert d.action is Action.KEEP
    assert d.skipped == ("1.1.0: outside its 10% rollout",)


def test_device_inside_the_rollout_downloads() -> None:
    r = rel("1.1.0", rollout_bp=1_000)
    inside = _device_ids(r.salt, inside=True, bp=1_000)
    d = decide(mf(r), TAG, dev(device_id=inside))
    assert (d.action, _version(d)) == (Action.DOWNLOAD, "1.1.0")
    assert d.reason == "1.1.0 > 1.0.0: in the 10% rollout"


def test_critical_release_bypasses_the_rollout() -> None:
    d = decide(mf(rel("1.1.0", rollout_bp=0, critical=True)), TAG, dev())
    assert (d.action, _version(d)) == (Action.DOWNLOAD, "1.1.0")
    assert d.reason == "1.1.0 > 1.0.0: critical release"


def test_critical_release_does_not_bypass_the_other_rules() -> None:
    m = mf(
        rel("1.1.0", critical=True, channel="beta"),
        rel("1.2.0", critical=True, runtimes=("onnx",)),
        rel("1.3.0", critical=True, min_app="9.0.0"),
        rel("1.4.0", critical=True, yanked="bad"),
    )
    d = decide(m, TAG, dev())
    assert d.action is Action.KEEP
    assert len(d.skipped) == 4


def test_best_eligible_release_wins_over_a_higher_one_outside_the_rollout() -> None:
    high = rel("1.2.0", rollout_bp=1)
    device_id = _device_ids(high.salt, inside=False, bp=1)
    d = decide(mf(rel("1.1.0"), high), TAG, dev(device_id=device_id))
    assert (d.action, _version(d)) == (Action.DOWNLOAD, "1.1.0")
    assert d.skipped == ("1.2.0: outside its 0.01% rollout",)


def test_narrowing_a_rollout_does_not_take_the_model_away() -> None:
    d = decide(mf(rel("1.1.0", rollout_bp=0)), TAG, dev(installed="1.1.0"))
    assert d.action is Action.KEEP
    assert d.running == "1.1.0"


# --- channels -------------------------------------------------------------------------------


def test_stable_device_does_not_see_beta_releases() -> None:
    m = mf(rel("1.1.0"), rel("1.2.0-beta.1", channel="beta"))
    d = decide(m, TAG, dev())
    assert (d.action, _version(d)) == (Action.DOWNLOAD, "1.1.0")
    assert d.skipped == ("1.2.0-beta.1: channel beta",)


def test_beta_device_sees_beta_releases() -> None:
    m = mf(rel("1.1.0"), rel("1.2.0-beta.1", channel="beta"))
    d = decide(m, TAG, dev(channels=("stable", "beta")))
    assert (d.action, _version(d)) == (Action.DOWNLOAD, "1.2.0-beta.1")


def test_beta_only_device_does_not_see_stable_releases() -> None:
    m = mf(rel("1.1.0"), rel("1.0.5-beta.1", channel="beta"))
    d = decide(m, TAG, dev(channels=("beta",)))
    assert (d.action, _version(d)) == (Action.DOWNLOAD, "1.0.5-beta.1")
    assert d.skipped == ("1.1.0: channel stable",)


# --- app versions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("app", "eligible"),
    [
        ("2.9.9", False),
        ("3.0.0-rc.1", False),  # a pre-release of the minimum is below it
        ("3.0.0", True),  # bounds are inclusive
        ("3.0.0+build.7", True),  # build metadata ignored
        ("3.10.0", True),  # not "3.10.0" < "3.9.0" as text
        ("4.0.0", True),
        ("4.0.0+build.1", True),
        ("4.0.1", False),
        ("10.0.0", False),
    ],
)
def test_min_and_max_app_version_bound_the_release(app: str, eligible: bool) -> None:
    m = mf(rel("1.1.0", min_app="3.0.0", max_app="4.0.0"))
    d = decide(m, TAG, dev(app=app))
    assert (d.action is Action.DOWNLOAD) == eligible
    if not eligible:
        (why,) = d.skipped
        assert why in ("1.1.0: needs app >= 3.0.0", "1.1.0: needs app <= 4.0.0")


def test_invalid_app_version_is_a_version_error() -> None:
    with pytest.raises(VersionError, match=r"app version '5\.0' is not a semantic version"):
        decide(mf(rel("1.1.0")), TAG, dev(app="5.0"))
    with pytest.raises(VersionError, match="local model version 'latest'"):
        decide(mf(rel("1.1.0")), TAG, dev(local="latest"))


# --- runtimes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("device_runtimes", "eligible", "why"),
    [
        (("tflite",), True, None),
        (("onnx",), True, None),
        (("tflite", "onnx", "nnapi"), True, None),
        (("ncnn",), False, "1.1.0: no runtime of tflite, onnx on the device"),
        ((), False, "1.1.0: no runtime of tflite, onnx on the device"),
    ],
)
def test_device_needs_one_of_the_release_runtimes(
    device_runtimes: tuple[str, ...], eligible: bool, why: str | None
) -> None:
    d = decide(mf(rel("1.1.0", runtimes=("tflite", "onnx"))), TAG, dev(runtimes=device_runtimes))
    assert (d.action is Action.DOWNLOAD) == eligible
    assert d.skipped == ((why,) if why else ())


@pytest.mark.parametrize(
    ("device_runtimes", "why"),
    [
        (("tflite", "gpu", "nnapi"), None),
        (("tflite", "gpu"), "1.1.0: device lacks nnapi"),
        (("tflite",), "1.1.0: device lacks gpu, nnapi"),
        (("gpu", "nnapi"), "1.1.0: no runtime of tflite on the device"),
    ],
)
def test_device_needs_every_required_runtime(
    device_runtimes: tuple[str, ...], why: str | None
) -> None:
    m = mf(rel("1.1.0", required_runtimes=("gpu", "nnapi")))
    d = decide(m, TAG, dev(runtimes=device_runtimes))
    assert (d.action is Action.DOWNLOAD) == (why is None)
    assert d.skipped == ((why,) if why else ())


# --- yank and fall back ---------------------------------------------------------------------


def test_device_running_a_yanked_release_reverts_to_local() -> None:
    m = mf(rel("1.1.0", yanked="crashes on Android 9"))
    d = decide(m, TAG, dev(local="1.0.0", installed="1.1.0"))
    assert d.action is Action.REVERT_TO_LOCAL
    assert d.release is None
    assert d.reason == "1.1.0 was yanked: crashes on Android 9"
    assert d.skipped == ("1.1.0: yanked (crashes on Android 9)",)


def test_device_running_a_yanked_release_moves_to_a_better_release_above_local() -> None:
    m = mf(rel("1.1.0"), rel("1.2.0", yanked="bad accuracy"))
    d = decide(m, TAG, dev(local="1.0.0", installed="1.2.0"))
    assert (d.action, _version(d)) == (Action.DOWNLOAD, "1.1.0")
    assert d.reason == "1.2.0 was yanked: bad accuracy; 1.1.0 replaces it"


def test_yanked_release_falls_back_to_local_when_the_alternative_is_not_above_it() -> None:
    m = mf(rel("1.0.5"), rel("1.2.0", yanked="bad"))
    d = decide(m, TAG, dev(local="1.1.0", installed="1.2.0"))
    assert d.action is Action.REVERT_TO_LOCAL  # 1.0.5 is below the local 1.1.0


def test_yanked_fallback_respects_eligibility() -> None:
    outside = rel("1.1.0", rollout_bp=0)
    m = mf(outside, rel("1.2.0", yanked="bad"))
    d = decide(m, TAG, dev(local="1.0.0", installed="1.2.0"))
    assert d.action is Action.REVERT_TO_LOCAL
    assert "1.1.0: outside its 0% rollout" in d.skipped


def test_yanked_release_is_not_offered_to_new_devices() -> None:
    m = mf(rel("1.1.0"), rel("1.2.0", yanked="bad"))
    d = decide(m, TAG, dev(local="1.0.0"))
    assert (d.action, _version(d)) == (Action.DOWNLOAD, "1.1.0")


def test_device_on_local_model_ignores_yanks_of_other_versions() -> None:
    d = decide(mf(rel("1.2.0", yanked="bad")), TAG, dev(local="1.0.0"))
    assert d.action is Action.KEEP


# --- pins -----------------------------------------------------------------------------------


def test_pin_local_is_a_kill_switch_for_remote_models() -> None:
    d = decide(mf(rel("1.1.0"), pin=LOCAL), TAG, dev(local="1.0.0", installed="1.1.0"))
    assert d.action is Action.REVERT_TO_LOCAL
    assert d.reason == "pinned to the local model (kill switch)"


def test_pin_local_keeps_the_local_model() -> None:
    d = decide(mf(rel("1.1.0", critical=True), pin=LOCAL), TAG, dev(local="1.0.0"))
    assert d.action is Action.KEEP
    assert d.reason == "pinned to the local model"


def test_pin_to_a_version_downloads_it_outside_its_rollout() -> None:
    m = mf(rel("1.1.0", rollout_bp=0), rel("1.2.0"), pin="1.1.0")
    d = decide(m, TAG, dev(local="1.0.0"))
    assert (d.action, _version(d)) == (Action.DOWNLOAD, "1.1.0")
    assert d.reason == "1.1.0 > 1.0.0: pinned to 1.1.0"


def test_pin_to_a_version_moves_a_device_down_from_a_newer_remote() -> None:
    m = mf(rel("1.1.0"), rel("1.2.0"), pin="1.1.0")
    d = decide(m, TAG, dev(local="1.0.0", installed="1.2.0"))
    assert (d.action, _version(d)) == (Action.DOWNLOAD, "1.1.0")
    assert d.reason == "pinned to 1.1.0; 1.1.0 replaces it"


def test_pin_to_a_version_below_the_local_model_downgrades_from_local() -> None:
    m = mf(rel("1.1.0"), rel("1.3.0"), pin="1.1.0")
    d = decide(m, TAG, dev(local="1.2.0"))
    assert (d.action, _version(d)) == (Action.DOWNLOAD, "1.1.0")
    assert d.reason == "pinned to 1.1.0"


def test_pin_to_the_running_version_keeps_it() -> None:
    m = mf(rel("1.1.0"), rel("1.2.0"), pin="1.1.0")
    assert decide(m, TAG, dev(local="1.0.0", installed="1.1.0")).action is Action.KEEP
    assert decide(m, TAG, dev(local="1.1.0")).action is Action.KEEP  # the local model is it


def test_pinned_fleet_converges_to_the_pinned_release() -> None:
    m = mf(rel("1.1.0"), rel("1.2.0"), rel("1.3.0"), pin="1.1.0")
    for local, installed in [
        ("1.0.0", None),
        ("1.0.0", "1.3.0"),
        ("1.2.0", "1.3.0"),
        ("1.2.0", None),
    ]:
        device = dev(local=local, installed=installed)
        for _ in range(3):  # apply each decision as a device would
            d = decide(m, TAG, device)
            if d.action is Action.DOWNLOAD:
                assert d.release is not None
                device = dev(local=local, installed=d.release.version)
            elif d.action is Action.REVERT_TO_LOCAL:
                device = dev(local=local)
        assert (device.installed_version or device.local_version) == "1.1.0", (local, installed)


def test_pin_to_an_ineligible_release_falls_back_to_local() -> None:
    m = mf(rel("1.1.0", runtimes=("onnx",)), rel("1.2.0"), pin="1.1.0")
    d = decide(m, TAG, dev(local="1.0.0", installed="1.2.0"))
    assert d.action is Action.REVERT_TO_LOCAL
    assert d.reason == "pinned to 1.1.0"
    assert decide(m, TAG, dev(local="1.0.0")).action is Action.KEEP


def test_pin_written_with_build_metadata_selects_its_release() -> None:
    # A pin names a release by semver precedence, as ModelReleases.find does:
    # "1.1.0+build.2" pins 1.1.0, rollout aside.
    m = mf(rel("1.1.0", rollout_bp=0), pin="1.1.0+build.2")
    assert m.models[TAG].find("1.1.0+build.2") is not None
    d = decide(m, TAG, dev(local="1.0.0"))
    assert (d.action, _version(d)) == (Action.DOWNLOAD, "1.1.0")


def test_decide_surfaces_a_malformed_model_entry() -> None:
    # the manifest checks a tag's releases when a device first reads that tag
    doc = mf(rel("1.1.0")).to_dict()
    doc["models"][TAG]["releases"][0]["versionCode"] = 1010
    with pytest.raises(RepositoryFormatError, match="versionCode 1010 should be 10100999"):
        decide(Manifest.from_dict(doc), TAG, dev())


def test_app_update_with_a_newer_local_model_drops_an_older_download() -> None:
    # An app update shipped model 2.0.0 while the device runs a downloaded 1.5.0:
    # nothing in the manifest beats the app's own model, so the device goes back to it.
    m = mf(rel("1.5.0"), rel("1.8.0"))
    d = decide(m, TAG, dev(local="2.0.0", installed="1.5.0"))
    assert d.action is Action.REVERT_TO_LOCAL
    assert "the app's own model 2.0.0 is newer than the downloaded 1.5.0" in d.reason


def test_a_pinned_release_that_is_yanked_is_left() -> None:
    m = mf(rel("1.1.0", yanked="broken"), pin="1.1.0")
    d = decide(m, TAG, dev(installed="1.1.0"))
    assert d.action is Action.REVERT_TO_LOCAL
    assert "1.1.0 was yanked: broken" in d.reason
