package dev.aoepack.repo;

import dev.aoepack.AoeException;
import dev.aoepack.net.ConditionalFetcher;
import dev.aoepack.net.Fetched;
import dev.aoepack.net.Fetcher;
import dev.aoepack.net.Validators;
import java.io.File;
import java.util.Collections;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;

/**
 * The device update procedure of docs/format.md §15.6, steps 1 to 11: trust the newest root,
 * read and check the repository's documents against this device's floor, remember what was
 * accepted, and decide (§15.7). A port of the reference's {@code aoe_pack/client/check.py}
 * and {@code indexed.py}: the same checks, in the same order, with the same error codes.
 *
 * <pre>{@code
 * UpdateChecker checker = UpdateChecker.builder()
 *     .fetcher(fetcher)                       // HTTP(S) or a folder: dev.aoepack.net
 *     .trustedRoot(shippedRootJson)           // the root.json shipped in the app
 *     .stateFile(new File(filesDir, "aoe/" + UpdateChecker.repositoryId(shippedRootJson) + ".json"))
 *     .minManifestVersion(12)                 // optional: the manifest version when the app was built
 *     .build();
 * Decision d = checker.check(Device.builder().tag("keyboard-lm").deviceId(id)
 *     .appVersion("3.2.0").localVersion("1.0.0").installedVersion(installed).build());
 * }</pre>
 *
 * <p><b>Steps.</b> (1) the clock is read once; (2) the state is loaded under an exclusive lock
 * on {@code <state>.lock} ({@code state-locked} after the wait), starting from the remembered
 * root, or the shipped one when it is newer or there is no state; (3) the root chain is walked
 * ({@code roots/N.root.json}, at most 64 new roots), then floors whose root keys the trusted
 * root revokes are dropped (fast-forward recovery), the app's minimum manifest version
 * included; (4-9) {@code index.json} and the tag's document (§15.12), or, without an index or
 * with an empty one, {@code manifest.json}: envelope, signatures, top level, rollback and
 * equal-version replay against the floor, expiry; (10) the state is saved, never lowering
 * what the file holds; (11) the decision. Nothing is remembered when any step fails.
 *
 * <p><b>Not supported:</b> tag document patches ({@code tags/<tag>/N.from-M.zst}) need zstd,
 * which neither the JDK nor Android has, so this device always fetches the whole tag document
 * {@code tags/<tag>/N.json}; that is always correct (§15.12: a patch is only a transfer
 * optimisation).
 *
 * <p><b>The document cache</b> (§15.12): beside the state, in {@code <state file>.cache/} (the
 * reference's layout, so {@code aoe-pack client check --state} shares it), the last accepted
 * index with its validators and the last accepted document of each tag (up to 32). With a
 * {@link ConditionalFetcher} (HTTP) the index is read conditionally, so an unchanged repository
 * costs the root probe's 404 and a 304; a tag document the index still names is taken from the
 * cache and not fetched at all. Everything held is verified again exactly as a downloaded
 * document (envelope, signatures by the trusted root's keys, rollback against the floor, expiry
 * against now, tag and version), so a server that answers 304 forever holds a device back no
 * longer than the held index's {@code expires}; a held document that fails any check, or a cache
 * that cannot be read, is dropped for an unconditional fetch and never fails a check. The cache
 * is written after the state, only by a check that succeeded. {@code manifest.json} is never
 * cached (nor by the reference).
 *
 * <p>The state is the reference's JSON file (§15.6), so an app's state and {@code aoe-pack
 * client check --state} read each other's. Use one state file per repository (named by
 * {@link #repositoryId}), shared by every tag and every URL of it. Thread-safe: checks of one
 * state file wait for each other.
 */
public final class UpdateChecker {
  /** A wall clock, so tests can fix "now" (Android has no java.time.Clock before API 26). */
  public interface Clock {
    /** Milliseconds since 1970-01-01T00:00:00Z. */
    long currentTimeMillis();
  }

  /** How long a check waits for another check of the same state, by default (as the reference). */
  public static final long DEFAULT_LOCK_WAIT_MILLIS = 60000;
  /** New roots accepted in one update (§15.3). */
  public static final int MAX_ROOT_STEPS = 64;

  static final long MAX_ROOT_BYTES = 1 << 20;
  static final long MAX_MANIFEST_BYTES = 32L << 20;
  static final long MAX_INDEX_BYTES = 4L << 20;

