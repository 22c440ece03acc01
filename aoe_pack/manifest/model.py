"""The repository manifest as values: releases per model tag.

Parsing checks the JSON Schema (``schemas/manifest.schema.json``) and then the
rules a schema cannot state: each ``versionCode`` matches its version, releases
are sorted by semver precedence with no two equal, and a pin names a release.
Unknown fields are kept (``extra``) so that a newer publisher's additions
survive an older publisher's edit.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.resources
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from aoe_pack.errors import RepositoryFormatError, VersionError
from aoe_pack.manifest.versions import Version

MANIFEST_KIND = "aoe.repository.manifest"
FORMAT_VERSION = 1
LOCAL = "local"
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def format_time(t: dt.datetime) -> str:
    """RFC 3339 UTC with seconds, the only time format in signed documents."""
    return t.astimezone(dt.UTC).strftime(_TIME_FORMAT)


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=dt.UTC)


@functools.cache
def _validator(name: str) -> Any:
    from jsonschema import Draft202012Validator

    resource = importlib.resources.files("aoe_pack") / "schemas" / name
    return Draft202012Validator(json.loads(resource.read_text(encoding="utf-8")))


def check_schema(document: Any, schema: str, *, what: str) -> None:
    """Raise RepositoryFormatError naming the first schema violation."""
    error = next(iter(_validator(schema).iter_errors(document)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise RepositoryFormatError(f"{what}: {where}: {error.message[:300]}")


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
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def semver(self) -> Version:
        return Version.parse(self.version)

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
            rollout={"basisPoints": self.rollout_bp, "salt": self.salt},
            requiredRuntimes=list(self.required_runtimes),
            critical=self.critical,
        )
        if self.min_app_version is not None:
            d["minAppVersion"] = self.min_app_version
        if self.max_app_version is not None:
            d["maxAppVersion"] = self.max_app_version
        if self.yanked is not None:
            d["yanked"] = {"reason": self.yanked}
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
            extra={k: v for k, v in d.items() if k not in known},
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
]


@dataclass(frozen=True, kw_only=True)
class ModelReleases:
    """Every release of one model tag, lowest version first, and its pin."""

    releases: tuple[Release, ...] = ()
    pin: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def find(self, version: str) -> Release | None:
        wanted = Version.parse(version)
        return next((r for r in self.releases if r.semver == wanted), None)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = dict(self.extra)
        d["releases"] = [r.to_dict() for r in self.releases]
        if self.pin is not None:
            d["pin"] = self.pin
        return d


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """The signed content of ``manifest.json``."""

    version: int
    expires: dt.datetime
    models: Mapping[str, ModelReleases]
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = dict(self.extra)
        d.update(
            _type=MANIFEST_KIND,
            formatVersion=FORMAT_VERSION,
            version=self.version,
            expires=format_time(self.expires),
            models={tag: m.to_dict() for tag, m in sorted(self.models.items())},
        )
        return d

    def release_count(self) -> int:
        return sum(len(m.releases) for m in self.models.values())

    def bump(self, *, expires: dt.datetime, models: Mapping[str, ModelReleases]) -> Manifest:
        """The next manifest version with new content."""
        return replace(self, version=self.version + 1, expires=expires, models=dict(models))

    @classmethod
    def from_dict(cls, d: Any) -> Manifest:
        check_schema(d, "manifest.schema.json", what="manifest")
        models = {tag: _model_from_dict(tag, m) for tag, m in d["models"].items()}
        top = {"_type", "formatVersion", "version", "expires", "models"}
        return cls(
            version=d["version"],
            expires=parse_time(d["expires"]),
            models=models,
            extra={k: v for k, v in d.items() if k not in top},
        )


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
        if r.url != f"bundles/{r.sha256}.aoe":
            raise RepositoryFormatError(f"manifest: {tag} {r.version}: url must name its sha256")
        previous = v
    pin = d.get("pin")
    model = ModelReleases(
        releases=releases,
        pin=pin,
        extra={k: v for k, v in d.items() if k not in ("releases", "pin")},
    )
    if pin not in (None, LOCAL) and model.find(pin) is None:
        raise RepositoryFormatError(f"manifest: {tag} is pinned to {pin}, which is not a release")
    return model
