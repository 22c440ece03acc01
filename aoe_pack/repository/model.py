"""The repository manifest as values: releases per model tag.

Parsing checks the JSON Schema (``schemas/manifest.schema.json``) and then the
rules a schema cannot state: each ``versionCode`` matches its version, releases
are sorted by semver precedence with no two equal, and a pin names a release.
Unknown fields are kept (``extra``) so that a newer publisher's additions
survive an older publisher's edit.

A repository can hold thousands of releases, and a device cares about one
tag, a publisher about the tags it edits. So the manifest's top level is
checked at once and each tag's releases when first used (:class:`Models`);
untouched tags are re-serialised from their signed JSON as they were.
``Models.check_all()`` checks every tag (``manifest verify`` does).
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.resources
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from aoe_pack._jcs import MAX_SAFE_INTEGER, canonical_json_integral, canonical_object
from aoe_pack.errors import (
    RepositoryFormatError,
    TagCollisionError,
    VersionError,
    VersionLimitError,
)
from aoe_pack.versions import Version

MANIFEST_KIND = "aoe.repository.manifest"
FORMAT_VERSION = 1
"""The largest manifest or root version: numbers in signed documents are exact doubles."""
LOCAL = "local"
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def format_time(t: dt.datetime) -> str:
    """RFC 3339 UTC with seconds, the only time format in signed documents."""
    return t.astimezone(dt.UTC).strftime(_TIME_FORMAT)


def parse_time(text: str) -> dt.datetime:
    try:
        return dt.datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=dt.UTC)
    except ValueError as e:  # the schema's pattern admits 2030-02-30
        raise RepositoryFormatError(f"manifest: expires {text[:40]!r} is not a real date") from e


@functools.cache
def _validator(name: str, part: str = "") -> Any:
    """The validator of schema ``name``, or of one of its ``$defs`` (``part``).

    ``part="top"`` checks a manifest's top level with each model left opaque.
    """
    from aoe_pack.config import ecma_validator

    resource = importlib.resources.files("aoe_pack") / "schemas" / name
    schema = json.loads(resource.read_text(encoding="utf-8"))
    if part == "top":
        schema["properties"]["models"]["additionalProperties"] = {"type": "object"}
    elif part:
        schema = {"$defs": schema["$defs"], "$ref": f"#/$defs/{part}"}
    return ecma_validator(schema)


def check_schema(document: Any, schema: str, *, what: str, part: str = "") -> None:
    """Raise RepositoryFormatError naming the first schema violation."""
    error = next(iter(_validator(schema, part).iter_errors(document)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise RepositoryFormatError(f"{what}: {where}: {error.message[:300]}")


@dataclass(frozen=True, kw_only=True)
class DeltaRef:
    """A delta (docs/format.md §16) from release ``from_version`` to the release holding it."""

    from_version: str
    url: str
    size: int
    sha256: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.extra,
            "from": self.from_version,
            "url": self.url,
            "size": self.size,
            "sha256": self.sha256,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DeltaRef:
        return cls(
            from_version=d["from"],
            url=d["url"],
            size=d["size"],
            sha256=d["sha256"],
            extra={k: v for k, v in d.items() if k not in ("from", "url", "size", "sha256")},
        )


@dataclass(frozen=True, kw_only=True)
class Release:
    """One published bundle of one model version."""

    version: str
    version_code: int
    url: str
    size: int
    sha256: str
    runtimes: tuple[str, ...]
    artifacts: tuple[Mapping[str, str], ...]
    channel: str = "stable"
    rollout_bp: int = 10_000
    salt: str
    min_app_version: str | None = None
    max_app_version: str | None = None
    required_runtimes: tuple[str, ...] = ()
    critical: bool = False
    yanked: str | None = None
    signers: tuple[str, ...] = ()
    """Key ids (in the manifest's ``bundleKeys``) whose signatures on the bundle
    verified at publish time; the device verifies the bundle with those keys."""
    deltas: tuple[DeltaRef, ...] = ()
    """Deltas from earlier releases to this one, each smaller than the bundle (§16)."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    rollout_extra: Mapping[str, Any] = field(default_factory=dict)
    """Unknown fields inside ``rollout`` (kept, like ``extra``)."""
    yanked_extra: Mapping[str, Any] = field(default_factory=dict)

    @functools.cached_property
    def semver(self) -> Version:
        return Version.parse(self.version)

    @functools.cached_property
    def min_app(self) -> Version:
        return Version.parse(self.min_app_version or "0.0.0")

    @functools.cached_property
    def max_app(self) -> Version:
        assert self.max_app_version is not None
        return Version.parse(self.max_app_version)

    @property
    def rollout_percent(self) -> float:
        return self.rollout_bp / 100

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = dict(self.extra)
        d.update(
            version=self.version,
            versionCode=self.version_code,
            url=self.url,
            size=self.size,
            sha256=self.sha256,
            runtimes=list(self.runtimes),
            artifacts=[dict(a) for a in self.artifacts],
            channel=self.channel,
            rollout={**self.rollout_extra, "basisPoints": self.rollout_bp, "salt": self.salt},
            requiredRuntimes=list(self.required_runtimes),
            critical=self.critical,
        )
        if self.min_app_version is not None:
            d["minAppVersion"] = self.min_app_version
        if self.max_app_version is not None:
            d["maxAppVersion"] = self.max_app_version
        if self.yanked is not None:
            d["yanked"] = {**self.yanked_extra, "reason": self.yanked}
        if self.signers:
            d["signers"] = list(self.signers)
        if self.deltas:
            d["deltas"] = [x.to_dict() for x in self.deltas]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Release:
        known = set(_RELEASE_FIELDS)
        return cls(
            version=d["version"],
            version_code=d["versionCode"],
            url=d["url"],
            size=d["size"],
            sha256=d["sha256"],
            runtimes=tuple(d["runtimes"]),
            artifacts=tuple(dict(a) for a in d["artifacts"]),
            channel=d["channel"],
            rollout_bp=d["rollout"]["basisPoints"],
            salt=d["rollout"]["salt"],
            min_app_version=d.get("minAppVersion"),
            max_app_version=d.get("maxAppVersion"),
            required_runtimes=tuple(d["requiredRuntimes"]),
            critical=d["critical"],
            yanked=d["yanked"]["reason"] if "yanked" in d else None,
            signers=tuple(d.get("signers", ())),
            deltas=tuple(DeltaRef.from_dict(x) for x in d.get("deltas", ())),
            extra={k: v for k, v in d.items() if k not in known},
            rollout_extra={
                k: v for k, v in d["rollout"].items() if k not in ("basisPoints", "salt")
            },
            yanked_extra={k: v for k, v in d.get("yanked", {}).items() if k != "reason"},
        )


_RELEASE_FIELDS = [
    "version",
    "versionCode",
    "url",
    "size",
    "sha256",
    "runtimes",
    "artifacts",
    "channel",
    "rollout",
    "minAppVersion",
    "maxAppVersion",
    "requiredRuntimes",
    "critical",
    "yanked",
    "signers",
    "deltas",
]


@dataclass(frozen=True, kw_only=True)
class ModelReleases:
    """Every release of one model tag, lowest version first, and its pin."""

    releases: tuple[Release, ...] = ()
    pin: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Parsed manifests are checked to be sorted; built ones are sorted here,
        # so that the newest release is always last.
        ordered = tuple(sorted(self.releases, key=lambda r: r.semver))
        if ordered != self.releases:
            object.__setattr__(self, "releases", ordered)

    def find(self, version: str) -> Release | None:
        """The release with ``version``'s precedence (build metadata aside)."""
        return self._by_version.get(Version.parse(version))

    @functools.cached_property
    def _by_version(self) -> dict[Version, Release]:
        return {r.semver: r for r in self.releases}

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = dict(self.extra)
        d["releases"] = [r.to_dict() for r in self.releases]
        if self.pin is not None:
            d["pin"] = self.pin
        return d


class Models(Mapping[str, ModelReleases]):
    """Model tag -> releases, parsed and checked per tag on first use."""

    def __init__(
        self,
        parsed: Mapping[str, ModelReleases] | None = None,
        raw: Mapping[str, Any] | None = None,
        raw_json: Mapping[str, bytes] | None = None,
    ) -> None:
        self._parsed: dict[str, ModelReleases] = dict(parsed or {})
        self._raw: dict[str, Any] = {k: v for k, v in (raw or {}).items() if k not in self._parsed}
        # Canonical bytes of raw tags, as the signed payload held them (see
        # canonical_manifest): an edit re-signs them without encoding them again.
        self._raw_json = {k: v for k, v in (raw_json or {}).items() if k in self._raw}

    def __getitem__(self, tag: str) -> ModelReleases:
        found = self._parsed.get(tag)
        if found is None:
            raw = self._raw[tag]  # KeyError for an unknown tag, as a Mapping should
            check_schema(raw, "manifest.schema.json", what=f"manifest: models/{tag}", part="model")
            found = self._parsed[tag] = _model_from_dict(tag, raw)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(sorted({*self._parsed, *self._raw}))

    def __len__(self) -> int:
        return len(self._parsed.keys() | self._raw.keys())

    def __contains__(self, tag: object) -> bool:
        return tag in self._parsed or tag in self._raw

    def updated(self, tag: str, entry: ModelReleases) -> Models:
        """A copy with ``tag`` replaced; the other tags stay unparsed."""
        return Models({**self._parsed, tag: entry}, self._raw, self._raw_json)

    def to_dict(self) -> dict[str, Any]:
        out = dict(self._raw)
        out.update((tag, m.to_dict()) for tag, m in self._parsed.items())
        return out

    def canonical_json(self) -> bytes:
        """RFC 8785 bytes of :meth:`to_dict`, reusing the signed bytes of untouched tags."""
        members = {k: v for k, v in self._raw_json.items() if k not in self._parsed}
        for tag, value in self.to_dict().items():
            if tag not in members:
                members[tag] = canonical_json_integral(value)
        return canonical_object(members)

    def check_parsed(self) -> None:
        """Re-check every tag read or edited in memory, as a reader will check it.

        A publisher calls this before signing, so that an edit cannot sign a
        manifest that devices would refuse.
        """
        for tag, entry in self._parsed.items():
            d = entry.to_dict()
            check_schema(d, "manifest.schema.json", what=f"manifest: models/{tag}", part="model")
            _model_from_dict(tag, d)

    def check_all(self) -> None:
        for tag in self:
            self[tag]

    def sha256s(self) -> set[str]:
        """Bundle digests of every release (read without parsing untouched tags)."""
        out = {r.sha256 for m in self._parsed.values() for r in m.releases}
        for tag, m in self._raw.items():
            if tag in self._parsed:
                continue
            out.update(str(r.get("sha256")) for r in m.get("releases", ()) if isinstance(r, dict))
        return out

    def release_count(self) -> int:
        """Releases in all tags (counted without parsing untouched ones)."""
        return sum(len(m.releases) for m in self._parsed.values()) + sum(
            len(m.get("releases", ())) for tag, m in self._raw.items() if tag not in self._parsed
        )


def tag_collision(tag: str, other: str, *, existing: bool) -> TagCollisionError:
    """The error for adding ``tag`` beside ``other``, a tag that differs from it only in
    case (``existing``: the manifest has ``other`` already; else the same edit adds it)."""
    where = "which the manifest already has" if existing else "which the same edit adds"
    return TagCollisionError(
        f"tag {tag} differs only in case from tag {other}, {where}: tags/{tag}/ and "
        f"tags/{other}/ would be one folder on case-insensitive file systems (macOS, Windows)",
        hint=f"publish under the exact name {other}, or choose a tag that differs in more "
        "than case",
    )


def check_added_tags(before: Models, after: Models) -> None:
    """Refuse a tag of ``after`` not in ``before`` whose name differs only in case
    (``str.casefold``) from another tag of ``after``: :func:`tag_collision`.

    Tag documents live in ``tags/<tag>/`` (§15.12): on a case-insensitive file
    system ``Card`` and ``card`` would share one folder, where their documents
    of one version are one file. Tags already in the manifest are left alone
    (an older publisher may have added such a pair; edits of them go on).
    """
    added = [tag for tag in after if tag not in before]
    if not added:
        return
    folded: dict[str, list[str]] = {}
    for tag in after:
        folded.setdefault(tag.casefold(), []).append(tag)
    for tag in added:
        # Name a tag the manifest already has before one the same edit adds.
        twins = sorted(
            (t for t in folded[tag.casefold()] if t != tag), key=lambda t: t not in before
        )
        if twins:
            raise tag_collision(tag, twins[0], existing=twins[0] in before)


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """The signed content of ``manifest.json``."""

    version: int
    expires: dt.datetime
    models: Models = field(default_factory=Models)
    bundle_keys: Mapping[str, str] = field(default_factory=dict)
    """Key id -> PEM of every key that signed a published bundle (``signers``)."""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.models, Models):
            object.__setattr__(self, "models", Models(self.models))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = dict(self.extra)
        d.update(
            _type=MANIFEST_KIND,
            formatVersion=FORMAT_VERSION,
            version=self.version,
            expires=format_time(self.expires),
            models=self.models.to_dict(),
        )
        if self.bundle_keys:
            d["bundleKeys"] = dict(sorted(self.bundle_keys.items()))
        return d

    def release_count(self) -> int:
        return self.models.release_count()

    def canonical_json(self) -> bytes:
        """RFC 8785 bytes of :meth:`to_dict` (what is signed), the same as
        ``canonical_json`` of it; the tags an edit left alone are not encoded again."""
        members = {
            name: canonical_json_integral(value)
            for name, value in self.to_dict().items()
            if name != "models"
        }
        members["models"] = self.models.canonical_json()
        return canonical_object(members)

    def bump(
        self,
        *,
        expires: dt.datetime,
        models: Models,
        bundle_keys: Mapping[str, str] | None = None,
        restart: bool = False,
    ) -> Manifest:
        """The next manifest version with new content (``restart``: version 1 instead).

        A tag that ``models`` adds may not differ only in case from another
        (:func:`check_added_tags`).

        A repository whose manifest reached 2**53-1 (a key thief's
        fast-forward, say) cannot go further: refused before anything is
        signed, since a manifest past it would brick every reader. The way out
        is a restart with a root rotation that revokes the keys that signed it.
        """
        keys = self.bundle_keys if bundle_keys is None else {**self.bundle_keys, **bundle_keys}
        check_added_tags(self.models, models)
        if not restart and self.version >= MAX_SAFE_INTEGER:
            raise VersionLimitError(
                f"manifest version {self.version} is the last one readers accept (2**53-1)",
                hint="rotate the root to new keys with `aoe-pack manifest rotate-root "
                "--restart-manifest-version` (docs/format.md §15.8.5)",
            )
        return replace(
            self,
            version=1 if restart else self.version + 1,
            expires=expires,
            models=models,
            bundle_keys=keys,
        )

    @classmethod
    def from_dict(cls, d: Any, *, raw_json: Mapping[str, bytes] | None = None) -> Manifest:
        """Check the top level now; each tag when first used (see the module docstring).

        ``raw_json``: each tag's canonical bytes in the signed payload, which
        :func:`canonical_manifest` found while checking it.
        """
        check_schema(d, "manifest.schema.json", what="manifest", part="top")
        models = Models(raw=d["models"], raw_json=raw_json)
        top = {"_type", "formatVersion", "version", "expires", "models", "bundleKeys"}
        return cls(
            version=d["version"],
            expires=parse_time(d["expires"]),
            models=models,
            bundle_keys=dict(d.get("bundleKeys", {})),
            extra={k: v for k, v in d.items() if k not in top},
        )


