"""Signers: whatever holds a signing key, a key file or a key that never leaves its HSM or KMS.

aoe-pack signs DSSE pre-authentication encoding bytes (:mod:`aoe_pack.dsse`).
A key loaded from a file signs them in this process; a key held elsewhere is
a :class:`Signer`, found by the scheme of its reference through the entry-point
group ``aoe_pack.signers`` (``pkcs11:`` and ``awskms://`` ship with aoe-pack;
``gcpkms://``, ``azurekms://`` or ``hashivault://`` can be added by a package
that registers the scheme, as converters are added). Whoever signs, the key id
is the SHA-256 of the public key's SPKI DER, and a signature verifies exactly
as a file key's would: Ed25519 over the bytes, or DER ECDSA P-256 over their
SHA-256.

Every signature a signer returns is verified against its public key before
it is used, so an HSM or KMS that signs with another key, or returns
garbage, is refused by name instead of producing a bundle no device accepts.
And before a signer is used at all, even only for its public key (``aoe-pack
public-key``), it signs a random challenge that must verify under that public
key: a token whose public key object was replaced by someone without its PIN
(the object is public, and so writable in a session without login) would
otherwise hand out the replacement as the key to trust.
"""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Callable, Mapping
from typing import Protocol, TypeAlias, runtime_checkable

from aoe_pack._crypto import sign as _sign
from aoe_pack._crypto.asymmetric import PrivateKey, PublicKey
from aoe_pack.errors import KeyReferenceError, KeyTypeError, SignerError
from aoe_pack.keys.display import display_ref

GROUP = "aoe_pack.signers"

_SCHEME = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]+):(?P<rest>.*)", re.DOTALL)
"""A URI scheme of two characters or more: ``C:\\keys\\a.key`` is a Windows path."""


@runtime_checkable
class Signer(Protocol):
    """A signing key held elsewhere, behind a signing call."""

    @property
    def ref(self) -> str:
        """The reference it was opened from, for messages (no secret in it)."""
        ...

    @property
    def public(self) -> PublicKey:
        """Its public key, as the HSM or KMS reports it."""
        ...

    @property
    def key_id(self) -> str:
        """The SHA-256 of the public key's SPKI DER (``public.key_id``)."""
        ...

    def sign(self, message: bytes) -> bytes:
        """The signature of ``message``: Ed25519's 64 bytes, or DER ECDSA-SHA256 for P-256."""
        ...


SigningKey: TypeAlias = PrivateKey | Signer
"""What signs: a private key loaded from a file, or a :class:`Signer`."""

SignerFactory = Callable[..., Signer]
"""An entry point of ``aoe_pack.signers``: ``factory(ref, *, pin=None) -> Signer``.

``ref`` is the whole reference (``pkcs11:token=...``); ``pin`` the bytes of
the key's ``--key-password`` source, when one was given for it.
"""


def sign_with(key: SigningKey, message: bytes) -> bytes:
    """``key``'s signature of ``message``, checked against its public key if it came from afar."""
    if isinstance(key, PrivateKey):
        return _sign.sign(key, message)
    signature = _signature(key, message)
    if not _sign.verify(key.public, signature, message):
        raise SignerError(
            f"{display_ref(key.ref)} returned a signature that does not verify under its own "
            "public key",
            hint="the HSM or KMS signed with another key or algorithm; check the key reference",
        )
    return signature


def _signature(signer: Signer, message: bytes) -> bytes:
    """What ``signer`` returns for ``message``, its own failures reported by its reference."""
    try:
        return signer.sign(message)
    except SignerError:
        raise
    except Exception as e:  # a plugin's own failure, reported by the key it is for
        raise SignerError(
            f"{display_ref(signer.ref)} could not sign: {type(e).__name__}: {e}"
        ) from e


