package dev.aoepack.bundle;

import dev.aoepack.AoeException;
import dev.aoepack.internal.Codec;
import dev.aoepack.internal.crypto.DataKeys;
import dev.aoepack.internal.crypto.SegmentCipher;
import dev.aoepack.internal.zip.FileSource;
import dev.aoepack.internal.zip.Source;
import dev.aoepack.keys.DecryptionKey;
import dev.aoepack.keys.TrustedKey;
import dev.aoepack.keys.XWingKem;
import java.io.File;
import java.io.FileNotFoundException;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Verifies, decrypts and unpacks {@code .aoe} bundles (docs/format.md §8,
 * §9) against a set of trusted signing keys and a threshold.
 *
 * <pre>{@code
 * BundleVerifier verifier = BundleVerifier.builder()
 *     .trust(TrustedKey.fromPem(ed25519Pub), TrustedKey.fromPem(p256Pub))
 *     .threshold(2)
 *     .build();
 * VerifiedBundle bundle = verifier.verify(new File(dir, "model.aoe"));
 * verifier.unpack(new File(dir, "model.aoe"), new File(dir, "model"), decryptionKey, null);
 * }</pre>
 *
 * <p>Every check runs in the order §8 fixes and fails with the reference's
 * error code ({@link AoeException#code()}): {@code not-a-bundle},
 * {@code zip-structure}, {@code unsafe-entry}, {@code signature},
 * {@code threshold}, {@code manifest}, {@code integrity}, {@code decryption},
 * ... Memory stays bounded whatever the bundle's size: headers, the manifest
 * (at most 16 MiB) and one chunk at a time (1 MiB as built, 16 MiB at most).
 *
 * <p>Bundles given as an {@link InputStream} are first copied, exactly
 * {@code length} bytes, to a temporary file in {@link
 * Builder#spoolDirectory(File)} (by default {@code java.io.tmpdir}, an
 * Android app's cache folder) and verified from there, then the copy is
 * deleted: the central directory and the manifest (which names the chunk
 * size and wraps the data key) come last in a bundle, so no single
 * sequential pass can check the payload before them. The copy needs as much
 * free space as the bundle.
 *
 * <p>Instances are immutable and may be shared between threads.
 */
public final class BundleVerifier {
  /** The largest file a v1 bundle can be: no ZIP64 (§4.8). */
  static final long MAX_BUNDLE_BYTES = 0xFFFFFFFEL + 1070L * 10001 + 22;

  private final Map<String, TrustedKey> trusted;
  private final int threshold;
  private final File spoolDirectory;
  private final boolean replaceExisting;
  private final String expectedTag;
  private final String expectedVersion;

  private BundleVerifier(Builder b) {
    this.trusted = Collections.unmodifiableMap(new LinkedHashMap<String, TrustedKey>(b.trusted));
    this.threshold = b.threshold;
    this.spoolDirectory = b.spoolDirectory;
    this.replaceExisting = b.replaceExisting;
    this.expectedTag = b.expectedTag;
    this.expectedVersion = b.expectedVersion;
  }

  /** A builder: trust at least one key; the threshold is 1 unless set. */
  public static Builder builder() {
    return new Builder();
  }

  /** Configures a {@link BundleVerifier}. */
  public static final class Builder {
    private final Map<String, TrustedKey> trusted = new LinkedHashMap<String, TrustedKey>();
    private int threshold = 1;
    private File spoolDirectory;
    private boolean replaceExisting;
    private String expectedTag;
    private String expectedVersion;

    private Builder() {}

    /** Trusts these signing keys (a key given twice counts once, §6.4). */
    public Builder trust(TrustedKey... keys) {
      return trust(Arrays.asList(keys));
    }

    /** Trusts these signing keys (a key given twice counts once, §6.4). */
    public Builder trust(Collection<TrustedKey> keys) {
      for (TrustedKey key : keys) {
        trusted.put(key.keyId(), key);
      }
      return this;
    }

    /** How many distinct trusted keys must have signed (default 1). */
    public Builder threshold(int threshold) {
      this.threshold = threshold;
      return this;
    }

    /** Where bundles given as a stream are copied before they are checked (default {@code java.io.tmpdir}). */
    public Builder spoolDirectory(File folder) {
      this.spoolDirectory = folder;
      return this;
    }

    /**
     * Whether {@link #unpack} may replace files that already exist in the
     * destination folder (default false: an existing file is {@code output}),
     * as {@code aoe-pack unpack --force}.
     */
    public Builder replaceExisting(boolean replace) {
      this.replaceExisting = replace;
      return this;
    }

    /**
     * Accept only the model {@code tag} at {@code version}: a bundle whose signed manifest names
     * another is {@code bundle-mismatch}, checked as soon as its signatures are, before anything
     * is decrypted or written (§15.6: the release a repository lists must be that bundle).
     */
    public Builder expectModel(String tag, String version) {
      this.expectedTag = tag;
      this.expectedVersion = version;
      return this;
    }

    /**
     * The verifier; {@code usage} if the threshold is below 1 or above the
     * number of distinct trusted keys, which no bundle could meet (§6.4): the
     * caller's mistake is reported before any file is read (§8).
     */
    public BundleVerifier build() throws AoeException {
      if (threshold < 1) {
        throw new AoeException("usage", "the threshold must be at least 1");
      }
      if (threshold > trusted.size()) {
        throw new AoeException(
            "usage",
            "the threshold " + threshold + " exceeds the " + trusted.size()
                + " distinct trusted key(s) given");
      }
      return new BundleVerifier(this);
    }
  }

  /** The threshold this verifier requires. */
  public int threshold() {
    return threshold;
  }

  /** The ids of the trusted keys. */
  public List<String> trustedKeyIds() {
    return Collections.unmodifiableList(new ArrayList<String>(trusted.keySet()));
  }

  /**
   * Verifies the bundle at {@code bundle} without a decryption key (§8 steps
   * 1-8 and 10): the container, the signatures, the manifest and the SHA-256
   * of every stored chunk, which authenticates every stored byte.
   */
  public VerifiedBundle verify(File bundle) throws AoeException {
    return verify(bundle, null, null);
  }

  /**
   * Verifies the bundle and, with {@code key}, also unwraps its data key,
   * decrypts every segment and checks each file's plaintext size and SHA-256
   * (§8 steps 9-10). A key for a bundle in the clear is {@code decryption}.
   *
   * @param key a recipient's decryption key, or null to check the stored bytes only
   * @param xwing ML-KEM for an X-Wing key (an app's provider), or null
   */
  public VerifiedBundle verify(File bundle, DecryptionKey key, XWingKem xwing) throws AoeException {
    Source source = open(bundle);
    try {
      return run(source, key, xwing, null);
    } finally {
      closeQuietly(source);
    }
  }

  /** {@link #verify(File)} for a bundle read from {@code in}: exactly {@code length} bytes. */
  public VerifiedBundle verify(InputStream in, long length) throws AoeException {
    return verify(in, length, null, null);
  }

  /** {@link #verify(File, DecryptionKey, XWingKem)} for a bundle of {@code length} bytes read from {@code in}. */
  public VerifiedBundle verify(InputStream in, long length, DecryptionKey key, XWingKem xwing)
      throws AoeException {
    File spool = spool(in, length);
    try {
      return verify(spool, key, xwing);
    } finally {
      spool.delete();
    }
  }

  /**
   * Verifies the bundle, decrypts it with {@code key} when it is encrypted,
   * and writes its files under {@code destination} (§9). Nothing appears
   * there before every file passed: the files are written to a hidden folder
   * beside {@code destination}, flushed and synced, then moved into place.
   *
   * <p>When {@code destination} does not exist, it is that hidden folder,
   * renamed in one step. When it is an existing folder (as {@code aoe-pack
   * unpack} allows), the verified files are moved into it one by one; an
   * existing file there is {@code output} unless {@link
   * Builder#replaceExisting(boolean)}. On any failure nothing is left behind
   * but what existed before. A symbolic link, a file or a folder where a
   * folder or a file is to go is {@code output}; an unsafe path is {@code
   * unsafe-entry}; an encrypted bundle without a key is {@code decryption}.
   *
   * @param key the decryption key (required for an encrypted bundle; for a bundle in the clear, null)
   * @param xwing ML-KEM for an X-Wing key, or null
   */
  public VerifiedBundle unpack(File bundle, File destination, DecryptionKey key, XWingKem xwing)
      throws AoeException {
    Source source = open(bundle);
    try {
      return run(source, key, xwing, destination);
    } finally {
      closeQuietly(source);
    }
  }

  /** {@link #unpack(File, File, DecryptionKey, XWingKem)} for a bundle of {@code length} bytes read from {@code in}. */
  public VerifiedBundle unpack(
      InputStream in, long length, File destination, DecryptionKey key, XWingKem xwing)
      throws AoeException {
    File spool = spool(in, length);
    try {
      return unpack(spool, destination, key, xwing);
    } finally {
      spool.delete();
    }
  }

  // --- the steps ---------------------------------------------------------------

  private VerifiedBundle run(Source source, DecryptionKey key, XWingKem xwing, File destination)
      throws AoeException {
    try {
      BundleReader bundle = BundleReader.open(source);
      List<String> signers = new ArrayList<String>();
      Manifest manifest = bundle.authenticate(trusted, threshold, signers);
      Collections.sort(signers);
      if (expectedTag != null
          && (!expectedTag.equals(manifest.tag) || !expectedVersion.equals(manifest.version))) {
        throw new AoeException(
            "bundle-mismatch",
            "the bundle says it is " + manifest.tag + " " + manifest.version + ", not the "
                + expectedTag + " " + expectedVersion + " expected; nothing was decrypted");
      }
      if (destination != null && manifest.encryption != null && key == null) {
        throw new AoeException(
            "decryption",
            "the bundle is encrypted; unpacking needs its decryption key (a recipient's private"
                + " key or key file)");
      }
      byte[] dataKey = dataKey(manifest, key, xwing);
      if (destination == null) {
        for (int i = 0; i < manifest.files.size(); i++) {
          BundleFile f = manifest.files.get(i);
          PayloadStream.stream(source, f, bundle.payloads.get(i), cipher(f, dataKey), null);
        }
      } else {
        unpackFiles(source, bundle, manifest, dataKey, destination);
      }
      String digest = Codec.hex(PayloadStream.sha256().digest(bundle.manifestBytes));
      return new VerifiedBundle(manifest, digest, signers, dataKey != null);
    } catch (IOException e) {
      throw new AoeException("bundle", "cannot read the bundle: " + e.getMessage(), e);
    }
  }

  /** §8 step 9: the data key when a decryption key is given, else null. */
  private static byte[] dataKey(Manifest manifest, DecryptionKey key, XWingKem xwing)
      throws AoeException {
    if (key == null) {
      return null;
    }
    if (manifest.encryption == null) {
      throw new AoeException(
          "decryption",
          "the bundle is not encrypted, but a decryption key was given: verify a bundle in the"
              + " clear without one; if it should have been encrypted, rebuild it with a recipient");
    }
    List<DataKeys.Recipient> recipients = new ArrayList<DataKeys.Recipient>();
    for (BundleRecipient r : manifest.encryption.recipients()) {
      recipients.add(new DataKeys.Recipient(r.type(), r.keyId(), r.kem(), r.wrapped()));
    }
    return DataKeys.unwrap(recipients, key, xwing, DataKeys.info(manifest.tag, manifest.version));
  }

  private static SegmentCipher cipher(BundleFile f, byte[] dataKey) throws AoeException {
    if (dataKey == null || !f.encrypted()) {
      return null;
    }
    return new SegmentCipher(dataKey, Codec.unhex(f.noncePrefix()), f.entryName());
  }

  private void unpackFiles(
      Source source, BundleReader bundle, Manifest manifest, byte[] dataKey, File destination)
      throws AoeException, IOException {
    OutputTree tree = OutputTree.create(destination, replaceExisting);
    boolean done = false;
    try {
      for (int i = 0; i < manifest.files.size(); i++) {
        BundleFile f = manifest.files.get(i);
        File target = tree.stage(f.path());
        OutputStream out;
        try {
          out = new FileOutputStream(target);
        } catch (FileNotFoundException e) {
          throw new AoeException("output", "cannot write " + f.path() + ": " + e.getMessage(), e);
        }
        try {
          PayloadStream.stream(source, f, bundle.payloads.get(i), cipher(f, dataKey), out);
          out.flush();
          ((FileOutputStream) out).getFD().sync();
        } catch (IOException e) {
          if (e instanceof SourceIOException) {
            throw e;
          }
          throw new AoeException("output", "cannot write " + f.path() + ": " + e.getMessage(), e);
        } finally {
          closeQuietly(out);
        }
      }
      tree.commit();
      done = true;
    } finally {
      if (!done) {
        tree.discard();
      }
    }
  }

  // --- opening and spooling ------------------------------------------------------

  /** §8 step 1. */
  private static Source open(File bundle) throws AoeException {
    if (bundle.isDirectory()) {
      throw new AoeException("bundle-not-found", bundle + " is a folder, not a bundle");
    }
    if (!bundle.exists()) {
      throw new AoeException("bundle-not-found", bundle + " does not exist");
    }
    try {
      return new SourceGuard(new FileSource(bundle));
    } catch (IOException e) {
      throw new AoeException("bundle", "cannot open " + bundle + ": " + e.getMessage(), e);
    }
  }

  private File spool(InputStream in, long length) throws AoeException {
    if (length < 0) {
      throw new IllegalArgumentException("length must be >= 0, got " + length);
    }
    if (length > MAX_BUNDLE_BYTES) {
      throw new AoeException(
          "limit-exceeded",
          "the stream announces " + length + " bytes; a v1 bundle is smaller than 4 GiB (no ZIP64)");
    }
    File spool;
    try {
      spool = File.createTempFile("aoe-bundle-", ".spool", spoolDirectory);
    } catch (IOException e) {
      throw new AoeException("output", "cannot create a temporary copy of the bundle: " + e.getMessage(), e);
    }
    boolean ok = false;
    try {
      FileOutputStream out = new FileOutputStream(spool);
      try {
        byte[] buf = new byte[1 << 16];
        long left = length;
        while (left > 0) {
          int n;
          try {
            n = in.read(buf, 0, (int) Math.min(buf.length, left));
          } catch (IOException e) {
            throw new AoeException("bundle", "cannot read the bundle stream: " + e.getMessage(), e);
          }
          if (n < 0) {
            throw new AoeException(
                "zip-structure",
                "file is truncated: the stream ended after " + (length - left) + " of the "
                    + length + " bytes announced");
          }
          out.write(buf, 0, n);
          left -= n;
        }
        out.getFD().sync();
      } finally {
        out.close();
      }
      ok = true;
      return spool;
    } catch (IOException e) {
      throw new AoeException("output", "cannot write the temporary copy " + spool + ": " + e.getMessage(), e);
    } finally {
      if (!ok) {
        spool.delete();
      }
    }
  }

  private static void closeQuietly(java.io.Closeable c) {
    try {
      c.close();
    } catch (IOException ignored) {
      // nothing was written through it, or its failure was reported already
    }
  }

  /** An I/O failure reading the bundle, told apart from one writing the output. */
  static final class SourceIOException extends IOException {
    private static final long serialVersionUID = 1L;

    SourceIOException(IOException cause) {
      super(cause.getMessage(), cause);
    }
  }

  /** Marks the bundle's read failures, so that unpack reports them as {@code bundle}, not {@code output}. */
  private static final class SourceGuard implements Source {
    private final Source inner;

    SourceGuard(Source inner) {
      this.inner = inner;
    }

    @Override
    public long size() {
      return inner.size();
    }

    @Override
    public int read(long position, byte[] buf, int off, int len) throws IOException {
      try {
        return inner.read(position, buf, off, len);
      } catch (IOException e) {
        throw new SourceIOException(e);
      }
    }

    @Override
    public void close() throws IOException {
      inner.close();
    }
  }
}
