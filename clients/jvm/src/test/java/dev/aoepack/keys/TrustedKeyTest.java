package dev.aoepack.keys;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.aoepack.AoeException;
import dev.aoepack.internal.Codec;
import dev.aoepack.json.Json;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class TrustedKeyTest {
  static final File VECTORS = new File(System.getProperty("aoe.root"), "tests/vectors");

  static byte[] read(File f) throws IOException {
    try (InputStream in = new java.io.FileInputStream(f)) {
      return in.readAllBytes();
    }
  }

  static Map<?, ?> expected() throws Exception {
    return (Map<?, ?>) Json.parse(read(new File(VECTORS, "expected.json")), 64, 1_000_000);
  }

  @ParameterizedTest
  @ValueSource(strings = {"ed25519", "p256"})
  void keyIdsAreThoseOfTheVectors(String kind) throws Exception {
    Map<?, ?> key = (Map<?, ?>) ((Map<?, ?>) expected().get("keys")).get(kind);
    TrustedKey trusted = TrustedKey.fromPem(read(new File(VECTORS, (String) key.get("file"))));
    assertEquals(key.get("keyid"), trusted.keyId());
    assertEquals(((List<?>) key.get("spkiDerHex")).get(0), Codec.hex(trusted.spki()));
  }

  @Test
  void bothSignaturesOfThePlainVectorVerifyOverItsPae() throws Exception {
    try (ZipFile zip = new ZipFile(new File(VECTORS, "v1-plain.aoe"))) {
      byte[] manifest = entry(zip, "aoe/manifest.json");
      Map<?, ?> envelope = (Map<?, ?>) Json.parse(entry(zip, "aoe/signatures.json"), 8, 1000);
      byte[] pae = Codec.pae((String) envelope.get("payloadType"), manifest);
      int valid = 0;
      for (String kind : new String[] {"ed25519", "p256"}) {
        TrustedKey key = TrustedKey.fromPem(read(new File(VECTORS, "test-only-" + kind + ".pub")));
        for (Object item : (List<?>) envelope.get("signatures")) {
          Map<?, ?> sig = (Map<?, ?>) item;
          if (sig.get("keyid").equals(key.keyId())) {
            byte[] signature = Codec.base64((String) sig.get("sig"));
            assertTrue(key.verify(pae, signature), kind);
            signature[signature.length / 2] ^= 1;
            assertFalse(key.verify(pae, signature), kind + " flipped");
            valid++;
          }
        }
      }
      assertEquals(2, valid);
    }
  }

  @Test
  void aGarbledSignatureCountsZeroInsteadOfThrowing() throws Exception {
    TrustedKey key = TrustedKey.fromPem(read(new File(VECTORS, "test-only-p256.pub")));
    assertFalse(key.verify(new byte[] {1}, new byte[] {0x30, 0x02, 0x05}));
  }

  @ParameterizedTest
  @ValueSource(strings = {"test-only-x25519.pub", "test-only-mlkem768-x25519.pub"})
  void anEncryptionKeyIsNotATrustedSigner(String file) throws Exception {
    AoeException e =
        assertThrows(AoeException.class, () -> TrustedKey.fromPem(read(new File(VECTORS, file))));
    assertEquals("key-type", e.code());
  }

  @Test
  void aPublicKeyFileWithTextOutsideItsBlockIsRefused() throws Exception {
    byte[] pem = read(new File(VECTORS, "test-only-ed25519.pub"));
    byte[] commented = ("# owner: someone\n" + new String(pem, StandardCharsets.US_ASCII))
        .getBytes(StandardCharsets.US_ASCII);
    assertEquals("key-format", assertThrows(AoeException.class, () -> TrustedKey.fromPem(commented)).code());
    byte[] twice = (new String(pem, StandardCharsets.US_ASCII) + new String(pem, StandardCharsets.US_ASCII))
        .getBytes(StandardCharsets.US_ASCII);
    assertEquals("key-format", assertThrows(AoeException.class, () -> TrustedKey.fromPem(twice)).code());
    byte[] privateKey = read(new File(VECTORS, "test-only-ed25519.key"));
    assertEquals("key-format", assertThrows(AoeException.class, () -> TrustedKey.fromPem(privateKey)).code());
  }

  static byte[] entry(ZipFile zip, String name) throws IOException {
    ZipEntry e = zip.getEntry(name);
    try (InputStream in = zip.getInputStream(e)) {
      return in.readAllBytes();
    }
  }
}
