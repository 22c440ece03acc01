"""Values read from untrusted files, written into messages for people.

A Python repr (``b'config.j'``, ``None``, ``{'name': 'x'}``) is not something
a user should have to read. Bytes are shown as text in quotes, with anything
that is not printable ASCII escaped; JSON values as the JSON they were.
"""

from __future__ import annotations

import json

_PRINTABLE = frozenset(range(0x20, 0x7F)) - {ord("'"), ord("\\")}


def quote_bytes(data: bytes, limit: int = 40) -> str:
    """``data`` in single quotes: printable ASCII as it is, other bytes as ``\\xNN``."""
    shown = "".join(chr(b) if b in _PRINTABLE else f"\\x{b:02x}" for b in data[:limit])
    return f"'{shown}'" + ("…" if len(data) > limit else "")


def quote_json(value: object, limit: int = 80) -> str:
    """A value parsed from JSON, as JSON (``null``, ``true``, ``"text"``), cut at ``limit``."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
