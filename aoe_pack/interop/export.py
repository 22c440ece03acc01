"""Export a verified bundle for other tools: a model-signing signature, SLSA provenance.

Both exports first verify the bundle as ``aoe-pack unpack`` does (signatures
by trusted keys, every stored byte, and each file's plaintext SHA-256 when
the plaintext can be produced), then sign what its manifest says with one
more key, which may be a key file or a key held by an HSM or KMS. The
bundle file's SHA-256 is taken in the same read as its verification, of the
bytes that verified (:mod:`aoe_pack.bundle.attested`).

The model files' digests come from the signed manifest, which records the
SHA-256 of each file's plaintext whether or not it is stored encrypted
(docs/format.md §5.2.1): exactly the bytes ``unpack`` writes. They are
recomputed here whenever the plaintext is at hand (an unencrypted bundle, or
an encrypted one given its decryption key), as ``unpack`` does, so a bundle
whose signer recorded a wrong digest is refused (``integrity``) instead of
being vouched for again. An encrypted bundle without its key is refused
(``key-missing``) unless the caller says to trust the recorded digests
(``trust_recorded_digests``): the export then restates digests nobody
recomputed (``plaintext_checked`` is False), and provenance says so in the
signed statement (``internalParameters.plaintextChecked``). model-signing's
format has no place to say it: there, the caller's explicit choice is all.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aoe_pack._io import refuse_existing, write_atomic
from aoe_pack._jcs import canonical_json
from aoe_pack.bundle import DEFAULT_LIMITS, BundleManifest, Limits, Progress, worker_count
from aoe_pack.bundle.attested import verify_and_hash
from aoe_pack.bundle.signatures import SignatureCheck, check_threshold
from aoe_pack.bundle.verify import authenticate, data_key_if_given, open_bundle
from aoe_pack.errors import MissingKeyError
from aoe_pack.interop import intoto, model_signing, slsa
from aoe_pack.keys import DecryptionKey, PublicKey, SigningKey

DEFAULT_SIGNATURE = Path("model.sig")
"""Where ``model_signing sign`` writes by default, and so ``export model-signing``."""
PROVENANCE_SUFFIX = ".intoto.jsonl"
"""Appended to the bundle's name: SLSA's convention for a file of DSSE envelopes, one a line."""


@dataclass(frozen=True, kw_only=True)
class VerifiedBundle:
    """A bundle that verified, with the SHA-256 of the file as it was read."""

    path: Path
    sha256: str
    size: int
    manifest: BundleManifest
    signatures: tuple[SignatureCheck, ...]
    plaintext_checked: bool
    """True when every file's plaintext SHA-256 was recomputed, not only read from the manifest."""


def read_verified(
    path: Path,
    *,
    trusted_keys: Sequence[PublicKey],
    threshold: int = 1,
    decryption_key: DecryptionKey | None = None,
    trust_recorded_digests: bool = False,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress | None = None,
) -> VerifiedBundle:
    """Verify ``path`` as ``unpack`` would, writing nothing, and hash the bytes that verified.

    One read of the file does both (:func:`~aoe_pack.bundle.attested.verify_and_hash`):
    a file rewritten meanwhile is refused (``integrity``), never hashed unverified.
    """
    check_threshold(trusted_keys, threshold)  # before the file: docs/format.md §8
    with open_bundle(path, limits) as bundle:
        manifest, checks = authenticate(bundle, trusted_keys, threshold, limits)
        data_key = data_key_if_given(manifest, decryption_key)
        plaintext = manifest.encryption is None or data_key is not None
        if not plaintext and not trust_recorded_digests:
            raise MissingKeyError(
                f"{path} is encrypted and no decryption key was given: its files' digests "
                "could not be recomputed, only copied from its signed manifest",
                hint="pass --decryption-key (a recipient's key) to have them recomputed, or "
                "--trust-recorded-digests to attest the digests the bundle's signers recorded",
            )
        with ThreadPoolExecutor(worker_count(), thread_name_prefix="aoe-export") as pool:
            file = verify_and_hash(
                bundle,
                manifest,
                data_key=data_key,
                check_plaintext=plaintext,
                pool=pool,
                limits=limits,
                progress=progress,
            )
    return VerifiedBundle(
        path=Path(path),
        sha256=file.sha256,
        size=file.size,
        manifest=manifest,
        signatures=tuple(checks),
        plaintext_checked=plaintext,
    )


def _bundle_dict(b: VerifiedBundle) -> dict[str, Any]:
    return {
        "bundle": str(b.path),
        "sha256": b.sha256,
        "model": b.manifest.model.to_dict(),
        "signatures": [
            {"keyid": s.keyid, "trusted": s.trusted, "valid": s.valid} for s in b.signatures
        ],
        "plaintextChecked": b.plaintext_checked,
    }


