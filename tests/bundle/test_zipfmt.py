"""The v1 ZIP container: writer round trips, and one test per structural attack.

Malicious archives are made by writing a valid one with the real writer and
patching bytes with ``struct``; where a patch would trip an earlier check
(e.g. a renamed entry), the tests keep every other byte canonical so that the
targeted check is the one that fires.
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from collections.abc import Iterable
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aoe_pack.bundle.container import (
    MEDIA_TYPE_V1,
    AlignedZipWriter,
    BundleLayout,
    FileKind,
    ZipEntry,
    dos_datetime,
    read_layout,
    sniff,
)
from aoe_pack.errors import (
    BundleFormatError,
    LegacyFormatError,
    LimitExceededError,
    NotABundleError,
    UnsafeEntryError,
    UnsupportedVersionError,
    ZipStructureError,
)

DATE_TIME = dos_datetime(1_700_000_000)
SAMPLE = (("one.bin", b"1" * 100), ("two.bin", b"22"), ("three.bin", b""))

# Field offsets inside a local header and a central directory record.
L_VERSION, L_FLAGS, L_METHOD, L_CRC = 4, 6, 8, 14
C_MADE_BY, C_FLAGS, C_METHOD, C_INTERNAL, C_EXTERNAL, C_OFFSET = 4, 8, 10, 36, 38, 42
E_COMMENT_LENGTH, E_CD_OFFSET = 20, 16


# --- helpers ---------------------------------------------------------------------


def build(
    entries: Iterable[tuple[str, bytes]] = SAMPLE, *, media_type: bytes = MEDIA_TYPE_V1
) -> bytes:
    out = io.BytesIO()
    writer = AlignedZipWriter(out, media_type=media_type, date_time=DATE_TIME)
    for name, data in entries:
        writer.add_bytes(name, data)
    writer.close()
    return out.getvalue()


def read(data: bytes, *, max_entries: int = 10_000) -> BundleLayout:
    return read_layout(io.BytesIO(data), file_size=len(data), max_entries=max_entries)


def central_offsets(data: bytes) -> dict[str, int]:
    """Offset of each entry's central directory record, by name."""
    count, cd_offset = struct.unpack_from("<H", data, len(data) - 12)[0], cd_offset_of(data)
    found, pos = {}, cd_offset
    for _ in range(count):
        n, x, c = struct.unpack_from("<HHH", data, pos + 28)
        found[data[pos + 46 : pos + 46 + n].decode()] = pos
        pos += 46 + n + x + c
    return found


def cd_offset_of(data: bytes) -> int:
    return int(struct.unpack_from("<I", data, len(data) - 22 + E_CD_OFFSET)[0])


def local_offset(data: bytes, name: str) -> int:
    return int(struct.unpack_from("<I", data, central_offsets(data)[name] + C_OFFSET)[0])


