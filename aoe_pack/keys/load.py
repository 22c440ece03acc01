"""Resolve key references and load keys for each use."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass

from aoe_pack._crypto import asymmetric as _keys
from aoe_pack._crypto import wrap as _wrap
from aoe_pack._crypto.asymmetric import PrivateKey, PublicKey
from aoe_pack._io import FileTooLargeError, read_capped
from aoe_pack.errors import (
    KeyFormatError,
    KeyNotEncryptedError,
    KeyPasswordError,
    KeyReferenceError,
    KeyTypeError,
    WrongPasswordError,
)
from aoe_pack.keys._env import ENV_PREFIX, environ_bytes
from aoe_pack.keys.display import display_ref
from aoe_pack.keys.password import PASSWORD_ENV, env_password, read_password
from aoe_pack.keys.signer import SigningKey, open_signer, scheme_of

MAX_KEY_FILE = 1 << 20

PasswordPrompt = Callable[[str], bytes]
"""Asks the user for the password of the key named by its argument."""


def read_key_ref(ref: str) -> tuple[bytes, str]:
    """The bytes a key reference points at, and a name for messages (:func:`display_ref`).

    At most :data:`MAX_KEY_FILE` bytes, from a file of any kind or a variable.
    """
    shown = display_ref(ref)
    if ref.startswith(ENV_PREFIX):
        var = ref[len(ENV_PREFIX) :]
        value = environ_bytes(var) if var else None
        if value is None:
            raise KeyReferenceError(
                f"environment variable {var!r} named by {shown} is not set",
                hint="export it with the key's PEM text, or pass a file path",
            )
        if len(value) > MAX_KEY_FILE:
            raise _too_large(shown)
        return value, shown
    try:
        return read_capped(ref, MAX_KEY_FILE), shown
    except FileTooLargeError as e:
        raise _too_large(shown) from e
    except FileNotFoundError as e:
        raise KeyReferenceError(
            f"key file {shown} does not exist",
            hint="create a key pair with `aoe-pack keygen --out NAME`",
        ) from e
    except IsADirectoryError as e:
        raise KeyReferenceError(f"key reference {shown} is a directory, not a key file") from e
    except OSError as e:
        raise KeyReferenceError(f"cannot read key file {shown}: {e.strerror}") from e
    except ValueError as e:  # a NUL in the path: no file has that name
        raise KeyReferenceError(f"key file {shown!r} has a NUL character in its name") from e


def _too_large(ref: str) -> KeyFormatError:
    return KeyFormatError(
        f"{ref} holds more than {MAX_KEY_FILE} bytes; a key file is at most 1 MiB",
        hint="pass the .key or .pub file written by `aoe-pack keygen`",
    )


def _load_private(
    data: bytes, origin: str, source: str | None, prompt: PasswordPrompt | None
) -> PrivateKey:
    """The private key in ``data``; its password from ``source``, else the fallbacks.

    The order: the key's own ``source``, then ``AOE_PACK_PASSWORD``, then
    ``prompt`` (asked only for an encrypted key). A password that came from
    somewhere is used as it is: a wrong one is an error, never a prompt.
    """
    password: bytes | None
    if source is not None:
        password, given = read_password(source, key=origin), f"--key-password {source}"
        hint = f"check that {source} holds the password of {origin}"
    else:
        password, given = env_password(), PASSWORD_ENV
        hint = "keys under different passwords each take their own --key-password KEY SOURCE"
    try:
        return _keys.load_private(data, password, origin=origin)
    except KeyNotEncryptedError as e:
        raise _not_encrypted(origin, source) from e
    except WrongPasswordError as e:
        raise _wrong_password(origin, given, hint) from e
    except KeyPasswordError as e:  # encrypted, and no password was given
        if prompt is None:
            raise KeyPasswordError(
                f"{origin}: the private key is encrypted and no password was given",
                hint=f"pass --key-password {origin} SOURCE (env://VAR or a file), "
                f"or set {PASSWORD_ENV}",
            ) from e
    try:
        return _keys.load_private(data, prompt(origin), origin=origin)
    except WrongPasswordError as e:
        raise _wrong_password(origin, "the prompt", None) from e


def _not_encrypted(origin: str, source: str | None) -> KeyNotEncryptedError:
    if source is not None:
        return KeyNotEncryptedError(
            f"{origin} is not encrypted, but --key-password gives it a password ({source})",
            hint=f"drop the --key-password of {origin}",
        )
    return KeyNotEncryptedError(
        f"{origin} is not encrypted, but {PASSWORD_ENV} gives it a password",
        hint=f"unset {PASSWORD_ENV}; give each encrypted key its own --key-password KEY SOURCE",
    )


def _wrong_password(origin: str, given: str, hint: str | None) -> WrongPasswordError:
    return WrongPasswordError(
        f"{origin}: wrong password for the private key (from {given})", hint=hint
    )


def load_signing_key(
    ref: str, *, password: str | None = None, prompt: PasswordPrompt | None = None
) -> SigningKey:
    """A key that can sign (Ed25519 or ECDSA P-256): a key file's, or a :class:`Signer`'s.

    ``ref`` is a path, ``env://VAR``, or a URI whose scheme a signer plugin
    registers (``pkcs11:...``, ``awskms:///alias/...``: :mod:`aoe_pack.keys.signer`).
    ``password`` is the key's own password source (``env://VAR`` or a file): a
    key file's password, or a token's PIN; without it, a key file tries
    ``AOE_PACK_PASSWORD`` and then ``prompt``.
    """
    scheme = scheme_of(ref)
    if scheme is not None:
        pin = None if password is None else read_password(password, key=ref)
        return open_signer(ref, scheme, pin=pin)
    data, origin = read_key_ref(ref)
    key = _load_private(data, origin, password, prompt)
    if not key.kind.signs:
        raise KeyTypeError(
            f"{origin} is a {key.public.algorithm} encryption key, not a signing key",
            hint="pass a key made with `aoe-pack keygen --type ed25519` (or p256)",
        )
    return key


def public_key_from_spki(der: bytes, *, origin: str) -> PublicKey:
    """A public key from its SubjectPublicKeyInfo DER, as HSMs and KMSs report it.

    For signer plugins: the key id is the SHA-256 of this DER, as for a key file.
    """
    text = base64.b64encode(der).decode()
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    pem = "\n".join(["-----BEGIN PUBLIC KEY-----", *lines, "-----END PUBLIC KEY-----", ""])
    return _keys.load_public(pem.encode(), origin=origin)


def load_public_key(ref: str) -> PublicKey:
    """A public key (trusted signer or encryption recipient)."""
    data, origin = read_key_ref(ref)
    return _keys.load_public(data, origin=origin)


@dataclass(frozen=True)
class DecryptionKey:
    """Either a recipient's private key or a symmetric key-encryption key."""

    origin: str
    private: PrivateKey | None = None
    kek: bytes | None = None

    @property
    def key_id(self) -> str:
        """The key id a bundle's recipient entry must name."""
        if self.private is not None:
            return self.private.key_id
        assert self.kek is not None
        return _wrap.kek_id(self.kek)


def load_decryption_key(
    ref: str, *, password: str | None = None, prompt: PasswordPrompt | None = None
) -> DecryptionKey:
    """A recipient private key (PEM) or an encryption key file (hex).

    ``password`` is as for :func:`load_signing_key`; an encryption key file
    has none, so a ``password`` for one is a :class:`KeyNotEncryptedError`.
    """
    data, origin = read_key_ref(ref)
    if b"-----BEGIN" in data:
        key = _keys.for_key_agreement(_load_private(data, origin, password, prompt))
        if key.kind.signs:
            raise KeyTypeError(
                f"{origin} is a signing key; decryption needs a recipient key or key file",
                hint="pass the .key made with --type x25519/p256-kem/mlkem768-x25519, "
                "or the --encryption-key-file used at build time",
            )
        return DecryptionKey(origin=origin, private=key)
    if password is not None:
        raise KeyNotEncryptedError(
            f"{origin} is an encryption key file, never password-protected, "
            f"but --key-password gives it a password ({display_ref(password)})",
            hint=f"drop the --key-password of {origin}",
        )
    return DecryptionKey(origin=origin, kek=_wrap.parse_kek(data, origin=origin))


def load_kek(ref: str) -> bytes:
    """A symmetric key-encryption key from a key file or env://VAR."""
    data, origin = read_key_ref(ref)
    return _wrap.parse_kek(data, origin=origin)
