package dev.aoepack.bundle;

import dev.aoepack.AoeException;
import dev.aoepack.internal.Codec;
import dev.aoepack.json.Canonical;
import dev.aoepack.json.Json;
import dev.aoepack.json.JsonException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * A bundle manifest (docs/format.md §5), parsed and checked as §8 step 7
 * orders and with the reference's codes ({@code aoe_pack/bundle/manifest.py},
 * {@code verify.py}): JSON, then the fields ({@code format} first), then no
 * non-integer number, then the canonical form.
 */
final class Manifest {
  static final String FORMAT = "aoe-bundle/v1";
  static final String AEAD = "AES-256-GCM";
  static final int MAX_VALUES = 1000000;
  /** Deeper nesting than any honest manifest; Python's parser stops near 1000. */
  static final int MAX_DEPTH = 512;
  static final int MIN_CHUNK = 1 << 16;
  static final int MAX_CHUNK = 1 << 24;
  static final List<String> KEMS =
      Arrays.asList("DHKEM(P-256, HKDF-SHA256)", "DHKEM(X25519, HKDF-SHA256)", "MLKEM768-X25519");
  private static final Pattern TAG = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,127}");
  private static final Pattern HEX14 = Pattern.compile("[0-9a-f]{14}");

  final String tag;
  final String name;
  final String version;
  final String runtime;
  final String updateUrl;
  final BundleEncryption encryption;
  final List<BundleFile> files;
  final long sourceDateEpoch;

  private Manifest(
      String tag,
      String name,
      String version,
      String runtime,
      String updateUrl,
      BundleEncryption encryption,
      List<BundleFile> files,
      long sourceDateEpoch) {
    this.tag = tag;
    this.name = name;
    this.version = version;
    this.runtime = runtime;
    this.updateUrl = updateUrl;
    this.encryption = encryption;
    this.files = files;
    this.sourceDateEpoch = sourceDateEpoch;
  }

  /** Parses and checks the manifest bytes ({@code manifest}, {@code unsupported-version}, {@code limit-exceeded}). */
  static Manifest parse(byte[] bytes, int maxFiles) throws AoeException {
    long values = ValueCount.count(bytes);
    if (values > MAX_VALUES) {
      throw new AoeException(
          "limit-exceeded",
          "aoe/manifest.json holds " + values + " JSON values; the limit is " + MAX_VALUES);
    }
    Object doc;
    try {
      doc = Json.parse(bytes, MAX_DEPTH, MAX_VALUES + 1);
    } catch (JsonException e) {
      throw bad("aoe/manifest.json is not valid JSON: " + e.getMessage());
    }
    Reader r = new Reader(doc, "manifest");
    String format = r.text("format");
    if (!format.equals(FORMAT)) {
      throw new AoeException(
          "unsupported-version",
          "manifest format '" + format + "' is not supported (this library reads " + FORMAT
              + "): upgrade it");
    }
    Reader m = r.obj("model");
    String tag = m.pattern("tag", TAG, "a tag: a letter or digit, then [A-Za-z0-9._-]");
    String name = m.text("name");
    String version = m.text("version");
    if (!Semver.isValid(version)) {
      throw bad("manifest.model.version must be a semantic version such as 1.2.0");
    }
    String runtime = m.text("runtime");
    String updateUrl = null;
    if (m.has("updateURL")) {
      updateUrl = m.text("updateURL");
      String problem = UpdateUrl.problem(updateUrl);
      if (problem != null) {
        throw bad("manifest.model.updateURL " + problem);
      }
    }
    BundleEncryption encryption = null;
    boolean kemOnKek = false;
    if (r.has("encryption")) {
      Reader e = r.obj("encryption");
      String aead = e.oneOf("aead", Arrays.asList(AEAD));
      int segmentSize = e.chunkSize("segmentSize");
      List<BundleRecipient> recipients = new ArrayList<BundleRecipient>();
      Set<String> ids = new HashSet<String>();
      boolean sorted = true;
      BundleRecipient previous = null;
      for (Reader x : e.objects("recipients", -1)) {
        String type = x.oneOf("type", Arrays.asList("hpke", "kek"));
        String keyId = x.hex64("keyid");
        String wrapped = x.text("wrapped");
        String kem = type.equals("hpke") ? x.oneOf("kem", KEMS) : null;
        kemOnKek |= kem == null && x.has("kem"); // the reference drops it: not canonical
        BundleRecipient recipient = new BundleRecipient(type, keyId, kem, wrapped);
        if (previous != null) {
          int c = previous.type().compareTo(type);
          sorted &= c < 0 || (c == 0 && previous.keyId().compareTo(keyId) <= 0);
        }
        previous = recipient;
        ids.add(keyId);
        recipients.add(recipient);
      }
      if (recipients.isEmpty() || !sorted || ids.size() != recipients.size()) {
        throw bad(
            "manifest.encryption.recipients must be non-empty, sorted by type and key id, without"
                + " duplicates (each key id at most once)");
      }
      encryption = new BundleEncryption(aead, segmentSize, recipients);
    }
    List<BundleFile> files = new ArrayList<BundleFile>();
    for (Reader x : r.objects("files", maxFiles)) {
      files.add(payload(x, encryption));
    }
    for (int i = 1; i < files.size(); i++) {
      if (compareCodePoints(files.get(i - 1).path(), files.get(i).path()) >= 0) {
        throw bad("manifest.files must be sorted by path without duplicates");
      }
    }
    r.obj("config");
    r.obj("provenance");
    long sourceDateEpoch = r.integer("sourceDateEpoch", Json.MAX_SAFE_INTEGER);
    if (Json.hasNonInteger(doc)) {
      throw bad("aoe/manifest.json holds a number that is not an integer; a manifest holds integers only (format §5.1)");
    }
    boolean canonical;
    try {
      canonical = Arrays.equals(Canonical.encode(doc), bytes);
    } catch (JsonException e) {
      throw bad("aoe/manifest.json holds a value JSON cannot carry exactly: " + e.getMessage());
    }
    if (!canonical || kemOnKek) {
      throw bad("aoe/manifest.json is not in canonical form (RFC 8785)");
    }
    return new Manifest(tag, name, version, runtime, updateUrl, encryption, files, sourceDateEpoch);
  }

  private static BundleFile payload(Reader r, BundleEncryption encryption) throws AoeException {
    Reader s = r.obj("stored");
    int chunkSize = s.chunkSize("chunkSize");
    long storedSize = s.integer("size", Json.MAX_SAFE_INTEGER);
    long crc32 = s.integer("crc32", 0xFFFFFFFFL);
    List<String> chunks = s.texts("chunks");
    long expected = Math.max(1, (storedSize + chunkSize - 1) / chunkSize);
    boolean hex = true;
    for (String c : chunks) {
      hex &= Codec.isHex64(c);
    }
    if (chunks.size() != expected || !hex) {
      throw bad(s.where + ".chunks must hold " + expected + " lowercase hex SHA-256 digests");
    }
    boolean hasPrefix = r.has("noncePrefix");
    if (hasPrefix != (encryption != null)) {
      throw bad(r.where + ".noncePrefix must be present exactly when encrypted");
    }
    String prefix = null;
    if (hasPrefix) {
      prefix = r.pattern("noncePrefix", HEX14, "14 lowercase hex characters");
      if (chunkSize != encryption.segmentSize()) {
        throw bad(s.where + ".chunkSize must equal encryption.segmentSize");
      }
    }
    String path = r.text("path");
    String role = r.text("role");
    long size = r.integer("size", Json.MAX_SAFE_INTEGER);
    String sha256 = r.hex64("sha256");
    String runtime = r.has("runtime") ? r.text("runtime") : null;
    String variant = r.has("variant") ? r.text("variant") : null;
    return new BundleFile(
        path, role, size, sha256, runtime, variant, prefix, storedSize, crc32, chunkSize, chunks);
  }

  /** Compares as sequences of Unicode code points (Python's {@code str} order, §4.2). */
  static int compareCodePoints(String a, String b) {
    int i = 0;
    int j = 0;
    while (i < a.length() && j < b.length()) {
      int x = a.codePointAt(i);
      int y = b.codePointAt(j);
      if (x != y) {
        return x < y ? -1 : 1;
      }
      i += Character.charCount(x);
      j += Character.charCount(y);
    }
    return i < a.length() ? 1 : j < b.length() ? -1 : 0;
  }

  static AoeException bad(String message) {
    return new AoeException("manifest", message);
  }

  /** Typed access to one JSON object, with its path for messages. */
  private static final class Reader {
    final Map<?, ?> d;
    final String where;

    Reader(Object d, String where) throws AoeException {
      if (!(d instanceof Map)) {
        throw bad(where + " must be an object");
      }
      this.d = (Map<?, ?>) d;
      this.where = where;
    }

    boolean has(String key) {
      return d.containsKey(key);
    }

    Object get(String key) throws AoeException {
      if (!d.containsKey(key)) {
        throw bad(where + "." + key + " is missing");
      }
      return d.get(key);
    }

    String text(String key) throws AoeException {
      Object v = get(key);
      if (!(v instanceof String) || ((String) v).isEmpty()) {
        throw bad(where + "." + key + " must be a non-empty string");
      }
      return (String) v;
    }

    long integer(String key, long maximum) throws AoeException {
      Object v = get(key);
      if (!(v instanceof Long) || (Long) v < 0 || (Long) v > maximum) {
        throw bad(where + "." + key + " must be an integer in [0, " + maximum + "]");
      }
      return (Long) v;
    }

    int chunkSize(String key) throws AoeException {
      long v = integer(key, Json.MAX_SAFE_INTEGER);
      if ((v & (v - 1)) != 0 || v < MIN_CHUNK || v > MAX_CHUNK) {
        throw bad(where + "." + key + " must be a power of two in [" + MIN_CHUNK + ", " + MAX_CHUNK + "]");
      }
      return (int) v;
    }

    String oneOf(String key, List<String> allowed) throws AoeException {
      String v = text(key);
      if (!allowed.contains(v)) {
        throw bad(where + "." + key + " is '" + v + "'; expected one of " + allowed);
      }
      return v;
    }

    String pattern(String key, Pattern rx, String what) throws AoeException {
      String v = text(key);
      if (!rx.matcher(v).matches()) {
        throw bad(where + "." + key + " must be " + what);
      }
      return v;
    }

    String hex64(String key) throws AoeException {
      String v = text(key);
      if (!Codec.isHex64(v)) {
        throw bad(where + "." + key + " must be 64 lowercase hex characters");
      }
      return v;
    }

    Reader obj(String key) throws AoeException {
      return new Reader(get(key), where + "." + key);
    }

    List<Reader> objects(String key, int limit) throws AoeException {
      Object v = get(key);
      if (!(v instanceof List)) {
        throw bad(where + "." + key + " must be a list");
      }
      List<?> items = (List<?>) v;
      if (limit >= 0 && items.size() > limit) {
        throw new AoeException(
            "limit-exceeded",
            where + "." + key + " lists " + items.size() + " " + key + "; a bundle holds at most " + limit);
      }
      List<Reader> out = new ArrayList<Reader>();
      for (int i = 0; i < items.size(); i++) {
        out.add(new Reader(items.get(i), where + "." + key + "[" + i + "]"));
      }
      return out;
    }

    List<String> texts(String key) throws AoeException {
      Object v = get(key);
      if (!(v instanceof List)) {
        throw bad(where + "." + key + " must be a list of strings");
      }
      List<String> out = new ArrayList<String>();
      for (Object x : (List<?>) v) {
        if (!(x instanceof String)) {
          throw bad(where + "." + key + " must be a list of strings");
        }
        out.add((String) x);
      }
      return out;
    }
  }
}
