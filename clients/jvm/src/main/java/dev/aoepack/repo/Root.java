package dev.aoepack.repo;

import dev.aoepack.AoeException;
import dev.aoepack.keys.TrustedKey;
import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * A repository root (§15.3): the keys that sign the repository's documents, how many must
 * sign, and the repository's identity. Roots are only ever read from envelopes that passed
 * the checks of §15.2 and the root's schema; immutable.
 */
public final class Root {
  private final long version;
  private final Map<String, TrustedKey> keys;
  private final int threshold;
  private final String repositoryId;
  private final byte[] envelope;

  private Root(long version, Map<String, TrustedKey> keys, int threshold, String repositoryId, byte[] envelope) {
    this.version = version;
    this.keys = Collections.unmodifiableMap(keys);
    this.threshold = threshold;
    this.repositoryId = repositoryId;
    this.envelope = envelope.clone();
  }

  /** This root's place in the chain, 1 to 2^53 - 1. */
  public long version() {
    return version;
  }

  /** Key id to key, sorted by key id. */
  public Map<String, TrustedKey> keys() {
    return keys;
  }

  public int threshold() {
    return threshold;
  }

  /** The 32 hex digit {@code repositoryId}, or null for a root written before ids existed. */
  public String repositoryId() {
    return repositoryId;
  }

  /** The envelope bytes this root was read from. */
  public byte[] envelope() {
    return envelope.clone();
  }

  byte[] envelopeRef() {
    return envelope;
  }

  /** The envelope and payload checks (§15.2 steps 1-7) and the root's own checks; no signatures. */
  static Object[] parse(byte[] data, String what) throws AoeException {
    SignedDocument env = SignedDocument.parse(data, SignedDocument.ROOT, what);
    return new Object[] {fromBody(env.body, data), env};
  }

  private static Root fromBody(Object body, byte[] data) throws AoeException {
    Fields f = new Fields("root");
    Map<String, Object> d = f.object(body, "(top level)");
    f.constant(f.required(d, "_type", "(top level)"), "aoe.repository.root", "_type");
    f.constant(f.required(d, "formatVersion", "(top level)"), 1L, "formatVersion");
    long version = f.integer(f.required(d, "version", "(top level)"), "version", 1, Fields.MAX_SAFE);
    Map<String, Object> rawKeys = f.object(f.required(d, "keys", "(top level)"), "keys");
    long threshold = f.integer(f.required(d, "threshold", "(top level)"), "threshold", 1, Long.MAX_VALUE);
    String repositoryId = null;
    if (d.containsKey("repositoryId")) {
      repositoryId = f.matching(d.get("repositoryId"), "repositoryId", Fields.Pattern.HEX32);
    }
    if (rawKeys.isEmpty()) {
      throw f.error("keys", "should be non-empty");
    }
    for (Map.Entry<String, Object> e : rawKeys.entrySet()) {
      String where = "keys/" + e.getKey();
      if (!Fields.Pattern.HEX64.matches(e.getKey())) {
        throw f.error("keys", PyRepr.of(e.getKey()) + " does not match ^[0-9a-f]{64}$");
      }
      Map<String, Object> entry = f.object(e.getValue(), where);
      Object alg = f.required(entry, "algorithm", where);
      if (!"ed25519".equals(alg) && !"p256".equals(alg)) {
        throw f.error(where + "/algorithm", "must be ed25519 or p256");
      }
      f.pem(f.required(entry, "publicKey", where), where + "/publicKey");
    }
    Map<String, TrustedKey> keys = new TreeMap<String, TrustedKey>();
    for (Map.Entry<String, Object> e : rawKeys.entrySet()) {
      Map<?, ?> entry = (Map<?, ?>) e.getValue();
      TrustedKey key = signingKey(e.getKey(), (String) entry.get("publicKey"), "root");
      String alg = key.type() == TrustedKey.Type.ED25519 ? "ed25519" : "p256";
      if (!alg.equals(entry.get("algorithm"))) {
        throw new AoeException(
            "repository-format",
            "root: key " + e.getKey().substring(0, 16) + "… does not match its id or algorithm");
      }
      keys.put(e.getKey(), key);
    }
    if (threshold > keys.size()) {
      throw new AoeException(
          "repository-format", "root: threshold " + threshold + " exceeds its " + keys.size() + " key(s)");
    }
    return new Root(version, keys, (int) threshold, repositoryId, data);
  }

  /** A PEM public key that must be a signing key with id {@code kid}, else {@code repository-format}. */
  static TrustedKey signingKey(String kid, String pem, String what) throws AoeException {
    TrustedKey key;
    try {
      key = TrustedKey.fromPem(pem.getBytes(StandardCharsets.UTF_8));
    } catch (AoeException e) {
      throw new AoeException("repository-format", what + ": key " + kid.substring(0, 16) + "…: " + e.getMessage(), e);
    }
    if (!key.keyId().equals(kid)) {
      throw new AoeException(
          "repository-format", what + ": key " + kid.substring(0, 16) + "… does not match its id or algorithm");
    }
    return key;
  }

  /**
   * A root a device is handed (the shipped root, the one its state remembers): valid, and
   * signed by a threshold of its own keys, else {@code untrusted-metadata}.
   */
  public static Root verifySelfSigned(byte[] data, String what) throws AoeException {
    Object[] parsed = parse(data, what);
    Root root = (Root) parsed[0];
    Set<String> good = ((SignedDocument) parsed[1]).validKeyIds(root.keys);
    if (good.size() < root.threshold) {
      throw new AoeException(
          "untrusted-metadata",
          what + " version " + root.version + " has " + good.size() + " of its own " + root.threshold
              + " required signature(s)");
    }
    return root;
  }

  /** Root {@code version() + 1} by the rotation rule (§15.3), else {@code repository-format} or {@code root-rotation}. */
  Root verifySuccessor(byte[] data) throws AoeException {
    Object[] parsed = parse(data, "root version " + (version + 1));
    Root next = (Root) parsed[0];
    SignedDocument env = (SignedDocument) parsed[1];
    if (next.version != version + 1) {
      throw new AoeException(
          "root-rotation", "root chain broken: expected version " + (version + 1) + ", found " + next.version);
    }
    int old = env.validKeyIds(keys).size();
    if (old < threshold) {
      throw new AoeException(
          "root-rotation",
          "root version " + next.version + " is signed by " + old + " of the " + threshold
              + " required key(s) of root version " + version
              + "; a new root must be signed by a threshold of the old root's keys");
    }
    int own = env.validKeyIds(next.keys).size();
    if (own < next.threshold) {
      throw new AoeException(
          "root-rotation",
          "root version " + next.version + " is signed by " + own + " of its own " + next.threshold
              + " required key(s)");
    }
    if (repositoryId != null && !repositoryId.equals(next.repositoryId)) {
      throw new AoeException(
          "root-rotation",
          "root version " + next.version + " names repository " + next.repositoryId + ", not "
              + repositoryId + " as root version " + version + " does");
    }
    return next;
  }

  /** Whether {@code floorKeys} keeps at least this root's threshold of its keys (§15.6 step 3). */
  boolean keepsThresholdOf(Set<String> floorKeys) {
    int n = 0;
    for (String k : floorKeys) {
      if (keys.containsKey(k)) {
        n++;
      }
    }
    return n >= threshold;
  }

  @Override
  public String toString() {
    return "Root[version " + version + ", threshold " + threshold + " of " + keys.size() + "]";
  }
}
