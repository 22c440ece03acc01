package dev.aoepack.repo;

import static dev.aoepack.repo.TestRepository.entry;
import static dev.aoepack.repo.TestRepository.envelope;
import static dev.aoepack.repo.TestRepository.manifest;
import static dev.aoepack.repo.TestRepository.map;
import static dev.aoepack.repo.TestRepository.release;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.aoepack.AoeException;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** §15.6 end to end: the committed split-repository vectors, and one named test per attack. */
class UpdateCheckerTest {
  static final String TAG = "aoe-pack.test-vectors";
  static final String ID = "a0e0a0e0a0e0a0e0a0e0a0e0a0e0a0e0";
  static final String LATER = "2030-01-01T00:00:00Z";
  static final long NOW = Timestamps.parseMillis("2026-01-01T00:00:00Z");

  static TestRepository.Key ed;
  static TestRepository.Key p256;

  @TempDir File tmp;
  TestRepository repo;
  File state;
  byte[] root1;

  @BeforeAll
  static void keys() throws Exception {
    ed = TestRepository.vectorKey("ed25519");
    p256 = TestRepository.vectorKey("p256");
  }

  @BeforeEach
  void repository() throws Exception {
    File dir = new File(tmp, "repo");
    dir.mkdirs();
    repo = new TestRepository(dir);
    state = new File(tmp, "state/" + ID + ".json");
    root1 = envelope(SignedDocument.ROOT, TestRepository.root(1, 2, ID, ed, p256), ed, p256);
    repo.write("roots/1.root.json", root1);
  }

  UpdateChecker.Builder checker() {
    return UpdateChecker.builder().fetcher(repo.fetcher()).trustedRoot(root1).stateFile(state).clock(() -> NOW);
  }

  static Device device(String local) throws AoeException {
    return Device.builder().tag(TAG).deviceId("device-1").appVersion("3.0.0").localVersion(local).build();
  }

  void publish(long version, String expires, Map<String, Object> models, TestRepository.Key... keys) throws Exception {
    repo.write("manifest.json", envelope(SignedDocument.MANIFEST, manifest(version, expires, models), keys));
  }

  void publish(long version) throws Exception {
    publish(version, LATER, map(TAG, entry(release("1.0.0"))), ed, p256);
  }

  static String code(ThrowingRunnable r) {
    AoeException e = assertThrows(AoeException.class, r::run);
    return e.code();
  }

  interface ThrowingRunnable {
    void run() throws Exception;
  }

  // --- the committed vectors ------------------------------------------------------------------

  static byte[] vector(String name) throws Exception {
    return Files.readAllBytes(new File(TestRepository.VECTORS, name).toPath());
  }

  @Test
  void splitRepositoryVectorsVerifyAsADeviceDoes() throws Exception {
    byte[] root = vector("repo-root.json");
    repo.delete("roots/1.root.json");
    repo.write("index.json", vector("repo-index.json"));
    repo.write("tags/" + TAG + "/2.json", vector("repo-tag.json"));
    repo.write("manifest.json", vector("repo-manifest.json"));
    UpdateChecker c = UpdateChecker.builder().fetcher(repo.fetcher()).trustedRoot(root).stateFile(state).clock(() -> NOW).build();
    assertEquals(ID, UpdateChecker.repositoryId(root));
    Decision d = c.check(device("0.9.0"));
    assertEquals(Decision.Action.DOWNLOAD, d.action());
    assertEquals("1.0.0", d.version());
    assertEquals("1.0.0 > 0.9.0: in the 100% rollout", d.reason());
    assertEquals(1, d.rootVersion());
    assertEquals(3, d.manifestVersion());
    assertEquals(1234, d.size());
    assertEquals(
        "{\"action\":\"download\",\"manifestVersion\":3,\"ok\":true,\"reason\":\"1.0.0 > 0.9.0: in the 100% rollout\","
            + "\"rootVersion\":1,\"running\":\"0.9.0 (local)\","
            + "\"sha256\":\"207c3f9647d0761ee3141212d0ce567f81b06bb02ec6d47b9aac4237b1382cc6\",\"size\":1234,"
            + "\"skipped\":[],\"tag\":\"aoe-pack.test-vectors\","
            + "\"url\":\"bundles/207c3f9647d0761ee3141212d0ce567f81b06bb02ec6d47b9aac4237b1382cc6.aoe\",\"version\":\"1.0.0\"}",
        d.toJson());
    assertEquals("[85c851744a2dda0e82d7e91903e1e53abce7d7b491b3fa6da4efcafcb5d23a2a]", d.bundleKeys().keySet().toString());
    String saved = new String(Files.readAllBytes(state.toPath()), StandardCharsets.UTF_8);
    assertTrue(saved.contains("\"manifestVersion\": 3"), saved);
    assertTrue(saved.contains("\"indexSha256\": \"" + SignedDocument.sha256Hex(
        SignedDocument.parse(vector("repo-index.json"), SignedDocument.INDEX, "index.json").payload) + "\""), saved);
    // The same decision through manifest.json (no index), against the floor just saved.
    repo.delete("index.json");
    Decision viaManifest = c.check(device("0.9.0"));
    assertEquals(d.toJson(), viaManifest.toJson());
    // A tag the index does not list is a tag the manifest does not list: keep.
    repo.write("index.json", vector("repo-index.json"));
    Decision none = c.check(Device.builder().tag("no.such").deviceId("d").appVersion("1.0.0").localVersion("1.0.0").build());
    assertEquals("the manifest has no model 'no.such'", none.reason());
    assertEquals(Decision.Action.KEEP, none.action());
  }

