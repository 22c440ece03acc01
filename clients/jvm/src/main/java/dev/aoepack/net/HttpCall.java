package dev.aoepack.net;

import dev.aoepack.AoeException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.MalformedURLException;
import java.net.URL;
import java.net.URLConnection;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * One GET request over HttpURLConnection, redirects followed by hand (not API).
 *
 * <p>The connection's own redirect following is turned off: it differs between the JDK and
 * Android, and a redirect must never change the scheme except http to https (a downgrade would
 * show every on-path observer which model a device fetches) nor go anywhere but HTTP(S). Like the
 * reference client, at most {@value #MAX_REDIRECTS} redirects are followed, every request header
 * is sent again, and a redirect's body is never read.
 */
final class HttpCall {
  static final int MAX_REDIRECTS = 4;
  static final int CHUNK = 64 * 1024;

  final String url;
  final HttpURLConnection connection;
  final int status;
  private final TransferClock clock;

  private HttpCall(String url, HttpURLConnection connection, int status, TransferClock clock) {
    this.url = url;
    this.connection = connection;
    this.status = status;
    this.clock = clock;
  }

  /**
   * Send a GET for {@code url} with {@code headers}; null on 404 or 410.
   *
   * <p>Any other status is returned: the caller decides which it takes. The clock's limits bound
   * the connection, the headers and every redirect.
   */
  static HttpCall open(String url, Map<String, String> headers, TransferClock clock)
      throws AoeException {
    String current = url;
    for (int hop = 0; ; hop++) {
      HttpURLConnection c = connect(current, headers, clock);
      int status;
      try {
        status = c.getResponseCode();
      } catch (IOException e) {
        c.disconnect();
        clock.unwatch();
        throw failed(current, clock, e);
      }
      if (status == 404 || status == 410) {
        c.disconnect();
        clock.unwatch();
        return null;
      }
      if (status != 301 && status != 302 && status != 303 && status != 307 && status != 308) {
        return new HttpCall(current, c, status, clock);
      }
      String location = c.getHeaderField("Location");
      c.disconnect(); // the redirect's body is never read: a hostile one may be endless
      clock.unwatch();
      if (hop == MAX_REDIRECTS) {
        throw new AoeException(
            "download", current + ": more than " + MAX_REDIRECTS + " redirects; stopped");
      }
      current = redirect(current, location);
    }
  }

  private static HttpURLConnection connect(
      String url, Map<String, String> headers, TransferClock clock) throws AoeException {
    URLConnection plain;
    try {
      plain = new URL(url).openConnection();
    } catch (IOException e) {
      throw new AoeException("download", url + ": " + e.getMessage(), e);
    }
    if (!(plain instanceof HttpURLConnection)) {
      throw new AoeException("usage", url + ": only http:// and https:// can be downloaded");
    }
    HttpURLConnection c = (HttpURLConnection) plain;
    // Both timeouts are at most the time left: a read blocked on a stalled body cannot be
    // interrupted by the watchdog's disconnect (HttpURLConnection's close waits for the
    // read's lock), so its own timeout is what ends it by the deadline.
    // (The deadline only: the rate limit moves later as bytes arrive.)
    clock.leftMillis(); // a limit already passed: no request
    long bound = Math.max(1, Math.min(clock.limits().idleMillis(), clock.deadlineLeftMillis()));
    c.setConnectTimeout((int) Math.min(Integer.MAX_VALUE, bound));
    c.setReadTimeout((int) Math.min(Integer.MAX_VALUE, bound));
    c.setInstanceFollowRedirects(false);
    c.setUseCaches(false);
    c.setRequestProperty("Accept-Encoding", "identity");
    for (Map.Entry<String, String> h : headers.entrySet()) {
      c.setRequestProperty(h.getKey(), h.getValue());
    }
    clock.watch(c);
    return c;
  }

  /** Where a redirect may lead: HTTP(S) only, never from https:// to http://. */
  static String redirect(String from, String location) throws AoeException {
    if (location == null) {
      throw new AoeException("download", from + ": a redirect without a Location");
    }
    URL target;
    try {
      target = new URL(new URL(from), location);
    } catch (MalformedURLException e) {
      throw new AoeException("download", from + ": refusing a redirect to " + location, e);
    }
    String old = scheme(from);
    String now = target.getProtocol().toLowerCase(Locale.ROOT);
    if (!(now.equals("http") || now.equals("https")) || (old.equals("https") && now.equals("http"))) {
      throw new AoeException("download", from + ": refusing a redirect to " + location);
    }
    return target.toString();
  }

  private static String scheme(String url) {
    int colon = url.indexOf(':');
    return colon < 0 ? "" : url.substring(0, colon).toLowerCase(Locale.ROOT);
  }

  /** The one value of a header, or null when absent or given more than once. */
  String header(String name) {
    List<String> all = headers(name);
    return all.size() == 1 ? all.get(0).trim() : null;
  }

  /** Every value of a header, in any case of its name. */
  List<String> headers(String name) {
    List<String> values = new ArrayList<String>();
    for (Map.Entry<String, List<String>> e : connection.getHeaderFields().entrySet()) {
      if (e.getKey() != null && e.getKey().equalsIgnoreCase(name)) {
        values.addAll(e.getValue());
      }
    }
    return values;
  }

  /** The announced Content-Length, or -1 when there is none; {@code download} when malformed. */
  long contentLength() throws AoeException {
    List<String> all = headers("Content-Length");
    if (all.isEmpty()) {
      return -1;
    }
    String v = all.get(0).trim();
    if (all.size() > 1 || v.isEmpty() || v.length() > 18 || !digits(v)) {
      throw new AoeException("download", url + ": malformed Content-Length " + all);
    }
    return Long.parseLong(v);
  }

  /**
   * The body's content coding, {@code gzip} or null for the bytes as they are, when the request
   * asked for gzip: any other coding, or more than one, is refused ({@code download}) rather than
   * guessed, since inflating a coding nobody planned for has no cap.
   */
  String gzipOrIdentity() throws AoeException {
    List<String> codings = new ArrayList<String>();
    for (String v : headers("Content-Encoding")) {
      for (String coding : v.split(",", -1)) {
        String c = coding.trim().toLowerCase(Locale.ROOT);
        if (!c.isEmpty() && !c.equals("identity")) {
          codings.add(c);
        }
      }
    }
    if (codings.isEmpty()) {
      return null;
    }
    if (codings.size() == 1 && codings.get(0).equals("gzip")) {
      return "gzip";
    }
    throw new AoeException(
        "download",
        url + ": the server sent Content-Encoding: " + codings
            + ", but only gzip was asked for; refusing the body (a server or CDN that "
            + "compresses files must honour Accept-Encoding)");
  }

  /**
   * Refuse a body in any content coding: every request asks for {@code identity}, so ranges, caps
   * and digests are those of the file, and inflating a coding nobody planned for has no cap.
   */
  void requireIdentity() throws AoeException {
    for (String v : headers("Content-Encoding")) {
      for (String coding : v.split(",", -1)) {
        String c = coding.trim();
        if (!c.isEmpty() && !c.equalsIgnoreCase("identity")) {
          throw new AoeException(
              "download",
              url + ": the server sent Content-Encoding: " + v.trim()
                  + ", but only identity was asked for; refusing the body (a server or CDN that "
                  + "compresses files must honour Accept-Encoding)");
        }
      }
    }
  }

  /**
   * Copy the body to {@code out}, starting the count at {@code have}; the new count.
   *
   * <p>Counting what arrives, not trusting headers, is what stops an endless stream or a lying
   * Content-Length: at most one byte past {@code limit} is read, none of it written.
   *
   * @param why what {@code limit} is, for the message ("the cap", "the announced size")
   */
  long copyBody(OutputStream out, long have, long limit, String why) throws AoeException {
    InputStream in;
    try {
      in = connection.getInputStream();
    } catch (IOException e) {
      throw failed(url, clock, e);
    }
    byte[] buffer = new byte[CHUNK];
    while (true) {
      int want = (int) Math.max(1, Math.min(buffer.length, limit - have + 1));
      int n;
      try {
        n = in.read(buffer, 0, want);
      } catch (IOException e) {
        AoeException limitPassed = clock.tripped();
        if (limitPassed != null) {
          throw limitPassed;
        }
        throw new AoeException(
            "download", url + ": connection failed after " + have + " bytes: " + e, e);
      }
      if (n < 0) {
        AoeException limitPassed = clock.stopped();
        if (limitPassed != null) {
          throw limitPassed;
        }
        return have;
      }
      have += n;
      clock.received(n);
      if (have > limit) {
        throw new AoeException(
            "download-too-large",
            url + ": more than " + limit + " bytes (" + why + "); stopped reading");
      }
      try {
        out.write(buffer, 0, n);
      } catch (IOException e) {
        throw new AoeException("download", "cannot store what " + url + " sent: " + e.getMessage(), e);
      }
      clock.leftMillis();
    }
  }

  /** Release the connection; a body not read to its end is never reused. */
  void close() {
    clock.unwatch();
    connection.disconnect();
  }

  static AoeException failed(String url, TransferClock clock, IOException e) {
    AoeException limitPassed = clock.tripped();
    if (limitPassed != null) {
      return limitPassed;
    }
    return new AoeException("download", url + ": " + e, e);
  }

  private static boolean digits(String s) {
    for (int i = 0; i < s.length(); i++) {
      char ch = s.charAt(i);
      if (ch < '0' || ch > '9') {
        return false;
      }
    }
    return true;
  }
}
