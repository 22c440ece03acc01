"""Co-sign a built bundle: add signatures over its manifest, rewriting only its tail.

A second approver (a security review after CI) signs the very manifest bytes
the first signer signed. The envelope is the last entry, so only the bytes
from its local header to the end of the file change (docs/format.md §6.5);
the result is byte for byte the bundle a build with every key at once makes.

What must hold before a key adds its name, checked under an exclusive lock
on the bundle, the cheap refusals first and then in the order of
docs/format.md §8:

- the container is canonical and the envelope well-formed (a broken bundle
  is not repaired by a signature);
- no key that signs now has signed already (:class:`AlreadySignedError`:
  each key counts once, and a reviewer who picked up the CI key by mistake
  must hear so), and the envelope stays within the limits verifiers enforce;
- with ``trusted_keys``, ``threshold`` of them signed it validly: the approver
  vouches for what those signers built, not for whatever a file claims;
- the manifest parses, agrees with the container, and every stored byte of
  every payload matches its signed chunk digest. The new signature vouches
  for the manifest; an approver must not sign one that no longer describes
  its payload. No decryption key is needed: for an encrypted bundle the
  digests cover the ciphertext.

The new tail is written in place, after a journal of it (:mod:`._tailjournal`):
a rewrite killed at any point is finished by the next run, and the bytes the
checks read are read again just before the journal is written, so a file
changed meanwhile by anything that ignores the lock is refused, not signed.
Writing a whole copy and renaming it over the bundle would be atomic without
a journal, but it writes the payload again, up to 4 GiB (format v1 has no
ZIP64) and as much free space, to change a few kilobytes. The price of
writing in place: a reader that has the bundle open during the rewrite may
read part old, part new tail, which fails its container check (it is never
taken for another bundle); and a file with other names (hard links) would
change under them too, so it is refused.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aoe_pack import dsse
from aoe_pack._io import Folder, lock_exclusive
from aoe_pack._io.entries import is_link, is_plain
from aoe_pack._io.pread import pread
from aoe_pack.bundle import _tailjournal, signatures
from aoe_pack.bundle._chunked import Progress, worker_count
from aoe_pack.bundle._zipwrite import replace_last_data
from aoe_pack.bundle.format import DEFAULT_LIMITS, PAYLOAD_TYPE, Limits
from aoe_pack.bundle.manifest import BundleManifest
from aoe_pack.bundle.verify import OpenedBundle, check_container, open_bundle, stream_payload
from aoe_pack.errors import (
    AlreadySignedError,
    BundleError,
    BundleNotFoundError,
    KeyTypeError,
    LimitExceededError,
    ManifestMismatchError,
    OutputError,
    UsageError,
)
from aoe_pack.keys import PrivateKey, PublicKey, SigningKey

_LOCK_AT = 1 << 33
"""Windows locks a byte, and nobody may read a locked byte there: lock one past
the end of any v1 bundle (< 4 GiB + 22 bytes), so that readers carry on."""


@dataclass(frozen=True, kw_only=True)
class SignResult:
    """A bundle that took new signatures, and what was checked first."""

    path: Path
    manifest: BundleManifest
    manifest_sha256: str
    """SHA-256 (hex) of the manifest's bytes, which every signature covers."""
    added: tuple[str, ...]
    """Ids of the keys whose signatures this run added."""
    signers: tuple[str, ...]
    """Ids of every key that has signed the bundle now, sorted."""
    trusted_signers: tuple[str, ...]
    """Ids of the ``trusted_keys`` whose signatures verified before any was added."""
    bytes_checked: int
    size: int
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "bundle": str(self.path),
            "model": self.manifest.model.to_dict(),
            "manifestSha256": self.manifest_sha256,
            "added": list(self.added),
            "signers": list(self.signers),
            "trustedSigners": list(self.trusted_signers),
            "bytesChecked": self.bytes_checked,
            "size": self.size,
            "notes": list(self.notes),
        }


def add_signatures(
    bundle: Path,
    signing_keys: Sequence[SigningKey],
    *,
    trusted_keys: Sequence[PublicKey] = (),
    threshold: int = 1,
    expect_manifest_sha256: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress | None = None,
) -> SignResult:
    """Check the bundle at ``bundle``, then add the signatures of ``signing_keys`` in place.

    With ``trusted_keys``, ``threshold`` of them must have signed it already.
    With ``expect_manifest_sha256``, its manifest must have that SHA-256 (hex):
    the one the approver reviewed (``inspect`` shows it), else
    :class:`ManifestMismatchError` and nothing is written. A run interrupted
    earlier is finished first; a key whose signature that run added counts as
    added by this one.
    """
    _check_keys(signing_keys)
    expected = _expected_digest(expect_manifest_sha256)
    trusted = list(trusted_keys)
    if trusted:
        signatures.check_threshold(trusted, threshold)
    elif threshold != 1:
        raise UsageError("--threshold counts the signatures of --trusted-key keys; give those keys")
    path = Path(bundle)
    _check_path(path)
    with Folder(path.parent) as folder, _locked(folder, path) as fd:
        notes: list[str] = []
        recovered = _tailjournal.recover(folder, path.name, fd, limits)
        if recovered is not None and recovered.replayed:
            notes.append(f"finished an interrupted signing of {path} first")
        elif recovered is not None:
            notes.append(
                f"removed the journal of an interrupted signing of {path}: {recovered.why}"
            )
        finished = set(recovered.added) if recovered and recovered.replayed else set()
        with os.fdopen(fd, "rb", closefd=False) as fp, open_bundle(fp, limits) as opened:
            return _sign(
                opened,
                folder,
                path,
                signing_keys,
                trusted=trusted,
                threshold=threshold,
                expected=expected,
                finished=finished,
                limits=limits,
                progress=progress,
                notes=notes,
            )


