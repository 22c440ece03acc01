package dev.aoepack.bundle;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * A bundle that passed verification (docs/format.md §8): what its signed
 * manifest says, and who signed it.
 *
 * <p>Verification proves who made the bundle, not that it is the model the
 * app asked for: check {@link #tag()} (and, where it matters, {@link #name()}
 * and {@link #version()}) against what was requested (§12.5).
 */
public final class VerifiedBundle {
  private final String tag;
  private final String name;
  private final String version;
  private final String runtime;
  private final String updateUrl;
  private final long sourceDateEpoch;
  private final List<BundleFile> files;
  private final BundleEncryption encryption;
  private final String manifestSha256;
  private final List<String> signerKeyIds;
  private final boolean decrypted;

  VerifiedBundle(Manifest m, String manifestSha256, List<String> signerKeyIds, boolean decrypted) {
    this.tag = m.tag;
    this.name = m.name;
    this.version = m.version;
    this.runtime = m.runtime;
    this.updateUrl = m.updateUrl;
    this.sourceDateEpoch = m.sourceDateEpoch;
    this.files = Collections.unmodifiableList(new ArrayList<BundleFile>(m.files));
    this.encryption = m.encryption;
    this.manifestSha256 = manifestSha256;
    this.signerKeyIds = Collections.unmodifiableList(new ArrayList<String>(signerKeyIds));
    this.decrypted = decrypted;
  }

  /** {@code model.tag}: the model's stable id. */
  public String tag() {
    return tag;
  }

  /** {@code model.name}: the model file's name. */
  public String name() {
    return name;
  }

  /** {@code model.version}: a semantic version. */
  public String version() {
    return version;
  }

  /** {@code model.runtime} ({@code tflite}, {@code onnx}, ...). */
  public String runtime() {
    return runtime;
  }

  /** {@code model.updateURL} (§5.2.4, already checked against its rule), or null when absent. */
  public String updateUrl() {
    return updateUrl;
  }

  /** {@code sourceDateEpoch}: the build time, Unix seconds. */
  public long sourceDateEpoch() {
    return sourceDateEpoch;
  }

  /** The payload files, in manifest (and entry) order. */
  public List<BundleFile> files() {
    return files;
  }

  /** How the payloads are encrypted, or null for a bundle in the clear. */
  public BundleEncryption encryption() {
    return encryption;
  }

  /** Lowercase hex SHA-256 of the {@code aoe/manifest.json} bytes: the bundle's identity whatever its signatures. */
  public String manifestSha256() {
    return manifestSha256;
  }

  /** Ids of the trusted keys whose signatures verified, sorted (at least the threshold). */
  public List<String> signerKeyIds() {
    return signerKeyIds;
  }

  /** True if every payload was decrypted and checked against its plaintext SHA-256. */
  public boolean decrypted() {
    return decrypted;
  }

  @Override
  public String toString() {
    return "VerifiedBundle[" + tag + " " + version + ", manifest " + manifestSha256 + "]";
  }
}
