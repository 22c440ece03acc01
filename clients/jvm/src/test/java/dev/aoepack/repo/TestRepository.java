package dev.aoepack.repo;

import dev.aoepack.AoeException;
import dev.aoepack.internal.Codec;
import dev.aoepack.internal.Pem;
import dev.aoepack.json.Canonical;
import dev.aoepack.keys.TrustedKey;
import dev.aoepack.net.Fetcher;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A repository writer for tests: signs documents as publishers do (canonical payload, PAE,
 * signatures sorted by key id, canonical envelope) with the TEST-ONLY keys of tests/vectors
 * or fresh ones, into a folder that {@link FolderFetcher} serves.
 */
final class TestRepository {
  static final File VECTORS = new File(System.getProperty("aoe.root", "."), "tests/vectors");

  /** A signing key: its JCA private key and its public side. */
  static final class Key {
    final PrivateKey priv;
    final TrustedKey pub;
    final String alg;

    Key(PrivateKey priv, byte[] spki, String alg) throws AoeException {
      this.priv = priv;
      this.pub = TrustedKey.fromSpki(spki);
      this.alg = alg;
    }

    String id() {
      return pub.keyId();
    }

    String pem() {
      String b64 = Codec.base64(pub.spki());
      StringBuilder out = new StringBuilder("-----BEGIN PUBLIC KEY-----\n");
      for (int i = 0; i < b64.length(); i += 64) {
        out.append(b64, i, Math.min(b64.length(), i + 64)).append('\n');
      }
      return out.append("-----END PUBLIC KEY-----\n").toString();
    }

    byte[] sign(byte[] message) throws Exception {
      Signature s = Signature.getInstance(alg.equals("ed25519") ? "Ed25519" : "SHA256withECDSA");
      s.initSign(priv);
      s.update(message);
      return s.sign();
    }
  }

  static Key vectorKey(String name) throws Exception {
    byte[] text = Files.readAllBytes(new File(VECTORS, "test-only-" + name + ".key").toPath());
    byte[] der = Pem.blocks(text).get(0).der;
    String alg = name.equals("ed25519") ? "ed25519" : "p256";
    PrivateKey priv = KeyFactory.getInstance(alg.equals("ed25519") ? "Ed25519" : "EC").generatePrivate(new PKCS8EncodedKeySpec(der));
    byte[] pub = Pem.blocks(Files.readAllBytes(new File(VECTORS, "test-only-" + name + ".pub").toPath())).get(0).der;
    return new Key(priv, pub, alg);
  }

  static Key fresh() throws Exception {
    KeyPair kp = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
    return new Key(kp.getPrivate(), kp.getPublic().getEncoded(), "ed25519");
  }

  final File dir;

  TestRepository(File dir) {
    this.dir = dir;
  }

  static byte[] envelope(String payloadType, Object payload, Key... keys) throws Exception {
    return envelopeOf(payloadType, Canonical.encode(payload), keys);
  }

  static byte[] envelopeOf(String payloadType, byte[] payload, Key... keys) throws Exception {
    List<Key> sorted = new ArrayList<>(Arrays.asList(keys));
    sorted.sort(Comparator.comparing(Key::id));
    List<String> ids = new ArrayList<>();
    List<byte[]> sigs = new ArrayList<>();
    for (Key k : sorted) {
      ids.add(k.id());
      sigs.add(k.sign(Codec.pae(payloadType, payload)));
    }
    return SignedDocument.envelopeBytes(payloadType, payload, ids, sigs);
  }

  static Map<String, Object> root(long version, int threshold, String repositoryId, Key... keys) {
    Map<String, Object> k = new LinkedHashMap<>();
    for (Key key : keys) {
      k.put(key.id(), map("algorithm", key.alg, "publicKey", key.pem()));
    }
    Map<String, Object> d = map("_type", "aoe.repository.root", "formatVersion", 1L, "version", version, "keys", k, "threshold", (long) threshold);
    if (repositoryId != null) {
      d.put("repositoryId", repositoryId);
    }
    return d;
  }

  static Map<String, Object> manifest(long version, String expires, Map<String, Object> models) {
    return map("_type", "aoe.repository.manifest", "formatVersion", 1L, "version", version, "expires", expires, "models", models);
  }

  static Map<String, Object> index(long version, String expires, Map<String, Object> tags) {
    return map("_type", "aoe.repository.index", "formatVersion", 1L, "version", version, "expires", expires,
        "manifestSha256", "00".repeat(32), "tags", tags);
  }

  static Map<String, Object> tagDocument(String tag, long version, Map<String, Object> model) {
    return map("_type", "aoe.repository.tag", "formatVersion", 1L, "tag", tag, "version", version, "model", model);
  }

  /** A release of {@code version} (which must have a versionCode), stable, 100 %, tflite. */
  static Map<String, Object> release(String version, Object... extra) throws AoeException {
    String sha = SignedDocument.sha256Hex(version.getBytes(StandardCharsets.UTF_8));
    Map<String, Object> r = map(
        "version", version,
        "versionCode", (long) Version.parse(version).versionCode(),
        "url", "bundles/" + sha + ".aoe",
        "size", 1000L,
        "sha256", sha,
        "runtimes", List.of("tflite"),
        "artifacts", List.of(map("runtime", "tflite")),
        "channel", "stable",
        "rollout", map("basisPoints", 10000L, "salt", "00112233445566778899aabbccddeeff"),
        "requiredRuntimes", List.of(),
        "critical", false);
    for (int i = 0; i < extra.length; i += 2) {
      r.put((String) extra[i], extra[i + 1]);
    }
    return r;
  }

  static Map<String, Object> entry(Object... releases) {
    return map("releases", List.of(releases));
  }

  static Map<String, Object> map(Object... kv) {
    Map<String, Object> m = new LinkedHashMap<>();
    for (int i = 0; i < kv.length; i += 2) {
      m.put((String) kv[i], kv[i + 1]);
    }
    return m;
  }

  void write(String name, byte[] data) throws IOException {
    File f = new File(dir, name);
    f.getParentFile().mkdirs();
    Files.write(f.toPath(), data);
  }

  void delete(String name) {
    new File(dir, name).delete();
  }

  Fetcher fetcher() {
    return new FolderFetcher(dir);
  }

  /** Serves a folder: a missing file is null, a longer one download-too-large. */
  static final class FolderFetcher implements Fetcher {
    private final File dir;

    FolderFetcher(File dir) {
      this.dir = dir;
    }

    @Override
    public byte[] fetch(String path, long maxBytes) throws AoeException {
      File f = new File(dir, path);
      if (!f.isFile()) {
        return null;
      }
      if (f.length() > maxBytes) {
        throw new AoeException("download-too-large", path + " is larger than " + maxBytes + " bytes");
      }
      try {
        return Files.readAllBytes(f.toPath());
      } catch (IOException e) {
        throw new AoeException("download", e.toString(), e);
      }
    }
  }
}
