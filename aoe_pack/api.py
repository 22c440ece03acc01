"""The whole job from Python: build, sign, verify, inspect, unpack, publish, check.

Each function is what one ``aoe-pack`` command does, without the command
line: the CLI only parses its arguments, calls one of these and prints the
result. Arguments are keyword-only. A key is either loaded already
([PrivateKey][aoe_pack.keys.PrivateKey], [PublicKey][aoe_pack.keys.PublicKey],
[DecryptionKey][aoe_pack.keys.DecryptionKey], or the 32 bytes of an
encryption key) or a reference to load: a file path or ``env://VAR``. A
password-protected key file given as a reference takes its password from
``AOE_PACK_PASSWORD``, else from ``password_prompt`` when one is given; a key
with a password source of its own is loaded with it
(``aoe_pack.keys.load_signing_key(ref, password=SOURCE)``) and passed loaded.

Results are frozen dataclasses, each with ``to_dict()`` (what ``--json``
prints). Every failure is an [AoePackError][aoe_pack.errors.AoePackError],
one subclass per cause (an [IntegrityError][aoe_pack.errors.IntegrityError]
for a tampered bundle, a
[ConfigValidationError][aoe_pack.errors.ConfigValidationError] for a bad
config, ...), carrying a ``message``, a ``hint`` and a stable ``code``
(``integrity``, ``config-invalid``, ...) to match on.

Importing this module loads no ML framework: a build loads the converters it
needs when it runs. docs/library.md shows each function at work.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from aoe_pack.assemble import BuildEvents, BuiltBundle
    from aoe_pack.bundle import InspectResult, Progress, SignResult, UnpackResult, VerifyResult
    from aoe_pack.client.check import CheckResult
    from aoe_pack.client.decide import Device
    from aoe_pack.interop import ModelSigningExport, ProvenanceExport
    from aoe_pack.keys import DecryptionKey, PasswordPrompt, PrivateKey, PublicKey, SigningKey
    from aoe_pack.publish.deltas import DeltaOutcome
    from aoe_pack.publish.releases import Published
    from aoe_pack.publish.workflow import Commit
    from aoe_pack.repository.model import Release
    from aoe_pack.repository.root import Root
    from aoe_pack.storage.store import Store

__all__ = [
    "PathLike",
    "build",
    "check",
    "export_model_signing",
    "export_provenance",
    "init_repository",
    "inspect",
    "publish",
    "sign",
    "unpack",
    "verify",
]

PathLike: TypeAlias = str | os.PathLike[str]
"""A file or folder: a ``str`` or a ``pathlib.Path``. A key reference may
also be ``env://VAR``, naming an environment variable that holds the key."""


