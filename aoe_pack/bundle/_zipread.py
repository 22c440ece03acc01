"""Strict reader of the canonical v1 container: headers only, never entry data.

Every header byte is either compared with a constant, with the matching byte
of the other copy (central directory vs local header), or re-derived from the
layout (offsets, padding, sizes). Together with a signed crc32 and hash per
entry this makes any changed byte in the file detectable.
"""

from __future__ import annotations

import re
import stat
import struct
import zlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import BinaryIO, NoReturn

from aoe_pack._quote import quote_bytes
from aoe_pack.bundle._zipwrite import (
    CENTRAL,
    CENTRAL_SIG,
    EOCD,
    EOCD_SIG,
    EXTERNAL_ATTRS,
    EXTRA_HEAD,
    FILE_MODE,
    FLAGS_UTF8,
    HEAD_BYTES,
    LOCAL,
    LOCAL_SIG,
    MAX_MEDIA_TYPE_BYTES,
    MAX_NAME_BYTES,
    MEDIA_TYPE_PREFIX,
    MEDIA_TYPE_V1,
    MIMETYPE_DATA_OFFSET,
    MIMETYPE_NAME,
    U16_SENTINEL,
    U32_SENTINEL,
    DateTime,
    EntryNames,
    ZipEntry,
    alignment_extra,
    alignment_padding,
    central_record,
    dos_datetime_problem,
    local_header,
)
from aoe_pack.errors import (
    LegacyFormatError,
    LimitExceededError,
    NotABundleError,
    UnsafeEntryError,
    UnsupportedVersionError,
    ZipStructureError,
)

_LOCAL_MAGIC = LOCAL_SIG.to_bytes(4, "little")
_EOCD_MAGIC = EOCD_SIG.to_bytes(4, "little")
_MIMETYPE_HEADER = (len(MIMETYPE_NAME).to_bytes(2, "little"), MIMETYPE_NAME.encode())
_LEGACY_MIN_SIZE = 21  # atenc v1: version byte, u32 size, 16 "MD5" bytes, ciphertext
_VERSIONED = re.compile(rb"application/vnd\.aoe\.bundle\.v([0-9]+)\+zip")
_MAX_COMMENT = 0xFFFF


class FileKind(StrEnum):
    """What the first bytes of a file say it is (see :func:`sniff`)."""

    AOE_V1 = "aoe-v1"
    AOE_UNKNOWN_VERSION = "aoe-unknown-version"
    LEGACY_ATENC = "legacy-atenc"
    ZIP = "zip"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class BundleLayout:
    """The verified container structure of a v1 bundle."""

    media_type: bytes
    entries: tuple[ZipEntry, ...]
    """Every entry but ``mimetype``, in file order."""
    date_time: DateTime
    """``(dos_time, dos_date)`` shared by every entry."""
    file_size: int

    @property
    def mimetype(self) -> ZipEntry:
        """The first entry, which ``entries`` leaves out."""
        size, crc = len(self.media_type), zlib.crc32(self.media_type)
        return ZipEntry(MIMETYPE_NAME, 0, MIMETYPE_DATA_OFFSET, size, crc)


def sniff(head: bytes) -> FileKind:
    """Classify a file from its first bytes (``HEAD_BYTES`` = 128 are enough)."""
    if head.startswith(_LOCAL_MAGIC):
        if (head[26:28], head[30:38]) == _MIMETYPE_HEADER and head[38:].startswith(
            MEDIA_TYPE_PREFIX
        ):
            size = int.from_bytes(head[18:22], "little")
            media_type = head[MIMETYPE_DATA_OFFSET : MIMETYPE_DATA_OFFSET + size]
            return FileKind.AOE_V1 if media_type == MEDIA_TYPE_V1 else FileKind.AOE_UNKNOWN_VERSION
        return FileKind.ZIP
    if head.startswith(_EOCD_MAGIC):  # an empty ZIP archive
        return FileKind.ZIP
    if len(head) >= _LEGACY_MIN_SIZE and head[0] == 0x01:
        return FileKind.LEGACY_ATENC
    return FileKind.UNKNOWN


