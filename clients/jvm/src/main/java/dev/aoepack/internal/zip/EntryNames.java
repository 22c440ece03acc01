package dev.aoepack.internal.zip;

import dev.aoepack.AoeException;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The names of one archive, checked as docs/format.md §4.7 orders: each name
 * on its own, then against every earlier name for a collision on extraction.
 *
 * <p>A name's key is {@code NFC(casefold(NFC(name)))}. Case folding is
 * Unicode 14.0.0's default full folding from {@link Unicode14} (what Python's
 * {@code str.casefold} does); NFC is {@link java.text.Normalizer}, the
 * platform's. Unicode's stability policy keeps NFC of an assigned character
 * unchanged, so the keys equal the reference's whenever the platform knows
 * every character of the name. A platform older than Unicode 14.0.0 (Java 8:
 * 6.2; JDK 17: 13.0; Android before API 33: older ICU) treats a character it
 * does not know as a starter without decomposition: for a name with such a
 * character (a combining mark added in 6.3 to 14.0) the key may differ, so
 * a collision the reference finds may go unnoticed here, or the reverse.
 * Names with characters unassigned in 14.0.0 are refused everywhere.
 * Internal: not part of the library's API.
 */
public final class EntryNames {
  /** Longest name in UTF-8 bytes. */
  public static final int MAX_NAME_BYTES = 1024;

  private static final int[] BOUNDS;
  private static final Map<Integer, int[]> FOLDING = new HashMap<Integer, int[]>();

  static {
    String[] ranges = Unicode14.ASSIGNED.trim().split(" ");
    BOUNDS = new int[ranges.length * 2];
    for (int i = 0; i < ranges.length; i++) {
      int dash = ranges[i].indexOf('-');
      BOUNDS[2 * i] = Integer.parseInt(ranges[i].substring(0, dash), 16);
      BOUNDS[2 * i + 1] = Integer.parseInt(ranges[i].substring(dash + 1), 16);
    }
    for (String pair : Unicode14.FOLDING.trim().split(" ")) {
      int colon = pair.indexOf(':');
      String[] to = pair.substring(colon + 1).split(",");
      int[] cps = new int[to.length];
      for (int i = 0; i < to.length; i++) {
        cps[i] = Integer.parseInt(to[i], 16);
      }
      FOLDING.put(Integer.valueOf(Integer.parseInt(pair.substring(0, colon), 16)), cps);
    }
  }

  private final Map<String, String> files = new HashMap<String, String>();
  private final Map<String, String> folders = new HashMap<String, String>();

  /** Refuses ({@code unsafe-entry}) a name that breaks §4.7 or collides with one added before; then adds it. */
  public void add(String name) throws AoeException {
    checkName(name);
    String key = key(name);
    String other = files.get(key);
    if (other != null) {
      if (other.equals(name)) {
        throw unsafe("duplicate entry name " + quote(name));
      }
      throw unsafe(
          "entry names "
              + quote(other)
              + " and "
              + quote(name)
              + " differ only by case or Unicode normalization; they collide on"
              + " case-insensitive file systems");
    }
    String inside = folders.get(key);
    if (inside != null) {
      throw unsafe(
          "entry " + quote(name) + " is a file, but " + quote(inside) + " needs a folder of that name");
    }
    List<String> mine = foldersOf(key);
    for (String folder : mine) {
      String file = files.get(folder);
      if (file != null) {
        throw unsafe("entry " + quote(name) + " needs a folder where entry " + quote(file) + " is a file");
      }
    }
    files.put(key, name);
    for (String folder : mine) {
      if (!folders.containsKey(folder)) {
        folders.put(folder, name);
      }
    }
  }

