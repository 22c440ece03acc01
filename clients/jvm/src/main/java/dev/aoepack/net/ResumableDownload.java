package dev.aoepack.net;

import dev.aoepack.AoeException;
import dev.aoepack.internal.Codec;
import dev.aoepack.json.Canonical;
import dev.aoepack.json.Json;
import dev.aoepack.json.JsonException;
import java.io.File;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.security.DigestOutputStream;
import java.security.MessageDigest;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One resumable HTTP download into {@code folder}: {@code name}, {@code name.part} and {@code
 * name.part.json} (not API; {@link BundleDownload} documents the rules, a port of the reference's
 * {@code aoe_pack/storage/http.py}).
 */
final class ResumableDownload {
  private static final Pattern CONTENT_RANGE =
      Pattern.compile("bytes (\\d{1,18})-(\\d{1,18})/(\\d{1,18}|\\*)");
  private static final int MAX_SIDECAR = 64 * 1024;
  private static final int MAX_VALIDATOR = 256;

  /** The answer to a range request cannot extend the partial file: start again, once. */
  private static final class Restart extends AoeException {
    private static final long serialVersionUID = 1L;

    Restart(String message) {
      super("download", message);
    }
  }

  private final String url;
  private final TransferClock clock;
  private final File folder;
  private final File dest;
  private final File part;
  private final File meta;
  private final long maxBytes;
  private MessageDigest digest;

  ResumableDownload(String url, TransferClock clock, File folder, String name, long maxBytes) {
    this.url = url;
    this.clock = clock;
    this.folder = folder;
    this.dest = new File(folder, name);
    this.part = new File(folder, name + ".part");
    this.meta = new File(folder, name + ".part.json");
    this.maxBytes = maxBytes;
  }

  /** Download, restarting from zero once if the server cannot continue; the SHA-256 in hex. */
  String run() throws AoeException {
    try {
      return attempt();
    } catch (Restart e) {
      discard(); // no partial file now, so no range request: no loop
      return attempt();
    }
  }

  private void discard() {
    BundleDownload.delete(part);
    BundleDownload.delete(meta);
  }

  private String attempt() throws AoeException {
    digest = BundleDownload.sha256();
    long have = 0;
    String validator = resumeValidator();
    if (validator != null) {
      have = part.length();
      if (have == maxBytes && have > 0) {
        // complete when the last try stopped: a range past the end would only earn a 416
        keep(have);
        return done();
      }
    }
    Map<String, String> headers = Collections.<String, String>emptyMap();
    if (have > 0) {
      headers = new LinkedHashMap<String, String>();
      headers.put("Range", "bytes=" + have + "-");
      headers.put("If-Range", validator);
    }
    HttpCall call = HttpCall.open(url, headers, clock);
    if (call == null) {
      throw new AoeException("download", url + ": not found (404)");
    }
    long total;
    try {
      call.requireIdentity(); // the file's own bytes, or its SHA-256 and ranges fail
      long[] from = continueFrom(call, have);
      total = from[1];
      if (from[0] == 0) {
        have = 0;
        validator = validator(call);
      }
      if (total > maxBytes) {
        throw new AoeException(
            "download-too-large",
            call.url + ": announces " + total + " bytes, over the cap of " + maxBytes);
      }
      if (have == 0) { // a fresh start: remember what a later resume must ask for
        BundleDownload.delete(part);
        writeSidecar(validator);
      }
      have = receive(call, have, total);
    } finally {
      call.close();
    }
    if (total >= 0 && have != total) {
      throw new AoeException(
          "download",
          url + ": the server closed after " + have + " of " + total + " bytes; the partial "
              + "download is kept in " + part + " to resume");
    }
    return done();
  }

  private String done() throws AoeException {
    BundleDownload.rename(part, dest); // atomic: never a partial file under the name
    BundleDownload.delete(meta);
    return Codec.hex(digest.digest());
  }

  /**
   * {bytes kept, full size or -1} for this answer: a 206 must continue exactly where the partial
   * file ends; a 200 starts again from zero.
   */
  private long[] continueFrom(HttpCall call, long have) throws AoeException {
    if (call.status == 416) {
      throw new Restart(call.url + ": HTTP 416 Range Not Satisfiable");
    }
    if (have > 0 && call.status == 206) {
      String range = call.header("Content-Range");
      Matcher m = CONTENT_RANGE.matcher(range == null ? "" : range);
      if (!m.matches()) {
        throw new Restart(call.url + ": answered a range we did not ask for");
      }
      long start = Long.parseLong(m.group(1));
      long end = Long.parseLong(m.group(2));
      long total = m.group(3).equals("*") ? -1 : Long.parseLong(m.group(3));
      if (start != have || end < have || (total >= 0 && total != end + 1)) {
        throw new Restart(call.url + ": answered a range we did not ask for (" + range + ")");
      }
      return new long[] {have, total};
    }
    if (call.status != 200) {
      throw new AoeException("download", call.url + ": unexpected HTTP " + call.status);
    }
    return new long[] {0, call.contentLength()};
  }

