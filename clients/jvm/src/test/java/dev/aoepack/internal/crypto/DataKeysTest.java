package dev.aoepack.internal.crypto;

import static dev.aoepack.testing.Vectors.expectedString;
import static dev.aoepack.testing.Vectors.list;
import static dev.aoepack.testing.Vectors.map;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.aoepack.AlgorithmUnavailableException;
import dev.aoepack.AoeException;
import dev.aoepack.internal.Codec;
import dev.aoepack.keys.DecryptionKey;
import dev.aoepack.keys.XWingKem;
import dev.aoepack.testing.TestOnlyXWing;
import dev.aoepack.testing.Vectors;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

/** §7.4-§7.7 against the encrypted vectors, and the named attacks on unwrapping. */
class DataKeysTest {
  private static final XWingKem XWING = new TestOnlyXWing();
  private static final byte[] INFO = DataKeys.info("aoe-pack.test-vectors", "1.0.0");

  static DecryptionKey key(String file) throws AoeException {
    return DecryptionKey.fromFile(Vectors.bytes(file));
  }

  static List<DataKeys.Recipient> recipients(String bundle) {
    Map<String, Object> enc = map(Vectors.manifest(bundle).get("encryption"));
    List<DataKeys.Recipient> out = new ArrayList<>();
    for (Object o : list(enc.get("recipients"))) {
      Map<String, Object> r = map(o);
      out.add(
          new DataKeys.Recipient(
              (String) r.get("type"),
              (String) r.get("keyid"),
              (String) r.get("kem"),
              (String) r.get("wrapped")));
    }
    return out;
  }

  static byte[] unwrap(String bundle, String keyFile) throws AoeException {
    return DataKeys.unwrap(recipients(bundle), key(keyFile), XWING, INFO);
  }

  @Test
  void infoIsTheVectorsInfo() {
    assertEquals(expectedString("bundles", "v1-x25519.aoe", "infoHex"), Codec.hex(INFO));
  }

  @ParameterizedTest
  @CsvSource({
    "v1-x25519.aoe, test-only-x25519.key",
    "v1-kek.aoe, test-only-aes256.key",
    "v1-multi.aoe, test-only-x25519.key",
    "v1-multi.aoe, test-only-p256-kem.key",
    "v1-multi.aoe, test-only-aes256.key",
    "v1-mlkem.aoe, test-only-mlkem768-x25519.key",
  })
  void unwrapsTheVectorsDataKeyAndOpensLabels(String bundle, String keyFile) throws Exception {
    byte[] dataKey = unwrap(bundle, keyFile);
    assertEquals(expectedString("bundles", bundle, "dataKeyHex"), Codec.hex(dataKey));
    assertEquals("cat\ndog\n", labels(bundle, dataKey));
  }

  static String labels(String bundle, byte[] dataKey) throws AoeException {
    String entry = "payload/labels.txt";
    byte[] prefix = Codec.unhex(expectedString("bundles", bundle, "noncePrefixes", entry));
    byte[] stored = Vectors.entry(bundle, entry);
    byte[] plain = new SegmentCipher(dataKey, prefix, entry).open(0, true, stored, 0, stored.length);
    return new String(plain, StandardCharsets.UTF_8);
  }

  @Test
  void aP256SigningKeyFileDecryptsAsItsHpkeKey() throws Exception {
    // PEM does not say whether a P-256 key signs or decrypts (§10.1): as a decryption key, HPKE.
    DecryptionKey k = key("test-only-p256.key");
    assertEquals(DecryptionKey.Type.P256, k.type());
    assertEquals(expectedString("keys", "p256", "keyid"), k.keyId());
  }

  @Test
  void attackWrongKeyIsNoMatchingRecipient() {
    AoeException e =
        assertThrows(AoeException.class, () -> unwrap("v1-x25519.aoe", "test-only-p256-kem.key"));
    assertEquals("no-matching-recipient", e.code());
  }