  private final Fetcher fetcher;
  private final byte[] trustedRoot;
  private final File stateFile;
  private final Long minManifestVersion;
  private final Clock clock;
  private final long lockWaitMillis;

  private UpdateChecker(Builder b) {
    this.fetcher = b.fetcher;
    this.trustedRoot = b.trustedRoot.clone();
    this.stateFile = b.stateFile;
    this.minManifestVersion = b.minManifestVersion;
    this.clock = b.clock;
    this.lockWaitMillis = b.lockWaitMillis;
  }

  public static Builder builder() {
    return new Builder();
  }

  /**
   * The {@code repositoryId} of the root the app ships, which names the repository whatever
   * URL serves it (§15.6): key the state file by it. Null for a root written before ids
   * existed. Read from the shipped root alone, never from the network.
   */
  public static String repositoryId(byte[] shippedRoot) throws AoeException {
    return Root.verifySelfSigned(shippedRoot, "--trusted-root").repositoryId();
  }

  /**
   * Runs §15.6 steps 1 to 11 for {@code device}: the decision, or the first failure's code
   * ({@code untrusted-metadata}, {@code root-rotation}, {@code repository-format}, {@code
   * rollback}, {@code expired}, {@code mix-and-match}, {@code repository}, {@code
   * state-locked}, {@code download}, {@code download-too-large}, {@code store}, {@code
   * version}, {@code algorithm-unavailable}, ...). To install a {@link Decision.Action#DOWNLOAD},
   * fetch {@link Decision#url()} capped at {@link Decision#size()}, match its size and SHA-256,
   * and verify the bundle with {@link Decision#bundleKeys()} (steps 12-16).
   */
  public Decision check(Device device) throws AoeException {
    long now = clock.currentTimeMillis();
    Object[] done;
    StateLock lock = StateLock.acquire(stateFile, lockWaitMillis);
    try {
      done = refresh(device.tag(), now);
    } finally {
      lock.close();
    }
    Root root = (Root) done[0];
    Snapshot snapshot = (Snapshot) done[1];
    return Decide.decide(snapshot, device.tag(), device).under(root, snapshot);
  }

  /** Steps 2-10, the state held: {trusted root, snapshot}. */
  private Object[] refresh(String tag, long now) throws AoeException {
    DeviceState state = DeviceState.load(stateFile, trustedRoot);
    Root start = Root.verifySelfSigned(state.root, "trusted root");
    Floor shippedFloor = null;
    if (minManifestVersion != null) {
      Root shipped = Root.verifySelfSigned(trustedRoot, "--trusted-root");
      shippedFloor = new Floor(minManifestVersion, null, shipped.keys().keySet(), null);
    }
    Root root = start;
    byte[] lastAccepted = null;
    for (int steps = 0; ; steps++) {
      byte[] data = fetcher.fetch("roots/" + (root.version() + 1) + ".root.json", MAX_ROOT_BYTES);
      if (data == null) {
        break;
      }
      if (steps == MAX_ROOT_STEPS) {
        throw new AoeException(
            "repository",
            "the root chain grows by more than " + MAX_ROOT_STEPS + " versions at once: a repository"
                + " cannot make a client walk an endless root chain; ship a newer trusted root with the app");
      }
      root = root.verifySuccessor(data);
      lastAccepted = data;
    }
    Floor floor = effectiveFloor(state.floor, root, shippedFloor);
    Snapshot snapshot;
    Floor next;
    DocumentCache cache = DocumentCache.beside(stateFile);
    Object[] indexed = readIndexed(root, tag, now, floor, cache);
    if (indexed != null) {
      snapshot = (Snapshot) indexed[0];
      String indexSha = (String) indexed[1];
      String manifestSha = floor != null && floor.version == snapshot.version ? floor.manifestSha256 : null;
      next = new Floor(snapshot.version, manifestSha, root.keys().keySet(), indexSha);
    } else {
      byte[] data = fetcher.fetch("manifest.json", MAX_MANIFEST_BYTES);
      if (data == null) {
        throw new AoeException("repository", "the repository has no manifest.json");
      }
      SignedDocument env = SignedDocument.parse(data, SignedDocument.MANIFEST, "manifest.json");
      requireThreshold(env, root, "manifest.json");
      snapshot = Snapshot.manifest(env.body);
      String digest = env.payloadSha256();
      checkFresh("manifest", snapshot.version, snapshot.expiresMillis, digest, floor, floor == null ? null : floor.manifestSha256, now);
      String indexSha = floor != null && floor.version == snapshot.version ? floor.indexSha256 : null;
      next = new Floor(snapshot.version, digest, root.keys().keySet(), indexSha);
    }
    new DeviceState(lastAccepted != null ? lastAccepted : state.root, next).save(stateFile, root);
    if (indexed != null) {
      cache.save((byte[]) indexed[2], (Validators) indexed[3], tag, (byte[]) indexed[4]);
    }
    return new Object[] {root, snapshot};
  }

