package dev.aoepack.update;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpServer;
import dev.aoepack.AoeException;
import dev.aoepack.internal.Codec;
import dev.aoepack.internal.Pem;
import dev.aoepack.json.Canonical;
import dev.aoepack.keys.DecryptionKey;
import dev.aoepack.keys.TrustedKey;
import dev.aoepack.repo.Decision;
import dev.aoepack.repo.Device;
import dev.aoepack.repo.Version;
import java.io.File;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.MessageDigest;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The facade end to end over HTTP: a repository signed with the TEST-ONLY Ed25519 key of
 * tests/vectors, whose one release is the vector bundle v1-plain.aoe, served from a folder.
 */
class ModelUpdaterTest {
  private static final File VECTORS = new File(System.getProperty("aoe.root", "."), "tests/vectors");
  private static final String TAG = "aoe-pack.test-vectors";
  private static final String ROOT_TYPE = "application/vnd.aoe.repository.root.v1+json";
  private static final String MANIFEST_TYPE = "application/vnd.aoe.repository.manifest.v1+json";

  @TempDir Path tmp;
  private Path repo;
  private HttpServer server;
  private byte[] root;
  private byte[] bundle;
  private String sha;
  private PrivateKey signer;
  private TrustedKey signerPublic;
  private String signerPem;
  /** What the stand-in for the bundle reader says the bundle is. */
  private String[] identity = {TAG, "1.0.0"};
  private final List<File> unpacked = new ArrayList<>();

  @BeforeEach
  void setUp() throws Exception {
    repo = Files.createDirectories(tmp.resolve("repo"));
    signerPem = Files.readString(VECTORS.toPath().resolve("test-only-ed25519.pub"));
    signerPublic = TrustedKey.fromPem(signerPem.getBytes());
    byte[] der = Pem.blocks(Files.readAllBytes(VECTORS.toPath().resolve("test-only-ed25519.key"))).get(0).der;
    signer = KeyFactory.getInstance("Ed25519").generatePrivate(new PKCS8EncodedKeySpec(der));
    Map<String, Object> keys = map(signerPublic.keyId(), map("algorithm", "ed25519", "publicKey", signerPem));
    root = envelope(ROOT_TYPE, map("_type", "aoe.repository.root", "formatVersion", 1L, "version", 1L,
        "keys", keys, "threshold", 1L, "repositoryId", "a0".repeat(16)));
    Files.write(repo.resolve("root.json"), root);
    publish("v1-plain.aoe");
    server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
    server.createContext("/", ex -> {
      Path file = repo.resolve(ex.getRequestURI().getPath().substring("/repo/".length()));
      try (ex) {
        if (!Files.isRegularFile(file)) {
          ex.sendResponseHeaders(404, -1);
          return;
        }
        byte[] body = Files.readAllBytes(file);
        ex.getResponseHeaders().add("ETag", "\"" + body.length + "\"");
        ex.sendResponseHeaders(200, body.length);
        try (OutputStream out = ex.getResponseBody()) {
          out.write(body);
        }
      }
    });
    server.start();
  }

  @AfterEach
  void stop() {
    server.stop(0);
  }

  /** Make the vector bundle {@code name} the repository's one release, 1.0.0. */
  private void publish(String name) throws Exception {
    bundle = Files.readAllBytes(VECTORS.toPath().resolve(name));
    sha = Codec.hex(MessageDigest.getInstance("SHA-256").digest(bundle));
    Files.createDirectories(repo.resolve("bundles"));
    Files.write(repo.resolve("bundles/" + sha + ".aoe"), bundle);
    writeManifest(1, "1.0.0", sha, bundle.length);
  }

  private void writeManifest(long version, String release, String digest, long size) throws Exception {
    Map<String, Object> r = map(
        "version", release, "versionCode", Version.parse(release).versionCode(), "url", "bundles/" + digest + ".aoe",
        "size", size, "sha256", digest, "runtimes", List.of("tflite"),
        "artifacts", List.of(map("runtime", "tflite")), "channel", "stable",
        "rollout", map("basisPoints", 10000L, "salt", "00112233445566778899aabbccddeeff"),
        "requiredRuntimes", List.of(), "critical", false, "signers", List.of(signerPublic.keyId()));
    Map<String, Object> manifest = map("_type", "aoe.repository.manifest", "formatVersion", 1L,
        "version", version, "expires", "2099-01-01T00:00:00Z",
        "bundleKeys", map(signerPublic.keyId(), signerPem),
        "models", map(TAG, map("releases", List.of(r))));
    Files.write(repo.resolve("manifest.json"), envelope(MANIFEST_TYPE, manifest));
  }