def patch(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    buf = bytearray(data)
    struct.pack_into(fmt, buf, offset, value)
    return bytes(buf)


def patch_both(data: bytes, name: str, local_field: int, central_field: int, value: int) -> bytes:
    """Set a u16 field to the same value in an entry's local header and its CD record."""
    data = patch(data, local_offset(data, name) + local_field, "<H", value)
    return patch(data, central_offsets(data)[name] + central_field, "<H", value)


def rename(data: bytes, old: str, new: str) -> bytes:
    """Rename an entry in both headers (same encoded length, so padding stays valid)."""
    raw_old, raw_new = old.encode(), new.encode()
    assert len(raw_old) == len(raw_new)
    buf = bytearray(data)
    for at in (local_offset(data, old) + 30, central_offsets(data)[old] + 46):
        assert buf[at : at + len(raw_old)] == raw_old
        buf[at : at + len(raw_new)] = raw_new
    return bytes(buf)


def named(name: str) -> bytes:
    """A valid archive whose one entry is then renamed to ``name`` in both headers."""
    placeholder = "q" * len(name.encode())
    return rename(build([(placeholder, b"")]), placeholder, name)


def insert_gap(data: bytes, at: int, size: int) -> bytes:
    """Insert zero bytes at ``at`` and move every later offset so only the gap is wrong."""
    cd_offset = cd_offset_of(data)
    records = central_offsets(data).values()
    out = bytearray(data[:at] + bytes(size) + data[at:])
    for record in records:
        where = record + size + C_OFFSET
        (offset,) = struct.unpack_from("<I", out, where)
        if offset >= at:
            struct.pack_into("<I", out, where, offset + size)
    struct.pack_into("<I", out, len(out) - 22 + E_CD_OFFSET, cd_offset + size)
    return bytes(out)


def rejects(data: bytes, cls: type[BundleFormatError], *fragments: str) -> str:
    """Assert read_layout raises exactly ``cls`` with every fragment in the message."""
    with pytest.raises(BundleFormatError) as info:
        read(data)
    assert type(info.value) is cls, f"{type(info.value).__name__}: {info.value}"
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message
    return message


# --- writer and round trip --------------------------------------------------------


ROUND_TRIP = (
    ("empty", b""),
    ("one", b"\x01"),
    ("dir/sixty-four", bytes(range(64))),
    ("dir/one-twenty-eight", b"\xaa" * 128),
    ("odd", b"x" * 65),
    ("large.bin", os.urandom(3 << 20)),
)


def test_round_trip() -> None:
    out = io.BytesIO()
    writer = AlignedZipWriter(out, media_type=MEDIA_TYPE_V1, date_time=DATE_TIME)
    for name, data in ROUND_TRIP:
        writer.add_bytes(name, data)
    written = writer.close()
    blob = out.getvalue()
    layout = read(blob)
    assert written[0] == ZipEntry("mimetype", 0, 38, len(MEDIA_TYPE_V1), zlib.crc32(MEDIA_TYPE_V1))
    assert layout.entries == tuple(written[1:])
    assert layout == BundleLayout(MEDIA_TYPE_V1, tuple(written[1:]), DATE_TIME, len(blob))
    for entry, (name, data) in zip(layout.entries, ROUND_TRIP, strict=True):
        assert entry.name == name
        assert entry.size == len(data)
        assert entry.crc32 == zlib.crc32(data)
        assert entry.data_offset % 64 == 0
        assert blob[entry.data_offset : entry.data_offset + entry.size] == data


def test_mimetype_is_the_magic() -> None:
    blob = build()
    assert blob[:4] == b"PK\x03\x04"
    assert blob[28:30] == b"\x00\x00"  # no extra field on mimetype
    assert blob[30:38] == b"mimetype"
    assert blob[38 : 38 + len(MEDIA_TYPE_V1)] == MEDIA_TYPE_V1
    assert sniff(blob[:128]) is FileKind.AOE_V1


def test_python_zipfile_reads_bundles() -> None:
    blob = build(ROUND_TRIP)
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == ["mimetype", *(name for name, _ in ROUND_TRIP)]
        for name, data in ROUND_TRIP:
            assert archive.read(name) == data
        info = archive.getinfo("one")
        assert info.compress_type == zipfile.ZIP_STORED
        assert info.external_attr >> 16 == 0o100644
        assert info.date_time == datetime.fromtimestamp(1_700_000_000, UTC).timetuple()[:6]


def test_deterministic() -> None:
    assert build(ROUND_TRIP) == build(ROUND_TRIP)


def test_precomputed_piece_crcs_give_the_same_bytes() -> None:
    data = os.urandom(5 * 1024 + 17)
    pieces = [data[i : i + 1024] for i in range(0, len(data), 1024)]
    out = io.BytesIO()
    writer = AlignedZipWriter(out, media_type=MEDIA_TYPE_V1, date_time=DATE_TIME)
    with writer.open_entry("model.bin", len(data)) as entry:
        for piece in pieces:
            entry.write(memoryview(piece), crc=zlib.crc32(piece))
    assert entry.crc32 == zlib.crc32(data)
    writer.close()
    assert out.getvalue() == build([("model.bin", data)])


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=300), max_size=6),
    media_extra=st.integers(min_value=0, max_value=40),
)
def test_round_trip_property(sizes: list[int], media_extra: int) -> None:
    media_type = MEDIA_TYPE_V1 + b"x" * media_extra  # shifts every later offset
    entries = [(f"f{i}/{'n' * (i + 1)}", bytes([i]) * size) for i, size in enumerate(sizes)]
    blob = build(entries, media_type=media_type)
    layout = read_layout(io.BytesIO(blob), file_size=len(blob), media_types=(media_type,))
    assert [(e.name, e.size, e.crc32) for e in layout.entries] == [
        (name, len(data), zlib.crc32(data)) for name, data in entries
    ]
    assert all(e.data_offset % 64 == 0 for e in layout.entries)


