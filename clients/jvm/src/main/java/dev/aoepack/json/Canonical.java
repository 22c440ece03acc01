package dev.aoepack.json;

import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * RFC 8785 (JCS) bytes of a document that holds integers only (docs/format.md
 * §5.1, §15.2 "Canonical form").
 *
 * <p>No whitespace; members sorted by the UTF-16 code units of their names
 * (which is {@link String#compareTo}); strings in UTF-8 with only {@code "},
 * {@code \} and control characters escaped; integers in plain decimal. A
 * non-integer number, or a string holding an unpaired surrogate, has no form
 * here and is refused: the spec refuses such documents, so no float formatter
 * is needed.
 */
public final class Canonical {
  private static final char[] HEX = "0123456789abcdef".toCharArray();

  private Canonical() {}

  /** The canonical UTF-8 bytes of {@code value}, a tree as {@link Json#parse} returns. */
  public static byte[] encode(Object value) throws JsonException {
    StringBuilder out = new StringBuilder();
    write(value, out);
    return out.toString().getBytes(StandardCharsets.UTF_8);
  }

  /** True if {@code bytes} are exactly the canonical form of {@code value}. */
  public static boolean isCanonical(byte[] bytes, Object value) {
    try {
      return java.util.Arrays.equals(bytes, encode(value));
    } catch (JsonException e) {
      return false;
    }
  }

  private static void write(Object value, StringBuilder out) throws JsonException {
    if (value instanceof String) {
      string((String) value, out);
    } else if (value instanceof Long || value instanceof Integer) {
      long n = ((Number) value).longValue();
      if (Math.abs(n) > Json.MAX_SAFE_INTEGER) {
        throw new JsonException("integer " + n + " is above 2^53 - 1");
      }
      out.append(n);
    } else if (value instanceof Boolean) {
      out.append(((Boolean) value).booleanValue() ? "true" : "false");
    } else if (value == Json.NULL) {
      out.append("null");
    } else if (value instanceof Map) {
      object((Map<?, ?>) value, out);
    } else if (value instanceof List) {
      out.append('[');
      boolean first = true;
      for (Object item : (List<?>) value) {
        if (!first) {
          out.append(',');
        }
        first = false;
        write(item, out);
      }
      out.append(']');
    } else if (value instanceof BigDecimal) {
      throw new JsonException("number " + value + " is not an integer of magnitude <= 2^53 - 1");
    } else {
      throw new JsonException(
          "no JSON form for " + (value == null ? "Java null" : value.getClass().getName()));
    }
  }

  private static void object(Map<?, ?> members, StringBuilder out) throws JsonException {
    List<String> names = new ArrayList<String>(members.size());
    for (Object name : members.keySet()) {
      if (!(name instanceof String)) {
        throw new JsonException("member name is not a string");
      }
      names.add((String) name);
    }
    Collections.sort(names);
    out.append('{');
    boolean first = true;
    for (String name : names) {
      if (!first) {
        out.append(',');
      }
      first = false;
      string(name, out);
      out.append(':');
      write(members.get(name), out);
    }
    out.append('}');
  }

  private static void string(String s, StringBuilder out) throws JsonException {
    out.append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (Character.isHighSurrogate(c)) {
        if (i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
          out.append(c).append(s.charAt(++i));
          continue;
        }
        throw new JsonException("string holds an unpaired UTF-16 surrogate");
      }
      if (Character.isLowSurrogate(c)) {
        throw new JsonException("string holds an unpaired UTF-16 surrogate");
      }
      switch (c) {
        case '"':
          out.append("\\\"");
          break;
        case '\\':
          out.append("\\\\");
          break;
        case '\b':
          out.append("\\b");
          break;
        case '\f':
          out.append("\\f");
          break;
        case '\n':
          out.append("\\n");
          break;
        case '\r':
          out.append("\\r");
          break;
        case '\t':
          out.append("\\t");
          break;
        default:
          if (c < 0x20) {
            out.append("\\u00").append(HEX[c >> 4]).append(HEX[c & 0xf]);
          } else {
            out.append(c);
          }
      }
    }
    out.append('"');
  }
}
