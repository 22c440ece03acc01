package dev.aoepack.net;

import dev.aoepack.AoeException;
import dev.aoepack.internal.Codec;
import java.io.File;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * Steps 12 and 13 of the device update procedure (docs/format.md §15.6): download a release's
 * bundle into a folder and match it with the size and SHA-256 the signed manifest gives.
 *
 * <p>The bytes are written to {@code <name>.part} and hashed as they arrive. The file appears
 * under {@code <name>} (an atomic rename) only when complete, and it is returned only when its
 * length and SHA-256 are the signed ones; otherwise it is deleted: {@code bundle-mismatch}. No more
 * than {@code size} bytes are ever read ({@code download-too-large}, and the partial file, whose
 * bytes can never match, is deleted). A bundle already complete under {@code <name>} (an earlier
 * update stopped after downloading it) is used again if it still matches.
 *
 * <p>From an {@link HttpFetcher} an interrupted download resumes on the next call, under the rules
 * of §15.6 "Resuming": {@code <name>.part.json} records the URL, the cap and the server's
 * validator (a strong ETag, else Last-Modified); a later call for the same URL and cap sends
 * {@code Range: bytes=<have>-} with {@code If-Range: <validator>}, appends a 206 that continues
 * exactly where the file ends, starts again on 200 (the file changed, or the server ignores
 * ranges), and discards the partial file on 416 or a 206 for another range. Without a recorded
 * validator nothing is appended. A download stopped by its time limits ({@code
 * download-too-slow}) or a cut connection ({@code download}) keeps its partial file for the next
 * call. From a {@link FolderFetcher} or any other {@link Fetcher} the bundle is copied whole.
 *
 * <pre>{@code
 * File bundle = BundleDownload.download(repo, "bundles/" + sha256 + ".aoe", size, sha256,
 *     downloadsDir, tag + "-" + version + ".aoe");
 * }</pre>
 */
public final class BundleDownload {
  private BundleDownload() {}

  /**
   * Download {@code path} of {@code repository} to {@code folder/name}; the matched file.
   *
   * @param path the release's {@code url}: a name relative to the repository (§15.4)
   * @param size the release's signed {@code size}: the cap, and the length the file must have
   * @param sha256 the release's signed {@code sha256}, 64 lowercase hex digits
   * @param folder the download folder, made if missing; only the app should write to it
   * @param name the file name in {@code folder} (no separator)
   * @throws AoeException {@code bundle-mismatch} (length or digest differ; the file is deleted),
   *     {@code download-too-large}, {@code download-too-slow}, {@code download} (network, a
   *     missing file on a server, an unexpected answer, a full disk), {@code store} (a missing or
   *     unsafe file in a folder repository), {@code usage} (bad arguments)
   */
  public static File download(
      Fetcher repository, String path, long size, String sha256, File folder, String name)
      throws AoeException {
    if (repository == null || path == null || folder == null || name == null) {
      throw new NullPointerException();
    }
    if (size < 0 || !Codec.isHex64(sha256)) {
      throw new AoeException("usage", "a bundle needs a size >= 0 and a SHA-256 of 64 hex digits");
    }
    if (name.isEmpty() || name.equals(".") || name.equals("..") || name.indexOf('/') >= 0
        || name.indexOf(File.separatorChar) >= 0 || name.indexOf('\0') >= 0) {
      throw new AoeException("usage", "'" + name + "' is not a file name");
    }
    HttpFetcher.checkName(path);
    if (!folder.isDirectory() && !folder.mkdirs() && !folder.isDirectory()) {
      throw new AoeException("download", "cannot make the download folder " + folder);
    }
    File dest = new File(folder, name);
    if (dest.isFile() && dest.length() == size && sha256.equals(hashOf(dest, size))) {
      return dest;
    }
    String got;
    if (repository instanceof HttpFetcher) {
      HttpFetcher http = (HttpFetcher) repository;
      String url = http.resolve(path);
      got = new ResumableDownload(url, new TransferClock(url, http.limits()), folder, name, size)
          .run();
    } else {
      got = copy(repository, path, size, folder, name);
    }
    long length = dest.length();
    if (length != size) {
      delete(dest);
      throw new AoeException(
          "bundle-mismatch",
          "the bundle " + path + " is " + length + " bytes; the manifest says " + size);
    }
    if (!sha256.equals(got)) {
      delete(dest);
      throw new AoeException(
          "bundle-mismatch",
          "the bundle " + path + " has SHA-256 " + got.substring(0, 16) + "...; the manifest says "
              + sha256.substring(0, 16) + "... (substituted or mixed-up bundle)");
    }
    return dest;
  }

