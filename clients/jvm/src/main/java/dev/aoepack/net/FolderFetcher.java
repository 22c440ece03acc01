package dev.aoepack.net;

import dev.aoepack.AoeException;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.FileInputStream;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;

/**
 * A repository in a local folder: tests, and models sideloaded onto a device.
 *
 * <p>A path is a relative name of non-empty segments, none {@code .} or {@code ..}, without
 * {@code \}, {@code :} or NUL (the rule of the reference's folder store); anything else, and a
 * name that resolves (through a symbolic link) outside the folder or to anything but a regular
 * file, is {@code store}: a name from a hostile document cannot read other files of the app. Reads
 * stop one byte past the cap ({@code download-too-large}), whatever the file claims to be.
 *
 * <pre>{@code
 * Fetcher repo = new FolderFetcher(new File(context.getFilesDir(), "sideloaded-repo"));
 * }</pre>
 *
 * <p>Without java.nio.file (Android before API 26) a link cannot be refused at open time: the
 * check resolves the path with {@link File#getCanonicalFile()} and opens the resolved path, so a
 * link swapped in after the check, by someone who can write into the folder, is still followed.
 * Use a folder only the app can write to.
 */
public final class FolderFetcher implements Fetcher {
  private final File root;

  /** The repository in {@code folder}. */
  public FolderFetcher(File folder) {
    if (folder == null) {
      throw new NullPointerException("folder");
    }
    this.root = folder;
  }

  /** The folder. */
  public File folder() {
    return root;
  }

  @Override
  public byte[] fetch(String path, long maxBytes) throws AoeException {
    InputStream in = open(path);
    if (in == null) {
      return null;
    }
    try {
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      byte[] buffer = new byte[HttpCall.CHUNK];
      long have = 0;
      while (true) {
        int n = in.read(buffer, 0, (int) Math.max(1, Math.min(buffer.length, maxBytes - have + 1)));
        if (n < 0) {
          return out.toByteArray();
        }
        have += n;
        if (have > maxBytes) {
          throw new AoeException(
              "download-too-large",
              new File(root, path) + " is larger than its cap of " + maxBytes + " bytes");
        }
        out.write(buffer, 0, n);
      }
    } catch (IOException e) {
      throw new AoeException("store", "cannot read " + new File(root, path) + ": " + e, e);
    } finally {
      close(in);
    }
  }

  /** The file at {@code path} opened for reading, or null when there is none (not API). */
  InputStream open(String path) throws AoeException {
    HttpFetcher.checkName(path);
    File file = new File(root, path.replace('/', File.separatorChar));
    File real;
    File top;
    try {
      top = root.getCanonicalFile();
      real = file.getCanonicalFile();
    } catch (IOException e) {
      throw new AoeException("store", "cannot read " + file + ": " + e, e);
    }
    if (!real.getPath().startsWith(top.getPath() + File.separator)) {
      throw new AoeException(
          "store",
          file + " leads to " + real + ", outside the repository " + top + "; refusing to read it");
    }
    if (!real.exists()) {
      return null;
    }
    if (!real.isFile()) { // a FIFO would block forever, a device never end
      throw new AoeException("store", file + " is not a regular file");
    }
    try {
      return new FileInputStream(real);
    } catch (FileNotFoundException e) {
      if (!real.exists()) {
        return null;
      }
      throw new AoeException("store", "cannot read " + file + ": " + e.getMessage(), e);
    }
  }

  static void close(InputStream in) {
    try {
      in.close();
    } catch (IOException e) {
      // nothing was written: a failed close loses nothing
    }
  }
}