  @Test
  void tagDocumentVersion4VerifiesUnderTheVectorRoot() throws Exception {
    Root root = Root.verifySelfSigned(vector("repo-root.json"), "root");
    SignedDocument doc = SignedDocument.parse(vector("repo-tag-4.json"), SignedDocument.TAG, "tags/x/4.json");
    assertEquals(2, doc.validKeyIds(root.keys(), root.threshold()).size());
    TagDocument t = TagDocument.fromBody(doc.body, "tags/x/4.json");
    assertEquals(4, t.version);
    assertEquals(2, ModelEntry.check(TAG, t.model).releases.size());
  }

  @Test
  void aNewDeviceDownloadsAndTheStateFollows() throws Exception {
    publish(5);
    Decision d = checker().build().check(device("0.9.0"));
    assertEquals(Decision.Action.DOWNLOAD, d.action());
    assertEquals(5, d.manifestVersion());
    assertEquals(5L, DeviceState.read(state)[0] instanceof DeviceState ? ((DeviceState) DeviceState.read(state)[0]).floor.version : -1);
    assertNull(((DeviceState) DeviceState.read(state)[0]).floor.indexSha256);
  }

  // --- named attacks ------------------------------------------------------------------------

  @Test
  void wrongPayloadTypeIsRepositoryFormat() throws Exception {
    repo.write("manifest.json", envelope(SignedDocument.ROOT, manifest(5, LATER, map()), ed, p256));
    assertEquals("repository-format", code(() -> checker().build().check(device("1.0.0"))));
  }

  @Test
  void nonCanonicalEnvelopeIsRepositoryFormat() throws Exception {
    publish(5);
    byte[] good = Files.readAllBytes(new File(repo.dir, "manifest.json").toPath());
    repo.write("manifest.json", (new String(good, StandardCharsets.UTF_8) + " ").getBytes(StandardCharsets.UTF_8));
    assertEquals("repository-format", code(() -> checker().build().check(device("1.0.0"))));
  }

  @Test
  void nonCanonicalPayloadIsRepositoryFormat() throws Exception {
    byte[] payload = "{\"version\":5, \"_type\":\"aoe.repository.manifest\"}".getBytes(StandardCharsets.UTF_8);
    repo.write("manifest.json", TestRepository.envelopeOf(SignedDocument.MANIFEST, payload, ed, p256));
    assertEquals("repository-format", code(() -> checker().build().check(device("1.0.0"))));
  }

  @Test
  void floatInPayloadIsRepositoryFormat() throws Exception {
    byte[] payload = "{\"version\":5.0}".getBytes(StandardCharsets.UTF_8);
    repo.write("manifest.json", TestRepository.envelopeOf(SignedDocument.MANIFEST, payload, ed, p256));
    assertEquals("repository-format", code(() -> checker().build().check(device("1.0.0"))));
  }

