"""A KMS that signs as AWS documents it, for what moto cannot show.

moto 5.2.6 implements ``Sign`` with ``MessageType=RAW`` as AWS does, but with
``MessageType=DIGEST`` it hashes the digest again, and it has no
``ECC_NIST_EDWARDS25519`` keys. This server answers KMS's JSON protocol
(``GetPublicKey`` and ``Sign``) over HTTP on loopback, so the real botocore
client and the real signer talk to it unchanged, with the semantics of the
KMS API reference (the ``MessageType`` documentation in botocore's own
model, ``botocore/data/kms/2014-11-01/service-2.json``):

- ``RAW``: the signing algorithm hashes the message (at most 4096 bytes);
- ``DIGEST``: the hashing step is skipped, and the message must be as long
  as the algorithm's hash (32 bytes for ``ECDSA_SHA_256``);
- ``ED25519_SHA_512`` (pure Ed25519) takes ``RAW`` only.

Its ECDSA uses RFC 6979 nonces (AWS's are random) so that a signature made
through it can be compared byte for byte with a key file's. ``fail`` makes
an operation answer with a KMS error instead, to test how each is reported.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, utils

ACCOUNT = "111122223333"
REGION = "eu-west-1"
MAX_MESSAGE = 4096


class KmsError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class FakeKey:
    key_id: str
    private: Any
    spec: str
    usage: str = "SIGN_VERIFY"
    algorithms: tuple[str, ...] = ()
    reported_public: bytes | None = None
    """SPKI DER to report instead of the key's own (a lying KMS)."""

    @property
    def arn(self) -> str:
        return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{self.key_id}"

    @property
    def spki(self) -> bytes:
        if self.reported_public is not None:
            return self.reported_public
        der: bytes = self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return der


@dataclass
class FakeKms:
    endpoint: str = ""
    keys: dict[str, FakeKey] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    fail: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Operation -> (error code, message) it answers with instead."""

    def add(self, private: Any, *, alias: str | None = None, **kw: Any) -> FakeKey:
        if "spec" not in kw:
            kw["spec"] = (
                "ECC_NIST_EDWARDS25519"
                if isinstance(private, ed25519.Ed25519PrivateKey)
                else "ECC_NIST_P256"
            )
        if "algorithms" not in kw:
            kw["algorithms"] = {
                "ECC_NIST_EDWARDS25519": ("ED25519_SHA_512", "ED25519_PH_SHA_512"),
                "ECC_NIST_P256": ("ECDSA_SHA_256",),
            }.get(kw["spec"], ())
        key = FakeKey(key_id=str(uuid.uuid4()), private=private, **kw)
        self.keys[key.key_id] = key
        if alias is not None:
            self.aliases[alias] = key.key_id
        return key

    def calls(self, operation: str) -> list[dict[str, Any]]:
        return [body for op, body in self.requests if op == operation]

    # --- the API ---------------------------------------------------------------------

    def _key(self, key_id: str) -> FakeKey:
        name = key_id.split(":", 5)[-1] if key_id.startswith("arn:") else key_id
        if name.startswith("alias/"):
            if name not in self.aliases:
                raise KmsError("NotFoundException", f"Alias {name} is not found.")
            name = self.aliases[name]
        name = name.removeprefix("key/")
        if name not in self.keys:
            raise KmsError("NotFoundException", f"Key '{key_id}' does not exist")
        return self.keys[name]

    def get_public_key(self, body: dict[str, Any]) -> dict[str, Any]:
        key = self._key(body["KeyId"])
        if key.spec == "SYMMETRIC_DEFAULT":
            raise KmsError(
                "UnsupportedOperationException",
                f"{key.arn} key usage is ENCRYPT_DECRYPT which is not valid for GetPublicKey.",
            )
        return {
            "KeyId": key.arn,
            "PublicKey": base64.b64encode(key.spki).decode(),
            "KeySpec": key.spec,
            "CustomerMasterKeySpec": key.spec,
            "KeyUsage": key.usage,
            "SigningAlgorithms": list(key.algorithms),
        }

    def sign(self, body: dict[str, Any]) -> dict[str, Any]:
        key = self._key(body["KeyId"])
        message = base64.b64decode(body["Message"])
        message_type = body.get("MessageType", "RAW")
        algorithm = body["SigningAlgorithm"]
        if key.usage != "SIGN_VERIFY" or algorithm not in key.algorithms:
            raise KmsError("InvalidKeyUsageException", f"{algorithm} is not valid for {key.arn}")
        if not 1 <= len(message) <= MAX_MESSAGE:
            raise KmsError(
                "ValidationException",
                "1 validation error detected: Value at 'message' failed to satisfy "
                "constraint: Member must have length less than or equal to 4096",
            )
        if algorithm == "ECDSA_SHA_256":
            if message_type == "DIGEST":
                if len(message) != 32:
                    raise KmsError("ValidationException", "Digest is invalid length for algorithm")
                how = ec.ECDSA(utils.Prehashed(hashes.SHA256()), deterministic_signing=True)
            else:
                how = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
            signature = key.private.sign(message, how)
        elif algorithm == "ED25519_SHA_512" and message_type == "RAW":
            signature = key.private.sign(message)
        else:
            raise KmsError(
                "ValidationException",
                f"{algorithm} requires another MessageType than {message_type}",
            )
        return {
            "KeyId": key.arn,
            "Signature": base64.b64encode(signature).decode(),
            "SigningAlgorithm": algorithm,
        }

    def answer(self, operation: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.requests.append((operation, body))
        try:
            return 200, self._dispatch(operation, body)
        except KmsError as e:
            return 400, {"__type": e.code, "message": str(e)}

    def _dispatch(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        if operation in self.fail:
            raise KmsError(*self.fail[operation])
        if operation == "GetPublicKey":
            return self.get_public_key(body)
        if operation == "Sign":
            return self.sign(body)
        raise KmsError("UnknownOperationException", operation)


@contextmanager
def serve_fake_kms() -> Iterator[FakeKms]:
    """A :class:`FakeKms` listening on loopback for as long as the block runs."""
    kms = FakeKms()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            operation = self.headers.get("X-Amz-Target", "").rpartition(".")[2]
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
            status, reply = kms.answer(operation, body)
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    kms.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield kms
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
