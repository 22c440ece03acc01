package dev.aoepack.internal.zip;

import dev.aoepack.AoeException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32;

/**
 * The strict reader of the canonical v1 container (docs/format.md §3, §4, §8
 * step 2): headers only, never entry data, in the reference's order
 * ({@code aoe_pack/bundle/_zipread.py}) and with its error codes.
 *
 * <p>Every header byte is compared with a constant, with the matching byte of
 * the other copy (central directory against local header), or re-derived from
 * the layout (offsets, padding, sizes). Memory: the first 128 bytes, a window
 * of the central directory, one local header at a time.
 * Internal: not part of the library's API.
 */
public final class LayoutReader {
  public static final String MEDIA_TYPE_V1 = "application/vnd.aoe.bundle.v1+zip";
  static final byte[] MEDIA_TYPE_PREFIX = ascii("application/vnd.aoe.bundle.");
  static final byte[] MIMETYPE = ascii("mimetype");
  static final int HEAD_BYTES = 128;
  static final int MIMETYPE_DATA_OFFSET = 38;
  static final int MAX_MEDIA_TYPE_BYTES = HEAD_BYTES - MIMETYPE_DATA_OFFSET;
  static final int LEGACY_MIN_SIZE = 21;
  static final long LOCAL_SIG = 0x04034B50L;
  static final long CENTRAL_SIG = 0x02014B50L;
  static final long EOCD_SIG = 0x06054B50L;
  static final int LOCAL_SIZE = 30;
  static final int CENTRAL_SIZE = 46;
  static final int EOCD_SIZE = 22;
  static final int VERSION_NEEDED = 10;
  static final int VERSION_MADE_BY = 0x0314;
  static final int FLAGS_UTF8 = 0x0800;
  static final long EXTERNAL_ATTRS = 0x81A40000L;
  static final int ALIGNMENT = 64;
  static final int ALIGNMENT_EXTRA_ID = 0xD935;
  static final long U32_SENTINEL = 0xFFFFFFFFL;
  static final int U16_SENTINEL = 0xFFFF;

  private final Source source;
  private final long fileSize;
  private final int maxEntries;

  private LayoutReader(Source source, int maxEntries) {
    this.source = source;
    this.fileSize = source.size();
    this.maxEntries = maxEntries;
  }

  /**
   * Parses and verifies the container of {@code source}; {@code maxEntries}
   * counts entries besides {@code mimetype}. Throws the code of the first
   * deviation ({@code not-a-bundle}, {@code legacy-aoe-format}, {@code
   * zip-structure}, {@code unsupported-version}, {@code limit-exceeded},
   * {@code unsafe-entry}); an {@link IOException} when the bytes cannot be read.
   */
  public static BundleLayout read(Source source, int maxEntries) throws AoeException, IOException {
    return new LayoutReader(source, maxEntries).read();
  }

  private BundleLayout read() throws AoeException, IOException {
    byte[] head = readAt(0, (int) Math.min(fileSize, HEAD_BYTES), "the file header");
    String mediaType = checkMagic(head);
    long[] end = readEnd();
    return walk((int) end[0], end[1], end[2], mediaType);
  }

  // --- magic (§3, §8 step 2.1-2.2) ----------------------------------------------

