"""Key references as messages show them: whatever secret a reference carries, hidden.

A key reference is a path, ``env://VAR``, or a URI a signer plugin reads. A
URI can carry a secret in an attribute: RFC 7512's ``pin-value``
(``pkcs11:object=k?pin-value=1234``), a vendor's ``x-pin-value``, or one
mistyped so that no parser knows it (``pin_value``, ``pin%2Dvalue``,
``PIN-VALUE``, ``pin value``). Every message, ``--json`` error and
:attr:`~aoe_pack.keys.Signer.ref` shows a reference through
:func:`display_ref`, so that none of these reaches a terminal, a CI log or a
script's output, even when the reference is given where no signer reads it
(``--trusted-key pkcs11:...``).

The rule works on the raw text, so a reference too broken to parse is
hidden as well: in a reference with a URI scheme, an attribute (``name=value``
after the scheme, a ``;``, ``?`` or ``&``) whose name, percent-decoded and
stripped of everything but letters and digits, contains ``pin``, ``secret``
or ``pass`` shows as ``name=***``, its value hidden up to the next ``&`` that
starts another attribute. An attribute mistyped without ``=`` shows as
``***`` whole. ``pin-source`` names where a PIN is, a file, and stays. A
path (no scheme) is shown as it is: nothing in it is an attribute.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

REDACTED = "***"

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:")
"""Two characters or more, as :mod:`aoe_pack.keys.signer` reads them: ``C:\\`` is a path."""
_SEPARATOR = re.compile(r"([;?&])")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_SECRET_WORDS = ("pin", "secret", "pass")
_NOT_SECRET = frozenset({"pinsource"})
"""Names of where a secret is (a file's path), not of the secret."""


def is_secret_name(name: str) -> bool:
    """Whether an attribute called ``name`` (as written, percent-encoded or not) holds a secret."""
    decoded = name
    for _ in range(4):  # %2570 is %70 is p: decode until nothing changes
        decoded, before = unquote(decoded), decoded
        if decoded == before:
            break
    plain = _NOT_ALNUM.sub("", decoded.lower())
    return plain not in _NOT_SECRET and any(word in plain for word in _SECRET_WORDS)


def display_ref(ref: str) -> str:
    """``ref`` as a message may show it: every secret attribute's value hidden (module doc)."""
    scheme = _SCHEME.match(ref)
    if scheme is None:
        return ref
    parts = _SEPARATOR.split(ref[scheme.end() :])
    items, separators = parts[0::2], ["", *parts[1::2]]
    shown = [scheme.group()]
    hiding = False
    for index, (separator, item) in enumerate(zip(separators, items, strict=True)):
        name, equals, _ = item.partition("=")
        if hiding:
            if separator != "&" or not equals:
                continue  # the rest of a secret value: ';', '?' or a raw '&' in it
            hiding = False
        shown.append(separator)
        # What follows "scheme://" is an authority and a path, not an attribute.
        opaque = index == 0 and not equals and item.startswith("/")
        if is_secret_name(name) and not opaque:
            shown.append(f"{name}={REDACTED}" if equals else REDACTED)
            hiding = True
        else:
            shown.append(item)
    return "".join(shown)
