"""Keys held in AWS KMS: ``awskms:///alias/NAME`` signs through KMS's ``Sign`` call.

References take cosign's forms::

    awskms:///1234abcd-12ab-34cd-56ef-1234567890ab     a key id (mrk-... for multi-Region keys)
    awskms:///alias/NAME                               an alias
    awskms:///arn:aws:kms:REGION:ACCOUNT:key/ID        a key ARN
    awskms:///arn:aws:kms:REGION:ACCOUNT:alias/NAME    an alias ARN
    awskms://HOST[:PORT]/KEY                           any of these at another endpoint (HTTPS)

and one option, ``?message-type=digest`` (the default) or ``?message-type=raw``.

Where the key is looked for is botocore's business, as for the AWS CLI: the
endpoint is the reference's ``HOST[:PORT]`` if it has one, else
``AWS_ENDPOINT_URL_KMS``, ``AWS_ENDPOINT_URL`` or the config file, else the
region's AWS endpoint; the region is an ARN's own, else ``AWS_REGION``, else
``AWS_DEFAULT_REGION`` or the profile's; credentials come from the usual chain
(``AWS_ACCESS_KEY_ID``..., ``AWS_PROFILE``, SSO, an instance or task role).

Opening a key calls ``GetPublicKey`` once: the key must be a ``SIGN_VERIFY``
key of spec ``ECC_NIST_P256`` or ``ECC_NIST_EDWARDS25519``, and its key id is
the SHA-256 of the SPKI DER KMS returns, as for a key file. Each signature is
then one ``Sign`` call naming the key by the ARN ``GetPublicKey`` returned, so
an alias moved meanwhile cannot switch keys under a signing run.

How a P-256 key signs. aoe-pack's P-256 signatures are DER ECDSA over
SHA-256 of the message. By default the signer sends KMS that SHA-256 with
``MessageType=DIGEST`` and ``ECDSA_SHA_256``: AWS documents that KMS then
skips its own hashing step, so the signature is exactly what a key file
would give (up to ECDSA's random nonce), and a message of any size signs
(a manifest of many releases is far past KMS's 4,096-byte limit for whole
messages), while only 32 bytes leave the machine. ``?message-type=raw``
sends the message itself (at most 4,096 bytes), for KMS-compatible servers
that mishandle ``DIGEST``; moto 5.2.6, for one, hashes the digest again,
and the signer says so by name when it sees it.

How an Ed25519 key signs. aoe-pack's Ed25519 signs the message itself (pure
Ed25519, RFC 8032); KMS does so with ``ED25519_SHA_512`` and ``MessageType=RAW``
only, for messages of at most 4,096 bytes. KMS's digest form for these keys,
``ED25519_PH_SHA_512``, is Ed25519ph, another algorithm that no aoe-pack
verifier accepts. So an Ed25519 KMS key signs small documents (a root, a
bundle of few files) and refuses larger ones by name; P-256 has no such limit.

KMS ECDSA signatures are randomized: signing the same bundle twice gives
two valid signatures that differ, where a P-256 key file gives the same
bytes twice. Ed25519 is deterministic everywhere.

botocore, not boto3: boto3's resources and transfer manager are of no use
here, botocore is what the ``publish`` extra already installs (through s3fs
and aiobotocore), and a KMS client from it starts in about half the time.
"""

from __future__ import annotations

from aoe_pack.errors import KeyNotEncryptedError
from aoe_pack.signers.awskms._client import kms_client
from aoe_pack.signers.awskms._ref import KmsKeyRef, MessageType
from aoe_pack.signers.awskms._signer import RAW_LIMIT, AwsKmsSigner

__all__ = ["RAW_LIMIT", "AwsKmsSigner", "KmsKeyRef", "MessageType", "open_signer"]


def open_signer(ref: str, *, pin: bytes | None = None) -> AwsKmsSigner:
    """The ``aoe_pack.signers`` entry point for ``awskms://`` references."""
    key = KmsKeyRef.parse(ref)
    if pin is not None:
        raise KeyNotEncryptedError(
            f"{ref} is an AWS KMS key, which takes no password, but --key-password gives it one",
            hint=f"drop the --key-password of {ref}: KMS access comes from AWS credentials",
        )
    return AwsKmsSigner.open(key, kms_client(key))
