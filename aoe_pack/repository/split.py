"""The manifest split per tag: ``index.json`` and ``tags/<tag>/<N>.json``.

A device needs one tag, yet ``manifest.json`` holds every release of every
tag. Publishers therefore derive from each manifest version N (which stays
their source of truth) two kinds of signed documents (docs/format.md §15.12):

- one **tag document** per tag whose entry changed at N: the entry exactly as
  the manifest holds it, and the ``bundleKeys`` its releases name. It is
  named by the tag and N, written once, and never expires on its own;
- the **index** at version N: the manifest's ``expires``, the SHA-256 of its
  signed payload (``manifestSha256``: which manifest N, of all that could bear
  that number, the index was made from) and, for every tag, the version of its
  current tag document (TUF's snapshot, with versions only: a tag document is
  authenticated by its own signatures, the index binds which version is
  current).

A device reads the index, checks it exactly as it checks a manifest (the same
floor: index N stands for manifest N), then the one tag document it names for
its tag, whose ``tag`` and ``version`` must be the ones it asked for
(mix-and-match). This module holds the values, the derivation and the checks;
no I/O.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aoe_pack.errors import (
    ExpiredMetadataError,
    MixAndMatchError,
    RepositoryFormatError,
    RollbackError,
    UntrustedMetadataError,
)
from aoe_pack.keys import SigningKey
from aoe_pack.repository import envelope
from aoe_pack.repository.model import (
    FORMAT_VERSION,
    Manifest,
    Models,
    check_schema,
    format_time,
    parse_time,
)
from aoe_pack.repository.root import Root

INDEX = "index.json"
"""The index's name in the repository (``aoe_pack.storage.store.INDEX``, which sits
above this layer)."""
INDEX_KIND = "aoe.repository.index"
TAG_KIND = "aoe.repository.tag"
RETIRED = b""
"""``index.json`` emptied by a publisher without keys to sign an index of the manifest
it installed: devices read ``manifest.json`` instead, as when there is no index."""


def tag_document_name(tag: str, version: int) -> str:
    """The name of ``tag``'s document at manifest version ``version``."""
    return f"tags/{tag}/{version}.json"


@dataclass(frozen=True, kw_only=True)
class Index:
    """The signed content of ``index.json``: which tag document is current, per tag."""

    version: int
    expires: dt.datetime
    manifest_sha256: str
    """SHA-256 (hex) of the signed payload of the manifest the index was made from
    (the digest a device's state records for a manifest, §15.6)."""
    tags: Mapping[str, int]
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = dict(self.extra)
        d.update(
            _type=INDEX_KIND,
            formatVersion=FORMAT_VERSION,
            version=self.version,
            expires=format_time(self.expires),
            manifestSha256=self.manifest_sha256,
            tags=dict(sorted(self.tags.items())),
        )
        return d

    @classmethod
    def from_dict(cls, d: Any) -> Index:
        check_schema(d, "index.schema.json", what=INDEX)
        ahead = sorted(t for t, v in d["tags"].items() if v > d["version"])
        if ahead:
            raise RepositoryFormatError(
                f"{INDEX}: tag {ahead[0]} names version {d['tags'][ahead[0]]}, after the "
                f"index's own version {d['version']}"
            )
        top = {"_type", "formatVersion", "version", "expires", "manifestSha256", "tags"}
        return cls(
            version=d["version"],
            expires=parse_time(d["expires"]),
            manifest_sha256=d["manifestSha256"],
            tags=dict(d["tags"]),
            extra={k: v for k, v in d.items() if k not in top},
        )


