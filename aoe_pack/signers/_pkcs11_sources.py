"""Where a ``pkcs11:`` key's PKCS#11 module and PIN come from (docs/keys.md).

The module: the URI's ``module-path`` (absolute), else its ``module-name`` (a
p11-kit registration, else a library the system's loader finds), else
``AOE_PACK_PKCS11_MODULE``. The PIN: the key's ``--key-password`` source, else
the URI's ``pin-source`` (a file, never a variable) or ``pin-value``, else
``AOE_PACK_PKCS11_PIN``; a ``--key-password`` for a URI with a ``pin-value``
is refused, two answers to one question.
"""

from __future__ import annotations

import ctypes.util
import os
import sys
import sysconfig
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from aoe_pack.errors import (
    KeyPasswordError,
    KeyReferenceError,
    PasswordSourceError,
    SignerModuleError,
    UsageError,
)
from aoe_pack.keys import read_password, read_password_file
from aoe_pack.signers._pkcs11_uri import Pkcs11Uri

MODULE_ENV = "AOE_PACK_PKCS11_MODULE"
"""The PKCS#11 module of every ``pkcs11:`` key whose URI names none."""
PIN_ENV = "AOE_PACK_PKCS11_PIN"
"""The PIN of every ``pkcs11:`` key with no ``--key-password`` and no PIN in its URI."""

P11KIT_CONFIG_DIRS = (
    "~/.config/pkcs11/modules",
    "/etc/pkcs11/modules",
    "/usr/share/p11-kit/modules",
)
"""Where p11-kit registers modules (``NAME.module``, with a ``module:`` line): ``module-name``."""
P11KIT_MODULE_DIRS = (
    f"/usr/lib/{sysconfig.get_config_var('MULTIARCH')}/pkcs11",
    "/usr/lib64/pkcs11",
    "/usr/lib/pkcs11",
)
"""Where p11-kit looks for a module a registration names by a relative path."""


def module_path(uri: Pkcs11Uri, shown: str) -> str:
    """The absolute, resolved path of the PKCS#11 module ``uri`` is to be opened with."""
    if "module-path" in uri.query:
        path, origin = uri.query["module-path"], "module-path"
    elif "module-name" in uri.query:
        path, origin = _named_module(uri.query["module-name"], shown), "module-name"
    elif os.environ.get(MODULE_ENV):
        path, origin = os.environ[MODULE_ENV], MODULE_ENV
    else:
        raise KeyReferenceError(
            f"{shown} names no PKCS#11 module",
            hint=f"add ?module-path=/path/to/the/module to the URI, or set {MODULE_ENV} "
            "(SoftHSM2 on Debian: /usr/lib/softhsm/libsofthsm2.so)",
        )
    if not Path(path).is_absolute():
        # A relative path would load whatever library the working folder holds.
        raise SignerModuleError(
            f"{shown}: the PKCS#11 module {path} (from {origin}) is a relative path",
            hint="give the module's absolute path",
        )
    if not Path(path).is_file():
        raise SignerModuleError(
            f"{shown}: the PKCS#11 module {path} (from {origin}) does not exist",
            hint="install the token's PKCS#11 library, or correct the path",
        )
    return os.path.realpath(path)


def _named_module(name: str, shown: str) -> str:
    """``module-name``: a p11-kit registration of that name, else the loader's library."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise KeyReferenceError(
            f"{shown}: module-name is a module's name, not a path",
            hint="give a path as module-path",
        )
    if sys.platform != "win32":  # p11-kit is a Unix registry
        for folder in P11KIT_CONFIG_DIRS:
            module = _p11kit_module(Path(folder).expanduser() / f"{name}.module")
            if module is not None:
                return module
    found = ctypes.util.find_library(name)
    if found is not None and Path(found).is_absolute():
        return found
    where = ", ".join(P11KIT_CONFIG_DIRS)
    raise SignerModuleError(
        f"{shown}: no PKCS#11 module is named {name!r} (looked in {where} and the system's "
        "library path)",
        hint="give the module's absolute path as module-path",
    )


def _p11kit_module(config: Path) -> str | None:
    """The ``module:`` of a p11-kit module file, relative ones in p11-kit's module folder."""
    try:
        lines = config.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for line in lines:
        key, colon, value = line.partition(":")
        if colon and key.strip() == "module" and value.strip():
            module = Path(value.strip())
            if module.is_absolute():
                return str(module)
            found = (Path(folder) / module for folder in P11KIT_MODULE_DIRS)
            return next((str(path) for path in found if path.is_file()), None)
    return None


def check_one_pin(uri: Pkcs11Uri, pin: bytes | None, shown: str) -> None:
    """Refuse a ``--key-password`` for a URI that holds its PIN: two answers to one question."""
    if pin is not None and "pin-value" in uri.query:
        raise UsageError(
            f"{shown}: --key-password gives the token's PIN, and so does the URI's pin-value; "
            "give one",
            hint="drop pin-value from the URI (it puts the PIN on the command line), "
            "or drop the --key-password",
        )


def pin_of(uri: Pkcs11Uri, pin: bytes | None, shown: str) -> tuple[str | None, str]:
    """The PIN, as text, and where it came from (for messages)."""
    check_one_pin(uri, pin, shown)
    if pin is not None:
        raw, origin = pin, "--key-password"
    elif "pin-source" in uri.query:
        origin = "pin-source"
        raw = read_password_file(_pin_file(uri.query["pin-source"], shown), key=shown)
    elif "pin-value" in uri.query:
        raw, origin = uri.query["pin-value"].encode(), "pin-value"
        if not raw:
            raise PasswordSourceError(f"{shown}: pin-value is empty")
    elif PIN_ENV in os.environ:
        raw, origin = read_password(f"env://{PIN_ENV}", key=shown), PIN_ENV
    else:
        return None, "no PIN"
    try:
        return raw.decode("utf-8"), origin
    except UnicodeDecodeError:
        raise KeyPasswordError(
            f"{shown}: the PIN from {origin} is not UTF-8 text, as a PKCS#11 PIN is"
        ) from None


def _pin_file(source: str, shown: str) -> str:
    """The path of a pin-source: a path, or a ``file:`` URI (RFC 8089)."""
    scheme, colon, _ = source.partition(":")
    if not colon or len(scheme) < 2 or not scheme.isalpha():  # a path, C:\\ included
        return source
    if scheme.lower() != "file":
        raise KeyReferenceError(
            f"{shown}: pin-source {scheme}: is not supported",
            hint="aoe-pack reads a PIN from a file: pin-source=file:/path/to/pin",
        )
    parts = urlsplit(source)
    if parts.netloc not in ("", "localhost"):
        raise KeyReferenceError(
            f"{shown}: pin-source names a file on host {parts.netloc}",
            hint="name a local file: file:/path or file:///path",
        )
    path = url2pathname(parts.path)
    if not Path(path).is_absolute():  # RFC 8089: file:env://PIN is no file URI of anything
        raise KeyReferenceError(
            f"{shown}: pin-source {source} is not a file URI of an absolute path",
            hint="write file:/path/to/pin or file:///path/to/pin; a pin-source is always a file",
        )
    return path
