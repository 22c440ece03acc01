"""The bundle manifest: the document every signature covers.

``BundleManifest.to_dict()`` / ``from_dict()`` are symmetric; unknown fields
are kept in ``extra`` so a newer writer's additions survive a round trip. The
signed bytes are ``canonical_json(manifest.to_dict())``; a reader parses
and then re-serialises and requires the same bytes, so there is exactly one
encoding of each manifest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import semver

from aoe_pack._crypto.wrap import HPKE_KEMS
from aoe_pack._jcs import MAX_SAFE_INTEGER, canonical_json
from aoe_pack._quote import quote_json
from aoe_pack.bundle.format import AEAD, DEFAULT_LIMITS, PAYLOAD_PREFIX, FormatVersion, Limits
from aoe_pack.errors import LimitExceededError, ManifestError, UnsupportedVersionError
from aoe_pack.urls import url_problem

_HEX64 = re.compile(r"[0-9a-f]{64}")
MAX_MANIFEST_VALUES = 1_000_000
"""JSON values (member names included) a manifest may hold; it is counted before parsing.

Memory follows values, not bytes (``{}`` is 3 bytes of JSON, 64 of dict), so
the 16 MiB cap alone let a manifest become 600 MB of objects. The largest
honest manifest: 10 000 files of ~26 values, plus one chunk digest per 64 KiB
of a < 4 GiB bundle (65 536 + 10 000): ~350 000 values, leaving room for
config and provenance. A million costs about 80 MB at worst.
"""
# The KEM names a manifest may carry; a recipient entry names the KEM its key uses.
HPKE_KEM_NAMES = tuple(sorted({name for name, _ in HPKE_KEMS.values()}))
_HEX14 = re.compile(r"[0-9a-f]{14}")
# The config schema's tag rule (semver checks the version); both keep NUL out
# of the HPKE info string.
_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True, kw_only=True)
class ModelIdentity:
    """Which model and version a bundle is; signatures bind to it."""

    tag: str
    name: str
    version: str
    runtime: str
    update_url: str | None = None
    """Where devices read this model's repository (the config's ``updateURL``), if given.

    A hint of where to look, never of what to trust: a device verifies the
    repository with the root shipped in the app (docs/format.md §5.2, §15.6).
    """
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = {
            **self.extra,
            "tag": self.tag,
            "name": self.name,
            "version": self.version,
            "runtime": self.runtime,
        }
        if self.update_url is not None:
            d["updateURL"] = self.update_url
        return d


@dataclass(frozen=True, kw_only=True)
class StoredBytes:
    """The bytes of one payload as they sit in the ZIP (ciphertext when encrypted)."""

    size: int
    crc32: int
    chunk_size: int
    chunks: tuple[str, ...]
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.extra,
            "size": self.size,
            "crc32": self.crc32,
            "chunkSize": self.chunk_size,
            "chunks": list(self.chunks),
        }


@dataclass(frozen=True, kw_only=True)
class PayloadFile:
    """One model file: its plaintext identity and how it is stored."""

    path: str
    role: str
    size: int
    sha256: str
    stored: StoredBytes
    nonce_prefix: str | None = None
    runtime: str | None = None
    variant: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def entry(self) -> str:
        """The ZIP entry name holding this file."""
        return PAYLOAD_PREFIX + self.path

    @property
    def encrypted(self) -> bool:
        return self.nonce_prefix is not None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            **self.extra,
            "path": self.path,
            "role": self.role,
            "size": self.size,
            "sha256": self.sha256,
            "stored": self.stored.to_dict(),
        }
        for key, value in (
            ("noncePrefix", self.nonce_prefix),
            ("runtime", self.runtime),
            ("variant", self.variant),
        ):
            if value is not None:
                d[key] = value
        return d


@dataclass(frozen=True, kw_only=True)
class Recipient:
    """The data key, wrapped for one key holder."""

    type: str  # "hpke" or "kek"
    keyid: str
    wrapped: str  # base64
    kem: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = {**self.extra, "type": self.type, "keyid": self.keyid, "wrapped": self.wrapped}
        if self.kem is not None:
            d["kem"] = self.kem
        return d


@dataclass(frozen=True, kw_only=True)
class Encryption:
    """How payloads are encrypted and who can open the data key."""

    aead: str
    segment_size: int
    recipients: tuple[Recipient, ...]
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.extra,
            "aead": self.aead,
            "segmentSize": self.segment_size,
            "recipients": [r.to_dict() for r in self.recipients],
        }


@dataclass(frozen=True, kw_only=True)
class BundleManifest:
    """Everything a verifier needs, in the signed document."""

    format: FormatVersion
    model: ModelIdentity
    files: tuple[PayloadFile, ...]
    config: Mapping[str, Any]
    provenance: Mapping[str, Any]
    source_date_epoch: int
    encryption: Encryption | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = dict(self.extra)
        d.update(
            {
                "format": self.format.value,
                "model": self.model.to_dict(),
                "files": [f.to_dict() for f in self.files],
                "config": dict(self.config),
                "provenance": dict(self.provenance),
                "sourceDateEpoch": self.source_date_epoch,
            }
        )
        if self.encryption is not None:
            d["encryption"] = self.encryption.to_dict()
        return d

    def canonical_bytes(self) -> bytes:
        """The exact bytes stored as ``aoe/manifest.json`` and signed."""
        return canonical_json(self.to_dict())

    def file(self, path: str) -> PayloadFile:
        for f in self.files:
            if f.path == path:
                return f
        raise KeyError(path)

    @classmethod
    def from_dict(cls, d: Any, *, limits: Limits = DEFAULT_LIMITS) -> BundleManifest:
        """Parse and check a manifest; ManifestError names the first bad field."""
        r = _Reader(d, "manifest")
        fmt = r.text("format")
        try:
            version = FormatVersion(fmt)
        except ValueError:
            raise UnsupportedVersionError(
                f"manifest format {fmt!r} is not supported by this aoe-pack "
                f"(reads {', '.join(v.value for v in FormatVersion)})",
                hint="upgrade aoe-pack",
            ) from None
        m = r.obj("model")
        model = ModelIdentity(
            tag=m.pattern("tag", _TAG, "a tag: a letter or digit, then [A-Za-z0-9._-]"),
            name=m.text("name"),
            version=m.semver("version"),
            runtime=m.text("runtime"),
            update_url=m.opt_url("updateURL"),
            extra=m.rest("tag", "name", "version", "runtime", "updateURL"),
        )
        enc = None
        if "encryption" in r.d:
            e = r.obj("encryption")
            enc = Encryption(
                aead=e.enum("aead", (AEAD,)),
                segment_size=e.chunk_size("segmentSize", limits),
                recipients=tuple(_recipient(x) for x in e.objects("recipients")),
                extra=e.rest("aead", "segmentSize", "recipients"),
            )
            order = [(x.type, x.keyid) for x in enc.recipients]
            # A key id at most once, whatever the type: a reader picks the recipient by
            # key id alone, so a second entry for it would be a second reading (§5.2.2).
            unique = len({x.keyid for x in enc.recipients}) == len(order)
            if not order or order != sorted(order) or not unique:
                raise ManifestError(
                    "manifest.encryption.recipients must be non-empty, sorted by type and "
                    "key id, without duplicates (each key id at most once)"
                )
        # Before wrapping any item: the container holds at most max_entries payloads.
        files = tuple(_payload(x, enc, limits) for x in r.objects("files", limits.max_entries))
        paths = [f.path for f in files]
        if paths != sorted(set(paths)):
            raise ManifestError("manifest.files must be sorted by path without duplicates")
        known = {
            "format",
            "model",
            "files",
            "config",
            "provenance",
            "sourceDateEpoch",
            "encryption",
        }
        return cls(
            format=version,
            model=model,
            files=files,
            config=r.obj("config").d,
            provenance=r.obj("provenance").d,
            source_date_epoch=r.integer("sourceDateEpoch"),
            encryption=enc,
            extra={k: v for k, v in r.d.items() if k not in known},
        )


def _recipient(r: _Reader) -> Recipient:
    kind = r.enum("type", ("hpke", "kek"))
    return Recipient(
        type=kind,
        keyid=r.hex64("keyid"),
        wrapped=r.text("wrapped"),
        kem=r.enum("kem", HPKE_KEM_NAMES) if kind == "hpke" else None,
        extra=r.rest("type", "keyid", "wrapped", "kem"),
    )


def _payload(r: _Reader, enc: Encryption | None, limits: Limits) -> PayloadFile:
    s = r.obj("stored")
    chunk_size = s.chunk_size("chunkSize", limits)
    stored = StoredBytes(
        size=s.integer("size"),
        crc32=s.integer("crc32", maximum=0xFFFFFFFF),
        chunk_size=chunk_size,
        chunks=tuple(s.texts("chunks")),
        extra=s.rest("size", "crc32", "chunkSize", "chunks"),
    )
    expected_chunks = max(1, -(-stored.size // chunk_size))
    if len(stored.chunks) != expected_chunks or not all(_HEX64.fullmatch(c) for c in stored.chunks):
        raise ManifestError(
            f"{s.where}.chunks must hold {expected_chunks} lowercase hex SHA-256 digests"
        )
    prefix = r.d.get("noncePrefix")
    if (prefix is not None) != (enc is not None):
        raise ManifestError(f"{r.where}.noncePrefix must be present exactly when encrypted")
    if prefix is not None:
        prefix = r.pattern("noncePrefix", _HEX14, "14 lowercase hex characters")
        assert enc is not None
        if chunk_size != enc.segment_size:
            raise ManifestError(f"{s.where}.chunkSize must equal encryption.segmentSize")
    return PayloadFile(
        path=r.text("path"),
        role=r.text("role"),
        size=r.integer("size"),
        sha256=r.hex64("sha256"),
        stored=stored,
        nonce_prefix=prefix,
        runtime=r.opt_text("runtime"),
        variant=r.opt_text("variant"),
        extra=r.rest(
            "path", "role", "size", "sha256", "stored", "noncePrefix", "runtime", "variant"
        ),
    )


class _Reader:
    """Typed access to one JSON object, with the path for error messages."""

    def __init__(self, d: Any, where: str) -> None:
        if not isinstance(d, dict):
            raise ManifestError(f"{where} must be an object")
        self.d: Any = d
        self.where = where

    def _get(self, key: str) -> Any:
        if key not in self.d:
            raise ManifestError(f"{self.where}.{key} is missing")
        return self.d[key]

    def text(self, key: str) -> str:
        v = self._get(key)
        if not isinstance(v, str) or not v:
            raise ManifestError(f"{self.where}.{key} must be a non-empty string")
        return v

    def opt_text(self, key: str) -> str | None:
        return self.text(key) if key in self.d else None

    def opt_url(self, key: str) -> str | None:
        """An optional repository address (:mod:`aoe_pack.urls`); a bad one is ``manifest``."""
        if key not in self.d:
            return None
        v = self.text(key)
        problem = url_problem(v)
        if problem is not None:
            raise ManifestError(f"{self.where}.{key} {problem}")
        return v

    def integer(self, key: str, *, maximum: int = MAX_SAFE_INTEGER) -> int:
        v = self._get(key)
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= maximum:
            raise ManifestError(f"{self.where}.{key} must be an integer in [0, {maximum}]")
        return v

    def chunk_size(self, key: str, limits: Limits) -> int:
        v = self.integer(key)
        if v & (v - 1) or not limits.min_chunk_size <= v <= limits.max_chunk_size:
            raise ManifestError(
                f"{self.where}.{key} must be a power of two in "
                f"[{limits.min_chunk_size}, {limits.max_chunk_size}]"
            )
        return v

    def enum(self, key: str, allowed: tuple[str, ...]) -> str:
        v = self.text(key)
        if v not in allowed:
            raise ManifestError(
                f"{self.where}.{key} is {quote_json(v)}; expected one of {', '.join(allowed)}"
            )
        return v

    def pattern(self, key: str, rx: re.Pattern[str], what: str) -> str:
        v = self.text(key)
        if not rx.fullmatch(v):
            raise ManifestError(f"{self.where}.{key} must be {what}")
        return v

    def semver(self, key: str) -> str:
        v = self.text(key)
        if not semver.Version.is_valid(v):
            raise ManifestError(f"{self.where}.{key} must be a semantic version such as 1.2.0")
        return v

    def hex64(self, key: str) -> str:
        return self.pattern(key, _HEX64, "64 lowercase hex characters")

    def rest(self, *known: str) -> dict[str, Any]:
        """Fields this reader does not know: kept, so a newer writer's additions survive."""
        return {k: v for k, v in self.d.items() if k not in known}

    def obj(self, key: str) -> _Reader:
        return _Reader(self._get(key), f"{self.where}.{key}")

    def objects(self, key: str, limit: int | None = None) -> list[_Reader]:
        v = self._get(key)
        if not isinstance(v, list):
            raise ManifestError(f"{self.where}.{key} must be a list")
        if limit is not None and len(v) > limit:
            raise LimitExceededError(
                f"{self.where}.{key} lists {len(v)} {key}; a bundle holds at most {limit}"
            )
        return [_Reader(x, f"{self.where}.{key}[{i}]") for i, x in enumerate(v)]

    def texts(self, key: str) -> list[str]:
        v = self._get(key)
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise ManifestError(f"{self.where}.{key} must be a list of strings")
        return [str(x) for x in v]
