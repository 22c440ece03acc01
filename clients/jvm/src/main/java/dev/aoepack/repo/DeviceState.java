package dev.aoepack.repo;

import dev.aoepack.AoeException;
import dev.aoepack.internal.Codec;
import dev.aoepack.json.Json;
import dev.aoepack.json.JsonException;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.FileInputStream;
import java.io.FileNotFoundException;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * What a device remembers of a repository between checks (§15.6), in the reference's JSON
 * file: {@code {"root": <base64 envelope>, "manifestVersion", "manifestSha256",
 * "manifestRootKeys", "indexSha256"}}, read up to 4 MiB and replaced atomically, so the
 * library and {@code aoe-pack client check --state} can share one file. Immutable.
 */
final class DeviceState {
  /** A state holds one root (1 MiB at most) and a few fields. */
  static final int MAX_STATE_BYTES = 4 << 20;

  final byte[] root;
  final Floor floor; // null: no manifest accepted yet

  DeviceState(byte[] root, Floor floor) {
    this.root = root;
    this.floor = floor;
  }

  /** The state a check starts from (§15.6 step 2): the file's, or the shipped root with no floor. */
  static DeviceState load(File path, byte[] shippedRoot) throws AoeException {
    Object[] remembered = read(path);
    if (remembered == null) {
      return new DeviceState(shippedRoot, null);
    }
    DeviceState state = (DeviceState) remembered[0];
    Root root = (Root) remembered[1];
    Root shipped = Root.verifySelfSigned(shippedRoot, "--trusted-root");
    if (shipped.version() > root.version()) {
      return new DeviceState(shippedRoot, state.floor);
    }
    if (shipped.version() == root.version() && !java.util.Arrays.equals(shippedRoot, state.root)) {
      throw new AoeException(
          "untrusted-metadata",
          "the trusted root differs from the root version " + shipped.version() + " that " + path
              + " remembers for this repository: the repository was re-created or the shipped root is"
              + " wrong; if it was re-created, delete " + path + " to trust the new one");
    }
    return state;
  }

  /** {state, its root} as the file holds them, or null when there is no file. */
  static Object[] read(File path) throws AoeException {
    byte[] data;
    try {
      data = readCapped(path);
    } catch (FileNotFoundException e) {
      if (!path.exists()) {
        return null;
      }
      throw new AoeException("store", "cannot read the client state " + path + ": " + e.getMessage(), e);
    } catch (IOException e) {
      throw new AoeException("store", "cannot read the client state " + path + ": " + e.getMessage(), e);
    }
    if (data == null) {
      throw unreadable(path, "larger than " + MAX_STATE_BYTES + " bytes");
    }
    byte[] rootBytes;
    Long version;
    String digest;
    String indexDigest;
    Set<String> keys;
    try {
      Object parsed = Json.parse(data, SignedDocument.MAX_DEPTH, SignedDocument.MAX_DOCUMENT_VALUES);
      if (!(parsed instanceof Map)) {
        throw unreadable(path, "not a JSON object");
      }
      Map<?, ?> doc = (Map<?, ?>) parsed;
      Object root = doc.get("root");
      if (!(root instanceof String) || (rootBytes = Codec.base64((String) root)) == null) {
        throw unreadable(path, "root must be base64 text");
      }
      if (!doc.containsKey("manifestVersion")) {
        throw unreadable(path, "KeyError: 'manifestVersion'");
      }
      Object v = doc.get("manifestVersion");
      if (v != Json.NULL && (!(v instanceof Long) || (Long) v < 1)) {
        throw unreadable(path, "manifestVersion must be a positive integer or null");
      }
      version = v == Json.NULL ? null : (Long) v;
      digest = digest(doc.get("manifestSha256"), "manifestSha256", path);
      indexDigest = digest(doc.get("indexSha256"), "indexSha256", path);
      Object k = doc.get("manifestRootKeys");
      keys = null;
      if (k != null && k != Json.NULL) {
        if (!(k instanceof List)) {
          throw unreadable(path, "manifestRootKeys must be a list of key ids or null");
        }
        keys = new TreeSet<String>();
        for (Object id : (List<?>) k) {
          if (!(id instanceof String) || !Codec.isHex64((String) id)) {
            throw unreadable(path, "manifestRootKeys must be a list of key ids or null");
          }
          keys.add((String) id);
        }
      }
    } catch (JsonException e) {
      throw unreadable(path, e.getMessage());
    }
    Root root = Root.verifySelfSigned(rootBytes, "root remembered in " + path);
    // An old state's manifest was accepted under the root it remembers.
    Set<String> rootKeys = keys == null ? root.keys().keySet() : keys;
    Floor floor = version == null ? null : new Floor(version, digest, rootKeys, indexDigest);
    return new Object[] {new DeviceState(rootBytes, floor), root};
  }