  private byte[] envelope(String type, Map<String, Object> payload) throws Exception {
    byte[] body = Canonical.encode(payload);
    Signature s = Signature.getInstance("Ed25519");
    s.initSign(signer);
    s.update(Codec.pae(type, body));
    return Canonical.encode(map("payload", Codec.base64(body), "payloadType", type,
        "signatures", List.of(map("keyid", signerPublic.keyId(), "sig", Codec.base64(s.sign())))));
  }

  private static Map<String, Object> map(Object... kv) {
    Map<String, Object> m = new LinkedHashMap<>();
    for (int i = 0; i < kv.length; i += 2) {
      m.put((String) kv[i], kv[i + 1]);
    }
    return m;
  }

  private ModelUpdater updater() throws Exception {
    return ModelUpdater.builder()
        .repository("http://127.0.0.1:" + server.getAddress().getPort() + "/repo/")
        .allowCleartextHttp(true)
        .trustedRoot(root)
        .stateFile(tmp.resolve("state/repo.json").toFile())
        .modelsDir(tmp.resolve("models").toFile())
        .installer((file, tag, version, into, keys, key, xwing) -> {
          assertEquals(List.of(signerPublic.keyId()), keys.stream().map(TrustedKey::keyId).toList());
          try {
            assertFalse(into.exists());
            Files.createDirectories(into.toPath());
            Files.copy(file.toPath(), into.toPath().resolve("model.aoe"));
          } catch (java.io.IOException e) {
            throw new AoeException("output", e.toString(), e);
          }
          unpacked.add(into);
          return identity.clone();
        })
        .build();
  }

  /** The updater with the library's own bundle reader. */
  private ModelUpdater realUpdater(DecryptionKey key) throws Exception {
    return ModelUpdater.builder()
        .repository("http://127.0.0.1:" + server.getAddress().getPort() + "/repo/")
        .allowCleartextHttp(true)
        .trustedRoot(root)
        .stateFile(tmp.resolve("state/repo.json").toFile())
        .modelsDir(tmp.resolve("models").toFile())
        .decryptionKey(key)
        .build();
  }

  private void assertInstalledVectorFiles(File installed) throws Exception {
    assertEquals(8, Files.size(installed.toPath().resolve("labels.txt")));
    assertEquals(0, Files.size(installed.toPath().resolve("assets/empty.bin")));
    assertTrue(Files.isRegularFile(installed.toPath().resolve("model.tflite")));
  }

  @Test
  void thePlainVectorBundleIsVerifiedAndUnpackedEndToEnd() throws Exception {
    ModelUpdater u = realUpdater(null);
    File installed = u.download(check(u));
    assertInstalledVectorFiles(installed);
    assertEquals(installed, u.currentModel(TAG));
    assertEquals(Decision.Action.KEEP, check(u).action());
  }

  @Test
  void theX25519VectorBundleIsDecryptedEndToEnd() throws Exception {
    publish("v1-x25519.aoe");
    ModelUpdater u = realUpdater(DecryptionKey.fromFile(
        Files.readAllBytes(VECTORS.toPath().resolve("test-only-x25519.key"))));
    assertInstalledVectorFiles(u.download(check(u)));
  }

  @Test
  void anEncryptedBundleWithoutTheKeyFailsAndInstallsNothing() throws Exception {
    publish("v1-x25519.aoe");
    ModelUpdater u = realUpdater(null);
    Decision d = check(u);
    assertEquals("decryption", assertThrows(AoeException.class, () -> u.download(d)).code());
    assertNull(u.currentModel(TAG));
    String[] left = tmp.resolve("models").resolve(TAG).toFile().list();
    assertEquals(0, left == null ? 0 : left.length, "no staging folder left: " + java.util.Arrays.toString(left));
  }

  private Decision check(ModelUpdater u) throws Exception {
    return u.check(Device.builder().tag(TAG).deviceId("device-1").appVersion("1.0.0")
        .localVersion("0.9.0").installedVersion(u.installedVersion(TAG)).build());
  }

  @Test
  void aReleaseIsCheckedDownloadedInstalledAndThenKept() throws Exception {
    ModelUpdater u = updater();
    assertNull(u.currentModel(TAG));
    Decision d = check(u);
    assertEquals(Decision.Action.DOWNLOAD, d.action());
    File installed = u.download(d);
    assertEquals(tmp.resolve("models").resolve(TAG).resolve("1.0.0").toFile(), installed);
    assertArrayEquals(bundle, Files.readAllBytes(installed.toPath().resolve("model.aoe")));
    assertEquals(installed, u.currentModel(TAG));
    assertEquals("1.0.0", u.installedVersion(TAG));
    assertFalse(new File(tmp.resolve("models/.downloads").toFile(), TAG + "-1.0.0.aoe").exists());
    assertFalse(unpacked.get(0).exists(), "the staging folder was renamed into place");
    assertEquals(Decision.Action.KEEP, check(u).action());
  }

