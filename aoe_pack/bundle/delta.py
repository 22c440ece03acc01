"""Delta updates (docs/format.md §16): a signed, encrypted container of per-file patches.

A delta turns the installed files of one release (the *base*) into the files
of the next (the *target*). It is a bundle-shaped container with its own media
type (``application/vnd.aoe.bundle.delta.v1+zip``), manifest format (``aoe-delta/v1``)
and DSSE payload type, so no delta is ever read as a bundle nor a signature on
one taken for a signature on the other. Everything else is the bundle's: the
aligned ZIP, the chunk digests, the signatures, and the encryption: a delta
reuses the target bundle's data key and copies its recipient wraps (they bind
the tag and version, which are the target's), with a fresh random nonce prefix
per patch.

The delta's manifest names the base (its version, bundle SHA-256 and every
file's path, size and SHA-256) and the target's files with the size and
SHA-256 signed in the target bundle. Applying checks the installed files
against the base, writes each target file (copied from the base, or patched
with bounded output) and accepts it only if its SHA-256 is the target's.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from aoe_pack._io import WriteBehind, atomic_output
from aoe_pack.bundle import _patch, signatures
from aoe_pack.bundle._chunked import worker_count
from aoe_pack.bundle.container import AlignedZipWriter, check_name, dos_datetime
from aoe_pack.bundle.delta_manifest import (
    COPY,
    DELTA_FORMAT,
    DELTA_PAYLOAD_TYPE,
    MEDIA_TYPE_DELTA_V1,
    PATCH,
    DeltaManifest,
    FileDigest,
    TargetFile,
)
from aoe_pack.bundle.format import DEFAULT_LIMITS, MANIFEST_ENTRY, SIGNATURES_ENTRY, Limits
from aoe_pack.bundle.manifest import BundleManifest
from aoe_pack.bundle.verify import (
    OpenedBundle,
    authenticate,
    check_entries,
    data_key_if_given,
    open_bundle,
    stream_payload,
    unwrap_data_key,
)
from aoe_pack.errors import DeltaBaseError, DeltaError, IntegrityError, OutputError
from aoe_pack.keys import PublicKey, SigningKey
from aoe_pack.keys.load import DecryptionKey

__all__ = [
    "DELTA_FORMAT",
    "DELTA_PAYLOAD_TYPE",
    "MEDIA_TYPE_DELTA_V1",
    "ApplyResult",
    "DeltaManifest",
    "DeltaResult",
    "FileDigest",
    "TargetFile",
    "apply_delta",
    "make_delta",
    "open_delta",
]

# --- reading a bundle's plaintext (publisher side) ----------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Release:
    manifest: BundleManifest
    bundle_sha256: str
    files: dict[str, bytes]
    data_key: bytes | None


def _read_release(
    path: Path,
    *,
    trusted_keys: Sequence[PublicKey],
    decryption_key: DecryptionKey | None,
    limits: Limits,
) -> _Release:
    """Verify ``path`` and return every file's plaintext (checked against its signed SHA-256)."""
    with path.open("rb") as fp:
        bundle_sha256 = hashlib.file_digest(fp, "sha256").hexdigest()
        fp.seek(0)
        with open_bundle(fp, limits) as bundle:
            manifest, _ = authenticate(bundle, trusted_keys, 1, limits)
            key = decryption_key if manifest.encryption is not None else None
            data_key = data_key_if_given(manifest, key)
            if manifest.encryption is not None and data_key is None:
                raise DeltaError(
                    f"{path} is encrypted: a delta needs its plaintext",
                    hint="pass --decryption-key with a key the bundle is encrypted for",
                )
            files: dict[str, bytes] = {}
            with ThreadPoolExecutor(worker_count(), thread_name_prefix="aoe-delta") as pool:
                for f, e in zip(manifest.files, bundle.payload_entries(), strict=True):
                    out = bytearray()
                    stream_payload(bundle, f, e, data_key=data_key, pool=pool, sink=out.extend)
                    files[f.path] = bytes(out)
    return _Release(manifest=manifest, bundle_sha256=bundle_sha256, files=files, data_key=data_key)


# --- making a delta ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class DeltaResult:
    """What ``make_delta`` wrote."""

    path: Path
    size: int
    sha256: str
    manifest: DeltaManifest

    def to_dict(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "delta": str(self.path),
            "size": self.size,
            "sha256": self.sha256,
            "tag": m.model.tag,
            "from": m.base_version,
            "to": m.model.version,
            "encrypted": m.encryption is not None,
            "patches": [{"path": f.path, "size": f.size} for f in m.files],
        }


