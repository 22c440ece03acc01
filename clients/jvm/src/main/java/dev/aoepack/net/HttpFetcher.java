package dev.aoepack.net;

import dev.aoepack.AoeException;
import java.io.ByteArrayOutputStream;
import java.io.UnsupportedEncodingException;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A repository served over HTTPS (or plain HTTP where the app allows it), read with
 * HttpURLConnection.
 *
 * <p>Every request is bounded: in size ({@code maxBytes}: a larger announced Content-Length is
 * refused before reading, and reading stops one byte past the cap, {@code download-too-large}) and
 * in time ({@link TransferLimits}: idle timeout, deadline, minimum average rate; {@code
 * download-too-slow}). 404 and 410 mean "no such file" (null); any other status but 200 is {@code
 * download}. Redirects are followed up to 4 times, only to HTTP(S), never from https:// to
 * http://. Documents are asked for with {@code Accept-Encoding: gzip} and inflated under the same
 * cap, and can be read conditionally ({@link #fetch(String, long, Validators)}: an unchanged one
 * costs a {@code 304}); bundles ({@link BundleDownload}) with {@code identity}, refusing a coded
 * body. Setting Accept-Encoding itself also keeps Android's HttpURLConnection from inflating
 * behind the library's back, where no cap would apply.
 *
 * <pre>{@code
 * Fetcher repo = HttpFetcher.builder("https://models.example.com/repo/").build();
 * byte[] index = repo.fetch("index.json", 4 << 20);   // null when absent
 * }</pre>
 *
 * <p>Immutable and safe to share between threads; each request opens its own connection.
 */
public final class HttpFetcher implements ConditionalFetcher {
  /** The longest base URL accepted (aoe_pack/urls.py, MAX_URL_LENGTH). */
  public static final int MAX_URL_LENGTH = 1024;

  private static final Pattern SHAPE =
      Pattern.compile("([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)([^?#]*)(.*)", Pattern.DOTALL);
  private static final Pattern SEGMENT =
      Pattern.compile("(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})+");

  private final String base;
  private final TransferLimits limits;

  private HttpFetcher(String base, TransferLimits limits) {
    this.base = base;
    this.limits = limits;
  }

  /** A builder for the repository at {@code baseUrl} (§15.1), e.g. {@code https://host/repo/}. */
  public static Builder builder(String baseUrl) {
    return new Builder(baseUrl);
  }

  /** Configures an {@link HttpFetcher}. */
  public static final class Builder {
    private final String url;
    private boolean cleartext;
    private TransferLimits limits = TransferLimits.DEFAULT;

    private Builder(String url) {
      this.url = url;
    }

    /**
     * Allow an {@code http://} base URL. Off by default: Android (9+) refuses cleartext HTTP unless
     * the app opts in, and plain HTTP shows every on-path observer which models a device runs
     * (the documents and bundles are signed either way). Meant for tests and local servers.
     */
    public Builder allowCleartextHttp(boolean allow) {
      this.cleartext = allow;
      return this;
    }

    /** The time limits of every request (default {@link TransferLimits#DEFAULT}). */
    public Builder limits(TransferLimits limits) {
      if (limits == null) {
        throw new NullPointerException("limits");
      }
      this.limits = limits;
      return this;
    }

    /**
     * The fetcher.
     *
     * @throws AoeException {@code usage} when the URL is not a repository address: not https://
     *     (or http:// without {@link #allowCleartextHttp}), a query, a fragment, user information,
     *     an empty, {@code .} or {@code ..} path segment, or non-ASCII characters
     */
    public HttpFetcher build() throws AoeException {
      String problem = urlProblem(url, cleartext);
      if (problem != null) {
        throw new AoeException("usage", "the repository address " + url + " " + problem);
      }
      return new HttpFetcher(url.endsWith("/") ? url : url + "/", limits);
    }
  }

  /** The base URL, ending with {@code /}. */
  public String baseUrl() {
    return base;
  }

  /** The time limits of every request. */
  public TransferLimits limits() {
    return limits;
  }

  /**
   * The document at {@code path}, read in full (no validators sent): a {@code 304} answer is
   * {@code download}.
   */
  @Override
  public byte[] fetch(String path, long maxBytes) throws AoeException {
    Fetched got = fetch(path, maxBytes, null);
    return got == null ? null : got.bytes();
  }

  /**
   * A conditional read (§15.1): {@code held}'s well-formed validators go out as {@code
   * If-None-Match} and {@code If-Modified-Since}; a {@code 304} then means the held copy, and a
   * {@code 304} to a request that sent neither is {@code download}. A {@code 200} is a new
   * answer, whatever its bytes, with the {@code ETag} and {@code Last-Modified} it carried (each
   * kept only if well-formed and given once).
   *
   * <p>Documents are asked for with {@code Accept-Encoding: gzip}. A gzip body is inflated with
   * {@code maxBytes} capping the inflated bytes ({@code download-too-large} at the first byte
   * past it) and the compressed ones bounded too, by the announced Content-Length or else the
   * cap plus 0.1 % and 1 KiB; a body that is not exactly one complete gzip member, or in another
   * coding, is {@code download}. Both the compressed and the inflated bytes are held in memory
   * (at most the two bounds).
   */
  @Override
  public Fetched fetch(String path, long maxBytes, Validators held) throws AoeException {
    String url = resolve(path);
    Map<String, String> headers = new LinkedHashMap<String, String>();
    headers.put("Accept-Encoding", "gzip");
    if (held != null && held.etag() != null) {
      headers.put("If-None-Match", held.etag());
    }
    if (held != null && held.lastModified() != null) {
      headers.put("If-Modified-Since", held.lastModified());
    }
    boolean conditional = headers.size() > 1;
    TransferClock clock = new TransferClock(url, limits);
    HttpCall call = HttpCall.open(url, headers, clock);
    if (call == null) {
      return null;
    }
    try {
      if (call.status == 304) {
        if (!conditional) {
          throw new AoeException(
              "download",
              call.url + ": HTTP 304 Not Modified to a request that named no version (no "
                  + "If-None-Match or If-Modified-Since was sent)");
        }
        return Fetched.notModified(held);
      }
      if (call.status != 200) {
        throw new AoeException(
            "download", call.url + ": unexpected HTTP " + call.status + " for a document");
      }
      boolean gzip = call.gzipOrIdentity() != null;
      long total = call.contentLength();
      long wire = gzip ? Gzip.compressedBound(maxBytes) : maxBytes;
      if (total > wire) {
        throw new AoeException(
            "download-too-large",
            call.url + ": announces " + total + (gzip ? " compressed" : "") + " bytes, over the cap of "
                + maxBytes + (gzip ? " (inflated)" : ""));
      }
      ByteArrayOutputStream out = new ByteArrayOutputStream(
          (int) Math.min(total < 0 ? 8192 : total, HttpCall.CHUNK));
      long got = total < 0
          ? call.copyBody(out, 0, wire, gzip ? "the compressed bound" : "the cap")
          : call.copyBody(out, 0, total, "the announced size");
      if (total >= 0 && got != total) {
        throw new AoeException(
            "download", call.url + ": the server closed after " + got + " of " + total + " bytes");
      }
      byte[] body = out.toByteArray();
      Validators validators = new Validators(call.header("ETag"), call.header("Last-Modified"));
      return Fetched.of(gzip ? Gzip.inflate(body, maxBytes, call.url) : body, validators);
    } finally {
      call.close();
    }
  }

  /**
   * The URL of a repository path: a relative name of non-empty segments, none {@code .} or
   * {@code ..}, no backslash, so that a name from a hostile document can neither climb out of the
   * repository nor turn into another URL ({@code store}); every other character is
   * percent-encoded.
   */
  String resolve(String path) throws AoeException {
    checkName(path);
    StringBuilder url = new StringBuilder(base);
    byte[] utf8;
    try {
      utf8 = path.getBytes("UTF-8");
    } catch (UnsupportedEncodingException e) {
      throw new AssertionError(e);
    }
    for (byte b : utf8) {
      int c = b & 0xff;
      if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
          || c == '-' || c == '.' || c == '_' || c == '~' || c == '/') {
        url.append((char) c);
      } else {
        url.append('%').append(Character.toUpperCase(Character.forDigit(c >> 4, 16)))
            .append(Character.toUpperCase(Character.forDigit(c & 15, 16)));
      }
    }
    return url.toString();
  }

  /** The rule of the reference's stores: {@code store} for a name that could leave the repository. */
  static void checkName(String name) throws AoeException {
    if (name == null) {
      throw new NullPointerException("path");
    }
    boolean bad = name.indexOf('\\') >= 0 || name.indexOf('\0') >= 0 || name.indexOf(':') >= 0;
    for (String part : name.split("/", -1)) {
      bad |= part.isEmpty() || part.equals(".") || part.equals("..");
    }
    if (bad) {
      throw new AoeException(
          "store", "refusing document name '" + name + "' outside the repository");
    }
  }

  /** Why {@code url} is not a repository address (aoe_pack/urls.py), or null. */
  static String urlProblem(String url, boolean cleartext) {
    if (url.length() > MAX_URL_LENGTH) {
      return "is " + url.length() + " characters long; at most " + MAX_URL_LENGTH + " are allowed";
    }
    for (int i = 0; i < url.length(); i++) {
      char c = url.charAt(i);
      if (c < 0x21 || c > 0x7e || c == '\\') {
        return "contains a space, a backslash or a character that is not printable ASCII";
      }
    }
    Matcher m = SHAPE.matcher(url);
    if (!m.matches()) {
      return "is not an absolute URL (scheme://host/path)";
    }
    String scheme = m.group(1).toLowerCase(Locale.ROOT);
    if (!scheme.equals("https") && !(scheme.equals("http") && cleartext)) {
      return "uses " + m.group(1) + "://; devices read repositories over https:// "
          + (scheme.equals("http") ? "(plain HTTP only where the app allows it)" : "");
    }
    if (!m.group(4).isEmpty()) {
      return "has a query or a fragment; a repository address has none";
    }
    String authority = m.group(2);
    if (authority.isEmpty() || authority.indexOf('@') >= 0) {
      return "has no host, or carries user information";
    }
    String path = m.group(3);
    String[] segments = path.isEmpty() ? new String[0] : path.substring(1).split("/", -1);
    for (int i = 0; i < segments.length; i++) {
      String s = segments[i];
      if (i == segments.length - 1 && s.isEmpty()) {
        break; // one trailing slash
      }
      if (s.isEmpty() || s.equals(".") || s.equals("..") || !SEGMENT.matcher(s).matches()) {
        return "has a path segment '" + s + "' that is empty, '.', '..' or not URL-safe";
      }
    }
    return null;
  }
}