  private String checkMagic(byte[] head) throws AoeException {
    if (fileSize == 0) {
      throw new AoeException("not-a-bundle", "empty file (0 bytes); not an .aoe bundle");
    }
    if (!startsWith(head, 0, new byte[] {0x50, 0x4B, 0x03, 0x04})) {
      notAZipBundle(head);
    }
    if (!(head.length >= 38
        && u16(head, 26) == 8
        && startsWith(head, 30, MIMETYPE))) {
      if (fileSize < MIMETYPE_DATA_OFFSET) {
        throw structure(
            "file is truncated: " + fileSize + " bytes cannot hold the 'mimetype' header");
      }
      throw new AoeException(
          "not-a-bundle",
          "not an .aoe bundle: this is a plain ZIP archive (its first entry is not 'mimetype' at"
              + " byte 30)");
    }
    int found = head.length - MIMETYPE_DATA_OFFSET;
    if (!startsWith(head, MIMETYPE_DATA_OFFSET, MEDIA_TYPE_PREFIX)) {
      boolean prefixOfPrefix =
          found < MEDIA_TYPE_PREFIX.length
              && regionEquals(head, MIMETYPE_DATA_OFFSET, MEDIA_TYPE_PREFIX, 0, found);
      if (prefixOfPrefix && head.length == fileSize) {
        throw structure("file is truncated in the media type (" + fileSize + " bytes)");
      }
      throw new AoeException(
          "not-a-bundle",
          "not an .aoe bundle: a plain ZIP archive whose 'mimetype' does not start with"
              + " 'application/vnd.aoe.bundle.'");
    }
    int extra = u16(head, 28);
    if (extra != 0) {
      throw structure(
          "the 'mimetype' local header has an extra field ("
              + extra
              + " bytes, field at offset 28); it must have none so the media type starts at byte"
              + " 38");
    }
    long size = u32(head, 18);
    if (size > MAX_MEDIA_TYPE_BYTES) {
      throw structure(
          "the 'mimetype' entry is "
              + size
              + " bytes (compressed size at offset 18); a media type is at most "
              + MAX_MEDIA_TYPE_BYTES
              + " bytes");
    }
    if (MIMETYPE_DATA_OFFSET + size > fileSize) {
      throw structure("file is truncated in the media type (" + fileSize + " bytes)");
    }
    CRC32 crc = new CRC32();
    crc.update(head, MIMETYPE_DATA_OFFSET, (int) size);
    String mediaType = new String(head, MIMETYPE_DATA_OFFSET, (int) size, StandardCharsets.ISO_8859_1);
    if (u32(head, 14) != crc.getValue()) {
      throw structure(
          "the 'mimetype' local header's crc32 (offset 14) does not match its media type; the file"
              + " is corrupt");
    }
    if (!mediaType.equals(MEDIA_TYPE_V1)) {
      throw new AoeException(
          "unsupported-version",
          "the bundle is another format version (media type '"
              + mediaType
              + "'); this library reads "
              + MEDIA_TYPE_V1
              + ": upgrade it to read newer bundles");
    }
    return mediaType;
  }

  private void notAZipBundle(byte[] head) throws AoeException {
    if (head[0] == 0x01 && fileSize >= LEGACY_MIN_SIZE) {
      throw new AoeException(
          "legacy-aoe-format",
          "not an .aoe bundle: this looks like a legacy AoE atenc v1 encrypted model (first byte"
              + " 0x01); rebuild it from the original model with `aoe-pack build`");
    }
    if (startsWith(head, 0, new byte[] {0x50, 0x4B, 0x05, 0x06})) {
      throw new AoeException("not-a-bundle", "not an .aoe bundle: this is an empty plain ZIP archive");
    }
    throw new AoeException(
        "not-a-bundle",
        "not an .aoe bundle: expected the ZIP signature 50 4b 03 04 and a 'mimetype' entry");
  }

  // --- end of central directory (§4.6, §8 step 2.3) -------------------------------

