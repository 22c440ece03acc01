package dev.aoepack.update;

import dev.aoepack.AoeException;
import dev.aoepack.keys.DecryptionKey;
import dev.aoepack.keys.TrustedKey;
import dev.aoepack.keys.XWingKem;
import dev.aoepack.net.BundleDownload;
import dev.aoepack.net.Fetcher;
import dev.aoepack.net.HttpFetcher;
import dev.aoepack.net.TransferLimits;
import dev.aoepack.repo.Decision;
import dev.aoepack.repo.Device;
import dev.aoepack.repo.UpdateChecker;
import java.io.File;
import java.util.Collection;

/**
 * Keeps an app's on-device models up to date from a signed aoe-pack repository: the whole device
 * update procedure of docs/format.md §15.6 behind three calls.
 *
 * <pre>{@code
 * ModelUpdater updater = ModelUpdater.builder()
 *     .repository("https://models.example.com/repo/")
 *     .trustedRoot(readAsset("root.json"))               // the root shipped with the app
 *     .stateFile(new File(getFilesDir(), "aoe/state.json"))
 *     .modelsDir(new File(getFilesDir(), "aoe/models"))
 *     .decryptionKey(DecryptionKey.fromFile(deviceKeyPem)) // only for encrypted bundles
 *     .build();
 *
 * String tag = "keyboard-lm";
 * Decision d = updater.check(Device.builder().tag(tag).deviceId(installId)
 *     .appVersion(BuildConfig.VERSION_NAME).localVersion("1.0.0")
 *     .installedVersion(updater.installedVersion(tag)).build());
 * if (d.action() == Decision.Action.DOWNLOAD) {
 *   updater.download(d);                 // resumes on the next call if interrupted
 * } else if (d.action() == Decision.Action.REVERT_TO_LOCAL) {
 *   updater.revertToLocal(tag);
 * }
 * File model = updater.currentModel(tag); // null: run the model shipped in the app
 * }</pre>
 *
 * <p>{@link #check} runs steps 1-11 (root chain, documents, rollback and freeze checks, the
 * decision; {@link UpdateChecker}); {@link #download} runs steps 12-16: the bundle is downloaded
 * (capped at its signed size, hashed while it arrives, resumed after an interruption; {@link
 * BundleDownload}) into {@code <modelsDir>/.downloads/}, matched with its signed size and
 * SHA-256, verified with the release's bundle keys, decrypted and unpacked into a hidden folder
 * that becomes {@code <modelsDir>/<tag>/<version>/} only when everything passed; then {@code
 * <modelsDir>/<tag>/current} records that version (replaced atomically) and the bundle is
 * deleted. Any failure throws an {@link AoeException} with the reference's error code and
 * leaves the model in use as it was. Earlier versions' folders stay until the app removes them
 * (a model may still be open).
 *
 * <p>One state file per repository, shared by every tag; checks of one state file wait for each
 * other, so a ModelUpdater may be used from several threads, but downloads of the same release
 * must not run at the same time.
 */
public final class ModelUpdater {
  private final UpdateChecker checker;
  private final Fetcher repository;
  private final InstalledModels models;
  private final DecryptionKey decryptionKey;
  private final XWingKem xwing;
  private final BundleInstaller installer;

  private ModelUpdater(Builder b, Fetcher repository, UpdateChecker checker) {
    this.checker = checker;
    this.repository = repository;
    this.models = new InstalledModels(b.modelsDir);
    this.decryptionKey = b.decryptionKey;
    this.xwing = b.xwing;
    this.installer = b.installer;
  }

  /** A builder; {@code repository}, {@code trustedRoot}, {@code stateFile} and {@code modelsDir} are required. */
  public static Builder builder() {
    return new Builder();
  }

  /**
   * Steps 1-11 of §15.6 for {@code device}: what to do. Pass {@link #installedVersion} as the
   * device's installed version.
   *
   * @throws AoeException the first failing check's code ({@code untrusted-metadata}, {@code
   *     rollback}, {@code expired}, {@code download}, {@code download-too-slow}, ...); nothing is
   *     remembered then
   */
  public Decision check(Device device) throws AoeException {
    return checker.check(device);
  }

  /**
   * Steps 12-16 of §15.6 for a {@link Decision.Action#DOWNLOAD} decision: download, match,
   * verify, decrypt and unpack the release, and make it the tag's current model.
   *
   * @return the installed folder, {@code <modelsDir>/<tag>/<version>/}
   * @throws AoeException {@code usage} for another action; {@code download}, {@code
   *     download-too-large}, {@code download-too-slow} (the partial download is kept and the next
   *     call resumes it); {@code bundle-mismatch} (size, digest, or the bundle's own tag and
   *     version differ from the release: the file is deleted); the bundle's verification codes
   *     ({@code signature}, {@code threshold}, {@code integrity}, {@code decryption}, {@code
   *     no-matching-recipient}, {@code unsafe-entry}, ...); {@code output} when the models folder
   *     cannot be written
   */
  public File download(Decision decision) throws AoeException {
    if (decision.action() != Decision.Action.DOWNLOAD) {
      throw new AoeException(
          "usage", "the decision is " + decision.action().json() + ": there is nothing to download");
    }
    String tag = decision.tag();
    String version = InstalledModels.version(decision.version());
    models.tagFolder(tag);
    Collection<TrustedKey> keys = decision.bundleKeys().values(); // before spending a download
    File bundle = BundleDownload.download(
        repository, decision.url(), decision.size(), decision.sha256(), models.downloads(),
        tag + "-" + version + ".aoe");
    File staging = models.staging(tag, version);
    try {
      String[] identity =
          installer.unpack(bundle, tag, version, staging, keys, decryptionKey, xwing);
      if (!tag.equals(identity[0]) || !version.equals(identity[1])) {
        bundle.delete(); // signed as another model: never installable as this one
        throw new AoeException(
            "bundle-mismatch",
            "the bundle says it is " + identity[0] + " " + identity[1] + ", the manifest " + tag
                + " " + version);
      }
      File installed = models.place(staging, tag, version);
      models.setCurrent(tag, version);
      bundle.delete();
      return installed;
    } finally {
      if (staging.exists()) {
        InstalledModels.removeTree(staging);
      }
    }
  }

