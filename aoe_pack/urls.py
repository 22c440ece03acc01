"""Repository addresses: the ``updateURL`` a bundle carries and the publisher's public URL.

AoE's config named an "upgrade config link"; here it is the address where
devices read the model's repository (docs/format.md §5.2, §15.1). The same
rule applies wherever such an address is written: a config's ``updateURL``,
a bundle manifest's ``model.updateURL``, ``manifest publish --public-url``.

The rule is a strict subset of RFC 3986, checked without a URL library so
that a device implementation can apply it with a regular expression and a
few comparisons:

- at most :data:`MAX_URL_LENGTH` characters, printable ASCII only (no space,
  no control character, no backslash; an international host is written in
  its ``xn--`` form, other characters percent-encoded);
- ``https://``, or ``http://`` to a loopback host only (``localhost``,
  ``127.x.x.x``, ``[::1]``): Android (9+) and iOS (ATS) refuse cleartext
  HTTP by default, so a plain-HTTP address signed into a bundle would fail on
  devices, and it would show every on-path observer which models a device runs;
- a host (a DNS name, an IPv4 address or a bracketed IPv6 address) and an
  optional port 1-65535; no user information (``user:password@``);
- a path of non-empty segments, none of them ``.`` or ``..``, with an
  optional trailing ``/``; no query, no fragment (§15.1 appends names to it).

Two addresses name the same repository when their :func:`normalise` forms are
equal: scheme and host lowercased, a default port (``:443``, ``:80``)
dropped, a trailing ``/`` dropped. The path is compared as written: servers
may treat its case as significant, and percent-escapes are not decoded.
"""

from __future__ import annotations

import ipaddress
import re

MAX_URL_LENGTH = 1024
"""The longest address accepted: room for any real base URL, and bounded for display.

The longest name a device appends (``/bundles/<64 hex>.aoe``) keeps every
URL fetched under 1 100 characters, well inside what servers and CDNs take.
"""

_SHAPE = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)(?P<path>[^?#]*)(?P<rest>.*)",
    re.DOTALL,
)
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_SEGMENT = re.compile(r"(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})+")
_PORT = re.compile(r"[0-9]{1,5}")
_DEFAULT_PORTS = {"https": "443", "http": "80"}
EXAMPLE = "https://models.example.com/repo/"


def url_problem(url: str) -> str | None:
    """Why ``url`` is not a repository address, or None when it is one.

    The answer completes "the address ..." (``"has a query"``), so callers
    can word their own error around it.
    """
    if len(url) > MAX_URL_LENGTH:
        return f"is {len(url)} characters long; at most {MAX_URL_LENGTH} are allowed"
    bad = next((c for c in url if not "\x21" <= c <= "\x7e" or c == "\\"), None)
    if bad is not None:
        return f"contains {_describe(bad)}: only printable ASCII is allowed"
    shape = _SHAPE.fullmatch(url)
    if shape is None:
        return "is not an absolute URL (scheme://host/path)"
    scheme = shape["scheme"].lower()
    if scheme not in _DEFAULT_PORTS:
        return f"uses {shape['scheme']}://; devices read repositories over https://"
    if shape["rest"]:
        which = "a query" if shape["rest"].startswith("?") else "a fragment"
        return f"has {which}; a repository address has none (names are appended to it)"
    return _authority_problem(scheme, shape["authority"]) or _path_problem(shape["path"])


def _authority_problem(scheme: str, authority: str) -> str | None:
    if "@" in authority:
        return "carries user information (user@ or user:password@); credentials do not belong in it"
    host, port = _split_authority(authority)
    if host is None:
        return f"has no valid host in {authority!r}"
    if port is not None and (not _PORT.fullmatch(port) or not 0 < int(port) < 65536):
        return f"has port {port!r}; a port is a number from 1 to 65535"
    if scheme == "http" and not _is_loopback(host):
        return "uses http:// to a host that is not loopback; devices refuse cleartext HTTP"
    return None


def _path_problem(path: str) -> str | None:
    segments = path.split("/")[1:]
    if segments and segments[-1] == "":
        segments.pop()  # one trailing slash is allowed
    for segment in segments:
        if segment in ("", ".", ".."):
            return f"has a path segment {segment!r}; write the path without '//', '.' or '..'"
        if not _SEGMENT.fullmatch(segment):
            return (
                f"has a path segment {segment!r} with a character a URL path cannot hold "
                "(percent-encode it; '%' must be followed by two hex digits)"
            )
    return None


def normalise(url: str) -> str:
    """The form two addresses are compared in; ``url`` must pass :func:`url_problem`."""
    shape = _SHAPE.fullmatch(url)
    assert shape is not None
    scheme = shape["scheme"].lower()
    host, port = _split_authority(shape["authority"])
    assert host is not None
    authority = host.lower()
    if port is not None and port.lstrip("0") != _DEFAULT_PORTS[scheme]:
        authority += f":{int(port)}"
    return f"{scheme}://{authority}{shape['path'].rstrip('/')}"


def same_repository(a: str, b: str) -> bool:
    """True when the two addresses (both valid) name one repository."""
    return normalise(a) == normalise(b)


def _split_authority(authority: str) -> tuple[str | None, str | None]:
    """(host, port) of ``host[:port]``; host None when it is not a DNS name or an IP."""
    if authority.startswith("["):
        end = authority.find("]")
        literal, after = authority[1:end], authority[end + 1 :]
        if end < 0 or (after and not after.startswith(":")):
            return None, None
        try:
            ipaddress.IPv6Address(literal)
        except ValueError:
            return None, None
        return authority[: end + 1], after[1:] if after else None
    host, colon, port = authority.partition(":")
    name = host[:-1] if host.endswith(".") else host  # a fully qualified "example.com."
    if not name or len(name) > 253 or not all(_LABEL.fullmatch(x) for x in name.split(".")):
        return None, None
    return host, port if colon else None


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _describe(char: str) -> str:
    if char == " ":
        return "a space"
    if char == "\\":
        return "a backslash"
    return f"the character U+{ord(char):04X}"
