"""RFC 7512 ``pkcs11:`` URIs, read strictly.

::

    pkcs11:token=release;object=root-2026?module-path=/usr/lib/softhsm/libsofthsm2.so

Path attributes (``;``-separated) say which token and object; query
attributes (``&``-separated) say how to reach them: the module, the PIN.
Values are percent-decoded, ``id`` to bytes (``CKA_ID``), the others to UTF-8
text. Anything the RFC's grammar does not produce is refused, and so is what
it allows but leaves two readings of:

- a character outside its component's set (a space, ``#``, ``/`` in the path,
  ``;`` in the query, anything not ASCII): percent-encode it;
- ``%`` not followed by two hex digits;
- an empty attribute (``;;``, a trailing ``;`` or ``&``), or one without ``=``;
- an attribute given twice: the RFC forbids it in the path, and in the query
  the two values would leave which one counts to the reader;
- an attribute name the RFC does not define, unless it is vendor-specific
  (``x-`` then letters, digits, ``-`` or ``_``). A name nobody defines is most
  often a typo (``objet=``), and a path attribute left out matches more
  objects than the writer meant, so it is an error rather than ignored;
- attribute names in any case but lower case, as every implementation writes
  them;
- a ``type`` other than public, private, cert, secret-key or data, a
  ``library-version`` other than ``N`` or ``N.N`` with each number at most
  255 (a ``CK_VERSION`` is two bytes), a ``slot-id`` other than digits, a
  text value that is not UTF-8 once decoded, or that holds a NUL (``%00``),
  which no PKCS#11 label or file name does;
- both ``pin-value`` and ``pin-source``, or both ``module-path`` and
  ``module-name``: two answers to one question.

Each is a :class:`~aoe_pack.errors.KeyReferenceError` whose message names the
attribute, never its value, and shows the URI through :func:`redact`: a
``pin-value``, however it is spelt, never reaches a message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import unquote_to_bytes

from aoe_pack.errors import KeyReferenceError
from aoe_pack.keys.display import display_ref, is_secret_name

SCHEME = "pkcs11"

PATH_ATTRIBUTES = frozenset(
    {
        "token", "manufacturer", "serial", "model",
        "library-manufacturer", "library-description", "library-version",
        "object", "type", "id",
        "slot-description", "slot-manufacturer", "slot-id",
    }
)  # fmt: skip
QUERY_ATTRIBUTES = frozenset({"pin-source", "pin-value", "module-name", "module-path"})
TYPES = frozenset({"public", "private", "cert", "secret-key", "data"})

_UNRESERVED = r"A-Za-z0-9._~\-"
_RES_AVAIL = r":\[\]@!$'()*+,="
_PCHAR = re.compile(rf"[{_UNRESERVED}{_RES_AVAIL}&%]*")
"""pk11-pchar: unreserved, pk11-path-res-avail (with ``&``) or percent-encoded."""
_QCHAR = re.compile(rf"[{_UNRESERVED}{_RES_AVAIL}/?|%]*")
"""pk11-qchar: unreserved, pk11-query-res-avail (with ``/``, ``?``, ``|``) or percent-encoded."""
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_VENDOR = re.compile(r"x-[A-Za-z0-9_-]+")
_LIBRARY_VERSION = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_DIGITS = re.compile(r"[0-9]+")

HINT = (
    "write it as RFC 7512 does: pkcs11:token=LABEL;object=KEY?module-path=/path/to/module "
    "(percent-encode any other character, %20 for a space)"
)


@dataclass(frozen=True)
class Pkcs11Uri:
    """A parsed ``pkcs11:`` URI: decoded attributes, by name."""

    path: Mapping[str, str]
    """Every path attribute but ``id``, decoded to text; ``x-`` ones included."""
    id: bytes | None
    """``id`` (``CKA_ID``), decoded to bytes; None when absent."""
    query: Mapping[str, str]
    """Every query attribute, decoded to text; ``x-`` ones included."""


def parse(uri: str) -> Pkcs11Uri:
    """The attributes of ``uri``, or a :class:`KeyReferenceError` saying what is wrong."""
    scheme, colon, rest = uri.partition(":")
    if not colon or scheme.lower() != SCHEME:
        raise _error(uri, "it does not start with pkcs11:")
    path_part, _, query_part = rest.partition("?")
    path, key_id = _component(uri, path_part, ";", _PCHAR, PATH_ATTRIBUTES, "path")
    query, _ = _component(uri, query_part, "&", _QCHAR, QUERY_ATTRIBUTES, "query")
    for first, second in (("pin-value", "pin-source"), ("module-path", "module-name")):
        if first in query and second in query:
            raise _error(uri, f"it has both {first} and {second}; give one")
    return Pkcs11Uri(path=MappingProxyType(path), id=key_id, query=MappingProxyType(query))


def _component(
    uri: str, text: str, separator: str, chars: re.Pattern[str], known: frozenset[str], where: str
) -> tuple[dict[str, str], bytes | None]:
    values: dict[str, str] = {}
    key_id: bytes | None = None
    if not text:
        return values, key_id
    for number, item in enumerate(text.split(separator), 1):
        name, equals, raw = item.partition("=")
        if not item:
            raise _error(uri, f"{where} attribute {number} is empty (a doubled or trailing "
                         f"{separator!r})")  # fmt: skip
        if not equals or not name:
            # Not echoed: a mistyped pin-value would be a PIN in the message.
            raise _error(uri, f"{where} attribute {number} is not of the form name=value")
        if name not in known and not _VENDOR.fullmatch(name):
            raise _error(uri, _unknown(name, where, known))
        if name in values or (name == "id" and key_id is not None):
            raise _error(uri, f"the {where} attribute {name} is given twice")
        if chars.fullmatch(raw) is None:
            at = next(c for c in raw if chars.fullmatch(c) is None)
            shown = "a character" if is_secret_name(name) else repr(at)
            raise _error(uri, f"the value of {name} holds {shown}, which must be percent-encoded")
        if _BAD_PERCENT.search(raw):
            raise _error(uri, f"the value of {name} has a '%' not followed by two hex digits")
        decoded = unquote_to_bytes(raw)
        if name == "id":
            key_id = decoded
            continue
        try:
            values[name] = decoded.decode("utf-8")
        except UnicodeDecodeError:
            raise _error(uri, f"the value of {name} is not UTF-8 once percent-decoded") from None
        if "\x00" in values[name]:
            raise _error(uri, f"the value of {name} holds a NUL (%00) once percent-decoded")
        _check_value(uri, name, values[name])
    return values, key_id


def _unknown(name: str, where: str, known: frozenset[str]) -> str:
    if name.lower() in known:
        return f"the {where} attribute {name} must be written in lower case ({name.lower()})"
    other = QUERY_ATTRIBUTES if known is PATH_ATTRIBUTES else PATH_ATTRIBUTES
    if name in other:
        place = "after the '?'" if where == "path" else "before the '?'"
        return f"{name} is not a {where} attribute; it goes {place}"
    return (
        f"it has the {where} attribute {name!r}, which RFC 7512 does not define "
        "(vendor attributes start with x-)"
    )


def _check_value(uri: str, name: str, value: str) -> None:
    if name == "type" and value not in TYPES:
        raise _error(uri, f"type must be one of {', '.join(sorted(TYPES))}")
    if name == "library-version":
        if not _LIBRARY_VERSION.fullmatch(value):
            raise _error(uri, "library-version must be MAJOR or MAJOR.MINOR, in digits")
        # Bounded before int(): thousands of digits exceed Python's conversion limit.
        if any(len(n.lstrip("0")) > 3 or int(n) > 255 for n in value.split(".")):
            raise _error(uri, "library-version numbers are at most 255 (a CK_VERSION's bytes)")
    if name == "slot-id" and not _DIGITS.fullmatch(value):
        raise _error(uri, "slot-id must be a number")


def _error(uri: str, problem: str) -> KeyReferenceError:
    return KeyReferenceError(f"bad pkcs11: URI {redact(uri)}: {problem}", hint=HINT)


def redact(uri: str) -> str:
    """``uri`` with any ``pin-value`` hidden, for messages and :attr:`Signer.ref`.

    :func:`~aoe_pack.keys.display.display_ref`, which every key reference goes
    through: it works on the raw text, so a URI too broken to parse is hidden
    as well, and so is a mistyped ``pin_value`` or ``pin%2Dvalue``.
    """
    return display_ref(uri)
