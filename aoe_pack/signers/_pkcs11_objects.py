"""Finding a ``pkcs11:`` key's token and private key, and reading its public key.

The token is the one initialised token whose attributes match the URI's, never
a slot by position; the key the one private key of that label and id. Its
public key is the private key's own ``CKA_EC_POINT`` where the token shows it,
else that of the public key object of the same id (or label).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pkcs11
from pkcs11 import Attribute, KeyType, ObjectClass, TokenFlag
from pkcs11 import exceptions as p11

from aoe_pack._crypto import hsm
from aoe_pack.errors import (
    AmbiguousKeyError,
    KeyNotFoundError,
    KeyTypeError,
    SignerError,
    TokenNotFoundError,
)
from aoe_pack.keys import PublicKey, public_key_from_spki
from aoe_pack.signers._pkcs11_uri import Pkcs11Uri

if TYPE_CHECKING:
    from pkcs11._pkcs11 import lib as Library  # noqa: N812 - a class, lower-case in Cython

_LISTED = 10
"""How many tokens or keys an error lists."""


def find_token(lib: Library, uri: Pkcs11Uri, shown: str) -> pkcs11.Token:
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
        raise SignerError(f"{shown}: cannot list the module's tokens: {rv(e)}") from e
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


def key_template(label: str | None, cka_id: bytes | None) -> dict[Attribute, Any]:
    template: dict[Attribute, Any] = {Attribute.CLASS: ObjectClass.PRIVATE_KEY}
    if label is not None:
        template[Attribute.LABEL] = label
    if cka_id is not None:
        template[Attribute.ID] = cka_id
    return template


def objects(session: pkcs11.Session, template: Mapping[Attribute, Any]) -> list[Any]:
    # Listed at once: python-pkcs11's search stays open while its generator lives,
    # and no other call may run in the session meanwhile.
    return list(session.get_objects(dict(template)))


def find_key(session: pkcs11.Session, uri: Pkcs11Uri, token: pkcs11.Token, shown: str) -> Any:
    try:
        keys = objects(session, key_template(uri.path.get("object"), uri.id))
        if len(keys) == 1:
            return keys[0]
        listed = keys or objects(session, key_template(None, None))
        described = sorted(_describe_key(k) for k in listed)
    except p11.PKCS11Error as e:
        raise SignerError(f"{shown}: cannot search token {token.label!r}: {rv(e)}") from e
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
    label, cka_id = attribute(key, Attribute.LABEL), attribute(key, Attribute.ID)
    kind = _key_type_name(attribute(key, Attribute.KEY_TYPE))
    return f"object={label!r} id={_pct(cka_id or b'')} ({kind})"


def public_key_of(session: pkcs11.Session, key: Any, shown: str) -> PublicKey:
    key_type = attribute(key, Attribute.KEY_TYPE)
    if key_type not in (KeyType.EC, KeyType.EC_EDWARDS):
        raise KeyTypeError(
            f"{shown} is a {_key_type_name(key_type)} key; aoe-pack signs with Ed25519 "
            "and ECDSA P-256 keys",
            hint="generate an Ed25519 (EC_EDWARDS, edwards25519) or EC prime256v1 key pair",
        )
    partner = None
    params = attribute(key, Attribute.EC_PARAMS)
    if params is None:
        partner = _public_object(session, key, key_type, None, shown)
        params = attribute(partner, Attribute.EC_PARAMS)
    curve = hsm.curve_of(params or b"")
    if curve not in (hsm.ED25519, hsm.P256):
        raise KeyTypeError(
            f"{shown} is a key on curve {curve or 'unknown to aoe-pack'}; aoe-pack signs "
            "with Ed25519 and ECDSA P-256 keys",
            hint="generate an Ed25519 (EC_EDWARDS, edwards25519) or EC prime256v1 key pair",
        )
    if attribute(key, Attribute.SIGN) is False:
        raise KeyTypeError(f"{shown}: the token does not let this key sign (CKA_SIGN is false)")
    point = attribute(key, Attribute.EC_POINT)
    if point is None:
        partner = partner or _public_object(session, key, key_type, curve, shown)
        point = attribute(partner, Attribute.EC_POINT) or b""
    try:
        spki = hsm.spki(curve, hsm.public_point(point, curve))
    except hsm.EncodingError as e:
        raise SignerError(f"{shown}: {e}") from e
    return public_key_from_spki(spki, origin=shown)


def _public_object(
    session: pkcs11.Session, key: Any, key_type: Any, curve: str | None, shown: str
) -> Any:
    """The public key object paired with ``key``: the same CKA_ID, else the same label."""
    cka_id, label = attribute(key, Attribute.ID), attribute(key, Attribute.LABEL)
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
        found = objects(session, template)
    except p11.PKCS11Error as e:
        raise SignerError(f"{shown}: cannot search for the public key: {rv(e)}") from e
    if curve is not None:  # one curve may be written two ways (an OID, or edwards25519)
        found = [o for o in found if _curve(o) in (None, curve)]
    points = {attribute(o, Attribute.EC_POINT) for o in found}
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
    params = attribute(obj, Attribute.EC_PARAMS)
    return None if params is None else hsm.curve_of(params) or "unknown"


def attribute(obj: Any, name: Attribute) -> Any:
    """An attribute's value; None when the token has none for this object or hides it."""
    try:
        return obj[name]
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


def rv(error: p11.PKCS11Error) -> str:
    """A python-pkcs11 error as the PKCS#11 return value it stands for, for messages."""
    text = str(error).strip()
    return type(error).__name__ + (f" ({text})" if text else "")
