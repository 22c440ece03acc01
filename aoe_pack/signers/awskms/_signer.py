"""A KMS key behind the :class:`~aoe_pack.keys.Signer` interface."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from aoe_pack._crypto import sign as _sign
from aoe_pack.errors import KeyTypeError, SignerError
from aoe_pack.keys import KeyKind, PublicKey, public_key_from_spki
from aoe_pack.signers.awskms._client import CREATE_HINT, call
from aoe_pack.signers.awskms._ref import KmsKeyRef, MessageType

RAW_LIMIT = 4096
"""The most bytes KMS signs as a whole message (``MessageType=RAW``)."""

_KINDS = {"ECC_NIST_P256": KeyKind.P256, "ECC_NIST_EDWARDS25519": KeyKind.ED25519}
_ALGORITHMS = {KeyKind.P256: "ECDSA_SHA_256", KeyKind.ED25519: "ED25519_SHA_512"}


@dataclass(frozen=True)
class AwsKmsSigner:
    """A KMS key that signs as a key file of its kind does (:mod:`aoe_pack.signers.awskms`)."""

    ref: str
    public: PublicKey
    key_arn: str
    """The key as ``GetPublicKey`` named it; every ``Sign`` call names it so."""
    message_type: MessageType
    _client: Any = field(repr=False, compare=False)

    @property
    def key_id(self) -> str:
        """The SHA-256 of the SPKI DER that KMS reported."""
        return self.public.key_id

    @property
    def algorithm(self) -> str:
        """The KMS signing algorithm: ``ECDSA_SHA_256`` or ``ED25519_SHA_512``."""
        return _ALGORITHMS[self.public.kind]

    @classmethod
    def open(cls, key: KmsKeyRef, client: Any) -> AwsKmsSigner:
        """Ask KMS for the key's public key, and check that it signs as aoe-pack's do."""
        reply = call(
            key.ref, "kms:GetPublicKey", client, lambda: client.get_public_key(KeyId=key.key)
        )
        usage = reply.get("KeyUsage")
        spec = reply.get("KeySpec") or reply.get("CustomerMasterKeySpec")  # moto: only the latter
        if usage is not None and usage != "SIGN_VERIFY":
            raise KeyTypeError(
                f"{key.ref} is a {usage} KMS key, not a signing key", hint=CREATE_HINT
            )
        kind = _KINDS.get(str(spec))
        if kind is None:
            raise KeyTypeError(
                f"{key.ref} is a {spec} KMS key; aoe-pack signs with ECC_NIST_P256 "
                "(ECDSA P-256) or ECC_NIST_EDWARDS25519 keys",
                hint=CREATE_HINT,
            )
        algorithms = reply.get("SigningAlgorithms")
        if algorithms is not None and _ALGORITHMS[kind] not in algorithms:
            raise KeyTypeError(
                f"{key.ref} does not sign with {_ALGORITHMS[kind]} "
                f"(KMS offers {', '.join(algorithms) or 'nothing'})",
                hint=CREATE_HINT,
            )
        public = public_key_from_spki(bytes(reply["PublicKey"]), origin=key.ref)
        if public.kind is not kind:
            raise SignerError(
                f"{key.ref}: KMS reports a {spec} key but returned a {public.algorithm} public key"
            )
        return cls(
            ref=key.ref,
            public=public,
            key_arn=reply.get("KeyId") or key.key,
            message_type=_message_type(key, kind),
            _client=client,
        )

    def sign(self, message: bytes) -> bytes:
        """One ``Sign`` call: Ed25519's 64 bytes, or DER ECDSA over SHA-256 of ``message``."""
        if self.message_type is MessageType.DIGEST:
            body = hashlib.sha256(message).digest()
        elif len(message) > RAW_LIMIT:
            raise self._too_large(len(message))
        else:
            body = message
        reply = call(
            self.ref,
            "kms:Sign",
            self._client,
            lambda: self._client.sign(
                KeyId=self.key_arn,
                Message=body,
                MessageType=self.message_type.name,
                SigningAlgorithm=self.algorithm,
            ),
        )
        signature = bytes(reply["Signature"])
        if (
            self.message_type is MessageType.DIGEST
            and not _sign.verify(self.public, signature, message)
            and _sign.verify(self.public, signature, body)
        ):
            raise SignerError(
                f"{self.ref}: the KMS at {self._client.meta.endpoint_url} hashed the digest "
                "again (MessageType=DIGEST), unlike AWS KMS",
                hint="with such a server, add ?message-type=raw to the key reference "
                f"(messages of at most {RAW_LIMIT} bytes)",
            )
        return signature

    def _too_large(self, size: int) -> SignerError:
        if self.public.kind is KeyKind.ED25519:
            return SignerError(
                f"{self.ref}: {size} bytes to sign, but a KMS Ed25519 key signs at most "
                f"{RAW_LIMIT} bytes",
                hint="KMS has no digest form of pure Ed25519; sign this document with an "
                "ECC_NIST_P256 KMS key, whose digest signing has no size limit",
            )
        return SignerError(
            f"{self.ref}: {size} bytes to sign, but KMS signs at most {RAW_LIMIT} bytes "
            "with message-type=raw",
            hint="drop ?message-type=raw: by default KMS signs the message's SHA-256, "
            "whatever its size",
        )


def _message_type(key: KmsKeyRef, kind: KeyKind) -> MessageType:
    if kind is KeyKind.P256:
        return key.message_type or MessageType.DIGEST
    if key.message_type is MessageType.DIGEST:
        raise KeyTypeError(
            f"{key.ref}: an Ed25519 KMS key cannot sign digests as aoe-pack verifies them",
            hint="KMS's digest signing for Ed25519 is Ed25519ph, another algorithm; drop "
            f"?message-type=digest (Ed25519 keys sign the message, up to {RAW_LIMIT} bytes)",
        )
    return MessageType.RAW
