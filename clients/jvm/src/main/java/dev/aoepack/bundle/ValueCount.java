package dev.aoepack.bundle;

/**
 * How many JSON values a text holds, member names included, counted before
 * parsing as the reference's {@code json_value_count} does: memory follows
 * values, not bytes. With every string made one token and whitespace gone,
 * every value but the outermost follows a {@code [}, {@code ,} or {@code :},
 * and every member name a <code>{</code> or {@code ,}, except in empty
 * containers: 1 + commas + colons + non-empty containers.
 */
final class ValueCount {
  private ValueCount() {}

  static long count(byte[] text) {
    long count = 1;
    int prev = -1; // the last byte outside strings and whitespace ('s' for a string)
    boolean inString = false;
    for (int i = 0; i < text.length; i++) {
      int b = text[i] & 0xff;
      if (inString) {
        if (b == '\\') {
          i++;
        } else if (b == '"') {
          inString = false;
        }
        continue;
      }
      switch (b) {
        case ' ':
        case '\t':
        case '\n':
        case '\r':
          continue;
        case '"':
          inString = true;
          b = 's';
          break;
        case ',':
        case ':':
          count++;
          break;
        case '[':
        case '{':
          count++;
          break;
        case ']':
          if (prev == '[') {
            count--;
          }
          break;
        case '}':
          if (prev == '{') {
            count--;
          }
          break;
        default:
          break;
      }
      prev = b;
    }
    return count;
  }
}
