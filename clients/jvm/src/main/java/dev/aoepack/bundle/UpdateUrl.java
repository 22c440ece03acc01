package dev.aoepack.bundle;

import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The repository address a bundle may carry as {@code model.updateURL}
 * (docs/format.md §5.2.4): the rule it must follow, and how two addresses are
 * compared. The same rule as the reference's {@code aoe_pack/urls.py}, with
 * Python's {@code ipaddress} parsing of IP hosts.
 *
 * <p>The address is a hint of where to look, never of what to trust: a device
 * accepts a repository only under the root shipped with the app (§15.6).
 */
public final class UpdateUrl {
  /** The longest address accepted. */
  public static final int MAX_LENGTH = 1024;

  private static final Pattern SHAPE =
      Pattern.compile(
          "([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)([^?#]*)(.*)", Pattern.DOTALL);
  private static final Pattern LABEL = Pattern.compile("(?!-)[A-Za-z0-9-]{1,63}(?<!-)");
  private static final Pattern SEGMENT =
      Pattern.compile("(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})+");
  private static final Pattern PORT = Pattern.compile("[0-9]{1,5}");

  private UpdateUrl() {}

  /**
   * Why {@code url} is not a repository address (a phrase completing "the
   * address ..."), or null when it is one.
   */
  public static String problem(String url) {
    if (url.length() > MAX_LENGTH) {
      return "is " + url.length() + " characters long; at most " + MAX_LENGTH + " are allowed";
    }
    for (int i = 0; i < url.length(); i++) {
      char c = url.charAt(i);
      if (c < 0x21 || c > 0x7e || c == '\\') {
        return "contains a character other than printable ASCII (U+"
            + String.format("%04X", (int) c)
            + "); only printable ASCII is allowed";
      }
    }
    Matcher shape = SHAPE.matcher(url);
    if (!shape.matches()) {
      return "is not an absolute URL (scheme://host/path)";
    }
    String scheme = shape.group(1).toLowerCase(Locale.ROOT);
    if (!scheme.equals("https") && !scheme.equals("http")) {
      return "uses " + shape.group(1) + "://; devices read repositories over https://";
    }
    String rest = shape.group(4);
    if (!rest.isEmpty()) {
      return "has "
          + (rest.startsWith("?") ? "a query" : "a fragment")
          + "; a repository address has none (names are appended to it)";
    }
    String problem = authorityProblem(scheme, shape.group(2));
    return problem != null ? problem : pathProblem(shape.group(3));
  }

  /**
   * The form two valid addresses are compared in: scheme and host lowercased,
   * a default port dropped, a trailing {@code /} dropped; the path as written.
   */
  public static String normalise(String url) {
    if (problem(url) != null) {
      throw new IllegalArgumentException("not a repository address: " + url);
    }
    Matcher shape = SHAPE.matcher(url);
    shape.matches();
    String scheme = shape.group(1).toLowerCase(Locale.ROOT);
    String[] hostPort = splitAuthority(shape.group(2));
    String authority = hostPort[0].toLowerCase(Locale.ROOT);
    String port = hostPort[1];
    String defaultPort = scheme.equals("https") ? "443" : "80";
    if (port != null && !stripLeadingZeros(port).equals(defaultPort)) {
      authority += ":" + Integer.parseInt(port);
    }
    String path = shape.group(3);
    int end = path.length();
    while (end > 0 && path.charAt(end - 1) == '/') {
      end--;
    }
    return scheme + "://" + authority + path.substring(0, end);
  }

  /** True when two valid addresses name the same repository. */
  public static boolean sameRepository(String a, String b) {
    return normalise(a).equals(normalise(b));
  }

  private static String stripLeadingZeros(String s) {
    int i = 0;
    while (i < s.length() && s.charAt(i) == '0') {
      i++;
    }
    return s.substring(i);
  }

  private static String authorityProblem(String scheme, String authority) {
    if (authority.indexOf('@') >= 0) {
      return "carries user information (user@ or user:password@); credentials do not belong in it";
    }
    String[] hostPort = splitAuthority(authority);
    if (hostPort == null) {
      return "has no valid host in '" + authority + "'";
    }
    String port = hostPort[1];
    if (port != null) {
      if (!PORT.matcher(port).matches() || Integer.parseInt(port) < 1 || Integer.parseInt(port) > 65535) {
        return "has port '" + port + "'; a port is a number from 1 to 65535";
      }
    }
    if (scheme.equals("http") && !isLoopback(hostPort[0])) {
      return "uses http:// to a host that is not loopback; devices refuse cleartext HTTP";
    }
    return null;
  }

  private static String pathProblem(String path) {
    String[] all = path.split("/", -1);
    int n = all.length;
    if (n > 1 && all[n - 1].isEmpty()) {
      n--; // one trailing slash is allowed
    }
    for (int i = 1; i < n; i++) {
      String segment = all[i];
      if (segment.isEmpty() || segment.equals(".") || segment.equals("..")) {
        return "has a path segment '" + segment + "'; write the path without '//', '.' or '..'";
      }
      if (!SEGMENT.matcher(segment).matches()) {
        return "has a path segment '"
            + segment
            + "' with a character a URL path cannot hold (percent-encode it; '%' must be followed"
            + " by two hex digits)";
      }
    }
    return null;
  }