def test_writer_refuses_unsafe_and_duplicate_names() -> None:
    writer = AlignedZipWriter(io.BytesIO(), media_type=MEDIA_TYPE_V1, date_time=DATE_TIME)
    for name, fragment in [
        ("", "empty"),
        ("/etc/passwd", "absolute"),
        ("a/../../b", "'..'"),
        ("a\\b", "backslash"),
        ("C:/x", "drive letter"),
        ("dir/", "directory"),
        ("a//b", "empty path segment"),
        ("./a", "'.'"),
        ("a\x00b", "NUL"),
        ("x" * 1025, "limit is 1024"),
        ("\udcff", "not valid Unicode"),
        ("mimetype", "duplicate"),
        ("MimeType", "differ only by case"),
    ]:
        with pytest.raises(UnsafeEntryError, match=fragment):
            writer.add_bytes(name, b"")
    writer.add_bytes("caf\u00e9", b"")
    with pytest.raises(UnsafeEntryError, match="differ only by case or Unicode normalization"):
        writer.add_bytes("cafe\u0301", b"")


def test_writer_checks_declared_size() -> None:
    writer = AlignedZipWriter(io.BytesIO(), media_type=MEDIA_TYPE_V1, date_time=DATE_TIME)
    with pytest.raises(ZipStructureError, match="would exceed its declared size of 3 bytes"):  # noqa: SIM117
        with writer.open_entry("big", 3) as entry:
            entry.write(b"1234")
    with pytest.raises(ZipStructureError, match="writing entry 'big' failed"):
        writer.close()

    writer = AlignedZipWriter(io.BytesIO(), media_type=MEDIA_TYPE_V1, date_time=DATE_TIME)
    with pytest.raises(ZipStructureError, match="declared size 3 bytes but 2 were written"):  # noqa: SIM117
        with writer.open_entry("short", 3) as entry:
            entry.write(b"12")


def test_writer_refuses_interleaved_entries() -> None:
    writer = AlignedZipWriter(io.BytesIO(), media_type=MEDIA_TYPE_V1, date_time=DATE_TIME)
    with writer.open_entry("first", 1) as entry:
        with pytest.raises(ZipStructureError, match="while entry 'first' is still being written"):
            writer.open_entry("second", 1)
        entry.write(b"1")
    with pytest.raises(ZipStructureError, match="no longer open"):
        entry.write(b"")
    writer.close()
    with pytest.raises(ZipStructureError, match="it is closed"):
        writer.add_bytes("late", b"")


def test_writer_refuses_zip64_sizes() -> None:
    writer = AlignedZipWriter(io.BytesIO(), media_type=MEDIA_TYPE_V1, date_time=DATE_TIME)
    with pytest.raises(LimitExceededError, match="ZIP64"):
        writer.open_entry("huge", 0xFFFFFFFF)
    with pytest.raises(LimitExceededError, match="ZIP64"):
        writer.open_entry("ends-too-late", 0xFFFFFFFF - 100)
    writer.add_bytes("huge", b"refused sizes leave the writer usable")
    writer.close()