def _sign(
    opened: OpenedBundle,
    folder: Folder,
    path: Path,
    signing_keys: Sequence[SigningKey],
    *,
    trusted: list[PublicKey],
    threshold: int,
    expected: str | None,
    finished: set[str],
    limits: Limits,
    progress: Progress | None,
    notes: list[str],
) -> SignResult:
    layout = opened.layout
    digest = hashlib.sha256(opened.manifest_bytes).hexdigest()
    if expected is not None and digest != expected:
        raise ManifestMismatchError(
            f"{path}'s manifest has SHA-256 {digest}, not {expected} as expected: it is not "
            "the bundle that was reviewed; nothing was signed",
            hint="`aoe-pack inspect` shows a bundle's manifest SHA-256: sign the bundle "
            "whose digest the reviewer approved",
        )
    seen = _metadata_bytes(opened, path)
    sigs = signatures.parse_envelope(opened.signatures_bytes, limits)
    keys = _new_keys(signing_keys, {s.keyid for s in sigs}, finished, path)
    if len(sigs) + len(keys) > limits.max_signatures:
        raise LimitExceededError(
            f"{path} carries {len(sigs)} signatures; {len(keys)} more would exceed the "
            f"limit of {limits.max_signatures} that verifiers enforce"
        )
    trusted_signers: tuple[str, ...] = ()
    if trusted:
        checks = signatures.check_signatures(opened.manifest_bytes, sigs, trusted, threshold)
        trusted_signers = tuple(c.keyid for c in checks if c.valid)
    manifest = check_container(opened, limits)
    checked = 0
    with ThreadPoolExecutor(worker_count(), thread_name_prefix="aoe-sign") as pool:
        for f, e in zip(manifest.files, opened.payload_entries(), strict=True):
            stream_payload(opened, f, e, data_key=None, pool=pool, progress=progress)
            checked += e.size
    merged = sorted(
        [*sigs, *dsse.sign(PAYLOAD_TYPE, opened.manifest_bytes, keys)], key=lambda s: s.keyid
    )
    size = layout.file_size
    if keys:
        journal = _journal(opened, seen, signatures.encode_envelope(merged), keys, limits)
        _check_unchanged(opened, folder, path, seen)
        _tailjournal.commit(folder, path.name, journal)
        _tailjournal.apply(opened.fd, journal, where=str(path))
        _tailjournal.finish(folder, path.name)
        if not folder.same(path.name, opened.fd):
            raise OutputError(
                f"{path} was replaced by another file while it was being signed; the "
                "signatures went into the file it replaced",
                hint="run `aoe-pack sign` again on the bundle now there",
            )
        size = journal.new_size
    requested = {k.key_id for k in signing_keys}
    return SignResult(
        path=path,
        manifest=manifest,
        manifest_sha256=digest,
        added=tuple(sorted({k.key_id for k in keys} | (finished & requested))),
        signers=tuple(s.keyid for s in merged),
        trusted_signers=trusted_signers,
        bytes_checked=checked,
        size=size,
        notes=tuple(notes),
    )


def _metadata_bytes(opened: OpenedBundle, path: Path) -> bytes:
    """The file from the manifest's local header to its end, as the checks read it."""
    manifest, envelope = opened.layout.entries[-2:]
    anchor = manifest.header_offset
    seen = pread(opened.fd, opened.layout.file_size - anchor, anchor)
    if (
        seen[manifest.data_offset - anchor :][: manifest.size] != opened.manifest_bytes
        or seen[envelope.data_offset - anchor :][: envelope.size] != opened.signatures_bytes
    ):
        raise _changed(path)
    return seen


def _journal(
    opened: OpenedBundle, seen: bytes, envelope: bytes, keys: list[SigningKey], limits: Limits
) -> _tailjournal.TailJournal:
    """The rewrite that puts ``envelope`` in place of the bundle's envelope."""
    if len(envelope) > limits.max_signatures_bytes:
        raise LimitExceededError(
            f"with {len(keys)} more signature(s) aoe/signatures.json would be {len(envelope)} "
            f"bytes; verifiers refuse more than {limits.max_signatures_bytes}"
        )
    layout = opened.layout
    anchor = layout.entries[-2].header_offset
    tail_offset, new_tail = replace_last_data(
        [layout.mimetype, *layout.entries], date_time=layout.date_time, data=envelope
    )
    return _tailjournal.TailJournal(
        anchor_offset=anchor,
        tail_offset=tail_offset,
        anchor_sha256=hashlib.sha256(seen[: tail_offset - anchor]).digest(),
        old_tail=seen[tail_offset - anchor :],
        new_tail=new_tail,
        signers=tuple(k.public for k in keys),
    )