@dataclass(frozen=True, kw_only=True)
class TagDocument:
    """The signed content of ``tags/<tag>/<version>.json``: one tag's manifest entry."""

    tag: str
    version: int
    model: Mapping[str, Any]
    """The entry exactly as the manifest's ``models[tag]`` (checked when used)."""
    bundle_keys: Mapping[str, str] = field(default_factory=dict)
    previous: int | None = None
    """The version of the tag's document before this one, when the publisher built on it
    (publishers walk these to patch from a few versions back; devices ignore it)."""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return tag_document_name(self.tag, self.version)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = dict(self.extra)
        d.update(
            _type=TAG_KIND,
            formatVersion=FORMAT_VERSION,
            tag=self.tag,
            version=self.version,
            model=dict(self.model),
        )
        if self.bundle_keys:
            d["bundleKeys"] = dict(sorted(self.bundle_keys.items()))
        if self.previous is not None:
            d["previous"] = self.previous
        return d

    @classmethod
    def from_dict(cls, d: Any, *, what: str) -> TagDocument:
        check_schema(d, "tag.schema.json", what=what)
        top = {"_type", "formatVersion", "tag", "version", "model", "bundleKeys", "previous"}
        return cls(
            tag=d["tag"],
            version=d["version"],
            model=d["model"],
            bundle_keys=dict(d.get("bundleKeys", {})),
            previous=d.get("previous"),
            extra={k: v for k, v in d.items() if k not in top},
        )

    def as_manifest(self, index: Index) -> Manifest:
        """A manifest holding only this tag, at the index's version and expiry.

        The device's decision and its bundle keys (:func:`~aoe_pack.repository.trust.
        recorded_signers`) then run exactly as on ``manifest.json``: the entry is the
        one the manifest had, and its schema and rules are checked when first used.
        """
        return Manifest(
            version=index.version,
            expires=index.expires,
            models=Models(raw={self.tag: dict(self.model)}),
            bundle_keys=dict(self.bundle_keys),
        )


# --- derivation (publishers) --------------------------------------------------------


def _signers_named(entry: Any) -> set[str]:
    releases = entry.get("releases", ()) if isinstance(entry, dict) else ()
    return {k for r in releases if isinstance(r, dict) for k in r.get("signers", ())}


def tag_document(
    manifest: Manifest, tag: str, version: int, *, previous: int | None = None
) -> TagDocument:
    """``tag``'s entry in ``manifest`` as the tag document of ``version``; ``previous``
    is the version of the tag's document it follows, when known."""
    entry = manifest.models.to_dict()[tag]
    keys = {k: manifest.bundle_keys[k] for k in _signers_named(entry) if k in manifest.bundle_keys}
    return TagDocument(tag=tag, version=version, model=entry, bundle_keys=keys, previous=previous)


def changed_tags(old: Manifest, new: Manifest) -> set[str]:
    """Tags of ``new`` whose tag document would differ from the one ``old`` gave."""
    before, after = old.models.to_dict(), new.models.to_dict()
    out = set()
    for tag, entry in after.items():
        if before.get(tag) != entry:
            out.add(tag)
            continue
        named = _signers_named(entry)
        if {k: old.bundle_keys.get(k) for k in named} != {k: new.bundle_keys.get(k) for k in named}:
            out.add(tag)
    return out


def next_index(
    new: Manifest, *, manifest_sha256: str, previous: Index | None, changed: set[str]
) -> Index:
    """The index of ``new``, whose signed payload has the SHA-256 ``manifest_sha256``:
    tags in ``changed`` (or absent from ``previous``) at its version.

    Without a ``previous`` index to build on, every tag gets a new document.
    """
    tags = {
        tag: (
            previous.tags[tag]
            if previous is not None and tag not in changed and tag in previous.tags
            else new.version
        )
        for tag in new.models
    }
    return Index(
        version=new.version, expires=new.expires, manifest_sha256=manifest_sha256, tags=tags
    )


def sign_index(index: Index, keys: Sequence[SigningKey]) -> bytes:
    return envelope.sign(envelope.INDEX_TYPE, index.to_dict(), keys).to_bytes()


def sign_tag_document(doc: TagDocument, keys: Sequence[SigningKey]) -> bytes:
    return envelope.sign(envelope.TAG_TYPE, doc.to_dict(), keys).to_bytes()


# --- checks (devices, and publishers reading the previous index) -------------------