  @Test
  void unsortedSignaturesAreUntrustedMetadata() throws Exception {
    publish(5);
    String text = new String(Files.readAllBytes(new File(repo.dir, "manifest.json").toPath()), StandardCharsets.UTF_8);
    int at = text.indexOf("\"signatures\":[") + 14;
    String sigs = text.substring(at, text.length() - 2);
    int split = sigs.indexOf("},{") + 1;
    String swapped = text.substring(0, at) + sigs.substring(split + 1) + "," + sigs.substring(0, split) + "]}";
    repo.write("manifest.json", swapped.getBytes(StandardCharsets.UTF_8));
    assertEquals("untrusted-metadata", code(() -> checker().build().check(device("1.0.0"))));
  }

  @Test
  void untrustedSignerIsUntrustedMetadata() throws Exception {
    publish(5, LATER, map(), TestRepository.fresh(), TestRepository.fresh());
    assertEquals("untrusted-metadata", code(() -> checker().build().check(device("1.0.0"))));
  }

  @Test
  void belowThresholdIsUntrustedMetadata() throws Exception {
    publish(5, LATER, map(), ed);
    assertEquals("untrusted-metadata", code(() -> checker().build().check(device("1.0.0"))));
  }

  @Test
  void expiredManifestIsExpired() throws Exception {
    publish(5, "2025-12-31T23:59:59Z", map(), ed, p256);
    assertEquals("expired", code(() -> checker().build().check(device("1.0.0"))));
    publish(5, "2026-01-01T00:00:00Z", map(), ed, p256); // expires <= now
    assertEquals("expired", code(() -> checker().build().check(device("1.0.0"))));
    assertTrue(!state.exists(), "a failed update remembers nothing");
  }

  @Test
  void notARealDateIsRepositoryFormat() throws Exception {
    publish(5, "2030-02-30T00:00:00Z", map(), ed, p256);
    assertEquals("repository-format", code(() -> checker().build().check(device("1.0.0"))));
  }

  @Test
  void rollbackIsRollback() throws Exception {
    publish(5);
    checker().build().check(device("1.0.0"));
    publish(4);
    assertEquals("rollback", code(() -> checker().build().check(device("1.0.0"))));
  }

  @Test
  void equalVersionReplayWithDifferentBytesIsRollback() throws Exception {
    publish(5);
    checker().build().check(device("1.0.0"));
    publish(5); // the same payload re-signed (ECDSA signatures differ): the same manifest
    checker().build().check(device("1.0.0"));
    publish(5, LATER, map(TAG, entry(release("1.0.0", "yanked", map("reason", "r")))), ed, p256);
    assertEquals("rollback", code(() -> checker().build().check(device("1.0.0"))));
  }

  @Test
  void firstContactBelowMinManifestVersionIsRollback() throws Exception {
    publish(5);
    assertEquals("rollback", code(() -> checker().minManifestVersion(6).build().check(device("1.0.0"))));
    assertEquals(5, checker().minManifestVersion(5).build().check(device("1.0.0")).manifestVersion());
  }

  @Test
  void rootOfAnotherRepositoryIdIsRootRotation() throws Exception {
    String other = "b1f1b1f1b1f1b1f1b1f1b1f1b1f1b1f1";
    repo.write("roots/2.root.json", envelope(SignedDocument.ROOT, TestRepository.root(2, 2, other, ed, p256), ed, p256));
    publish(5);
    assertEquals("root-rotation", code(() -> checker().build().check(device("1.0.0"))));
  }

  @Test
  void shippedRootOfAnotherRepositoryThanTheStateIsUntrustedMetadata() throws Exception {
    publish(5);
    checker().build().check(device("1.0.0"));
    byte[] other = envelope(SignedDocument.ROOT, TestRepository.root(1, 2, "b1f1b1f1b1f1b1f1b1f1b1f1b1f1b1f1", ed, p256), ed, p256);
    assertEquals("untrusted-metadata", code(() -> checker().trustedRoot(other).build().check(device("1.0.0"))));
  }

