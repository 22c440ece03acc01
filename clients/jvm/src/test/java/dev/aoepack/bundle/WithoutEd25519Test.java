package dev.aoepack.bundle;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.aoepack.AlgorithmUnavailableException;
import dev.aoepack.testing.WithoutEd25519;
import java.io.File;
import java.util.Collections;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.parallel.Isolated;

/**
 * A phone without Ed25519 (below Android API 33, no provider added) and a bundle signed by an
 * Ed25519 and a P-256 key, as every vector is: the P-256 signature carries it where the
 * threshold allows, and only a threshold the missing algorithm keeps out of reach is reported,
 * as {@code algorithm-unavailable} naming Ed25519, never as a bad bundle.
 */
@Isolated
class WithoutEd25519Test {
  private static final File PLAIN =
      new File(System.getProperty("aoe.root"), "tests/vectors/v1-plain.aoe");

  @BeforeEach
  void dropEd25519() {
    WithoutEd25519.install();
  }

  @AfterEach
  void restore() {
    WithoutEd25519.restore();
  }

  @Test
  void theP256SignatureAloneMeetsAThresholdOfOne() throws Exception {
    BundleVerifier verifier = BundleVerifier.builder()
        .trust(Kit.trusted("test-only-ed25519"), Kit.trusted("test-only-p256"))
        .threshold(1)
        .build();
    VerifiedBundle bundle = verifier.verify(PLAIN);
    assertEquals(Collections.singletonList(Kit.trusted("test-only-p256").keyId()), bundle.signerKeyIds());
  }

  @Test
  void aThresholdOnlyEd25519CouldMeetIsAlgorithmUnavailableNotThreshold() throws Exception {
    BundleVerifier verifier = BundleVerifier.builder()
        .trust(Kit.trusted("test-only-ed25519"), Kit.trusted("test-only-p256"))
        .threshold(2)
        .build();
    AlgorithmUnavailableException e =
        assertThrows(AlgorithmUnavailableException.class, () -> verifier.verify(PLAIN));
    assertEquals("algorithm-unavailable", e.code());
    assertEquals("Ed25519", e.algorithm());
  }
}