  @Test
  void revertingToLocalForgetsTheInstalledModel() throws Exception {
    ModelUpdater u = updater();
    u.download(check(u));
    u.revertToLocal(TAG);
    assertNull(u.currentModel(TAG));
    assertNull(u.installedVersion(TAG));
  }

  @Test
  void aBundleThatSaysItIsAnotherVersionIsBundleMismatchAndNothingIsInstalled() throws Exception {
    identity = new String[] {TAG, "1.0.1"};
    ModelUpdater u = updater();
    Decision d = check(u);
    assertEquals("bundle-mismatch", assertThrows(AoeException.class, () -> u.download(d)).code());
    assertNull(u.currentModel(TAG));
    assertFalse(unpacked.get(0).exists());
    assertFalse(tmp.resolve("models").resolve(TAG).resolve("1.0.1").toFile().exists());
    assertFalse(new File(tmp.resolve("models/.downloads").toFile(), TAG + "-1.0.0.aoe").exists());
  }

  @Test
  void aReleaseWhoseBundleIsAnotherVersionIsRefusedBeforeDecrypting() throws Exception {
    publish("v1-x25519.aoe"); // the bundle says 1.0.0
    writeManifest(1, "1.0.1", sha, bundle.length); // the repository lists it as 1.0.1
    ModelUpdater u = realUpdater(null); // no key: decrypting would fail with "decryption"
    Decision d = check(u);
    assertEquals("1.0.1", d.version());
    assertEquals("bundle-mismatch", assertThrows(AoeException.class, () -> u.download(d)).code());
    assertNull(u.currentModel(TAG));
  }

  @Test
  void aBundleForAnotherTagIsBundleMismatch() throws Exception {
    identity = new String[] {"other.model", "1.0.0"};
    ModelUpdater u = updater();
    Decision d = check(u);
    assertEquals("bundle-mismatch", assertThrows(AoeException.class, () -> u.download(d)).code());
  }

  @Test
  void aSubstitutedBundleIsBundleMismatchBeforeItIsUnpacked() throws Exception {
    byte[] other = bundle.clone();
    other[other.length / 2] ^= 1;
    Files.write(repo.resolve("bundles/" + sha + ".aoe"), other);
    ModelUpdater u = updater();
    Decision d = check(u);
    assertEquals("bundle-mismatch", assertThrows(AoeException.class, () -> u.download(d)).code());
    assertTrue(unpacked.isEmpty());
    assertNull(u.currentModel(TAG));
  }

  @Test
  void aFailedInstallKeepsTheModelInUse() throws Exception {
    ModelUpdater u = updater();
    Decision d = check(u);
    File first = u.download(d);
    identity = new String[] {TAG, "2.0.0"}; // the same release again, now a bundle signed as another
    assertEquals("bundle-mismatch", assertThrows(AoeException.class, () -> u.download(d)).code());
    assertEquals(first, u.currentModel(TAG));
    assertTrue(new File(first, "model.aoe").isFile());
  }

  @Test
  void thereIsNothingToDownloadForAKeepDecision() throws Exception {
    ModelUpdater u = updater();
    u.download(check(u));
    Decision keep = check(u);
    assertEquals("usage", assertThrows(AoeException.class, () -> u.download(keep)).code());
  }

  @Test
  void aMissingSettingIsAUsageError() {
    assertEquals("usage", assertThrows(AoeException.class,
        () -> ModelUpdater.builder().repository("https://models.example.com/repo/").build()).code());
  }

  @Test
  void aPlainHttpRepositoryNeedsTheAppsConsent() {
    assertEquals("usage", assertThrows(AoeException.class, () -> ModelUpdater.builder()
        .repository("http://models.example.com/repo/").trustedRoot(root)
        .stateFile(tmp.resolve("s.json").toFile()).modelsDir(tmp.toFile()).build()).code());
  }

  @Test
  void aPlantedCurrentRecordNamingNoInstalledFolderRunsTheLocalModel() throws Exception {
    ModelUpdater u = updater();
    Files.createDirectories(tmp.resolve("models").resolve(TAG));
    Files.writeString(tmp.resolve("models").resolve(TAG).resolve("current"), "../../etc\n");
    assertNull(u.currentModel(TAG));
  }
}