def build(
    *,
    configs: PathLike | Sequence[PathLike],
    out: PathLike,
    sign_keys: Sequence[SigningKey | PathLike],
    recipients: Sequence[PublicKey | PathLike] = (),
    encryption_keys: Sequence[bytes | PathLike] = (),
    encrypt: bool | None = None,
    targets: Sequence[str] = (),
    skip_failed_targets: bool = False,
    password_prompt: PasswordPrompt | None = None,
    events: BuildEvents | None = None,
    overwrite: bool = False,
) -> BuiltBundle:
    """Validate model configs and pack their model into one signed bundle (``aoe-pack build``).

    Args:
        configs: A model config file, or several sharing a tag and version:
            one feature bundle, each model under the folder of its files' name.
        out: Where to write the bundle (atomically).
        sign_keys: Signing private keys (Ed25519 or ECDSA P-256).
        recipients: Public keys to encrypt for (X25519, P-256 KEM or
            ML-KEM-768+X25519).
        encryption_keys: Symmetric key-encryption keys to wrap the data key
            with as well (``aoe-pack keygen --type aes256``).
        encrypt: None follows the configs' ``"encrypt"``; False stores the
            model unencrypted (signed only); True requires keys. Encryption
            needs at least one recipient or encryption key.
        targets: Convert for these targets (``tflite:fp16``, ``onnx``, ...)
            instead of the configs' ``"targets"``; needs ``aoe-pack[convert]``.
            With none here nor in a config, the model is packed as it is.
        skip_failed_targets: Ship the targets that passed when some failed
            (the failures are recorded in the bundle's provenance); by
            default a failed target means no bundle.
        password_prompt: Asks for a key file's password when the environment
            has none.
        events: Told of warnings and progress as the build goes.
        overwrite: Replace an existing bundle at ``out`` (by default it is
            refused before any work starts).

    Returns:
        The bundle written, and each model's conversion outcomes.

    Raises:
        ConfigValidationError: A config is invalid.
        UsageError: The encryption settings contradict each other, or the
            configs do not make one feature.
        KeyFileError: A key cannot be read, or cannot do its job.
        MissingKeyError: Encryption is on but no key was given.
        OutputError: ``out`` exists and ``overwrite`` is false.
        TargetsFailedError: A target failed (no bundle written).
    """
    from aoe_pack import assemble
    from aoe_pack.keys import resolve

    paths = [configs] if isinstance(configs, str | os.PathLike) else list(configs)
    found = assemble.load_configs([Path(p) for p in paths], events=events)
    signers = [resolve.signing_key(k, prompt=password_prompt) for k in sign_keys]
    spec = assemble.encryption_spec(
        found, encrypt=encrypt, recipients=recipients, keks=encryption_keys, events=events
    )
    return assemble.assemble(
        found,
        Path(out),
        signing_keys=signers,
        encryption=spec,
        targets=targets,
        skip_failed_targets=skip_failed_targets,
        events=events,
        overwrite=overwrite,
    )


def verify(
    *,
    bundle: PathLike,
    trusted_keys: Sequence[PublicKey | PathLike],
    threshold: int = 1,
    decryption_key: DecryptionKey | PrivateKey | bytes | PathLike | None = None,
    password_prompt: PasswordPrompt | None = None,
    progress: Progress | None = None,
) -> VerifyResult:
    """Check a bundle's signatures and every byte (``aoe-pack verify``).

    Without a decryption key it proves that what was shipped is what was
    signed; with one it also decrypts (streaming, nothing written) and checks
    the plaintext against the digests recorded at build time.

    Args:
        bundle: The ``.aoe`` file.
        trusted_keys: Public keys of the signers whose signatures count.
        threshold: How many distinct trusted keys must have signed.
        decryption_key: A recipient's private key, or the encryption key
            given at build time.
        password_prompt: Asks for a key file's password when the environment
            has none.
        progress: Called with the number of bytes just checked.

    Raises:
        IntegrityError: A byte differs from what was signed.
        SignatureError: Fewer than ``threshold`` trusted keys signed.
        BundleFormatError: The file is not a well-formed bundle.
        DecryptionError: The key cannot decrypt the bundle.
        KeyFileError: A key cannot be read, or cannot do its job.
    """
    from aoe_pack.bundle import verify_bundle

    trusted, dkey = _verification_keys(trusted_keys, decryption_key, password_prompt)
    return verify_bundle(
        Path(bundle),
        trusted_keys=trusted,
        threshold=threshold,
        decryption_key=dkey,
        progress=progress,
    )