  /** The §4.7 rules on one name alone, in the reference's order ({@code unsafe-entry}). */
  public static void checkName(String name) throws AoeException {
    if (name.isEmpty()) {
      throw unsafe("entry name is empty");
    }
    int bytes = utf8Length(name);
    if (bytes > MAX_NAME_BYTES) {
      throw unsafe(
          "entry name "
              + quote(name.substring(0, Math.min(60, name.length())))
              + "... is "
              + bytes
              + " bytes long; the limit is "
              + MAX_NAME_BYTES
              + " bytes");
    }
    if (name.indexOf('\0') >= 0) {
      throw unsafe("entry name " + quote(name) + " contains a NUL character");
    }
    int unassigned = firstUnassigned(name);
    if (unassigned >= 0) {
      throw unsafe(
          "entry name "
              + quote(name)
              + " has U+"
              + String.format("%04X", unassigned)
              + ", which Unicode "
              + Unicode14.VERSION
              + " does not assign: platforms could fold its case differently");
    }
    if (name.indexOf('\\') >= 0) {
      throw unsafe(
          "entry name "
              + quote(name)
              + " contains a backslash, a path separator on Windows; ZIP names separate folders"
              + " with '/'");
    }
    if (name.startsWith("/")) {
      throw unsafe("entry name " + quote(name) + " is an absolute path");
    }
    if (name.length() >= 2 && isAsciiLetter(name.charAt(0)) && name.charAt(1) == ':') {
      throw unsafe("entry name " + quote(name) + " starts with a Windows drive letter");
    }
    if (name.endsWith("/")) {
      throw unsafe(
          "entry name " + quote(name) + " ends with '/', a directory entry; bundles hold only files");
    }
    for (String segment : name.split("/", -1)) {
      if (segment.equals("..")) {
        throw unsafe(
            "entry name " + quote(name) + " has a '..' segment that climbs out of the target folder");
      }
      if (segment.equals(".")) {
        throw unsafe("entry name " + quote(name) + " has a '.' path segment");
      }
      if (segment.isEmpty()) {
        throw unsafe("entry name " + quote(name) + " has an empty path segment ('//')");
      }
    }
  }

  /** The collision key {@code NFC(casefold(NFC(name)))} of §4.7. */
  public static String key(String name) {
    return Normalizer.normalize(fold(Normalizer.normalize(name, Normalizer.Form.NFC)), Normalizer.Form.NFC);
  }

  /** Unicode 14.0.0 default full case folding, as Python's {@code str.casefold}. */
  public static String fold(String s) {
    StringBuilder out = new StringBuilder(s.length());
    for (int i = 0; i < s.length(); ) {
      int cp = s.codePointAt(i);
      i += Character.charCount(cp);
      int[] to = FOLDING.get(Integer.valueOf(cp));
      if (to == null) {
        out.appendCodePoint(cp);
      } else {
        for (int t : to) {
          out.appendCodePoint(t);
        }
      }
    }
    return out.toString();
  }

  /** True if Unicode 14.0.0 assigns {@code cp} (general category neither Cn nor Cs). */
  public static boolean assigned(int cp) {
    int at = Arrays.binarySearch(BOUNDS, cp);
    int right = at >= 0 ? at + 1 : -at - 1; // bisect_right
    return right % 2 == 1;
  }

  /** The first non-ASCII code point of {@code s} that Unicode 14.0.0 leaves unassigned, or -1. */
  static int firstUnassigned(String s) {
    for (int i = 0; i < s.length(); ) {
      int cp = s.codePointAt(i);
      i += Character.charCount(cp);
      if (cp >= 0x80 && !assigned(cp)) {
        return cp;
      }
    }
    return -1;
  }

  private static List<String> foldersOf(String key) {
    List<String> out = new ArrayList<String>();
    for (int at = key.indexOf('/'); at >= 0; at = key.indexOf('/', at + 1)) {
      out.add(key.substring(0, at));
    }
    return out;
  }

  private static boolean isAsciiLetter(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
  }

  static int utf8Length(String s) {
    int n = 0;
    for (int i = 0; i < s.length(); ) {
      int cp = s.codePointAt(i);
      i += Character.charCount(cp);
      n += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    }
    return n;
  }

  static String quote(String s) {
    StringBuilder out = new StringBuilder("'");
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c < 0x20 || c == 0x7f) {
        out.append(String.format("\\x%02x", (int) c));
      } else if (c == '\'' || c == '\\') {
        out.append('\\').append(c);
      } else {
        out.append(c);
      }
    }
    return out.append('\'').toString();
  }

  private static AoeException unsafe(String message) {
    return new AoeException("unsafe-entry", message);
  }
}
