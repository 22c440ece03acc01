package dev.aoepack.internal;

import java.nio.charset.StandardCharsets;

/**
 * Strict base64 and lowercase hex, as the spec checks them (§2).
 *
 * <p>Not {@code java.util.Base64} (Android API 26+) nor {@code
 * android.util.Base64} (lenient): standard alphabet, padding required, no
 * whitespace. Non-canonical trailing bits decode here; the canonical
 * re-encoding of the envelope then refuses them, as the spec orders.
 * Internal: not part of the library's API.
 */
public final class Codec {
  private static final char[] ALPHABET =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".toCharArray();
  private static final int[] VALUE = new int[128];
  private static final char[] HEX = "0123456789abcdef".toCharArray();

  static {
    java.util.Arrays.fill(VALUE, -1);
    for (int i = 0; i < ALPHABET.length; i++) {
      VALUE[ALPHABET[i]] = i;
    }
  }

  private Codec() {}

  /** Decodes strict base64, or returns null if {@code s} is not valid base64. */
  public static byte[] base64(String s) {
    int n = s.length();
    if (n % 4 != 0) {
      return null;
    }
    int pad = 0;
    if (n > 0 && s.charAt(n - 1) == '=') {
      pad = s.charAt(n - 2) == '=' ? 2 : 1;
    }
    byte[] out = new byte[n / 4 * 3 - pad];
    int o = 0;
    for (int i = 0; i < n; i += 4) {
      int acc = 0;
      for (int j = 0; j < 4; j++) {
        char c = s.charAt(i + j);
        int v;
        if (c == '=' && i + 4 == n && j >= 4 - pad) {
          v = 0;
        } else if (c < 128 && VALUE[c] >= 0) {
          v = VALUE[c];
        } else {
          return null;
        }
        acc = (acc << 6) | v;
      }
      out[o++] = (byte) (acc >> 16);
      if (o < out.length) {
        out[o++] = (byte) (acc >> 8);
      }
      if (o < out.length) {
        out[o++] = (byte) acc;
      }
    }
    return out;
  }

  /** Standard base64 with padding. */
  public static String base64(byte[] b) {
    StringBuilder out = new StringBuilder((b.length + 2) / 3 * 4);
    for (int i = 0; i < b.length; i += 3) {
      int rest = b.length - i;
      int acc = (b[i] & 0xff) << 16;
      if (rest > 1) {
        acc |= (b[i + 1] & 0xff) << 8;
      }
      if (rest > 2) {
        acc |= b[i + 2] & 0xff;
      }
      out.append(ALPHABET[(acc >> 18) & 63]).append(ALPHABET[(acc >> 12) & 63]);
      out.append(rest > 1 ? ALPHABET[(acc >> 6) & 63] : '=');
      out.append(rest > 2 ? ALPHABET[acc & 63] : '=');
    }
    return out.toString();
  }

  /** Lowercase hex. */
  public static String hex(byte[] b) {
    char[] out = new char[b.length * 2];
    for (int i = 0; i < b.length; i++) {
      out[2 * i] = HEX[(b[i] >> 4) & 0xf];
      out[2 * i + 1] = HEX[b[i] & 0xf];
    }
    return new String(out);
  }

  /** Decodes lowercase hex, or returns null if {@code s} is not lowercase hex of even length. */
  public static byte[] unhex(String s) {
    if (s.length() % 2 != 0) {
      return null;
    }
    byte[] out = new byte[s.length() / 2];
    for (int i = 0; i < out.length; i++) {
      int hi = lower(s.charAt(2 * i));
      int lo = lower(s.charAt(2 * i + 1));
      if (hi < 0 || lo < 0) {
        return null;
      }
      out[i] = (byte) (hi << 4 | lo);
    }
    return out;
  }

  /** True for 64 lowercase hex digits (a SHA-256 or a key id). */
  public static boolean isHex64(String s) {
    return s.length() == 64 && unhex(s) != null;
  }

  private static int lower(char c) {
    if (c >= '0' && c <= '9') {
      return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
      return c - 'a' + 10;
    }
    return -1;
  }

  /** DSSE pre-authentication encoding (§6.2) of {@code body} under {@code payloadType}. */
  public static byte[] pae(String payloadType, byte[] body) {
    byte[] type = payloadType.getBytes(StandardCharsets.US_ASCII);
    byte[] head =
        ("DSSEv1 " + type.length + " " + payloadType + " " + body.length + " ")
            .getBytes(StandardCharsets.US_ASCII);
    byte[] out = new byte[head.length + body.length];
    System.arraycopy(head, 0, out, 0, head.length);
    System.arraycopy(body, 0, out, head.length, body.length);
    return out;
  }
}
