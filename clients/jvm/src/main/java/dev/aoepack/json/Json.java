package dev.aoepack.json;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A strict JSON (RFC 8259) reader for signed documents.
 *
 * <p>Values come back as plain Java objects: {@code Map<String, Object>}
 * (members in document order, unmodifiable), {@code List<Object>}
 * (unmodifiable), {@code String}, {@code Long} for an integer of magnitude at
 * most 2^53 - 1 written without fraction or exponent, {@link BigDecimal} for
 * every other number (so a caller can refuse it where the spec says, see
 * {@link #hasNonInteger}), {@code Boolean}, and {@link #NULL}.
 *
 * <p>Refused: text that is not UTF-8, a byte order mark, duplicate member
 * names, {@code NaN} and infinities, a number literal longer than 4300 characters or whose
 * exponent is beyond an {@code int}, control characters inside strings,
 * nesting deeper than {@code maxDepth}, more than {@code maxValues} values,
 * and anything after the value but whitespace. An unpaired surrogate escape
 * ({@code \ud800}) is valid JSON and parses; it has no canonical form, so
 * {@link Canonical#encode} refuses it.
 */
public final class Json {
  /** JSON {@code null}; a member that is absent reads as Java {@code null}. */
  public static final Object NULL = new Object() {
    @Override
    public String toString() {
      return "null";
    }
  };

  /** The largest integer an RFC 8785 number (an IEEE double) holds exactly. */
  public static final long MAX_SAFE_INTEGER = 9007199254740991L;

  private static final BigInteger MAX_SAFE = BigInteger.valueOf(MAX_SAFE_INTEGER);

  /**
   * The longest number literal read, sign, fraction and exponent included: Python's own limit
   * on integer text (4300 digits), where the reference's reader stops too.
   */
  static final int MAX_NUMBER_CHARS = 4300;

  private final String text;
  private final int maxDepth;
  private final int maxValues;
  private int pos;
  private int values;

  private Json(String text, int maxDepth, int maxValues) {
    this.text = text;
    this.maxDepth = maxDepth;
    this.maxValues = maxValues;
  }

  /** Parses UTF-8 JSON text, with at most {@code maxDepth} nested containers and {@code maxValues} values. */
  public static Object parse(byte[] utf8, int maxDepth, int maxValues) throws JsonException {
    return parse(utf8, 0, utf8.length, maxDepth, maxValues);
  }

  /** Parses {@code length} bytes of UTF-8 JSON text from {@code offset}. */
  public static Object parse(byte[] utf8, int offset, int length, int maxDepth, int maxValues)
      throws JsonException {
    if (maxDepth < 1 || maxValues < 1) {
      throw new IllegalArgumentException("maxDepth and maxValues must be at least 1");
    }
    Json reader = new Json(decode(utf8, offset, length), maxDepth, maxValues);
    reader.space();
    Object value = reader.value(0);
    reader.space();
    if (reader.pos != reader.text.length()) {
      throw reader.error("text after the JSON value");
    }
    return value;
  }

  /** True if {@code value} holds, anywhere, a number that is not a safe integer. */
  public static boolean hasNonInteger(Object value) {
    if (value instanceof BigDecimal) {
      return true;
    }
    if (value instanceof Map) {
      for (Object member : ((Map<?, ?>) value).values()) {
        if (hasNonInteger(member)) {
          return true;
        }
      }
    } else if (value instanceof List) {
      for (Object item : (List<?>) value) {
        if (hasNonInteger(item)) {
          return true;
        }
      }
    }
    return false;
  }

  private static String decode(byte[] utf8, int offset, int length) throws JsonException {
    if (length >= 3
        && utf8[offset] == (byte) 0xEF
        && utf8[offset + 1] == (byte) 0xBB
        && utf8[offset + 2] == (byte) 0xBF) {
      throw new JsonException("JSON text starts with a byte order mark");
    }
    CharsetDecoder decoder =
        StandardCharsets.UTF_8
            .newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT)
            .onUnmappableCharacter(CodingErrorAction.REPORT);
    try {
      CharBuffer chars = decoder.decode(ByteBuffer.wrap(utf8, offset, length));
      return chars.toString();
    } catch (CharacterCodingException e) {
      throw new JsonException("JSON text is not valid UTF-8");
    }
  }

  private JsonException error(String what) {
    return new JsonException(what + " at character " + pos);
  }

  private void space() {
    while (pos < text.length()) {
      char c = text.charAt(pos);
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
        return;
      }
      pos++;
    }
  }

  private void count() throws JsonException {
    if (++values > maxValues) {
      throw error("more than " + maxValues + " JSON values");
    }
  }

  private Object value(int depth) throws JsonException {
    if (pos >= text.length()) {
      throw error("unexpected end of JSON text");
    }
    count();
    char c = text.charAt(pos);
    switch (c) {
      case '{':
        return object(depth + 1);
      case '[':
        return array(depth + 1);
      case '"':
        return string();
      case 't':
        literal("true");
        return Boolean.TRUE;
      case 'f':
        literal("false");
        return Boolean.FALSE;
      case 'n':
        literal("null");
        return NULL;
      default:
        if (c == '-' || (c >= '0' && c <= '9')) {
          return number();
        }
        throw error("unexpected character '" + printable(c) + "'");
    }
  }

  private static String printable(char c) {
    return c < 0x20 || c > 0x7e ? String.format("\\u%04x", (int) c) : String.valueOf(c);
  }

  private void literal(String word) throws JsonException {
    if (!text.startsWith(word, pos)) {
      throw error("unexpected word (NaN, Infinity and bare words are not JSON)");
    }
    pos += word.length();
  }

  private Map<String, Object> object(int depth) throws JsonException {
    if (depth > maxDepth) {
      throw error("JSON nested deeper than " + maxDepth + " levels");
    }
    pos++; // '{'
    Map<String, Object> members = new LinkedHashMap<String, Object>();
    space();
    if (pos < text.length() && text.charAt(pos) == '}') {
      pos++;
      return Collections.unmodifiableMap(members);
    }
    while (true) {
      space();
      if (pos >= text.length() || text.charAt(pos) != '"') {
        throw error("expected a member name");
      }
      count();
      String name = string();
      space();
      expect(':');
      space();
      Object member = value(depth);
      if (members.containsKey(name)) {
        throw error("duplicate member name \"" + name + "\"");
      }
      members.put(name, member);
      space();
      if (pos < text.length() && text.charAt(pos) == ',') {
        pos++;
        continue;
      }
      expect('}');
      return Collections.unmodifiableMap(members);
    }
  }

  private List<Object> array(int depth) throws JsonException {
    if (depth > maxDepth) {
      throw error("JSON nested deeper than " + maxDepth + " levels");
    }
    pos++; // '['
    List<Object> items = new ArrayList<Object>();
    space();
    if (pos < text.length() && text.charAt(pos) == ']') {
      pos++;
      return Collections.unmodifiableList(items);
    }
    while (true) {
      space();
      items.add(value(depth));
      space();
      if (pos < text.length() && text.charAt(pos) == ',') {
        pos++;
        continue;
      }
      expect(']');
      return Collections.unmodifiableList(items);
    }
  }

  private void expect(char c) throws JsonException {
    if (pos >= text.length() || text.charAt(pos) != c) {
      throw error("expected '" + c + "'");
    }
    pos++;
  }

  private String string() throws JsonException {
    pos++; // opening quote
    StringBuilder out = null;
    int start = pos;
    while (true) {
      if (pos >= text.length()) {
        throw error("unterminated string");
      }
      char c = text.charAt(pos);
      if (c == '"') {
        String s =
            out == null ? text.substring(start, pos) : out.append(text, start, pos).toString();
        pos++;
        return s;
      }
      if (c < 0x20) {
        throw error("control character in a string");
      }
      if (c != '\\') {
        pos++;
        continue;
      }
      if (out == null) {
        out = new StringBuilder();
      }
      out.append(text, start, pos);
      pos++;
      if (pos >= text.length()) {
        throw error("unterminated escape");
      }
      char e = text.charAt(pos++);
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out.append(e);
          break;
        case 'b':
          out.append('\b');
          break;
        case 'f':
          out.append('\f');
          break;
        case 'n':
          out.append('\n');
          break;
        case 'r':
          out.append('\r');
          break;
        case 't':
          out.append('\t');
          break;
        case 'u':
          out.append(hex4());
          break;
        default:
          throw error("invalid escape '\\" + printable(e) + "'");
      }
      start = pos;
    }
  }

  private char hex4() throws JsonException {
    if (pos + 4 > text.length()) {
      throw error("truncated \\u escape");
    }
    int v = 0;
    for (int i = 0; i < 4; i++) {
      char h = text.charAt(pos++);
      int d = Character.digit(h, 16);
      if (d < 0 || h > 'f') {
        throw error("invalid \\u escape");
      }
      v = v * 16 + d;
    }
    return (char) v;
  }

  private Object number() throws JsonException {
    int start = pos;
    if (text.charAt(pos) == '-') {
      pos++;
    }
    if (pos >= text.length()) {
      throw error("truncated number");
    }
    char first = text.charAt(pos);
    if (first == '0') {
      pos++;
    } else if (first >= '1' && first <= '9') {
      digits();
    } else {
      throw error("invalid number");
    }
    boolean integer = true;
    if (pos < text.length() && text.charAt(pos) == '.') {
      integer = false;
      pos++;
      if (digits() == 0) {
        throw error("invalid number: no digit after '.'");
      }
    }
    if (pos < text.length() && (text.charAt(pos) == 'e' || text.charAt(pos) == 'E')) {
      integer = false;
      pos++;
      if (pos < text.length() && (text.charAt(pos) == '+' || text.charAt(pos) == '-')) {
        pos++;
      }
      if (digits() == 0) {
        throw error("invalid number: no digit in the exponent");
      }
    }
    if (pos - start > MAX_NUMBER_CHARS) {
      // Decimal text to binary is quadratic in the digits: a 4 MiB number costs minutes of CPU,
      // and it may stand where nothing is authenticated yet (an envelope). No document holds one.
      throw error("a number of more than " + MAX_NUMBER_CHARS + " characters");
    }
    String written = text.substring(start, pos);
    if (integer) {
      BigInteger n = new BigInteger(written);
      if (n.abs().compareTo(MAX_SAFE) <= 0) {
        return Long.valueOf(n.longValue());
      }
    }
    try {
      return new BigDecimal(written);
    } catch (NumberFormatException e) {
      throw error("a number whose exponent is out of range"); // 1e9999999999: beyond an int
    }
  }

  private int digits() {
    int n = 0;
    while (pos < text.length() && text.charAt(pos) >= '0' && text.charAt(pos) <= '9') {
      pos++;
      n++;
    }
    return n;
  }
}
