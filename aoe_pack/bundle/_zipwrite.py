"""The canonical v1 ZIP layout and its streaming writer.

The byte encoders here are the single definition of "canonical": the writer
emits them and the reader (:mod:`._zipread`) re-encodes what it parsed and
compares byte for byte. The normative prose lives in :mod:`.container`.
"""

from __future__ import annotations

import re
import struct
import unicodedata
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import BinaryIO

from aoe_pack.bundle._unicode14 import UNICODE_VERSION, first_unassigned
from aoe_pack.bundle.crc import crc32_combine
from aoe_pack.errors import LimitExceededError, UnsafeEntryError, ZipStructureError

MEDIA_TYPE_V1 = b"application/vnd.aoe.bundle.v1+zip"
MEDIA_TYPE_PREFIX = b"application/vnd.aoe.bundle."
MIMETYPE_NAME = "mimetype"

ALIGNMENT = 64
ALIGNMENT_EXTRA_ID = 0xD935  # Android zipalign's "alignment" extra field
VERSION_NEEDED = 10  # 1.0: stored entries, nothing else
VERSION_MADE_BY = 0x0314  # Unix, ZIP 2.0: external attributes carry a Unix mode
FLAGS_UTF8 = 0x0800
METHOD_STORED = 0
FILE_MODE = 0o100644  # regular file, rw-r--r--
EXTERNAL_ATTRS = FILE_MODE << 16

MAX_NAME_BYTES = 1024
HEAD_BYTES = 128  # what `sniff` looks at; the media type must fit in it
MIMETYPE_DATA_OFFSET = 30 + len(MIMETYPE_NAME)
MAX_MEDIA_TYPE_BYTES = HEAD_BYTES - MIMETYPE_DATA_OFFSET
U32_SENTINEL = 0xFFFFFFFF  # sizes/offsets >= this would need ZIP64
U16_SENTINEL = 0xFFFF  # entry counts >= this would need ZIP64

LOCAL_SIG = 0x04034B50
CENTRAL_SIG = 0x02014B50
EOCD_SIG = 0x06054B50

LOCAL = struct.Struct("<IHHHHHIIIHH")
CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
EOCD = struct.Struct("<IHHHHIIH")
EXTRA_HEAD = struct.Struct("<HHH")  # header id, data size, alignment

DateTime = tuple[int, int]
"""``(dos_time, dos_date)``, exactly as stored in the headers."""

_DOS_MIN = datetime(1980, 1, 1, tzinfo=UTC)
_DOS_MAX = datetime(2107, 12, 31, 23, 59, 58, tzinfo=UTC)
_DRIVE = re.compile(r"[A-Za-z]:")


@dataclass(frozen=True, slots=True)
class ZipEntry:
    """Where one stored entry lives in the file."""

    name: str
    header_offset: int
    data_offset: int
    """Offset of the first data byte; a multiple of 64 for every entry but ``mimetype``."""
    size: int
    crc32: int