@dataclass(frozen=True)
class VerifiedIndex:
    """An index whose signatures (and, for devices, version and expiry) were checked."""

    index: Index
    envelope_bytes: bytes
    signed_by: frozenset[str]
    payload_sha256: str
    key_ids: frozenset[str] = frozenset()
    """Every key id the envelope lists (publishers compare signer sets)."""


def _require_threshold(env: envelope.Envelope, root: Root, what: str) -> frozenset[str]:
    good = env.valid_keyids(dict(root.keys))
    if len(good) < root.threshold:
        raise UntrustedMetadataError(
            f"{what} has {len(good)} of the {root.threshold} required signature(s) from "
            f"root version {root.version}'s keys",
            hint="the document was changed after signing, or signed with a key the root "
            "does not list",
        )
    return frozenset(good)


def verify_index(
    data: bytes,
    root: Root,
    *,
    now: dt.datetime,
    last_version: int | None = None,
    last_sha256: str | None = None,
    check_expiry: bool = True,
) -> VerifiedIndex:
    """Check ``index.json`` as a manifest is checked (§15.6 steps 5-9).

    ``last_version`` is the device's floor (shared with manifest.json, whose
    version N the index of version N stands for); ``last_sha256`` the payload
    digest of the index it accepted at that version, if it accepted one.
    """
    env = envelope.parse(data, envelope.INDEX_TYPE, what=INDEX)
    good = _require_threshold(env, root, INDEX)
    index = Index.from_dict(env.document())
    if last_version is not None and index.version < last_version:
        raise RollbackError(
            f"{INDEX} version {index.version} is older than version {last_version}, which "
            "this client already accepted",
            hint="a mirror or attacker is serving an old index; keep the current model",
        )
    digest = hashlib.sha256(env.payload).hexdigest()
    if index.version == last_version and last_sha256 is not None and digest != last_sha256:
        raise RollbackError(
            f"{INDEX} version {index.version} is not the version {last_version} this client "
            "already accepted: same version, different content",
            hint="a replayed or conflicting index; keep the current model and check again later",
        )
    if check_expiry and index.expires <= now:
        raise ExpiredMetadataError(
            f"{INDEX} version {index.version} expired at {format_time(index.expires)}",
            hint="the repository must be re-signed (`aoe-pack manifest resign`); a frozen "
            "repository cannot hold devices back",
        )
    ids = frozenset(s.keyid for s in env.signatures)
    return VerifiedIndex(index, data, good, digest, ids)


def verify_tag_document(data: bytes, root: Root, *, tag: str, version: int) -> TagDocument:
    """Check ``tags/<tag>/<version>.json``: envelope, signatures, schema, then that it is
    that tag at that version (another one served under this name is mix-and-match)."""
    return verify_tag_envelope(data, root, tag=tag, version=version).document


@dataclass(frozen=True)
class VerifiedTag:
    """A tag document whose envelope, signatures and schema were checked."""

    document: TagDocument
    payload: bytes
    """The signed payload bytes (a tag document patch's prefix, §15.12)."""
    envelope_bytes: bytes


def verify_tag_envelope(data: bytes, root: Root, *, tag: str, version: int | None) -> VerifiedTag:
    """:func:`verify_tag_document`, also returning the payload; ``version=None`` takes
    the document of ``tag`` at whatever version it is (a device's cached copy)."""
    name = tag_document_name(tag, version) if version is not None else f"tags/{tag}/<cached>"
    env = envelope.parse(data, envelope.TAG_TYPE, what=name)
    _require_threshold(env, root, name)
    doc = TagDocument.from_dict(env.document(), what=name)
    if doc.tag != tag or (version is not None and doc.version != version):
        raise MixAndMatchError(
            f"{name} holds the document of tag {doc.tag} at version {doc.version}",
            hint="the server answers this name with another tag document (a mirror or "
            "attacker mixing documents); keep the current model",
        )
    return VerifiedTag(doc, env.payload, data)
