package dev.aoepack.repo;

import dev.aoepack.AoeException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * A Semantic Versioning 2.0.0 version, parsed strictly and ordered by precedence
 * (docs/format.md §15.5).
 *
 * <p>{@code MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]}, at most 128 characters, ASCII digits
 * without leading zeros, no {@code v} prefix, no whitespace. Numbers compare as numbers
 * ({@code 1.0.9 < 1.0.10}), a pre-release is below its release, and build metadata is
 * carried but never ordered: {@link #equals} and {@link #compareTo} follow precedence, so
 * {@code 1.0.0+b} equals {@code 1.0.0}. {@link #toString} gives the text back as written.
 * The same rules as the reference's {@code aoe_pack/versions.py}.
 */
public final class Version implements Comparable<Version> {
  /** The longest version text accepted. */
  public static final int MAX_LENGTH = 128;

  private static final int RELEASE_SLOT = 999;
  private static final int MAX_PRE_NUMBER = 98;

  private final String text;
  private final String major;
  private final String minor;
  private final String patch;
  private final List<String> pre; // null for a release

  private Version(String text, String major, String minor, String patch, List<String> pre) {
    this.text = text;
    this.major = major;
    this.minor = minor;
    this.patch = patch;
    this.pre = pre;
  }

  /** Parses {@code text}; {@code version} if it is not a strict semantic version. */
  public static Version parse(String text) throws AoeException {
    return parse(text, "version");
  }

  /**
   * Parses {@code text}, naming it {@code what} ("app version", "local model version") in
   * the error; {@code version} if it is not a strict semantic version.
   */
  public static Version parse(String text, String what) throws AoeException {
    if (text == null || text.length() > MAX_LENGTH) {
      throw new AoeException(
          "version", what + " must be a semver string of at most " + MAX_LENGTH + " characters");
    }
    Version v = tryParse(text);
    if (v == null) {
      throw new AoeException(
          "version",
          what
              + " "
              + PyRepr.of(text)
              + " is not a semantic version: write MAJOR.MINOR.PATCH, e.g. 1.0.10 or 2.1.0-rc.1"
              + " (semver.org)");
    }
    return v;
  }

  /** The version, or null when {@code text} is not one (the length cap included). */
  static Version tryParse(String text) {
    if (text.length() > MAX_LENGTH) {
      return null;
    }
    int plus = text.indexOf('+');
    String head = plus < 0 ? text : text.substring(0, plus);
    if (plus >= 0 && !identifiers(text.substring(plus + 1), false)) {
      return null;
    }
    int dash = head.indexOf('-');
    String core = dash < 0 ? head : head.substring(0, dash);
    List<String> pre = null;
    if (dash >= 0) {
      String p = head.substring(dash + 1);
      if (!identifiers(p, true)) {
        return null;
      }
      pre = Collections.unmodifiableList(split(p));
    }
    List<String> parts = split(core);
    if (parts.size() != 3) {
      return null;
    }
    for (String n : parts) {
      if (!number(n)) {
        return null;
      }
    }
    return new Version(text, parts.get(0), parts.get(1), parts.get(2), pre);
  }

  private static List<String> split(String s) {
    List<String> out = new ArrayList<String>();
    int start = 0;
    for (int i = 0; i <= s.length(); i++) {
      if (i == s.length() || s.charAt(i) == '.') {
        out.add(s.substring(start, i));
        start = i + 1;
      }
    }
    return out;
  }

  /** Dot-separated, non-empty identifiers of [0-9A-Za-z-]; pre-release numbers without leading zeros. */
  private static boolean identifiers(String s, boolean prerelease) {
    for (String id : split(s)) {
      if (id.isEmpty()) {
        return false;
      }
      for (int i = 0; i < id.length(); i++) {
        char c = id.charAt(i);
        if (!(digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-')) {
          return false;
        }
      }
      if (prerelease && allDigits(id) && id.length() > 1 && id.charAt(0) == '0') {
        return false;
      }
    }
    return true;
  }

  private static boolean number(String s) {
    return !s.isEmpty() && allDigits(s) && (s.length() == 1 || s.charAt(0) != '0');
  }

  private static boolean digit(char c) {
    return c >= '0' && c <= '9';
  }

  static boolean allDigits(String s) {
    if (s.isEmpty()) {
      return false;
    }
    for (int i = 0; i < s.length(); i++) {
      if (!digit(s.charAt(i))) {
        return false;
      }
    }
    return true;
  }

  /** Compares two unsigned decimal numbers without leading zeros, of any length. */
  private static int compareNumbers(String a, String b) {
    if (a.length() != b.length()) {
      return a.length() < b.length() ? -1 : 1;
    }
    return Integer.signum(a.compareTo(b));
  }

  /** True for a pre-release ({@code 1.0.0-rc.1}). */
  public boolean isPrerelease() {
    return pre != null;
  }

  /**
   * The integer ordered like precedence (§15.5): {@code ((MAJOR × 100 + MINOR) × 100 + PATCH) ×
   * 1000 + slot}; {@code version} for a version outside its bounds (MAJOR above 209, MINOR or
   * PATCH above 99, a pre-release other than alpha, beta, rc and their {@code .N}, N 0-98).
   */
  public int versionCode() throws AoeException {
    String[] names = {"major", "minor", "patch"};
    String[] values = {major, minor, patch};
    int[] tops = {209, 99, 99};
    for (int i = 0; i < 3; i++) {
      if (compareNumbers(values[i], Integer.toString(tops[i])) > 0) {
        throw new AoeException(
            "version",
            this
                + " has no versionCode: "
                + names[i]
                + " "
                + values[i]
                + " is above "
                + tops[i]
                + " (versionCode bounds: major 0-209, minor 0-99, patch 0-99)");
      }
    }
    int core = (Integer.parseInt(major) * 100 + Integer.parseInt(minor)) * 100 + Integer.parseInt(patch);
    return core * 1000 + slot();
  }

  private int slot() throws AoeException {
    if (pre == null) {
      return RELEASE_SLOT;
    }
    String first = pre.get(0);
    int label = first.equals("alpha") ? 1 : first.equals("beta") ? 2 : first.equals("rc") ? 3 : 0;
    if (label != 0 && pre.size() == 1) {
      return label * 100;
    }
    if (label != 0 && pre.size() == 2 && allDigits(pre.get(1)) && pre.get(1).length() <= 2) {
      int n = Integer.parseInt(pre.get(1));
      if (n <= MAX_PRE_NUMBER) {
        return label * 100 + 1 + n;
      }
    }
    throw new AoeException(
        "version",
        this
            + " has no versionCode: only pre-releases alpha, beta, rc and alpha.N, beta.N, rc.N (N 0-"
            + MAX_PRE_NUMBER
            + ") map to an integer in semver order; rename the pre-release, e.g. 1.2.0-rc.1");
  }

  @Override
  public int compareTo(Version o) {
    int c = compareNumbers(major, o.major);
    if (c == 0) {
      c = compareNumbers(minor, o.minor);
    }
    if (c == 0) {
      c = compareNumbers(patch, o.patch);
    }
    if (c != 0) {
      return c;
    }
    if (pre == null || o.pre == null) {
      return pre == null ? (o.pre == null ? 0 : 1) : -1;
    }
    int n = Math.min(pre.size(), o.pre.size());
    for (int i = 0; i < n; i++) {
      String a = pre.get(i);
      String b = o.pre.get(i);
      boolean na = allDigits(a);
      boolean nb = allDigits(b);
      if (na && nb) {
        c = compareNumbers(a, b);
      } else if (na != nb) {
        c = na ? -1 : 1;
      } else {
        c = Integer.signum(a.compareTo(b)); // ASCII order: identifiers are ASCII
      }
      if (c != 0) {
        return c;
      }
    }
    return Integer.signum(pre.size() - o.pre.size());
  }

  /** Equal precedence (build metadata aside). */
  @Override
  public boolean equals(Object o) {
    return o instanceof Version && compareTo((Version) o) == 0;
  }

  @Override
  public int hashCode() {
    int h = (major + "." + minor + "." + patch).hashCode();
    return pre == null ? h : 31 * h + pre.hashCode();
  }

  /** The text as parsed, build metadata included. */
  @Override
  public String toString() {
    return text;
  }
}