def sign(
    *,
    bundle: PathLike,
    sign_keys: Sequence[SigningKey | PathLike],
    trusted_keys: Sequence[PublicKey | PathLike] = (),
    threshold: int = 1,
    expect_manifest_sha256: str | None = None,
    password_prompt: PasswordPrompt | None = None,
    progress: Progress | None = None,
) -> SignResult:
    """Add signatures to a built bundle, for a second approver (``aoe-pack sign``).

    The bundle is checked first as [verify][aoe_pack.api.verify] checks it
    without a decryption key (container, manifest, every stored byte); with
    ``trusted_keys``, ``threshold`` of them must have signed it already. Then
    the new keys sign the same manifest, and only the end of the file is
    rewritten, in place and under a lock: the result is the bundle a build
    with every key at once makes. A run killed midway is finished by the next.

    Args:
        bundle: The ``.aoe`` file: the file itself, not a link to it.
        sign_keys: Signing private keys (Ed25519 or ECDSA P-256), each
            one that has not signed the bundle yet.
        trusted_keys: Public keys of earlier signers to check first.
        threshold: How many of ``trusted_keys`` must have signed.
        expect_manifest_sha256: The SHA-256 (hex) of the manifest the approver
            reviewed, as [inspect][aoe_pack.api.inspect] shows it: another
            bundle is refused, unchanged.
        password_prompt: Asks for a key file's password when the environment
            has none.
        progress: Called with the number of bytes just checked.

    Raises:
        AlreadySignedError: A key has signed the bundle already.
        ManifestMismatchError: The manifest is not ``expect_manifest_sha256``.
        IntegrityError: A byte differs from what the manifest says.
        ThresholdError: Fewer than ``threshold`` trusted keys signed.
        BundleFormatError: The file is not a well-formed bundle, or the
            signatures would exceed the format's limits.
        OutputError: The bundle is a link, has other names, or changed
            while it was checked.
        KeyFileError: A key cannot be read, or cannot do its job.
    """
    from aoe_pack.bundle import add_signatures
    from aoe_pack.keys import resolve

    signers = [resolve.signing_key(k, prompt=password_prompt) for k in sign_keys]
    return add_signatures(
        Path(bundle),
        signers,
        trusted_keys=[resolve.trusted_key(k) for k in trusted_keys],
        threshold=threshold,
        expect_manifest_sha256=expect_manifest_sha256,
        progress=progress,
    )


def inspect(*, bundle: PathLike) -> InspectResult:
    """What a bundle says about itself, read without any key and verified not at all.

    Identity, files and sizes, signers' key ids, recipients, provenance: use
    [verify][aoe_pack.api.verify] before trusting any of it (``aoe-pack inspect``).
    """
    from aoe_pack.bundle import inspect_bundle

    return inspect_bundle(Path(bundle))


def unpack(
    *,
    bundle: PathLike,
    out: PathLike,
    trusted_keys: Sequence[PublicKey | PathLike],
    threshold: int = 1,
    decryption_key: DecryptionKey | PrivateKey | bytes | PathLike | None = None,
    force: bool = False,
    password_prompt: PasswordPrompt | None = None,
    progress: Progress | None = None,
) -> UnpackResult:
    """Verify a bundle, then write its model files into ``out`` (``aoe-pack unpack``).

    Files appear only once every byte verified; nothing is written outside
    ``out``, symlinks are never followed, and a failure leaves no partial
    file. The arguments are those of [verify][aoe_pack.api.verify], and:

    Args:
        out: The folder to write into (created if missing).
        force: Replace files that already exist there.
    """
    from aoe_pack.bundle import unpack_bundle

    trusted, dkey = _verification_keys(trusted_keys, decryption_key, password_prompt)
    return unpack_bundle(
        Path(bundle),
        Path(out),
        trusted_keys=trusted,
        threshold=threshold,
        decryption_key=dkey,
        force=force,
        progress=progress,
    )


def export_model_signing(
    *,
    bundle: PathLike,
    sign_key: SigningKey | PathLike,
    out: PathLike = "model.sig",
    trusted_keys: Sequence[PublicKey | PathLike] = (),
    threshold: int = 1,
    decryption_key: DecryptionKey | PrivateKey | bytes | PathLike | None = None,
    trust_recorded_digests: bool = False,
    ignore_paths: Sequence[str] = (),
    overwrite: bool = False,
    password_prompt: PasswordPrompt | None = None,
    progress: Progress | None = None,
) -> ModelSigningExport:
    """Sign, in OpenSSF model-signing's format, the model folder ``unpack`` makes of a bundle.

    The bundle is verified as [unpack][aoe_pack.api.unpack] verifies it,
    then ``out`` gets a signature of its model files that
    ``model_signing verify key FOLDER --signature OUT --public_key PUB``
    accepts for the unpacked folder (``aoe-pack export model-signing``).
    The other arguments are those of [verify][aoe_pack.api.verify], and:

    Args:
        sign_key: An ECDSA P-256 key (a file, or one an HSM or KMS holds):
            model-signing verifies NIST curves only.
        out: The signature file; outside the model folder, or named in
            ``ignore_paths`` if inside it.
        trusted_keys: Default: ``sign_key``'s public key.
        decryption_key: Needed for an encrypted bundle, whose files' digests
            are then recomputed from their plaintext.
        trust_recorded_digests: Export an encrypted bundle without
            ``decryption_key``: the digests its signed manifest records are
            signed as they are, recomputed by nobody here.
        ignore_paths: Paths inside the model folder for model-signing to
            skip, besides ``.git`` and its kin.
        overwrite: Replace an existing ``out``.

    Raises:
        KeyTypeError: ``sign_key`` is not a P-256 key.
        MissingKeyError: The bundle is encrypted, and neither
            ``decryption_key`` nor ``trust_recorded_digests`` was given.
        ExportError: A model file lies where model-signing does not look.
    """
    from aoe_pack.interop import export_model_signing as _export
    from aoe_pack.keys import resolve

    key = resolve.signing_key(sign_key, prompt=password_prompt)
    trusted, dkey = _verification_keys(trusted_keys, decryption_key, password_prompt)
    return _export(
        Path(bundle),
        sign_key=key,
        out=Path(out),
        trusted_keys=trusted,
        threshold=threshold,
        decryption_key=dkey,
        trust_recorded_digests=trust_recorded_digests,
        ignore_paths=ignore_paths,
        overwrite=overwrite,
        progress=progress,
    )


