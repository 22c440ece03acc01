package dev.aoepack.net;

import dev.aoepack.AoeException;
import java.io.ByteArrayOutputStream;
import java.util.zip.CRC32;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * One gzip member (RFC 1952) inflated with a cap on what it inflates to (not API).
 *
 * <p>Not {@link java.util.zip.GZIPInputStream}: it reads a second member after the first as
 * more of the same document and skips some bytes after the end, where the specification
 * (docs/format.md §15.1, "Compression") wants a body that is exactly one complete member. The
 * header is read here and the deflate data by a raw {@link Inflater} (Android API 1), in bounded
 * steps that stop at the first byte past the cap ({@code download-too-large}): a few KiB that
 * inflate to gigabytes cost no more than the cap. Truncated, followed by more bytes, failing
 * its CRC-32 or its length, or not deflate: {@code download}.
 */
final class Gzip {
  private static final int FHCRC = 2;
  private static final int FEXTRA = 4;
  private static final int FNAME = 8;
  private static final int FCOMMENT = 16;
  private static final int STEP = 64 * 1024;

  private Gzip() {}

  /**
   * The most compressed bytes a document of {@code maxBytes} can honestly take: deflate adds at
   * most 5 bytes per stored block of 64 KiB, plus a header and trailer; 0.1 % and 1 KiB leave
   * room to spare (a header's name and comment inflate to nothing, so the inflated cap alone
   * cannot bound the wire).
   */
  static long compressedBound(long maxBytes) {
    return maxBytes + (maxBytes >> 10) + 1024;
  }

  /** The content of the one gzip member {@code body}, at most {@code limit} bytes. */
  static byte[] inflate(byte[] body, long limit, String url) throws AoeException {
    int at = header(body, url);
    Inflater inflater = new Inflater(true);
    try {
      inflater.setInput(body, at, body.length - at);
      ByteArrayOutputStream out = new ByteArrayOutputStream((int) Math.min(limit + 1, STEP));
      CRC32 crc = new CRC32();
      byte[] buffer = new byte[STEP];
      long have = 0;
      while (!inflater.finished()) {
        int room = (int) Math.max(1, Math.min(buffer.length, limit - have + 1));
        int n;
        try {
          n = inflater.inflate(buffer, 0, room);
        } catch (DataFormatException e) {
          throw new AoeException("download", url + ": the gzip body is corrupt: " + e.getMessage(), e);
        }
        have += n;
        if (have > limit) {
          throw new AoeException(
              "download-too-large", url + ": inflates to more than " + limit + " bytes (the cap); stopped");
        }
        out.write(buffer, 0, n);
        crc.update(buffer, 0, n);
        if (n == 0 && (inflater.needsInput() || inflater.needsDictionary())) {
          throw new AoeException("download", url + ": the gzip body ends before its end (truncated)");
        }
      }
      int trailer = body.length - inflater.getRemaining();
      if (body.length - trailer < 8) {
        throw new AoeException("download", url + ": the gzip body ends before its end (truncated)");
      }
      if (body.length - trailer > 8) {
        throw new AoeException("download", url + ": bytes after the end of the gzip stream");
      }
      if (le32(body, trailer) != crc.getValue() || le32(body, trailer + 4) != (have & 0xffffffffL)) {
        throw new AoeException("download", url + ": the gzip body is corrupt: its CRC-32 or length differs");
      }
      return out.toByteArray();
    } finally {
      inflater.end();
    }
  }

  /** Where the deflate data of {@code body} starts, after a checked gzip header. */
  private static int header(byte[] b, String url) throws AoeException {
    if (b.length < 10 || (b[0] & 0xff) != 0x1f || (b[1] & 0xff) != 0x8b || b[2] != 8) {
      throw new AoeException("download", url + ": the gzip body is corrupt: not a gzip header");
    }
    int flags = b[3] & 0xff;
    if ((flags & 0xe0) != 0) {
      throw new AoeException("download", url + ": the gzip body is corrupt: unknown header flags");
    }
    int at = 10;
    if ((flags & FEXTRA) != 0) {
      need(b, at + 2, url);
      at += 2 + ((b[at] & 0xff) | (b[at + 1] & 0xff) << 8);
    }
    if ((flags & FNAME) != 0) {
      at = pastZero(b, at, url);
    }
    if ((flags & FCOMMENT) != 0) {
      at = pastZero(b, at, url);
    }
    if ((flags & FHCRC) != 0) {
      need(b, at + 2, url);
      CRC32 crc = new CRC32();
      crc.update(b, 0, at);
      if ((crc.getValue() & 0xffff) != ((b[at] & 0xff) | (b[at + 1] & 0xff) << 8)) {
        throw new AoeException("download", url + ": the gzip body is corrupt: header CRC mismatch");
      }
      at += 2;
    }
    need(b, at, url);
    return at;
  }

  private static int pastZero(byte[] b, int at, String url) throws AoeException {
    while (at < b.length && b[at] != 0) {
      at++;
    }
    need(b, at + 1, url);
    return at + 1;
  }

  private static void need(byte[] b, int end, String url) throws AoeException {
    if (end > b.length) {
      throw new AoeException("download", url + ": the gzip body ends before its end (truncated)");
    }
  }

  private static long le32(byte[] b, int at) {
    return (b[at] & 0xffL) | (b[at + 1] & 0xffL) << 8 | (b[at + 2] & 0xffL) << 16 | (b[at + 3] & 0xffL) << 24;
  }
}