def make_delta(
    base: Path,
    target: Path,
    out: Path,
    *,
    trusted_keys: Sequence[PublicKey],
    signing_keys: Sequence[SigningKey],
    decryption_key: DecryptionKey | None = None,
    limits: Limits = DEFAULT_LIMITS,
    level: int = _patch.LEVEL,
) -> DeltaResult:
    """Write the delta from bundle ``base`` to bundle ``target`` at ``out``.

    Both bundles are verified with ``trusted_keys`` and decrypted with
    ``decryption_key`` (it must be a recipient of both when they are
    encrypted). The delta is encrypted exactly to the target's recipients.
    """
    # Imported here: a device applies deltas and never builds (tests/cli/test_startup.py).
    from aoe_pack.bundle.build import PayloadSource, _pack_file, source_date_epoch

    if not signing_keys:
        raise DeltaError("a delta must be signed: give at least one signing key")
    old = _read_release(
        base, trusted_keys=trusted_keys, decryption_key=decryption_key, limits=limits
    )
    new = _read_release(
        target, trusted_keys=trusted_keys, decryption_key=decryption_key, limits=limits
    )
    bm, tm = old.manifest, new.manifest
    if bm.model.tag != tm.model.tag:
        raise DeltaError(f"{base} is {bm.model.tag}, {target} is {tm.model.tag}: not one model")
    if bm.model.version == tm.model.version:
        raise DeltaError(f"{base} and {target} are both version {tm.model.version}")
    targets: list[TargetFile] = []
    patches: list[tuple[str, bytes]] = []
    by_digest = {f.sha256: f.path for f in bm.files}
    for f in tm.files:
        same = by_digest.get(f.sha256)
        if same is not None:
            targets.append(
                TargetFile(path=f.path, size=f.size, sha256=f.sha256, method=COPY, base=same)
            )
            continue
        source = f.path if f.path in old.files else None
        base_bytes = old.files[source] if source is not None else b""
        if not _patch.fits(len(base_bytes), f.size):
            raise DeltaError(f"{f.path}: files of these sizes are beyond what zstd can patch")
        patches.append((f.path, _patch.make_patch(base_bytes, new.files[f.path], level=level)))
        targets.append(
            TargetFile(path=f.path, size=f.size, sha256=f.sha256, method=PATCH, base=source)
        )
    epoch = source_date_epoch()
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="aoe-delta-")))
        sources = []
        for i, (path, data) in enumerate(patches):
            local = tmp / str(i)
            local.write_bytes(data)
            sources.append(PayloadSource(local=local, path=path, role="patch"))
        fp = stack.enter_context(atomic_output(out, overwrite=True))
        pool = stack.enter_context(ThreadPoolExecutor(worker_count()))
        hasher = stack.enter_context(ThreadPoolExecutor(1))
        flusher = stack.enter_context(WriteBehind(fp.fileno()))
        writer = AlignedZipWriter(fp, media_type=MEDIA_TYPE_DELTA_V1, date_time=dos_datetime(epoch))
        packed = tuple(
            _pack_file(
                src=s,
                writer=writer,
                pool=pool,
                hasher=hasher,
                data_key=new.data_key,
                flusher=flusher,
                progress=None,
            )
            for s in sources
        )
        manifest = DeltaManifest(
            model=tm.model,
            base_version=bm.model.version,
            base_bundle_sha256=old.bundle_sha256,
            base_files=tuple(
                FileDigest(path=f.path, size=f.size, sha256=f.sha256) for f in bm.files
            ),
            target_bundle_sha256=new.bundle_sha256,
            target_files=tuple(targets),
            files=packed,
            source_date_epoch=epoch,
            encryption=tm.encryption,
        )
        data = manifest.canonical_bytes()
        writer.add_bytes(MANIFEST_ENTRY, data)
        writer.add_bytes(
            SIGNATURES_ENTRY,
            signatures.sign_manifest(data, list(signing_keys), payload_type=DELTA_PAYLOAD_TYPE),
        )
        writer.close()
        size = fp.tell()
        fp.truncate(size)
    with out.open("rb") as written:
        digest = hashlib.file_digest(written, "sha256").hexdigest()
    return DeltaResult(path=out, size=size, sha256=digest, manifest=manifest)


# --- applying a delta (device side) --------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ApplyResult:
    """A delta that verified and whose every output file matched the target's SHA-256."""

    manifest: DeltaManifest
    files: tuple[FileDigest, ...]


