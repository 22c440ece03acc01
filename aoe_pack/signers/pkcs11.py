"""Keys in a PKCS#11 token (an HSM, a smart card, SoftHSM2): ``pkcs11:`` references.

::

    pkcs11:token=release;object=root-2026?module-path=/usr/lib/softhsm/libsofthsm2.so

The reference is an RFC 7512 URI (:mod:`aoe_pack.signers._pkcs11_uri`).

- **Module**: the token vendor's PKCS#11 library, from the URI's
  ``module-path`` (an absolute path) or ``module-name`` (a p11-kit module
  name, else a library name the system's loader finds), else from
  ``AOE_PACK_PKCS11_MODULE``.
- **PIN**: from the key's ``--key-password KEY SOURCE`` (``pin``), else the
  URI's ``pin-source`` (a file, as a path or ``file:`` URI) or ``pin-value``,
  else ``AOE_PACK_PKCS11_PIN``. A token that needs a login and gets no PIN is
  an error; aoe-pack never prompts for one.
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

import ctypes.util
import hashlib
import os
import sys
import sysconfig
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass, TokenFlag
from pkcs11 import exceptions as p11

from aoe_pack._crypto import hsm
from aoe_pack.errors import (
    AmbiguousKeyError,
    KeyNotFoundError,
    KeyPasswordError,
    KeyReferenceError,
    KeyTypeError,
    PasswordSourceError,
    SignerError,
    SignerModuleError,
    TokenNotFoundError,
    WrongPinError,
)
from aoe_pack.keys import KeyKind, PublicKey, public_key_from_spki, read_password
from aoe_pack.signers._pkcs11_uri import Pkcs11Uri, parse, redact

if TYPE_CHECKING:
    from pkcs11._pkcs11 import lib as Library  # noqa: N812 - a class, lower-case in Cython

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

_LOCK = threading.Lock()
"""One PKCS#11 call at a time: modules are initialised without OS locking (C_Initialize(NULL))."""

_LISTED = 10
"""How many tokens or keys an error lists."""


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
            keys = _objects(session, _key_template(self._label, self._cka_id))
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
                raise SignerError(f"{self.ref}: the token refused to sign: {_rv(e)}") from e
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
    module = module_path(uri, shown)
    user_pin, pin_origin = _pin(uri, pin, shown)
    with _LOCK:
        lib = _load(module, shown)
        token = _find_token(lib, uri, shown)
        if user_pin is None and token.flags & TokenFlag.LOGIN_REQUIRED:
            raise KeyPasswordError(
                f"{shown}: token {token.label!r} needs a PIN, and none was given",
                hint=f"pass --key-password {shown} SOURCE (env://VAR or a file), put "
                f"pin-source=file:/path in the URI's query, or set {PIN_ENV}",
            )
        with _session(token, user_pin, pin_origin, shown) as session:
            key = _find_key(session, uri, token, shown)
            public = _public_key(session, key, shown)
            label, cka_id = _attribute(key, Attribute.LABEL), _attribute(key, Attribute.ID)
            always = bool(_attribute(key, Attribute.ALWAYS_AUTHENTICATE))
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


def _pin(uri: Pkcs11Uri, pin: bytes | None, shown: str) -> tuple[str | None, str]:
    """The PIN, as text, and where it came from (for messages)."""
    if pin is not None:
        raw, origin = pin, "--key-password"
    elif "pin-source" in uri.query:
        origin = "pin-source"
        raw = read_password(_pin_file(uri.query["pin-source"], shown), key=shown)
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
    return url2pathname(parts.path)


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
            f"{shown}: the PKCS#11 module {module} failed to start: {_rv(e)}",
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