  /**
   * The folder of the model {@code tag} should run, or null to run the model shipped in the app
   * (nothing installed yet, or reverted to it).
   */
  public File currentModel(String tag) throws AoeException {
    String version = models.current(tag);
    return version == null ? null : new File(models.tagFolder(tag), version);
  }

  /** The version of {@link #currentModel}, or null: the device's installed version (§15.7). */
  public String installedVersion(String tag) throws AoeException {
    return models.current(tag);
  }

  /**
   * Go back to the model shipped in the app (a {@link Decision.Action#REVERT_TO_LOCAL}
   * decision): {@link #currentModel} is null from now on. Installed folders are left in place.
   */
  public void revertToLocal(String tag) throws AoeException {
    models.setCurrent(tag, null);
  }

  /** Configures a {@link ModelUpdater}. */
  public static final class Builder {
    private String url;
    private boolean cleartext;
    private TransferLimits limits = TransferLimits.DEFAULT;
    private Fetcher fetcher;
    private byte[] trustedRoot;
    private File stateFile;
    private File modelsDir;
    private Long minManifestVersion;
    private DecryptionKey decryptionKey;
    private XWingKem xwing;
    private UpdateChecker.Clock clock;
    private BundleInstaller installer = new LibraryBundleInstaller();

    private Builder() {}

    /** The repository's base URL (§15.1): https://, or http:// with {@link #allowCleartextHttp}. */
    public Builder repository(String baseUrl) {
      this.url = baseUrl;
      this.fetcher = null;
      return this;
    }

    /** Any other source of the repository's files, e.g. a {@link dev.aoepack.net.FolderFetcher}. */
    public Builder repository(Fetcher fetcher) {
      this.fetcher = fetcher;
      this.url = null;
      return this;
    }

    /** Allow an http:// repository URL (tests, local servers); see {@link HttpFetcher}. */
    public Builder allowCleartextHttp(boolean allow) {
      this.cleartext = allow;
      return this;
    }

    /** Time limits of every request to a repository URL (default {@link TransferLimits#DEFAULT}). */
    public Builder limits(TransferLimits limits) {
      this.limits = limits;
      return this;
    }

    /** The root.json shipped with the app: the only thing trusted from the start (§15.3). */
    public Builder trustedRoot(byte[] rootJson) {
      this.trustedRoot = rootJson.clone();
      return this;
    }

    /** The device's state for this repository (§15.6), shared by every tag. */
    public Builder stateFile(File stateFile) {
      this.stateFile = stateFile;
      return this;
    }

    /** Where installed models live; only the app should be able to write to it. */
    public Builder modelsDir(File modelsDir) {
      this.modelsDir = modelsDir;
      return this;
    }

    /** The manifest version when the app was built: a floor against first-contact rollback. */
    public Builder minManifestVersion(long version) {
      this.minManifestVersion = version;
      return this;
    }

    /** The key encrypted bundles are decrypted with (§10); none for plaintext bundles. */
    public Builder decryptionKey(DecryptionKey key) {
      this.decryptionKey = key;
      return this;
    }

    /** The ML-KEM-768 provider an X-Wing decryption key needs (§7.4). */
    public Builder xwing(XWingKem xwing) {
      this.xwing = xwing;
      return this;
    }

    /** The wall clock (default: the system's); tests fix "now" with it. */
    public Builder clock(UpdateChecker.Clock clock) {
      this.clock = clock;
      return this;
    }

    Builder installer(BundleInstaller installer) {
      this.installer = installer;
      return this;
    }

    /**
     * The updater.
     *
     * @throws AoeException {@code usage} for a missing setting or a repository URL that is not
     *     one (see {@link HttpFetcher.Builder#build}); the shipped root's own checks
     */
    public ModelUpdater build() throws AoeException {
      if ((url == null && fetcher == null) || trustedRoot == null || stateFile == null
          || modelsDir == null) {
        throw new AoeException(
            "usage", "a ModelUpdater needs a repository, a trusted root, a state file and a models"
                + " folder");
      }
      Fetcher repo = fetcher != null
          ? fetcher
          : HttpFetcher.builder(url).allowCleartextHttp(cleartext).limits(limits).build();
      UpdateChecker.Builder b =
          UpdateChecker.builder().fetcher(repo).trustedRoot(trustedRoot).stateFile(stateFile);
      if (minManifestVersion != null) {
        b.minManifestVersion(minManifestVersion);
      }
      if (clock != null) {
        b.clock(clock);
      }
      return new ModelUpdater(this, repo, b.build());
    }
  }
}
