"""The journal that makes rewriting the tail of a bundle in place safe from crashes.

Co-signing (:mod:`.cosign`) changes only a bundle's tail: the local header and
data of ``aoe/signatures.json``, the central directory and the end record, a
few kilobytes at the end of a file of up to 4 GiB. A write in place is not
atomic, so the new tail first goes, whole and fsynced, into a journal beside
the bundle, ``.NAME.cosign``, with the old tail it replaces and the public
keys whose signatures it adds; only then is the bundle written, cut to its new
size and fsynced, and the journal removed.

Whoever next holds the bundle's lock (the next ``aoe-pack sign``) finds the
journal and :func:`recover` replays it, which may be done any number of times.
A journal is a file anyone able to create one in the folder could have put
there (Windows does not tell whose it is), so nothing in it is taken on trust:

- a journal cut short (its own SHA-256 does not match: the crash came while
  it was written), or one in another format, was never acted on: it is
  removed, the bundle untouched;
- the layout is the file's own: the bytes before the tail are never
  rewritten, so with the journal's old tail after them the strict container
  reader must find the manifest's local header at the journal's anchor and
  the envelope's at its tail offset, every offset within the file;
- the old tail must be what the file holds (or held, for the part already
  overwritten: each byte is the old or the new one), and the new tail exactly
  what the writer makes of the envelope it carries: the old signatures, all
  of them, and signatures of the journal's keys that verify over the
  bundle's manifest. A replay then adds valid signatures to the very
  manifest, and does nothing else;
- a journal that fails any of these is removed, the bundle untouched, and the
  signing goes on as if it had not been there.

Until then, a bundle caught halfway fails every verifier's container check
(docs/format.md §8 step 2): it never passes for another bundle.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aoe_pack import dsse
from aoe_pack._crypto import asymmetric
from aoe_pack._io import Folder
from aoe_pack._io.pread import pread, pwrite
from aoe_pack.bundle import signatures
from aoe_pack.bundle._zipread import BundleLayout, read_layout
from aoe_pack.bundle._zipwrite import LOCAL, replace_last_data
from aoe_pack.bundle.format import MANIFEST_ENTRY, PAYLOAD_TYPE, SIGNATURES_ENTRY, Limits
from aoe_pack.dsse import Signature
from aoe_pack.errors import AoePackError, OutputError
from aoe_pack.keys import PublicKey

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

_MAGIC = b"aoe-pack tail journal v2\n"
_HEAD = struct.Struct("<QQQQ32sH")
"""Anchor offset, tail offset, old tail length, new tail length, anchor SHA-256,
number of keys; then each key (u16 length, SPKI PEM), the old tail, the new tail,
and the SHA-256 of everything before it."""
_KEY_LENGTH = struct.Struct("<H")
_DIGEST = 32
MAX_JOURNAL_BYTES = 64 << 20
"""More than two tails can hold: a 1 MiB envelope and 10 001 central records of 1070 bytes."""
_BLOCK = 4096
_LEFT = "the bundle was left as it was"


def journal_name(bundle_name: str) -> str:
    """The journal's name beside the bundle ``bundle_name``: hidden, and no temporary's."""
    return f".{bundle_name}.cosign"


@dataclass(frozen=True)
class TailJournal:
    """A tail rewrite of a bundle: where, what was there, and what replaces it."""

    anchor_offset: int
    """Where the bytes that tell this bundle from another start (the manifest's local header)."""
    tail_offset: int
    """Where the rewrite starts (the local header of the last entry)."""
    anchor_sha256: bytes
    """SHA-256 of the bytes from ``anchor_offset`` to ``tail_offset``."""
    old_tail: bytes
    new_tail: bytes
    signers: tuple[PublicKey, ...] = ()
    """The keys whose signatures the new tail adds."""

    @property
    def added(self) -> tuple[str, ...]:
        """Ids of the keys whose signatures the new tail adds."""
        return tuple(k.key_id for k in self.signers)

    @property
    def new_size(self) -> int:
        return self.tail_offset + len(self.new_tail)

    def encode(self) -> bytes:
        head = _HEAD.pack(
            self.anchor_offset,
            self.tail_offset,
            len(self.old_tail),
            len(self.new_tail),
            self.anchor_sha256,
            len(self.signers),
        )
        pems = b"".join(_KEY_LENGTH.pack(len(k.pem)) + k.pem for k in self.signers)
        body = _MAGIC + head + pems + self.old_tail + self.new_tail
        return body + hashlib.sha256(body).digest()

    @classmethod
    def decode(cls, data: bytes) -> TailJournal | None:
        """The journal in ``data``; None if it is not a whole one in this format."""
        body = data[:-_DIGEST]
        fixed = len(_MAGIC) + _HEAD.size
        if not _whole(data) or len(body) < fixed:
            return None
        anchor, tail, old_length, new_length, anchor_sha256, count = _HEAD.unpack_from(
            body, len(_MAGIC)
        )
        read = _read_keys(body, fixed, count)
        if read is None or len(body) != read[1] + old_length + new_length:
            return None
        signers, at = read
        return cls(
            anchor_offset=anchor,
            tail_offset=tail,
            anchor_sha256=anchor_sha256,
            old_tail=body[at : at + old_length],
            new_tail=body[at + old_length :],
            signers=signers,
        )


def _read_keys(body: bytes, at: int, count: int) -> tuple[tuple[PublicKey, ...], int] | None:
    """The ``count`` signing keys at ``at`` in ``body``, and where they end; None if malformed."""
    signers = []
    for _ in range(count):
        if at + _KEY_LENGTH.size > len(body):
            return None
        (length,) = _KEY_LENGTH.unpack_from(body, at)
        pem = body[at + _KEY_LENGTH.size : at + _KEY_LENGTH.size + length]
        at += _KEY_LENGTH.size + length
        if len(pem) != length:
            return None
        try:
            key = asymmetric.load_public(pem, origin="the journal")
        except AoePackError:
            return None
        if not key.kind.signs:
            return None
        signers.append(key)
    return tuple(signers), at


def _whole(data: bytes) -> bool:
    """Whether ``data`` is a journal written to its end: its magic, and its own SHA-256 last."""
    body, digest = data[:-_DIGEST], data[-_DIGEST:]
    return (
        len(data) > len(_MAGIC) + _DIGEST
        and body.startswith(_MAGIC)
        and hashlib.sha256(body).digest() == digest
    )


@dataclass(frozen=True, kw_only=True)
class Recovered:
    """What :func:`recover` did with a journal it found."""

    replayed: bool
    """True: the rewrite was finished; False: the journal was removed, the bundle untouched."""
    added: tuple[str, ...]
    why: str
    """Why a journal was removed unfinished."""


def commit(folder: Folder, bundle_name: str, journal: TailJournal) -> None:
    """Write ``journal`` beside the bundle and make it durable, name included."""
    name = journal_name(bundle_name)
    try:
        fd = folder.create(name, 0o600)
    except OSError as e:
        raise OutputError(f"cannot create the journal {folder.path / name}: {e.strerror}") from e
    try:
        try:
            _write_file(fd, journal.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        folder.fsync()
    except OSError as e:
        folder.remove(name)
        raise OutputError(f"cannot write the journal {folder.path / name}: {e.strerror}") from e


def _write_file(fd: int, data: bytes) -> None:
    pwrite(fd, data, 0)


def apply(fd: int, journal: TailJournal, *, where: str) -> None:
    """Write the new tail into the bundle open as ``fd``, cut the file after it, fsync.

    If this fails midway, the journal stays: the next run finishes the rewrite.
    """
    try:
        pwrite(fd, journal.new_tail, journal.tail_offset)
        os.ftruncate(fd, journal.new_size)
        os.fsync(fd)
    except OSError as e:
        raise OutputError(
            f"writing the new signatures into {where} failed: {e.strerror}",
            hint="its journal beside it holds the whole change: run `aoe-pack sign` on it "
            "again to finish it",
        ) from e


def finish(folder: Folder, bundle_name: str) -> None:
    """Remove the journal of a rewrite that is on disk."""
    folder.remove(journal_name(bundle_name))
    folder.fsync()


def recover(folder: Folder, bundle_name: str, fd: int, limits: Limits) -> Recovered | None:
    """Finish or discard the journal of an interrupted rewrite of the bundle open as ``fd``.

    The caller holds the bundle's lock. None when there is no journal. A journal
    that is not whole, not in this format, or not a rewrite of this very
    bundle that only adds valid signatures, is removed with the bundle untouched.
    """
    name = journal_name(bundle_name)
    if folder.lstat(name) is None:
        return None
    jfd = folder.open_file(name)
    if jfd is None:
        raise OutputError(
            f"{folder.path / name} is not a journal this user's aoe-pack wrote (a link, or "
            "another user's file)",
            hint="look at it, then remove it: aoe-pack sign will not act on it",
        )
    with os.fdopen(jfd, "rb") as f:
        data = f.read(MAX_JOURNAL_BYTES + 1)
    journal = None
    if len(data) > MAX_JOURNAL_BYTES:
        why = f"it is larger than any journal aoe-pack writes; {_LEFT}"
    elif not _whole(data):
        why = "it was cut short, before the bundle was changed"
    elif (journal := TailJournal.decode(data)) is None:
        why = f"it is not a journal this aoe-pack writes; {_LEFT}"
    else:
        why = _unfit(fd, journal, limits) or ""
    if journal is None or why:
        folder.remove(name)
        folder.fsync()
        return Recovered(replayed=False, added=journal.added if journal else (), why=why)
    apply(fd, journal, where=str(folder.path / bundle_name))
    finish(folder, bundle_name)
    return Recovered(replayed=True, added=journal.added, why="")


def _unfit(fd: int, journal: TailJournal, limits: Limits) -> str | None:
    """Why ``journal`` is not a rewrite of the bundle open as ``fd``; None if it is.

    It is if the file is its bundle before, during or after the rewrite, and
    the rewrite adds valid signatures over that bundle's manifest and nothing else.
    """
    layout = _layout_before(fd, journal, limits)
    if isinstance(layout, str):
        return layout
    anchor, tail = journal.anchor_offset, journal.tail_offset
    size = os.fstat(fd).st_size
    if hashlib.sha256(
        pread(fd, tail - anchor, anchor)
    ).digest() != journal.anchor_sha256 or not _mix_of(
        pread(fd, size - tail, tail), journal.old_tail, journal.new_tail
    ):
        return _CHANGED
    manifest = layout.entries[-2]
    envelopes = _envelopes(journal, layout, limits)
    if envelopes is None:
        return _NOT_WRITTEN
    manifest_bytes = pread(fd, manifest.size, manifest.data_offset)
    return _unfit_signatures(journal, manifest_bytes, *envelopes)


_CHANGED = "the bundle has changed since, so it no longer applies"
_NOT_WRITTEN = f"its new tail is not one aoe-pack writes; {_LEFT}"


def _layout_before(fd: int, journal: TailJournal, limits: Limits) -> BundleLayout | str:
    """The layout of the file before the rewrite, as the strict reader finds it; or why
    the journal does not fit the file.

    Every offset and length is bounded by the file's size before anything is read.
    """
    size = os.fstat(fd).st_size
    anchor, tail, old = journal.anchor_offset, journal.tail_offset, journal.old_tail
    ends = (tail + len(old), journal.new_size)
    if not 0 < anchor < tail <= size:
        return _not_here(anchor, tail)
    if not min(ends) <= size <= max(ends):
        return _CHANGED
    # The bytes before ``tail`` are never rewritten: with the old tail after them, the
    # file as it was before the rewrite, which the strict reader must take.
    try:
        layout = read_layout(
            _spliced(fd, tail, old), file_size=tail + len(old), max_entries=limits.max_entries
        )
    except AoePackError:
        return _CHANGED
    last = [(e.name, e.header_offset) for e in layout.entries[-2:]]
    if last != [(MANIFEST_ENTRY, anchor), (SIGNATURES_ENTRY, tail)]:
        return _not_here(anchor, tail)
    manifest, envelope = layout.entries[-2:]
    if manifest.size > limits.max_manifest_bytes or envelope.size > limits.max_signatures_bytes:
        return _CHANGED  # the signing that wrote it would have refused this bundle
    return layout


def _not_here(anchor: int, tail: int) -> str:
    return (
        f"it names offsets ({anchor} and {tail}) that are not those of this bundle's "
        f"manifest and signatures; {_LEFT}"
    )


def _envelopes(
    journal: TailJournal, layout: BundleLayout, limits: Limits
) -> tuple[list[Signature], list[Signature]] | None:
    """The signatures of the old and the new tail, if the new one is byte for byte what
    the writer makes of its envelope in this layout; None if not."""
    envelope = layout.entries[-1]
    start = envelope.data_offset - journal.tail_offset
    old_data = journal.old_tail[start : start + envelope.size]
    new_size = LOCAL.unpack_from(journal.new_tail)[8] if len(journal.new_tail) >= start else -1
    if not 0 <= new_size <= limits.max_signatures_bytes:
        return None
    new_data = journal.new_tail[start : start + new_size]
    entries = [layout.mimetype, *layout.entries]
    try:
        rebuilt = replace_last_data(entries, date_time=layout.date_time, data=new_data)
        old_sigs = signatures.parse_envelope(old_data, limits)
        new_sigs = signatures.parse_envelope(new_data, limits)
    except AoePackError:
        return None
    if rebuilt != (journal.tail_offset, journal.new_tail):
        return None
    return old_sigs, new_sigs


def _unfit_signatures(
    journal: TailJournal, manifest_bytes: bytes, old: list[Signature], new: list[Signature]
) -> str | None:
    """Why ``new`` is not ``old`` and valid signatures by the journal's keys; None if it is."""
    if lost := [s for s in old if s not in new]:
        return f"its new signatures leave out {lost[0].keyid[:16]}…'s; {_LEFT}"
    added = [s for s in new if s not in old]
    by_id = {k.key_id: k for k in journal.signers}
    named = len(by_id) == len(journal.signers) and sorted(by_id) == [s.keyid for s in added]
    if not added or not named:
        return f"its new signatures are not those of the keys it names; {_LEFT}"
    valid = dsse.valid_keyids(PAYLOAD_TYPE, manifest_bytes, added, by_id)
    if bad := [s for s in added if s.keyid not in valid]:
        return (
            f"its signature by {bad[0].keyid[:16]}… does not verify over the bundle's "
            f"manifest; {_LEFT}"
        )
    return None


def _spliced(fd: int, at: int, tail: bytes) -> io.BufferedReader:
    """A read-only file: the bytes of ``fd`` before ``at``, then ``tail``."""
    return io.BufferedReader(_Spliced(fd, at, tail))


class _Spliced(io.RawIOBase):
    def __init__(self, fd: int, at: int, tail: bytes) -> None:
        self._fd, self._at, self._tail, self._pos = fd, at, tail, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._at + len(self._tail)}
        self._pos = base[whence] + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        pos, want = self._pos, len(view)
        if pos < self._at:
            data = pread(self._fd, min(want, self._at - pos), pos)
        else:
            data = self._tail[pos - self._at : pos - self._at + want]
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)


def _mix_of(current: bytes, old: bytes, new: bytes) -> bool:
    """Whether each byte of ``current`` is the old or the new byte at its place.

    A write cut short leaves a prefix of the new tail over the old one; after a
    power cut, disk blocks may have reached the disk in any order.
    """
    for at in range(0, len(current), _BLOCK):
        block = current[at : at + _BLOCK]
        if block in (new[at : at + len(block)], old[at : at + len(block)]):
            continue
        for i, byte in enumerate(block, at):
            if not ((i < len(new) and byte == new[i]) or (i < len(old) and byte == old[i])):
                return False
    return True
