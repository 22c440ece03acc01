package dev.aoepack.bundle;

import dev.aoepack.AoeException;
import java.io.File;
import java.io.IOException;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * Where an unpack writes (docs/format.md §9), after {@code
 * aoe_pack/bundle/unpack.py}: every file goes to a hidden staging folder
 * beside the destination ({@code .<name>.<random>.partial}); only when all
 * passed are they moved into place: the staging folder renamed to the
 * destination when that did not exist, else each file renamed into the
 * existing folder. On failure the staging folder, and the folders this
 * unpack created, are removed.
 *
 * <p>Java 8 (and Android) without {@code java.nio.file} cannot open a folder
 * with {@code O_NOFOLLOW}: a symbolic link in the way is found by comparing
 * canonical and absolute paths before each use, as the reference does where
 * the OS lacks those flags (Windows). Folders are not fsynced (no API);
 * every file is.
 */
final class OutputTree {
  private static final Pattern WINDOWS_DEVICES =
      Pattern.compile(
          "(CON|PRN|AUX|NUL|CONIN\\$|CONOUT\\$|COM[0-9\u00b9\u00b2\u00b3]|LPT[0-9\u00b9\u00b2\u00b3])",
          Pattern.CASE_INSENSITIVE | Pattern.UNICODE_CASE);
  private static final String WINDOWS_FORBIDDEN = "<>:\"|?*";
  private static final boolean WINDOWS = File.separatorChar == '\\';

  private final File destination;
  private final boolean existed;
  private final boolean replace;
  private final File staging;
  private final List<File> madeParents; // deepest first
  private final List<String> staged = new ArrayList<String>();
  private final List<File> createdInDestination = new ArrayList<File>();

  private OutputTree(
      File destination, boolean existed, boolean replace, File staging, List<File> madeParents) {
    this.destination = destination;
    this.existed = existed;
    this.replace = replace;
    this.staging = staging;
    this.madeParents = madeParents;
  }

  static OutputTree create(File destination, boolean replace) throws AoeException {
    File root = destination.getAbsoluteFile();
    boolean existed = refuseNonFolder(root);
    List<File> made = new ArrayList<File>();
    File parent = root.getParentFile();
    if (parent == null) {
      throw new AoeException("output", "cannot unpack to the root of the file system: " + root);
    }
    for (File p = parent; p != null && !p.exists() && !isLink(p); p = p.getParentFile()) {
      made.add(p);
    }
    if (!parent.isDirectory() && !parent.mkdirs()) {
      discardFolders(made);
      throw new AoeException("output", "cannot create the output folder " + parent);
    }
    SecureRandom random = new SecureRandom();
    for (int attempt = 0; attempt < 16; attempt++) {
      File staging =
          new File(parent, "." + root.getName() + "." + Long.toHexString(random.nextLong()) + ".partial");
      if (staging.mkdir()) {
        return new OutputTree(root, existed, replace, staging, made);
      }
    }
    discardFolders(made);
    throw new AoeException("output", "cannot create a staging folder in " + parent);
  }

  /** True if {@code root} is a folder, false if nothing is there; {@code output} for anything else. */
  private static boolean refuseNonFolder(File root) throws AoeException {
    if (isLink(root)) {
      throw new AoeException("output", root + " is a symbolic link; symlinks are never followed");
    }
    if (!root.exists()) {
      return false;
    }
    if (root.isFile()) {
      throw new AoeException("output", root + " is a file, not a folder");
    }
    if (!root.isDirectory()) {
      throw new AoeException("output", root + " is not a folder");
    }
    return true;
  }

  /**
   * The staging file for {@code relpath}, its folders created; {@code
   * unsafe-entry} for a path §9 step 1 refuses, {@code output} if the target
   * in an existing destination is a folder, or a file not to be replaced.
   */
  File stage(String relpath) throws AoeException {
    String[] parts = safeParts(relpath);
    File folder = staging;
    for (int i = 0; i < parts.length - 1; i++) {
      folder = new File(folder, parts[i]);
      if (!folder.isDirectory() && !folder.mkdir()) {
        throw new AoeException("output", "cannot create " + folder);
      }
    }
    if (existed) {
      checkTarget(parts, relpath, false);
    }
    File file = new File(folder, parts[parts.length - 1]);
    if (file.exists() || isLink(file)) {
      throw new AoeException("output", "cannot write " + relpath + ": it is staged twice");
    }
    staged.add(relpath);
    return file;
  }