def read_layout(
    fp: BinaryIO,
    *,
    file_size: int,
    max_entries: int = 10_000,
    media_types: Collection[bytes] = (MEDIA_TYPE_V1,),
) -> BundleLayout:
    """Parse and verify the container structure of a bundle of ``file_size`` bytes.

    ``max_entries`` counts entries besides ``mimetype``. Raises a
    :class:`~aoe_pack.errors.BundleFormatError` subclass naming the first
    deviation from the canonical layout.
    """
    if file_size < 0:
        raise ValueError(f"file_size must be >= 0, got {file_size}")
    head = _read_at(fp, 0, min(file_size, HEAD_BYTES), "the file header")
    media_type = _check_magic(head, file_size, media_types)
    count, cd_size, cd_offset = _read_end(fp, file_size, max_entries)
    directory = _read_at(fp, cd_offset, cd_size, "the central directory")
    entries, date_time = _walk(fp, directory, cd_offset, count)
    return BundleLayout(media_type, tuple(entries[1:]), date_time, file_size)


# --- magic ----------------------------------------------------------------------


def _check_magic(head: bytes, file_size: int, media_types: Collection[bytes]) -> bytes:
    """Return the media type, or say what the file is instead."""
    if file_size == 0:
        raise NotABundleError("empty file (0 bytes); not an .aoe bundle")
    if not head.startswith(_LOCAL_MAGIC):
        _not_a_zip_bundle(head, file_size)
    if (head[26:28], head[30:38]) != _MIMETYPE_HEADER:
        if file_size < MIMETYPE_DATA_OFFSET:
            raise ZipStructureError(
                f"file is truncated: {file_size} bytes cannot hold the 'mimetype' header"
            )
        raise NotABundleError(
            f"not an .aoe bundle: this is a plain ZIP archive (its first entry is "
            f"{quote_bytes(head[30:38])}..., not 'mimetype' at byte 30)"
        )
    found = head[MIMETYPE_DATA_OFFSET:]
    if not found.startswith(MEDIA_TYPE_PREFIX):
        if MEDIA_TYPE_PREFIX.startswith(found) and len(head) == file_size:
            raise ZipStructureError(f"file is truncated in the media type ({file_size} bytes)")
        raise NotABundleError(
            f"not an .aoe bundle: a plain ZIP archive whose 'mimetype' starts with "
            f"{quote_bytes(found)}, not {quote_bytes(MEDIA_TYPE_PREFIX)}"
        )
    extra_length = int.from_bytes(head[28:30], "little")
    if extra_length:
        raise ZipStructureError(
            f"the 'mimetype' local header has an extra field ({extra_length} bytes, field at "
            "offset 28); it must have none so the media type starts at byte 38"
        )
    size = int.from_bytes(head[18:22], "little")
    if size > MAX_MEDIA_TYPE_BYTES:
        raise ZipStructureError(
            f"the 'mimetype' entry is {size} bytes (compressed size at offset 18); a media "
            f"type is at most {MAX_MEDIA_TYPE_BYTES} bytes"
        )
    if MIMETYPE_DATA_OFFSET + size > file_size:
        raise ZipStructureError(f"file is truncated in the media type ({file_size} bytes)")
    media_type = head[MIMETYPE_DATA_OFFSET : MIMETYPE_DATA_OFFSET + size]
    # A corrupted media type or size must not pass for a newer format version.
    if (crc := int.from_bytes(head[14:18], "little")) != zlib.crc32(media_type):
        raise ZipStructureError(
            f"the 'mimetype' local header's crc32 (offset 14) is 0x{crc:08x}, but its media "
            f"type {quote_bytes(media_type)} has crc32 0x{zlib.crc32(media_type):08x}; "
            "the file is corrupt"
        )
    if media_type not in media_types:
        wanted = ", ".join(m.decode() for m in media_types)
        version = _VERSIONED.fullmatch(media_type)
        what = f"format v{version.group(1).decode()}" if version else "an unrecognised format"
        raise UnsupportedVersionError(
            f"the bundle is {what} (media type {quote_bytes(media_type)}); "
            f"this aoe-pack reads {wanted}",
            hint="upgrade aoe-pack to read newer bundles",
        )
    return media_type


