package dev.aoepack.keys;

import static dev.aoepack.testing.Vectors.expectedString;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.aoepack.AlgorithmUnavailableException;
import dev.aoepack.AoeException;
import dev.aoepack.internal.Codec;
import dev.aoepack.testing.Vectors;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Locale;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/** Key files (§10) and key ids (§6.3, §7.6) against the TEST-ONLY vector keys. */
class DecryptionKeyTest {
  private static final char[] PASSWORD = "test-only-password".toCharArray();

  private static String code(byte[] text) {
    return assertThrows(AoeException.class, () -> DecryptionKey.fromFile(text)).code();
  }

  private static String code(String text) {
    return code(text.getBytes(StandardCharsets.US_ASCII));
  }

  private static String text(String file) {
    return new String(Vectors.bytes(file), StandardCharsets.US_ASCII);
  }

  @ParameterizedTest
  @CsvSource({
    "test-only-x25519.key, x25519, X25519, DHKEM(X25519 HKDF-SHA256)",
    "test-only-p256-kem.key, p256-kem, P256, DHKEM(P-256 HKDF-SHA256)",
    "test-only-mlkem768-x25519.key, mlkem768-x25519, XWING, MLKEM768-X25519",
    "test-only-aes256.key, aes256, KEK, ''",
  })
  void everyTestOnlyDecryptionKeyHasItsExpectedKeyId(
      String file, String kind, String type, String kem) throws Exception {
    DecryptionKey k = DecryptionKey.fromFile(Vectors.bytes(file));
    assertEquals(expectedString("keys", kind, "keyid"), k.keyId());
    assertEquals(DecryptionKey.Type.valueOf(type), k.type());
    if (kem.isEmpty()) {
      assertNull(k.kem());
    } else {
      assertEquals(kem.replace(" ", ", "), k.kem());
    }
    assertEquals("DecryptionKey[" + type + " " + k.keyId() + "]", k.toString());
  }

  @Test
  void theKekIdHashesItsLabelledInput() throws Exception {
    byte[] input = Codec.unhex(expectedString("keys", "aes256", "keyidInputHex"));
    assertEquals(
        expectedString("keys", "aes256", "keyid"),
        Codec.hex(MessageDigest.getInstance("SHA-256").digest(input)));
  }

  @ParameterizedTest
  @ValueSource(strings = {"ed25519", "p256", "x25519", "p256-kem", "mlkem768-x25519"})
  void everyTestOnlyPublicKeyFileHasItsExpectedKeyId(String kind) throws Exception {
    byte[] der = Vectors.unhex(
        (String) Vectors.list(Vectors.expected("keys", kind, "spkiDerHex")).get(0));
    assertEquals(
        expectedString("keys", kind, "keyid"),
        Codec.hex(MessageDigest.getInstance("SHA-256").digest(der)));
    if (kind.equals("ed25519") || kind.equals("p256")) {
      assertEquals(
          expectedString("keys", kind, "keyid"),
          TrustedKey.fromPem(Vectors.bytes("test-only-" + kind + ".pub")).keyId());
    }
  }

  @Test
  void aP256SigningKeyLoadsAsAP256DecryptionKey() throws Exception {
    DecryptionKey k = DecryptionKey.fromFile(Vectors.bytes("test-only-p256.key"));
    assertEquals(DecryptionKey.Type.P256, k.type());
    assertEquals(expectedString("keys", "p256", "keyid"), k.keyId());
  }

  @ParameterizedTest
  @CsvSource({"x25519, X25519", "p256-kem, P256", "mlkem768-x25519, XWING"})
  void encryptedCopiesLoadWithTheirPassword(String kind, String type) throws Exception {
    DecryptionKey k =
        DecryptionKey.fromFile(Vectors.resource("test-only-" + kind + "-encrypted.key"), PASSWORD);
    assertEquals(expectedString("keys", kind, "keyid"), k.keyId());
    assertEquals(DecryptionKey.Type.valueOf(type), k.type());
  }

