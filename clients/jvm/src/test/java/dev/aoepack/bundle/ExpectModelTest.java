package dev.aoepack.bundle;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.aoepack.AoeException;
import java.io.File;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A verifier told which model to expect refuses another one as soon as its signatures are
 * checked: before anything is decrypted or written (§15.6, the release a repository lists must
 * be the bundle it names).
 */
class ExpectModelTest {
  private static final File X25519 =
      new File(System.getProperty("aoe.root"), "tests/vectors/v1-x25519.aoe");
  private static final String TAG = "aoe-pack.test-vectors";

  private static BundleVerifier expecting(String tag, String version) throws AoeException {
    return BundleVerifier.builder()
        .trust(Kit.trusted(Kit.SIGNERS[0]), Kit.trusted(Kit.SIGNERS[1]))
        .threshold(2)
        .expectModel(tag, version)
        .build();
  }

  @Test
  void anotherVersionIsBundleMismatchBeforeTheMissingKeyMatters(@TempDir Path tmp) throws Exception {
    File out = tmp.resolve("out").toFile();
    AoeException e = assertThrows(
        AoeException.class, () -> expecting(TAG, "1.0.1").unpack(X25519, out, null, null));
    assertEquals("bundle-mismatch", e.code());
    assertFalse(out.exists());
  }

  @Test
  void anotherTagIsBundleMismatch() throws Exception {
    AoeException e = assertThrows(
        AoeException.class,
        () -> expecting("other.model", "1.0.0").verify(X25519, Kit.key("test-only-x25519.key"), null));
    assertEquals("bundle-mismatch", e.code());
  }

  @Test
  void theExpectedModelUnpacks(@TempDir Path tmp) throws Exception {
    VerifiedBundle v = expecting(TAG, "1.0.0")
        .unpack(X25519, tmp.resolve("out").toFile(), Kit.key("test-only-x25519.key"), null);
    assertEquals("1.0.0", v.version());
  }
}
