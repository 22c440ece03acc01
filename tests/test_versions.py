"""Semver precedence (the cases AoE got wrong) and the integer versionCode.

The property tests compare against an independent reading of semver 2.0.0
section 11 (``_reference_cmp``), not against the ``semver`` library the code
uses, so a disagreement between the library and the spec would show too.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aoe_pack.errors import VersionError
from aoe_pack.versions import (
    MAX_MAJOR,
    MAX_MINOR,
    MAX_PATCH,
    RELEASE_SLOT,
    Version,
    parse_version,
)

V = Version.parse
PLAY_LIMIT = 2_100_000_000  # Google Play refuses a versionCode at or above this


def _sign(x: int) -> int:
    return (x > 0) - (x < 0)


def _reference_cmp(a: str, b: str) -> int:
    """Semver 2.0.0 precedence, written from the spec text (section 11)."""

    def split(text: str) -> tuple[tuple[int, ...], list[str] | None]:
        text = text.split("+", 1)[0]  # build metadata: ignored
        core, _, pre = text.partition("-")
        return tuple(int(x) for x in core.split(".")), (pre.split(".") if pre else None)

    (ca, pa), (cb, pb) = split(a), split(b)
    if ca != cb:
        return -1 if ca < cb else 1
    if pa is None or pb is None:  # a pre-release is below its release
        return (pa is None) - (pb is None)
    for x, y in zip(pa, pb, strict=False):
        if x == y:
            continue
        if x.isdigit() and y.isdigit():
            return -1 if int(x) < int(y) else 1
        if x.isdigit() != y.isdigit():  # numeric identifiers sort below alphanumeric ones
            return -1 if x.isdigit() else 1
        return -1 if x < y else 1  # ASCII order
    return _sign(len(pa) - len(pb))  # a longer set of identifiers wins when all else ties


def _cmp(a: Version, b: Version) -> int:
    return -1 if a < b else (1 if b < a else 0)


# --- the cases that broke AoE ------------------------------------------------------------


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("1.9.0", "1.10.0"),
        ("1.0.9", "1.0.10"),
        ("9.0.0", "10.0.0"),
        ("2.0.0", "10.0.0"),
        ("1.2.9", "1.2.10"),
        ("0.9.99", "0.10.0"),
        ("1.99.0", "1.100.0"),
    ],
)
def test_numeric_parts_compare_as_numbers_not_text(lower: str, higher: str) -> None:
    assert higher < lower  # the AoE bug: as text, the higher version sorts first...
    assert V(lower) < V(higher)  # ...by semver precedence it does not
    assert max([V(higher), V(lower)]) == V(higher)
    assert sorted([V(higher), V(lower)]) == [V(lower), V(higher)]


def test_aoe_text_order_and_semver_order_of_a_release_list() -> None:
    versions = ["1.0.10", "1.0.9", "1.10.0", "1.9.0", "1.0.0", "1.0.0-rc.1", "1.0.0-beta.11"]
    assert sorted(versions) == [  # AoE's order, wrong in four places
        "1.0.0",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.10",
        "1.0.9",
        "1.10.0",
        "1.9.0",
    ]
    assert [str(v) for v in sorted(V(x) for x in versions)] == [
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.9",
        "1.0.10",
        "1.9.0",
        "1.10.0",
    ]


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("1.0.0-alpha", "1.0.0"),
        ("1.0.0-rc.1", "1.0.0"),
        ("1.0.0-rc.99", "1.0.0"),
        ("0.9.9", "1.0.0-alpha"),  # a pre-release is still above the previous release
        ("1.0.0-alpha", "1.0.0-alpha.1"),
        ("1.0.0-alpha.1", "1.0.0-alpha.beta"),
        ("1.0.0-alpha.beta", "1.0.0-beta"),
        ("1.0.0-beta", "1.0.0-beta.2"),
        ("1.0.0-beta.2", "1.0.0-beta.11"),  # numeric identifiers as numbers too
        ("1.0.0-beta.11", "1.0.0-rc.1"),
        ("1.0.0-rc.9", "1.0.0-rc.10"),
        ("1.0.0-1", "1.0.0-alpha"),  # numeric identifiers below alphanumeric ones
    ],
)
def test_pre_releases_sort_below_their_release_in_semver_order(lower: str, higher: str) -> None:
    assert V(lower) < V(higher)
    assert not V(higher) < V(lower)
    assert V(lower) != V(higher)
    assert _reference_cmp(lower, higher) == -1


def test_build_metadata_is_ignored_in_precedence_equality_and_hash() -> None:
    a, b, c = V("1.0.0+build.5"), V("1.0.0+build.6"), V("1.0.0")
    assert a == b == c
    assert not a < b
    assert not b < a
    assert hash(a) == hash(b) == hash(c)
    assert len({a, b, c}) == 1
    assert a.version_code() == b.version_code() == c.version_code()
    assert str(a) == "1.0.0+build.5"  # carried, never ordered
    assert V("1.0.0-rc.1+exp.sha.5114f85") == V("1.0.0-rc.1")
    assert V("1.0.0-rc.1+zzz") < V("1.0.0+aaa")


def test_version_equality_and_hash_follow_precedence_for_pre_releases() -> None:
    assert V("1.0.0-rc.1") != V("1.0.0")
    assert hash(V("1.0.0-rc.1")) == hash(V("1.0.0-rc.1+b"))
    assert V("1.0.0") != "1.0.0"  # a string is not a Version
    assert V("2.0.0-rc.1").is_prerelease
    assert not V("2.0.0+b").is_prerelease
    assert repr(V("1.2.3-rc.1")) == "Version('1.2.3-rc.1')"
    assert parse_version("1.2.3") == V("1.2.3")


@pytest.mark.parametrize(
    "text",
    [
        "1.0",
        "1",
        "v1.0.0",
        "01.0.0",
        "1.01.0",
        "1.0.0-",
        "1.0.0+",
        "1.0.0-rc..1",
        "1.0.0-01",
        " 1.0.0",
        "1.0.0\n",
        "",
        "latest",
        "1.0.0.0",
        "-1.0.0",
    ],
)
def test_non_semver_text_is_refused(text: str) -> None:
    with pytest.raises(VersionError, match="is not a semantic version") as e:
        V(text)
    assert e.value.hint is not None
    assert "MAJOR.MINOR.PATCH" in e.value.hint


def test_overlong_or_non_string_version_is_refused() -> None:
    with pytest.raises(VersionError, match="at most 128 characters"):
        V("1.0.0-" + "a" * 123)  # 129 characters
    assert str(V("1.0.0-" + "a" * 122)) == "1.0.0-" + "a" * 122  # 128: fine
    with pytest.raises(VersionError, match="at most 128 characters"):
        V(100)  # type: ignore[arg-type]
    with pytest.raises(VersionError, match=r"app version '1\.0' is not"):
        V("1.0", what="app version")


# --- versionCode ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("0.0.0-alpha", 100),
        ("0.0.0", 999),
        ("1.0.0", 10_000_999),
        ("1.0.9", 10_009_999),
        ("1.0.10", 10_010_999),
        ("1.9.0", 10_900_999),
        ("1.10.0", 11_000_999),
        ("1.2.3-alpha", 10_203_100),
        ("1.2.3-alpha.0", 10_203_101),
        ("1.2.3-beta", 10_203_200),
        ("1.2.3-beta.3", 10_203_204),
        ("1.2.3-rc.1", 10_203_302),
        ("1.2.3-rc.98", 10_203_399),
        ("1.2.3+build.7", 10_203_999),
        ("209.99.99", 2_099_999_999),
    ],
)
def test_version_code_values(text: str, code: int) -> None:
    assert V(text).version_code() == code


def test_largest_version_code_fits_play_store_and_int32() -> None:
    top = V(f"{MAX_MAJOR}.{MAX_MINOR}.{MAX_PATCH}").version_code()
    assert top == 2_099_999_999
    assert top < PLAY_LIMIT
    assert top < 2**31


def test_every_slot_of_one_version_is_in_semver_order() -> None:
    ladder = [
        f"1.2.3-{label}{suffix}"
        for label in ("alpha", "beta", "rc")
        for suffix in ["", *(f".{n}" for n in range(99))]
    ]
    ladder = ["1.2.2", *ladder, "1.2.3", "1.2.4-alpha"]
    codes = [V(x).version_code() for x in ladder]
    versions = [V(x) for x in ladder]
    assert codes == sorted(codes)
    assert len(set(codes)) == len(codes)
    assert all(a < b for a, b in itertools.pairwise(versions))
    assert V("1.2.3").version_code() % 1000 == RELEASE_SLOT


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("210.0.0", "major 210 is above 209"),
        ("1.100.0", "minor 100 is above 99"),
        ("1.0.100", "patch 100 is above 99"),
        ("1000.0.0", "major 1000 is above 209"),
        ("1.0.0-alpha.99", "only pre-releases alpha, beta, rc"),
        ("1.0.0-rc.100", "only pre-releases alpha, beta, rc"),
        ("1.0.0-preview", "only pre-releases alpha, beta, rc"),
        ("1.0.0-RC.1", "only pre-releases alpha, beta, rc"),
        ("1.0.0-alpha.1.2", "only pre-releases alpha, beta, rc"),
        ("1.0.0-beta.x", "only pre-releases alpha, beta, rc"),
        ("1.0.0-rc1", "only pre-releases alpha, beta, rc"),
        ("1.0.0-alpha-1", "only pre-releases alpha, beta, rc"),
        ("1.0.0-1", "only pre-releases alpha, beta, rc"),
        ("1.0.0-rc.-1", "only pre-releases alpha, beta, rc"),
        ("1.0.0-dev.1", "only pre-releases alpha, beta, rc"),
    ],
)
def test_versions_without_a_version_code_are_refused(text: str, fragment: str) -> None:
    v = V(text)  # a valid semver...
    with pytest.raises(VersionError, match=fragment) as e:
        v.version_code()  # ...with no integer that keeps semver order
    assert "has no versionCode" in e.value.message
    assert e.value.hint is not None


# --- properties -------------------------------------------------------------------------


def _component(top: int) -> st.SearchStrategy[int]:
    # Small values often, so that pairs share major/minor/patch and the slot decides.
    return st.one_of(st.integers(0, 2), st.integers(0, top))


_LABEL = st.sampled_from(["alpha", "beta", "rc"])
_MAPPABLE_PRE = st.one_of(
    st.none(),
    _LABEL,
    st.builds(
        lambda label, n: f"{label}.{n}", _LABEL, st.one_of(st.integers(0, 3), st.integers(0, 98))
    ),
)
_BUILD = st.one_of(st.none(), st.sampled_from(["build.1", "sha.5114f85", "20260301"]))


@st.composite
def mappable_versions(draw: st.DrawFn) -> str:
    """Any version inside the documented versionCode bounds."""
    text = (
        f"{draw(_component(MAX_MAJOR))}.{draw(_component(MAX_MINOR))}.{draw(_component(MAX_PATCH))}"
    )
    pre, build = draw(_MAPPABLE_PRE), draw(_BUILD)
    return text + (f"-{pre}" if pre else "") + (f"+{build}" if build else "")


_IDENT = st.one_of(
    st.integers(0, 20).map(str),
    st.sampled_from(["alpha", "beta", "rc", "a", "b", "x-1", "RC", "Alpha", "0a", "z9"]),
)


@st.composite
def any_versions(draw: st.DrawFn) -> str:
    """Any semver, with pre-releases of every shape."""
    core = ".".join(str(draw(st.integers(0, 3))) for _ in range(3))
    pre = draw(st.one_of(st.none(), st.lists(_IDENT, min_size=1, max_size=4)))
    return core + (f"-{'.'.join(pre)}" if pre else "")


@settings(max_examples=300, deadline=None)
@given(a=mappable_versions(), b=mappable_versions())
def test_version_code_order_equals_semver_order(a: str, b: str) -> None:
    va, vb = V(a), V(b)
    ca, cb = va.version_code(), vb.version_code()
    assert 0 <= ca <= 2_099_999_999
    assert _sign(ca - cb) == _cmp(va, vb) == _reference_cmp(a, b)


@settings(max_examples=300, deadline=None)
@given(st.lists(mappable_versions(), min_size=2, max_size=25))
def test_sorting_by_version_code_sorts_by_semver(texts: list[str]) -> None:
    by_code = sorted(texts, key=lambda t: V(t).version_code())
    assert all(not V(b) < V(a) for a, b in itertools.pairwise(by_code))


@settings(max_examples=300, deadline=None)
@given(a=any_versions(), b=any_versions())
def test_semver_precedence_matches_the_spec_for_any_pre_release(a: str, b: str) -> None:
    assert _cmp(V(a), V(b)) == _reference_cmp(a, b)


@settings(max_examples=300, deadline=None)
@given(
    major=st.integers(0, 10**6),
    minor=st.integers(0, 10**6),
    patch=st.integers(0, 10**6),
    pre=_MAPPABLE_PRE,
)
def test_version_code_exists_exactly_within_the_bounds(
    major: int, minor: int, patch: int, pre: str | None
) -> None:
    v = V(f"{major}.{minor}.{patch}" + (f"-{pre}" if pre else ""))
    inside = major <= MAX_MAJOR and minor <= MAX_MINOR and patch <= MAX_PATCH
    if inside:
        assert 0 <= v.version_code() < PLAY_LIMIT
    else:
        with pytest.raises(VersionError, match=r"has no versionCode: .* is above"):
            v.version_code()


@settings(max_examples=300, deadline=None)
@given(pre=st.lists(_IDENT, min_size=1, max_size=4).map(".".join))
def test_other_pre_release_shapes_are_refused(pre: str) -> None:
    parts = pre.split(".")
    mappable = parts[0] in ("alpha", "beta", "rc") and (
        len(parts) == 1 or (len(parts) == 2 and parts[1].isdigit() and int(parts[1]) <= 98)
    )
    v = V(f"1.2.3-{pre}")
    if mappable:
        assert v.version_code() // 1000 == 10_203
    else:
        with pytest.raises(VersionError, match="only pre-releases alpha, beta, rc"):
            v.version_code()
