"""The manifest as values: round trips, the golden payload, and the rules beyond the schema."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from _factories import (
    EXPIRES,
    TAG,
    digest_of,
    in_order,
    manifest,
    parse_checked,
    release,
    salt_of,
)

from aoe_pack._jcs import canonical_json
from aoe_pack.errors import RepositoryFormatError, TagCollisionError
from aoe_pack.repository.model import (
    LOCAL,
    Manifest,
    ModelReleases,
    Release,
    format_time,
    parse_time,
)

GOLDEN = Path(__file__).parent / "golden" / "manifest-v1.json"
UPDATE_GOLDENS = os.environ.get("AOE_UPDATE_GOLDENS") == "1"


def golden_manifest() -> Manifest:
    """The fixed content of ``golden/manifest-v1.json`` (fixed salts, digests, expiry)."""
    keyboard = ModelReleases(
        releases=(
            release("1.0.9", size=1_000_001, extra={"x-notes": "from a newer publisher"}),
            release(
                "1.0.10",
                size=1_000_002,
                rollout_bp=2_500,
                min_app_version="3.2.0",
                max_app_version="4.0.0-rc.1",
            ),
            release(
                "1.1.0-rc.1",
                channel="beta",
                runtimes=("tflite", "onnx"),
                required_runtimes=("gpu-delegate",),
                size=1_000_003,
            ),
            release("1.1.0", critical=True, size=1_000_004, yanked="crashes on Android 9"),
        ),
        pin="1.0.10",
        extra={"x-owner": "keyboard-team"},
    )
    scenes = ModelReleases(releases=(release("2.0.0", runtimes=("ncnn",), size=77),), pin=LOCAL)
    return Manifest(
        version=7,
        expires=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
        models={"scene_cls": scenes, "keyboard-lm": keyboard, "empty.model": ModelReleases()},
        extra={"x-publisher": {"tool": "aoe-pack-next", "build": 7}},
    )


def _raw(m: Manifest | None = None) -> dict[str, Any]:
    return (m or golden_manifest()).to_dict()


def _first_release(d: dict[str, Any], tag: str = "keyboard-lm") -> dict[str, Any]:
    release_dict: dict[str, Any] = d["models"][tag]["releases"][0]
    return release_dict


# --- golden ---------------------------------------------------------------------------


def test_golden_manifest_payload_is_rebuilt_byte_for_byte() -> None:
    payload = canonical_json(golden_manifest().to_dict())
    if UPDATE_GOLDENS:
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_bytes(payload)
    assert GOLDEN.read_bytes() == payload, (
        "the manifest payload changed; if on purpose, rerun with AOE_UPDATE_GOLDENS=1 "
        "and review the diff: devices in the field parse these bytes"
    )


def test_golden_manifest_round_trips_with_unknown_fields_at_every_level() -> None:
    data = GOLDEN.read_bytes()
    doc = json.loads(data)
    untouched = Manifest.from_dict(json.loads(data))
    assert canonical_json(untouched.to_dict()) == data
    parsed = parse_checked(doc)  # every release parsed into values and serialised again
    assert parsed.to_dict() == doc
    assert canonical_json(parsed.to_dict()) == data
    assert parsed == golden_manifest()
    # the unknown fields of a newer publisher survive an older one's edit
    assert parsed.extra == {"x-publisher": {"tool": "aoe-pack-next", "build": 7}}
    keyboard = parsed.models["keyboard-lm"]
    assert keyboard.extra == {"x-owner": "keyboard-team"}
    assert keyboard.releases[0].extra == {"x-notes": "from a newer publisher"}
    edited = parsed.bump(expires=parsed.expires, models=parsed.models)
    assert edited.to_dict()["x-publisher"] == doc["x-publisher"]
    assert edited.to_dict()["models"]["keyboard-lm"]["x-owner"] == "keyboard-team"
    assert _first_release(edited.to_dict())["x-notes"] == "from a newer publisher"


def test_golden_manifest_field_values() -> None:
    doc = json.loads(GOLDEN.read_bytes())
    assert doc["_type"] == "aoe.repository.manifest"
    assert doc["formatVersion"] == 1
    assert doc["expires"] == "2030-01-01T00:00:00Z"
    assert list(doc["models"]) == ["empty.model", "keyboard-lm", "scene_cls"]  # sorted tags
    r = doc["models"]["keyboard-lm"]["releases"][1]
    assert r["versionCode"] == 10_010_999
    assert r["rollout"] == {"basisPoints": 2500, "salt": salt_of("1.0.10")}
    assert r["url"] == f"bundles/{digest_of('1.0.10')}.aoe"
    assert doc["models"]["keyboard-lm"]["releases"][3]["yanked"] == {
        "reason": "crashes on Android 9"
    }
    assert "minAppVersion" not in doc["models"]["scene_cls"]["releases"][0]  # absent, not null


# --- round trips ----------------------------------------------------------------------


def test_release_round_trips_every_optional_field() -> None:
    r = release(
        "2.0.0-rc.3+b.9",
        channel="beta",
        rollout_bp=1,
        runtimes=("tflite", "ort"),
        required_runtimes=("nnapi",),
        min_app_version="1.0.0",
        max_app_version="9.0.0",
        critical=True,
        yanked="bad",
        extra={"future": [1, 2]},
    )
    assert Release.from_dict(r.to_dict()) == r
    assert r.rollout_percent == 0.01
    assert str(r.semver) == "2.0.0-rc.3+b.9"


def test_model_find_uses_semver_precedence() -> None:
    entry = ModelReleases(releases=(release("1.0.9"), release("1.0.10")))
    found = entry.find("1.0.10+any.build")
    assert found is not None
    assert found.version == "1.0.10"
    assert entry.find("1.0.1") is None


def test_bump_adds_one_and_keeps_unknown_fields() -> None:
    m = golden_manifest()
    later = EXPIRES + dt.timedelta(days=365 * 10)
    bumped = m.bump(expires=later, models={TAG: ModelReleases()})
    assert bumped.version == m.version + 1
    assert bumped.expires == later
    assert list(bumped.models) == [TAG]
    assert bumped.extra == m.extra
    assert m.version == 7  # frozen: the original is unchanged


def test_release_count() -> None:
    assert golden_manifest().release_count() == 5


def test_times_are_rfc3339_utc_seconds() -> None:
    t = dt.datetime(2030, 1, 1, 2, 3, 4, 999_999, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert format_time(t) == "2030-01-01T00:03:04Z"  # converted to UTC, sub-seconds dropped
    assert parse_time("2030-01-01T00:03:04Z") == dt.datetime(2030, 1, 1, 0, 3, 4, tzinfo=dt.UTC)


def test_unknown_fields_inside_rollout_and_yanked_survive_a_round_trip() -> None:
    # A newer publisher's additions inside "rollout" and "yanked" must survive
    # an older publisher's edit, like unknown fields anywhere else.
    doc = _raw()
    r = _first_release(doc)
    r["rollout"]["startedAt"] = "2026-03-01T00:00:00Z"
    r["yanked"] = {"reason": "bad", "at": "2026-03-02T00:00:00Z"}
    assert Manifest.from_dict(copy.deepcopy(doc)).to_dict() == doc  # untouched: kept as signed
    assert parse_checked(copy.deepcopy(doc)).to_dict() == doc  # parsed, as an edit does


# --- rules the schema cannot state ------------------------------------------------------


def test_version_code_that_does_not_match_its_version_is_rejected() -> None:
    doc = _raw()
    _first_release(doc)["versionCode"] = 10_009_998
    with pytest.raises(
        RepositoryFormatError,
        match=r"manifest: keyboard-lm 1\.0\.9: versionCode 10009998 should be 10009999",
    ):
        parse_checked(doc)


def test_text_ordered_version_code_is_rejected() -> None:
    # AoE-era publishers wrote versionCode = int("1010") for 1.0.10
    doc = _raw(manifest(release("1.0.10", version_code=1010)))
    with pytest.raises(RepositoryFormatError, match="versionCode 1010 should be 10010999"):
        parse_checked(doc)


@pytest.mark.parametrize(
    "versions",
    [
        ["1.0.10", "1.0.9"],  # text order
        ["1.10.0", "1.9.0"],
        ["1.0.0", "1.0.0-rc.1"],  # a pre-release after its release
        ["1.0.0-rc.2", "1.0.0-rc.10", "1.0.0-rc.3"],
    ],
)
def test_unsorted_releases_are_rejected(versions: list[str]) -> None:
    doc = in_order(manifest(*(release(v) for v in versions)), *versions)
    with pytest.raises(RepositoryFormatError, match="must be sorted by semver precedence"):
        parse_checked(doc)


@pytest.mark.parametrize(("a", "b"), [("1.0.0", "1.0.0"), ("1.0.0+build.1", "1.0.0+build.2")])
def test_releases_with_the_same_precedence_are_rejected(a: str, b: str) -> None:
    doc = _raw(manifest(release(a, sha256=digest_of("one")), release(b, sha256=digest_of("two"))))
    with pytest.raises(RepositoryFormatError, match=rf"without duplicates \({re.escape(a)} then"):
        parse_checked(doc)


def test_release_without_a_version_code_is_rejected_as_format_error() -> None:
    doc = _raw(manifest(release("1.0.0", version_code=10_000_999)))
    r = doc["models"][TAG]["releases"][0]
    r["version"] = "1.0.0-preview"  # a semver, but no versionCode keeps its order
    with pytest.raises(
        RepositoryFormatError, match=r"manifest: tag_x 1\.0\.0-preview: .*has no versionCode"
    ):
        parse_checked(doc)


def test_url_that_does_not_name_the_digest_is_rejected() -> None:
    doc = _raw(manifest(release("1.0.0")))
    doc["models"][TAG]["releases"][0]["url"] = f"bundles/{digest_of('other')}.aoe"
    with pytest.raises(RepositoryFormatError, match=r"tag_x 1\.0\.0: url must name its sha256"):
        parse_checked(doc)


def test_pin_to_a_missing_release_is_rejected() -> None:
    doc = _raw(manifest(release("1.0.0"), pin="1.0.1"))
    with pytest.raises(
        RepositoryFormatError, match=r"tag_x is pinned to 1\.0\.1, which is not a release"
    ):
        parse_checked(doc)


def test_pin_local_and_pin_to_a_release_are_accepted() -> None:
    for pin in (LOCAL, "1.0.0", "1.0.0+same.precedence"):
        m = parse_checked(_raw(manifest(release("1.0.0"), pin=pin)))
        assert m.models[TAG].pin == pin


# --- the schema --------------------------------------------------------------------------


def _break(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    *parents, last = path.split("/")
    target: Any = doc
    for p in parents:
        target = target[int(p)] if p.isdigit() else target[p]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return doc


_DELETE = object()
_R = "models/keyboard-lm/releases/0"


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        ("_type", "aoe.repository.root", "_type"),
        ("formatVersion", 2, "formatVersion"),
        ("version", 0, "version"),
        ("version", "7", "version"),
        ("expires", "2030-01-01 00:00:00", "expires"),
        ("expires", "2030-01-01T00:00:00+00:00", "expires"),
        ("models", [], "models"),
        ("models/-bad", {"releases": []}, "models"),
        ("models/keyboard-lm/pin", "latest", "models/keyboard-lm/pin"),
        ("models/keyboard-lm/releases", _DELETE, "models/keyboard-lm"),
        (f"{_R}/version", "v1.0.9", f"{_R}/version"),
        (f"{_R}/versionCode", 2_100_000_000, f"{_R}/versionCode"),
        (f"{_R}/url", "https://evil.example/x.aoe", f"{_R}/url"),
        (f"{_R}/size", 0, f"{_R}/size"),
        (f"{_R}/sha256", "AB" * 32, f"{_R}/sha256"),
        (f"{_R}/runtimes", [], f"{_R}/runtimes"),
        (f"{_R}/runtimes", ["tflite", "tflite"], f"{_R}/runtimes"),
        (f"{_R}/channel", "Beta", f"{_R}/channel"),
        (f"{_R}/rollout/basisPoints", 10_001, f"{_R}/rollout/basisPoints"),
        (f"{_R}/rollout/basisPoints", -1, f"{_R}/rollout/basisPoints"),
        (f"{_R}/rollout/salt", "00", f"{_R}/rollout/salt"),
        (f"{_R}/rollout/salt", _DELETE, f"{_R}/rollout"),
        (f"{_R}/critical", "yes", f"{_R}/critical"),
        (f"{_R}/critical", _DELETE, _R),
        (f"{_R}/yanked", {"reason": ""}, f"{_R}/yanked/reason"),
        (f"{_R}/minAppVersion", "3", f"{_R}/minAppVersion"),
    ],
)
def test_schema_violations_are_named_with_their_path(path: str, value: Any, where: str) -> None:
    doc = _break(_raw(), path, value)
    # the path may be written "models/t/releases/0" or "models/t: releases/0"
    where_re = "/".join(re.escape(p) for p in where.split("/")).replace("/", "(?:/|: )")
    with pytest.raises(RepositoryFormatError, match=f"^manifest: {where_re}: "):
        parse_checked(doc)


@pytest.mark.parametrize("doc", [None, [], "manifest", 7])
def test_non_object_manifest_is_rejected(doc: Any) -> None:
    with pytest.raises(RepositoryFormatError, match=r"^manifest: \(top level\): "):
        parse_checked(doc)


def test_impossible_calendar_date_is_a_format_error() -> None:
    # The schema's timestamp pattern admits 2030-02-30; parsing must refuse it
    # as a format error, not let strptime's ValueError escape.
    doc = _raw()
    doc["expires"] = "2030-02-30T00:00:00Z"
    with pytest.raises(RepositoryFormatError, match="expires"):
        parse_checked(doc)


def test_counts_stay_right_after_tags_are_read() -> None:
    # Tags are parsed on first use; a parsed tag must not be counted twice.
    m = parse_checked(_raw())
    fresh = Manifest.from_dict(_raw())
    assert len(fresh.models) == len(m.models)
    assert fresh.release_count() == m.release_count()
    assert fresh.models.sha256s() == m.models.sha256s()
    assert len(m.models.sha256s()) == m.release_count()


def test_unparsable_app_version_is_refused_when_the_tag_is_read() -> None:
    # Else devices whose decision reaches that release fail and others proceed.
    doc = manifest(release("1.0.0", min_app_version="1.0.0-rc.01")).to_dict()
    with pytest.raises(RepositoryFormatError, match="app version"):
        Manifest.from_dict(doc).models.check_all()


def test_an_edit_adding_a_tag_that_differs_only_in_case_is_refused_by_bump() -> None:
    """Every edit goes through bump: no path adds ``Card`` beside ``card``."""
    m = manifest(release("1.0.0"), tag="card")
    twin = m.models.updated("Card", ModelReleases())
    with pytest.raises(TagCollisionError) as info:
        m.bump(expires=EXPIRES, models=twin)
    assert info.value.message == (
        "tag Card differs only in case from tag card, which the manifest already has: "
        "tags/Card/ and tags/card/ would be one folder on case-insensitive file systems "
        "(macOS, Windows)"
    )
    other = manifest(release("1.0.0"), tag="x")
    pair = other.models.updated("Card", ModelReleases()).updated("card", ModelReleases())
    with pytest.raises(TagCollisionError, match="from tag card, which the same edit adds: "):
        other.bump(expires=EXPIRES, models=pair)


def test_a_manifest_holding_tags_differing_only_in_case_can_still_be_edited() -> None:
    held = Manifest(
        version=1, expires=EXPIRES, models={"Card": ModelReleases(), "card": ModelReleases()}
    )
    edited = held.bump(
        expires=EXPIRES,
        models=held.models.updated("card", ModelReleases(releases=(release("1.0.0"),))),
    )
    assert edited.version == 2
    assert (
        held.bump(expires=EXPIRES, models=held.models.updated("other", ModelReleases())).version
        == 2
    )
