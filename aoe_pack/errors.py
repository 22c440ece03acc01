"""One error hierarchy for the whole tool.

Every failure a user can cause or meet is an ``AoePackError``. The CLI
turns it into a message, an optional hint and an exit code in exactly one place
(``aoe_pack.cli._errors.handle_errors``); library callers catch the class
they care about. Third-party exceptions are wrapped at the boundary with
``raise ... from e`` so that no traceback reaches a user for their own mistake.

Each class carries a stable ``code`` used in ``--json`` output, so scripts and
device implementations can match failures without parsing English.

Exit codes follow one rule:

- ``2`` (:data:`EXIT_USAGE`): the command line itself is wrong, as can be
  told from the arguments alone, before any file, key, bundle or repository
  is read: an unknown command or option, a missing argument or option, a
  value of the wrong type, out of range or malformed (a version, a duration,
  a URL), options that exclude each other, a path or key reference that
  names nothing usable (no such file, a folder for a file, an unset
  ``env://VAR``, a key file that cannot be read: ``key-reference``). These are
  :class:`UsageError` and its subclasses, and click's own errors. A bundle's
  path is checked only after the keys load (docs/format.md §10), by the
  library: :class:`BundleNotFoundError`.
- ``1`` (:data:`EXIT_FAILURE`): the command was well-formed, but the work was
  refused or failed once aoe-pack looked: an invalid config, a bundle that
  does not verify, a repository already initialised, a release that does not
  exist or is yanked, a key of the wrong kind or missing for this bundle, a
  download that failed. Every other class here.

A class's place in this hierarchy is what decides; no class overrides it.
:func:`aoe_pack.cli._errors.exit_code_for` applies the rule in one place.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class AoePackError(Exception):
    """Root of every error aoe-pack raises on purpose (exit code 1 unless a UsageError)."""

    code = "error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def diagnostics(self) -> str:
        """The message plus what the user should do about it."""
        if self.hint:
            return f"{self.message}\nhint: {self.hint}"
        return self.message

    def extra(self) -> dict[str, object]:
        """Results that accompany the failure in ``--json`` output (top-level keys)."""
        return {}


class UsageError(AoePackError):
    """The command line is wrong in itself (module docstring): exit code 2.

    Raise it only for what the arguments alone show; a refusal that depends
    on what a file, bundle or repository holds is another class.
    """

    code = "usage"


# --- config -----------------------------------------------------------------


class ConfigError(AoePackError):
    """A model config could not be read or is invalid."""

    code = "config"


class ConfigParseError(ConfigError):
    """The config file is not readable JSON (even after legacy repairs)."""

    code = "config-parse"


class ConfigValidationError(ConfigError):
    """The config violates the schema; ``violations`` lists every one."""

    code = "config-invalid"

    def __init__(self, message: str, *, violations: list[object], hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.violations = violations


class ModelFileError(ConfigError):
    """A file the config names is missing, unreadable or not a regular file."""

    code = "model-file"


# --- keys -------------------------------------------------------------------


class KeyFileError(AoePackError):
    """A key could not be resolved, read, decrypted or used."""

    code = "key"


class KeyReferenceError(KeyFileError, UsageError):
    """A key reference (path or env://VAR) points at nothing: a usage error (exit 2)."""

    code = "key-reference"


class KeyNotFoundError(KeyReferenceError):
    """A key reference names a key that its HSM or KMS does not hold: exit 2, as a missing file."""

    code = "key-not-found"


class TokenNotFoundError(KeyNotFoundError):
    """A ``pkcs11:`` reference names a token that no slot of its module holds."""

    code = "token-not-found"


class AmbiguousKeyError(KeyReferenceError):
    """A key reference matches more than one token or key; it must name exactly one."""

    code = "key-ambiguous"


class SignerModuleError(KeyReferenceError):
    """The library a key reference loads (a PKCS#11 module) is missing, or is not one."""

    code = "signer-module"


class KeyFormatError(KeyFileError):
    """The key material is not a key aoe-pack understands."""

    code = "key-format"


class KeyPasswordError(KeyFileError):
    """An encrypted private key has no password, nor a terminal to ask for one.

    As the parent of the two classes below: any password that does not open its key.
    """

    code = "key-password"


class WrongPasswordError(KeyPasswordError):
    """The password given for an encrypted private key does not decrypt it."""

    code = "wrong-password"


class WrongPinError(WrongPasswordError):
    """The PIN given for a PKCS#11 token does not log in to it (CKR_PIN_INCORRECT)."""

    code = "wrong-pin"


class KeyNotEncryptedError(KeyPasswordError):
    """A password was given for a private key that is not encrypted."""

    code = "key-not-encrypted"


class PasswordSourceError(KeyFileError):
    """A key's password source (``env://VAR`` or a file) is unset, missing, unreadable or empty."""

    code = "password-source"


class KeyTypeError(KeyFileError):
    """The key is valid but of the wrong kind for this use."""

    code = "key-type"


class SignerError(KeyFileError):
    """A key held elsewhere (an HSM, a KMS, a signer plugin) could not sign, or signed wrongly.

    The signer was reachable but refused, failed, or returned a signature that
    does not verify under its own public key.
    """

    code = "signer"


class MissingKeyError(KeyFileError):
    """The work needs a key that was not given: a recipient for an encrypted build,
    a decryption key for an encrypted bundle."""

    code = "key-missing"


# --- bundle format ----------------------------------------------------------


class BundleError(AoePackError):
    """Anything wrong with a ``.aoe`` bundle."""

    code = "bundle"


class BundleNotFoundError(BundleError, UsageError):
    """The bundle path names no file, or a folder: a usage error (exit 2)."""

    code = "bundle-not-found"


class BundleFormatError(BundleError):
    """The file is not a well-formed ``.aoe`` v1 bundle."""

    code = "bundle-format"


class NotABundleError(BundleFormatError):
    """The file does not start with the ``.aoe`` magic."""

    code = "not-a-bundle"


class LegacyFormatError(NotABundleError):
    """The file is a legacy AoE encrypted model (atenc v1), not a bundle."""

    code = "legacy-aoe-format"


class UnsupportedVersionError(BundleFormatError):
    """The bundle declares a format version this aoe-pack cannot read."""

    code = "unsupported-version"


class ZipStructureError(BundleFormatError):
    """The ZIP container deviates from the canonical v1 layout."""

    code = "zip-structure"


class UnsafeEntryError(ZipStructureError):
    """A ZIP entry is absolute, climbs out with ``..``, is a link or a duplicate."""

    code = "unsafe-entry"


class ManifestError(BundleFormatError):
    """The bundle manifest is malformed or disagrees with the container."""

    code = "manifest"


class LimitExceededError(BundleFormatError):
    """A size or count exceeds the configured safety limits."""

    code = "limit-exceeded"


class AlreadySignedError(BundleError):
    """A key asked to co-sign a bundle has signed it already; each key counts once."""

    code = "already-signed"


class ManifestMismatchError(BundleError):
    """A bundle to co-sign is not the one reviewed: its manifest has another SHA-256."""

    code = "manifest-mismatch"


# --- verification -----------------------------------------------------------


class VerificationError(BundleError):
    """The bundle is well-formed but does not verify."""

    code = "verification"


class SignatureError(VerificationError):
    """Signatures are malformed, invalid, untrusted or too few."""

    code = "signature"


class ThresholdError(SignatureError):
    """Fewer distinct trusted keys signed than the threshold requires."""

    code = "threshold"


class IntegrityError(VerificationError):
    """Stored or decrypted bytes differ from what the signed manifest says."""

    code = "integrity"


class DecryptionError(VerificationError):
    """The payload could not be decrypted or failed authentication."""

    code = "decryption"


class NoMatchingRecipientError(DecryptionError):
    """None of the bundle's recipients matches the given decryption key."""

    code = "no-matching-recipient"


class DeltaError(BundleError):
    """A delta update (docs/format.md §16) cannot be used; the device falls back to the bundle."""

    code = "delta"


class DeltaBaseError(DeltaError):
    """The installed files are not the ones the delta was made from."""

    code = "delta-base"


class PatchError(DeltaError):
    """A patch in a delta is corrupt, or would produce other than the target's size."""

    code = "delta-patch"


# --- conversion -------------------------------------------------------------


class ConvertError(AoePackError):
    """A source model or a conversion failed."""

    code = "convert"


class MissingExtraError(ConvertError):
    """A framework the conversion needs is not installed."""

    code = "missing-extra"


class ModelInvalidError(ConvertError):
    """The source model file is corrupt, truncated or not loadable."""

    code = "model-invalid"


class UnsupportedModelError(ModelInvalidError):
    """The model loads but uses something aoe-pack cannot convert (opset, format)."""

    code = "model-unsupported"


class ModelSignatureError(ConvertError):
    """The model's inputs/outputs disagree with the config's declaration."""

    code = "model-signature"


class ConverterNotFoundError(ConvertError):
    """No converter is registered for a target's runtime, or it lacks the variant."""

    code = "converter-not-found"


class ConversionError(ConvertError):
    """A converter failed to produce its artifact."""

    code = "conversion"


class ParityError(ConvertError):
    """A converted artifact differs from its source beyond its tolerance."""

    code = "parity"


class RuntimeCrashError(ConvertError):
    """A runtime died (signal, abort) or hung while running an artifact in its child process."""

    code = "runtime-crash"


class SourceRunError(ConvertError):
    """The source model itself fails on the parity inputs, so nothing can be compared."""

    code = "source-run"


class TargetsFailedError(ConvertError):
    """One or more targets did not convert within tolerance; ``outcomes`` has every target."""

    code = "targets-failed"

    def __init__(
        self, message: str, *, outcomes: list[dict[str, object]], hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.outcomes = outcomes

    def extra(self) -> dict[str, object]:
        return {"targets": self.outcomes}


# --- bench -------------------------------------------------------------------


class BenchError(AoePackError):
    """A benchmark cannot run on this bundle or on this machine."""

    code = "bench"


class BenchReportError(BenchError):
    """A bench report file is unreadable, or not a report this aoe-pack reads."""

    code = "bench-report"


# --- export to other tools' formats ------------------------------------------


class ExportError(AoePackError):
    """A verified bundle cannot be written in another tool's format as asked."""

    code = "export"


# --- output -----------------------------------------------------------------


class OutputError(AoePackError):
    """An output path cannot be written safely."""

    code = "output"


# --- repository manifest, publishing and the device client -------------------


class RepositoryError(AoePackError):
    """A model repository (root, manifest, bundles) is invalid or untrusted."""

    code = "repository"


class RepositoryExistsError(RepositoryError):
    """``manifest init`` found a repository already there."""

    code = "repository-exists"


class VersionLimitError(RepositoryError):
    """An edit would give a manifest or root a version past 2**53-1, which no reader accepts."""

    code = "version-limit"


class RepositoryFormatError(RepositoryError):
    """A root or manifest document is malformed or breaks the schema."""

    code = "repository-format"


class VersionError(RepositoryError):
    """A version string is not semver, or cannot be mapped to a versionCode."""

    code = "version"


class UntrustedMetadataError(RepositoryError):
    """A root or manifest lacks a threshold of valid signatures from trusted keys."""

    code = "untrusted-metadata"


class RootRotationError(UntrustedMetadataError):
    """A new root is not signed by a threshold of both the old and the new keys."""

    code = "root-rotation"


class RollbackError(RepositoryError):
    """A manifest or root is older than one the client already accepted."""

    code = "rollback"


class MixAndMatchError(RepositoryError):
    """A validly signed tag document that is not the one the index names (another tag
    or another version served under its name)."""

    code = "mix-and-match"


class TagPatchError(RepositoryError):
    """A tag document patch (``tags/<tag>/N.from-M.zst``) that cannot be applied.

    Devices never report it: they fall back to the full tag document (§15.12).
    """

    code = "tag-patch"


class ExpiredMetadataError(RepositoryError):
    """A manifest's ``expires`` time has passed (freeze attack or stale repository)."""

    code = "expired"


class BundleMismatchError(RepositoryError):
    """A downloaded bundle differs from the manifest's size or digest (mix-and-match)."""

    code = "bundle-mismatch"


class ReleaseNotFoundError(RepositoryError):
    """A tag or version named on the command line is not in the manifest."""

    code = "release-not-found"


class ReleaseYankedError(RepositoryError):
    """The release is yanked, and the edit asked of it makes no sense for a yanked release."""

    code = "release-yanked"


class ReleaseConflictError(RepositoryError):
    """A release with this tag and version already exists with different content."""

    code = "release-conflict"


class TagCollisionError(RepositoryError):
    """An edit would add a tag whose name differs only in case from another tag's.

    Their documents, ``tags/Card/N.json`` and ``tags/card/N.json``, would be one
    file on a case-insensitive file system (macOS, Windows; docs/format.md §15.4).
    """

    code = "tag-collision"


class UpdateURLMismatchError(RepositoryError):
    """A bundle's ``updateURL`` names another repository than the one it is published to.

    Devices that ship it would look for updates elsewhere (``manifest publish
    --public-url``, docs/format.md §15.8.1).
    """

    code = "update-url-mismatch"


class ProposalError(RepositoryError):
    """A ceremony's proposal cannot take this signature, or be installed in this repository."""

    code = "proposal"


class ProposalStaleError(ProposalError):
    """The repository is no longer at the root and manifest a proposal was prepared against.

    Another edit landed since (prepare the proposal again), or this very
    proposal was installed already (a replay).
    """

    code = "proposal-stale"


class ProposalIncompleteError(ProposalError):
    """A proposal lacks signatures a threshold still needs; the message names whose."""

    code = "proposal-incomplete"


class StoreError(AoePackError):
    """A repository destination (folder, object store, registry, HTTP) failed."""

    code = "store"


class StoreConflictError(StoreError):
    """A compare-and-swap write lost a race; the caller re-reads and retries."""

    code = "store-conflict"


class StateLockedError(StoreError):
    """Another check of the repository held the device's state longer than the wait allows.

    Checks sharing one state file take turns (§15.6), so that neither lowers
    the floor the other saved.
    """

    code = "state-locked"


class DownloadError(StoreError):
    """A download failed, or went past its size cap (endless-data attack)."""

    code = "download"


class DownloadTooLargeError(DownloadError):
    """A download returned more bytes than its cap allows."""

    code = "download-too-large"


class DownloadTooSlowError(DownloadError):
    """A download outlasted its deadline or fell below its minimum rate (slow retrieval)."""

    code = "download-too-slow"


# --- the decision service (aoe-pack serve) ------------------------------------


class ServeError(AoePackError):
    """``aoe-pack serve`` cannot start (its server is not installed, its address is taken)."""

    code = "serve"


class RequestError(ServeError):
    """A request to the decision service is malformed: not JSON, a member missing, unknown
    or of the wrong type, or a value a device could not send (HTTP 400)."""

    code = "bad-request"


class RequestTooLargeError(RequestError):
    """A request's body is larger than the service accepts (HTTP 413)."""

    code = "request-too-large"


class RequestTimeoutError(RequestError):
    """A request's headers or body did not arrive in time: a slow or stalled client (HTTP 408)."""

    code = "request-timeout"


class UnknownEndpointError(RequestError):
    """No endpoint has this path, or none takes this method there (HTTP 404 or 405)."""

    code = "unknown-endpoint"


def error_for_code(code: str | None, message: str, *, hint: str | None = None) -> AoePackError:
    """The error class whose ``code`` is ``code`` (from a child process), else ConvertError."""
    pending: list[type[AoePackError]] = [AoePackError]
    while pending:
        cls = pending.pop()
        if code is not None and cls.code == code and cls is not TargetsFailedError:
            try:
                return cls(message, hint=hint)
            except TypeError:  # a class whose constructor needs more than a message
                break
        pending.extend(cls.__subclasses__())
    return ConvertError(message, hint=hint)