def export_provenance(
    *,
    bundle: PathLike,
    sign_key: SigningKey | PathLike,
    out: PathLike | None = None,
    trusted_keys: Sequence[PublicKey | PathLike] = (),
    threshold: int = 1,
    decryption_key: DecryptionKey | PrivateKey | bytes | PathLike | None = None,
    trust_recorded_digests: bool = False,
    overwrite: bool = False,
    password_prompt: PasswordPrompt | None = None,
    progress: Progress | None = None,
) -> ProvenanceExport:
    """Write a bundle's build provenance, signed, as SLSA Provenance v1 (``export provenance``).

    The bundle is verified as [unpack][aoe_pack.api.unpack] verifies it;
    ``out`` gets an in-toto Statement v1 in a DSSE envelope signed by
    ``sign_key``, one line of JSON. The other arguments are those of
    [export_model_signing][aoe_pack.api.export_model_signing], except:

    Args:
        sign_key: Any signing key (Ed25519 or ECDSA P-256).
        out: Default: the bundle's path with ``.intoto.jsonl`` appended.
        trust_recorded_digests: As for model-signing; the statement records
            it (``internalParameters.plaintextChecked`` false).
    """
    from aoe_pack.interop import export_provenance as _export
    from aoe_pack.keys import resolve

    key = resolve.signing_key(sign_key, prompt=password_prompt)
    trusted, dkey = _verification_keys(trusted_keys, decryption_key, password_prompt)
    return _export(
        Path(bundle),
        sign_key=key,
        out=None if out is None else Path(out),
        trusted_keys=trusted,
        threshold=threshold,
        decryption_key=dkey,
        trust_recorded_digests=trust_recorded_digests,
        overwrite=overwrite,
        progress=progress,
    )


def init_repository(
    *,
    repo: PathLike,
    root_keys: Sequence[PublicKey | PathLike],
    sign_keys: Sequence[SigningKey | PathLike],
    threshold: int = 1,
    expires: dt.timedelta | None = None,
    plain_http: bool | None = None,
    password_prompt: PasswordPrompt | None = None,
) -> Root:
    """Create a repository: root version 1 and an empty manifest (``aoe-pack manifest init``).

    Args:
        repo: A folder, ``s3://bucket/prefix`` (any fsspec URL) or
            ``oci://host/repo``.
        root_keys: Public keys trusted to sign the manifest.
        sign_keys: ``threshold`` of the root keys' private halves: the root
            signs itself.
        threshold: How many root keys must sign the root and each manifest.
        expires: How long the empty manifest stays valid (default 30 days).
        plain_http: Talk HTTP to an ``oci://`` registry (default: for
            loopback hosts only).
        password_prompt: Asks for a key file's password when the environment
            has none.

    Returns:
        The root. Its file, ``root.json`` in the repository, ships with the
        app: it is what [check][aoe_pack.api.check] takes as ``trusted_root``.
    """
    from aoe_pack.keys import resolve
    from aoe_pack.publish.workflow import DEFAULT_EXPIRES
    from aoe_pack.publish.workflow import init_repository as _init

    keys = [resolve.public_key(k) for k in root_keys]
    store = _open(repo, plain_http)
    try:
        return _init(
            store,
            root_keys=keys,
            threshold=threshold,
            sign_keys=[resolve.signing_key(k, prompt=password_prompt) for k in sign_keys],
            expires=expires or DEFAULT_EXPIRES,
        )
    finally:
        store.close()


