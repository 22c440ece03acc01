"""The journal that makes rewriting the tail of a bundle in place safe from crashes.

Co-signing (:mod:`.cosign`) changes only a bundle's tail: the local header and
data of ``aoe/signatures.json``, the central directory and the end record, a
few kilobytes at the end of a file of up to 4 GiB. A write in place is not
atomic, so the new tail first goes, whole and fsynced, into a journal beside
the bundle, ``.NAME.cosign``, with the old tail it replaces; only then is the
bundle written, cut to its new size and fsynced, and the journal removed.

A journal on disk is a commitment: every check passed and the signatures were
made. Whoever next holds the bundle's lock (the next ``aoe-pack sign``) finds
it and :func:`recover` replays it, which may be done any number of times:

- a journal cut short (its own SHA-256 does not match: the crash came while
  it was written) was never acted on: it is removed, the bundle untouched;
- a journal that no longer fits the file (the bytes before the tail differ,
  or the tail is neither the old one, the new one, nor the old one partly
  overwritten by the new) belongs to a bundle that is no longer there, one
  rebuilt or changed since: it is removed, the bundle untouched;
- otherwise the new tail is written again, the file cut after it and
  fsynced, and the journal removed.

Until then, a bundle caught halfway fails every verifier's container check
(docs/format.md §8 step 2): it never passes for another bundle.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass

from aoe_pack._io import Folder
from aoe_pack._io.pread import pread, pwrite
from aoe_pack.errors import OutputError

_MAGIC = b"aoe-pack tail journal v1\n"
_HEAD = struct.Struct("<QQQQ32sH")
"""Anchor offset, tail offset, old tail length, new tail length, anchor SHA-256,
number of key ids added; then the key ids (32 bytes each), the old tail, the new
tail, and the SHA-256 of everything before it."""
_DIGEST = 32
MAX_JOURNAL_BYTES = 64 << 20
"""More than two tails can hold: a 1 MiB envelope and 10 001 central records of 1070 bytes."""
_BLOCK = 4096


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
    added: tuple[str, ...]
    """Ids of the keys whose signatures the new tail adds."""

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
            len(self.added),
        )
        ids = b"".join(bytes.fromhex(k) for k in self.added)
        body = _MAGIC + head + ids + self.old_tail + self.new_tail
        return body + hashlib.sha256(body).digest()

    @classmethod
    def decode(cls, data: bytes) -> TailJournal | None:
        """The journal in ``data``; None if it is not one whole (a write cut short)."""
        body, digest = data[:-_DIGEST], data[-_DIGEST:]
        fixed = len(_MAGIC) + _HEAD.size
        if len(data) < fixed + _DIGEST or not body.startswith(_MAGIC):
            return None
        if hashlib.sha256(body).digest() != digest:
            return None
        anchor, tail, old_length, new_length, anchor_sha256, count = _HEAD.unpack_from(
            body, len(_MAGIC)
        )
        if len(body) != fixed + _DIGEST * count + old_length + new_length:
            return None
        at = fixed + _DIGEST * count
        ids = body[fixed:at]
        return cls(
            anchor_offset=anchor,
            tail_offset=tail,
            anchor_sha256=anchor_sha256,
            old_tail=body[at : at + old_length],
            new_tail=body[at + old_length :],
            added=tuple(ids[i : i + _DIGEST].hex() for i in range(0, len(ids), _DIGEST)),
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


def recover(folder: Folder, bundle_name: str, fd: int) -> Recovered | None:
    """Finish or discard the journal of an interrupted rewrite of the bundle open as ``fd``.

    The caller holds the bundle's lock. None when there is no journal.
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
    journal = TailJournal.decode(data) if len(data) <= MAX_JOURNAL_BYTES else None
    if journal is None or not _fits(fd, journal):
        folder.remove(name)
        folder.fsync()
        if journal is None:
            why = "it was cut short, before the bundle was changed"
            return Recovered(replayed=False, added=(), why=why)
        why = "the bundle has changed since, so it no longer applies"
        return Recovered(replayed=False, added=journal.added, why=why)
    apply(fd, journal, where=str(folder.path / bundle_name))
    finish(folder, bundle_name)
    return Recovered(replayed=True, added=journal.added, why="")


def _fits(fd: int, journal: TailJournal) -> bool:
    """Whether the file is the journal's bundle before, during or after the rewrite."""
    anchor_length = journal.tail_offset - journal.anchor_offset
    anchor = pread(fd, anchor_length, journal.anchor_offset)
    if len(anchor) != anchor_length or hashlib.sha256(anchor).digest() != journal.anchor_sha256:
        return False
    size = os.fstat(fd).st_size
    ends = (journal.tail_offset + len(journal.old_tail), journal.new_size)
    if not min(ends) <= size <= max(ends):
        return False
    current = pread(fd, size - journal.tail_offset, journal.tail_offset)
    return _mix_of(current, journal.old_tail, journal.new_tail)


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