def test_writer_argument_checks() -> None:
    with pytest.raises(ValueError, match="not a valid date"):
        AlignedZipWriter(io.BytesIO(), media_type=MEDIA_TYPE_V1, date_time=(0, 0))
    with pytest.raises(ValueError, match="media_type"):
        AlignedZipWriter(io.BytesIO(), media_type=b"", date_time=DATE_TIME)
    out = io.BytesIO(b"junk")
    out.seek(4)
    with pytest.raises(ValueError, match="offset 0"):
        AlignedZipWriter(out, media_type=MEDIA_TYPE_V1, date_time=DATE_TIME)


def test_dos_datetime() -> None:
    assert dos_datetime(0) == (0, (0 << 9) | (1 << 5) | 1)  # clamped to 1980-01-01
    assert dos_datetime(-5) == dos_datetime(0)
    when = int(datetime(2024, 2, 29, 13, 45, 31, tzinfo=UTC).timestamp())
    assert dos_datetime(when) == ((13 << 11) | (45 << 5) | 15, (44 << 9) | (2 << 5) | 29)
    assert dos_datetime(10**12) == ((23 << 11) | (59 << 5) | 29, (127 << 9) | (12 << 5) | 31)


def test_sniff() -> None:
    assert sniff(build()[:128]) is FileKind.AOE_V1
    v2 = build(media_type=b"application/vnd.aoe.bundle.v2+zip")
    assert sniff(v2[:128]) is FileKind.AOE_UNKNOWN_VERSION
    assert sniff(plain_zip()[:128]) is FileKind.ZIP
    assert sniff(b"PK\x05\x06" + bytes(18)) is FileKind.ZIP
    assert sniff(legacy_atenc()[:128]) is FileKind.LEGACY_ATENC
    assert sniff(b"\x01short") is FileKind.UNKNOWN
    assert sniff(b"") is FileKind.UNKNOWN
    assert sniff(b"\x89PNG\r\n\x1a\n") == "unknown"


# --- not a bundle ----------------------------------------------------------------


def plain_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("model.tflite", b"weights")
    return out.getvalue()


def legacy_atenc() -> bytes:
    return b"\x01" + (100).to_bytes(4, "big") + b"0123456789abcdef" + os.urandom(112)


def test_empty_file() -> None:
    rejects(b"", NotABundleError, "empty file")


def test_legacy_atenc_file() -> None:
    rejects(legacy_atenc(), LegacyFormatError, "legacy AoE atenc v1", "aoe-pack build")


def test_plain_zip() -> None:
    rejects(plain_zip(), NotABundleError, "plain ZIP")


def test_epub_like_zip() -> None:
    epub = build(media_type=b"application/epub+zip")
    rejects(epub, NotABundleError, "plain ZIP", "application/epub+zip")


def test_random_bytes() -> None:
    rejects(b"\x7fELF" + bytes(60), NotABundleError, "not an .aoe bundle", "7f 45 4c 46")


def test_future_version() -> None:
    blob = build(media_type=b"application/vnd.aoe.bundle.v2+zip")
    message = rejects(blob, UnsupportedVersionError, "format v2", MEDIA_TYPE_V1.decode())
    assert "application/vnd.aoe.bundle.v2+zip" in message


def test_python_zipfile_lookalike_is_rejected() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("mimetype", MEDIA_TYPE_V1)
        archive.writestr("payload/model.bin", b"weights")
    with pytest.raises(ZipStructureError):
        read(out.getvalue())


# --- end of archive --------------------------------------------------------------


def test_truncated() -> None:
    blob = build()
    cuts = [len(blob) - 1, len(blob) - 22, cd_offset_of(blob), cd_offset_of(blob) - 1, 100, 40]
    for cut in [*cuts, 20]:
        rejects(blob[:cut], ZipStructureError, "truncated")


def test_appended_bytes() -> None:
    blob = build()
    rejects(blob + b"junk", ZipStructureError, "4 bytes of trailing data", "end of central")


