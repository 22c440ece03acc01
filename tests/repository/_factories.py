"""Builders for manifest and root tests: releases, manifests, signed envelopes.

Imported as ``from _factories import ...`` by the tests of this folder (pytest
puts a test file's folder on ``sys.path``). Everything is deterministic: a
release's digest and salt derive from its version, so two runs build the same
bytes; keys come from the session fixtures of ``tests/conftest.py``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from aoe_pack._crypto.asymmetric import PrivateKey, PublicKey
from aoe_pack.repository import envelope, root
from aoe_pack.repository.model import Manifest, ModelReleases, Release
from aoe_pack.repository.root import Root
from aoe_pack.versions import Version

TAG = "tag_x"
NOW = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
EXPIRES = NOW + dt.timedelta(days=30)


def digest_of(text: str) -> str:
    """A stable fake SHA-256 (hex) standing for the bundle named ``text``."""
    return hashlib.sha256(f"bundle {text}".encode()).hexdigest()


def salt_of(text: str) -> str:
    """A stable 32-hex-digit rollout salt."""
    return hashlib.sha256(f"salt {text}".encode()).hexdigest()[:32]


def release(
    version: str,
    *,
    channel: str = "stable",
    rollout_bp: int = 10_000,
    salt: str | None = None,
    runtimes: Sequence[str] = ("tflite",),
    required_runtimes: Sequence[str] = (),
    min_app_version: str | None = None,
    max_app_version: str | None = None,
    critical: bool = False,
    yanked: str | None = None,
    size: int = 4096,
    sha256: str | None = None,
    version_code: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Release:
    """A valid release of ``version`` (its versionCode, url and digest consistent)."""
    sha = sha256 or digest_of(version)
    return Release(
        version=version,
        version_code=(
            Version.parse(version).version_code() if version_code is None else version_code
        ),
        url=f"bundles/{sha}.aoe",
        size=size,
        sha256=sha,
        runtimes=tuple(runtimes),
        artifacts=tuple({"runtime": r} for r in runtimes),
        channel=channel,
        rollout_bp=rollout_bp,
        salt=salt or salt_of(version),
        min_app_version=min_app_version,
        max_app_version=max_app_version,
        required_runtimes=tuple(required_runtimes),
        critical=critical,
        yanked=yanked,
        extra=dict(extra or {}),
    )


def manifest(
    *releases: Release,
    version: int = 1,
    expires: dt.datetime = EXPIRES,
    tag: str = TAG,
    pin: str | None = None,
) -> Manifest:
    """A manifest holding ``releases`` (in the order given) under ``tag``."""
    return Manifest(
        version=version,
        expires=expires,
        models={tag: ModelReleases(releases=tuple(releases), pin=pin)},
    )


def sign_manifest(m: Manifest | Mapping[str, Any], keys: Sequence[PrivateKey]) -> bytes:
    """The ``manifest.json`` bytes of ``m`` (a Manifest or a raw payload dict)."""
    doc = m.to_dict() if isinstance(m, Manifest) else m
    return envelope.sign(envelope.MANIFEST_TYPE, doc, list(keys)).to_bytes()


def make_root(version: int, keys: Sequence[PublicKey], threshold: int = 1) -> Root:
    return root.new_root(version, list(keys), threshold)


def sign_root(r: Root, keys: Sequence[PrivateKey]) -> bytes:
    """The ``roots/N.root.json`` bytes of ``r`` signed by ``keys``."""
    return envelope.sign(envelope.ROOT_TYPE, r.to_dict(), list(keys)).to_bytes()


def parse_checked(doc: Any) -> Manifest:
    """``Manifest.from_dict`` with every model tag parsed and checked.

    The manifest checks its top level at once and each tag when first used;
    reading every tag forces the per-tag rules (versionCode, order, pin, url).
    """
    m = Manifest.from_dict(doc)
    for tag in m.models:
        m.models[tag]
    return m


def in_order(m: Manifest, *versions: str, tag: str = TAG) -> dict[str, Any]:
    """``m``'s payload with ``tag``'s releases listed in the order given.

    ``ModelReleases`` sorts what it is given, so an out-of-order manifest (an
    attacker's, or a buggy publisher's) can only be written as raw JSON.
    """
    doc = m.to_dict()
    by_version = {r["version"]: r for r in doc["models"][tag]["releases"]}
    doc["models"][tag]["releases"] = [by_version[v] for v in versions]
    return doc
