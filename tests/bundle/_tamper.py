"""Break bundles on purpose, the way two kinds of attacker would.

* An **outsider** holds a signed bundle and changes its bytes: :func:`flip`,
  truncation, :func:`rename_entry` and the other header patches. Every such
  change must be caught by the container checks, the signatures or the signed
  digests.
* An **insider** (a compromised or malicious signer) can sign anything. With
  :func:`resign` they produce a bundle that is internally consistent (sizes,
  crc32s and chunk digests recomputed, canonical manifest, valid signature) but
  malicious, e.g. with reordered ciphertext segments. Only the AEAD stream
  (nonce counter, last flag, entry name as associated data) and the wrapped-key
  binding can catch those, so tests of it decrypt.

Header patches keep every other byte canonical (names of equal length, the
same value in the local header and the central directory record) so that the
check a test targets is the one that fires.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import struct
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aoe_pack._crypto.asymmetric import PrivateKey
from aoe_pack._jcs import canonical_json
from aoe_pack.bundle import signatures
from aoe_pack.bundle.container import (
    MEDIA_TYPE_V1,
    MIMETYPE_NAME,
    AlignedZipWriter,
    DateTime,
    dos_datetime,
    read_layout,
)
from aoe_pack.bundle.format import (
    CHUNK_SIZE,
    DEFAULT_SOURCE_DATE_EPOCH,
    MANIFEST_ENTRY,
    PAYLOAD_PREFIX,
    SIGNATURES_ENTRY,
)
from aoe_pack.keys.load import DecryptionKey

# Field offsets inside a local header / a central directory record / the end record.
LOCAL_FIXED, CENTRAL_FIXED, EOCD_SIZE = 30, 46, 22
L_VERSION, L_FLAGS, L_METHOD, L_TIME, L_CRC, L_SIZE = 4, 6, 8, 10, 14, 18
C_MADE_BY, C_FLAGS, C_METHOD, C_CRC, C_NAME_LENGTH, C_EXTERNAL, C_OFFSET = 4, 8, 10, 16, 28, 38, 42
E_DISK, E_ON_DISK, E_COUNT, E_CD_SIZE, E_CD_OFFSET, E_COMMENT = 4, 8, 10, 12, 16, 20

DEFAULT_DATE_TIME = dos_datetime(DEFAULT_SOURCE_DATE_EPOCH)


# --- keys -----------------------------------------------------------------------------


def decryption_key(key: PrivateKey | bytes) -> DecryptionKey:
    """A recipient private key or a 32-byte KEK, as ``--decryption-key`` loads it."""
    if isinstance(key, bytes):
        return DecryptionKey(origin="test kek", kek=key)
    return DecryptionKey(origin=f"test {key.kind.value} key", private=key)


# --- bytes and regions ----------------------------------------------------------------


def flip(data: bytes, offset: int, mask: int = 0x01) -> bytes:
    """``data`` with the byte at ``offset`` xor-ed with ``mask``."""
    buf = bytearray(data)
    buf[offset] ^= mask
    return bytes(buf)


def flip_file(path: Path, offset: int, mask: int = 0x01) -> None:
    path.write_bytes(flip(path.read_bytes(), offset, mask))


@dataclass(frozen=True)
class Span:
    """Bytes ``start`` (inclusive) to ``end`` (exclusive) of the file."""

    start: int
    end: int

    def __len__(self) -> int:
        return self.end - self.start

    @property
    def middle(self) -> int:
        return (self.start + self.end) // 2


@dataclass(frozen=True)
class EntryRegions:
    name: str
    local_header: Span
    """Fixed header, name and extra field."""
    data: Span
    central_record: Span


@dataclass(frozen=True)
class Regions:
    """Where everything is in a bundle; ``entries`` includes ``mimetype``, in file order."""

    entries: dict[str, EntryRegions]
    central_directory: Span
    eocd: Span
    size: int

    def __getitem__(self, name: str) -> EntryRegions:
        return self.entries[name]

    def describe(self, offset: int) -> str:
        """Name the region holding byte ``offset``, e.g. ``'aoe/manifest.json' data +12``."""
        for e in self.entries.values():
            for what, span in (("local header", e.local_header), ("data", e.data)):
                if span.start <= offset < span.end:
                    return f"{offset} ({e.name!r} {what} +{offset - span.start})"
            if e.central_record.start <= offset < e.central_record.end:
                return f"{offset} ({e.name!r} central record +{offset - e.central_record.start})"
        return f"{offset} (end record +{offset - self.eocd.start})"


def locate(data: bytes) -> Regions:
    """Find every region of a well-formed bundle (the real strict reader parses it)."""
    layout = read_layout(io.BytesIO(data), file_size=len(data))
    media_size = int.from_bytes(data[L_SIZE : L_SIZE + 4], "little")
    data_at = LOCAL_FIXED + len(MIMETYPE_NAME)
    spans = [(MIMETYPE_NAME, Span(0, data_at), Span(data_at, data_at + media_size))]
    spans += [
        (e.name, Span(e.header_offset, e.data_offset), Span(e.data_offset, e.data_offset + e.size))
        for e in layout.entries
    ]
    eocd_at = len(data) - EOCD_SIZE
    cd_at = int.from_bytes(data[eocd_at + E_CD_OFFSET : eocd_at + E_CD_OFFSET + 4], "little")
    records, pos = {}, cd_at
    for _ in spans:
        (name_length,) = struct.unpack_from("<H", data, pos + C_NAME_LENGTH)
        end = pos + CENTRAL_FIXED + name_length
        records[data[pos + CENTRAL_FIXED : end].decode()] = Span(pos, end)
        pos = end
    entries = {name: EntryRegions(name, local, body, records[name]) for name, local, body in spans}
    return Regions(entries, Span(cd_at, eocd_at), Span(eocd_at, len(data)), len(data))


# --- consistent header patches --------------------------------------------------------


def _put(buf: bytearray, offset: int, fmt: str, value: int) -> None:
    struct.pack_into(fmt, buf, offset, value)


def rename_entry(data: bytes, old: str, new: str) -> bytes:
    """Rename an entry in its local header and central directory record alike.

    The encoded names must have the same length, so the alignment padding,
    offsets and sizes all stay valid.
    """
    raw_old, raw_new = old.encode(), new.encode()
    assert len(raw_old) == len(raw_new), "renames must keep the encoded length"
    where = locate(data)[old]
    buf = bytearray(data)
    for at in (where.local_header.start + LOCAL_FIXED, where.central_record.start + CENTRAL_FIXED):
        assert buf[at : at + len(raw_old)] == raw_old
        buf[at : at + len(raw_new)] = raw_new
    return bytes(buf)


def set_u16_both(data: bytes, name: str, local_field: int, central_field: int, value: int) -> bytes:
    """Set a 16-bit field to ``value`` in both headers of entry ``name``."""
    where = locate(data)[name]
    buf = bytearray(data)
    _put(buf, where.local_header.start + local_field, "<H", value)
    _put(buf, where.central_record.start + central_field, "<H", value)
    return bytes(buf)


def set_method(data: bytes, name: str, method: int) -> bytes:
    """Claim compression ``method`` for an entry (both headers)."""
    return set_u16_both(data, name, L_METHOD, C_METHOD, method)


def set_external_attributes(data: bytes, name: str, attrs: int) -> bytes:
    """Set the external attributes (Unix mode << 16); only the central record has them."""
    buf = bytearray(data)
    _put(buf, locate(data)[name].central_record.start + C_EXTERNAL, "<I", attrs)
    return bytes(buf)


# --- the insider: rebuild and re-sign -------------------------------------------------


@dataclass(frozen=True)
class Parts:
    """The entries of a bundle, taken apart."""

    payloads: dict[str, bytes]
    """Stored bytes of each ``payload/...`` entry, by entry name, in file order."""
    manifest_bytes: bytes
    signatures_bytes: bytes
    date_time: DateTime

    def manifest(self) -> dict[str, Any]:
        """A fresh, freely editable copy of the manifest."""
        doc: dict[str, Any] = json.loads(self.manifest_bytes)
        return doc

    def file(self, manifest: dict[str, Any], path: str) -> dict[str, Any]:
        """The manifest's ``files[]`` item for ``path``."""
        found: dict[str, Any] = next(f for f in manifest["files"] if f["path"] == path)
        return found

    def payload(self, path: str) -> bytes:
        return self.payloads[PAYLOAD_PREFIX + path]


