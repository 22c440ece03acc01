"""Names, constants and limits of bundle format v1 (docs/format.md).

The container's own constants (media type, alignment) live in :mod:`container`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

PAYLOAD_TYPE = "application/vnd.aoe.bundle.manifest.v1+json"
PAYLOAD_PREFIX = "payload/"
MANIFEST_ENTRY = "aoe/manifest.json"
SIGNATURES_ENTRY = "aoe/signatures.json"

CHUNK_SIZE = 1 << 20
"""Stored bytes per integrity chunk; for encrypted payloads also the ciphertext segment size."""

AEAD = "AES-256-GCM"
DEFAULT_SOURCE_DATE_EPOCH = 315532800  # 1980-01-01T00:00:00Z, the first DOS timestamp


class FormatVersion(enum.StrEnum):
    """Bundle manifest format versions this aoe-pack reads."""

    V1 = "aoe-bundle/v1"


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Caps that keep a hostile bundle from exhausting memory or time."""

    max_manifest_bytes: int = 16 << 20
    max_signatures_bytes: int = 1 << 20
    max_signatures: int = 64
    max_entries: int = 10_000
    min_chunk_size: int = 1 << 16
    max_chunk_size: int = 1 << 24


DEFAULT_LIMITS = Limits()
