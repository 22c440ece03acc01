"""Canonical JSON (RFC 8785, JCS): the only bytes aoe-pack ever signs."""

from __future__ import annotations

import json
from typing import Any

import rfc8785


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical UTF-8 bytes of a JSON value."""
    out: bytes = rfc8785.dumps(value)
    return out


def canonical_json_integral(value: Any) -> bytes:
    """RFC 8785 bytes of a document that holds no floating-point number, ~15x faster.

    Without floats, JCS differs from ``json.dumps(sort_keys=True)`` with no
    whitespace and no ASCII escaping only in how keys sort: JCS sorts by UTF-16
    code units, Python by code points, which agree for ASCII. So when the output
    is ASCII it is the JCS form, and otherwise ``rfc8785`` does the work. The
    repository documents this serves refuse floats when parsed and never
    produce them (tests/manifest/test_canonical.py checks against ``rfc8785``).
    """
    out = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()
    return out if out.isascii() else canonical_json(value)
