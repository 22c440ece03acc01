"""The manifest of a delta (docs/format.md §16.2): what a delta is from and to.

Its canonical JSON is ``aoe/manifest.json`` of the delta container and what
its signatures cover (DSSE payload type ``DELTA_PAYLOAD_TYPE``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aoe_pack._jcs import canonical_json, json_values_beyond
from aoe_pack.bundle import _patch
from aoe_pack.bundle.container import check_name
from aoe_pack.bundle.format import DEFAULT_LIMITS, Limits
from aoe_pack.bundle.manifest import (
    MAX_MANIFEST_VALUES,
    BundleManifest,
    Encryption,
    ModelIdentity,
    PayloadFile,
    _Reader,
)
from aoe_pack.errors import ManifestError, UnsafeEntryError, UnsupportedVersionError

MEDIA_TYPE_DELTA_V1 = b"application/vnd.aoe.bundle.delta.v1+zip"
DELTA_FORMAT = "aoe-delta/v1"
DELTA_PAYLOAD_TYPE = "application/vnd.aoe.delta.manifest.v1+json"
COPY = "copy"
PATCH = _patch.METHOD


@dataclass(frozen=True, kw_only=True)
class FileDigest:
    """A file of a release: path, size and SHA-256 (hex), as its bundle signed them."""

    path: str
    size: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256}


@dataclass(frozen=True, kw_only=True)
class TargetFile:
    """How to make one target file: copied from a base file, or patched from one.

    ``base`` is the base file's path; None for a patch from nothing (a new file).
    """

    path: str
    size: int
    sha256: str
    method: str
    base: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "path": self.path,
            "size": self.size,
            "sha256": self.sha256,
            "method": self.method,
        }
        if self.base is not None:
            d["base"] = self.base
        return d


@dataclass(frozen=True, kw_only=True)
class DeltaManifest:
    """The signed document of a delta (``aoe/manifest.json`` in the container)."""

    model: ModelIdentity
    """The target's identity: tag and version bind the data key wraps (§7.7)."""
    base_version: str
    base_bundle_sha256: str
    base_files: tuple[FileDigest, ...]
    target_bundle_sha256: str
    target_files: tuple[TargetFile, ...]
    files: tuple[PayloadFile, ...]
    """The patch entries, as a bundle's payload files (size and SHA-256 of the patch)."""
    source_date_epoch: int
    encryption: Encryption | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = dict(self.extra)
        d.update(
            format=DELTA_FORMAT,
            model=self.model.to_dict(),
            base={
                "version": self.base_version,
                "bundleSha256": self.base_bundle_sha256,
                "files": [f.to_dict() for f in self.base_files],
            },
            target={
                "bundleSha256": self.target_bundle_sha256,
                "files": [f.to_dict() for f in self.target_files],
            },
            files=[f.to_dict() for f in self.files],
            sourceDateEpoch=self.source_date_epoch,
        )
        if self.encryption is not None:
            d["encryption"] = self.encryption.to_dict()
        return d

    def canonical_bytes(self) -> bytes:
        return canonical_json(self.to_dict())

    @classmethod
    def parse(cls, data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> DeltaManifest:
        """Parse and check the canonical bytes of a delta manifest."""
        values = json_values_beyond(data, MAX_MANIFEST_VALUES)
        if values is not None:
            raise ManifestError(f"the delta manifest holds more than {MAX_MANIFEST_VALUES} values")
        try:
            doc: Any = json.loads(data, parse_float=_no_float, parse_constant=_no_float)
        except (ValueError, RecursionError) as e:
            raise ManifestError(f"the delta manifest is not valid JSON: {e}") from e
        manifest = cls._from_dict(doc, limits)
        if manifest.canonical_bytes() != data:
            raise ManifestError("the delta manifest is not in canonical form (RFC 8785)")
        return manifest

    @classmethod
    def _from_dict(cls, d: Any, limits: Limits) -> DeltaManifest:
        r = _Reader(d, "delta")
        fmt = r.text("format")
        if fmt != DELTA_FORMAT:
            raise UnsupportedVersionError(
                f"delta format {fmt!r} is not supported by this aoe-pack (reads {DELTA_FORMAT})",
                hint="upgrade aoe-pack; a device falls back to the full bundle",
            )
        # The bundle parser checks model and encryption the same way: reuse it
        # on the parts the two documents share.
        shared = {k: d[k] for k in ("model", "encryption") if k in d}
        probe = BundleManifest.from_dict(
            {
                **shared,
                "format": "aoe-bundle/v1",
                "files": d.get("files", []),
                "config": {},
                "provenance": {},
                "sourceDateEpoch": 0,
            },
            limits=limits,
        )
        base, target = r.obj("base"), r.obj("target")
        base_files = tuple(_digest(x) for x in base.objects("files", limits.max_entries))
        target_files = tuple(_target(x) for x in target.objects("files", limits.max_entries))
        manifest = cls(
            model=probe.model,
            base_version=base.semver("version"),
            base_bundle_sha256=base.hex64("bundleSha256"),
            base_files=base_files,
            target_bundle_sha256=target.hex64("bundleSha256"),
            target_files=target_files,
            files=probe.files,
            source_date_epoch=r.integer("sourceDateEpoch"),
            encryption=probe.encryption,
            extra=r.rest(
                "format", "model", "base", "target", "files", "sourceDateEpoch", "encryption"
            ),
        )
        manifest._check()
        return manifest

    def _check(self) -> None:
        """The rules a reader relies on: safe, sorted, unique paths; one patch per patched file."""
        for group, what in ((self.base_files, "base"), (self.target_files, "target")):
            paths = [f.path for f in group]
            for p in paths:
                try:
                    check_name(p)
                except UnsafeEntryError as e:
                    raise ManifestError(f"delta {what} file: {e.message}") from e
            if paths != sorted(set(paths)):
                raise ManifestError(f"delta {what}.files must be sorted by path without duplicates")
        base = {f.path for f in self.base_files}
        patched = [t.path for t in self.target_files if t.method == PATCH]
        if [f.path for f in self.files] != patched:
            raise ManifestError("delta files must be exactly one patch per patched target file")
        for t in self.target_files:
            if t.base is not None and t.base not in base:
                raise ManifestError(f"delta target {t.path} names base {t.base}, not a base file")
            if t.method == COPY and t.base is None:
                raise ManifestError(f"delta target {t.path} is a copy of no base file")


def _no_float(text: str) -> Any:
    raise ManifestError(f"the delta manifest holds {text[:40]}; it holds integers only")


def _digest(r: _Reader) -> FileDigest:
    return FileDigest(path=r.text("path"), size=r.integer("size"), sha256=r.hex64("sha256"))


def _target(r: _Reader) -> TargetFile:
    return TargetFile(
        path=r.text("path"),
        size=r.integer("size"),
        sha256=r.hex64("sha256"),
        method=r.enum("method", (COPY, PATCH)),
        base=r.opt_text("base"),
    )
