package dev.aoepack.update;

import dev.aoepack.AoeException;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.security.SecureRandom;
import java.util.regex.Pattern;

/**
 * The models folder: {@code <tag>/<version>/} per installed release, {@code <tag>/current} naming
 * the version in use (absent: the app's own model), {@code .downloads/} for bundles under way
 * (not API).
 *
 * <p>Every change is a rename: a staging folder {@code <tag>/.<version>.<random>.partial} becomes
 * {@code <tag>/<version>} only when complete, and {@code current} is written to a temporary file
 * that replaces it, so a crash leaves either the old record or the new one.
 */
final class InstalledModels {
  static final Pattern TAG = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,127}");
  /** A semver string (§15.5) is a safe folder name; anything else is refused before it is one. */
  static final Pattern VERSION = Pattern.compile("[0-9][0-9A-Za-z.+-]{0,255}");
  private static final String CURRENT = "current";
  private static final SecureRandom RANDOM = new SecureRandom();

  private final File root;

  InstalledModels(File root) {
    this.root = root;
  }

  File downloads() {
    return new File(root, ".downloads");
  }

  File tagFolder(String tag) throws AoeException {
    if (tag == null || !TAG.matcher(tag).matches()) {
      throw new AoeException("usage", "'" + tag + "' is not a model tag");
    }
    return new File(root, tag);
  }

  /** The version in use for {@code tag}, or null for the app's own model. */
  String current(String tag) throws AoeException {
    File record = new File(tagFolder(tag), CURRENT);
    if (!record.isFile()) {
      return null;
    }
    String version;
    try {
      InputStream in = new FileInputStream(record);
      try {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buffer = new byte[512];
        int n;
        while ((n = in.read(buffer)) >= 0 && out.size() <= 256) {
          out.write(buffer, 0, n);
        }
        version = out.toString("UTF-8").trim();
      } finally {
        in.close();
      }
    } catch (IOException e) {
      throw new AoeException("store", "cannot read " + record + ": " + e.getMessage(), e);
    }
    if (!VERSION.matcher(version).matches() || !new File(tagFolder(tag), version).isDirectory()) {
      return null; // torn or planted record, or its folder removed: run the app's own model
    }
    return version;
  }

  /** Record {@code version} (null: none) as the one in use for {@code tag}, atomically. */
  void setCurrent(String tag, String version) throws AoeException {
    File folder = tagFolder(tag);
    File record = new File(folder, CURRENT);
    if (version == null) {
      if (!record.delete() && record.exists()) {
        throw new AoeException("output", "cannot remove " + record);
      }
      return;
    }
    File temp = new File(folder, "." + CURRENT + "." + random() + ".tmp");
    try {
      FileOutputStream out = new FileOutputStream(temp);
      try {
        out.write((version + "\n").getBytes("UTF-8"));
        out.getFD().sync();
      } finally {
        out.close();
      }
    } catch (IOException e) {
      temp.delete();
      throw new AoeException("output", "cannot write " + temp + ": " + e.getMessage(), e);
    }
    if (!temp.renameTo(record)) {
      temp.delete();
      throw new AoeException("output", "cannot replace " + record);
    }
  }

  /** A fresh, not yet existing staging path for {@code version} of {@code tag}; its parent exists. */
  File staging(String tag, String version) throws AoeException {
    File folder = tagFolder(tag);
    if (!folder.isDirectory() && !folder.mkdirs() && !folder.isDirectory()) {
      throw new AoeException("output", "cannot make " + folder);
    }
    return new File(folder, "." + version + "." + random() + ".partial");
  }

  /** Rename {@code staging} to {@code <tag>/<version>}, replacing an earlier install of it. */
  File place(File staging, String tag, String version) throws AoeException {
    File target = new File(tagFolder(tag), version);
    File aside = null;
    if (target.exists()) {
      if (!target.isDirectory()) {
        throw new AoeException("output", target + " is not a folder; refusing to replace it");
      }
      aside = new File(tagFolder(tag), "." + version + "." + random() + ".partial");
      if (!target.renameTo(aside)) {
        throw new AoeException("output", "cannot move the earlier " + target + " aside");
      }
    }
    if (!staging.renameTo(target)) {
      if (aside != null) {
        aside.renameTo(target);
      }
      throw new AoeException("output", "cannot install " + target);
    }
    if (aside != null) {
      removeTree(aside);
    }
    return target;
  }

  /** Remove {@code file}, and everything in it if it is a folder; never through a link. */
  static void removeTree(File file) {
    File[] children = isLink(file) ? null : file.listFiles();
    if (children != null) {
      for (File child : children) {
        removeTree(child);
      }
    }
    file.delete();
  }

  private static boolean isLink(File file) {
    try {
      File parent = file.getParentFile();
      File canonicalParent = parent == null ? null : parent.getCanonicalFile();
      File expected = new File(canonicalParent, file.getName());
      return !expected.getCanonicalFile().equals(expected.getAbsoluteFile());
    } catch (IOException e) {
      return true; // unknown: do not descend
    }
  }

  static String version(String version) throws AoeException {
    if (version == null || !VERSION.matcher(version).matches()) {
      throw new AoeException("usage", "'" + version + "' is not a release version");
    }
    return version;
  }

  private static String random() {
    byte[] b = new byte[4];
    RANDOM.nextBytes(b);
    StringBuilder s = new StringBuilder();
    for (byte x : b) {
      s.append(Character.forDigit((x >> 4) & 15, 16)).append(Character.forDigit(x & 15, 16));
    }
    return s.toString();
  }
}