  @Test
  void attackKemMismatchIsDecryption() throws Exception {
    List<DataKeys.Recipient> rs = recipients("v1-x25519.aoe");
    DataKeys.Recipient r = rs.get(0);
    rs.set(0, new DataKeys.Recipient("hpke", r.keyid(), "DHKEM(P-256, HKDF-SHA256)", r.wrapped()));
    assertEquals("decryption", code(rs, "test-only-x25519.key"));
  }

  @Test
  void attackHpkeKeyUnderAKekRecipientIsDecryption() throws Exception {
    List<DataKeys.Recipient> rs = recipients("v1-x25519.aoe");
    DataKeys.Recipient r = rs.get(0);
    rs.set(0, new DataKeys.Recipient("kek", r.keyid(), null, r.wrapped()));
    assertEquals("decryption", code(rs, "test-only-x25519.key"));
  }

  @Test
  void attackKekIdRelabelledHpkeIsDecryption() throws Exception {
    List<DataKeys.Recipient> rs = recipients("v1-kek.aoe");
    DataKeys.Recipient r = rs.get(0);
    rs.set(0, new DataKeys.Recipient("hpke", r.keyid(), "DHKEM(X25519, HKDF-SHA256)", r.wrapped()));
    assertEquals("decryption", code(rs, "test-only-aes256.key"));
  }

  @ParameterizedTest
  @CsvSource({
    "v1-x25519.aoe, test-only-x25519.key",
    "v1-multi.aoe, test-only-p256-kem.key",
    "v1-kek.aoe, test-only-aes256.key",
    "v1-mlkem.aoe, test-only-mlkem768-x25519.key",
  })
  void attackTruncatedWrappedIsDecryption(String bundle, String keyFile) throws Exception {
    for (int cut : new int[] {1, 16, 17, 40}) {
      List<DataKeys.Recipient> rs = edit(bundle, keyFile, blob -> java.util.Arrays.copyOf(blob, blob.length - cut));
      assertEquals("decryption", code(rs, keyFile), "cut " + cut);
    }
    List<DataKeys.Recipient> empty = edit(bundle, keyFile, blob -> new byte[0]);
    assertEquals("decryption", code(empty, keyFile));
  }

  @ParameterizedTest
  @CsvSource({
    "v1-x25519.aoe, test-only-x25519.key",
    "v1-multi.aoe, test-only-p256-kem.key",
    "v1-kek.aoe, test-only-aes256.key",
    "v1-mlkem.aoe, test-only-mlkem768-x25519.key",
  })
  void attackFlippedTagIsDecryption(String bundle, String keyFile) throws Exception {
    List<DataKeys.Recipient> rs = edit(bundle, keyFile, blob -> flip(blob, blob.length - 1));
    assertEquals("decryption", code(rs, keyFile));
  }

  @ParameterizedTest
  @CsvSource({
    "v1-x25519.aoe, test-only-x25519.key",
    "v1-multi.aoe, test-only-p256-kem.key",
    "v1-kek.aoe, test-only-aes256.key",
    "v1-mlkem.aoe, test-only-mlkem768-x25519.key",
  })
  void attackFlippedEncOrNonceIsDecryption(String bundle, String keyFile) throws Exception {
    List<DataKeys.Recipient> rs = edit(bundle, keyFile, blob -> flip(blob, 5));
    assertEquals("decryption", code(rs, keyFile));
  }

  @Test
  void attackP256EncOffTheCurveIsDecryption() throws Exception {
    List<DataKeys.Recipient> rs = edit("v1-multi.aoe", "test-only-p256-kem.key", blob -> flip(blob, 64));
    assertEquals("decryption", code(rs, "test-only-p256-kem.key"));
    List<DataKeys.Recipient> compressed =
        edit("v1-multi.aoe", "test-only-p256-kem.key", blob -> { blob[0] = 2; return blob; });
    assertEquals("decryption", code(compressed, "test-only-p256-kem.key"));
  }

