package dev.aoepack.internal.crypto;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A strict DER reader for the few structures key files hold (PKCS#8, SPKI,
 * PBES2): definite lengths in their shortest form, low tag numbers, minimal
 * non-negative INTEGERs, no bytes after the value. Anything else is a {@link
 * DerException}, as in {@code aoe-pack}: a key file two parsers could read
 * differently must not be a key file. Internal.
 */
final class Der {
  static final int INTEGER = 0x02;
  static final int BIT_STRING = 0x03;
  static final int OCTET_STRING = 0x04;
  static final int NULL = 0x05;
  static final int OBJECT_IDENTIFIER = 0x06;
  static final int SEQUENCE = 0x30;

  /** The bytes are not the DER structure expected; the message says what. */
  static final class DerException extends Exception {
    private static final long serialVersionUID = 1L;

    DerException(String message) {
      super(message);
    }
  }

  /** One value: its tag, its content and its whole encoding. */
  static final class Value {
    final int tag;
    private final byte[] buf;
    private final int from;
    private final int start;
    private final int end;

    Value(int tag, byte[] buf, int from, int start, int end) {
      this.tag = tag;
      this.buf = buf;
      this.from = from;
      this.start = start;
      this.end = end;
    }

    byte[] content() {
      return Arrays.copyOfRange(buf, start, end);
    }

    int length() {
      return end - start;
    }

    /** Tag, length and content. */
    byte[] der() {
      return Arrays.copyOfRange(buf, from, end);
    }

    boolean derEquals(byte[] encoded) {
      return Arrays.equals(der(), encoded);
    }
  }

  private Der() {}

  private static Value read(byte[] buf, int at, int limit) throws DerException {
    if (limit - at < 2) {
      throw new DerException("truncated DER value at byte " + at);
    }
    int tag = buf[at] & 0xff;
    int first = buf[at + 1] & 0xff;
    if ((tag & 0x1f) == 0x1f) {
      throw new DerException("unsupported high tag number form at byte " + at);
    }
    int start = at + 2;
    long length;
    if (first < 0x80) {
      length = first;
    } else if (first == 0x80) {
      throw new DerException("indefinite length at byte " + at + " (BER, not DER)");
    } else {
      int size = first & 0x7f;
      if (size > 4 || limit - start < size) {
        throw new DerException("bad length field at byte " + at);
      }
      if (buf[start] == 0) {
        throw new DerException("length at byte " + at + " is not in its shortest form");
      }
      length = 0;
      for (int i = 0; i < size; i++) {
        length = length << 8 | (buf[start + i] & 0xff);
      }
      if (length < 0x80) {
        throw new DerException("length at byte " + at + " is not in its shortest form");
      }
      start += size;
    }
    if (length > limit - start) {
      throw new DerException("value at byte " + at + " runs past the end of its container");
    }
    return new Value(tag, buf, at, start, start + (int) length);
  }

  /** The single value that is all of {@code data}, with tag {@code tag}. */
  static Value decode(byte[] data, int tag) throws DerException {
    Value v = read(data, 0, data.length);
    if (v.end != data.length) {
      throw new DerException((data.length - v.end) + " extra bytes after the DER value");
    }
    expect(v, tag);
    return v;
  }

  /** The elements of a SEQUENCE. */
  static List<Value> items(Value seq) throws DerException {
    expect(seq, SEQUENCE);
    List<Value> out = new ArrayList<Value>();
    int at = seq.start;
    while (at < seq.end) {
      Value v = read(seq.buf, at, seq.end);
      out.add(v);
      at = v.end;
    }
    return out;
  }

  /** The elements of a SEQUENCE: exactly one of each tag, in order. */
  static List<Value> children(Value seq, int... tags) throws DerException {
    List<Value> out = items(seq);
    if (out.size() != tags.length) {
      throw new DerException(
          "SEQUENCE has " + out.size() + " elements, expected " + tags.length);
    }
    for (int i = 0; i < tags.length; i++) {
      expect(out.get(i), tags[i]);
    }
    return out;
  }

  static void expect(Value v, int tag) throws DerException {
    if (v.tag != tag) {
      throw new DerException(
          "expected tag 0x" + Integer.toHexString(tag) + ", found 0x" + Integer.toHexString(v.tag));
    }
  }

  /** A non-negative INTEGER below 2^63, refusing non-minimal encodings. */
  static long toLong(Value v) throws DerException {
    expect(v, INTEGER);
    int n = v.length();
    if (n == 0 || (v.buf[v.start] & 0x80) != 0) {
      throw new DerException("INTEGER is empty or negative");
    }
    if (n > 1 && v.buf[v.start] == 0 && (v.buf[v.start + 1] & 0x80) == 0) {
      throw new DerException("INTEGER is not in its shortest form (not DER)");
    }
    if (n > 8 && !(n == 9 && v.buf[v.start] == 0)) {
      throw new DerException("INTEGER is too large");
    }
    long out = 0;
    for (int i = v.start; i < v.end; i++) {
      out = out << 8 | (v.buf[i] & 0xff);
    }
    if (out < 0) {
      throw new DerException("INTEGER is too large");
    }
    return out;
  }

  /** The encoded OBJECT IDENTIFIER (tag, length, body) of a dotted OID. */
  static byte[] oid(String dotted) {
    String[] parts = dotted.split("\\.");
    java.io.ByteArrayOutputStream body = new java.io.ByteArrayOutputStream();
    long[] arcs = new long[parts.length - 1];
    arcs[0] = 40 * Long.parseLong(parts[0]) + Long.parseLong(parts[1]);
    for (int i = 2; i < parts.length; i++) {
      arcs[i - 1] = Long.parseLong(parts[i]);
    }
    for (long arc : arcs) {
      int groups = 1;
      while ((arc >>> (7 * groups)) != 0) {
        groups++;
      }
      for (int g = groups - 1; g >= 0; g--) {
        int b = (int) ((arc >>> (7 * g)) & 0x7f);
        body.write(g == 0 ? b : b | 0x80);
      }
    }
    byte[] b = body.toByteArray();
    byte[] out = new byte[b.length + 2];
    out[0] = OBJECT_IDENTIFIER;
    out[1] = (byte) b.length;
    System.arraycopy(b, 0, out, 2, b.length);
    return out;
  }
}
