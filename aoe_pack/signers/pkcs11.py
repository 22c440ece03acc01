"""Keys in a PKCS#11 token (an HSM, a smart card, SoftHSM2): ``pkcs11:`` references.

::

    pkcs11:token=release;object=root-2026?module-path=/usr/lib/softhsm/libsofthsm2.so

The reference is an RFC 7512 URI (read by ``_pkcs11_uri``); where the module
and PIN come from is ``_pkcs11_sources``, how the token, the key and its public
key are found ``_pkcs11_objects``; this module opens and signs.

- **Module**: the token vendor's PKCS#11 library, from the URI's
  ``module-path`` (an absolute path) or ``module-name`` (a p11-kit module
  name, else a library name the system's loader finds), else from
  ``AOE_PACK_PKCS11_MODULE``.
- **PIN**: from the key's ``--key-password KEY SOURCE`` (``pin``), else the
  URI's ``pin-source`` (a file, as a path or ``file:`` URI) or ``pin-value``
  (never both a ``pin`` and a ``pin-value``), else ``AOE_PACK_PKCS11_PIN``. A
  token that needs a login and gets no PIN is an error; aoe-pack never
  prompts for one.
- **Token**: the one initialised token whose label, serial, manufacturer and
  model (and library and slot attributes, if given) match the URI's; never a
  slot's position, which modules renumber.
- **Key**: the one private key whose label (``object``) and ``CKA_ID``
  (``id``) match. Its public key is the token's public key object of the same
  id (or label), or the private key's own ``CKA_EC_POINT`` where the token
  exposes it; the key id is the SHA-256 of that key's SubjectPublicKeyInfo.

No match, or more than one, is an error that lists what the token holds.
Ed25519 keys sign with CKM_EDDSA over the message, P-256 keys with CKM_ECDSA
over its SHA-256 (the token returns ``r || s``; aoe-pack writes DER). A
token's ECDSA draws a fresh nonce for each signature, so unlike a key file's
(RFC 6979) the same document signed twice gives different bytes; Ed25519 stays
deterministic.

Each signature runs in a session of its own: open, log in, find the key, sign,
log out, close, under one lock for the process. A token's login is shared by
every session of the process, so sessions kept open per key would fight over
it (a second C_Login fails with CKR_USER_ALREADY_LOGGED_IN, and one key's
C_Logout logs the other out); the cost is a login per signature, a few
milliseconds on SoftHSM2, and nothing is left open at exit. The PIN stays in
memory for as long as the signer lives.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pkcs11
from pkcs11 import Attribute, Mechanism, TokenFlag
from pkcs11 import exceptions as p11

from aoe_pack._crypto import hsm
from aoe_pack.errors import (
    KeyPasswordError,
    KeyReferenceError,
    SignerError,
    SignerModuleError,
    WrongPinError,
)
from aoe_pack.keys import KeyKind, PublicKey
from aoe_pack.signers._pkcs11_objects import (
    attribute,
    find_key,
    find_token,
    key_template,
    objects,
    public_key_of,
    rv,
)
from aoe_pack.signers._pkcs11_sources import (
    MODULE_ENV,
    PIN_ENV,
    check_one_pin,
    module_path,
    pin_of,
)
from aoe_pack.signers._pkcs11_uri import Pkcs11Uri, parse, redact

__all__ = ["MODULE_ENV", "PIN_ENV", "Pkcs11Signer", "load_module", "open_signer"]

if TYPE_CHECKING:
    from pkcs11._pkcs11 import lib as Library  # noqa: N812 - a class, lower-case in Cython

_LOCK = threading.Lock()
"""One PKCS#11 call at a time: modules are initialised without OS locking (C_Initialize(NULL))."""


