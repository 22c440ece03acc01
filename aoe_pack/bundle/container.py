"""The ZIP container of bundle format v1: a deterministic, 64-byte-aligned writer
and a strict reader.

Layout (normative; all integers little-endian; no ZIP64, so any size or offset
>= 0xFFFFFFFF or entry count >= 0xFFFF is refused):

1. Entries follow each other from offset 0 with no gaps: local header, then the
   data; no data descriptors. The first entry is ``mimetype``; its data is the
   bundle media type (``MEDIA_TYPE_V1``) and its local header has no extra
   field, so bytes 30..37 read ``mimetype`` and the media type starts at byte 38.
2. Local header (30 bytes + name + extra): signature 0x04034b50, version needed
   10, flags 0x0800 (UTF-8 names), method 0 (stored), DOS time and date (the
   same for every entry, see :func:`dos_datetime`), crc32, compressed size =
   uncompressed size = data length, name length, extra length.
3. Every entry but ``mimetype`` has exactly one extra field: id 0xD935
   (zipalign's), data size 2 + pad, a u16 alignment of 64, then ``pad`` zero
   bytes, where ``pad`` is the least n >= 0 with
   ``(header_offset + 30 + len(name) + 6 + n) % 64 == 0``. Entry data therefore
   starts on a multiple of 64 and can be memory-mapped in place.
4. The central directory follows the last entry's data: one 46-byte record plus
   name per entry, in file order; signature 0x02014b50, version made by 0x0314,
   version needed 10, flags 0x0800, method 0, the same time/date/crc32/sizes as
   the local header, name length, extra length 0, comment length 0, disk 0,
   internal attributes 0, external attributes 0o100644 << 16, local header
   offset, name.
5. The 22-byte end of central directory record follows and ends the file:
   signature 0x06054b50, disks 0 and 0, entry counts n and n, cd size,
   cd offset, comment length 0.

Names are non-empty UTF-8 of at most 1024 bytes with no NUL, no backslash, no
leading ``/``, no drive letter (``C:``), no empty, ``.`` or ``..`` segment and no
trailing ``/``. No two names may be equal after NFC normalization and
``str.casefold`` (they would collide on case-insensitive file systems).

The reader checks every one of these bytes; a bundle layer that also checks
each entry's crc32 against a signed value and hashes the data detects a change
to any byte of the file.
"""

from __future__ import annotations

from aoe_pack.bundle._zipread import BundleLayout, FileKind, read_layout, sniff
from aoe_pack.bundle._zipwrite import (
    ALIGNMENT,
    MAX_NAME_BYTES,
    MEDIA_TYPE_PREFIX,
    MEDIA_TYPE_V1,
    MIMETYPE_NAME,
    AlignedZipWriter,
    DateTime,
    EntryWriter,
    ZipEntry,
    check_name,
    dos_datetime,
)

__all__ = [
    "ALIGNMENT",
    "MAX_NAME_BYTES",
    "MEDIA_TYPE_PREFIX",
    "MEDIA_TYPE_V1",
    "MIMETYPE_NAME",
    "AlignedZipWriter",
    "BundleLayout",
    "DateTime",
    "EntryWriter",
    "FileKind",
    "ZipEntry",
    "check_name",
    "dos_datetime",
    "read_layout",
    "sniff",
]
