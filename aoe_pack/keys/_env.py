"""Environment variables as the bytes the OS holds: ``env://VAR`` key references and passwords."""

from __future__ import annotations

import os

from aoe_pack.errors import KeyFormatError

ENV_PREFIX = "env://"


def environ_bytes(name: str) -> bytes | None:
    """The value of environment variable ``name`` as the bytes the OS holds.

    On POSIX, ``os.environ`` decodes values with surrogate escapes, and a value
    that is not UTF-8 then cannot be encoded back; ``os.environb`` has the
    bytes. Where the environment is Unicode (Windows), a value holding a lone
    surrogate has no bytes at all: that is a key-format error, not a crash.
    """
    if os.supports_bytes_environ:
        return os.environb.get(os.fsencode(name))
    value = os.environ.get(name)
    if value is None:
        return None
    try:
        return value.encode()
    except UnicodeEncodeError as e:
        raise KeyFormatError(f"environment variable {name!r} does not hold text") from e