def test_zip_comment() -> None:
    blob = build()
    blob = patch(blob, len(blob) - 22 + E_COMMENT_LENGTH, "<H", 5) + b"hello"
    rejects(blob, ZipStructureError, "5-byte ZIP comment")


def test_comment_length_without_comment() -> None:
    blob = build()
    blob = patch(blob, len(blob) - 22 + E_COMMENT_LENGTH, "<H", 5)
    rejects(blob, ZipStructureError, "5-byte ZIP comment past the end of the file")


def test_multi_disk_archive() -> None:
    blob = build()
    rejects(patch(blob, len(blob) - 18, "<H", 1), ZipStructureError, "multi-disk")


def test_zip64_entry_count() -> None:
    blob = build()
    for at in (len(blob) - 14, len(blob) - 12):
        blob = patch(blob, at, "<H", 0xFFFF)
    rejects(blob, LimitExceededError, "ZIP64")


def test_zip64_entry_size() -> None:
    blob = build()
    rejects(patch(blob, central_offsets(blob)["two.bin"] + 24, "<I", 0xFFFFFFFF),
            LimitExceededError, "ZIP64")  # fmt: skip


def test_too_many_entries() -> None:
    blob = build([(f"f{i}", b"") for i in range(5)])
    assert len(read(blob, max_entries=5).entries) == 5
    with pytest.raises(LimitExceededError, match="6 entries besides 'mimetype'; the limit is 5"):
        read(build([(f"f{i}", b"") for i in range(6)]), max_entries=5)


def test_central_directory_offset_inconsistent() -> None:
    blob = build()
    blob = patch(blob, len(blob) - 22 + E_CD_OFFSET, "<I", cd_offset_of(blob) - 1)
    rejects(blob, ZipStructureError, "but the end of central directory record starts at")


# --- entry headers ---------------------------------------------------------------


def test_flipped_byte_in_local_header() -> None:
    blob = build()
    at = local_offset(blob, "two.bin") + L_VERSION
    blob = patch(blob, at, "<H", 20)
    rejects(blob, ZipStructureError, "'two.bin': local header field 'version needed'",
            f"offset {at} is 20", "expected 10")  # fmt: skip


def test_flipped_byte_in_central_directory() -> None:
    blob = build()
    at = central_offsets(blob)["one.bin"] + C_MADE_BY
    blob = patch(blob, at, "<H", 0x031E)
    rejects(blob, ZipStructureError, "'one.bin': central directory field 'version made by'",
            f"offset {at}", "expected 788 (0x0314)")  # fmt: skip


def test_local_crc_disagrees_with_central_directory() -> None:
    blob = build()
    blob = patch(blob, local_offset(blob, "one.bin") + L_CRC, "<I", 0)
    rejects(blob, ZipStructureError, "local header field 'crc32'")


def test_local_name_disagrees_with_central_directory() -> None:
    blob = build()
    at = local_offset(blob, "two.bin") + 30
    blob = blob[:at] + b"TWO.bin" + blob[at + 7 :]
    rejects(blob, ZipStructureError, "names it 'TWO.bin', but the central directory record")


def test_compressed_entry() -> None:
    blob = patch_both(build(), "one.bin", L_METHOD, C_METHOD, 8)
    rejects(blob, ZipStructureError, "compressed entry 'one.bin' (method 8",
            "bundles store entries uncompressed")  # fmt: skip


def test_compressed_entry_in_local_header_only() -> None:
    blob = build()
    blob = patch(blob, local_offset(blob, "one.bin") + L_METHOD, "<H", 8)
    rejects(blob, ZipStructureError, "compressed entry 'one.bin' (method 8, local header")


def test_data_descriptor_flag() -> None:
    blob = patch_both(build(), "two.bin", L_FLAGS, C_FLAGS, 0x0808)
    rejects(blob, ZipStructureError, "'two.bin' uses a data descriptor", "bit 3")