def take_apart(bundle: Path | bytes) -> Parts:
    data = bundle if isinstance(bundle, bytes) else bundle.read_bytes()
    layout = read_layout(io.BytesIO(data), file_size=len(data))
    body = {e.name: data[e.data_offset : e.data_offset + e.size] for e in layout.entries}
    return Parts(
        payloads={k: v for k, v in body.items() if k.startswith(PAYLOAD_PREFIX)},
        manifest_bytes=body[MANIFEST_ENTRY],
        signatures_bytes=body[SIGNATURES_ENTRY],
        date_time=layout.date_time,
    )


def assemble(
    entries: Iterable[tuple[str, bytes]],
    *,
    date_time: DateTime = DEFAULT_DATE_TIME,
    media_type: bytes = MEDIA_TYPE_V1,
) -> bytes:
    """A canonical container holding ``entries`` in this order, written by the real writer."""
    out = io.BytesIO()
    writer = AlignedZipWriter(out, media_type=media_type, date_time=date_time)
    for name, body in entries:
        writer.add_bytes(name, body)
    writer.close()
    return out.getvalue()


def segments(stored: bytes, size: int = CHUNK_SIZE) -> list[bytes]:
    """Cut stored (ciphertext) bytes into its segments / integrity chunks."""
    return [stored[i : i + size] for i in range(0, max(len(stored), 1), size)]


