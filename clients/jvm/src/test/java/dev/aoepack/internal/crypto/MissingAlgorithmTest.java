package dev.aoepack.internal.crypto;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.aoepack.AlgorithmUnavailableException;
import dev.aoepack.keys.DecryptionKey;
import dev.aoepack.testing.Vectors;
import java.security.Provider;
import java.security.Security;
import org.junit.jupiter.api.Test;

/**
 * With the JDK's provider of an algorithm removed (as on an Android release
 * that lacks it), the library names the algorithm instead of failing
 * otherwise. The provider is put back where it was.
 */
class MissingAlgorithmTest {
  interface Body {
    void run() throws Exception;
  }

  static void without(String providerName, Body body) throws Exception {
    Provider[] all = Security.getProviders();
    int position = -1;
    Provider removed = null;
    for (int i = 0; i < all.length; i++) {
      if (all[i].getName().equals(providerName)) {
        position = i + 1;
        removed = all[i];
      }
    }
    if (removed == null) {
      throw new IllegalStateException("the JDK has no provider " + providerName);
    }
    Security.removeProvider(providerName);
    try {
      body.run();
    } finally {
      Security.insertProviderAt(removed, position);
    }
  }

  @Test
  void x25519WithoutAnXdhProviderIsAlgorithmUnavailableNamingXdh() throws Exception {
    without(
        "SunEC",
        () -> {
          AlgorithmUnavailableException e =
              assertThrows(
                  AlgorithmUnavailableException.class,
                  () -> DecryptionKey.fromFile(Vectors.bytes("test-only-x25519.key")));
          assertEquals("XDH", e.algorithm());
          assertEquals("algorithm-unavailable", e.code());
        });
  }

  @Test
  void p256WithoutAnEcProviderIsAlgorithmUnavailable() throws Exception {
    without(
        "SunEC",
        () -> {
          AlgorithmUnavailableException e =
              assertThrows(
                  AlgorithmUnavailableException.class,
                  () -> DecryptionKey.fromFile(Vectors.bytes("test-only-p256-kem.key")));
          assertEquals("EC", e.algorithm());
        });
  }

  @Test
  void aesGcmWithoutAProviderIsAlgorithmUnavailable() throws Exception {
    without(
        "SunJCE",
        () -> {
          AlgorithmUnavailableException e =
              assertThrows(
                  AlgorithmUnavailableException.class,
                  () -> new SegmentCipher(new byte[32], new byte[7], "payload/x"));
          assertEquals("AES/GCM/NoPadding", e.algorithm());
        });
  }

  @Test
  void kekUnwrapWithoutHmacOrAesIsAlgorithmUnavailable() throws Exception {
    DecryptionKey kek = DecryptionKey.fromFile(Vectors.bytes("test-only-aes256.key"));
    without(
        "SunJCE",
        () -> {
          AlgorithmUnavailableException e =
              assertThrows(
                  AlgorithmUnavailableException.class,
                  () ->
                      DataKeys.unwrap(
                          DataKeysTest.recipients("v1-kek.aoe"),
                          kek,
                          null,
                          DataKeys.info("aoe-pack.test-vectors", "1.0.0")));
          assertEquals("AES/GCM/NoPadding", e.algorithm());
        });
  }
}