@dataclass(frozen=True, kw_only=True)
class ModelSigningExport:
    """A model-signing signature written for the folder ``unpack`` makes of a bundle."""

    bundle: VerifiedBundle
    out: Path
    signature: model_signing.ModelSignature

    def to_dict(self) -> dict[str, Any]:
        predicate = self.signature.statement["predicate"]
        return {
            **_bundle_dict(self.bundle),
            "out": str(self.out),
            "format": model_signing.PREDICATE_TYPE,
            "keyid": self.signature.keyid,
            "publicKeyHint": self.signature.hint,
            "digest": self.signature.digest,
            "files": [{"path": r["name"], "sha256": r["digest"]} for r in predicate["resources"]],
            "ignorePaths": predicate["serialization"]["ignore_paths"],
        }


def export_model_signing(
    bundle: Path,
    *,
    sign_key: SigningKey,
    out: Path = DEFAULT_SIGNATURE,
    trusted_keys: Sequence[PublicKey] = (),
    threshold: int = 1,
    decryption_key: DecryptionKey | None = None,
    trust_recorded_digests: bool = False,
    ignore_paths: Sequence[str] = (),
    overwrite: bool = False,
    progress: Progress | None = None,
) -> ModelSigningExport:
    """Verify ``bundle`` and write, to ``out``, the model-signing signature of its model folder.

    ``trusted_keys`` default to ``sign_key``'s public key: the bundle must
    then carry a valid signature by the exporting key itself. An encrypted
    bundle needs ``decryption_key``, or ``trust_recorded_digests`` (module doc).
    """
    model_signing.check_signing_key(sign_key)
    model_signing.ignored_paths(ignore_paths)  # a bad path is the caller's: before the work
    if not overwrite:
        refuse_existing(Path(out))
    verified = read_verified(
        Path(bundle),
        trusted_keys=list(trusted_keys) or [sign_key.public],
        threshold=threshold,
        decryption_key=decryption_key,
        trust_recorded_digests=trust_recorded_digests,
        progress=progress,
    )
    m = verified.manifest
    signature = model_signing.sign_model_folder(
        name=m.model.tag,
        files=[model_signing.ModelFile(path=f.path, sha256=f.sha256) for f in m.files],
        key=sign_key,
        ignore_paths=ignore_paths,
    )
    write_atomic(Path(out), signature.data, overwrite=overwrite)
    return ModelSigningExport(bundle=verified, out=Path(out), signature=signature)


@dataclass(frozen=True, kw_only=True)
class ProvenanceExport:
    """A bundle's SLSA provenance, written as a signed in-toto statement."""

    bundle: VerifiedBundle
    out: Path
    statement: dict[str, Any]
    keyid: str

    def to_dict(self) -> dict[str, Any]:
        return {
            **_bundle_dict(self.bundle),
            "out": str(self.out),
            "keyid": self.keyid,
            "predicateType": self.statement["predicateType"],
            "buildType": self.statement["predicate"]["buildDefinition"]["buildType"],
            "subject": self.statement["subject"],
        }


def default_provenance_path(bundle: Path) -> Path:
    """``model.aoe`` → ``model.aoe.intoto.jsonl``, beside the bundle."""
    return Path(bundle).with_name(Path(bundle).name + PROVENANCE_SUFFIX)


def export_provenance(
    bundle: Path,
    *,
    sign_key: SigningKey,
    out: Path | None = None,
    trusted_keys: Sequence[PublicKey] = (),
    threshold: int = 1,
    decryption_key: DecryptionKey | None = None,
    trust_recorded_digests: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> ProvenanceExport:
    """Verify ``bundle`` and write its SLSA provenance, signed by ``sign_key``, as a DSSE envelope.

    The file holds the envelope as one line of JSON: a JSON document and a
    JSON Lines file at once. ``out`` defaults to the bundle's path and
    ``.intoto.jsonl``; ``trusted_keys`` to ``sign_key``'s public key. An
    encrypted bundle needs ``decryption_key``, or ``trust_recorded_digests``,
    which the statement then records (module doc).
    """
    target = default_provenance_path(Path(bundle)) if out is None else Path(out)
    if not overwrite:
        refuse_existing(target)
    verified = read_verified(
        Path(bundle),
        trusted_keys=list(trusted_keys) or [sign_key.public],
        threshold=threshold,
        decryption_key=decryption_key,
        trust_recorded_digests=trust_recorded_digests,
        progress=progress,
    )
    doc = slsa.provenance_statement(
        bundle_name=verified.path.name,
        bundle_sha256=verified.sha256,
        manifest=verified.manifest,
        plaintext_checked=verified.plaintext_checked,
    )
    _, envelope = intoto.sign_statement(doc, [sign_key])
    write_atomic(target, canonical_json(envelope) + b"\n", overwrite=overwrite)
    return ProvenanceExport(bundle=verified, out=target, statement=doc, keyid=sign_key.key_id)
