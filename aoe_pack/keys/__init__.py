"""Generate and load keys.

Wherever aoe-pack takes a key, the reference is a file path or ``env://VAR``
(cosign's convention: the variable holds the PEM text, or for an encryption
key file its hex). Private keys may be PKCS#8-encrypted; each key's password
comes from a source of its own (``env://VAR`` or a file, see
:mod:`aoe_pack.keys.password`), else from ``AOE_PACK_PASSWORD``, else, in a
terminal, from a prompt the CLI supplies.

Each name is imported from its module when first used: verifying a bundle
loads neither key generation nor export.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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

# Each name's module, imported on first use (PEP 562), so that a command
# pays only for the modules it uses.
_LAZY = {
    "DecryptionKey": "aoe_pack.keys.load",
    "ExportedPublicKey": "aoe_pack.keys.export",
    "GeneratedKey": "aoe_pack.keys.generate",
    "KeyKind": "aoe_pack._crypto.asymmetric",
    "PASSWORD_ENV": "aoe_pack.keys.password",
    "PasswordPrompt": "aoe_pack.keys.load",
    "PrivateKey": "aoe_pack._crypto.asymmetric",
    "PublicKey": "aoe_pack._crypto.asymmetric",
    "Signer": "aoe_pack.keys.signer",
    "SigningKey": "aoe_pack.keys.signer",
    "display_ref": "aoe_pack.keys.display",
    "export_public_key": "aoe_pack.keys.export",
    "keygen": "aoe_pack.keys.generate",
    "load_decryption_key": "aoe_pack.keys.load",
    "load_public_key": "aoe_pack.keys.load",
    "load_signing_key": "aoe_pack.keys.load",
    "password_sources": "aoe_pack.keys.password",
    "public_key_from_spki": "aoe_pack.keys.load",
    "read_key_ref": "aoe_pack.keys.load",
    "read_password": "aoe_pack.keys.password",
    "read_password_file": "aoe_pack.keys.password",
}

if not TYPE_CHECKING:

    def __getattr__(name: str) -> object:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        # Not cached here: a test that patches the module is then seen, and undone.
        return getattr(importlib.import_module(module), name)

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})