@contextmanager
def open_delta(
    delta: str | os.PathLike[str] | BinaryIO,
    *,
    trusted_keys: Sequence[PublicKey],
    threshold: int = 1,
    limits: Limits = DEFAULT_LIMITS,
) -> Iterator[tuple[OpenedBundle, DeltaManifest]]:
    """The delta's container checked, its signatures verified, then its manifest parsed."""
    signatures.check_threshold(trusted_keys, threshold)
    with open_bundle(delta, limits, media_types=(MEDIA_TYPE_DELTA_V1,)) as opened:
        sigs = signatures.parse_envelope(
            opened.signatures_bytes, limits, payload_type=DELTA_PAYLOAD_TYPE
        )
        signatures.check_signatures(
            opened.manifest_bytes,
            sigs,
            list(trusted_keys),
            threshold,
            payload_type=DELTA_PAYLOAD_TYPE,
        )
        manifest = DeltaManifest.parse(opened.manifest_bytes, limits=limits)
        check_entries(opened, manifest.files, manifest.encryption)
        yield opened, manifest


def apply_delta(
    delta: str | os.PathLike[str] | BinaryIO,
    base_dir: Path,
    out_dir: Path,
    *,
    tag: str,
    version: str,
    trusted_keys: Sequence[PublicKey],
    decryption_key: DecryptionKey | None,
    threshold: int = 1,
    limits: Limits = DEFAULT_LIMITS,
) -> ApplyResult:
    """Verify ``delta`` and write the target files of ``tag`` ``version`` into ``out_dir``.

    ``base_dir`` holds the installed files of the base release; ``out_dir``
    must be an empty folder of the caller's (a hidden staging folder), which it
    removes on failure. Raises :class:`DeltaBaseError` when the installed files
    are not the delta's base, :class:`PatchError` for a bad patch and
    :class:`IntegrityError` when an output file is not the target's.
    """
    with open_delta(delta, trusted_keys=trusted_keys, threshold=threshold, limits=limits) as (
        opened,
        m,
    ):
        if (m.model.tag, m.model.version) != (tag, version):
            raise DeltaError(
                f"the delta says it leads to {m.model.tag} {m.model.version}, "
                f"the release is {tag} {version}"
            )
        base = _read_base(base_dir, m.base_files)
        data_key = None
        if m.encryption is not None:
            if decryption_key is None:
                raise DeltaError("the delta is encrypted and no decryption key was given")
            data_key = unwrap_data_key(m.encryption, m.model, decryption_key)
        entries = dict(zip((f.path for f in m.files), opened.payload_entries(), strict=True))
        files = {f.path: f for f in m.files}
        with ThreadPoolExecutor(worker_count(), thread_name_prefix="aoe-delta") as pool:
            for t in m.target_files:
                source = base[t.base] if t.base is not None else b""
                with _create(out_dir, t.path) as sink:
                    digest = hashlib.sha256()
                    if t.method == COPY:
                        pieces: Iterator[bytes] = iter((source,))
                    else:
                        patch = bytearray()
                        stream_payload(
                            opened,
                            files[t.path],
                            entries[t.path],
                            data_key=data_key,
                            pool=pool,
                            sink=patch.extend,
                        )
                        pieces = _patch.apply_patch(
                            source, bytes(patch), target_size=t.size, name=t.path
                        )
                    n = 0
                    for piece in pieces:
                        n += len(piece)
                        digest.update(piece)
                        sink.write(piece)
                if n != t.size or digest.hexdigest() != t.sha256:
                    raise IntegrityError(
                        f"{t.path}: the file the delta produced does not match the "
                        "release's signed SHA-256"
                    )
    return ApplyResult(
        manifest=m,
        files=tuple(FileDigest(path=t.path, size=t.size, sha256=t.sha256) for t in m.target_files),
    )


def _read_base(base_dir: Path, files: Sequence[FileDigest]) -> dict[str, bytes]:
    """The installed base files, each matched against the delta's base digests."""
    out: dict[str, bytes] = {}
    for f in files:
        path = base_dir.joinpath(*f.path.split("/"))
        try:
            fd = os.open(
                path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
            )
        except OSError as e:
            raise DeltaBaseError(
                f"{path}: the delta's base file cannot be read ({e.strerror})"
            ) from e
        with os.fdopen(fd, "rb") as fp:
            data = fp.read(f.size + 1)
        if len(data) != f.size or hashlib.sha256(data).hexdigest() != f.sha256:
            raise DeltaBaseError(
                f"{path} differs from the file the delta was made from "
                f"({f.path} of version's bundle)"
            )
        out[f.path] = data
    return out


@contextmanager
def _create(root: Path, relpath: str) -> Iterator[BinaryIO]:
    """A new file at ``relpath`` under ``root`` (a checked name: no '..', no absolute path)."""
    check_name(relpath)
    parts = relpath.split("/")
    folder = root
    for part in parts[:-1]:
        folder = folder / part
        try:
            folder.mkdir()
        except FileExistsError:
            if folder.is_symlink() or not folder.is_dir():
                raise OutputError(f"{folder} is not a folder of ours") from None
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(folder / parts[-1], flags | getattr(os, "O_BINARY", 0), 0o644)
    with os.fdopen(fd, "wb") as fp:
        yield fp