def _not_a_zip_bundle(head: bytes, file_size: int) -> NoReturn:
    """Say what a file that does not start with a ZIP local header is."""
    if head[0] == 0x01 and file_size >= _LEGACY_MIN_SIZE:
        raise LegacyFormatError(
            "not an .aoe bundle: this looks like a legacy AoE atenc v1 encrypted model "
            "(first byte 0x01); rebuild it from the original model with `aoe-pack build`",
            hint="aoe-pack build packs, signs and encrypts the plain model into a bundle",
        )
    if head.startswith(_EOCD_MAGIC):
        raise NotABundleError("not an .aoe bundle: this is an empty plain ZIP archive")
    raise NotABundleError(
        f"not an .aoe bundle: the file starts with {head[:8].hex(' ')}, expected the ZIP "
        "signature 50 4b 03 04 and a 'mimetype' entry"
    )


# --- end of central directory ----------------------------------------------------


def _read_end(fp: BinaryIO, file_size: int, max_entries: int) -> tuple[int, int, int]:
    """Return (entry count, cd size, cd offset) from the last 22 bytes."""
    at = file_size - EOCD.size
    if at < 0:
        raise ZipStructureError(f"file is truncated: {file_size} bytes cannot hold a ZIP archive")
    sig, disk, cd_disk, on_disk, count, cd_size, cd_offset, comment = EOCD.unpack(
        _read_at(fp, at, EOCD.size, "the end of central directory record")
    )
    if sig != EOCD_SIG:
        _diagnose_missing_end(fp, file_size, sig)
    where = f"end of central directory at offset {at}"
    if comment:
        raise ZipStructureError(
            f"{where} declares a {comment}-byte ZIP comment past the end of the file; "
            "bundles have no comment"
        )
    if disk or cd_disk:
        raise ZipStructureError(
            f"{where}: disk numbers {disk} and {cd_disk}, expected 0 and 0 (no multi-disk archives)"
        )
    if on_disk != count:
        raise ZipStructureError(
            f"{where}: {on_disk} entries on this disk but {count} in total; they must be equal"
        )
    if U16_SENTINEL in (count,) or U32_SENTINEL in (cd_size, cd_offset):
        raise LimitExceededError(
            f"{where} has ZIP64 markers (count {count}, cd size {cd_size}, cd offset "
            f"{cd_offset}); ZIP64 is not supported in format v1"
        )
    if count == 0:
        raise ZipStructureError(f"{where} lists no entries; 'mimetype' must be the first")
    if count - 1 > max_entries:
        raise LimitExceededError(
            f"the bundle has {count - 1} entries besides 'mimetype'; the limit is {max_entries}"
        )
    if cd_offset + cd_size != at:
        raise ZipStructureError(
            f"the central directory (offset {cd_offset}, {cd_size} bytes) ends at "
            f"{cd_offset + cd_size}, but the end of central directory record starts at {at}"
        )
    if not CENTRAL.size * count <= cd_size <= (CENTRAL.size + MAX_NAME_BYTES) * count:
        raise ZipStructureError(
            f"{where}: a central directory of {cd_size} bytes cannot hold {count} canonical records"
        )
    return count, cd_size, cd_offset


def _diagnose_missing_end(fp: BinaryIO, file_size: int, found: int) -> None:
    """Explain why the last 22 bytes are not an end record, then raise."""
    window = min(file_size, EOCD.size + _MAX_COMMENT)
    tail = _read_at(fp, file_size - window, window, "the end of the file")
    at = tail.rfind(_EOCD_MAGIC, 0, window)
    while at >= 0:
        if at + EOCD.size > window:  # too close to the end to be a whole record
            at = tail.rfind(_EOCD_MAGIC, 0, at)
            continue
        *_, cd_size, cd_offset, comment = EOCD.unpack_from(tail, at)
        offset = file_size - window + at
        if cd_offset + cd_size == offset:  # a real end record, not a chance match
            extra = file_size - offset - EOCD.size
            if comment == extra:
                raise ZipStructureError(
                    f"the archive has a {comment}-byte ZIP comment after the end of central "
                    f"directory at offset {offset}; bundles have no comment and end exactly "
                    "with the 22-byte record"
                )
            raise ZipStructureError(
                f"{extra} bytes of trailing data after the end of central directory record "
                f"at offset {offset}; a bundle ends exactly with that record"
            )
        at = tail.rfind(_EOCD_MAGIC, 0, at)
    raise ZipStructureError(
        f"no end of central directory record at the end of the file: expected signature "
        f"0x{EOCD_SIG:08x} at offset {file_size - EOCD.size}, found 0x{found:08x}; the file "
        "is truncated or has trailing data"
    )


