package dev.aoepack.internal;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * Strict PEM (RFC 7468) as key files use it (§10.1): blocks and nothing else.
 *
 * <p>Only spaces, tabs, CR and LF may appear before, between and after the
 * blocks; any other byte outside a block, or on a BEGIN/END line, is refused.
 * Internal: not part of the library's API.
 */
public final class Pem {
  /** Key files are at most 1 MiB (§10). */
  public static final int MAX_KEY_FILE = 1 << 20;

  /** One decoded block: its label ({@code PUBLIC KEY}) and DER bytes. */
  public static final class Block {
    public final String label;
    public final byte[] der;

    Block(String label, byte[] der) {
      this.label = label;
      this.der = der;
    }
  }

  private Pem() {}

  /** The blocks of {@code text}, or null if it is not strictly a sequence of PEM blocks. */
  public static List<Block> blocks(byte[] text) {
    if (text.length > MAX_KEY_FILE) {
      return null;
    }
    for (byte b : text) {
      if (b < 0) {
        return null; // PEM is ASCII; a byte-order mark or other bytes are refused
      }
    }
    String s = new String(text, StandardCharsets.US_ASCII);
    List<Block> out = new ArrayList<Block>();
    String[] lines = s.split("\n", -1);
    String label = null;
    StringBuilder body = null;
    for (String raw : lines) {
      String line = raw.endsWith("\r") ? raw.substring(0, raw.length() - 1) : raw;
      if (label == null) {
        if (isBlank(line)) {
          continue;
        }
        if (!line.startsWith("-----BEGIN ") || !line.endsWith("-----") || line.length() < 17) {
          return null;
        }
        label = line.substring(11, line.length() - 5);
        if (!validLabel(label)) {
          return null;
        }
        body = new StringBuilder();
      } else if (line.startsWith("-----END ")) {
        if (!line.equals("-----END " + label + "-----")) {
          return null;
        }
        byte[] der = Codec.base64(body.toString());
        if (der == null || der.length == 0) {
          return null;
        }
        out.add(new Block(label, der));
        label = null;
        body = null;
      } else {
        for (int i = 0; i < line.length(); i++) {
          char c = line.charAt(i);
          if (c != ' ' && c != '\t') {
            body.append(c);
          }
        }
      }
    }
    if (label != null || out.isEmpty()) {
      return null;
    }
    return Collections.unmodifiableList(out);
  }

  private static boolean isBlank(String line) {
    for (int i = 0; i < line.length(); i++) {
      char c = line.charAt(i);
      if (c != ' ' && c != '\t' && c != '\r') {
        return false;
      }
    }
    return true;
  }

  private static boolean validLabel(String label) {
    if (label.isEmpty()) {
      return false;
    }
    for (int i = 0; i < label.length(); i++) {
      char c = label.charAt(i);
      if (!(c >= 'A' && c <= 'Z') && c != ' ') {
        return false;
      }
    }
    return true;
  }
}
