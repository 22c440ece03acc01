"""Generate and load keys.

Wherever aoe-pack takes a key, the reference is a file path or ``env://VAR``
(cosign's convention: the variable holds the PEM text, or for an encryption
key file its hex). Private keys may be PKCS#8-encrypted; each key's password
comes from a source of its own (``env://VAR`` or a file, see
:mod:`aoe_pack.keys.password`), else from ``AOE_PACK_PASSWORD``, else, in a
terminal, from a prompt the CLI supplies.
"""

from aoe_pack._crypto.asymmetric import KeyKind, PrivateKey, PublicKey
from aoe_pack.keys.display import display_ref
from aoe_pack.keys.export import ExportedPublicKey, export_public_key
from aoe_pack.keys.generate import GeneratedKey, keygen
from aoe_pack.keys.load import (
    DecryptionKey,
    PasswordPrompt,
    load_decryption_key,
    load_public_key,
    load_signing_key,
    public_key_from_spki,
    read_key_ref,
)
from aoe_pack.keys.password import (
    PASSWORD_ENV,
    password_sources,
    read_password,
    read_password_file,
)
from aoe_pack.keys.signer import Signer, SigningKey

__all__ = [
    "PASSWORD_ENV",
    "DecryptionKey",
    "ExportedPublicKey",
    "GeneratedKey",
    "KeyKind",
    "PasswordPrompt",
    "PrivateKey",
    "PublicKey",
    "Signer",
    "SigningKey",
    "display_ref",
    "export_public_key",
    "keygen",
    "load_decryption_key",
    "load_public_key",
    "load_signing_key",
    "password_sources",
    "public_key_from_spki",
    "read_key_ref",
    "read_password",
    "read_password_file",
]