  @Test
  void attackX25519EncOfSmallOrderIsDecryption() throws Exception {
    // u = 0 and u = 1 give an all-zero shared secret (RFC 7748), which RFC 9180 refuses.
    for (byte u : new byte[] {0, 1}) {
      List<DataKeys.Recipient> rs =
          edit("v1-x25519.aoe", "test-only-x25519.key", blob -> {
            java.util.Arrays.fill(blob, 0, 32, (byte) 0);
            blob[0] = u;
            return blob;
          });
      assertEquals("decryption", code(rs, "test-only-x25519.key"));
    }
  }

  @Test
  void attackWrappedNotBase64IsDecryption() throws Exception {
    List<DataKeys.Recipient> rs = recipients("v1-kek.aoe");
    DataKeys.Recipient r = rs.get(0);
    rs.set(0, new DataKeys.Recipient("kek", r.keyid(), null, r.wrapped().substring(1)));
    assertEquals("decryption", code(rs, "test-only-aes256.key"));
  }

  @Test
  void attackOtherModelIdentityIsDecryption() throws Exception {
    // info binds the wrapped key to tag and version: lifted into 1.0.1's manifest it does not open.
    byte[] other = DataKeys.info("aoe-pack.test-vectors", "1.0.1");
    for (String[] c :
        new String[][] {{"v1-x25519.aoe", "test-only-x25519.key"}, {"v1-kek.aoe", "test-only-aes256.key"}}) {
      AoeException e =
          assertThrows(
              AoeException.class,
              () -> DataKeys.unwrap(recipients(c[0]), key(c[1]), XWING, other));
      assertEquals("decryption", e.code());
    }
  }

  @Test
  void xwingKeyWithoutAnXWingKemIsAlgorithmUnavailable() throws Exception {
    AlgorithmUnavailableException e =
        assertThrows(
            AlgorithmUnavailableException.class,
            () ->
                DataKeys.unwrap(
                    recipients("v1-mlkem.aoe"), key("test-only-mlkem768-x25519.key"), null, INFO));
    assertEquals("algorithm-unavailable", e.code());
    assertEquals("ML-KEM-768 (X-Wing)", e.algorithm());
  }

  @Test
  void anXWingKemAnswerOfTheWrongLengthIsDecryption() throws Exception {
    AoeException e =
        assertThrows(
            AoeException.class,
            () ->
                DataKeys.unwrap(
                    recipients("v1-mlkem.aoe"),
                    key("test-only-mlkem768-x25519.key"),
                    (seed, enc) -> new byte[31],
                    INFO));
    assertEquals("decryption", e.code());
  }

  @Test
  void anXWingKemThatThrowsUncheckedIsDecryptionNotACrash() throws Exception {
    AoeException e =
        assertThrows(
            AoeException.class,
            () ->
                DataKeys.unwrap(
                    recipients("v1-mlkem.aoe"),
                    key("test-only-mlkem768-x25519.key"),
                    (seed, enc) -> {
                      throw new IllegalArgumentException("provider refused the ciphertext");
                    },
                    INFO));
    assertEquals("decryption", e.code());
  }

  interface Edit {
    byte[] apply(byte[] blob);
  }

  static List<DataKeys.Recipient> edit(String bundle, String keyFile, Edit edit) throws AoeException {
    String id = key(keyFile).keyId();
    List<DataKeys.Recipient> rs = recipients(bundle);
    for (int i = 0; i < rs.size(); i++) {
      DataKeys.Recipient r = rs.get(i);
      if (r.keyid().equals(id)) {
        byte[] blob = Codec.base64(r.wrapped());
        rs.set(i, new DataKeys.Recipient(r.type(), r.keyid(), r.kem(), Codec.base64(edit.apply(blob))));
      }
    }
    return rs;
  }

  static byte[] flip(byte[] b, int at) {
    b[at] ^= 1;
    return b;
  }

  static String code(List<DataKeys.Recipient> rs, String keyFile) throws AoeException {
    DecryptionKey k = key(keyFile);
    AoeException e = assertThrows(AoeException.class, () -> DataKeys.unwrap(rs, k, XWING, INFO));
    return e.code();
  }
}
