"""Canonical JSON (RFC 8785, JCS): the only bytes aoe-pack ever signs."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import rfc8785

MAX_SAFE_INTEGER = 2**53 - 1
"""The largest integer an RFC 8785 number (an IEEE double) holds exactly.

Every signed document refuses larger integers, and so every version counter
stops here.
"""


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
    produce them (tests/repository/test_canonical.py checks against ``rfc8785``).
    """
    out = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()
    return out if out.isascii() else canonical_json(value)


def canonical_object(members: Mapping[str, bytes]) -> bytes:
    """RFC 8785 bytes of the object whose members' values are the canonical ``members``.

    The same bytes as :func:`canonical_json` of the object itself: JCS writes
    an object as its members sorted by the UTF-16 code units of their names
    (big-endian UTF-16 bytes compare the same way), each name a canonical
    string, each value canonical on its own. A caller that holds some values'
    canonical bytes already (a manifest's untouched tags) skips encoding them.
    """
    names = sorted(members, key=lambda name: name.encode("utf-16-be"))
    return b"{%s}" % b",".join(
        b"%s:%s" % (canonical_json_integral(name), members[name]) for name in names
    )


_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:(?P<end>")|\\?\Z)', re.DOTALL)
"""A string, or one left open to the end of the text: every match starting at a
quote succeeds, so a scan never restarts inside a string (which made the plain
pattern quadratic on ``"\"\"\"...`` that never closes)."""


def _strings_replaced(chunk: bytes) -> tuple[bytes, int | None]:
    """``chunk`` with each complete string made ``s``, and where one left open starts."""
    open_at: int | None = None

    def one(m: re.Match[bytes]) -> bytes:
        nonlocal open_at
        if m.group("end"):
            return b"s"
        open_at = m.start()  # the last match: it runs to the end of the chunk
        return b""

    return _STRING.sub(one, chunk), open_at


_JSON_SPACE = b" \t\n\r"
_WINDOW = 1 << 18


def json_value_count(text: bytes, *, window: int = _WINDOW) -> int:
    """How many values ``json.loads(text)`` builds, member names included, building none.

    A reader checks this against a limit before parsing, because memory follows
    the number of values, not the bytes: ``{}`` is 3 bytes of JSON and 64 of
    Python dict, so a 16 MiB document can become 600 MB of objects. Exact for
    JSON text; for other text, at least what a parser builds before it fails.

    With every string made one byte and whitespace gone, every value but the
    outermost follows a ``[``, ``,`` or ``:``, and every member name a ``{`` or
    ``,``, except in ``[]`` and ``{}``: 1 + commas + colons + non-empty
    containers. The text goes through in windows of about ``window`` bytes (a
    string is never cut), so the count itself needs memory of that order.
    """
    count, prev, pos, size = 1, b"", 0, window
    while pos < len(text):
        end = min(pos + size, len(text))
        bare, open_at = _strings_replaced(text[pos:end])
        if open_at is not None and end < len(text):  # a string goes on past the window
            if open_at == 0:  # one string longer than the window: widen it
                size *= 2
                continue
            end = pos + open_at  # the next window starts at that string
        bare = bare.translate(None, _JSON_SPACE)
        if bare:
            containers = bare.count(b"[") + bare.count(b"{")
            empty = bare.count(b"[]") + bare.count(b"{}") + (prev + bare[:1] in (b"[]", b"{}"))
            count += bare.count(b",") + bare.count(b":") + containers - empty
            prev = bare[-1:]
        pos, size = end, window
    return count


def json_values_beyond(text: bytes, limit: int) -> int | None:
    """The number of JSON values in ``text`` (see :func:`json_value_count`) if above ``limit``.

    None when it is not. Counting brackets, commas and colons anywhere, strings
    included, bounds the count from above at C speed; only text above the limit
    by that bound, which honest documents never come near, is counted exactly.
    """
    bound = 1 + sum(text.count(c) for c in (b",", b":", b"[", b"{"))
    if bound <= limit:
        return None
    count = json_value_count(text)
    return count if count > limit else None
