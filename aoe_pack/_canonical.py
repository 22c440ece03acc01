"""Canonical JSON (RFC 8785, JCS): the only bytes aoe-pack ever signs."""

from __future__ import annotations

from typing import Any

import rfc8785


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical UTF-8 bytes of a JSON value."""
    out: bytes = rfc8785.dumps(value)
    return out
