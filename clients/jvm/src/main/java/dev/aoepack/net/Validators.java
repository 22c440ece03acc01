package dev.aoepack.net;

import java.text.ParsePosition;
import java.text.SimpleDateFormat;
import java.util.Date;
import java.util.Locale;
import java.util.TimeZone;
import java.util.regex.Pattern;

/**
 * What identifies the copy of a document a device holds: the {@code ETag} and {@code
 * Last-Modified} of the answer that brought its bytes (RFC 9110 §8.8), sent back as {@code
 * If-None-Match} and {@code If-Modified-Since} (docs/format.md §15.1, "Conditional requests").
 *
 * <p>A value is sent only if it is well-formed, since it goes back into a request header: an
 * entity-tag of printable ASCII ({@code "xyz"} or the weak {@code W/"xyz"}), or an HTTP-date in
 * the IMF-fixdate form every server sends ({@code Sun, 06 Nov 1994 08:49:37 GMT}; the two
 * obsolete forms are not kept), each at most {@value #MAX_LENGTH} characters. Anything else, a
 * forged value or a control character, is dropped. Immutable.
 */
public final class Validators {
  /** The longest validator kept: an ETag or an HTTP-date is tens of characters. */
  public static final int MAX_LENGTH = 256;
  /** No validators: a request that names no held copy. */
  public static final Validators NONE = new Validators(null, null);

  private static final Pattern ETAG = Pattern.compile("(?:W/)?\"[\\x21\\x23-\\x7e]*\"");
  private static final Pattern IMF_FIXDATE = Pattern.compile(
      "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} "
          + "(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} "
          + "[0-9]{2}:[0-9]{2}:[0-9]{2} GMT");

  private final String etag;
  private final String lastModified;

  /** The given values, each kept only if well-formed (else null). */
  public Validators(String etag, String lastModified) {
    this.etag = isEtag(etag) ? etag : null;
    this.lastModified = isHttpDate(lastModified) ? lastModified : null;
  }

  /** The entity-tag, or null. */
  public String etag() {
    return etag;
  }

  /** The HTTP-date, or null. */
  public String lastModified() {
    return lastModified;
  }

  /** True when neither is held: a conditional request would name nothing. */
  public boolean isEmpty() {
    return etag == null && lastModified == null;
  }

  /** Whether {@code value} is an RFC 9110 entity-tag of printable ASCII, weak ones included. */
  public static boolean isEtag(String value) {
    return value != null && value.length() <= MAX_LENGTH && ETAG.matcher(value).matches();
  }

  /** Whether {@code value} is an IMF-fixdate (RFC 9110 §5.6.7) naming a real instant. */
  public static boolean isHttpDate(String value) {
    if (value == null || value.length() > MAX_LENGTH || !IMF_FIXDATE.matcher(value).matches()) {
      return false;
    }
    SimpleDateFormat format = new SimpleDateFormat("EEE, dd MMM yyyy HH:mm:ss zzz", Locale.US);
    format.setTimeZone(TimeZone.getTimeZone("GMT"));
    format.setLenient(false);
    ParsePosition at = new ParsePosition(0);
    Date date = format.parse(value, at);
    return date != null && at.getIndex() == value.length()
        && format.format(date).equals(value); // the weekday matches the date
  }

  @Override
  public boolean equals(Object o) {
    if (!(o instanceof Validators)) {
      return false;
    }
    Validators v = (Validators) o;
    return same(etag, v.etag) && same(lastModified, v.lastModified);
  }

  @Override
  public int hashCode() {
    return (etag == null ? 0 : etag.hashCode()) * 31
        + (lastModified == null ? 0 : lastModified.hashCode());
  }

  @Override
  public String toString() {
    return "Validators{etag=" + etag + ", lastModified=" + lastModified + "}";
  }

  private static boolean same(String a, String b) {
    return a == null ? b == null : a.equals(b);
  }
}
