"""``awskms://`` references: which key, at which endpoint, signing how."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from aoe_pack.errors import KeyReferenceError

_FORMS = (
    "awskms:///KEY-ID, awskms:///alias/NAME, awskms:///arn:aws:kms:REGION:ACCOUNT:key/KEY-ID, "
    "awskms:///arn:aws:kms:REGION:ACCOUNT:alias/NAME; awskms://HOST:PORT/... for another endpoint"
)
_REF = re.compile(r"(?i:awskms)://(?P<host>[^/?#]*)/(?P<key>[^?#]*)(?:\?(?P<query>[^#]*))?")
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_KEY_ID = rf"(?:{_UUID}|mrk-[0-9a-fA-F]{{32}})"
"""A key id; ``mrk-`` and 32 hex digits for a multi-Region key."""
_ALIAS = r"alias/[A-Za-z0-9/_-]{1,250}"
"""An alias name, as KMS allows them."""
_KEY = re.compile(rf"{_KEY_ID}|{_ALIAS}")
_ARN = re.compile(
    r"arn:aws[a-z-]*:kms:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+):\d{12}:"
    rf"(?:key/{_KEY_ID}|{_ALIAS})"
)


class MessageType(enum.StrEnum):
    """What a P-256 key sends KMS: the SHA-256 of the message, or the message itself."""

    DIGEST = "digest"
    RAW = "raw"


@dataclass(frozen=True)
class KmsKeyRef:
    """An ``awskms://`` reference, parsed and checked once."""

    ref: str
    """The reference as given, for messages (it holds no secret)."""
    key: str
    """The key id, alias, key ARN or alias ARN, as KMS takes it."""
    endpoint: str | None = None
    """``https://HOST[:PORT]`` when the reference names an endpoint."""
    region: str | None = None
    """The region an ARN names."""
    message_type: MessageType | None = None
    """As ``?message-type=`` asks; None for the key's default."""

    @classmethod
    def parse(cls, ref: str) -> KmsKeyRef:
        """Parse ``ref``, or raise :class:`KeyReferenceError` naming the forms there are."""
        m = _REF.fullmatch(ref)
        if m is None:
            raise _bad_ref(ref, None)
        host, key, query = m.group("host"), m.group("key"), m.group("query")
        if host == "alias" or host.startswith("arn:") or re.fullmatch(_KEY_ID, host):
            raise _bad_ref(
                ref,
                "three slashes before a key: awskms:///alias/NAME (awskms://HOST/ names "
                "an endpoint)",
            )
        arn = _ARN.fullmatch(key)
        if arn is None and _KEY.fullmatch(key) is None:
            raise _bad_ref(ref, None)
        return cls(
            ref=ref,
            key=key,
            endpoint=_endpoint(ref, host) if host else None,
            region=arn.group("region") if arn else None,
            message_type=_message_type(ref, query) if query is not None else None,
        )


def _bad_ref(ref: str, hint: str | None) -> KeyReferenceError:
    return KeyReferenceError(
        f"{ref} is not an AWS KMS key reference", hint=hint or f"the forms are {_FORMS}"
    )


def _endpoint(ref: str, host: str) -> str:
    url = f"https://{host}"
    try:
        parts = urlsplit(url)
        valid = bool(parts.hostname) and "@" not in host and parts.port != 0
    except ValueError:  # a port that is not a number, or out of range
        valid = False
    if not valid:
        raise KeyReferenceError(
            f"{ref}: {host!r} is not an endpoint (HOST or HOST:PORT)",
            hint="awskms:///KEY for AWS itself; awskms://HOST:PORT/KEY for another endpoint",
        )
    return url


def _message_type(ref: str, query: str) -> MessageType:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        pairs = []
    if [name for name, _ in pairs] != ["message-type"]:
        raise KeyReferenceError(
            f"{ref}: the only option of an awskms:// reference is message-type, once",
            hint="?message-type=digest (the default) or ?message-type=raw",
        )
    value = pairs[0][1]
    try:
        return MessageType(value)
    except ValueError:
        raise KeyReferenceError(
            f"{ref}: message-type is digest or raw, not {value!r}",
            hint="raw is for KMS-compatible servers that mishandle digests (docs/keys.md)",
        ) from None
