package dev.aoepack.bundle;

import dev.aoepack.AoeException;
import dev.aoepack.internal.Codec;
import dev.aoepack.internal.crypto.SegmentCipher;
import dev.aoepack.internal.zip.Source;
import dev.aoepack.internal.zip.ZipEntry;
import java.io.IOException;
import java.io.OutputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * §8 step 10 for one payload: every stored chunk against its signed SHA-256,
 * in order; with a cipher, each segment decrypted; when the plaintext is
 * produced (decrypted, or written to a sink), its size and SHA-256 against
 * the manifest's.
 *
 * <p>Memory: a chunk that only needs hashing streams through in 64 KiB
 * pieces; a chunk whose bytes go on (decrypted or written) is held whole
 * (at most {@code chunkSize}, 16 MiB by §5.2.1; 1 MiB as built) so that no
 * byte leaves before its chunk matched.
 */
final class PayloadStream {
  private static final int PIECE = 1 << 16;

  private PayloadStream() {}

  static void stream(Source source, BundleFile f, ZipEntry e, SegmentCipher cipher, OutputStream sink)
      throws AoeException, IOException {
    boolean wantPlaintext = cipher != null || sink != null;
    MessageDigest plain = sha256();
    MessageDigest chunk = sha256();
    long total = 0;
    int count = f.chunks().size();
    int chunkSize = f.chunkSize();
    byte[] piece = wantPlaintext ? null : new byte[(int) Math.min(PIECE, Math.max(1, e.size))];
    byte[] whole = null;
    for (int i = 0; i < count; i++) {
      long start = (long) i * chunkSize;
      int length = (int) Math.min(chunkSize, e.size - start);
      if (wantPlaintext) {
        if (whole == null || whole.length < length) {
          whole = new byte[length];
        }
        read(source, e, i, e.dataOffset + start, whole, length);
        chunk.update(whole, 0, length);
      } else {
        for (int done = 0; done < length; ) {
          int n = Math.min(piece.length, length - done);
          read(source, e, i, e.dataOffset + start + done, piece, n);
          chunk.update(piece, 0, n);
          done += n;
        }
      }
      if (!Codec.hex(chunk.digest()).equals(f.chunks().get(i))) {
        throw new AoeException(
            "integrity",
            e.name + ": chunk " + i + " (bytes " + start + "-" + (start + length - 1)
                + ") does not match its signed SHA-256");
      }
      if (!wantPlaintext) {
        continue;
      }
      byte[] out = whole;
      int outLength = length;
      if (cipher != null) {
        out = cipher.open(i, i == count - 1, whole, 0, length);
        outLength = out.length;
      }
      plain.update(out, 0, outLength);
      total += outLength;
      if (sink != null) {
        try {
          sink.write(out, 0, outLength);
        } catch (IOException x) {
          throw new AoeException("output", "cannot write " + f.path() + ": " + x.getMessage(), x);
        }
      }
    }
    if (wantPlaintext && (total != f.size() || !Codec.hex(plain.digest()).equals(f.sha256()))) {
      throw new AoeException(
          "integrity",
          f.path() + ": the " + (f.encrypted() ? "decrypted model" : "model")
              + " does not match the SHA-256 recorded at build time");
    }
  }

  private static void read(Source source, ZipEntry e, int index, long at, byte[] buf, int len)
      throws AoeException, IOException {
    if (source.read(at, buf, 0, len) != len) {
      throw new AoeException("integrity", e.name + ": bundle ends inside chunk " + index);
    }
  }

  static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is in every Java and Android platform", e);
    }
  }
}