@dataclass(frozen=True, eq=False)
class Pkcs11Signer:
    """A private key in a PKCS#11 token (a :class:`~aoe_pack.keys.Signer`)."""

    ref: str
    """The URI it was opened from, ``pin-value`` hidden."""
    public: PublicKey
    """Its public key, as the token holds it."""
    module: str
    """The PKCS#11 module's resolved path."""
    _token: pkcs11.Token = field(repr=False)
    _label: str | None = field(repr=False)
    _cka_id: bytes | None = field(repr=False)
    _pin: str | None = field(repr=False)
    _pin_origin: str = field(repr=False)
    _always_authenticate: bool = field(repr=False)

    @property
    def key_id(self) -> str:
        """The SHA-256 of the public key's SubjectPublicKeyInfo DER."""
        return self.public.key_id

    def sign(self, message: bytes) -> bytes:
        """Ed25519's 64 bytes over ``message``, or DER ECDSA over its SHA-256.

        A token's ECDSA draws its own nonce: the same message signed twice gives
        two different signatures, both valid.
        """
        ecdsa = self.public.kind is KeyKind.P256
        data = hashlib.sha256(message).digest() if ecdsa else message
        mechanism = Mechanism.ECDSA if ecdsa else Mechanism.EDDSA
        with _LOCK, _session(self._token, self._pin, self._pin_origin, self.ref) as session:
            keys = objects(session, key_template(self._label, self._cka_id))
            if len(keys) != 1:
                raise SignerError(
                    f"{self.ref}: the key is no longer the only one of its label and id "
                    f"in token {self._token.label!r} ({len(keys)} found)",
                    hint="the token changed since the key was opened; open it again",
                )
            reauth = self._pin if self._always_authenticate else None
            try:
                signature: bytes = keys[0].sign(data, mechanism=mechanism, pin=reauth)
            except p11.PKCS11Error as e:
                raise SignerError(f"{self.ref}: the token refused to sign: {rv(e)}") from e
        if not ecdsa:
            return signature
        try:
            return hsm.ecdsa_der(signature)
        except hsm.EncodingError as e:
            raise SignerError(f"{self.ref}: {e}") from e


def open_signer(ref: str, *, pin: bytes | None = None) -> Pkcs11Signer:
    """The private key ``ref`` names, found in its token, with its public key.

    The entry point of ``pkcs11`` in ``aoe_pack.signers``. ``pin`` is the
    bytes of the key's ``--key-password`` source, if it has one.
    """
    uri = parse(ref)
    shown = redact(ref)
    _check_names_a_private_key(uri, shown)
    check_one_pin(uri, pin, shown)  # a usage error: before the module is looked for
    module = module_path(uri, shown)
    user_pin, pin_origin = pin_of(uri, pin, shown)
    with _LOCK:
        lib = _load(module, shown)
        token = find_token(lib, uri, shown)
        if user_pin is None and token.flags & TokenFlag.LOGIN_REQUIRED:
            raise KeyPasswordError(
                f"{shown}: token {token.label!r} needs a PIN, and none was given",
                hint=f"pass --key-password {shown} SOURCE (env://VAR or a file), put "
                f"pin-source=file:/path in the URI's query, or set {PIN_ENV}",
            )
        with _session(token, user_pin, pin_origin, shown) as session:
            key = find_key(session, uri, token, shown)
            public = public_key_of(session, key, shown)
            label, cka_id = attribute(key, Attribute.LABEL), attribute(key, Attribute.ID)
            always = bool(attribute(key, Attribute.ALWAYS_AUTHENTICATE))
    return Pkcs11Signer(
        ref=shown,
        public=public,
        module=module,
        _token=token,
        _label=label,
        _cka_id=cka_id,
        _pin=user_pin,
        _pin_origin=pin_origin,
        _always_authenticate=always,
    )


# --- the reference -------------------------------------------------------------------------


def _check_names_a_private_key(uri: Pkcs11Uri, shown: str) -> None:
    kind = uri.path.get("type")
    if kind not in (None, "private"):
        raise KeyReferenceError(
            f"{shown} names a {kind} object; a signing key is a private key",
            hint="write type=private, or leave type out",
        )
    vendor = sorted(name for name in uri.path if name.startswith("x-"))
    if vendor:
        # A path attribute narrows which key is meant; one that cannot be honoured
        # would widen the match to keys its writer excluded.
        raise KeyReferenceError(
            f"{shown}: aoe-pack cannot match the vendor path attribute {vendor[0]}",
            hint="remove it; name the key by token, serial, object and id",
        )


