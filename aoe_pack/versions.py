"""Model and app versions: semver precedence, and the integer ``versionCode``.

AoE compared version strings piece by piece as text, so ``1.0.9`` beat
``1.0.10``. Everything here compares by semver 2.0.0 precedence: numbers as
numbers, and a pre-release below its release (``1.0.0-rc.1 < 1.0.0``). Build
metadata (``+build.5``) is carried but never ordered, so two versions that
differ only in it are the same release.

``versionCode`` is an integer for clients that only compare integers (AoE-era
apps, Android's ``versionCode``). It is ordered exactly like semver precedence,
within these bounds, and refused outside them:

    versionCode = ((major * 100 + minor) * 100 + patch) * 1000 + slot

- major 0-209, minor 0-99, patch 0-99, so the largest code, 2 099 999 999,
  stays below Google Play's 2 100 000 000 and fits a signed 32-bit integer;
- ``slot`` is 999 for a release, and for a pre-release
  ``label * 100 + n`` where ``label`` is 1 for ``alpha``, 2 for ``beta``,
  3 for ``rc``, and n is 0 for the bare label (``1.0.0-beta``) and 1 + N for
  ``label.N`` with N 0-98 (``1.0.0-beta.3`` → 204).

Pre-releases of any other shape have no integer that keeps semver order
against every other version, so they are refused instead of being given a
wrong one.
"""

from __future__ import annotations

import functools

import semver

from aoe_pack.errors import VersionError

_MAX_LEN = 128
MAX_MAJOR, MAX_MINOR, MAX_PATCH = 209, 99, 99
_LABELS = {"alpha": 1, "beta": 2, "rc": 3}
_MAX_PRE_NUMBER = 98
RELEASE_SLOT = 999


@functools.total_ordering
class Version:
    """A semver version (parsed by the ``semver`` library), ordered by precedence.

    The precedence key and the text are computed once, so comparing two versions
    is a tuple comparison and ``str()`` an attribute read: the device decision
    compares and names several per device.
    """

    __slots__ = ("_key", "_text", "_v")

    def __init__(self, v: semver.Version) -> None:
        self._v = v
        self._key = _precedence_key(v)
        self._text = str(v)

    @classmethod
    def parse(cls, text: str, *, what: str = "version") -> Version:
        """Parse ``text`` strictly (no leading ``v``, no leading zeros)."""
        if not isinstance(text, str) or len(text) > _MAX_LEN:
            raise VersionError(f"{what} must be a semver string of at most {_MAX_LEN} characters")
        try:
            return _parse(text)
        except ValueError as e:
            hint = "write MAJOR.MINOR.PATCH, e.g. 1.0.10 or 2.1.0-rc.1 (semver.org)"
            raise VersionError(f"{what} {text!r} is not a semantic version", hint=hint) from e

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"Version({self._text!r})"

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key < other._key

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    @property
    def is_prerelease(self) -> bool:
        return self._v.prerelease is not None

    def version_code(self) -> int:
        """The integer ordered like semver precedence (module docstring), or VersionError."""
        v = self._v
        for name, value, top in (
            ("major", v.major, MAX_MAJOR),
            ("minor", v.minor, MAX_MINOR),
            ("patch", v.patch, MAX_PATCH),
        ):
            if value > top:
                raise VersionError(
                    f"{self} has no versionCode: {name} {value} is above {top}",
                    hint="versionCode bounds: major 0-209, minor 0-99, patch 0-99 "
                    "(docs/format.md, versionCode)",
                )
        return ((v.major * 100 + v.minor) * 100 + v.patch) * 1000 + self._slot()

    def _slot(self) -> int:
        if self._v.prerelease is None:
            return RELEASE_SLOT
        pre = self._v.prerelease.split(".")
        label = _LABELS.get(pre[0])
        if label is not None and len(pre) == 1:
            return label * 100
        if label is not None and len(pre) == 2 and pre[1].isdigit():
            n = int(pre[1])
            if n <= _MAX_PRE_NUMBER and str(n) == pre[1]:
                return label * 100 + 1 + n
        raise VersionError(
            f"{self} has no versionCode: only pre-releases alpha, beta, rc and "
            f"alpha.N, beta.N, rc.N (N 0-{_MAX_PRE_NUMBER}) map to an integer in semver order",
            hint="rename the pre-release, e.g. 1.2.0-rc.1",
        )


def _precedence_key(v: semver.Version) -> tuple[object, ...]:
    """semver 2.0.0 section 11 as a tuple: a release above its pre-releases; numeric
    identifiers below alphanumeric ones and compared as numbers; a longer list of
    identifiers above its prefix. Build metadata is not part of it."""
    if v.prerelease is None:
        return (v.major, v.minor, v.patch, 1)
    ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in v.prerelease.split("."))
    return (v.major, v.minor, v.patch, 0, ids)


@functools.lru_cache(maxsize=8192)
def _parse(text: str) -> Version:
    # Versions are immutable and a fleet shares a handful of app and model
    # versions, so parsing each string once pays off in bulk decisions.
    return Version(semver.Version.parse(text))


def parse_version(text: str, *, what: str = "version") -> Version:
    """Shorthand for :meth:`Version.parse`."""
    return Version.parse(text, what=what)