def worth_offering(delta_size: int, bundle_size: int) -> bool:
    """§16.4: a delta is offered, and used, only when smaller than the full bundle."""
    return 0 < delta_size < bundle_size


def delta_for(release: Release, installed_version: str | None) -> DeltaRef | None:
    """The delta a device that runs ``installed_version`` may download for ``release``.

    Only one from exactly that version (precedence: build metadata aside),
    and only one smaller than the bundle; any other is ignored (§16.4).
    """
    if installed_version is None:
        return None
    try:
        installed = Version.parse(installed_version)
    except VersionError:
        return None
    for d in release.deltas:
        if Version.parse(d.from_version) == installed and worth_offering(d.size, release.size):
            return d
    return None


def _check_deltas(tag: str, r: Release) -> None:
    """A delta's url names its digest, and there is at most one per base version.

    A delta not smaller than the bundle is no format error: devices ignore it
    (§16.4), and publishers never write one.
    """
    seen: set[Version] = set()
    for d in r.deltas:
        if d.url != f"deltas/{d.sha256}.aoed":
            raise RepositoryFormatError(
                f"manifest: {tag} {r.version}: delta url must name its sha256"
            )
        try:
            base = Version.parse(d.from_version)
        except VersionError as e:
            raise RepositoryFormatError(f"manifest: {tag} {r.version}: {e.message}") from e
        if base in seen or not base < r.semver:
            raise RepositoryFormatError(
                f"manifest: {tag} {r.version}: a delta from {d.from_version} must come from "
                "an earlier version, once"
            )
        seen.add(base)