  /** Moves every staged file into place. */
  void commit() throws AoeException {
    if (!existed) {
      if (destination.exists() || isLink(destination) || !staging.renameTo(destination)) {
        throw new AoeException(
            "output", "cannot move the unpacked files to " + destination + " (did it appear meanwhile?)");
      }
      return;
    }
    for (String relpath : staged) {
      String[] parts = relpath.split("/", -1);
      File target = checkTarget(parts, relpath, true);
      File from = new File(staging, relpath.replace('/', File.separatorChar));
      if (!from.renameTo(target)) {
        throw new AoeException("output", "cannot write " + target);
      }
    }
    deleteTree(staging);
  }

  /** Removes what this unpack made and did not place. */
  void discard() {
    deleteTree(staging);
    for (int i = createdInDestination.size() - 1; i >= 0; i--) {
      createdInDestination.get(i).delete(); // only ever removes an empty folder
    }
    discardFolders(madeParents);
  }

  /** The target below an existing destination; its folders checked (and made, when {@code make}). */
  private File checkTarget(String[] parts, String relpath, boolean make) throws AoeException {
    File folder = destination;
    for (int i = 0; i < parts.length - 1; i++) {
      folder = new File(folder, parts[i]);
      if (isLink(folder)) {
        throw new AoeException(
            "output", "cannot use " + folder + " as an output folder: it is a symbolic link (never followed)");
      }
      if (folder.exists()) {
        if (!folder.isDirectory()) {
          throw new AoeException("output", "cannot use " + folder + " as an output folder: not a folder");
        }
      } else if (make) {
        if (!folder.mkdir()) {
          throw new AoeException("output", "cannot create " + folder);
        }
        createdInDestination.add(folder);
      }
    }
    File target = new File(folder, parts[parts.length - 1]);
    if (target.isDirectory() && !isLink(target)) {
      throw new AoeException("output", target + " is a folder; a model file goes there");
    }
    if ((target.exists() || isLink(target)) && !replace) {
      throw new AoeException("output", target + " already exists; allow replacing it to overwrite");
    }
    return target;
  }

  /** §9 step 1, again, whatever §4.7 already held. */
  static String[] safeParts(String relpath) throws AoeException {
    String[] parts = relpath.split("/", -1);
    boolean bad = relpath.startsWith("/");
    for (String p : parts) {
      bad |= p.isEmpty() || p.equals(".") || p.equals("..") || p.indexOf('\\') >= 0;
    }
    if (bad) {
      throw new AoeException("unsafe-entry", "refusing to write unsafe path '" + relpath + "'");
    }
    if (WINDOWS) {
      for (String p : parts) {
        refuseOnWindows(relpath, p);
      }
    }
    return parts;
  }

  static void refuseOnWindows(String relpath, String part) throws AoeException {
    String stem = part.split("\\.", 2)[0];
    int end = stem.length();
    while (end > 0 && stem.charAt(end - 1) == ' ') {
      end--;
    }
    String why = null;
    if (WINDOWS_DEVICES.matcher(stem.substring(0, end)).matches()) {
      why = "'" + part + "' is a device there";
    } else if (part.indexOf(':') >= 0) {
      why = "'" + part + "' is a stream of another file there";
    } else if (part.endsWith(".") || part.endsWith(" ")) {
      why = "Windows drops the dot or space that '" + part + "' ends with";
    } else {
      for (int i = 0; i < part.length(); i++) {
        char c = part.charAt(i);
        if (c < 32 || WINDOWS_FORBIDDEN.indexOf(c) >= 0) {
          why = "'" + part + "' holds a character Windows refuses (<>\"|?* or a control character)";
          break;
        }
      }
    }
    if (why != null) {
      throw new AoeException(
          "unsafe-entry", "refusing to write '" + relpath + "' on Windows: " + why);
    }
  }

  /** True if {@code f} is a symbolic link (even a dangling one). */
  static boolean isLink(File f) {
    try {
      File parent = f.getAbsoluteFile().getParentFile();
      if (parent == null) {
        return false;
      }
      File candidate = new File(parent.getCanonicalFile(), f.getName());
      return !candidate.getCanonicalFile().equals(candidate.getAbsoluteFile());
    } catch (IOException e) {
      return true; // cannot tell: treat it as in the way
    }
  }

  private static void discardFolders(List<File> deepestFirst) {
    for (File f : deepestFirst) {
      f.delete();
    }
  }

  private static void deleteTree(File f) {
    if (f.isDirectory() && !isLink(f)) {
      File[] children = f.listFiles();
      if (children != null) {
        for (File c : children) {
          deleteTree(c);
        }
      }
    }
    f.delete();
  }
}