def _find_token(lib: Library, uri: Pkcs11Uri, shown: str) -> pkcs11.Token:
    library = {
        "library-manufacturer": lib.manufacturer_id,
        "library-description": lib.library_description,
        "library-version": "{}.{}".format(*lib.library_version),
    }
    for name, value in library.items():
        wanted = uri.path.get(name)
        if wanted is not None and not _version_matches(name, wanted, value):
            raise TokenNotFoundError(
                f"{shown}: the module's {name} is {value!r}, not {wanted!r}",
                hint="remove the library attributes, or point module-path at that library",
            )
    try:
        slots = lib.get_slots(token_present=True)
        tokens = [t for t in (_token_of(s) for s in slots) if t is not None]
    except p11.PKCS11Error as e:
        raise SignerError(f"{shown}: cannot list the module's tokens: {_rv(e)}") from e
    found = [t for t in tokens if _token_matches(t, uri)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise TokenNotFoundError(
            f"{shown}: no token matches; the module has "
            + (
                _listed(sorted(_describe_token(t) for t in tokens))
                if tokens
                else "no initialised token"
            ),
            hint="name the token by its label (token=) or serial (serial=)",
        )
    raise AmbiguousKeyError(
        f"{shown}: {len(found)} tokens match: {_listed(sorted(_describe_token(t) for t in found))}",
        hint="add serial= to name one token",
    )


def _token_of(slot: pkcs11.Slot) -> pkcs11.Token | None:
    try:
        token = slot.get_token()
    except (p11.TokenNotPresent, p11.TokenNotRecognised):
        return None
    return token if token.flags & TokenFlag.TOKEN_INITIALIZED else None


def _token_matches(token: pkcs11.Token, uri: Pkcs11Uri) -> bool:
    slot = token.slot
    have = {
        "token": token.label,
        "manufacturer": token.manufacturer_id,
        "serial": _serial(token),
        "model": token.model,
        "slot-description": slot.slot_description,
        "slot-manufacturer": slot.manufacturer_id,
        "slot-id": str(slot.slot_id),
    }
    return all(uri.path[name] == value for name, value in have.items() if name in uri.path)


def _version_matches(name: str, wanted: str, value: str) -> bool:
    if name != "library-version":
        return wanted == value
    major, _, minor = wanted.partition(".")
    have_major, _, have_minor = value.partition(".")
    return int(major) == int(have_major) and int(minor or 0) == int(have_minor)


def _serial(token: pkcs11.Token) -> str:
    return token.serial.decode("ascii", errors="replace").strip()


def _describe_token(token: pkcs11.Token) -> str:
    return (
        f"token={token.label!r} (serial {_serial(token)}, "
        f"{token.manufacturer_id.strip()} {token.model.strip()})"
    )


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
        raise SignerError(f"{shown}: cannot log in to token {token.label!r}: {_rv(e)}") from e
    try:
        yield session
    finally:
        # The key's work is done or failed already; a session that cannot close
        # (a token pulled out) ends with the process, and its error would hide the first.
        with suppress(p11.PKCS11Error):
            session.close()


# --- the key and its public half -----------------------------------------------------------


def _key_template(label: str | None, cka_id: bytes | None) -> dict[Attribute, Any]:
    template: dict[Attribute, Any] = {Attribute.CLASS: ObjectClass.PRIVATE_KEY}
    if label is not None:
        template[Attribute.LABEL] = label
    if cka_id is not None:
        template[Attribute.ID] = cka_id
    return template


def _objects(session: pkcs11.Session, template: Mapping[Attribute, Any]) -> list[Any]:
    # Listed at once: python-pkcs11's search stays open while its generator lives,
    # and no other call may run in the session meanwhile.
    return list(session.get_objects(dict(template)))


def _find_key(session: pkcs11.Session, uri: Pkcs11Uri, token: pkcs11.Token, shown: str) -> Any:
    try:
        keys = _objects(session, _key_template(uri.path.get("object"), uri.id))
        if len(keys) == 1:
            return keys[0]
        listed = keys or _objects(session, _key_template(None, None))
        described = sorted(_describe_key(k) for k in listed)
    except p11.PKCS11Error as e:
        raise SignerError(f"{shown}: cannot search token {token.label!r}: {_rv(e)}") from e
    if not keys:
        holds = f"its private keys: {_listed(described)}" if described else "no private key"
        raise KeyNotFoundError(
            f"{shown}: token {token.label!r} has no private key of that label and id; {holds}",
            hint="name the key by its label (object=) and/or its id (id=, percent-encoded)",
        )
    raise AmbiguousKeyError(
        f"{shown}: {len(keys)} private keys of token {token.label!r} match: {_listed(described)}",
        hint="add object= and id= to name one key",
    )


def _describe_key(key: Any) -> str:
    label, cka_id = _attribute(key, Attribute.LABEL), _attribute(key, Attribute.ID)
    kind = _key_type_name(_attribute(key, Attribute.KEY_TYPE))
    return f"object={label!r} id={_pct(cka_id or b'')} ({kind})"


def _public_key(session: pkcs11.Session, key: Any, shown: str) -> PublicKey:
    key_type = _attribute(key, Attribute.KEY_TYPE)
    if key_type not in (KeyType.EC, KeyType.EC_EDWARDS):
        raise KeyTypeError(
            f"{shown} is a {_key_type_name(key_type)} key; aoe-pack signs with Ed25519 "
            "and ECDSA P-256 keys",
            hint="generate an Ed25519 (EC_EDWARDS, edwards25519) or EC prime256v1 key pair",
        )
    partner = None
    params = _attribute(key, Attribute.EC_PARAMS)
    if params is None:
        partner = _public_object(session, key, key_type, None, shown)
        params = _attribute(partner, Attribute.EC_PARAMS)
    curve = hsm.curve_of(params or b"")
    if curve not in (hsm.ED25519, hsm.P256):
        raise KeyTypeError(
            f"{shown} is a key on curve {curve or 'unknown to aoe-pack'}; aoe-pack signs "
            "with Ed25519 and ECDSA P-256 keys",
            hint="generate an Ed25519 (EC_EDWARDS, edwards25519) or EC prime256v1 key pair",
        )
    if _attribute(key, Attribute.SIGN) is False:
        raise KeyTypeError(f"{shown}: the token does not let this key sign (CKA_SIGN is false)")
    point = _attribute(key, Attribute.EC_POINT)
    if point is None:
        partner = partner or _public_object(session, key, key_type, curve, shown)
        point = _attribute(partner, Attribute.EC_POINT) or b""
    try:
        spki = hsm.spki(curve, hsm.public_point(point, curve))
    except hsm.EncodingError as e:
        raise SignerError(f"{shown}: {e}") from e
    return public_key_from_spki(spki, origin=shown)


def _public_object(
    session: pkcs11.Session, key: Any, key_type: Any, curve: str | None, shown: str
) -> Any:
    """The public key object paired with ``key``: the same CKA_ID, else the same label."""
    cka_id, label = _attribute(key, Attribute.ID), _attribute(key, Attribute.LABEL)
    template: dict[Attribute, Any] = {Attribute.CLASS: ObjectClass.PUBLIC_KEY}
    template[Attribute.KEY_TYPE] = key_type
    if cka_id:
        template[Attribute.ID] = cka_id
    elif label:
        template[Attribute.LABEL] = label
    else:
        raise SignerError(
            f"{shown}: the private key has neither an id nor a label to find its public key by",
            hint="give the key pair a CKA_ID (pkcs11-tool --id) when you create it",
        )
    try:
        found = _objects(session, template)
    except p11.PKCS11Error as e:
        raise SignerError(f"{shown}: cannot search for the public key: {_rv(e)}") from e
    if curve is not None:  # one curve may be written two ways (an OID, or edwards25519)
        found = [o for o in found if _curve(o) in (None, curve)]
    points = {_attribute(o, Attribute.EC_POINT) for o in found}
    if len(points) == 1 and None not in points:
        return found[0]
    by = f"id {_pct(cka_id)}" if cka_id else f"label {label!r}"
    if not found:
        raise SignerError(
            f"{shown}: the token holds no public key of {by}, and the private key does not "
            "show its own (CKA_EC_POINT)",
            hint="import the public key with the private key's id: "
            "pkcs11-tool --write-object KEY.pub --type pubkey --id ID",
        )
    raise SignerError(
        f"{shown}: the token holds {len(found)} different public keys of {by}",
        hint="delete the public key objects that do not belong to this private key",
    )


def _curve(obj: Any) -> str | None:
    params = _attribute(obj, Attribute.EC_PARAMS)
    return None if params is None else hsm.curve_of(params) or "unknown"


def _attribute(obj: Any, attribute: Attribute) -> Any:
    """An attribute's value; None when the token has none for this object or hides it."""
    try:
        return obj[attribute]
    except (p11.AttributeTypeInvalid, p11.AttributeSensitive, KeyError):
        return None


def _key_type_name(value: object) -> str:
    return value.name if isinstance(value, KeyType) else f"vendor-defined type {value!r}"


def _pct(data: bytes) -> str:
    """Bytes as an RFC 7512 id is written: every byte percent-encoded."""
    return "".join(f"%{b:02x}" for b in data) or "''"


def _listed(items: list[str]) -> str:
    shown = "; ".join(items[:_LISTED])
    return shown + (f"; and {len(items) - _LISTED} more" if len(items) > _LISTED else "")


def _rv(error: p11.PKCS11Error) -> str:
    """A python-pkcs11 error as the PKCS#11 return value it stands for, for messages."""
    text = str(error).strip()
    return type(error).__name__ + (f" ({text})" if text else "")
