package dev.aoepack.internal.crypto;

import dev.aoepack.AlgorithmUnavailableException;
import dev.aoepack.internal.crypto.Der.DerException;
import dev.aoepack.internal.crypto.Der.Value;
import java.security.GeneralSecurityException;
import java.util.Arrays;
import java.util.List;
import javax.crypto.Cipher;
import javax.crypto.Mac;
import javax.crypto.spec.IvParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * The encrypted PKCS#8 of §10.1/§10.2: EncryptedPrivateKeyInfo with PBES2
 * (RFC 8018), PBKDF2-HMAC-SHA256 and AES-256-CBC, as {@code aoe-pack} and
 * {@code cryptography} write it. PBKDF2 runs over JCA {@code HmacSHA256} (not
 * {@code SecretKeyFactory "PBKDF2WithHmacSHA256"}, which Android has only from
 * API 26, and which takes the password as chars rather than bytes). Internal.
 */
final class Pbes2 {
  static final byte[] OID_PBES2 = Der.oid("1.2.840.113549.1.5.13");
  static final byte[] OID_PBKDF2 = Der.oid("1.2.840.113549.1.5.12");
  static final byte[] OID_HMAC_SHA256 = Der.oid("1.2.840.113549.2.9");
  static final byte[] OID_AES256_CBC = Der.oid("2.16.840.1.101.3.4.1.42");
  static final long MAX_ITERATIONS = 10_000_000L;

  /** The password does not decrypt the key (bad padding, or no DER inside). */
  static final class WrongPassword extends Exception {
    private static final long serialVersionUID = 1L;
  }

  private Pbes2() {}

  /**
   * The PrivateKeyInfo DER inside {@code der}. {@link DerException} if it is
   * not this scheme or its parameters are out of range (salt 8-64 bytes, 1 to
   * 10 000 000 iterations, keyLength absent or 32, PRF parameters NULL or
   * absent, 16-byte IV, whole blocks).
   */
  static byte[] decrypt(byte[] der, byte[] password)
      throws DerException, WrongPassword, AlgorithmUnavailableException {
    List<Value> top = Der.children(Der.decode(der, Der.SEQUENCE), Der.SEQUENCE, Der.OCTET_STRING);
    List<Value> scheme = Der.children(top.get(0), Der.OBJECT_IDENTIFIER, Der.SEQUENCE);
    List<Value> params = Der.children(scheme.get(1), Der.SEQUENCE, Der.SEQUENCE);
    List<Value> kdf = Der.children(params.get(0), Der.OBJECT_IDENTIFIER, Der.SEQUENCE);
    List<Value> cipher = Der.children(params.get(1), Der.OBJECT_IDENTIFIER, Der.OCTET_STRING);
    if (!scheme.get(0).derEquals(OID_PBES2)
        || !kdf.get(0).derEquals(OID_PBKDF2)
        || !cipher.get(0).derEquals(OID_AES256_CBC)) {
      throw new DerException(
          "the key is not encrypted with PBES2, PBKDF2-HMAC-SHA256 and AES-256-CBC");
    }
    // PBKDF2-params: salt, iterationCount, keyLength OPTIONAL, prf DEFAULT hmacWithSHA1.
    List<Value> fields = Der.items(kdf.get(1));
    if (fields.size() < 2
        || fields.get(0).tag != Der.OCTET_STRING
        || fields.get(1).tag != Der.INTEGER) {
      throw new DerException("malformed PBKDF2 parameters");
    }
    int at = 2;
    if (at < fields.size() && fields.get(at).tag == Der.INTEGER) {
      if (Der.toLong(fields.get(at)) != 32) {
        throw new DerException("PBKDF2 keyLength must be 32 for AES-256");
      }
      at++;
    }
    if (at != fields.size() - 1 || !isHmacSha256(fields.get(at))) {
      throw new DerException("the PBKDF2 PRF must be hmacWithSHA256");
    }
    byte[] salt = fields.get(0).content();
    long iterations = Der.toLong(fields.get(1));
    byte[] iv = cipher.get(1).content();
    byte[] sealed = top.get(1).content();
    if (salt.length < 8 || salt.length > 64) {
      throw new DerException("PBKDF2 salt is " + salt.length + " bytes; expected 8 to 64");
    }
    if (iterations < 1 || iterations > MAX_ITERATIONS) {
      throw new DerException(
          "PBKDF2 iteration count " + iterations + " is outside 1.." + MAX_ITERATIONS);
    }
    if (iv.length != 16) {
      throw new DerException("AES-256-CBC IV is " + iv.length + " bytes; expected 16");
    }
    if (sealed.length == 0 || sealed.length % 16 != 0) {
      throw new DerException(
          "encrypted data is " + sealed.length + " bytes, not whole AES blocks");
    }
    byte[] key = pbkdf2(password, salt, (int) iterations);
    byte[] padded;
    try {
      Cipher c = Jca.cipher(Jca.AES_CBC);
      c.init(Cipher.DECRYPT_MODE, new SecretKeySpec(key, "AES"), new IvParameterSpec(iv));
      padded = c.doFinal(sealed);
    } catch (GeneralSecurityException e) {
      throw Jca.unavailable(Jca.AES_CBC, e);
    } finally {
      Arrays.fill(key, (byte) 0);
    }
    int pad = padded[padded.length - 1] & 0xff;
    if (pad < 1 || pad > 16) {
      throw new WrongPassword();
    }
    for (int i = padded.length - pad; i < padded.length; i++) {
      if ((padded[i] & 0xff) != pad) {
        throw new WrongPassword();
      }
    }
    byte[] plain = Arrays.copyOf(padded, padded.length - pad);
    Arrays.fill(padded, (byte) 0);
    try {
      Der.decode(plain, Der.SEQUENCE);
    } catch (DerException e) {
      throw new WrongPassword(); // padding that passed by chance over garbage
    }
    return plain;
  }

  private static boolean isHmacSha256(Value prf) throws DerException {
    if (prf.tag != Der.SEQUENCE) {
      return false;
    }
    List<Value> p = Der.items(prf);
    if (p.isEmpty() || !p.get(0).derEquals(OID_HMAC_SHA256)) {
      return false;
    }
    return p.size() == 1 || (p.size() == 2 && p.get(1).tag == Der.NULL && p.get(1).length() == 0);
  }

  /** PBKDF2-HMAC-SHA256 (RFC 8018 §5.2) for a 32-byte key: one block. */
  static byte[] pbkdf2(byte[] password, byte[] salt, int iterations)
      throws AlgorithmUnavailableException {
    Mac mac = Hkdf.hmac(password);
    mac.update(salt);
    mac.update(new byte[] {0, 0, 0, 1});
    byte[] u = mac.doFinal();
    byte[] t = u.clone();
    try {
      for (int i = 1; i < iterations; i++) {
        mac.update(u);
        mac.doFinal(u, 0);
        for (int j = 0; j < t.length; j++) {
          t[j] ^= u[j];
        }
      }
    } catch (javax.crypto.ShortBufferException e) {
      throw new IllegalStateException(e);
    }
    return t;
  }
}
