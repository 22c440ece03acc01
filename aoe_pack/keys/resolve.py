"""A key as a caller has it: already loaded, or a reference to load.

The library's front (:mod:`aoe_pack.api`) takes either wherever it takes a
key, so a training pipeline can pass the key objects it holds and a script
the same paths or ``env://VAR`` references the command line takes. Each
function here checks that the key can do what it is passed for.
"""

from __future__ import annotations

import os
from typing import TypeAlias

from aoe_pack._crypto import asymmetric as _keys
from aoe_pack._crypto import wrap as _wrap
from aoe_pack._crypto.asymmetric import PrivateKey, PublicKey
from aoe_pack.errors import KeyFormatError, KeyTypeError
from aoe_pack.keys.display import display_ref
from aoe_pack.keys.load import (
    DecryptionKey,
    PasswordPrompt,
    load_decryption_key,
    load_kek,
    load_public_key,
    load_signing_key,
)
from aoe_pack.keys.signer import Signer, SigningKey, check_key_id

KeyRef: TypeAlias = str | os.PathLike[str]
"""A key file's path, or ``env://VAR`` naming a variable that holds the key."""


def signing_key(key: SigningKey | KeyRef, *, prompt: PasswordPrompt | None = None) -> SigningKey:
    """A key that signs (Ed25519 or ECDSA P-256): a private key, a :class:`Signer`, or a reference.

    A password-protected key file takes its password from ``AOE_PACK_PASSWORD``,
    else from ``prompt`` if one is given.
    """
    if isinstance(key, PrivateKey):
        if not key.kind.signs:
            raise KeyTypeError(
                f"a {key.public.algorithm} key was given to sign; it only encrypts",
                hint="sign with a key made with `aoe-pack keygen --type ed25519` (or p256)",
            )
        return key
    if isinstance(key, Signer):
        check_key_id(key)
        return key
    return load_signing_key(os.fspath(key), prompt=prompt)


def trusted_key(key: PublicKey | KeyRef) -> PublicKey:
    """The public key of a signer whose signatures count."""
    if isinstance(key, PublicKey):
        loaded, name = key, "a trusted key"
    else:
        loaded, name = load_public_key(os.fspath(key)), display_ref(os.fspath(key))
    if not loaded.kind.signs:
        raise KeyTypeError(
            f"{name} holds an encryption key ({loaded.algorithm}); "
            "--trusted-key takes a signer's key",
            hint="pass the .pub of the key given to `aoe-pack build --sign-key`",
        )
    return loaded


def public_key(key: PublicKey | KeyRef) -> PublicKey:
    """A public key, loaded if it is a reference; what it may do is checked where it is used."""
    if isinstance(key, PublicKey):
        return key
    return load_public_key(os.fspath(key))


def kek(key: bytes | KeyRef) -> bytes:
    """A 32-byte symmetric key-encryption key: the bytes, or a key file (hex) to read."""
    if isinstance(key, bytes):
        if len(key) != _wrap.KEK_SIZE:
            raise KeyFormatError(
                f"an encryption key of {len(key)} bytes was given; it must be {_wrap.KEK_SIZE}",
                hint="make one with `aoe-pack keygen --type aes256`",
            )
        return key
    return load_kek(os.fspath(key))


def decryption_key(
    key: DecryptionKey | PrivateKey | bytes | KeyRef, *, prompt: PasswordPrompt | None = None
) -> DecryptionKey:
    """A recipient's private key, or the key-encryption key given at build time."""
    if isinstance(key, DecryptionKey):
        return key
    if isinstance(key, PrivateKey):
        agreeing = _keys.for_key_agreement(key)
        if agreeing.kind.signs:
            raise KeyTypeError(
                "a signing key was given to decrypt; decryption needs a recipient key or key file",
                hint="pass the .key made with --type x25519/p256-kem/mlkem768-x25519, "
                "or the --encryption-key-file used at build time",
            )
        return DecryptionKey(origin="the decryption key", private=agreeing)
    if isinstance(key, bytes):
        return DecryptionKey(origin="the encryption key", kek=kek(key))
    return load_decryption_key(os.fspath(key), prompt=prompt)