  /**
   * §15.12's device procedure: {snapshot, index payload digest, index bytes, validators, tag
   * document bytes or null}, or null to read manifest.json. The index is read conditionally
   * when the fetcher can ({@link ConditionalFetcher}) and the cache holds one; whatever the
   * cache holds is verified exactly as a downloaded document, and a held index that fails is
   * dropped for an unconditional fetch.
   */
  private Object[] readIndexed(Root root, String tag, long now, Floor floor, DocumentCache cache)
      throws AoeException {
    DocumentCache.CachedIndex cached = cache.index();
    Fetched got = fetchIndex(cached == null ? null : cached.validators);
    if (got == null || (!got.notModified() && got.data().length == 0)) {
      return null; // no index, or one retired by a keyless install
    }
    byte[] data = null;
    Object[] verified = null;
    if (got.notModified()) {
      try {
        verified = verifyIndex(cached.data, root, now, floor);
        data = cached.data;
      } catch (AoeException e) {
        verified = null; // a damaged or stale cache: read the index afresh
      }
      if (verified == null) {
        got = fetchIndex(null);
        if (got == null || got.data().length == 0) {
          return null;
        }
      }
    }
    if (verified == null) {
      data = got.data();
      verified = verifyIndex(data, root, now, floor);
    }
    Index index = (Index) verified[0];
    String digest = (String) verified[1];
    Long version = index.tags.get(tag);
    Map<String, Object> models = new HashMap<String, Object>();
    Map<String, String> keys = Collections.emptyMap();
    byte[] doc = null;
    if (version != null) {
      TagDocument t = null;
      byte[] held = cache.tag(tag);
      if (held != null) {
        try {
          t = verifyTagDocument(held, root, tag, null, "tags/" + tag + "/<cached>");
          doc = held;
        } catch (AoeException e) {
          t = null; // damaged, or not ours: the index's version is fetched
        }
      }
      if (t == null || t.version != version) {
        String name = "tags/" + tag + "/" + version + ".json";
        doc = fetcher.fetch(name, MAX_MANIFEST_BYTES);
        if (doc == null) {
          throw new AoeException(
              "repository",
              "index.json version " + index.version + " names " + name + ", which is missing: the repository is"
                  + " incomplete; keep the current model");
        }
        t = verifyTagDocument(doc, root, tag, version, name);
      }
      models.put(tag, t.model);
      keys = t.bundleKeys;
    }
    return new Object[] {
      new Snapshot(index.version, index.expiresMillis, models, keys), digest, data, got.validators(), doc
    };
  }

  /** index.json, conditionally when the fetcher can and {@code held} names a copy. */
  private Fetched fetchIndex(Validators held) throws AoeException {
    if (fetcher instanceof ConditionalFetcher) {
      return ((ConditionalFetcher) fetcher).fetch("index.json", MAX_INDEX_BYTES, held);
    }
    byte[] data = fetcher.fetch("index.json", MAX_INDEX_BYTES);
    return data == null ? null : Fetched.of(data, Validators.NONE);
  }

  /** §15.12 step 2: {index, payload digest}, or the first failure. */
  private static Object[] verifyIndex(byte[] data, Root root, long now, Floor floor) throws AoeException {
    SignedDocument env = SignedDocument.parse(data, SignedDocument.INDEX, "index.json");
    requireThreshold(env, root, "index.json");
    Index index = Index.fromBody(env.body);
    String digest = env.payloadSha256();
    checkFresh("index.json", index.version, index.expiresMillis, digest, floor, floor == null ? null : floor.indexSha256, now);
    return new Object[] {index, digest};
  }