  private static String digest(Object value, String what, File path) throws AoeException {
    if (value == null || value == Json.NULL) {
      return null;
    }
    if (!(value instanceof String) || !Codec.isHex64((String) value)) {
      throw unreadable(path, what + " must be 64 lowercase hex digits or null");
    }
    return (String) value;
  }

  private static AoeException unreadable(File path, String why) {
    return new AoeException(
        "repository-format",
        "client state " + path + " is unreadable: " + why + "; delete it to start again from the trusted root");
  }

  /** The file's bytes, or null when it is longer than {@link #MAX_STATE_BYTES}. */
  private static byte[] readCapped(File path) throws IOException {
    if (path.isDirectory()) {
      throw new IOException("is a directory");
    }
    InputStream in = new FileInputStream(path);
    try {
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      byte[] buf = new byte[8192];
      int n;
      while ((n = in.read(buf)) > 0) {
        out.write(buf, 0, n);
        if (out.size() > MAX_STATE_BYTES) {
          return null;
        }
      }
      return out.toByteArray();
    } finally {
      in.close();
    }
  }

  /**
   * This state (whose root is {@code root}), never below what the file holds now: the newer
   * root of the two, and a higher floor there that holds under the root kept (fast-forward
   * recovery drops one that does not); at an equal version a digest we lack is taken from it.
   */
  DeviceState merged(Root root, Object[] onDisk) {
    if (onDisk == null) {
      return this;
    }
    DeviceState theirs = (DeviceState) onDisk[0];
    Root theirRoot = (Root) onDisk[1];
    DeviceState state = this;
    if (theirRoot.version() > root.version()) {
      state = new DeviceState(theirs.root, state.floor);
      root = theirRoot;
    }
    Floor f = theirs.floor;
    if (f == null || !f.holdsUnder(root)) {
      return state;
    }
    if (state.floor == null || f.version > state.floor.version) {
      return new DeviceState(state.root, f);
    }
    if (f.version == state.floor.version) {
      Floor mine = state.floor;
      return new DeviceState(
          state.root,
          new Floor(
              mine.version,
              mine.manifestSha256 != null ? mine.manifestSha256 : f.manifestSha256,
              mine.rootKeys,
              mine.indexSha256 != null ? mine.indexSha256 : f.indexSha256));
    }
    return state;
  }

  /** Writes this state merged with the file's (read again now), atomically; what was written. */
  DeviceState save(File path, Root root) throws AoeException {
    DeviceState state = merged(root, read(path));
    byte[] text = state.toJson().getBytes(StandardCharsets.UTF_8);
    File dir = path.getAbsoluteFile().getParentFile();
    if (dir != null && !dir.isDirectory() && !dir.mkdirs() && !dir.isDirectory()) {
      throw new AoeException("store", "cannot save the client state " + path + ": cannot create " + dir);
    }
    File tmp = null;
    try {
      tmp = File.createTempFile("." + path.getName() + ".", ".partial", dir);
      FileOutputStream out = new FileOutputStream(tmp);
      try {
        out.write(text);
        out.flush();
        out.getFD().sync();
      } finally {
        out.close();
      }
      if (!tmp.renameTo(path)) {
        // Windows does not rename over an existing file; POSIX (and Android) do, atomically.
        if (!path.delete() || !tmp.renameTo(path)) {
          throw new IOException("cannot rename " + tmp + " to " + path);
        }
      }
      tmp = null;
    } catch (IOException e) {
      throw new AoeException("store", "cannot save the client state " + path + ": " + e.getMessage(), e);
    } finally {
      if (tmp != null && !tmp.delete()) {
        tmp.deleteOnExit();
      }
    }
    return state;
  }

  /** The reference's layout ({@code json.dumps(doc, indent=2)} and a newline). */
  String toJson() {
    StringBuilder b = new StringBuilder("{\n");
    b.append("  \"root\": \"").append(Codec.base64(root)).append("\",\n");
    b.append("  \"manifestVersion\": ").append(floor == null ? "null" : Long.toString(floor.version)).append(",\n");
    b.append("  \"manifestSha256\": ").append(quoted(floor == null ? null : floor.manifestSha256)).append(",\n");
    List<String> keys = floor == null ? Collections.<String>emptyList() : new ArrayList<String>(new TreeSet<String>(floor.rootKeys));
    if (keys.isEmpty()) {
      b.append("  \"manifestRootKeys\": [],\n");
    } else {
      b.append("  \"manifestRootKeys\": [\n");
      for (int i = 0; i < keys.size(); i++) {
        b.append("    \"").append(keys.get(i)).append(i + 1 < keys.size() ? "\",\n" : "\"\n");
      }
      b.append("  ],\n");
    }
    b.append("  \"indexSha256\": ").append(quoted(floor == null ? null : floor.indexSha256)).append("\n}\n");
    return b.toString();
  }

  private static String quoted(String s) {
    return s == null ? "null" : "\"" + s + "\"";
  }
}