def test_encrypted_flag() -> None:
    blob = patch_both(build(), "two.bin", L_FLAGS, C_FLAGS, 0x0801)
    rejects(blob, ZipStructureError, "'two.bin' is encrypted", "bit 0")


def test_non_utf8_flags() -> None:
    blob = patch_both(build(), "two.bin", L_FLAGS, C_FLAGS, 0x0000)
    rejects(blob, ZipStructureError, "general purpose flags 0x0000", "expected 0x0800")


def set_mode(blob: bytes, name: str, mode: int) -> bytes:
    return patch(blob, central_offsets(blob)[name] + C_EXTERNAL, "<I", mode << 16)


def test_symlink_entry() -> None:
    rejects(set_mode(build(), "one.bin", 0o120777), UnsafeEntryError,
            "'one.bin' is a symlink", "0o120777")  # fmt: skip


def test_directory_entry() -> None:
    rejects(set_mode(build(), "one.bin", 0o040755), UnsafeEntryError, "'one.bin' is a directory")
    rejects(named("zz/z/"), UnsafeEntryError, "ends with '/', a directory entry")


def test_device_entry() -> None:
    rejects(set_mode(build(), "one.bin", 0o020644), UnsafeEntryError, "not a regular file")


def test_wrong_permissions() -> None:
    rejects(set_mode(build(), "one.bin", 0o100755), ZipStructureError,
            "external attributes 0x81ed0000", "mode 0o100644")  # fmt: skip


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("/z/zz", "is an absolute path"),
        ("C:/zz", "Windows drive letter"),
        ("zz\\zz", "backslash"),
        ("../zz", "'..' segment"),
        ("z/../", "ends with '/'"),
        ("./zzz", "'.' path segment"),
        ("zz//z", "empty path segment"),
        ("zz\x00zz", "NUL"),
    ],
)
def test_unsafe_names(name: str, fragment: str) -> None:
    rejects(named(name), UnsafeEntryError, fragment)


def test_absolute_path() -> None:
    rejects(named("/z/zz"), UnsafeEntryError, "'/z/zz' is an absolute path")


def test_dotdot_path() -> None:
    rejects(named("../zz"), UnsafeEntryError, "'../zz' has a '..' segment")


def test_backslash_path() -> None:
    rejects(named("z\\zzz"), UnsafeEntryError, "contains a backslash")


def test_invalid_utf8_name() -> None:
    blob = build([("zz/zz", b"")])
    buf = bytearray(blob)
    for at in (local_offset(blob, "zz/zz") + 30, central_offsets(blob)["zz/zz"] + 46):
        buf[at] = 0xFF
    rejects(bytes(buf), UnsafeEntryError, "not valid UTF-8")


def test_duplicate_entry() -> None:
    blob = rename(build([("one", b"1"), ("two", b"2")]), "two", "one")
    rejects(blob, UnsafeEntryError, "duplicate entry name 'one'")


def test_case_duplicate_entry() -> None:
    blob = rename(build([("one", b"1"), ("two", b"2")]), "two", "ONE")
    rejects(blob, UnsafeEntryError, "'one' and 'ONE' differ only by case")


def test_entry_named_like_mimetype() -> None:
    blob = rename(build([("XIMETYPE", b"")]), "XIMETYPE", "MimeType")
    rejects(blob, UnsafeEntryError, "'mimetype' and 'MimeType' differ only by case")


def test_gap_between_entries() -> None:
    blob = build()
    end = local_offset(blob, "two.bin")  # right after one.bin's data
    rejects(insert_gap(blob, end, 64), ZipStructureError,
            "gap of 64 bytes between the data of 'one.bin'", f"ends at offset {end}")  # fmt: skip


def test_gap_before_central_directory() -> None:
    blob = build()
    message = rejects(insert_gap(blob, cd_offset_of(blob), 64), ZipStructureError)
    assert "gap of 64 bytes between the data of 'three.bin'" in message
    assert "and the central directory" in message


