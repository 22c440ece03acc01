package dev.aoepack.repo;

import dev.aoepack.AoeException;
import dev.aoepack.internal.Codec;
import dev.aoepack.json.Json;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The JSON Schema checks of the repository's documents (schemas/*.schema.json), written out:
 * every failure is {@code repository-format}, naming where. Patterns are matched against the
 * whole string ({@code $} is end of input, §15.4), and lengths count code points, as JSON
 * Schema does.
 */
final class Fields {
  static final long MAX_SAFE = Json.MAX_SAFE_INTEGER;

  private final String what;

  Fields(String what) {
    this.what = what;
  }

  AoeException error(String where, String message) {
    return new AoeException("repository-format", what + ": " + where + ": " + message);
  }

  @SuppressWarnings("unchecked")
  Map<String, Object> object(Object v, String where) throws AoeException {
    if (!(v instanceof Map)) {
      throw error(where, "must be an object");
    }
    return (Map<String, Object>) v;
  }

  @SuppressWarnings("unchecked")
  List<Object> array(Object v, String where) throws AoeException {
    if (!(v instanceof List)) {
      throw error(where, "must be an array");
    }
    return (List<Object>) v;
  }

  Object required(Map<String, Object> m, String name, String where) throws AoeException {
    Object v = m.get(name);
    if (v == null) {
      throw error(where, "'" + name + "' is a required property");
    }
    return v;
  }

  String string(Object v, String where) throws AoeException {
    if (!(v instanceof String)) {
      throw error(where, "must be a string");
    }
    return (String) v;
  }

  long integer(Object v, String where, long min, long max) throws AoeException {
    if (!(v instanceof Long)) {
      throw error(where, "must be an integer");
    }
    long n = (Long) v;
    if (n < min || n > max) {
      throw error(where, n + " is outside " + min + " to " + max);
    }
    return n;
  }

  boolean bool(Object v, String where) throws AoeException {
    if (!(v instanceof Boolean)) {
      throw error(where, "must be a boolean");
    }
    return (Boolean) v;
  }

  void constant(Object v, Object expected, String where) throws AoeException {
    if (!expected.equals(v)) {
      throw error(where, "must be " + expected);
    }
  }

  String matching(Object v, String where, Pattern p) throws AoeException {
    String s = string(v, where);
    if (!p.matches(s)) {
      throw error(where, PyRepr.of(s.length() > 80 ? s.substring(0, 80) : s) + " does not match " + p.name);
    }
    return s;
  }

  String pem(Object v, String where) throws AoeException {
    String s = string(v, where);
    if (s.codePointCount(0, s.length()) > 4096) {
      throw error(where, "longer than 4096 characters");
    }
    if (!s.startsWith("-----BEGIN PUBLIC KEY-----")) {
      throw error(where, "must start with -----BEGIN PUBLIC KEY-----");
    }
    return s;
  }

  /** An array of strings matching {@code p}, without duplicates. */
  void names(Object v, String where, Pattern p, int minItems, int maxItems) throws AoeException {
    List<Object> list = array(v, where);
    if (list.size() < minItems || list.size() > maxItems) {
      throw error(where, "must hold " + minItems + " to " + maxItems + " items");
    }
    Set<Object> seen = new HashSet<Object>();
    for (int i = 0; i < list.size(); i++) {
      matching(list.get(i), where + "/" + i, p);
      if (!seen.add(list.get(i))) {
        throw error(where, "has non-unique elements");
      }
    }
  }

  static int length(String s) {
    return s.codePointCount(0, s.length());
  }

  /** The whole-string patterns of the schemas, hand-written (no java.util.regex surprises with $). */
  enum Pattern {
    HEX64("^[0-9a-f]{64}$"),
    HEX32("^[0-9a-f]{32}$"),
    TAG("^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"),
    RUNTIME("^[a-z0-9][a-z0-9._-]{0,31}$"),
    CHANNEL("^[a-z][a-z0-9-]{0,31}$"),
    TIMESTAMP("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"),
    SEMVER("semver"),
    BUNDLE_URL("^bundles/[0-9a-f]{64}\\.aoe$"),
    DELTA_URL("^deltas/[0-9a-f]{64}\\.aoed$");

    final String name;

    Pattern(String name) {
      this.name = name;
    }

    boolean matches(String s) {
      switch (this) {
        case HEX64:
          return s.length() == 64 && Codec.unhex(s) != null;
        case HEX32:
          return s.length() == 32 && Codec.unhex(s) != null;
        case TAG:
          return s.length() >= 1 && s.length() <= 128 && alnum(s.charAt(0)) && rest(s, "._-", true);
        case RUNTIME:
          return s.length() >= 1 && s.length() <= 32 && lowerOrDigit(s.charAt(0)) && lowerRest(s, "._-");
        case CHANNEL:
          return s.length() >= 1 && s.length() <= 32 && s.charAt(0) >= 'a' && s.charAt(0) <= 'z' && lowerRest(s, "-");
        case TIMESTAMP:
          return timestampShape(s);
        case SEMVER:
          return semverShape(s);
        case BUNDLE_URL:
          return s.length() == 8 + 64 + 4 && s.startsWith("bundles/") && s.endsWith(".aoe")
              && HEX64.matches(s.substring(8, 72));
        case DELTA_URL:
          return s.length() == 7 + 64 + 5 && s.startsWith("deltas/") && s.endsWith(".aoed")
              && HEX64.matches(s.substring(7, 71));
        default:
          throw new AssertionError(this);
      }
    }

    private static boolean alnum(char c) {
      return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    }

    private static boolean lowerOrDigit(char c) {
      return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z');
    }

    private static boolean rest(String s, String extra, boolean upper) {
      for (int i = 1; i < s.length(); i++) {
        char c = s.charAt(i);
        if (!(alnum(c) || extra.indexOf(c) >= 0) || (!upper && c >= 'A' && c <= 'Z')) {
          return false;
        }
      }
      return true;
    }

    private static boolean lowerRest(String s, String extra) {
      return rest(s, extra, false);
    }

    private static boolean timestampShape(String s) {
      if (s.length() != 20) {
        return false;
      }
      String shape = "dddd-dd-ddTdd:dd:ddZ";
      for (int i = 0; i < 20; i++) {
        char want = shape.charAt(i);
        char c = s.charAt(i);
        if (want == 'd' ? !(c >= '0' && c <= '9') : c != want) {
          return false;
        }
      }
      return true;
    }

    /** The schema's semver pattern, laxer than {@link Version#parse} (it lets {@code 1.0.0-01} through). */
    private static boolean semverShape(String s) {
      if (length(s) > 128) {
        return false;
      }
      int plus = s.indexOf('+');
      String head = plus < 0 ? s : s.substring(0, plus);
      if (plus >= 0 && !loose(s.substring(plus + 1))) {
        return false;
      }
      int dash = head.indexOf('-');
      String core = dash < 0 ? head : head.substring(0, dash);
      if (dash >= 0 && !loose(head.substring(dash + 1))) {
        return false;
      }
      String[] parts = core.split("\\.", -1);
      if (parts.length != 3) {
        return false;
      }
      for (String n : parts) {
        if (!Version.allDigits(n) || (n.length() > 1 && n.charAt(0) == '0')) {
          return false;
        }
      }
      return true;
    }

    private static boolean loose(String s) {
      if (s.isEmpty()) {
        return false;
      }
      for (int i = 0; i < s.length(); i++) {
        char c = s.charAt(i);
        if (!(alnum(c) || c == '.' || c == '-')) {
          return false;
        }
      }
      return true;
    }
  }
}
