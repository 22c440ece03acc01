package dev.aoepack.internal.crypto;

import dev.aoepack.AoeException;
import dev.aoepack.internal.Codec;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/** Key-encryption keys: the key id (§7.6) and the unwrap (§7.5). Internal. */
final class Kek {
  private static final byte[] ID_LABEL = "aoe-pack/v1 kek-id".getBytes(StandardCharsets.US_ASCII);
  private static final int NONCE = 12;

  private Kek() {}

  /** {@code hex(SHA-256("aoe-pack/v1 kek-id" || 0x00 || kek))}. */
  static String keyId(byte[] kek) {
    MessageDigest sha = sha256();
    sha.update(ID_LABEL);
    sha.update((byte) 0);
    sha.update(kek);
    return Codec.hex(sha.digest());
  }

  /** The data key in {@code nonce (12) || AES-256-GCM(kek, nonce, dataKey, aad = info)}. */
  static byte[] unwrap(byte[] blob, byte[] kek, byte[] info) throws AoeException {
    if (blob.length < NONCE + 16) {
      throw failed(null);
    }
    Cipher c = Jca.cipher(Jca.AES_GCM);
    try {
      c.init(
          Cipher.DECRYPT_MODE,
          new SecretKeySpec(kek, "AES"),
          new GCMParameterSpec(128, blob, 0, NONCE));
      c.updateAAD(info);
      return c.doFinal(blob, NONCE, blob.length - NONCE);
    } catch (AEADBadTagException e) {
      throw failed(e);
    } catch (GeneralSecurityException e) {
      throw Jca.unavailable(Jca.AES_GCM, e);
    }
  }

  private static AoeException failed(Throwable cause) {
    return new AoeException(
        "decryption", "the data key could not be opened with this encryption key", cause);
  }

  static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is in every Java and Android platform", e);
    }
  }
}