  /** {host, port or null}, or null when the host is neither a DNS name nor an IP. */
  private static String[] splitAuthority(String authority) {
    if (authority.startsWith("[")) {
      int end = authority.indexOf(']');
      if (end < 0) {
        return null;
      }
      String literal = authority.substring(1, end);
      String after = authority.substring(end + 1);
      if (!after.isEmpty() && !after.startsWith(":")) {
        return null;
      }
      if (ipv6(literal) < 0) {
        return null;
      }
      return new String[] {authority.substring(0, end + 1), after.isEmpty() ? null : after.substring(1)};
    }
    int colon = authority.indexOf(':');
    String host = colon < 0 ? authority : authority.substring(0, colon);
    String name = host.endsWith(".") ? host.substring(0, host.length() - 1) : host;
    if (name.isEmpty() || name.length() > 253) {
      return null;
    }
    for (String label : name.split("\\.", -1)) {
      if (!LABEL.matcher(label).matches()) {
        return null;
      }
    }
    return new String[] {host, colon < 0 ? null : authority.substring(colon + 1)};
  }

  private static boolean isLoopback(String host) {
    if (host.toLowerCase(Locale.ROOT).equals("localhost")) {
      return true;
    }
    String bare = strip(host, "[]");
    long v4 = ipv4(bare);
    if (v4 >= 0) {
      return (v4 >>> 24) == 127;
    }
    return ipv6(bare) == 1;
  }

  private static String strip(String s, String chars) {
    int start = 0;
    int end = s.length();
    while (start < end && chars.indexOf(s.charAt(start)) >= 0) {
      start++;
    }
    while (end > start && chars.indexOf(s.charAt(end - 1)) >= 0) {
      end--;
    }
    return s.substring(start, end);
  }

  /** Python's strict IPv4Address parse: the 32-bit value, or -1. */
  static long ipv4(String s) {
    if (s.isEmpty() || s.indexOf('/') >= 0) {
      return -1;
    }
    String[] octets = s.split("\\.", -1);
    if (octets.length != 4) {
      return -1;
    }
    long value = 0;
    for (String octet : octets) {
      if (octet.isEmpty() || octet.length() > 3) {
        return -1;
      }
      for (int i = 0; i < octet.length(); i++) {
        if (octet.charAt(i) < '0' || octet.charAt(i) > '9') {
          return -1;
        }
      }
      if (octet.length() > 1 && octet.charAt(0) == '0') {
        return -1;
      }
      int v = Integer.parseInt(octet);
      if (v > 255) {
        return -1;
      }
      value = value << 8 | v;
    }
    return value;
  }

  /**
   * Python's IPv6Address parse (scope id allowed): -1 when invalid, 1 for the
   * loopback {@code ::1}, 0 for any other address.
   */
  static int ipv6(String s) {
    if (s.indexOf('/') >= 0) {
      return -1;
    }
    int percent = s.indexOf('%');
    if (percent >= 0) {
      String scope = s.substring(percent + 1);
      if (scope.isEmpty() || scope.indexOf('%') >= 0) {
        return -1;
      }
      s = s.substring(0, percent);
    }
    if (s.isEmpty()) {
      return -1;
    }
    java.util.List<String> parts = new java.util.ArrayList<String>(java.util.Arrays.asList(s.split(":", -1)));
    if (parts.size() < 3) {
      return -1;
    }
    if (parts.get(parts.size() - 1).indexOf('.') >= 0) {
      long v4 = ipv4(parts.remove(parts.size() - 1));
      if (v4 < 0) {
        return -1;
      }
      parts.add(Long.toHexString(v4 >>> 16 & 0xffff));
      parts.add(Long.toHexString(v4 & 0xffff));
    }
    if (parts.size() > 9) {
      return -1;
    }
    int skip = -1;
    for (int i = 1; i < parts.size() - 1; i++) {
      if (parts.get(i).isEmpty()) {
        if (skip >= 0) {
          return -1;
        }
        skip = i;
      }
    }
    int hi;
    int lo;
    int skipped;
    if (skip >= 0) {
      hi = skip;
      lo = parts.size() - skip - 1;
      if (parts.get(0).isEmpty() && --hi != 0) {
        return -1;
      }
      if (parts.get(parts.size() - 1).isEmpty() && --lo != 0) {
        return -1;
      }
      skipped = 8 - (hi + lo);
      if (skipped < 1) {
        return -1;
      }
    } else {
      if (parts.size() != 8 || parts.get(0).isEmpty() || parts.get(7).isEmpty()) {
        return -1;
      }
      hi = parts.size();
      lo = 0;
      skipped = 0;
    }
    int[] hextets = new int[8];
    int at = 0;
    for (int i = 0; i < hi; i++) {
      int h = hextet(parts.get(i));
      if (h < 0) {
        return -1;
      }
      hextets[at++] = h;
    }
    at += skipped;
    for (int i = parts.size() - lo; i < parts.size(); i++) {
      int h = hextet(parts.get(i));
      if (h < 0) {
        return -1;
      }
      hextets[at++] = h;
    }
    for (int i = 0; i < 7; i++) {
      if (hextets[i] != 0) {
        return 0;
      }
    }
    return hextets[7] == 1 ? 1 : 0;
  }

  private static int hextet(String s) {
    if (s.isEmpty() || s.length() > 4) {
      return -1;
    }
    for (int i = 0; i < s.length(); i++) {
      if (Character.digit(s.charAt(i), 16) < 0 || s.charAt(i) > 'f') {
        return -1;
      }
    }
    return Integer.parseInt(s, 16);
  }
}
