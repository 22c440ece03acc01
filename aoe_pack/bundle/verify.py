"""Verify a ``.aoe`` bundle: structure, signatures, every byte, and optionally decryption.

The order matters and is the one docs/format.md prescribes for devices:
container structure first (cheap, bounded), then signatures over the raw
manifest bytes, and only then is the manifest parsed and trusted to describe
the payload, whose chunks are hashed on every core.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import zlib
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from aoe_pack._crypto import stream as _stream
from aoe_pack._crypto import wrap as _wrap
from aoe_pack._io.pread import pread
from aoe_pack._jcs import json_values_beyond
from aoe_pack.bundle import signatures
from aoe_pack.bundle._chunked import Progress, open_file, worker_count
from aoe_pack.bundle._tailjournal import journal_name
from aoe_pack.bundle.container import MEDIA_TYPE_V1, BundleLayout, ZipEntry, read_layout
from aoe_pack.bundle.format import (
    DEFAULT_LIMITS,
    MANIFEST_ENTRY,
    PAYLOAD_PREFIX,
    SIGNATURES_ENTRY,
    Limits,
)
from aoe_pack.bundle.manifest import (
    MAX_MANIFEST_VALUES,
    BundleManifest,
    Encryption,
    ModelIdentity,
    PayloadFile,
)
from aoe_pack.errors import (
    BundleError,
    BundleFormatError,
    BundleNotFoundError,
    DecryptionError,
    IntegrityError,
    LimitExceededError,
    ManifestError,
    NoMatchingRecipientError,
    ZipStructureError,
)
from aoe_pack.keys import PublicKey
from aoe_pack.keys.load import DecryptionKey


@dataclass(frozen=True)
class OpenedBundle:
    """A bundle whose container is well-formed; nothing is trusted yet."""

    path: Path | None  # None: given as an open file
    fd: int
    layout: BundleLayout
    manifest_bytes: bytes
    signatures_bytes: bytes

    def payload_entries(self) -> tuple[ZipEntry, ...]:
        return self.layout.entries[:-2]

    def parse_manifest(self, limits: Limits = DEFAULT_LIMITS) -> BundleManifest:
        """Parse the manifest (call after signatures verified, or for inspection)."""
        values = json_values_beyond(self.manifest_bytes, MAX_MANIFEST_VALUES)
        if values is not None:  # before json.loads builds a single one
            raise LimitExceededError(
                f"{MANIFEST_ENTRY} holds {values} JSON values; the limit is {MAX_MANIFEST_VALUES}"
            )
        fractions: list[str] = []  # numbers written with a fraction or an exponent

        def note(text: str) -> float:
            fractions.append(text)
            return float(text)

        try:
            doc: Any = json.loads(
                self.manifest_bytes, parse_float=note, parse_constant=_no_constants
            )
        except (ValueError, RecursionError) as e:  # also huge integers and absurd nesting
            raise ManifestError(f"{MANIFEST_ENTRY} is not valid JSON: {e}") from e
        manifest = BundleManifest.from_dict(doc, limits=limits)  # `format` first, then fields
        if fractions:
            # JCS prints non-integers in ECMAScript's shortest form, which a device
            # could check only with an exact formatter: §5.1 allows integers only.
            raise ManifestError(
                f"{MANIFEST_ENTRY} holds the number {fractions[0][:40]}; "
                "a manifest holds integers only (format §5.1)"
            )
        try:
            canonical = manifest.canonical_bytes()
        except ValueError as e:  # rfc8785 refuses NaN, huge integers, lone surrogates
            raise ManifestError(
                f"{MANIFEST_ENTRY} holds a value JSON cannot carry exactly: {e}"
            ) from e
        if canonical != self.manifest_bytes:
            raise ManifestError(f"{MANIFEST_ENTRY} is not in canonical form (RFC 8785)")
        return manifest


def _no_constants(name: str) -> Any:
    raise ManifestError(f"{MANIFEST_ENTRY} holds {name}, which canonical JSON does not allow")


@contextmanager
def open_bundle(
    path: str | os.PathLike[str] | BinaryIO,
    limits: Limits = DEFAULT_LIMITS,
    *,
    media_types: Collection[bytes] = (MEDIA_TYPE_V1,),
) -> Iterator[OpenedBundle]:
    """Open ``path`` and check its container and metadata entries.

    ``path`` may instead be a binary file already open (read from offset 0,
    and left open): a caller that checked the bytes through that descriptor
    then reads these very bytes, whatever happened to the name since.
    ``media_types``: what the ``mimetype`` entry may say (a delta's differs, §16).
    """
    with ExitStack() as owned:
        if isinstance(path, str | os.PathLike):
            if Path(path).is_dir():  # said alike everywhere: Windows opens folders as EACCES
                raise BundleNotFoundError(f"{path} is a folder, not a bundle")
            try:
                fp: BinaryIO = owned.enter_context(Path(path).open("rb"))
            except FileNotFoundError as e:
                raise BundleNotFoundError(f"{path} does not exist") from e
            except OSError as e:
                raise BundleError(f"cannot open {path}: {e.strerror}") from e
            name: Path | None = Path(path)
        else:
            fp, name = path, None
        try:
            opened = _opened(fp, name, limits, media_types)
        except BundleFormatError as e:
            if name is not None and e.hint is None and os.path.lexists(_interrupted(name)):
                e.hint = (
                    f"an interrupted `aoe-pack sign` left {_interrupted(name).name} beside it: "
                    "run that command again to finish it"
                )
            raise
        yield opened


def _interrupted(path: Path) -> Path:
    """The journal an interrupted co-signing of ``path`` leaves beside it."""
    return path.with_name(journal_name(path.name))


def _opened(
    fp: BinaryIO, path: Path | None, limits: Limits, media_types: Collection[bytes]
) -> OpenedBundle:
    """``fp``'s container checked, and its manifest and signature entries read."""
    size = os.fstat(fp.fileno()).st_size
    layout = read_layout(
        fp, file_size=size, max_entries=limits.max_entries, media_types=media_types
    )
    names = [e.name for e in layout.entries]
    if names[-2:] != [MANIFEST_ENTRY, SIGNATURES_ENTRY]:
        raise ZipStructureError(
            f"the last entries must be {MANIFEST_ENTRY} and {SIGNATURES_ENTRY}, found {names[-2:]}"
        )
    payload = names[:-2]
    for name in payload:
        if not name.startswith(PAYLOAD_PREFIX):
            raise ZipStructureError(f"unexpected entry {name!r}; payloads live under payload/")
    if payload != sorted(payload):
        raise ZipStructureError("payload entries are not sorted by name")
    fd = fp.fileno()
    manifest = _read_small(fd, layout.entries[-2], limits.max_manifest_bytes)
    signatures = _read_small(fd, layout.entries[-1], limits.max_signatures_bytes)
    return OpenedBundle(path, fd, layout, manifest, signatures)


def _read_small(fd: int, entry: ZipEntry, cap: int) -> bytes:
    if entry.size > cap:
        raise LimitExceededError(f"{entry.name} is {entry.size} bytes; the limit is {cap}")
    return pread(fd, entry.size, entry.data_offset)


def _check_crc(entry: ZipEntry, data: bytes) -> None:
    if zlib.crc32(data) != entry.crc32:
        raise IntegrityError(f"{entry.name}: CRC-32 in the ZIP headers does not match its bytes")


@dataclass(frozen=True, kw_only=True)
class VerifyResult:
    """A verified bundle and what was checked."""

    path: Path
    manifest: BundleManifest
    signatures: tuple[signatures.SignatureCheck, ...]
    decrypted: bool
    bytes_checked: int
    notes: tuple[str, ...] = field(default=())
    manifest_sha256: str = ""
    """SHA-256 (hex) of the manifest's bytes, which the signatures cover."""

    def to_dict(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "bundle": str(self.path),
            "verified": True,
            "model": m.model.to_dict(),
            "manifestSha256": self.manifest_sha256,
            "signatures": [
                {"keyid": s.keyid, "trusted": s.trusted, "valid": s.valid} for s in self.signatures
            ],
            "encrypted": m.encryption is not None,
            "decrypted": self.decrypted,
            "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in m.files],
            "bytesChecked": self.bytes_checked,
            "notes": list(self.notes),
        }


def authenticate(
    bundle: OpenedBundle, trusted_keys: Sequence[PublicKey], threshold: int, limits: Limits
) -> tuple[BundleManifest, list[signatures.SignatureCheck]]:
    """Signatures first, then the manifest, then manifest ↔ container agreement."""
    sigs = signatures.parse_envelope(bundle.signatures_bytes, limits)
    checks = signatures.check_signatures(bundle.manifest_bytes, sigs, list(trusted_keys), threshold)
    return check_container(bundle, limits), checks


def check_container(bundle: OpenedBundle, limits: Limits) -> BundleManifest:
    """The manifest, and its agreement with the container (no signature check).

    Use after checking signatures (``authenticate``); alone, it only tells that
    the file is internally consistent, not who made it.
    """
    _check_crc(bundle.layout.entries[-2], bundle.manifest_bytes)
    _check_crc(bundle.layout.entries[-1], bundle.signatures_bytes)
    manifest = bundle.parse_manifest(limits)
    check_entries(bundle, manifest.files, manifest.encryption)
    return manifest


def check_entries(
    bundle: OpenedBundle, files: Sequence[PayloadFile], encryption: Encryption | None
) -> None:
    """The signed file list agrees with the container's payload entries, size and CRC."""
    entries = bundle.payload_entries()
    listed = [f.entry for f in files]
    present = [e.name for e in entries]
    if listed != present:
        missing = sorted(set(listed) - set(present))
        extra = sorted(set(present) - set(listed))
        raise ManifestError(
            "the manifest's file list disagrees with the bundle's entries"
            + (f"; missing from the bundle: {missing}" if missing else "")
            + (f"; not in the manifest: {extra}" if extra else "")
        )
    seg = encryption.segment_size if encryption else 0
    for f, e in zip(files, entries, strict=True):
        expected = _stream.stored_size(f.size, seg) if f.encrypted else f.size
        if f.stored.size != expected or e.size != f.stored.size:
            raise ManifestError(
                f"{e.name}: stored size {e.size} disagrees with the manifest "
                f"({f.stored.size}, for {f.size} plaintext bytes)"
            )
        if e.crc32 != f.stored.crc32:
            raise IntegrityError(f"{e.name}: CRC-32 in the ZIP headers differs from the manifest")


def data_key_if_given(manifest: BundleManifest, key: DecryptionKey | None) -> bytes | None:
    """§8 step 9: the data key when a decryption key is given, else None.

    A key given for an unencrypted bundle is ``decryption``, not a note: the
    caller expects a confidential model, and one that arrives in the clear is a
    build or publishing mistake (or a substitution) to report, not to pass.
    """
    if key is None:
        return None
    if manifest.encryption is None:
        raise DecryptionError(
            f"the bundle is not encrypted, but a decryption key was given ({key.origin})",
            hint="verify an unencrypted bundle without a decryption key; if it should have "
            "been encrypted, rebuild it with --recipient or --encryption-key-file",
        )
    return data_key_for(manifest, key)


def data_key_for(manifest: BundleManifest, key: DecryptionKey) -> bytes:
    """Unwrap the bundle's data key with ``key``."""
    assert manifest.encryption is not None
    return unwrap_data_key(manifest.encryption, manifest.model, key)


def unwrap_data_key(enc: Encryption, model: ModelIdentity, key: DecryptionKey) -> bytes:
    """Unwrap the data key of ``enc``, bound to ``model``'s tag and version (§7.7)."""
    match = [r for r in enc.recipients if r.keyid == key.key_id]
    if not match:
        raise NoMatchingRecipientError(
            f"the bundle is not encrypted for key {key.key_id[:16]}… ({key.origin}); "
            f"its recipients are {', '.join(r.keyid[:16] + '…' for r in enc.recipients)}",
            hint="pass the private key of one of the recipients (see `aoe-pack inspect`)",
        )
    recipient = match[0]
    try:
        blob = base64.b64decode(recipient.wrapped, validate=True)
    except ValueError as e:  # binascii.Error, or non-ASCII text
        raise DecryptionError(f"wrapped key for {recipient.keyid[:16]}… is not base64") from e
    info = _wrap.wrap_info(model.tag, model.version)
    if key.private is not None and recipient.type == "hpke":
        if recipient.kem != _wrap.kem_name(key.private.public):
            raise DecryptionError(
                f"recipient {recipient.keyid[:16]}… uses {recipient.kem}, "
                f"but the key is {key.private.public.algorithm}"
            )
        return _wrap.hpke_unwrap(blob, key.private, info)
    if key.kek is not None and recipient.type == "kek":
        return _wrap.kek_unwrap(blob, key.kek, info)
    raise DecryptionError(f"recipient {recipient.keyid[:16]}… has type {recipient.type}")


def _cipher_for(f: PayloadFile, data_key: bytes | None) -> _stream.SegmentCipher | None:
    if not f.encrypted or data_key is None:
        return None
    assert f.nonce_prefix is not None
    return _stream.SegmentCipher(data_key, bytes.fromhex(f.nonce_prefix), f.entry.encode())


def stream_payload(
    bundle: OpenedBundle,
    f: PayloadFile,
    entry: ZipEntry,
    *,
    data_key: bytes | None,
    pool: ThreadPoolExecutor,
    progress: Progress | None = None,
    sink: Callable[[bytes], object] | None = None,
    stored: Callable[[bytes], object] | None = None,
) -> None:
    """Check every stored chunk of one payload against the signed digests.

    When the plaintext is produced (decrypted with ``data_key``, or wanted by
    ``sink``) it comes in order, goes to ``sink``, and must match the size and
    SHA-256 recorded at build time. ``stored`` gets the stored bytes, in order,
    each chunk once it matched its digest.
    """
    cipher = _cipher_for(f, data_key)
    # The chunk digests authenticate every stored byte, on every core. The
    # whole-file SHA-256 (a second, sequential pass) is checked whenever the
    # plaintext is produced: decrypting, or writing it out. For a plaintext
    # payload that is only verified, it would add a pass and no integrity:
    # the signer vouched for each chunk (docs/format.md, "Verification").
    want_plaintext = cipher is not None or sink is not None
    plain, n = hashlib.sha256(), 0
    for piece in open_file(
        bundle.fd,
        entry.data_offset,
        entry.size,
        chunk_size=f.stored.chunk_size,
        chunks=f.stored.chunks,
        name=entry.name,
        cipher=cipher,
        pool=pool,
        want_plaintext=want_plaintext,
        progress=progress,
        stored=stored,
    ):
        plain.update(piece)
        n += len(piece)
        if sink is not None:
            sink(piece)
    if want_plaintext and (n != f.size or plain.hexdigest() != f.sha256):
        what = "decrypted model" if f.encrypted else "model"
        raise IntegrityError(
            f"{f.path}: the {what} does not match the SHA-256 recorded at build time"
        )


def verify_bundle(
    path: Path,
    *,
    trusted_keys: Sequence[PublicKey],
    threshold: int = 1,
    decryption_key: DecryptionKey | None = None,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress | None = None,
) -> VerifyResult:
    """Verify every byte of the bundle at ``path``; raise on the first problem."""
    signatures.check_threshold(trusted_keys, threshold)  # before the file: §8
    with open_bundle(path, limits) as bundle:
        manifest, checks = authenticate(bundle, trusted_keys, threshold, limits)
        data_key = data_key_if_given(manifest, decryption_key)
        checked = 0
        with ThreadPoolExecutor(worker_count(), thread_name_prefix="aoe-verify") as pool:
            for f, e in zip(manifest.files, bundle.payload_entries(), strict=True):
                stream_payload(bundle, f, e, data_key=data_key, pool=pool, progress=progress)
                checked += e.size
        digest = hashlib.sha256(bundle.manifest_bytes).hexdigest()
    return VerifyResult(
        path=Path(path),
        manifest=manifest,
        signatures=tuple(checks),
        decrypted=data_key is not None,
        bytes_checked=checked,
        manifest_sha256=digest,
    )
