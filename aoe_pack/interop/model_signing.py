"""OpenSSF model signing: the signature ``model_signing verify key`` reads, written without it.

The format is model-signing's v1.0 (the ``model-signing`` package on PyPI,
1.1.1; its source is github.com/sigstore/model-transparency): one JSON file,
a Sigstore bundle v0.3 whose ``dsseEnvelope`` carries an in-toto Statement v1
(:mod:`aoe_pack.interop.intoto`):

- one subject, named after the model (informative: the verifier compares the
  files, not the name), whose ``sha256`` is the SHA-256 of the concatenated
  32-byte digests of the files, in the order the predicate lists them;
- ``predicateType`` ``https://model_signing/signature/v1.0``, and a predicate
  listing every file (``resources``: ``name``, a POSIX path relative to the
  model folder, ``algorithm`` ``sha256``, ``digest`` in hex) sorted by path
  component, and how the folder was read (``serialization``: method
  ``files``, ``hash_type`` ``sha256``, ``allow_symlinks`` false, and the
  ``ignore_paths`` the verifier skips when it hashes the folder);
- ``verificationMaterial.publicKey.hint``: the SHA-256 (hex) of the signer's
  public key as SubjectPublicKeyInfo PEM text. The verifier refuses a
  signature whose hint names another key.

The verifier re-hashes the folder and requires exactly these files with these
digests (an extra or a missing file fails too), checks only the first DSSE
signature, and accepts only ECDSA keys on NIST curves: so aoe-pack signs with
P-256 keys only (ECDSA-SHA256, DER), and refuses Ed25519 by name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from aoe_pack._jcs import canonical_json
from aoe_pack.errors import ExportError, KeyTypeError, UsageError
from aoe_pack.interop import intoto
from aoe_pack.keys import KeyKind, PublicKey, SigningKey

PREDICATE_TYPE = "https://model_signing/signature/v1.0"
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
GIT_PATHS = (".git", ".gitattributes", ".github", ".gitignore")
"""What ``model_signing`` skips in a folder unless told ``--no-ignore-git-paths``;
its own signer records them in ``ignore_paths``, and so does aoe-pack."""


@dataclass(frozen=True, kw_only=True)
class ModelFile:
    """One file of the model folder: its path below the folder and its SHA-256."""

    path: str
    sha256: str


@dataclass(frozen=True, kw_only=True)
class ModelSignature:
    """A signature file's bytes and what it says."""

    data: bytes
    """The file's bytes: canonical JSON and a newline."""
    statement: dict[str, Any]
    digest: str
    """The subject's SHA-256: of every file's digest, in the order listed."""
    keyid: str
    hint: str


def public_key_hint(key: PublicKey) -> str:
    """What model-signing names a public key by: SHA-256 of its SubjectPublicKeyInfo PEM text."""
    return hashlib.sha256(key.pem).hexdigest()


def check_signing_key(key: SigningKey) -> None:
    """Refuse a key model-signing's verifier cannot check (anything but P-256 here)."""
    public = key.public
    if public.kind is not KeyKind.P256:
        raise KeyTypeError(
            f"key {public.key_id[:16]}… is {public.algorithm}; model-signing verifies "
            "ECDSA signatures on NIST curves only (P-256, P-384, P-521), not Ed25519",
            hint="sign the export with an ECDSA P-256 key (aoe-pack keygen --type p256); "
            "the bundle itself may stay signed by any key",
        )


def ignored_paths(extra: Sequence[str]) -> tuple[str, ...]:
    """The git paths model-signing skips, and ``extra`` (paths relative to the model folder)."""
    for path in extra:
        parts = path.split("/")
        if path.startswith("/") or any(p in ("", ".", "..") or "\\" in p for p in parts):
            raise UsageError(
                f"--ignore-path {path!r} is not a path inside the model folder",
                hint="give a relative path with / between folders, such as model.sig",
            )
    return tuple(sorted({*GIT_PATHS, *extra}))


def _refuse_ignored(files: Sequence[ModelFile], ignored: Sequence[str]) -> None:
    skipped = set(ignored)
    for f in files:
        parts = f.path.split("/")
        for i in range(1, len(parts) + 1):
            hit = "/".join(parts[:i])
            if hit in skipped:
                raise ExportError(
                    f"the model file {f.path} lies under {hit}, which model-signing's "
                    "verifier skips when it hashes the folder, so the signature could "
                    "never verify",
                    hint="model-signing skips .git, .gitattributes, .github and .gitignore "
                    "by default; drop the --ignore-path that names a model file",
                )


def sign_model_folder(
    *,
    name: str,
    files: Sequence[ModelFile],
    key: SigningKey,
    ignore_paths: Sequence[str] = (),
) -> ModelSignature:
    """The model-signing signature of a folder holding exactly ``files``, signed by ``key``.

    ``ignore_paths`` are recorded for model-signing's verifier to skip, besides
    the git paths: name the signature file here when it is to sit inside the
    folder (the ``model_signing`` command line skips it there by itself; its
    library does not).
    """
    check_signing_key(key)
    ignored = ignored_paths(ignore_paths)
    _refuse_ignored(files, ignored)
    ordered = sorted(files, key=lambda f: PurePosixPath(f.path).parts)
    digest = hashlib.sha256(b"".join(bytes.fromhex(f.sha256) for f in ordered)).hexdigest()
    predicate = {
        "resources": [{"name": f.path, "algorithm": "sha256", "digest": f.sha256} for f in ordered],
        "serialization": {
            "method": "files",
            "hash_type": "sha256",
            "allow_symlinks": False,
            "ignore_paths": list(ignored),
        },
    }
    doc = intoto.statement(
        subjects=[intoto.Subject(name=name, sha256=digest)],
        predicate_type=PREDICATE_TYPE,
        predicate=predicate,
    )
    _, envelope = intoto.sign_statement(doc, [key])
    hint = public_key_hint(key.public)
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": hint}, "tlogEntries": []},
        "dsseEnvelope": envelope,
    }
    return ModelSignature(
        data=canonical_json(bundle) + b"\n",
        statement=doc,
        digest=digest,
        keyid=key.key_id,
        hint=hint,
    )