  /** What If-Range may send back: a strong ETag, else Last-Modified, else "" (no resume). */
  private static String validator(HttpCall call) {
    String etag = call.header("ETag");
    if (etag != null && !etag.startsWith("W/") && headerSafe(etag)) {
      return etag;
    }
    String date = call.header("Last-Modified");
    return date != null && headerSafe(date) ? date : "";
  }

  private static boolean headerSafe(String value) {
    if (value.isEmpty() || value.length() > MAX_VALIDATOR) {
      return false;
    }
    for (int i = 0; i < value.length(); i++) {
      char c = value.charAt(i);
      if (c < 0x20 || c > 0x7e) {
        return false;
      }
    }
    return true;
  }

  /** Append the body to the partial file, hashed, synced so that a resume after a crash is sound. */
  private long receive(HttpCall call, long have, long total) throws AoeException {
    long bound = maxBytes;
    String why = "the cap";
    if (total >= 0 && total < bound) {
      bound = total;
      why = "the announced size";
    }
    FileOutputStream file;
    try {
      if (have == 0) {
        file = (FileOutputStream) BundleDownload.create(part);
      } else {
        keep(have);
        file = new FileOutputStream(part, true);
      }
    } catch (IOException e) {
      throw new AoeException("download", "cannot write " + part + ": " + e.getMessage(), e);
    }
    boolean tooLarge = false;
    try {
      OutputStream out = new DigestOutputStream(file, digest);
      return call.copyBody(out, have, bound, why);
    } catch (AoeException e) {
      tooLarge = e.code().equals("download-too-large");
      throw e;
    } finally {
      try {
        file.getFD().sync();
        file.close();
      } catch (IOException e) {
        tooLarge = true; // what is on disk is unknown: never resume from it
      }
      if (tooLarge) {
        discard(); // past a size we trust: these bytes can never verify
      }
    }
  }

  /** Hash the {@code have} bytes kept, read back from the file, not trusted from the sidecar. */
  private void keep(long have) throws AoeException {
    try {
      InputStream in = new FileInputStream(part);
      try {
        byte[] buffer = new byte[HttpCall.CHUNK];
        long done = 0;
        while (done < have) {
          int n = in.read(buffer, 0, (int) Math.min(buffer.length, have - done));
          if (n < 0) {
            throw new Restart(url + ": the partial file shrank while resuming");
          }
          digest.update(buffer, 0, n);
          done += n;
        }
      } finally {
        in.close();
      }
    } catch (IOException e) {
      throw new Restart(url + ": cannot read the partial file " + part + ": " + e.getMessage());
    }
  }

  /**
   * The validator the partial file came with, or null when it cannot be resumed: no sidecar, one
   * for another URL or cap, no validator, a partial file longer than the cap, or one that is not a
   * regular file under its own name in the folder (a link would take the writes elsewhere).
   */
  private String resumeValidator() {
    if (!meta.isFile() || !part.isFile() || !inFolder(part) || !inFolder(meta)) {
      return null;
    }
    byte[] raw = readSidecar();
    if (raw == null) {
      return null;
    }
    Object state;
    try {
      state = Json.parse(raw, 4, 16);
    } catch (JsonException e) {
      return null;
    }
    if (!(state instanceof Map)) {
      return null;
    }
    Map<?, ?> map = (Map<?, ?>) state;
    Object validator = map.get("validator");
    if (!url.equals(map.get("url")) || !Long.valueOf(maxBytes).equals(map.get("max_bytes"))
        || !(validator instanceof String) || !headerSafe((String) validator)
        || part.length() > maxBytes) {
      return null;
    }
    return (String) validator;
  }

  private boolean inFolder(File file) {
    try {
      return file.getCanonicalFile().equals(new File(folder.getCanonicalFile(), file.getName()));
    } catch (IOException e) {
      return false;
    }
  }

  private byte[] readSidecar() {
    if (meta.length() > MAX_SIDECAR) {
      return null;
    }
    byte[] raw = new byte[(int) meta.length()];
    try {
      InputStream in = new FileInputStream(meta);
      try {
        int done = 0;
        while (done < raw.length) {
          int n = in.read(raw, done, raw.length - done);
          if (n < 0) {
            return null;
          }
          done += n;
        }
      } finally {
        in.close();
      }
    } catch (IOException e) {
      return null;
    }
    return raw;
  }

  /** {@code name.part.json}, replaced atomically: {"max_bytes": n, "url": ..., "validator": ...}. */
  private void writeSidecar(String validator) throws AoeException {
    Map<String, Object> doc = new LinkedHashMap<String, Object>();
    doc.put("url", url);
    doc.put("validator", validator);
    doc.put("max_bytes", Long.valueOf(maxBytes));
    File temp = new File(folder, "." + meta.getName() + ".tmp");
    try {
      byte[] bytes = Canonical.encode(doc);
      BundleDownload.delete(temp);
      OutputStream out = BundleDownload.create(temp);
      try {
        out.write(bytes);
      } finally {
        out.close();
      }
    } catch (IOException e) {
      throw new AoeException("download", "cannot write " + meta + ": " + e.getMessage(), e);
    } catch (JsonException e) {
      throw new AoeException("download", url + ": cannot record the download: " + e.getMessage());
    }
    BundleDownload.rename(temp, meta);
  }
}