  @ParameterizedTest
  @ValueSource(strings = {"x25519", "mlkem768-x25519"})
  void attackEncryptedKeyWithWrongPasswordIsWrongPassword(String kind) {
    AoeException e =
        assertThrows(
            AoeException.class,
            () ->
                DecryptionKey.fromFile(
                    Vectors.resource("test-only-" + kind + "-encrypted.key"),
                    "test-only-passwore".toCharArray()));
    assertEquals("wrong-password", e.code());
  }

  @Test
  void encryptedKeyWithoutPasswordIsKeyPassword() {
    assertEquals("key-password", code(Vectors.resource("test-only-x25519-encrypted.key")));
    AoeException e =
        assertThrows(
            AoeException.class,
            () ->
                DecryptionKey.fromFile(
                    Vectors.resource("test-only-x25519-encrypted.key"), new char[0]));
    assertEquals("key-password", e.code());
  }

  @ParameterizedTest
  @ValueSource(strings = {"test-only-x25519.key", "test-only-mlkem768-x25519.key", "test-only-aes256.key"})
  void aPasswordForAKeyWithoutOneIsKeyNotEncrypted(String file) {
    AoeException e =
        assertThrows(AoeException.class, () -> DecryptionKey.fromFile(Vectors.bytes(file), PASSWORD));
    assertEquals("key-not-encrypted", e.code());
  }

  @Test
  void attackPbes2WithAnotherPrfIsKeyFormat() {
    // hmacWithSHA1 (…2.7) in place of hmacWithSHA256 (…2.9): not the scheme of §10.1. aoe-pack
    // hands other schemes to `cryptography`, which tries them (here: wrong-password); this
    // library reads only the scheme §10.1 names, so it says key-format.
    String pem = new String(Vectors.resource("test-only-x25519-encrypted.key"), StandardCharsets.US_ASCII);
    String b64 = pem.replaceAll("-----[A-Z ]+-----", "").replaceAll("\\s", "");
    byte[] der = Codec.base64(b64);
    String hex = Codec.hex(der);
    String sha256 = "06082a864886f70d0209";
    assertEquals(1, hex.split(sha256, -1).length - 1);
    byte[] edited = Codec.unhex(hex.replace(sha256, "06082a864886f70d0207"));
    String out = "-----BEGIN ENCRYPTED PRIVATE KEY-----\n" + Codec.base64(edited)
        + "\n-----END ENCRYPTED PRIVATE KEY-----\n";
    AoeException e =
        assertThrows(
            AoeException.class,
            () -> DecryptionKey.fromFile(out.getBytes(StandardCharsets.US_ASCII), PASSWORD));
    assertEquals("key-format", e.code());
  }

  @Test
  void attackSigningKeyAsDecryptionKeyIsKeyType() {
    assertEquals("key-type", code(Vectors.bytes("test-only-ed25519.key")));
  }

  @Test
  void attackWrongPemLabelIsKeyFormat() {
    assertEquals("key-format", code(text("test-only-x25519.key").replace("PRIVATE KEY", "EC PRIVATE KEY")));
    assertEquals("key-format", code(Vectors.bytes("test-only-x25519.pub")));
  }

  @Test
  void attackTextAroundTheBlockIsKeyFormat() {
    assertEquals("key-format", code(text("test-only-x25519.key") + "trailing text\n"));
    assertEquals("key-format", code("# owner: someone\n" + text("test-only-x25519.key")));
  }

  @Test
  void crlfBlankLinesAndNoFinalNewlineAreAccepted() throws Exception {
    String crlf = "\r\n\r\n" + text("test-only-x25519.key").trim().replace("\n", "\r\n");
    assertEquals(
        expectedString("keys", "x25519", "keyid"),
        DecryptionKey.fromFile(crlf.getBytes(StandardCharsets.US_ASCII)).keyId());
  }

  @Test
  void attackTwoPrivateKeysIsKeyFormat() {
    assertEquals("key-format", code(text("test-only-x25519.key") + text("test-only-p256-kem.key")));
  }

