"""Parse config text and find where a JSON pointer sits in the file as written.

Line numbers always refer to the file the user edits, even after a legacy
repair inserted quotes into the text (the repairs never add a line break, so
only columns on a repaired line need shifting back).
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aoe_pack.config._report import Violation


def pointer(*tokens: str | int) -> str:
    """Join tokens into an RFC 6901 JSON pointer ("" for none)."""
    return "".join("/" + str(t).replace("~", "~0").replace("/", "~1") for t in tokens)


def json_value(value: Any) -> str:
    """``value`` as it would be written in JSON, for messages."""
    return json.dumps(value, ensure_ascii=False)


def split_pointer(ptr: str) -> list[str]:
    """The unescaped tokens of an RFC 6901 pointer."""
    if not ptr:
        return []
    return [t.replace("~1", "/").replace("~0", "~") for t in ptr[1:].split("/")]


def parent_pointer(ptr: str) -> str:
    """The pointer one level up (the root is its own parent)."""
    return ptr.rsplit("/", 1)[0] if ptr else ""


class _Object(dict[str, Any]):
    """A parsed JSON object that remembers keys it saw more than once."""

    duplicates: list[str]


def _object_hook(pairs: list[tuple[str, Any]]) -> _Object:
    obj = _Object()
    obj.duplicates = []
    for key, value in pairs:
        if key in obj:
            obj.duplicates.append(key)
        obj[key] = value
    return obj


class _NonStandardConstantError(ValueError):
    """NaN or Infinity: Python's json accepts them, JSON does not."""


def _reject_constant(name: str) -> Any:
    raise _NonStandardConstantError(name)


MAX_DEPTH = 64
"""Configs are a few levels deep; the walks over a parsed config recurse."""


class _TooDeepError(ValueError):
    """Arrays and objects nested beyond :data:`MAX_DEPTH`."""


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, Mapping | list):
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, Mapping) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def loads(text: str) -> Any:
    """Parse strict JSON, remembering duplicate keys (see :func:`duplicate_keys`)."""
    try:
        value = json.loads(text, object_pairs_hook=_object_hook, parse_constant=_reject_constant)
    except RecursionError:
        raise _TooDeepError(f"arrays and objects nested deeper than {MAX_DEPTH}") from None
    if _depth(value) > MAX_DEPTH:
        raise _TooDeepError(f"arrays and objects nested deeper than {MAX_DEPTH}")
    return value


def duplicate_keys(value: Any, at: str = "") -> Iterator[str]:
    """Pointers of every key that occurs twice in its object."""
    if isinstance(value, _Object):
        for key in value.duplicates:
            yield at + pointer(key)
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from duplicate_keys(item, at + pointer(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from duplicate_keys(item, f"{at}/{i}")


def plain(value: Any) -> Any:
    """A deep copy made of plain dicts and lists."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


@dataclass(frozen=True)
class Source:
    """The text as written, the text as parsed, and where things are in both.

    ``inserted`` lists the positions (in the parsed text) of characters that a
    legacy repair inserted, so positions can be mapped back to the original.
    """

    original: str
    text: str
    inserted: Sequence[int] = ()
    _line_starts: list[int] = field(init=False, repr=False, compare=False)
    _entries: Mapping[str, Any] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_line_starts", _line_starts(self.original))
        object.__setattr__(self, "_entries", _source_map(self.text))

    def line_col(self, position: int) -> tuple[int, int]:
        """1-based line and column of a position in the original text."""
        return _line_col(self._line_starts, position)

    def original_position(self, parsed_position: int) -> int:
        """Map a position in the parsed text back to the original text."""
        return parsed_position - bisect.bisect_left(self.inserted, parsed_position)

    def pointer_at(self, data: Any, parsed_position: int) -> str:
        """The pointer of the value in ``data`` that starts at a parsed-text position."""
        for ptr in _pointers(data):
            entry = self._entry(ptr)
            if entry is not None and entry.value_start.position == parsed_position:
                return ptr
        return ""

    def _entry(self, ptr: str) -> Any:
        if self._entries is None:
            return None
        # json_source_map joins raw keys with "/" without RFC 6901 escaping.
        return self._entries.get("".join("/" + t for t in split_pointer(ptr)))

    def locate(self, ptr: str, *, key: bool = False) -> tuple[int | None, int | None]:
        """Line and column of the value (or, with ``key``, the key) at ``ptr``.

        A pointer that does not exist in the file (a missing key, or one a
        legacy mapping created) is placed at its nearest existing ancestor.
        """
        while True:
            entry = self._entry(ptr)
            if entry is not None:
                loc = entry.key_start if key and entry.key_start is not None else entry.value_start
                return self.line_col(self.original_position(loc.position))
            if not ptr:
                return None, None
            ptr, key = parent_pointer(ptr), False


def _pointers(value: Any, at: str = "") -> Iterator[str]:
    yield at
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _pointers(item, at + pointer(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _pointers(item, f"{at}/{i}")


def _line_starts(text: str) -> list[int]:
    return [0] + [m.end() for m in re.finditer("\n", text)]


def _line_col(starts: list[int], position: int) -> tuple[int, int]:
    line = bisect.bisect_right(starts, position)
    return line, position - starts[line - 1] + 1


def _source_map(text: str) -> Mapping[str, Any] | None:
    import json_source_map

    try:
        return dict(json_source_map.calculate(text))
    # Line numbers are a courtesy: a mapper bug must not hide the real findings.
    except Exception:  # noqa: BLE001
        return None


def syntax_violation(text: str, error: ValueError) -> Violation:
    """A violation for text that :func:`loads` refused, with a hint for common slips."""
    if isinstance(error, _TooDeepError):
        return Violation("", None, None, f"not a config: {error}", "a config is a few levels deep")
    if not isinstance(error, json.JSONDecodeError):  # NaN or Infinity
        match = re.search(rf"(?<![\w\"]){re.escape(str(error))}", text)
        line, col = _line_col(_line_starts(text), match.start()) if match else (None, None)
        return Violation(
            "", line, col, f"{error} is not a JSON value", "write a number, or remove the key"
        )
    line, col = error.lineno, error.colno
    if error.msg.startswith("Expecting ',' delimiter"):
        # Python points at the next value; the comma belongs after the previous one.
        line, col = _line_col(_line_starts(text), len(text[: error.pos].rstrip()))
    return Violation("", line, col, f"not valid JSON: {error.msg}", _syntax_hint(text, error))


def _syntax_hint(text: str, error: json.JSONDecodeError) -> str:
    rest = text[error.pos :]
    before = text[: error.pos].rstrip()
    checks = (
        (not text.strip(), 'the file is empty; a config is a JSON object: {"version": ...}'),
        (
            not text.lstrip().startswith(("{", "[")),
            "a config is a JSON object: start with '{' and quote every key and string",
        ),
        (
            rest.startswith(("//", "/*", "#")),
            'JSON has no comments; remove it (notes can go in "description")',
        ),
        (rest.startswith("'"), "JSON strings and keys use double quotes, not single quotes"),
        (
            before.endswith(",") and rest[:1] in ("}", "]"),
            "remove the trailing comma before the closing bracket",
        ),
        (
            error.msg == "Extra data",
            "a config holds exactly one JSON object; remove what follows it",
        ),
        (
            error.msg.startswith("Expecting ',' delimiter"),
            "a comma is missing here, after the previous value",
        ),
        (error.msg.startswith("Expecting property name"), "keys must be double-quoted strings"),
    )
    for applies, hint in checks:
        if applies:
            return hint
    return f"check the JSON syntax at line {error.lineno}, column {error.colno}"