# --- the module, the token, the session ---------------------------------------------------


_BOUND: dict[str, ctypes.CDLL] = {}
"""Modules loaded to bind to their own libraries, kept loaded for the process."""


def load_module(module: str) -> Library:
    """The PKCS#11 module at ``module`` (a resolved path), loaded and initialised.

    As the signer loads it: bound to its own libraries first. Anything else in
    the process that uses the same module (a tool that generates keys in the
    token, a test) should get it here, so that its first load is this one.
    """
    _bind_to_its_own_libraries(module)
    return pkcs11.lib(module)


def _load(module: str, shown: str) -> Library:
    try:
        return load_module(module)
    except p11.PKCS11Error as e:
        if type(e) is p11.PKCS11Error:  # the OS refused it, or it has no C_GetFunctionList
            reason = str(e).removeprefix(f"OS exception while loading {module}: ")
            raise SignerModuleError(
                f"{shown}: {module} is not a PKCS#11 module that loads here ({reason})",
                hint="module-path (or AOE_PACK_PKCS11_MODULE) names the token vendor's "
                "PKCS#11 library, such as /usr/lib/softhsm/libsofthsm2.so",
            ) from e
        raise SignerError(
            f"{shown}: the PKCS#11 module {module} failed to start: {rv(e)}",
            hint="check the module's own configuration (SoftHSM2 reads SOFTHSM2_CONF)",
        ) from e


def _bind_to_its_own_libraries(module: str) -> None:
    """Load ``module`` so that it calls its own libraries before any other's (glibc).

    A process that imported TensorFlow holds BoringSSL's functions under
    OpenSSL's names (libtensorflow_framework exports them); a module loaded
    after it, as SoftHSM2 with OpenSSL is, calls those instead of its own and
    crashes at its first login. RTLD_DEEPBIND makes the module look in its own
    dependencies first; python-pkcs11's dlopen then gets this same, loaded
    module. macOS (two-level namespaces) and Windows (per-DLL imports) bind a
    library to its own dependencies anyway, and have no such flag.
    """
    deepbind = getattr(os, "RTLD_DEEPBIND", None)
    if deepbind is None or module in _BOUND:
        return
    try:
        _BOUND[module] = ctypes.CDLL(module, mode=os.RTLD_NOW | os.RTLD_LOCAL | deepbind)
    except OSError:
        return  # python-pkcs11 loads it next, and says why it cannot


@contextmanager
def _session(
    token: pkcs11.Token, pin: str | None, origin: str, shown: str
) -> Iterator[pkcs11.Session]:
    """A session on ``token``, logged in with ``pin``; closed (and logged out) after."""
    try:
        session = token.open(user_pin=pin) if pin is not None else token.open()
    except (p11.PinIncorrect, p11.PinLenRange) as e:
        raise WrongPinError(
            f"{shown}: wrong PIN for token {token.label!r} (from {origin})",
            hint="check the PIN; a token locks itself after a few wrong ones",
        ) from e
    except p11.PinLocked as e:
        raise SignerError(
            f"{shown}: token {token.label!r} is locked after too many wrong PINs",
            hint="its security officer must unlock it (softhsm2-util/pkcs11-tool --init-pin)",
        ) from e
    except p11.UserAlreadyLoggedIn:
        # This process (the application around aoe-pack) holds a login to the token.
        # Logins are per token, not per session: use it, and leave it as it is.
        session = token.open()
    except p11.PKCS11Error as e:
        raise SignerError(f"{shown}: cannot log in to token {token.label!r}: {rv(e)}") from e
    try:
        yield session
    finally:
        # The key's work is done or failed already; a session that cannot close
        # (a token pulled out) ends with the process, and its error would hide the first.
        with suppress(p11.PKCS11Error):
            session.close()