  /** A whole copy from a folder (or any fetcher): no resume, hashed while written. */
  private static String copy(Fetcher repository, String path, long size, File folder, String name)
      throws AoeException {
    File part = new File(folder, name + ".part");
    delete(new File(folder, name + ".part.json"));
    delete(part);
    MessageDigest digest = sha256();
    InputStream in = null;
    byte[] whole = null;
    if (repository instanceof FolderFetcher) {
      in = ((FolderFetcher) repository).open(path);
      if (in == null) {
        throw new AoeException("store", path + " does not exist in the repository");
      }
    } else {
      whole = repository.fetch(path, size); // bounded by the signed size
      if (whole == null) {
        throw new AoeException("download", path + ": not found");
      }
    }
    try {
      OutputStream out = create(part);
      try {
        if (whole != null) {
          out.write(whole);
          digest.update(whole);
        } else {
          byte[] buffer = new byte[HttpCall.CHUNK];
          long have = 0;
          int n;
          while ((n = in.read(buffer, 0, (int) Math.min(buffer.length, size - have + 1))) >= 0) {
            have += n;
            if (have > size) {
              throw new AoeException(
                  "download-too-large", path + " is larger than its cap of " + size + " bytes");
            }
            out.write(buffer, 0, n);
            digest.update(buffer, 0, n);
          }
        }
        ((FileOutputStream) out).getFD().sync();
      } finally {
        out.close();
      }
    } catch (IOException e) {
      delete(part);
      throw new AoeException("download", "cannot copy " + path + " to " + part + ": " + e, e);
    } catch (AoeException e) {
      delete(part);
      throw e;
    } finally {
      if (in != null) {
        FolderFetcher.close(in);
      }
    }
    rename(part, new File(folder, name));
    return Codec.hex(digest.digest());
  }

  /** A new file, created exclusively: never one planted under the name, never through a link. */
  static OutputStream create(File file) throws IOException {
    if (!file.createNewFile()) {
      throw new IOException(file + " already exists");
    }
    return new FileOutputStream(file);
  }

  static void rename(File from, File to) throws AoeException {
    if (!from.renameTo(to)) {
      throw new AoeException("download", "cannot rename " + from + " to " + to);
    }
  }

  /** Remove {@code file} if it is there; one that cannot be is replaced or refused later. */
  static boolean delete(File file) {
    return file.delete();
  }

  static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new AssertionError("every Java platform has SHA-256", e);
    }
  }

  /** The SHA-256 of the first {@code length} bytes of {@code file}; null if it has fewer. */
  static String hashOf(File file, long length) throws AoeException {
    MessageDigest digest = sha256();
    try {
      InputStream in = new FileInputStream(file);
      try {
        byte[] buffer = new byte[HttpCall.CHUNK];
        long done = 0;
        while (done < length) {
          int n = in.read(buffer, 0, (int) Math.min(buffer.length, length - done));
          if (n < 0) {
            return null;
          }
          digest.update(buffer, 0, n);
          done += n;
        }
      } finally {
        in.close();
      }
    } catch (IOException e) {
      return null;
    }
    return Codec.hex(digest.digest());
  }
}