  /** {entry count, central directory size, central directory offset}. */
  private long[] readEnd() throws AoeException, IOException {
    long at = fileSize - EOCD_SIZE;
    if (at < 0) {
      throw structure("file is truncated: " + fileSize + " bytes cannot hold a ZIP archive");
    }
    byte[] end = readAt(at, EOCD_SIZE, "the end of central directory record");
    if (u32(end, 0) != EOCD_SIG) {
      throw structure(
          "no end of central directory record at the end of the file (offset "
              + at
              + "): the file is truncated, or has trailing data or a ZIP comment; a bundle ends"
              + " exactly with that 22-byte record");
    }
    int disk = u16(end, 4);
    int cdDisk = u16(end, 6);
    int onDisk = u16(end, 8);
    int count = u16(end, 10);
    long cdSize = u32(end, 12);
    long cdOffset = u32(end, 16);
    int comment = u16(end, 20);
    String where = "end of central directory at offset " + at;
    if (comment != 0) {
      throw structure(where + " declares a " + comment + "-byte ZIP comment; bundles have none");
    }
    if (disk != 0 || cdDisk != 0) {
      throw structure(where + ": disk numbers " + disk + " and " + cdDisk + ", expected 0 and 0");
    }
    if (onDisk != count) {
      throw structure(where + ": " + onDisk + " entries on this disk but " + count + " in total");
    }
    if (count == U16_SENTINEL || cdSize == U32_SENTINEL || cdOffset == U32_SENTINEL) {
      throw new AoeException(
          "limit-exceeded", where + " has ZIP64 markers; ZIP64 is not supported in format v1");
    }
    if (count == 0) {
      throw structure(where + " lists no entries; 'mimetype' must be the first");
    }
    if (count - 1 > maxEntries) {
      throw new AoeException(
          "limit-exceeded",
          "the bundle has " + (count - 1) + " entries besides 'mimetype'; the limit is " + maxEntries);
    }
    if (cdOffset + cdSize != at) {
      throw structure(
          "the central directory (offset "
              + cdOffset
              + ", "
              + cdSize
              + " bytes) ends at "
              + (cdOffset + cdSize)
              + ", but the end of central directory record starts at "
              + at);
    }
    if (cdSize < (long) CENTRAL_SIZE * count
        || cdSize > (long) (CENTRAL_SIZE + EntryNames.MAX_NAME_BYTES) * count) {
      throw structure(
          where + ": a central directory of " + cdSize + " bytes cannot hold " + count + " records");
    }
    return new long[] {count, cdSize, cdOffset};
  }

  // --- entries (§4.3-§4.7, §8 step 2.4-2.5) ----------------------------------------

  private BundleLayout walk(int count, long cdSize, long cdOffset, String mediaType)
      throws AoeException, IOException {
    Window directory = new Window(cdOffset, cdSize);
    List<ZipEntry> entries = new ArrayList<ZipEntry>();
    EntryNames names = new EntryNames();
    int time = 0;
    int date = 0;
    long pos = 0;
    long nextOffset = 0;
    for (int index = 0; index < count; index++) {
      long at = cdOffset + pos;
      if (pos + CENTRAL_SIZE > cdSize) {
        throw structure(
            "central directory record " + index + " at offset " + at
                + " runs past the end of the central directory");
      }
      byte[] fixed = directory.get(pos, CENTRAL_SIZE);
      if (u32(fixed, 0) != CENTRAL_SIG) {
        throw structure("central directory record " + index + " at offset " + at + ": bad signature");
      }
      int nameLength = u16(fixed, 28);
      long length = (long) CENTRAL_SIZE + nameLength + u16(fixed, 30) + u16(fixed, 32);
      if (pos + length > cdSize) {
        throw structure(
            "central directory record " + index + " at offset " + at + " (" + length
                + " bytes) runs past the end of the central directory");
      }
      byte[] rawName = directory.get(pos + CENTRAL_SIZE, nameLength);
      String name = decodeName(rawName, at + CENTRAL_SIZE);
      int flags = u16(fixed, 8);
      int method = u16(fixed, 10);
      long crc = u32(fixed, 16);
      long packed = u32(fixed, 20);
      long size = u32(fixed, 24);
      long attrs = u32(fixed, 38);
      long headerOffset = u32(fixed, 42);
      if (index == 0) {
        if (!name.equals("mimetype")) {
          throw structure(
              "the first central directory record (offset " + at + ") is " + EntryNames.quote(name)
                  + "; it must be 'mimetype'");
        }
        time = u16(fixed, 12);
        date = u16(fixed, 14);
        String problem = dosDateTimeProblem(time, date);
        if (problem != null) {
          throw structure("entry 'mimetype' (central directory offset " + at + "): " + problem);
        }
      }
      names.add(name);
      String where = "central directory record at offset " + at;
      checkAttrs(name, attrs, where);
      checkMethodFlags(name, method, flags, where);
      if (size == U32_SENTINEL || packed == U32_SENTINEL || headerOffset == U32_SENTINEL) {
        throw new AoeException(
            "limit-exceeded",
            "entry " + EntryNames.quote(name) + " (" + where
                + ") has a ZIP64 marker in its sizes or offset; ZIP64 is not supported in format v1");
      }
      checkContiguous(name, headerOffset, nextOffset, entries);
      int padding = (int) ((ALIGNMENT - (headerOffset + LOCAL_SIZE + nameLength + 6) % ALIGNMENT) % ALIGNMENT);
      int extraLength = index == 0 ? 0 : 6 + padding;
      long dataOffset = headerOffset + LOCAL_SIZE + nameLength + extraLength;
      if (dataOffset + size > cdOffset) {
        throw structure(
            "entry " + EntryNames.quote(name) + " (data at offset " + dataOffset + ", " + size
                + " bytes) runs past the start of the central directory at offset " + cdOffset);
      }
      checkCentral(name, fixed, crc, size, time, date, headerOffset, at);
      byte[] local =
          readAt(headerOffset, LOCAL_SIZE + nameLength + extraLength, "the local header of " + EntryNames.quote(name));
      checkLocal(name, rawName, local, crc, size, time, date, extraLength, headerOffset);
      entries.add(new ZipEntry(name, headerOffset, dataOffset, size, crc));
      nextOffset = dataOffset + size;
      pos += length;
    }
    if (pos != cdSize) {
      throw structure(
          (cdSize - pos) + " unexpected bytes after the last central directory record, at offset "
              + (cdOffset + pos));
    }
    if (nextOffset != cdOffset) {
      throw structure(
          "gap of " + (cdOffset - nextOffset) + " bytes between the data of "
              + EntryNames.quote(entries.get(entries.size() - 1).name)
              + " and the central directory at offset " + cdOffset);
    }
    return new BundleLayout(mediaType, entries.subList(1, entries.size()), time, date, fileSize);
  }

