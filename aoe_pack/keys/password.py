"""Where each private key's password comes from.

A command that loads several private keys (``manifest rotate-root`` signs with
the old root's keys and the new one's) may need a different password for each,
and none for some. So a password is bound to the key it opens, by the key's
reference exactly as the command was given it: ``--key-password KEY SOURCE``.
A binding by position (the second password for the second key) breaks silently
when options are reordered; a binding by name fails loudly when it names no key.

A source is ``env://VAR`` (the variable's bytes as the OS holds them) or the
path of a file (its bytes, less one trailing newline: ``\\n`` or ``\\r\\n``, so
``echo pw > file`` and an editor's save both work the same on every OS). A
password never comes from the command line itself, where other users of the
machine, shell history and CI logs can read it.

Without a source of its own a key falls back to ``AOE_PACK_PASSWORD``, then to
the terminal prompt the CLI supplies (encrypted keys only).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from aoe_pack._io import FileTooLargeError, read_capped
from aoe_pack.errors import KeyFormatError, PasswordSourceError, UsageError
from aoe_pack.keys._env import ENV_PREFIX, environ_bytes
from aoe_pack.keys.display import display_ref

PASSWORD_ENV = "AOE_PACK_PASSWORD"  # noqa: S105 - the variable name, not a secret
"""The fallback password of every key without a source of its own."""
MAX_PASSWORD_FILE = 64 << 10
"""A password file holds one password; this only stops ``/dev/zero`` or a wrong path."""

_SOURCE_HINT = "a password source is env://VAR or the path of a file holding the password"


def env_password() -> bytes | None:
    """The key password from ``AOE_PACK_PASSWORD``, as bytes, if set and not empty."""
    return environ_bytes(PASSWORD_ENV) or None


def read_password(source: str, *, key: str) -> bytes:
    """The password ``source`` holds for the private key ``key`` (named in messages).

    Raises :class:`PasswordSourceError` when the variable is unset, the file is
    missing, unreadable or too large, or the password is empty. Messages show
    ``key`` and ``source`` through :func:`~aoe_pack.keys.display.display_ref`.
    """
    if not source.startswith(ENV_PREFIX):
        return read_password_file(source, key=key)
    key = display_ref(key)
    var = source[len(ENV_PREFIX) :]
    try:
        value = environ_bytes(var) if var else None
    except KeyFormatError as e:  # a Unicode environment (Windows), and no bytes to give
        raise PasswordSourceError(f"the password source {source} of {key}: {e.message}") from e
    if value is None:
        raise PasswordSourceError(
            f"the password source {source} of {key} names "
            + (f"environment variable {var!r}, which is not set" if var else "no variable"),
            hint=f"export {var or 'VAR'} with the key's password, or name a password file",
        )
    return _not_empty(value, source, key)


def read_password_file(path: str, *, key: str) -> bytes:
    """The password in the file at ``path``, less one trailing newline: never a variable.

    For sources that name a file and nothing else (a ``pkcs11:`` URI's
    ``pin-source``): ``env://VAR`` is read as a path here, not as a variable.
    """
    key = display_ref(key)
    value = _read_file(path, key=key)
    if value.endswith(b"\r\n"):
        value = value[:-2]
    elif value.endswith(b"\n"):
        value = value[:-1]
    return _not_empty(value, path, key)


def _not_empty(value: bytes, source: str, key: str) -> bytes:
    if not value:
        raise PasswordSourceError(
            f"the password source {display_ref(source)} of {key} is empty",
            hint="an encrypted key has a password; a key without one needs no --key-password",
        )
    return value


def _read_file(source: str, *, key: str) -> bytes:
    path = display_ref(source)
    try:
        return read_capped(source, MAX_PASSWORD_FILE)
    except FileTooLargeError as e:
        raise PasswordSourceError(
            f"the password file {path} of {key} holds more than {MAX_PASSWORD_FILE} bytes",
            hint="a password file holds the password alone",
        ) from e
    except FileNotFoundError as e:
        raise PasswordSourceError(
            f"the password file {path} of {key} does not exist", hint=_SOURCE_HINT
        ) from e
    except IsADirectoryError as e:
        raise PasswordSourceError(
            f"the password file {path} of {key} is a directory", hint=_SOURCE_HINT
        ) from e
    except OSError as e:
        raise PasswordSourceError(
            f"cannot read the password file {path} of {key}: {e.strerror}"
        ) from e
    except ValueError as e:  # a NUL in the path: no file has that name
        raise PasswordSourceError(
            f"the password file {path!r} of {key} has a NUL character in its name",
            hint=_SOURCE_HINT,
        ) from e


def password_sources(
    pairs: Iterable[tuple[str, str]], keys: Collection[str], *, option: str
) -> Mapping[str, str]:
    """Each key reference's password source, from ``(KEY, SOURCE)`` pairs.

    ``keys`` are the private key references the command loads, as given to
    ``option`` (named in messages). A pair that names none of them, or a key
    named twice, is a :class:`UsageError`: a typo must not quietly fall back
    to another password.
    """
    sources: dict[str, str] = {}
    for key, source in pairs:
        if key not in keys:
            given = ", ".join(map(display_ref, keys)) if keys else "none"
            raise UsageError(
                f"--key-password names {display_ref(key)}, which is not a {option} of this "
                f"command (given: {given})",
                hint=f"write KEY exactly as it is given to {option}",
            )
        if key in sources:
            raise UsageError(
                f"--key-password names {display_ref(key)} twice; give each key one source"
            )
        sources[key] = source
    return sources