# --- entries ---------------------------------------------------------------------


def _walk(
    fp: BinaryIO, directory: bytes, cd_offset: int, count: int
) -> tuple[list[ZipEntry], DateTime]:
    """Check every central directory record and the local header it points to."""
    entries: list[ZipEntry] = []
    names = EntryNames()
    date_time: DateTime = (0, 0)
    pos = 0
    next_offset = 0  # where the next local header must start
    for index in range(count):
        at = cd_offset + pos
        fields, raw_name, length = _split_record(directory, pos, at, index)
        _, _, _, flags, method, time, date, crc, packed, size = fields[:10]
        attrs, header_offset = fields[-2:]
        name = _decode_name(raw_name, at + CENTRAL.size)
        if index == 0:
            date_time = _check_mimetype_record(name, (time, date), at)
        names.check(name)
        names.add(name)
        where = f"central directory record at offset {at}"
        _check_attrs(name, attrs, where)
        _check_method_flags(name, method, flags, where)
        if U32_SENTINEL in (size, packed, header_offset):
            raise LimitExceededError(
                f"entry {name!r} ({where}) has a ZIP64 marker in its sizes or offset; ZIP64 "
                "is not supported in format v1"
            )
        _check_contiguous(name, header_offset, next_offset, entries)
        padding = alignment_padding(header_offset, len(raw_name))
        extra = b"" if index == 0 else alignment_extra(padding)
        data_offset = header_offset + LOCAL.size + len(raw_name) + len(extra)
        if data_offset + size > cd_offset:
            raise ZipStructureError(
                f"entry {name!r} (data at offset {data_offset}, {size} bytes) runs past the "
                f"start of the central directory at offset {cd_offset}"
            )
        expected = central_record(
            raw_name, crc=crc, size=size, date_time=date_time, header_offset=header_offset
        )
        fixed = directory[pos : pos + CENTRAL.size]
        if mismatch := _first_mismatch(_CENTRAL_FIELDS, expected, fixed, at, _CENTRAL_NOTES):
            raise ZipStructureError(f"entry {name!r}: central directory {mismatch}")
        expected = local_header(raw_name, crc=crc, size=size, date_time=date_time, extra=extra)
        found = _read_at(fp, header_offset, len(expected), f"the local header of {name!r}")
        _check_local(name, expected, found, header_offset, at)
        entries.append(ZipEntry(name, header_offset, data_offset, size, crc))
        next_offset = data_offset + size
        pos += length
    if pos != len(directory):
        raise ZipStructureError(
            f"{len(directory) - pos} unexpected bytes after the last central directory record, "
            f"at offset {cd_offset + pos}"
        )
    if next_offset != cd_offset:
        raise ZipStructureError(
            f"gap of {cd_offset - next_offset} bytes between the data of {entries[-1].name!r} "
            f"(ends at offset {next_offset}) and the central directory at offset {cd_offset}"
        )
    return entries, date_time


def _split_record(
    directory: bytes, pos: int, at: int, index: int
) -> tuple[tuple[int, ...], bytes, int]:
    """Return the fixed fields, raw name and total length of one central directory record."""
    end = at - pos + len(directory)
    if pos + CENTRAL.size > len(directory):
        raise ZipStructureError(
            f"central directory record {index} at offset {at} runs past the end of the "
            f"central directory at offset {end}"
        )
    fields: tuple[int, ...] = CENTRAL.unpack_from(directory, pos)
    if fields[0] != CENTRAL_SIG:
        raise ZipStructureError(
            f"central directory record {index} at offset {at}: signature "
            f"0x{fields[0]:08x}, expected 0x{CENTRAL_SIG:08x}"
        )
    name_length, extra_length, comment_length = fields[10:13]
    length = CENTRAL.size + name_length + extra_length + comment_length
    if pos + length > len(directory):
        raise ZipStructureError(
            f"central directory record {index} at offset {at} ({length} bytes) runs past "
            f"the end of the central directory at offset {end}"
        )
    return fields, directory[pos + CENTRAL.size : pos + CENTRAL.size + name_length], length