  static String dosDateTimeProblem(int time, int date) {
    int hour = time >> 11;
    int minute = (time >> 5) & 0x3F;
    int second = (time & 0x1F) * 2;
    int month = (date >> 5) & 0x0F;
    int day = date & 0x1F;
    if (hour > 23 || minute > 59 || second > 59) {
      return String.format("DOS time 0x%04x is not a valid time (%02d:%02d:%02d)", time, hour, minute, second);
    }
    if (month < 1 || month > 12 || day < 1 || day > 31) {
      return String.format("DOS date 0x%04x is not a valid date (month %d, day %d)", date, month, day);
    }
    return null;
  }

  private static String decodeName(byte[] raw, long offset) throws AoeException {
    try {
      return StandardCharsets.UTF_8
          .newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(ByteBuffer.wrap(raw))
          .toString();
    } catch (CharacterCodingException e) {
      throw new AoeException(
          "unsafe-entry", "the entry name at offset " + offset + " is not valid UTF-8", e);
    }
  }

  private static void checkAttrs(String name, long attrs, String where) throws AoeException {
    long mode = attrs >>> 16;
    long kind = mode & 0170000L;
    if (kind == 0120000L) {
      throw new AoeException(
          "unsafe-entry",
          "entry " + EntryNames.quote(name) + " is a symlink (Unix mode 0o" + Long.toOctalString(mode)
              + " in the external attributes of its " + where + "); bundles hold only regular files");
    }
    if (kind == 0040000L) {
      throw new AoeException(
          "unsafe-entry",
          "entry " + EntryNames.quote(name) + " is a directory (" + where
              + "); bundles hold only regular files");
    }
    if (kind != 0100000L) {
      throw new AoeException(
          "unsafe-entry",
          "entry " + EntryNames.quote(name) + " is not a regular file (Unix mode 0o"
              + Long.toOctalString(mode) + ", " + where + ")");
    }
    if (attrs != EXTERNAL_ATTRS) {
      throw structure(
          "entry " + EntryNames.quote(name) + ": external attributes 0x" + Long.toHexString(attrs)
              + " (" + where + "), expected 0x81a40000 (a regular file with mode 0o100644)");
    }
  }