def canonical_manifest(document: Any, entries: dict[str, bytes]) -> bytes:
    """RFC 8785 bytes of ``document`` (any JSON value), the same as ``canonical_json``;
    for a manifest, each tag's bytes go into ``entries`` on the way.

    A reader compares these bytes with the signed payload; when they match,
    ``entries`` holds the payload's own bytes of every tag, which a publisher
    signs again unchanged for each tag its edit leaves alone.
    """
    models = document.get("models") if isinstance(document, dict) else None
    if not isinstance(models, dict):
        return canonical_json_integral(document)
    found = {tag: canonical_json_integral(entry) for tag, entry in models.items()}
    members = {k: canonical_json_integral(v) for k, v in document.items() if k != "models"}
    members["models"] = canonical_object(found)
    entries.update(found)
    return canonical_object(members)


def _model_from_dict(tag: str, d: Mapping[str, Any]) -> ModelReleases:
    releases = tuple(Release.from_dict(r) for r in d["releases"])
    previous: Version | None = None
    for r in releases:
        try:
            v = Version.parse(r.version)
            code = v.version_code()
        except VersionError as e:
            raise RepositoryFormatError(f"manifest: {tag} {r.version}: {e.message}") from e
        if code != r.version_code:
            raise RepositoryFormatError(
                f"manifest: {tag} {r.version}: versionCode {r.version_code} should be {code}"
            )
        if previous is not None and not previous < v:
            raise RepositoryFormatError(
                f"manifest: {tag}: releases must be sorted by semver precedence without "
                f"duplicates ({previous} then {v})"
            )
        try:
            for app in (r.min_app_version, r.max_app_version):
                if app is not None:
                    Version.parse(app, what="app version")
        except VersionError as e:
            raise RepositoryFormatError(f"manifest: {tag} {r.version}: {e.message}") from e
        if r.url != f"bundles/{r.sha256}.aoe":
            raise RepositoryFormatError(f"manifest: {tag} {r.version}: url must name its sha256")
        _check_deltas(tag, r)
        previous = v
    pin = d.get("pin")
    model = ModelReleases(
        releases=releases,
        pin=pin,
        extra={k: v for k, v in d.items() if k not in ("releases", "pin")},
    )
    try:
        pinned = model.find(pin) if pin not in (None, LOCAL) else None
    except VersionError as e:
        raise RepositoryFormatError(f"manifest: {tag}: pin {pin!r} is not a version") from e
    if pin not in (None, LOCAL) and pinned is None:
        raise RepositoryFormatError(f"manifest: {tag} is pinned to {pin}, which is not a release")
    return model