def publish(
    *,
    bundles: Sequence[PathLike],
    repo: PathLike,
    sign_keys: Sequence[SigningKey | PathLike],
    trusted_keys: Sequence[PublicKey | PathLike] = (),
    channel: str = "stable",
    rollout: float = 100.0,
    min_app_version: str | None = None,
    max_app_version: str | None = None,
    required_runtimes: Sequence[str] = (),
    critical: bool = False,
    expires: dt.timedelta | None = None,
    plain_http: bool | None = None,
    password_prompt: PasswordPrompt | None = None,
    on_upload: Callable[[Path, str, Release], None] | None = None,
    delta_from: Sequence[str] = (),
    decryption_key: DecryptionKey | PrivateKey | bytes | PathLike | None = None,
    delta_sign_keys: Sequence[SigningKey | PathLike] = (),
    delta_max_percent: int = 75,
    on_delta: Callable[[DeltaOutcome], None] | None = None,
    public_url: str | None = None,
) -> Published:
    """Verify bundles, upload them by digest, and name them in a new manifest version.

    Each bundle is verified first, uploaded as ``bundles/<sha256>.aoe``, and
    only then added to the manifest, written with compare-and-swap so that
    concurrent publishers never lose a release (``aoe-pack manifest
    publish``). Publishing the same bundle again changes nothing; a different
    bundle for a published version is refused.

    Args:
        bundles: The ``.aoe`` files, all added in one manifest version.
        repo: The repository (as for [init_repository][aoe_pack.api.init_repository]).
        sign_keys: Manifest-signing private keys listed in the root, enough
            to reach its threshold.
        trusted_keys: Keys the bundles must be signed by (default: the
            public halves of ``sign_keys``).
        channel: The release channel devices follow.
        rollout: Share of devices, in percent (two decimals at most).
        min_app_version: Oldest app version that may run the release.
        max_app_version: Newest app version that may run the release.
        required_runtimes: Runtimes a device must have.
        critical: Every eligible device gets it, rollout aside.
        expires: How long the new manifest stays valid (default 30 days).
        plain_http: As for [init_repository][aoe_pack.api.init_repository].
        password_prompt: Asks for a key file's password when the environment
            has none.
        on_upload: Called with each bundle's path, tag and release once it
            is uploaded.
        delta_from: Earlier versions of the (one) bundle's model to make
            deltas from (docs/format.md §16); each one smaller than the
            bundle is uploaded and recorded in the new release.
        decryption_key: Opens the bundles of both releases when encrypted.
        delta_sign_keys: Sign the deltas (default: ``sign_keys``); one must
            have signed the bundle.
        delta_max_percent: Record a delta only up to this share of the bundle.
        on_delta: Called with each delta's outcome (recorded or skipped).
        public_url: The address devices read this repository at
            (``https://models.example.com/repo/``). Given, a bundle whose
            ``updateURL`` names another repository is refused before anything
            is uploaded; bundles without one are accepted (docs/format.md §15.8.1).

    Raises:
        UsageError: A setting is invalid, or a bundle is given twice.
        UpdateURLMismatchError: A bundle's ``updateURL`` is not ``public_url``.
        ReleaseConflictError: A different bundle holds that version already.
        VerificationError: A bundle does not verify.
        StoreError: The repository cannot be read or written.
    """
    from aoe_pack.keys import resolve
    from aoe_pack.publish import releases
    from aoe_pack.publish.address import check_update_urls
    from aoe_pack.publish.deltas import DeltaRequest
    from aoe_pack.publish.workflow import DEFAULT_EXPIRES

    options = releases.ReleaseOptions(
        channel=channel,
        rollout_bp=releases.percent_to_bp(rollout),
        min_app_version=min_app_version,
        max_app_version=max_app_version,
        required_runtimes=tuple(sorted(set(required_runtimes))),
        critical=critical,
    )
    if public_url is not None:
        check_update_urls([Path(b) for b in bundles], public_url)
    store = _open(repo, plain_http)
    try:
        commit, added = releases.publish(
            store,
            [Path(b) for b in bundles],
            sign_keys=[resolve.signing_key(k, prompt=password_prompt) for k in sign_keys],
            trusted_keys=[resolve.public_key(k) for k in trusted_keys],
            options=options,
            expires=expires or DEFAULT_EXPIRES,
            on_bundle=on_upload,
            deltas=DeltaRequest(
                from_versions=tuple(delta_from),
                decryption_key=None
                if decryption_key is None
                else resolve.decryption_key(decryption_key, prompt=password_prompt),
                sign_keys=tuple(
                    resolve.signing_key(k, prompt=password_prompt) for k in delta_sign_keys
                ),
                max_percent=delta_max_percent,
                on_delta=on_delta,
            )
            if delta_from
            else None,
        )
    finally:
        store.close()
    return releases.Published(commit=commit, releases=tuple(added), options=options)