  @Test
  void mixAndMatchIndexAndTagDocumentIsMixAndMatch() throws Exception {
    publish(5);
    repo.write("index.json", envelope(SignedDocument.INDEX, TestRepository.index(5, LATER, map(TAG, 5L, "other", 3L)), ed, p256));
    // The document of another tag, validly signed, served under this tag's name.
    repo.write("tags/" + TAG + "/5.json", envelope(SignedDocument.TAG, TestRepository.tagDocument("other", 3, entry()), ed, p256));
    assertEquals("mix-and-match", code(() -> checker().build().check(device("1.0.0"))));
    // This tag's document at another version.
    repo.write("tags/" + TAG + "/5.json", envelope(SignedDocument.TAG, TestRepository.tagDocument(TAG, 4, entry()), ed, p256));
    assertEquals("mix-and-match", code(() -> checker().build().check(device("1.0.0"))));
    repo.write("tags/" + TAG + "/5.json", envelope(SignedDocument.TAG, TestRepository.tagDocument(TAG, 5, entry(release("1.0.0"))), ed, p256));
    assertEquals(Decision.Action.DOWNLOAD, checker().build().check(device("0.1.0")).action());
  }

  @Test
  void indexRollbackBelowTheManifestFloorIsRollback() throws Exception {
    publish(5);
    checker().build().check(device("1.0.0"));
    repo.write("index.json", envelope(SignedDocument.INDEX, TestRepository.index(4, LATER, map()), ed, p256));
    assertEquals("rollback", code(() -> checker().build().check(device("1.0.0"))));
  }

  @Test
  void missingTagDocumentIsRepository() throws Exception {
    repo.write("index.json", envelope(SignedDocument.INDEX, TestRepository.index(5, LATER, map(TAG, 5L)), ed, p256));
    assertEquals("repository", code(() -> checker().build().check(device("1.0.0"))));
  }

  @Test
  void rootChainWithAGapIsRootRotation() throws Exception {
    repo.write("roots/2.root.json", envelope(SignedDocument.ROOT, TestRepository.root(3, 2, ID, ed, p256), ed, p256));
    publish(5);
    assertEquals("root-rotation", code(() -> checker().build().check(device("1.0.0"))));
  }

  @Test
  void rootSignedBelowTheOldThresholdIsRootRotation() throws Exception {
    repo.write("roots/2.root.json", envelope(SignedDocument.ROOT, TestRepository.root(2, 1, ID, ed), ed));
    publish(5);
    assertEquals("root-rotation", code(() -> checker().build().check(device("1.0.0"))));
  }

  @Test
  void rootSignedBelowItsOwnThresholdIsRootRotation() throws Exception {
    TestRepository.Key a = TestRepository.fresh();
    TestRepository.Key b = TestRepository.fresh();
    repo.write("roots/2.root.json", envelope(SignedDocument.ROOT, TestRepository.root(2, 2, ID, a, b), ed, p256, a));
    publish(5);
    assertEquals("root-rotation", code(() -> checker().build().check(device("1.0.0"))));
  }

  @Test
  void rotationToNewKeysIsFollowedAndTheOldKeysLoseTrust() throws Exception {
    TestRepository.Key a = TestRepository.fresh();
    repo.write("roots/2.root.json", envelope(SignedDocument.ROOT, TestRepository.root(2, 1, ID, a), ed, p256, a));
    publish(5);
    assertEquals("untrusted-metadata", code(() -> checker().build().check(device("1.0.0"))));
    publish(5, LATER, map(), a);
    assertEquals(2, checker().build().check(device("1.0.0")).rootVersion());
  }

  @Test
  void fastForwardRecoveryDropsAFloorOfRevokedKeys() throws Exception {
    publish(1000000); // a fast-forward by (say) stolen keys
    checker().build().check(device("1.0.0"));
    TestRepository.Key a = TestRepository.fresh();
    repo.write("roots/2.root.json", envelope(SignedDocument.ROOT, TestRepository.root(2, 1, ID, a), ed, p256, a));
    publish(1, LATER, map(), a); // the owners restart under new keys
    assertEquals(1, checker().minManifestVersion(7).build().check(device("1.0.0")).manifestVersion());
    assertEquals(1L, ((DeviceState) DeviceState.read(state)[0]).floor.version);
  }