def _expected_digest(text: str | None) -> str | None:
    """The expected manifest SHA-256, lowercase; a UsageError if it is not 64 hex digits."""
    if text is None:
        return None
    if len(text) != 64 or not all(c in "0123456789abcdef" for c in text.lower()):
        raise UsageError(
            f"--expect-manifest-sha256 must be 64 hex digits, got {text[:80]!r}",
            hint="pass the manifestSha256 that `aoe-pack inspect --json` shows",
        )
    return text.lower()


def _check_keys(signing_keys: Sequence[SigningKey]) -> None:
    if not signing_keys:
        raise UsageError("at least one --sign-key is required")
    for k in signing_keys:
        if isinstance(k, PrivateKey) and not k.kind.signs:
            raise KeyTypeError(
                f"a {k.public.algorithm} key was given to sign; it only encrypts",
                hint="sign with a key made with `aoe-pack keygen --type ed25519` (or p256)",
            )
    ids = [k.key_id for k in signing_keys]
    if len(set(ids)) != len(ids):
        raise UsageError("the same signing key was given twice")


def _new_keys(
    signing_keys: Sequence[SigningKey], present: set[str], finished: set[str], path: Path
) -> list[SigningKey]:
    """The keys still to sign; a key that signed before is refused, unless the run this
    one finished signed with it (the same command, run again after a crash)."""
    for k in signing_keys:
        if k.key_id in present and k.key_id not in finished:
            raise AlreadySignedError(
                f"key {k.key_id[:16]}… has signed {path} already; each key counts once",
                hint="a co-signature must come from another key: `aoe-pack inspect` lists "
                "the signers",
            )
    return [k for k in signing_keys if k.key_id not in present]


def _check_path(path: Path) -> None:
    """Refuse, by name, what sign must not rewrite in place."""
    try:
        st = path.lstat()
    except FileNotFoundError as e:
        raise BundleNotFoundError(f"{path} does not exist") from e
    except OSError as e:
        raise BundleError(f"cannot open {path}: {e.strerror}") from e
    if is_link(st):
        raise OutputError(
            f"{path} is a link; sign rewrites a bundle in place, so it takes the file itself, "
            "never a link to it",
            hint="pass the path of the file the link leads to",
        )
    if stat.S_ISDIR(st.st_mode):
        raise BundleNotFoundError(f"{path} is a folder, not a bundle")
    _check_kind(path, st)


def _check_kind(path: Path, st: os.stat_result) -> None:
    if not is_plain(st):
        raise OutputError(f"{path} is not a regular file; sign rewrites a bundle file in place")
    if st.st_nlink != 1:
        raise OutputError(
            f"{path} has {st.st_nlink} names (hard links); rewriting it in place would change "
            "the bundle under every one of them",
            hint="copy it and sign the copy",
        )


@contextlib.contextmanager
def _locked(folder: Folder, path: Path) -> Iterator[int]:
    """The bundle open for reading and writing, never through a link, locked exclusively."""
    try:
        fd = folder.open_entry(path.name, os.O_RDWR)
    except OSError as e:
        if e.errno == errno.ELOOP:  # a link swapped in since the check
            raise OutputError(f"{path} is a link; sign takes the file itself") from e
        raise OutputError(f"cannot open {path} to add signatures: {e.strerror}") from e
    try:
        _check_kind(path, os.fstat(fd))
        if not folder.same(path.name, fd):
            raise OutputError(f"{path} changed while it was being opened; run sign again")
        try:
            lock_exclusive(fd, at=_LOCK_AT)
        except OSError as e:
            raise OutputError(f"cannot lock {path}: {e.strerror}") from e
        if not folder.same(path.name, fd):  # replaced while another signer held the lock
            raise OutputError(
                f"{path} was replaced by another file while waiting for the lock",
                hint="run `aoe-pack sign` again on the bundle now there",
            )
        yield fd
    finally:
        os.close(fd)


def _check_unchanged(opened: OpenedBundle, folder: Folder, path: Path, seen: bytes) -> None:
    """The bytes the checks read, read again just before the rewrite: still the same file."""
    size = os.fstat(opened.fd).st_size
    anchor = opened.layout.file_size - len(seen)
    if not (
        size == opened.layout.file_size
        and pread(opened.fd, len(seen), anchor) == seen
        and folder.same(path.name, opened.fd)
    ):
        raise _changed(path)


def _changed(path: Path) -> OutputError:
    return OutputError(
        f"{path} changed while it was being checked (something wrote it without taking its "
        "lock); nothing was written",
        hint="find what writes the bundle, then run `aoe-pack sign` again",
    )