def add_deltas(
    *,
    repo: PathLike,
    tag: str,
    version: str,
    from_versions: Sequence[str],
    sign_keys: Sequence[SigningKey | PathLike],
    decryption_key: DecryptionKey | PrivateKey | bytes | PathLike | None = None,
    delta_sign_keys: Sequence[SigningKey | PathLike] = (),
    max_percent: int = 75,
    expires: dt.timedelta | None = None,
    plain_http: bool | None = None,
    password_prompt: PasswordPrompt | None = None,
) -> tuple[Commit, list[DeltaOutcome]]:
    """Add deltas from earlier releases to a published one (``aoe-pack manifest add-delta``).

    Both releases' bundles are downloaded and matched against the manifest,
    verified with the keys that signed the target's bundle and decrypted; the
    delta is signed, uploaded as ``deltas/<sha256>.aoed`` and recorded in the
    release, in one manifest version, only if smaller than the bundle
    (docs/format.md §16).

    Raises:
        ReleaseNotFoundError: A version is not a release of ``tag``.
        DeltaError: A bundle cannot be opened or does not match its release.
        UsageError: No signing key given signed the target's bundle.
        StoreError: The repository cannot be read or written.
    """
    from aoe_pack.keys import resolve
    from aoe_pack.publish import deltas
    from aoe_pack.publish.workflow import DEFAULT_EXPIRES

    store = _open(repo, plain_http)
    try:
        return deltas.add_deltas(
            store,
            tag=tag,
            version=version,
            from_versions=from_versions,
            sign_keys=[resolve.signing_key(k, prompt=password_prompt) for k in sign_keys],
            decryption_key=None
            if decryption_key is None
            else resolve.decryption_key(decryption_key, prompt=password_prompt),
            delta_sign_keys=[
                resolve.signing_key(k, prompt=password_prompt) for k in delta_sign_keys
            ],
            max_percent=max_percent,
            expires=expires or DEFAULT_EXPIRES,
        )
    finally:
        store.close()


