"""The botocore side: a KMS client per key, and its failures as aoe-pack's errors.

Each failure a user can meet is named with what to do about it: a key that
does not exist is a reference that names nothing (exit 2, as a missing key
file); credentials, permissions, a key of the wrong kind or state, throttling
and an unreachable endpoint are work that was refused or failed (exit 1).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    SSLError,
    SSOError,
    TokenRetrievalError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from aoe_pack.errors import KeyFileError, KeyReferenceError, KeyTypeError, SignerError
from aoe_pack.signers.awskms._ref import KmsKeyRef

CONNECT_TIMEOUT = 10.0
"""Seconds to connect to KMS (botocore's default, 60, is long for one signing call)."""
READ_TIMEOUT = 30.0
"""Seconds to wait for a KMS reply."""
MAX_ATTEMPTS = 4
"""Tries per call, the first included, unless ``AWS_MAX_ATTEMPTS`` or the profile says."""

CREATE_HINT = (
    "create a signing key: aws kms create-key --key-spec ECC_NIST_P256 --key-usage SIGN_VERIFY"
)
_CREDENTIALS_HINT = (
    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), or AWS_PROFILE, "
    "or run where an IAM role is attached"
)
_ENDPOINT_HINT = (
    "check the network, the endpoint (the reference's HOST:PORT, AWS_ENDPOINT_URL_KMS, "
    "AWS_ENDPOINT_URL) and the region (AWS_REGION); AWS_MAX_ATTEMPTS sets how many times "
    f"a call is tried (default {MAX_ATTEMPTS})"
)


def kms_client(key: KmsKeyRef) -> Any:
    """A botocore KMS client for ``key``: its endpoint and region, short timeouts, retries.

    Retries are botocore's ``standard`` mode (throttling and transient errors,
    with exponential backoff and jitter), :data:`MAX_ATTEMPTS` tries in all;
    ``AWS_RETRY_MODE``, ``AWS_MAX_ATTEMPTS`` or the profile's settings win.
    """
    try:
        session = botocore.session.get_session()
        retries: dict[str, object] = {}
        if session.get_config_variable("max_attempts") is None:
            retries["total_max_attempts"] = MAX_ATTEMPTS
        if not os.environ.get("AWS_RETRY_MODE") and "retry_mode" not in session.get_scoped_config():
            retries["mode"] = "standard"
        config = Config(connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT, retries=retries)
        region = key.region or os.environ.get("AWS_REGION") or None
        return session.create_client(
            "kms", region_name=region, endpoint_url=key.endpoint, config=config
        )
    except NoRegionError as e:
        raise SignerError(
            f"no AWS region for {key.ref}",
            hint="set AWS_REGION (or AWS_DEFAULT_REGION), or name the key by its ARN",
        ) from e
    except ProfileNotFound as e:
        raise SignerError(
            f"cannot open {key.ref}: {e}", hint="AWS_PROFILE names a profile of ~/.aws/config"
        ) from e
    except BotoCoreError as e:
        raise SignerError(f"cannot open {key.ref}: {e}") from e


def call(ref: str, action: str, client: Any, request: Callable[[], Any]) -> Mapping[str, Any]:
    """``request()``'s reply, or its failure as the aoe-pack error that names it."""
    endpoint = client.meta.endpoint_url
    try:
        reply: Mapping[str, Any] = request()
    except ClientError as e:
        raise refused(ref, action, client, e) from e
    except (
        NoCredentialsError,
        PartialCredentialsError,
        CredentialRetrievalError,
        TokenRetrievalError,
        SSOError,
    ) as e:
        raise SignerError(
            f"no usable AWS credentials for {ref}: {e}", hint=_CREDENTIALS_HINT
        ) from e
    except SSLError as e:
        raise SignerError(
            f"TLS to AWS KMS at {endpoint} failed for {ref}: {e}",
            hint="AWS_CA_BUNDLE names the CA certificates of an endpoint with a CA of its own",
        ) from e
    except (ConnectTimeoutError, ReadTimeoutError) as e:
        raise SignerError(
            f"AWS KMS at {endpoint} did not answer {action} for {ref} in time: {e}",
            hint=_ENDPOINT_HINT,
        ) from e
    except BotoConnectionError as e:
        raise SignerError(
            f"cannot reach AWS KMS at {endpoint} for {ref}: {e}", hint=_ENDPOINT_HINT
        ) from e
    except BotoCoreError as e:
        raise SignerError(f"AWS KMS {action} failed for {ref}: {e}") from e
    return reply


_REFUSALS: tuple[tuple[frozenset[str], type[KeyFileError], str, str | None], ...] = (
    (
        frozenset({"NotFoundException", "InvalidArnException"}),
        KeyReferenceError,
        "{ref} names no AWS KMS key ({region}, {endpoint}): {text}",
        "check the key id, alias or ARN, and the region (AWS_REGION, or the key's ARN); "
        "`aws kms list-aliases` lists the aliases",
    ),
    (
        frozenset({"AccessDeniedException", "AccessDenied"}),
        SignerError,
        "AWS KMS denied {action} on {ref}: {text}",
        "the caller needs kms:GetPublicKey and kms:Sign on the key, from its key policy "
        "or an IAM policy",
    ),
    (
        frozenset(
            {
                "UnrecognizedClientException",
                "InvalidClientTokenId",
                "InvalidSignatureException",
                "IncompleteSignature",
                "ExpiredTokenException",
            }
        ),
        SignerError,
        "AWS KMS rejected the credentials used for {ref} ({code}): {text}",
        _CREDENTIALS_HINT + "; a session token may have expired",
    ),
    (
        frozenset({"UnsupportedOperationException", "InvalidKeyUsageException"}),
        KeyTypeError,
        "{ref} is not an asymmetric signing key ({code}): {text}",
        CREATE_HINT,
    ),
    (
        frozenset({"DisabledException", "KMSInvalidStateException"}),
        SignerError,
        "{ref} cannot be used in its present state ({code}): {text}",
        "enable the key (aws kms enable-key) or cancel its deletion (aws kms cancel-key-deletion)",
    ),
    (
        frozenset(
            {
                "ThrottlingException",
                "Throttling",
                "TooManyRequestsException",
                "RequestLimitExceeded",
            }
        ),
        SignerError,
        "AWS KMS throttled {action} on {ref} ({attempts} attempts): {text}",
        "retry later, or ask AWS for a higher KMS request quota; AWS_MAX_ATTEMPTS sets how "
        f"many times a call is tried (default {MAX_ATTEMPTS})",
    ),
    (
        frozenset(
            {"KeyUnavailableException", "DependencyTimeoutException", "KMSInternalException"}
        ),
        SignerError,
        "AWS KMS could not serve {action} on {ref} ({code}, {attempts} attempts): {text}",
        "a transient failure on the KMS side: retry later",
    ),
)


def refused(ref: str, action: str, client: Any, e: ClientError) -> KeyFileError:
    """The aoe-pack error for a KMS error reply (the table above; else a SignerError)."""
    error = e.response.get("Error", {})
    code = error.get("Code", "?")
    fields = {
        "ref": ref,
        "action": action,
        "code": code,
        "text": error.get("Message", ""),
        "region": client.meta.region_name,
        "endpoint": client.meta.endpoint_url,
        "attempts": 1 + int(e.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)),
    }
    for codes, cls, message, hint in _REFUSALS:
        if code in codes:
            return cls(message.format(**fields), hint=hint)
    return SignerError("AWS KMS refused {action} on {ref} ({code}): {text}".format(**fields))