def _check_mimetype_record(name: str, date_time: DateTime, at: int) -> DateTime:
    if name != MIMETYPE_NAME:
        raise ZipStructureError(
            f"the first central directory record (offset {at}) is {name!r}; it must be 'mimetype'"
        )
    if problem := dos_datetime_problem(date_time):
        raise ZipStructureError(f"entry 'mimetype' (central directory offset {at}): {problem}")
    return date_time


def _decode_name(raw: bytes, offset: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UnsafeEntryError(
            f"entry name {quote_bytes(raw)} at offset {offset} is not valid UTF-8 "
            f"({e.reason} at byte {e.start})"
        ) from e


def _check_attrs(name: str, attrs: int, where: str) -> None:
    mode = attrs >> 16
    kind = stat.S_IFMT(mode)
    if kind == stat.S_IFLNK:
        raise UnsafeEntryError(
            f"entry {name!r} is a symlink (Unix mode 0o{mode:06o} in the external attributes "
            f"of its {where}); bundles hold only regular files"
        )
    if kind == stat.S_IFDIR:
        raise UnsafeEntryError(
            f"entry {name!r} is a directory (Unix mode 0o{mode:06o}, {where}); bundles hold "
            "only regular files"
        )
    if kind != stat.S_IFREG:
        raise UnsafeEntryError(
            f"entry {name!r} is not a regular file (Unix mode 0o{mode:06o}, external attributes "
            f"0x{attrs:08x}, {where})"
        )
    if attrs != EXTERNAL_ATTRS:
        raise ZipStructureError(
            f"entry {name!r}: external attributes 0x{attrs:08x} (mode 0o{mode:06o}, {where}), "
            f"expected 0x{EXTERNAL_ATTRS:08x} (a regular file with mode 0o{FILE_MODE:06o})"
        )


def _check_method_flags(name: str, method: int, flags: int, where: str) -> None:
    if method != 0:
        raise ZipStructureError(
            f"compressed entry {name!r} (method {method}, {where}); bundles store entries "
            "uncompressed (method 0)"
        )
    if flags & 0x0001:
        raise ZipStructureError(
            f"entry {name!r} is encrypted (general purpose flag bit 0, flags 0x{flags:04x}, "
            f"{where}); bundles use no ZIP encryption"
        )
    if flags & 0x0008:
        raise ZipStructureError(
            f"entry {name!r} uses a data descriptor (general purpose flag bit 3, flags "
            f"0x{flags:04x}, {where}); sizes and crc32 must be in the headers"
        )
    if flags != FLAGS_UTF8:
        raise ZipStructureError(
            f"entry {name!r}: general purpose flags 0x{flags:04x} ({where}), expected "
            f"0x{FLAGS_UTF8:04x} (UTF-8 names and nothing else)"
        )


def _check_contiguous(name: str, offset: int, expected: int, entries: list[ZipEntry]) -> None:
    if offset == expected:
        return
    if not entries:
        raise ZipStructureError(
            f"the 'mimetype' local header is at offset {offset}; it must be at offset 0"
        )
    previous = entries[-1].name
    if offset > expected:
        raise ZipStructureError(
            f"gap of {offset - expected} bytes between the data of {previous!r} (ends at "
            f"offset {expected}) and the local header of {name!r} at offset {offset}; "
            "entries must be contiguous"
        )
    raise ZipStructureError(
        f"entry {name!r} overlaps the preceding entry {previous!r}: its local header is at "
        f"offset {offset} but {previous!r} ends at offset {expected}"
    )


def _check_local(name: str, expected: bytes, found: bytes, offset: int, central: int) -> None:
    """Compare a local header (with name and extra) to the canonical bytes."""
    where = f"local header at offset {offset}"
    sig, _, flags, method = LOCAL.unpack_from(found)[:4]
    if sig != LOCAL_SIG:
        raise ZipStructureError(
            f"entry {name!r}: no local header at offset {offset} (signature 0x{sig:08x}, "
            f"expected 0x{LOCAL_SIG:08x})"
        )
    _check_method_flags(name, method, flags, where)
    copied = f"as in the central directory record at offset {central}"
    notes = dict.fromkeys(_FROM_CENTRAL, copied)
    if mismatch := _first_mismatch(_LOCAL_FIELDS, expected, found, offset, notes):
        raise ZipStructureError(f"entry {name!r}: local header {mismatch}")
    name_end = LOCAL.size + len(name.encode())
    if found[LOCAL.size : name_end] != expected[LOCAL.size : name_end]:
        raise ZipStructureError(
            f"entry {name!r}: the {where} names it "
            f"{quote_bytes(found[LOCAL.size : name_end])}, but the central directory record "
            f"at offset {central} names it {name!r}"
        )
    if len(expected) == name_end:  # 'mimetype' has no extra field
        return
    extra_at = offset + name_end
    if mismatch := _first_mismatch(_EXTRA_FIELDS, expected[name_end:], found[name_end:], extra_at):
        raise ZipStructureError(f"entry {name!r}: alignment extra {mismatch}")
    padding = found[name_end + EXTRA_HEAD.size :]
    for i, byte in enumerate(padding):
        if byte:
            raise ZipStructureError(
                f"entry {name!r}: alignment padding byte at offset "
                f"{extra_at + EXTRA_HEAD.size + i} is 0x{byte:02x}, expected 0x00"
            )


# --- field-by-field comparison ---------------------------------------------------

_Fields = tuple[tuple[str, int, int], ...]  # (name, offset, size)


def _fields(layout: struct.Struct, *names: str) -> _Fields:
    sizes = [struct.calcsize("<" + code) for code in layout.format.lstrip("<")]
    offsets = [sum(sizes[:i]) for i in range(len(sizes))]
    return tuple(zip(names, offsets, sizes, strict=True))


_LOCAL_FIELDS = _fields(
    LOCAL, "signature", "version needed", "flags", "method", "modification time",
    "modification date", "crc32", "compressed size", "uncompressed size", "name length",
    "extra length",
)  # fmt: skip
_CENTRAL_FIELDS = _fields(
    CENTRAL, "signature", "version made by", "version needed", "flags", "method",
    "modification time", "modification date", "crc32", "compressed size", "uncompressed size",
    "name length", "extra length", "comment length", "disk number start",
    "internal attributes", "external attributes", "local header offset",
)  # fmt: skip
_EXTRA_FIELDS = _fields(EXTRA_HEAD, "header id", "data size", "alignment")


_CENTRAL_NOTES = {
    "modification time": "the 'mimetype' entry's",
    "modification date": "the 'mimetype' entry's",
    "compressed size": "the uncompressed size, as entries are stored",
}
_FROM_CENTRAL = frozenset(
    {"modification time", "modification date", "crc32", "compressed size", "uncompressed size"}
)


def _first_mismatch(
    fields: _Fields,
    expected: bytes,
    found: bytes,
    base: int,
    notes: Mapping[str, str] | None = None,
) -> str | None:
    """Describe the first field where ``found`` differs from ``expected``, if any."""
    notes = notes or {}
    for name, offset, size in fields:
        want = int.from_bytes(expected[offset : offset + size], "little")
        have = int.from_bytes(found[offset : offset + size], "little")
        if want != have:
            note = f", {notes[name]}" if name in notes else ""
            return (
                f"field '{name}' at offset {base + offset} is {have} (0x{have:0{2 * size}x}), "
                f"expected {want} (0x{want:0{2 * size}x}){note}"
            )
    return None


def _read_at(fp: BinaryIO, offset: int, size: int, what: str) -> bytes:
    fp.seek(offset)
    data = fp.read(size)
    while len(data) < size and (more := fp.read(size - len(data))):
        data += more
    if len(data) != size:
        raise ZipStructureError(
            f"file is truncated: {what} needs {size} bytes at offset {offset}, only "
            f"{len(data)} could be read"
        )
    return data