def test_overlapping_entries() -> None:
    blob = build()
    one = local_offset(blob, "one.bin")
    blob = patch(blob, central_offsets(blob)["two.bin"] + C_OFFSET, "<I", one)
    rejects(blob, ZipStructureError, "'two.bin' overlaps the preceding entry 'one.bin'")


def test_entry_data_runs_into_central_directory() -> None:
    blob = build()
    for field in (20, 24):  # compressed and uncompressed size of the last entry
        blob = patch(blob, central_offsets(blob)["three.bin"] + field, "<I", 1000)
    rejects(blob, ZipStructureError, "'three.bin'", "runs past the start of the central")


def test_alignment_padding_not_zero() -> None:
    blob = build()
    header = local_offset(blob, "two.bin")
    at = header + 30 + len("two.bin") + 6  # first padding byte
    rejects(patch(blob, at, "<B", 1), ZipStructureError, f"padding byte at offset {at} is 0x01")


def test_alignment_value_not_64() -> None:
    blob = build()
    at = local_offset(blob, "two.bin") + 30 + len("two.bin") + 4
    rejects(patch(blob, at, "<H", 4), ZipStructureError,
            "alignment extra field 'alignment'", "is 4 (0x0004), expected 64")  # fmt: skip


def test_mismatched_timestamps() -> None:
    blob = build()
    time = DATE_TIME[0] ^ 1
    blob = patch(blob, central_offsets(blob)["two.bin"] + 12, "<H", time)
    blob = patch(blob, local_offset(blob, "two.bin") + 10, "<H", time)
    rejects(blob, ZipStructureError, "'two.bin': central directory field 'modification time'")


def test_mimetype_with_extra_field() -> None:
    rejects(patch(build(), 28, "<H", 4), ZipStructureError, "'mimetype' local header has an extra")


def test_mimetype_crc_wrong() -> None:
    rejects(patch(build(), 14, "<I", 0), ZipStructureError, "'mimetype' local header's crc32")


def test_corrupt_media_type_is_not_taken_for_a_new_version() -> None:
    blob = bytearray(build())
    blob[38 + len(MEDIA_TYPE_V1) - 5] = ord("2")  # ...v1+zip -> ...v2+zip
    rejects(bytes(blob), ZipStructureError, "the file is corrupt")


# --- every byte ------------------------------------------------------------------


def test_every_header_byte_flip_is_detected() -> None:
    """Flipping any bit of any byte outside entry data breaks read_layout.

    The crc32 fields are included: each is cross-checked against its other copy
    (or, for 'mimetype', against the media type).
    """
    blob = build([*SAMPLE, ("four.bin", b"4" * 64)])
    layout = read(blob)
    data = {i for e in layout.entries for i in range(e.data_offset, e.data_offset + e.size)}
    positions = [i for i in range(len(blob)) if i not in data]
    assert len(positions) > 400
    for position in positions:
        for mask in (0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xFF):
            flipped = bytearray(blob)
            flipped[position] ^= mask
            with pytest.raises(BundleFormatError):
                read(bytes(flipped))


def test_data_byte_flip_is_left_to_the_crc() -> None:
    """read_layout never reads entry data; the bundle layer's crc32 check catches it."""
    blob = build()
    layout = read(blob)
    entry = layout.entries[0]
    flipped = bytearray(blob)
    flipped[entry.data_offset] ^= 0x01
    assert read(bytes(flipped)) == layout
    stored = flipped[entry.data_offset : entry.data_offset + entry.size]
    assert zlib.crc32(stored) != entry.crc32


@pytest.mark.parametrize("names", [("a/b", "a/b/c"), ("a/b/c", "a/b"), ("A/b", "a/b/c")])
def test_writer_refuses_file_and_folder_with_the_same_path(names: tuple[str, str]) -> None:
    writer = AlignedZipWriter(io.BytesIO(), media_type=MEDIA_TYPE_V1, date_time=dos_datetime(0))
    writer.add_bytes(names[0], b"x")
    with pytest.raises(UnsafeEntryError, match="folder"):
        writer.add_bytes(names[1], b"y")
