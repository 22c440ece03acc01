package dev.aoepack.repo;

import dev.aoepack.internal.Codec;
import dev.aoepack.json.Json;
import dev.aoepack.json.JsonException;
import dev.aoepack.net.Validators;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UnsupportedEncodingException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * The last index and tag documents a device accepted, kept beside its state (docs/format.md
 * §15.12, "The device's cache"), in the layout of the reference's {@code
 * aoe_pack/client/cache.py}, so that a phone's cache and {@code aoe-pack client check --state}'s
 * read each other's (not API).
 *
 * <p>In {@code <state file>.cache/}: {@code index.json}, the record {@code {"envelope": <base64
 * of index.json>, "etag": ..., "lastModified": ...}} (bytes and validators in one file, so they
 * change together: a device that loses the bytes loses their validators), and {@code
 * tags/<tag>.json}, the envelope of the last accepted document of each of up to {@value
 * #MAX_CACHED_TAGS} tags. It is an optimisation, never a source of trust: the caller verifies
 * everything read here exactly as if it had just been downloaded, and every failure here, on read
 * or save, reads as "nothing cached".
 *
 * <p>Where java.nio.file is missing (Android before API 26), a link is told from a file by
 * resolving it ({@link File#getCanonicalFile()}) rather than refused when the file is opened, and
 * a FIFO or device is told apart by {@link File#isFile()} before the open: a link, FIFO or device
 * under a cache name reads as nothing cached and is replaced by the next save (a rename over
 * it), and a cache or {@code tags} folder that is a link is neither read, written through nor
 * pruned, and is replaced (the link, never what it leads to) by a folder. Someone who can write
 * into the state's folder can still swap a name between that check and the open; keep the state
 * in app-private storage (docs/android.md). Folders are made owner-only (0700) and files
 * owner-read-write (0600) as far as {@link File}'s permission setters go. Reads are capped.
 */
final class DocumentCache {
  /** Tag documents kept; the least recently written go first. */
  static final int MAX_CACHED_TAGS = 32;

  private static final Pattern TAG = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,127}");
  private static final String INDEX = "index.json";
  private static final String TAGS = "tags";
  private static final long INDEX_FILE_CAP = UpdateChecker.MAX_INDEX_BYTES * 4 / 3 + 4096;
  private static final int CHUNK = 64 * 1024;

  /** A cached index: its envelope and the validators of the answer that brought it. */
  static final class CachedIndex {
    final byte[] data;
    final Validators validators;

    CachedIndex(byte[] data, Validators validators) {
      this.data = data;
      this.validators = validators;
    }
  }

  private final File folder;

  DocumentCache(File folder) {
    this.folder = folder.getAbsoluteFile();
  }

  /** The cache of the state file {@code stateFile}: {@code <state file>.cache}. */
  static DocumentCache beside(File stateFile) {
    return new DocumentCache(new File(stateFile.getPath() + ".cache"));
  }

  File folder() {
    return folder;
  }

  /** The cached index envelope and its validators, or null. */
  CachedIndex index() {
    byte[] raw = read(new String[] {INDEX}, INDEX_FILE_CAP);
    if (raw == null) {
      return null;
    }
    try {
      Object doc = Json.parse(raw, 4, 16);
      if (!(doc instanceof Map)) {
        return null;
      }
      Map<?, ?> record = (Map<?, ?>) doc;
      Object envelope = record.get("envelope");
      byte[] data = envelope instanceof String ? Codec.base64((String) envelope) : null;
      if (data == null || data.length > UpdateChecker.MAX_INDEX_BYTES) {
        return null;
      }
      return new CachedIndex(data, new Validators(text(record.get("etag")), text(record.get("lastModified"))));
    } catch (JsonException e) {
      return null;
    }
  }

  /** The cached envelope of {@code tag}'s document, or null. */
  byte[] tag(String tag) {
    if (!TAG.matcher(tag).matches()) {
      return null;
    }
    return read(new String[] {TAGS, tag + ".json"}, UpdateChecker.MAX_MANIFEST_BYTES);
  }

  /**
   * Remember an accepted index with its validators and, when there is one, the tag document
   * used. Never fails: a cache that cannot be written costs the next check its documents.
   */
  void save(byte[] index, Validators validators, String tag, byte[] document) {
    byte[] record = record(index, validators);
    try {
      if (!folder.getParentFile().isDirectory()) {
        return; // the state's folder went away: nothing to keep beside it
      }
      makeFolder(folder);
      if (tag != null && document != null && TAG.matcher(tag).matches()) {
        try { // apart: a tag document that cannot be kept still leaves the index kept
          File tags = new File(folder, TAGS);
          makeFolder(tags);
          writeIfChanged(tags, tag + ".json", document);
          prune(tags);
        } catch (IOException | RuntimeException e) {
          // nothing kept for the tag: the next check fetches its document
        }
      }
      writeIfChanged(folder, INDEX, record);
    } catch (IOException | RuntimeException e) {
      // an optimisation: the next check reads the documents again
    }
  }

  /** The reference's record, byte for byte as its json.dumps writes it. */
  static byte[] record(byte[] index, Validators validators) {
    String text = "{\"envelope\": \"" + Codec.base64(index) + "\", \"etag\": " + quoted(validators.etag())
        + ", \"lastModified\": " + quoted(validators.lastModified()) + "}";
    try {
      return text.getBytes("UTF-8");
    } catch (UnsupportedEncodingException e) {
      throw new AssertionError(e);
    }
  }

  /** A JSON string of a validator (printable ASCII), or null. */
  private static String quoted(String value) {
    if (value == null) {
      return "null";
    }
    StringBuilder out = new StringBuilder("\"");
    for (int i = 0; i < value.length(); i++) {
      char c = value.charAt(i);
      if (c == '"' || c == '\\') {
        out.append('\\');
      }
      out.append(c);
    }
    return out.append('"').toString();
  }

  private static String text(Object value) {
    return value instanceof String && ((String) value).length() <= 1024 ? (String) value : null;
  }

  // --- the folders -------------------------------------------------------------------------

  /** The file at {@code names} in the cache folder, or null: missing, not ours, a link, too large. */
  private byte[] read(String[] names, long cap) {
    try {
      File dir = folder;
      if (!isFolder(dir)) {
        return null;
      }
      for (int i = 0; i < names.length - 1; i++) {
        dir = new File(dir, names[i]);
        if (!isFolder(dir)) {
          return null;
        }
      }
      File file = new File(dir, names[names.length - 1]);
      if (isLink(file) || !file.isFile()) {
        return null; // a FIFO is never opened: it would block the check
      }
      return readCapped(file, cap);
    } catch (IOException | RuntimeException e) {
      return null;
    }
  }

  /** At most {@code cap} bytes of {@code file}; null when it holds more. */
  private static byte[] readCapped(File file, long cap) throws IOException {
    InputStream in = new FileInputStream(file);
    try {
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      byte[] buffer = new byte[CHUNK];
      long have = 0;
      while (true) {
        int n = in.read(buffer, 0, (int) Math.max(1, Math.min(buffer.length, cap - have + 1)));
        if (n < 0) {
          return out.toByteArray();
        }
        have += n;
        if (have > cap) {
          return null;
        }
        out.write(buffer, 0, n);
      }
    } finally {
      in.close();
    }
  }

  /** A folder reached without a link. */
  private static boolean isFolder(File f) throws IOException {
    return !isLink(f) && f.isDirectory();
  }

  /**
   * Whether {@code f} is a link (it resolves elsewhere than its folder's own entry). Links above
   * {@code f} do not count: Android's {@code /data/user/0} is one.
   */
  static boolean isLink(File f) throws IOException {
    File parent = f.getAbsoluteFile().getParentFile();
    return !f.getCanonicalFile().equals(new File(parent.getCanonicalFile(), f.getName()));
  }

  /**
   * Make {@code d} a folder of ours unless it is one: a link, FIFO or device there is removed
   * first (the entry, not what a link leads to); a regular file is left alone (IOException): it
   * is not ours to delete.
   */
  private static void makeFolder(File d) throws IOException {
    boolean link = isLink(d);
    if (!link && d.isDirectory()) {
      return;
    }
    if (!link && d.isFile()) {
      throw new IOException(d + " is a file");
    }
    if (!d.mkdir()) {
      d.delete(); // a link (dangling or not), a FIFO or a device: the entry goes
      if (!d.mkdir()) {
        throw new IOException("cannot make " + d);
      }
    }
    ownerOnly(d, true);
  }

  /**
   * Write {@code name} atomically (a new file renamed over it) unless it holds {@code data}; a
   * link or anything but a regular file there reads as different and is renamed over.
   */
  private static void writeIfChanged(File dir, String name, byte[] data) throws IOException {
    File target = new File(dir, name);
    if (!isLink(target) && target.isFile() && Arrays.equals(data, readCapped(target, data.length))) {
      return; // unchanged: spares the sync, and keeps its time for the pruning
    }
    File tmp = File.createTempFile("." + name + ".", ".tmp", dir);
    boolean done = false;
    try {
      ownerOnly(tmp, false);
      FileOutputStream out = new FileOutputStream(tmp);
      try {
        out.write(data);
        out.getFD().sync();
      } finally {
        out.close();
      }
      if (!tmp.renameTo(target)) {
        throw new IOException("cannot rename " + tmp + " to " + target);
      }
      done = true;
    } finally {
      if (!done) {
        tmp.delete();
      }
    }
  }

  /**
   * Keep the {@value #MAX_CACHED_TAGS} most recently written tag documents: only names a tag
   * document has, and a removal removes the entry, never what a link there leads to.
   */
  private static void prune(File tags) {
    String[] names = tags.list();
    if (names == null) {
      return;
    }
    List<File> held = new ArrayList<File>();
    for (String name : names) {
      if (name.endsWith(".json") && TAG.matcher(name.substring(0, name.length() - 5)).matches()) {
        held.add(new File(tags, name));
      }
    }
    if (held.size() <= MAX_CACHED_TAGS) {
      return;
    }
    final java.util.Map<File, Long> times = new java.util.HashMap<File, Long>();
    for (File f : held) {
      times.put(f, f.lastModified());
    }
    Collections.sort(held, new Comparator<File>() {
      @Override
      public int compare(File a, File b) {
        int c = times.get(a).compareTo(times.get(b));
        return c != 0 ? c : a.getName().compareTo(b.getName());
      }
    });
    for (File f : held.subList(0, held.size() - MAX_CACHED_TAGS)) {
      f.delete();
    }
  }

  /** Owner-only permissions (0700 for a folder, 0600 for a file), as far as File allows. */
  private static void ownerOnly(File f, boolean folder) {
    f.setReadable(false, false);
    f.setWritable(false, false);
    f.setExecutable(false, false);
    f.setReadable(true, true);
    f.setWritable(true, true);
    if (folder) {
      f.setExecutable(true, true);
    }
  }
}