def check(
    *,
    repo: PathLike | None = None,
    tag: str,
    device: Device,
    trusted_root: bytes | PathLike,
    state: PathLike | None = None,
    download_dir: PathLike | None = None,
    decryption_key: DecryptionKey | PrivateKey | bytes | PathLike | None = None,
    min_manifest_version: int | None = None,
    plain_http: bool | None = None,
    timeout: float | None = None,
    password_prompt: PasswordPrompt | None = None,
    require_tag: bool = True,
    local_bundle: PathLike | None = None,
) -> CheckResult:
    """Do what a device does: trust, decide, and optionally download (``aoe-pack client check``).

    Walks the root chain from the trusted root, fetches and verifies the
    manifest (refusing a rollback, an expired manifest, a root not signed by
    its predecessor), decides what ``device`` should run, and with
    ``download_dir`` downloads the chosen bundle, checks it against the
    manifest and its own signatures, decrypts and unpacks it.

    The repository is ``repo`` when given, else the ``updateURL`` signed
    into ``local_bundle`` (docs/format.md §15.6). Either way only the
    repository's address comes from there: what is accepted is decided by
    ``trusted_root`` alone.

    Args:
        repo: The repository: ``http(s)://``, a folder, ``s3://``, ``oci://``.
            Wins over ``local_bundle``.
        tag: The model tag the app uses.
        device: The device and app ([Device][aoe_pack.client.decide.Device]).
        trusted_root: The root shipped with the app: its bytes, or its file.
        state: The file where the device keeps its trusted root and the last
            manifest version it accepted (default: one per repository under
            ``$XDG_STATE_HOME/aoe-pack/client/``).
        download_dir: Download, verify, decrypt and unpack the chosen release
            here (default: decide only).
        decryption_key: The device's recipient key or the app's encryption key.
        min_manifest_version: The manifest version the app was built with:
            older manifests are refused even on first contact.
        plain_http: HTTP for an ``oci://`` registry.
        timeout: Deadline in seconds of each download from an ``http(s)://``
            repository.
        password_prompt: Asks for a key file's password when the environment
            has none.
        require_tag: Refuse a tag the manifest does not hold, naming the tags
            it has (a typo). ``False`` decides as a device in the field must
            when its tag was removed: keep what it runs.
        local_bundle: The bundle the app ships for ``tag`` (its local model):
            without ``repo``, its ``model.updateURL`` is the repository. It is
            read without keys; the result's ``repository`` says which
            address was read.

    Raises:
        UsageError: Neither ``repo`` nor a ``local_bundle`` of ``tag`` with an
            ``updateURL`` is given.
        ReleaseNotFoundError: ``tag`` is not in the manifest (with ``require_tag``).
        RollbackError: The manifest is older than one this device accepted.
        ExpiredMetadataError: The manifest has expired.
        UntrustedMetadataError: A signature does not verify under the root.
        BundleMismatchError: The downloaded bundle is not what the manifest names.
        StateLockedError: Another check of the repository held ``state`` for longer
            than a check waits (a minute).
    """
    from aoe_pack.client import device_files
    from aoe_pack.client.address import repository_of
    from aoe_pack.client.check import check as _check
    from aoe_pack.client.check import repository_identity
    from aoe_pack.keys import resolve

    where = repository_of(
        repo=None if repo is None else os.fspath(repo),
        local_bundle=None if local_bundle is None else Path(local_bundle),
        tag=tag,
    )
    key = (
        None
        if decryption_key is None
        else resolve.decryption_key(decryption_key, prompt=password_prompt)
    )
    shipped = (
        trusted_root
        if isinstance(trusted_root, bytes)
        else device_files.read_trusted_root(trusted_root)
    )
    store = _open(where, plain_http, timeout)
    try:
        state_path = (
            Path(state)
            if state is not None
            else device_files.default_state_path(repository_identity(shipped), where)
        )
        result = _check(
            store,
            tag=tag,
            device=device,
            trusted_root=shipped,
            state_path=state_path,
            download_dir=None if download_dir is None else Path(download_dir),
            decryption_key=key,
            require_tag=require_tag,
            minimum=min_manifest_version,
        )
    finally:
        store.close()
    return dataclasses.replace(result, repository=where)


def _verification_keys(
    trusted_keys: Sequence[PublicKey | PathLike],
    decryption_key: DecryptionKey | PrivateKey | bytes | PathLike | None,
    prompt: PasswordPrompt | None,
) -> tuple[list[PublicKey], DecryptionKey | None]:
    from aoe_pack.keys import resolve

    trusted = [resolve.trusted_key(k) for k in trusted_keys]
    if decryption_key is None:
        return trusted, None
    return trusted, resolve.decryption_key(decryption_key, prompt=prompt)


def _open(repo: PathLike, plain_http: bool | None, timeout: float | None = None) -> Store:
    from aoe_pack.storage.open import open_store

    return open_store(os.fspath(repo), plain_http=plain_http, timeout=timeout)