def scheme_of(ref: str) -> str | None:
    """The URI scheme of ``ref`` when a signer is registered for it, else None (a path)."""
    m = _SCHEME.fullmatch(ref)
    if m is None or ref.startswith("env://"):
        return None
    scheme = m.group("scheme").lower()
    if scheme in signer_factories():
        return scheme
    if m.group("rest").startswith("//"):
        known = ", ".join(sorted(f"{s}:" for s in signer_factories())) or "none"
        raise KeyReferenceError(
            f"no signer is installed for {scheme}:// keys (installed: {known})",
            hint="install the package that provides it, or pass a key file or env://VAR",
        )
    return None


@functools.cache
def signer_factories() -> Mapping[str, Callable[[], SignerFactory]]:
    """Every registered signer, by URI scheme: a loader of its factory.

    A factory is imported only when a key of its scheme is opened, so a
    missing optional package fails that key, never every command.
    """
    # Imported here: importlib.metadata costs every command start-up, plug-ins only some.
    from importlib.metadata import entry_points

    return {ep.name.lower(): ep.load for ep in entry_points(group=GROUP)}


def open_signer(ref: str, scheme: str, *, pin: bytes | None = None) -> Signer:
    """The :class:`Signer` behind ``ref``, through the plugin registered for ``scheme``."""
    loader = signer_factories()[scheme]
    try:
        factory = loader()
    except ImportError as e:
        raise KeyReferenceError(
            f"{scheme}: keys need a package that is not installed ({e.name})",
            hint=f"pip install 'aoe-pack[{_EXTRAS.get(scheme, scheme)}]'",
        ) from e
    shown = display_ref(ref)
    signer = factory(ref, pin=pin)
    if not isinstance(signer, Signer):
        raise SignerError(f"the {scheme}: signer plugin did not return a Signer for {shown}")
    check_key_id(signer)
    if not signer.public.kind.signs:
        raise KeyTypeError(f"{shown} is a {signer.public.algorithm} key, not a signing key")
    check_possession(signer, scheme)
    return signer


CHALLENGE_PREFIX = b"aoe-pack: does this public key belong to this signer?\n"
"""What the random challenge starts with: never a DSSE PAE (``DSSEv1 ...``), so its
signature, which is thrown away anyway, signs nothing aoe-pack or a device accepts."""

_PUBLIC_KEY_OF = {
    "pkcs11": "the token's public key object",
    "awskms": "the public key AWS KMS reports",
}
"""What, for each scheme, the public key a signer reports is."""


def check_possession(signer: Signer, scheme: str) -> None:
    """Refuse ``signer`` unless it signs a random challenge that verifies under its public key.

    The same check :func:`sign_with` makes of every signature, made once
    before the public key is trusted for anything: exported by ``aoe-pack
    public-key`` as a ``--root-key`` or ``--trusted-key``, or named in a
    document. A public key that is another key's (a token's public key object
    replaced or mislabelled) is refused here, before it is handed out.
    """
    challenge = CHALLENGE_PREFIX + secrets.token_bytes(32)
    if _sign.verify(signer.public, _signature(signer, challenge), challenge):
        return
    what = _PUBLIC_KEY_OF.get(scheme, f"the public key the {scheme}: signer reports")
    raise SignerError(
        f"{display_ref(signer.ref)}: {what} does not belong to its private key: a random "
        "challenge signed with the key does not verify under it",
        hint="someone who can write to the token or service may have replaced the public key "
        "(or it was set up wrongly): trust no public key exported from it; restore the public "
        "key from a copy you trust, or generate a new key pair",
    )


def check_key_id(signer: Signer) -> None:
    """Refuse a signer whose ``key_id`` is not its public key's.

    Signatures are labelled, and trusted, by key id: one that names another
    key than the one that signs would count, wherever its label is believed,
    for a key that never signed.
    """
    claimed, actual = signer.key_id, signer.public.key_id
    if claimed != actual:
        raise SignerError(
            f"{display_ref(signer.ref)} reports key id {str(claimed)[:16]}…, but the id of "
            f"its public key is {actual[:16]}…",
            hint="a key id is the SHA-256 of the public key's SubjectPublicKeyInfo DER; "
            "the signer plugin is faulty, report it to its authors",
        )


_EXTRAS = {"pkcs11": "pkcs11", "awskms": "kms"}