  @Test
  void aRotationThatKeepsTheKeysKeepsTheFloor() throws Exception {
    publish(5);
    checker().build().check(device("1.0.0"));
    TestRepository.Key a = TestRepository.fresh();
    repo.write("roots/2.root.json", envelope(SignedDocument.ROOT, TestRepository.root(2, 2, ID, ed, p256, a), ed, p256, a));
    publish(4, LATER, map(), ed, p256);
    assertEquals("rollback", code(() -> checker().build().check(device("1.0.0"))));
  }

  @Test
  void endlessRootChainIsRepository() throws Exception {
    TestRepository.Key[] keys = {ed, p256};
    for (int v = 2; v <= 66; v++) {
      repo.write("roots/" + v + ".root.json", envelope(SignedDocument.ROOT, TestRepository.root(v, 2, ID, keys), keys));
    }
    publish(5);
    assertEquals("repository", code(() -> checker().build().check(device("1.0.0"))));
    repo.delete("roots/66.root.json");
    assertEquals(65, checker().build().check(device("1.0.0")).rootVersion());
  }

  @Test
  void corruptStateFileIsRepositoryFormat() throws Exception {
    publish(5);
    state.getParentFile().mkdirs();
    Files.write(state.toPath(), "{\"root\": 1, \"manifestVersion\": null}".getBytes(StandardCharsets.UTF_8));
    assertEquals("repository-format", code(() -> checker().build().check(device("1.0.0"))));
    Files.write(state.toPath(), "not json".getBytes(StandardCharsets.UTF_8));
    assertEquals("repository-format", code(() -> checker().build().check(device("1.0.0"))));
    Files.write(state.toPath(), new byte[DeviceState.MAX_STATE_BYTES + 1]);
    assertEquals("repository-format", code(() -> checker().build().check(device("1.0.0"))));
  }

  @Test
  void aStateFileWhoseRootKeysAreNotKeyIdsIsRepositoryFormat() throws Exception {
    publish(5);
    checker().build().check(device("1.0.0"));
    String saved = new String(Files.readAllBytes(state.toPath()), StandardCharsets.UTF_8);
    String forged = saved.replaceFirst("\"[0-9a-f]{64}\"(\\s*\\])", "\"not \\\\\"a key id\"$1");
    assertTrue(!forged.equals(saved), saved);
    Files.write(state.toPath(), forged.getBytes(StandardCharsets.UTF_8));
    assertEquals("repository-format", code(() -> checker().build().check(device("1.0.0"))));
  }

  @Test
  void aDeviceIdWithAnUnpairedSurrogateIsAUsageError() {
    assertEquals("usage", code(() -> Device.builder().tag(TAG).deviceId("dev\ud800ice")
        .appVersion("3.0.0").localVersion("1.0.0").build()));
  }

  @Test
  void lockedStateIsStateLocked() throws Exception {
    publish(5);
    StateLock held = StateLock.acquire(state, 1000);
    try {
      assertEquals("state-locked", code(() -> checker().lockWaitMillis(200).build().check(device("1.0.0"))));
    } finally {
      held.close();
    }
    assertEquals(5, checker().build().check(device("1.0.0")).manifestVersion());
  }

  @Test
  void theSaveNeverLowersAHigherFloorOnDisk() throws Exception {
    publish(7);
    checker().build().check(device("1.0.0"));
    Object[] onDisk = DeviceState.read(state);
    Root root = (Root) onDisk[1];
    new DeviceState(root1, new Floor(5, null, root.keys().keySet(), null)).save(state, root);
    assertEquals(7L, ((DeviceState) DeviceState.read(state)[0]).floor.version);
  }

  @Test
  void aStateFileOfTheReferenceLayoutIsRead() throws Exception {
    publish(5);
    String text = "{\n  \"root\": \"" + dev.aoepack.internal.Codec.base64(root1) + "\",\n  \"manifestVersion\": 6\n}\n";
    state.getParentFile().mkdirs();
    Files.write(state.toPath(), text.getBytes(StandardCharsets.UTF_8));
    assertEquals("rollback", code(() -> checker().build().check(device("1.0.0"))));
  }
}