def restamp(file_item: dict[str, Any], stored: bytes) -> None:
    """Make a manifest ``files[]`` item describe ``stored``: size, crc32, chunk digests."""
    chunk = file_item["stored"]["chunkSize"]
    file_item["stored"].update(
        size=len(stored),
        crc32=zlib.crc32(stored),
        chunks=[hashlib.sha256(c).hexdigest() for c in segments(stored, chunk)],
    )


def sign(manifest_bytes: bytes, signing_keys: Sequence[PrivateKey]) -> bytes:
    """Valid ``aoe/signatures.json`` bytes for these manifest bytes."""
    return signatures.sign_manifest(manifest_bytes, list(signing_keys))


def resign(
    manifest: Mapping[str, Any] | bytes,
    payloads: Mapping[str, bytes],
    signing_keys: Sequence[PrivateKey],
    *,
    restamp_files: bool = True,
    signatures: bytes | None = None,
    date_time: DateTime = DEFAULT_DATE_TIME,
) -> bytes:
    """The bundle an insider would make: these payloads, this manifest, signed by them.

    ``manifest`` is a dict (serialised canonically, and by default with each
    listed file's stored size/crc32/chunks recomputed from ``payloads``) or
    exact bytes (signed as they are, canonical or not). ``payloads`` maps entry
    names to stored bytes and is written in its order. ``signatures`` replaces
    the envelope (e.g. one lifted from another bundle).
    """
    if isinstance(manifest, bytes):
        manifest_bytes = manifest
    else:
        doc = copy.deepcopy(dict(manifest))
        if restamp_files:
            for item in doc["files"]:
                entry = PAYLOAD_PREFIX + item["path"]
                if entry in payloads:
                    restamp(item, payloads[entry])
        manifest_bytes = canonical_json(doc)
    envelope = signatures if signatures is not None else sign(manifest_bytes, signing_keys)
    entries = [*payloads.items(), (MANIFEST_ENTRY, manifest_bytes), (SIGNATURES_ENTRY, envelope)]
    return assemble(entries, date_time=date_time)


def damage_base64(text: str, index: int = 0) -> str:
    """``text`` (base64) with the decoded byte at ``index`` flipped, re-encoded."""
    raw = bytearray(base64.b64decode(text))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()
