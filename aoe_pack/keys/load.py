"""Resolve key references and load keys for each use."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from aoe_pack._crypto import asymmetric as _keys
from aoe_pack._crypto import wrap as _wrap
from aoe_pack._crypto.asymmetric import PrivateKey, PublicKey
from aoe_pack._io import FileTooLargeError, read_capped
from aoe_pack.errors import KeyFormatError, KeyPasswordError, KeyReferenceError, KeyTypeError

PASSWORD_ENV = "AOE_PACK_PASSWORD"  # noqa: S105 - the variable name, not a secret
ENV_PREFIX = "env://"
MAX_KEY_FILE = 1 << 20

PasswordPrompt = Callable[[str], bytes]
"""Asks the user for the password of the key named by its argument."""


def read_key_ref(ref: str) -> tuple[bytes, str]:
    """The bytes a key reference points at, and a name for messages.

    At most :data:`MAX_KEY_FILE` bytes, from a file of any kind or a variable.
    """
    if ref.startswith(ENV_PREFIX):
        var = ref[len(ENV_PREFIX) :]
        value = environ_bytes(var) if var else None
        if value is None:
            raise KeyReferenceError(
                f"environment variable {var!r} named by {ref} is not set",
                hint="export it with the key's PEM text, or pass a file path",
            )
        if len(value) > MAX_KEY_FILE:
            raise _too_large(ref)
        return value, ref
    try:
        return read_capped(ref, MAX_KEY_FILE), ref
    except FileTooLargeError as e:
        raise _too_large(ref) from e
    except FileNotFoundError as e:
        raise KeyReferenceError(
            f"key file {ref} does not exist",
            hint="create a key pair with `aoe-pack keygen --out NAME`",
        ) from e
    except IsADirectoryError as e:
        raise KeyReferenceError(f"key reference {ref} is a directory, not a key file") from e
    except OSError as e:
        raise KeyReferenceError(f"cannot read key file {ref}: {e.strerror}") from e


def _too_large(ref: str) -> KeyFormatError:
    return KeyFormatError(
        f"{ref} holds more than {MAX_KEY_FILE} bytes; a key file is at most 1 MiB",
        hint="pass the .key or .pub file written by `aoe-pack keygen`",
    )


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


def env_password() -> bytes | None:
    """The key password from ``AOE_PACK_PASSWORD``, as bytes, if set and not empty."""
    return environ_bytes(PASSWORD_ENV) or None


def _load_private(ref: str, prompt: PasswordPrompt | None) -> PrivateKey:
    data, origin = read_key_ref(ref)
    password = env_password()
    try:
        return _keys.load_private(data, password, origin=origin)
    except KeyPasswordError:
        if password is not None or prompt is None or b"ENCRYPTED" not in data:
            raise
    return _keys.load_private(data, prompt(origin), origin=origin)


def load_signing_key(ref: str, *, prompt: PasswordPrompt | None = None) -> PrivateKey:
    """A private key that can sign (Ed25519 or ECDSA P-256)."""
    key = _load_private(ref, prompt)
    if not key.kind.signs:
        raise KeyTypeError(
            f"{ref} is a {key.public.algorithm} encryption key, not a signing key",
            hint="pass a key made with `aoe-pack keygen --type ed25519` (or p256)",
        )
    return key


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


def load_decryption_key(ref: str, *, prompt: PasswordPrompt | None = None) -> DecryptionKey:
    """A recipient private key (PEM) or an encryption key file (hex)."""
    data, origin = read_key_ref(ref)
    if b"-----BEGIN" in data:
        key = _keys.for_key_agreement(_load_private(ref, prompt))
        if key.kind.signs:
            raise KeyTypeError(
                f"{ref} is a signing key; decryption needs a recipient key or key file",
                hint="pass the .key made with --type x25519/p256-kem/mlkem768-x25519, "
                "or the --encryption-key-file used at build time",
            )
        return DecryptionKey(origin=origin, private=key)
    return DecryptionKey(origin=origin, kek=_wrap.parse_kek(data, origin=origin))


def load_kek(ref: str) -> bytes:
    """A symmetric key-encryption key from a key file or env://VAR."""
    data, origin = read_key_ref(ref)
    return _wrap.parse_kek(data, origin=origin)