def dos_datetime(epoch_seconds: int) -> DateTime:
    """``(dos_time, dos_date)`` for a Unix time, in UTC, clamped to DOS's 1980..2107 range.

    DOS times have two-second resolution; odd seconds round down.
    """
    low, high = int(_DOS_MIN.timestamp()), int(_DOS_MAX.timestamp())
    when = datetime.fromtimestamp(min(max(epoch_seconds, low), high), tz=UTC)
    time = (when.hour << 11) | (when.minute << 5) | (when.second // 2)
    date = ((when.year - 1980) << 9) | (when.month << 5) | when.day
    return time, date


def dos_datetime_problem(date_time: DateTime) -> str | None:
    """Why ``date_time`` is not a valid DOS time and date, or None if it is."""
    time, date = date_time
    if not (0 <= time <= U16_SENTINEL and 0 <= date <= U16_SENTINEL):
        return f"DOS time/date {date_time} are not 16-bit values"
    hour, minute, second = time >> 11, (time >> 5) & 0x3F, (time & 0x1F) * 2
    month, day = (date >> 5) & 0x0F, date & 0x1F
    if hour > 23 or minute > 59 or second > 59:
        return f"DOS time 0x{time:04x} is not a valid time ({hour:02}:{minute:02}:{second:02})"
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return f"DOS date 0x{date:04x} is not a valid date (month {month}, day {day})"
    return None


def _check_characters(name: str) -> None:
    if "\x00" in name:
        raise UnsafeEntryError(f"entry name {name!r} contains a NUL character")
    if (char := first_unassigned(name)) is not None:
        raise UnsafeEntryError(
            f"entry name {name!r} has U+{ord(char):04X}, which Unicode {UNICODE_VERSION} does "
            "not assign: platforms could fold its case differently"
        )
    if "\\" in name:
        raise UnsafeEntryError(
            f"entry name {name!r} contains a backslash, a path separator on Windows; "
            "ZIP names separate folders with '/'"
        )


def check_name(name: str) -> bytes:
    """Return the UTF-8 encoding of a safe entry name; raise UnsafeEntryError otherwise."""
    if not name:
        raise UnsafeEntryError("entry name is empty")
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError as e:
        raise UnsafeEntryError(f"entry name {name!r} is not valid Unicode: {e.reason}") from e
    if len(encoded) > MAX_NAME_BYTES:
        raise UnsafeEntryError(
            f"entry name {name[:60]!r}... is {len(encoded)} bytes long; the limit is "
            f"{MAX_NAME_BYTES} bytes"
        )
    _check_characters(name)
    if name.startswith("/"):
        raise UnsafeEntryError(f"entry name {name!r} is an absolute path")
    if _DRIVE.match(name):
        raise UnsafeEntryError(f"entry name {name!r} starts with a Windows drive letter")
    if name.endswith("/"):
        raise UnsafeEntryError(
            f"entry name {name!r} ends with '/', a directory entry; bundles hold only files"
        )
    for segment in name.split("/"):
        if segment == "..":
            raise UnsafeEntryError(
                f"entry name {name!r} has a '..' segment that climbs out of the target folder"
            )
        if segment == ".":
            raise UnsafeEntryError(f"entry name {name!r} has a '.' path segment")
        if not segment:
            raise UnsafeEntryError(f"entry name {name!r} has an empty path segment ('//')")
    return encoded


def collision_key(name: str) -> str:
    """Names with equal keys collide on case-insensitive (and normalizing) file systems."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


class EntryNames:
    """The names in one archive, checked for every kind of collision on extraction.

    Two entries collide when their names are equal, equal after case folding
    and Unicode normalisation (case-insensitive file systems), or when one
    entry's name is a folder of another's path (``a/b`` and ``a/b/c``): no
    file system can hold both. Used by the writer and the reader alike.
    """

    def __init__(self) -> None:
        self._files: dict[str, str] = {}
        self._folders: dict[str, str] = {}  # folder key -> first entry inside it

    def check(self, name: str) -> bytes:
        """The encoded name, if it is safe and collides with no name added so far."""
        encoded = check_name(name)
        key = collision_key(name)
        if (other := self._files.get(key)) is not None:
            if other == name:
                raise UnsafeEntryError(f"duplicate entry name {name!r}")
            raise UnsafeEntryError(
                f"entry names {other!r} and {name!r} differ only by case or Unicode "
                "normalization; they collide on case-insensitive file systems"
            )
        if (inside := self._folders.get(key)) is not None:
            raise UnsafeEntryError(
                f"entry {name!r} is a file, but {inside!r} needs a folder of that name"
            )
        for folder in _folders_of(key):
            if (other := self._files.get(folder)) is not None:
                raise UnsafeEntryError(
                    f"entry {name!r} needs a folder where entry {other!r} is a file"
                )
        return encoded

    def add(self, name: str) -> None:
        """Record ``name`` (after :meth:`check`)."""
        key = collision_key(name)
        self._files[key] = name
        for folder in _folders_of(key):
            self._folders.setdefault(folder, name)


def _folders_of(key: str) -> list[str]:
    parts = key.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def alignment_padding(header_offset: int, name_length: int) -> int:
    """Zero bytes after the alignment value so that the entry's data starts on 64."""
    return -(header_offset + LOCAL.size + name_length + EXTRA_HEAD.size) % ALIGNMENT


def alignment_extra(padding: int) -> bytes:
    """The one extra field of every entry but ``mimetype``."""
    return EXTRA_HEAD.pack(ALIGNMENT_EXTRA_ID, 2 + padding, ALIGNMENT) + bytes(padding)


def local_header(
    name: bytes, *, crc: int, size: int, date_time: DateTime, extra: bytes = b""
) -> bytes:
    """The canonical local file header, name and extra field."""
    time, date = date_time
    fixed = LOCAL.pack(
        LOCAL_SIG, VERSION_NEEDED, FLAGS_UTF8, METHOD_STORED, time, date,
        crc, size, size, len(name), len(extra),
    )  # fmt: skip
    return fixed + name + extra


def central_record(
    name: bytes, *, crc: int, size: int, date_time: DateTime, header_offset: int
) -> bytes:
    """The canonical central directory record."""
    time, date = date_time
    fixed = CENTRAL.pack(
        CENTRAL_SIG, VERSION_MADE_BY, VERSION_NEEDED, FLAGS_UTF8, METHOD_STORED, time, date,
        crc, size, size, len(name), 0, 0, 0, 0, EXTERNAL_ATTRS, header_offset,
    )  # fmt: skip
    return fixed + name


def end_record(*, count: int, cd_size: int, cd_offset: int) -> bytes:
    """The canonical end of central directory record (no comment)."""
    return EOCD.pack(EOCD_SIG, 0, 0, count, count, cd_size, cd_offset, 0)


def directory_and_end(entries: Sequence[ZipEntry], *, date_time: DateTime, cd_offset: int) -> bytes:
    """The central directory of ``entries`` (``mimetype`` first, in file order) and the end
    record, for a directory starting at ``cd_offset``: the last bytes of every bundle."""
    directory = b"".join(
        central_record(
            e.name.encode("utf-8"), crc=e.crc32, size=e.size,
            date_time=date_time, header_offset=e.header_offset,
        )
        for e in entries
    )  # fmt: skip
    if cd_offset + len(directory) >= U32_SENTINEL:
        raise LimitExceededError(
            f"the central directory would end at offset {cd_offset + len(directory)}, past "
            f"{U32_SENTINEL - 1} bytes, which needs ZIP64 (not supported in format v1)"
        )
    end = end_record(count=len(entries), cd_size=len(directory), cd_offset=cd_offset)
    return directory + end


def replace_last_data(
    entries: Sequence[ZipEntry], *, date_time: DateTime, data: bytes
) -> tuple[int, bytes]:
    """Where a canonical archive changes when its last entry's data becomes ``data``, and
    its bytes from there to the new end of the file.

    ``entries`` are every entry of the archive (``mimetype`` first, in file order) as
    the reader found them. The last entry keeps its offset, so its alignment padding is
    unchanged; its local header (crc32, sizes), its data, the central directory and the
    end record are rewritten. The result is byte for byte what :class:`AlignedZipWriter`
    writes when given ``data`` for that entry in the first place.
    """
    last = entries[-1]
    name = last.name.encode("utf-8")
    extra = alignment_extra(alignment_padding(last.header_offset, len(name)))
    data_offset = last.header_offset + LOCAL.size + len(name) + len(extra)
    if len(data) >= U32_SENTINEL or data_offset + len(data) >= U32_SENTINEL:
        raise LimitExceededError(
            f"entry {last.name!r} of {len(data)} bytes at offset {data_offset} would end "
            f"past {U32_SENTINEL - 1} bytes, which needs ZIP64 (not supported in format v1)"
        )
    crc = zlib.crc32(data)
    header = local_header(name, crc=crc, size=len(data), date_time=date_time, extra=extra)
    replaced = ZipEntry(last.name, last.header_offset, data_offset, len(data), crc)
    cd_offset = data_offset + len(data)
    end = directory_and_end([*entries[:-1], replaced], date_time=date_time, cd_offset=cd_offset)
    return last.header_offset, header + data + end


def _write_all(fp: BinaryIO, data: bytes | memoryview) -> None:
    view = memoryview(data).cast("B")
    done = fp.write(view)
    while done < len(view):  # only raw, unbuffered files write short
        done += fp.write(view[done:])


class AlignedZipWriter:
    """Streams a canonical v1 bundle container into a seekable binary file.

    The ``mimetype`` entry is written by the constructor, so it is always first.
    Entries follow in the order they are added; :meth:`close` appends the
    central directory. The file must be positioned at offset 0. Programming
    errors (bad arguments) raise ``ValueError``; unsafe names raise
    :class:`UnsafeEntryError`, sizes needing ZIP64 :class:`LimitExceededError`.
    """

    def __init__(self, fp: BinaryIO, *, media_type: bytes, date_time: DateTime) -> None:
        if problem := dos_datetime_problem(date_time):
            raise ValueError(f"date_time: {problem}; use dos_datetime(epoch_seconds)")
        if not 0 < len(media_type) <= MAX_MEDIA_TYPE_BYTES:
            raise ValueError(
                f"media_type must be 1..{MAX_MEDIA_TYPE_BYTES} bytes, got {len(media_type)}"
            )
        if fp.tell() != 0:
            raise ValueError(f"the output must be positioned at offset 0, not {fp.tell()}")
        self._fp = fp
        self._date_time = date_time
        self._entries: list[ZipEntry] = []
        self._names = EntryNames()
        self._offset = 0
        self._open: EntryWriter | None = None
        self._state = ""  # why the writer can no longer be used, once it can't
        name = self._names.check(MIMETYPE_NAME)
        self._names.add(MIMETYPE_NAME)
        crc = zlib.crc32(media_type)
        header = local_header(name, crc=crc, size=len(media_type), date_time=date_time)
        _write_all(fp, header + media_type)
        self._offset = len(header) + len(media_type)
        self._entries.append(ZipEntry(MIMETYPE_NAME, 0, len(header), len(media_type), crc))

    def add_bytes(self, name: str, data: bytes | memoryview) -> ZipEntry:
        """Add an entry whose data is already in memory."""
        view = memoryview(data).cast("B")
        with self.open_entry(name, len(view)) as entry:
            entry.write(view)
        return self._entries[-1]

    def open_entry(self, name: str, size: int) -> EntryWriter:
        """Start an entry of exactly ``size`` bytes; use the result as a context manager."""
        self._check_usable(f"open entry {name!r}")
        if size < 0:
            raise ValueError(f"entry {name!r}: size must be >= 0, got {size}")
        if len(self._entries) + 1 >= U16_SENTINEL:
            raise LimitExceededError(
                f"cannot add entry {name!r}: a bundle holds at most {U16_SENTINEL - 1} entries "
                "including 'mimetype' (ZIP64 is not supported in format v1)"
            )
        encoded = self._names.check(name)
        header_offset = self._offset
        padding = alignment_padding(header_offset, len(encoded))
        extra = alignment_extra(padding)
        data_offset = header_offset + LOCAL.size + len(encoded) + len(extra)
        if size >= U32_SENTINEL or data_offset + size >= U32_SENTINEL:
            raise LimitExceededError(
                f"entry {name!r} of {size} bytes at offset {data_offset} would end past "
                f"{U32_SENTINEL - 1} bytes, which needs ZIP64 (not supported in format v1)"
            )
        self._names.add(name)
        # The CRC is patched in by EntryWriter.__exit__ once the data is known.
        header = local_header(encoded, crc=0, size=size, date_time=self._date_time, extra=extra)
        _write_all(self._fp, header)
        self._offset = data_offset
        self._open = EntryWriter(self, ZipEntry(name, header_offset, data_offset, size, 0))
        return self._open

    def close(self) -> list[ZipEntry]:
        """Write the central directory and end record; return every entry, ``mimetype`` first."""
        self._check_usable("close the archive")
        tail = directory_and_end(self._entries, date_time=self._date_time, cd_offset=self._offset)
        _write_all(self._fp, tail)
        self._offset += len(tail)
        self._state = "it is closed"
        return list(self._entries)

    # --- used by EntryWriter -------------------------------------------------

    def _finish(self, entry: ZipEntry) -> None:
        if entry.crc32:
            self._fp.seek(entry.header_offset + 14)  # the local header's crc32 field
            self._fp.write(entry.crc32.to_bytes(4, "little"))
        self._offset = entry.data_offset + entry.size
        self._fp.seek(self._offset)
        self._open = None
        self._entries.append(entry)

    def _abort(self, name: str) -> None:
        self._open = None
        self._state = f"writing entry {name!r} failed and the output is incomplete"

    # --- internals -----------------------------------------------------------

    def _check_usable(self, action: str) -> None:
        if self._state:
            raise ZipStructureError(f"cannot {action}: {self._state}")
        if self._open is not None:
            raise ZipStructureError(
                f"cannot {action} while entry {self._open.name!r} is still being written"
            )


class EntryWriter:
    """Receives the data of one entry; returned by :meth:`AlignedZipWriter.open_entry`."""

    def __init__(self, owner: AlignedZipWriter, entry: ZipEntry) -> None:
        self._owner = owner
        self._entry = entry
        self._written = 0
        self._crc = 0

    @property
    def name(self) -> str:
        """The entry's name."""
        return self._entry.name

    @property
    def crc32(self) -> int:
        """The crc32 of the data written so far; the entry's crc32 once it is closed."""
        return self._crc

    @property
    def written(self) -> int:
        """Bytes written so far."""
        return self._written

    @property
    def end(self) -> int:
        """File offset just past the data written so far (no system call)."""
        return self._entry.data_offset + self._written

    def write(self, data: bytes | memoryview, crc: int | None = None) -> None:
        """Append ``data``; pass ``crc=zlib.crc32(data)`` if it was already computed."""
        if self._owner._open is not self:
            raise ZipStructureError(f"entry {self.name!r} is no longer open for writing")
        length = data.nbytes if isinstance(data, memoryview) else len(data)
        if self._written + length > self._entry.size:
            raise ZipStructureError(
                f"entry {self.name!r}: writing {length} more bytes after {self._written} would "
                f"exceed its declared size of {self._entry.size} bytes"
            )
        _write_all(self._owner._fp, data)
        if crc is None:
            self._crc = zlib.crc32(data, self._crc)
        else:
            self._crc = crc32_combine(self._crc, crc, length)
        self._written += length

    def __enter__(self) -> EntryWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self._owner._abort(self.name)
            return
        if self._written != self._entry.size:
            self._owner._abort(self.name)
            raise ZipStructureError(
                f"entry {self.name!r}: declared size {self._entry.size} bytes but "
                f"{self._written} were written"
            )
        e = self._entry
        final = ZipEntry(e.name, e.header_offset, e.data_offset, e.size, self._crc)
        self._owner._finish(final)
