package dev.aoepack.repo;

import static dev.aoepack.repo.TestRepository.entry;
import static dev.aoepack.repo.TestRepository.envelope;
import static dev.aoepack.repo.TestRepository.manifest;
import static dev.aoepack.repo.TestRepository.map;
import static dev.aoepack.repo.TestRepository.release;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.aoepack.AlgorithmUnavailableException;
import dev.aoepack.testing.WithoutEd25519;
import java.io.File;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.api.parallel.Isolated;

/**
 * A phone without Ed25519 and a repository whose documents an Ed25519 and a P-256 key sign:
 * a root threshold of 1 is met by the P-256 key alone; a threshold of 2 is reported as the
 * missing algorithm, not as untrusted metadata.
 */
@Isolated
class WithoutEd25519RepoTest {
  static final String ID = UpdateCheckerTest.ID;

  @TempDir File tmp;
  TestRepository repo;
  TestRepository.Key ed;
  TestRepository.Key p256;

  @BeforeEach
  void dropEd25519() throws Exception {
    ed = TestRepository.vectorKey("ed25519"); // signing needs Ed25519: before it goes
    p256 = TestRepository.vectorKey("p256");
    File dir = new File(tmp, "repo");
    dir.mkdirs();
    repo = new TestRepository(dir);
    WithoutEd25519.install();
  }

  private Decision check(int threshold) throws Exception {
    WithoutEd25519.restore(); // the publisher has Ed25519; only the phone lacks it
    byte[] root = envelope(SignedDocument.ROOT, TestRepository.root(1, threshold, ID, ed, p256), ed, p256);
    repo.write("roots/1.root.json", root);
    repo.write("manifest.json", envelope(SignedDocument.MANIFEST,
        manifest(1, UpdateCheckerTest.LATER, map(UpdateCheckerTest.TAG, entry(release("1.0.0")))), ed, p256));
    WithoutEd25519.install();
    return UpdateChecker.builder().fetcher(repo.fetcher()).trustedRoot(root)
        .stateFile(new File(tmp, "state.json")).clock(() -> UpdateCheckerTest.NOW).build()
        .check(UpdateCheckerTest.device("0.9.0"));
  }

  @AfterEach
  void restoreEd25519() {
    WithoutEd25519.restore();
  }

  @Test
  void aRootOfThresholdOneIsMetByItsP256KeyAlone() throws Exception {
    Decision d = check(1);
    assertEquals(Decision.Action.DOWNLOAD, d.action());
    assertEquals(1, d.manifestVersion());
  }

  @Test
  void aThresholdOnlyEd25519CouldMeetIsAlgorithmUnavailable() throws Exception {
    AlgorithmUnavailableException e =
        assertThrows(AlgorithmUnavailableException.class, () -> check(2));
    assertEquals("algorithm-unavailable", e.code());
    assertEquals("Ed25519", e.algorithm());
  }
}