  private static void checkMethodFlags(String name, int method, int flags, String where)
      throws AoeException {
    String n = EntryNames.quote(name);
    if (method != 0) {
      throw structure(
          "compressed entry " + n + " (method " + method + ", " + where
              + "); bundles store entries uncompressed (method 0)");
    }
    if ((flags & 0x0001) != 0) {
      throw structure("entry " + n + " is encrypted (general purpose flag bit 0, " + where + ")");
    }
    if ((flags & 0x0008) != 0) {
      throw structure("entry " + n + " uses a data descriptor (general purpose flag bit 3, " + where + ")");
    }
    if (flags != FLAGS_UTF8) {
      throw structure(
          "entry " + n + ": general purpose flags 0x" + Integer.toHexString(flags) + " (" + where
              + "), expected 0x0800 (UTF-8 names and nothing else)");
    }
  }

  private static void checkContiguous(String name, long offset, long expected, List<ZipEntry> entries)
      throws AoeException {
    if (offset == expected) {
      return;
    }
    if (entries.isEmpty()) {
      throw structure("the 'mimetype' local header is at offset " + offset + "; it must be at offset 0");
    }
    String previous = EntryNames.quote(entries.get(entries.size() - 1).name);
    if (offset > expected) {
      throw structure(
          "gap of " + (offset - expected) + " bytes between the data of " + previous
              + " and the local header of " + EntryNames.quote(name) + "; entries must be contiguous");
    }
    throw structure(
        "entry " + EntryNames.quote(name) + " overlaps the preceding entry " + previous);
  }

  /** The central record's fixed fields against the canonical record (§4.5). */
  private static void checkCentral(
      String name, byte[] f, long crc, long size, int time, int date, long headerOffset, long at)
      throws AoeException {
    // (field, offset, width, expected); in the record's order, the first mismatch is reported
    Object[][] fields = {
      {"signature", 0, 4, CENTRAL_SIG},
      {"version made by", 4, 2, (long) VERSION_MADE_BY},
      {"version needed", 6, 2, (long) VERSION_NEEDED},
      {"flags", 8, 2, (long) FLAGS_UTF8},
      {"method", 10, 2, 0L},
      {"modification time", 12, 2, (long) time},
      {"modification date", 14, 2, (long) date},
      {"crc32", 16, 4, crc},
      {"compressed size", 20, 4, size},
      {"uncompressed size", 24, 4, size},
      {"name length", 28, 2, (long) u16(f, 28)},
      {"extra length", 30, 2, 0L},
      {"comment length", 32, 2, 0L},
      {"disk number start", 34, 2, 0L},
      {"internal attributes", 36, 2, 0L},
      {"external attributes", 38, 4, EXTERNAL_ATTRS},
      {"local header offset", 42, 4, headerOffset},
    };
    String mismatch = firstMismatch(fields, f, 0, at);
    if (mismatch != null) {
      throw structure("entry " + EntryNames.quote(name) + ": central directory " + mismatch);
    }
  }

