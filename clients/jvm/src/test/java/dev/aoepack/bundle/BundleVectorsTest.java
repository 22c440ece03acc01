package dev.aoepack.bundle;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.aoepack.AoeException;
import dev.aoepack.internal.Codec;
import dev.aoepack.keys.XWingKem;
import dev.aoepack.testing.Keccak;
import dev.aoepack.testing.TestOnlyXWing;
import dev.aoepack.testing.Vectors;
import java.io.File;
import java.io.FileInputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Every bundle of tests/vectors verifies, decrypts and unpacks as expected.json says. */
class BundleVectorsTest {
  private static final XWingKem XWING = new TestOnlyXWing();

  @TempDir File tmp;

  private static Map<String, Object> expected(String bundle) {
    return Vectors.map(Vectors.expected("bundles", bundle));
  }

  private static void assertMatchesExpected(String bundle, VerifiedBundle v) {
    Map<String, Object> want = expected(bundle);
    assertEquals(want.get("manifestSha256"), v.manifestSha256());
    assertEquals(want.get("signers"), v.signerKeyIds());
    assertEquals("aoe-pack.test-vectors", v.tag());
    assertEquals("1.0.0", v.version());
    assertEquals("tflite", v.runtime());
    assertEquals("model.tflite", v.name());
    assertEquals(1700000000L, v.sourceDateEpoch());
    List<Object> files = Vectors.list(want.get("files"));
    assertEquals(files.size(), v.files().size());
    for (int i = 0; i < files.size(); i++) {
      Map<String, Object> f = Vectors.map(files.get(i));
      assertEquals(f.get("entry"), v.files().get(i).entryName());
      assertEquals(f.get("size"), v.files().get(i).size());
      assertEquals(f.get("sha256"), v.files().get(i).sha256());
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"v1-plain.aoe", "v1-x25519.aoe", "v1-kek.aoe", "v1-mlkem.aoe", "v1-multi.aoe"})
  void everyVectorVerifiesWithThresholdTwo(String bundle) throws AoeException {
    VerifiedBundle v = Kit.verifier().verify(Vectors.file(bundle));
    assertMatchesExpected(bundle, v);
    assertFalse(v.decrypted());
    assertEquals(bundle.equals("v1-plain.aoe"), v.encryption() == null);
  }

  @ParameterizedTest
  @ValueSource(strings = {"v1-plain.aoe", "v1-x25519.aoe", "v1-kek.aoe", "v1-mlkem.aoe", "v1-multi.aoe"})
  void everyVectorVerifiesFromAStreamAlike(String bundle) throws Exception {
    File file = Vectors.file(bundle);
    try (InputStream in = new FileInputStream(file)) {
      VerifiedBundle v = Kit.verifier().verify(in, file.length());
      assertMatchesExpected(bundle, v);
    }
  }

  @Test
  void onlyThePlainVectorCarriesAnUpdateUrl() throws AoeException {
    assertEquals(
        "https://models.example.com/test-vectors/",
        Kit.verifier().verify(Vectors.file("v1-plain.aoe")).updateUrl());
    assertNull(Kit.verifier().verify(Vectors.file("v1-x25519.aoe")).updateUrl());
  }

  @Test
  void multiListsItsThreeRecipientsSorted() throws AoeException {
    BundleEncryption e = Kit.verifier().verify(Vectors.file("v1-multi.aoe")).encryption();
    assertEquals("AES-256-GCM", e.aead());
    assertEquals(1 << 20, e.segmentSize());
    assertEquals(3, e.recipients().size());
    assertEquals("kek", e.recipients().get(2).type());
    assertNull(e.recipients().get(2).kem());
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "v1-x25519.aoe:test-only-x25519.key",
        "v1-kek.aoe:test-only-aes256.key",
        "v1-mlkem.aoe:test-only-mlkem768-x25519.key",
        "v1-multi.aoe:test-only-x25519.key",
        "v1-multi.aoe:test-only-p256-kem.key",
        "v1-multi.aoe:test-only-aes256.key"
      })
  void everyEncryptedVectorDecryptsWithEachOfItsKeys(String pair) throws AoeException {
    String[] p = pair.split(":");
    VerifiedBundle v = Kit.verifier().verify(Vectors.file(p[0]), Kit.key(p[1]), XWING);
    assertTrue(v.decrypted());
    assertMatchesExpected(p[0], v);
  }

  @Test
  void plainVectorUnpacksToItsThreeFiles() throws Exception {
    File out = new File(tmp, "model");
    VerifiedBundle v = Kit.verifier().unpack(Vectors.file("v1-plain.aoe"), out, null, null);
    assertThreeFiles(out, v);
    byte[] seed = Vectors.unhex(Vectors.expectedString("payload", "seedHex"));
    byte[] model =
        Keccak.shake256(1100000, seed, "model.tflite".getBytes(StandardCharsets.US_ASCII));
    assertArrayEquals(model, Vectors.read(new File(out, "model.tflite")));
    assertEquals(List.of("model"), Arrays.asList(tmp.list())); // no staging folder left
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "v1-x25519.aoe:test-only-x25519.key",
        "v1-kek.aoe:test-only-aes256.key",
        "v1-mlkem.aoe:test-only-mlkem768-x25519.key",
        "v1-multi.aoe:test-only-p256-kem.key"
      })
  void encryptedVectorsUnpackWithTheirKeys(String pair) throws Exception {
    String[] p = pair.split(":");
    File out = new File(tmp, "model");
    VerifiedBundle v = Kit.verifier().unpack(Vectors.file(p[0]), out, Kit.key(p[1]), XWING);
    assertTrue(v.decrypted());
    assertThreeFiles(out, v);
  }

  @Test
  void aStreamUnpacksAsTheFileDoes() throws Exception {
    File file = Vectors.file("v1-x25519.aoe");
    File out = new File(tmp, "model");
    try (InputStream in = new FileInputStream(file)) {
      VerifiedBundle v =
          Kit.verifier().unpack(in, file.length(), out, Kit.key("test-only-x25519.key"), null);
      assertThreeFiles(out, v);
    }
  }

  @Test
  void theSpoolCopyOfAStreamIsDeleted() throws Exception {
    File spool = new File(tmp, "spool");
    spool.mkdir();
    File file = Vectors.file("v1-plain.aoe");
    BundleVerifier verifier =
        BundleVerifier.builder()
            .trust(Kit.trusted(Kit.SIGNERS[0]), Kit.trusted(Kit.SIGNERS[1]))
            .threshold(2)
            .spoolDirectory(spool)
            .build();
    try (InputStream in = new FileInputStream(file)) {
      verifier.verify(in, file.length());
    }
    assertEquals(0, spool.list().length);
  }

  private static void assertThreeFiles(File out, VerifiedBundle v) throws Exception {
    assertArrayEquals(new byte[0], Vectors.read(new File(out, "assets/empty.bin")));
    assertArrayEquals("cat\ndog\n".getBytes(StandardCharsets.US_ASCII), Vectors.read(new File(out, "labels.txt")));
    byte[] model = Vectors.read(new File(out, "model.tflite"));
    assertEquals(1100000, model.length);
    String digest = Codec.hex(MessageDigest.getInstance("SHA-256").digest(model));
    assertEquals(v.files().get(2).sha256(), digest);
    assertEquals(Vectors.expectedString("payload", "files", "model.tflite", "sha256"), digest);
    List<String> top = Arrays.asList(out.list());
    java.util.Collections.sort(top);
    assertEquals(List.of("assets", "labels.txt", "model.tflite"), top);
  }
}