  /** §15.12 step 4: the document of {@code tag} at {@code version} (any version when null). */
  private static TagDocument verifyTagDocument(byte[] data, Root root, String tag, Long version, String name)
      throws AoeException {
    SignedDocument tagEnv = SignedDocument.parse(data, SignedDocument.TAG, name);
    requireThreshold(tagEnv, root, name);
    TagDocument t = TagDocument.fromBody(tagEnv.body, name);
    if (!t.tag.equals(tag) || (version != null && t.version != version)) {
      throw new AoeException(
          "mix-and-match",
          name + " holds the document of tag " + t.tag + " at version " + t.version + ": the server answers"
              + " this name with another tag document (a mirror or attacker mixing documents); keep the"
              + " current model");
    }
    return t;
  }

  private static void requireThreshold(SignedDocument env, Root root, String what) throws AoeException {
    Set<String> good = env.validKeyIds(root.keys(), root.threshold());
    if (good.size() < root.threshold()) {
      throw new AoeException(
          "untrusted-metadata",
          what + " has " + good.size() + " of the " + root.threshold() + " required signature(s) from root version "
              + root.version() + "'s keys: the document was changed after signing, or signed with a key the"
              + " root does not list");
    }
  }

  /** Steps 8 and 9: rollback, equal-version replay, then expiry. */
  private static void checkFresh(
      String what, long version, long expiresMillis, String digest, Floor floor, String floorDigest, long now)
      throws AoeException {
    if (floor != null && version < floor.version) {
      throw new AoeException(
          "rollback",
          what + " version " + version + " is older than version " + floor.version
              + ", which this client already accepted: a mirror or attacker is serving an old one; keep the"
              + " current model");
    }
    if (floor != null && version == floor.version && floorDigest != null && !floorDigest.equals(digest)) {
      throw new AoeException(
          "rollback",
          what + " version " + version + " is not the version " + floor.version
              + " this client already accepted: same version, different content");
    }
    if (expiresMillis <= now) {
      throw new AoeException(
          "expired",
          what + " version " + version + " has expired: the repository must be re-signed; a frozen"
              + " repository cannot hold devices back");
    }
  }

  /** Of the remembered floor and the app's minimum, those whose keys {@code root} keeps; the higher. */
  static Floor effectiveFloor(Floor floor, Root root, Floor minimum) {
    Floor best = null;
    for (Floor f : new Floor[] {floor, minimum}) {
      if (f != null && f.holdsUnder(root) && (best == null || f.version > best.version)) {
        best = f;
      }
    }
    return best;
  }

  /** Builds an {@link UpdateChecker}. */
  public static final class Builder {
    private Fetcher fetcher;
    private byte[] trustedRoot;
    private File stateFile;
    private Long minManifestVersion;
    private Clock clock =
        new Clock() {
          @Override
          public long currentTimeMillis() {
            return System.currentTimeMillis();
          }
        };
    private long lockWaitMillis = DEFAULT_LOCK_WAIT_MILLIS;

    private Builder() {}

    /** Where documents come from (required). */
    public Builder fetcher(Fetcher fetcher) {
      this.fetcher = fetcher;
      return this;
    }

    /** The root envelope shipped in the app, the repository's {@code root.json} (required). */
    public Builder trustedRoot(byte[] rootJson) {
      this.trustedRoot = rootJson.clone();
      return this;
    }

    /** This repository's state file (required); its lock is {@code <file>.lock} beside it. */
    public Builder stateFile(File stateFile) {
      this.stateFile = stateFile;
      return this;
    }

    /** The manifest version when the app was built: a floor from the first contact on (§15.6). */
    public Builder minManifestVersion(long version) {
      this.minManifestVersion = version;
      return this;
    }

    /** The clock read once per check (default: the system clock). */
    public Builder clock(Clock clock) {
      this.clock = clock;
      return this;
    }

    /** How long a check waits for another check of the same state (default 60 s). */
    public Builder lockWaitMillis(long millis) {
      this.lockWaitMillis = millis;
      return this;
    }

    /** The checker; {@code usage} when a required part is missing. */
    public UpdateChecker build() throws AoeException {
      if (fetcher == null || trustedRoot == null || stateFile == null || clock == null) {
        throw new AoeException("usage", "an UpdateChecker needs a fetcher, a trusted root and a state file");
      }
      if (minManifestVersion != null && (minManifestVersion < 1 || minManifestVersion > Fields.MAX_SAFE)) {
        throw new AoeException("usage", "the minimum manifest version must be 1 to 2^53 - 1");
      }
      return new UpdateChecker(this);
    }
  }
}