  @Test
  void attackPublicKeyBlockOfAnotherKeyIsKeyFormat() {
    assertEquals("key-format", code(text("test-only-x25519.key") + text("test-only-p256-kem.pub")));
    String xwing = text("test-only-mlkem768-x25519.key");
    String priv = xwing.substring(0, xwing.indexOf("-----BEGIN PUBLIC KEY"));
    assertEquals("key-format", code(priv + text("test-only-x25519.pub")));
  }

  @Test
  void theMatchingPublicKeyBlockIsAccepted() throws Exception {
    byte[] both = (text("test-only-p256-kem.key") + text("test-only-p256-kem.pub")).getBytes(StandardCharsets.US_ASCII);
    assertEquals(expectedString("keys", "p256-kem", "keyid"), DecryptionKey.fromFile(both).keyId());
  }

  @Test
  void anXWingKeyWithoutItsPublicKeyBlockIsAlgorithmUnavailable() {
    String xwing = text("test-only-mlkem768-x25519.key");
    byte[] priv =
        xwing.substring(0, xwing.indexOf("-----BEGIN PUBLIC KEY")).getBytes(StandardCharsets.US_ASCII);
    AlgorithmUnavailableException e =
        assertThrows(AlgorithmUnavailableException.class, () -> DecryptionKey.fromFile(priv));
    assertEquals("ML-KEM-768 (X-Wing)", e.algorithm());
  }

  @Test
  void attackXWingSeedOfTheWrongLengthIsKeyFormat() {
    // 3033 … 0420 + 31-byte seed: a valid DER, not a valid X-Wing key.
    String hex = "3033020100300d060b2b0601040183e62d81c87a041f" + "00".repeat(31);
    String pem = "-----BEGIN PRIVATE KEY-----\n" + Codec.base64(Codec.unhex(hex))
        + "\n-----END PRIVATE KEY-----\n" + text("test-only-mlkem768-x25519.pub");
    assertEquals("key-format", code(pem));
  }

  @Test
  void attackPkcs8OfAnotherAlgorithmIsKeyFormat() {
    // Ed448 (1.3.101.113) with a 57-byte key.
    String hex = "3047020100300506032b6571043b0439" + "00".repeat(57);
    String pem = "-----BEGIN PRIVATE KEY-----\n" + Codec.base64(Codec.unhex(hex))
        + "\n-----END PRIVATE KEY-----\n";
    assertEquals("key-format", code(pem));
  }

  @Test
  void attackX25519KeyOfTheWrongLengthIsKeyFormat() {
    String hex = "302d020100300506032b656e04210420" + "11".repeat(31);
    String bad = "302d020100300506032b656e0421041f" + "11".repeat(31);
    for (String h : new String[] {hex, bad}) {
      String pem = "-----BEGIN PRIVATE KEY-----\n" + Codec.base64(Codec.unhex(h))
          + "\n-----END PRIVATE KEY-----\n";
      assertEquals("key-format", code(pem));
    }
  }

  @Test
  void kekFileTakesEitherCaseAndSurroundingWhitespace() throws Exception {
    String hex = text("test-only-aes256.key").trim();
    String id = expectedString("keys", "aes256", "keyid");
    assertEquals(id, DecryptionKey.fromFile((" \t" + hex.toUpperCase(Locale.ROOT) + "\r\n").getBytes(StandardCharsets.US_ASCII)).keyId());
    assertEquals(id, DecryptionKey.fromFile(hex.getBytes(StandardCharsets.US_ASCII)).keyId());
  }

  @Test
  void attackKekNot64HexIsKeyFormat() {
    String hex = text("test-only-aes256.key").trim();
    assertEquals("key-format", code(hex.substring(1)));
    assertEquals("key-format", code(hex + "0"));
    assertEquals("key-format", code(hex.substring(0, 63) + "g"));
    assertEquals("key-format", code(hex.substring(0, 30) + " " + hex.substring(31)));
    assertEquals("key-format", code(Codec.unhex(hex))); // raw bytes are refused
    assertEquals("key-format", code(""));
  }

  @Test
  void attackKeyFileOverOneMebibyteIsKeyFormat() {
    byte[] big = new byte[(1 << 20) + 1];
    java.util.Arrays.fill(big, (byte) ' ');
    assertEquals("key-format", code(big));
  }
}