  /** The local header, name and alignment extra against the canonical bytes (§4.3, §4.4). */
  private static void checkLocal(
      String name, byte[] rawName, byte[] found, long crc, long size, int time, int date,
      int extraLength, long offset)
      throws AoeException {
    String where = "local header at offset " + offset;
    String n = EntryNames.quote(name);
    if (u32(found, 0) != LOCAL_SIG) {
      throw structure("entry " + n + ": no local header at offset " + offset);
    }
    checkMethodFlags(name, u16(found, 8), u16(found, 6), where);
    Object[][] fields = {
      {"signature", 0, 4, LOCAL_SIG},
      {"version needed", 4, 2, (long) VERSION_NEEDED},
      {"flags", 6, 2, (long) FLAGS_UTF8},
      {"method", 8, 2, 0L},
      {"modification time", 10, 2, (long) time},
      {"modification date", 12, 2, (long) date},
      {"crc32", 14, 4, crc},
      {"compressed size", 18, 4, size},
      {"uncompressed size", 22, 4, size},
      {"name length", 26, 2, (long) rawName.length},
      {"extra length", 28, 2, (long) extraLength},
    };
    String mismatch = firstMismatch(fields, found, 0, offset);
    if (mismatch != null) {
      throw structure("entry " + n + ": local header " + mismatch);
    }
    if (!regionEquals(found, LOCAL_SIZE, rawName, 0, rawName.length)) {
      throw structure(
          "entry " + n + ": the " + where + " names it otherwise than its central directory record");
    }
    if (extraLength == 0) {
      return; // 'mimetype' has no extra field
    }
    int extraAt = LOCAL_SIZE + rawName.length;
    Object[][] extra = {
      {"header id", 0, 2, (long) ALIGNMENT_EXTRA_ID},
      {"data size", 2, 2, (long) (extraLength - 4)},
      {"alignment", 4, 2, (long) ALIGNMENT},
    };
    mismatch = firstMismatch(extra, found, extraAt, offset + extraAt);
    if (mismatch != null) {
      throw structure("entry " + n + ": alignment extra " + mismatch);
    }
    for (int i = extraAt + 6; i < found.length; i++) {
      if (found[i] != 0) {
        throw structure(
            "entry " + n + ": alignment padding byte at offset " + (offset + i) + " is 0x"
                + Integer.toHexString(found[i] & 0xff) + ", expected 0x00");
      }
    }
  }

  private static String firstMismatch(Object[][] fields, byte[] b, int base, long at) {
    for (Object[] field : fields) {
      int offset = (Integer) field[1];
      int width = (Integer) field[2];
      long want = (Long) field[3];
      long have = width == 2 ? u16(b, base + offset) : u32(b, base + offset);
      if (want != have) {
        return "field '" + field[0] + "' at offset " + (at + offset) + " is " + have + ", expected " + want;
      }
    }
    return null;
  }

  // --- bytes -------------------------------------------------------------------

  private byte[] readAt(long offset, int size, String what) throws AoeException, IOException {
    byte[] out = new byte[size];
    int n = offset > fileSize ? 0 : source.read(offset, out, 0, size);
    if (n != size) {
      throw structure(
          "file is truncated: " + what + " needs " + size + " bytes at offset " + offset + ", only "
              + n + " could be read");
    }
    return out;
  }

  /** A moving window over the central directory, so it is never held whole. */
  private final class Window {
    private static final int SIZE = 1 << 17; // > one record: 46 + 3 * 65535 is not, so grow if needed
    private final long start;
    private final long length;
    private byte[] buf = new byte[0];
    private long bufAt;

    Window(long start, long length) {
      this.start = start;
      this.length = length;
    }

    byte[] get(long pos, int len) throws AoeException, IOException {
      if (pos < bufAt || pos + len > bufAt + buf.length) {
        int want = (int) Math.min(Math.max(SIZE, len), length - pos);
        buf = readAt(start + pos, want, "the central directory");
        bufAt = pos;
      }
      byte[] out = new byte[len];
      System.arraycopy(buf, (int) (pos - bufAt), out, 0, len);
      return out;
    }
  }

  static int u16(byte[] b, int at) {
    return (b[at] & 0xff) | (b[at + 1] & 0xff) << 8;
  }

  static long u32(byte[] b, int at) {
    return (u16(b, at) | (long) u16(b, at + 2) << 16) & 0xFFFFFFFFL;
  }

  private static boolean startsWith(byte[] b, int at, byte[] prefix) {
    return b.length - at >= prefix.length && regionEquals(b, at, prefix, 0, prefix.length);
  }

  private static boolean regionEquals(byte[] a, int aAt, byte[] b, int bAt, int len) {
    if (aAt + len > a.length || bAt + len > b.length) {
      return false;
    }
    for (int i = 0; i < len; i++) {
      if (a[aAt + i] != b[bAt + i]) {
        return false;
      }
    }
    return true;
  }

  private static byte[] ascii(String s) {
    return s.getBytes(StandardCharsets.US_ASCII);
  }

  private static AoeException structure(String message) {
    return new AoeException("zip-structure", message);
  }
}
