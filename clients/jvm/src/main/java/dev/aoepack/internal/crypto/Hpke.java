package dev.aoepack.internal.crypto;

import dev.aoepack.AoeException;
import dev.aoepack.keys.XWingKem;
import java.io.ByteArrayOutputStream;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.spec.ECPoint;
import java.util.Arrays;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * RFC 9180 base mode, receiver side, single shot (sequence number 0, empty
 * AAD): KDF HKDF-SHA256 (0x0001), AEAD AES-256-GCM (0x0002), and KEM
 * DHKEM(X25519) 0x0020, DHKEM(P-256) 0x0010 or X-Wing 0x647A, whose
 * decapsulation is the plugged-in {@link XWingKem} (§7.4). Internal.
 */
final class Hpke {
  private static final byte[] V1 = ascii("HPKE-v1");
  private static final int KDF_HKDF_SHA256 = 0x0001;
  private static final int AEAD_AES_256_GCM = 0x0002;

  private Hpke() {}

  /** The plaintext of {@code blob = enc || ct} sealed to {@code key} under {@code info}. */
  static byte[] open(KeyMaterial key, XWingKem xwing, byte[] blob, byte[] info)
      throws AoeException {
    int kemId;
    int encLength;
    switch (key.type()) {
      case X25519:
        kemId = 0x0020;
        encLength = 32;
        break;
      case P256:
        kemId = 0x0010;
        encLength = 65;
        break;
      case XWING:
        kemId = 0x647A;
        encLength = 1120;
        break;
      default:
        throw new IllegalArgumentException("not an HPKE key: " + key.type());
    }
    if (blob.length < encLength + 16) {
      throw failed(key, null);
    }
    byte[] enc = Arrays.copyOf(blob, encLength);
    byte[] sharedSecret;
    switch (key.type()) {
      case X25519:
        {
          byte[] dh = X25519.agree(key.secret, enc);
          if (dh == null) {
            throw failed(key, null);
          }
          sharedSecret = extractAndExpand(kemId, dh, X25519.concat(enc, key.publicKey));
          break;
        }
      case P256:
        {
          ECPoint pkE = P256.decode(enc);
          byte[] dh =
              pkE == null
                  ? null
                  : P256.agree(P256.privateKey(new BigInteger(1, key.secret)), pkE);
          if (dh == null) {
            throw failed(key, null);
          }
          sharedSecret = extractAndExpand(kemId, dh, X25519.concat(enc, key.publicKey));
          break;
        }
      default:
        try {
          sharedSecret = xwing.decapsulate(key.secret.clone(), enc);
        } catch (RuntimeException e) {
          // The app's plug-in (a provider's KEM) failing on hostile input is a decryption
          // failure, not a crash of the check.
          throw new AoeException("decryption", "the X-Wing KEM failed: " + e, e);
        }
        if (sharedSecret == null || sharedSecret.length != 32) {
          throw new AoeException(
              "decryption", "the X-Wing KEM returned no 32-byte shared secret");
        }
    }
    byte[] suite = suite("HPKE", kemId, KDF_HKDF_SHA256, AEAD_AES_256_GCM);
    byte[] pskIdHash = labeledExtract(suite, new byte[0], "psk_id_hash", new byte[0]);
    byte[] infoHash = labeledExtract(suite, new byte[0], "info_hash", info);
    byte[] context = new byte[1 + pskIdHash.length + infoHash.length];
    context[0] = 0; // mode_base
    System.arraycopy(pskIdHash, 0, context, 1, pskIdHash.length);
    System.arraycopy(infoHash, 0, context, 1 + pskIdHash.length, infoHash.length);
    byte[] secret = labeledExtract(suite, sharedSecret, "secret", new byte[0]);
    byte[] aeadKey = labeledExpand(suite, secret, "key", context, 32);
    byte[] baseNonce = labeledExpand(suite, secret, "base_nonce", context, 12);
    Cipher c = Jca.cipher(Jca.AES_GCM);
    try {
      c.init(
          Cipher.DECRYPT_MODE, new SecretKeySpec(aeadKey, "AES"), new GCMParameterSpec(128, baseNonce));
      return c.doFinal(blob, encLength, blob.length - encLength);
    } catch (AEADBadTagException e) {
      throw failed(key, e);
    } catch (GeneralSecurityException e) {
      throw Jca.unavailable(Jca.AES_GCM, e);
    }
  }

  /** DHKEM's ExtractAndExpand (RFC 9180 §4.1): the 32-byte shared secret. */
  private static byte[] extractAndExpand(int kemId, byte[] dh, byte[] kemContext)
      throws AoeException {
    byte[] suite = suite("KEM", kemId);
    byte[] prk = labeledExtract(suite, new byte[0], "eae_prk", dh);
    return labeledExpand(suite, prk, "shared_secret", kemContext, 32);
  }

  private static byte[] labeledExtract(byte[] suite, byte[] salt, String label, byte[] ikm)
      throws AoeException {
    return Hkdf.extract(salt, cat(V1, suite, ascii(label), ikm));
  }

  private static byte[] labeledExpand(
      byte[] suite, byte[] prk, String label, byte[] info, int length) throws AoeException {
    byte[] l = {(byte) (length >> 8), (byte) length};
    return Hkdf.expand(prk, cat(l, V1, suite, ascii(label), info), length);
  }

  private static byte[] suite(String name, int... ids) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    byte[] n = ascii(name);
    out.write(n, 0, n.length);
    for (int id : ids) {
      out.write(id >> 8);
      out.write(id & 0xff);
    }
    return out.toByteArray();
  }

  private static byte[] cat(byte[]... parts) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (byte[] p : parts) {
      out.write(p, 0, p.length);
    }
    return out.toByteArray();
  }

  private static byte[] ascii(String s) {
    return s.getBytes(StandardCharsets.US_ASCII);
  }

  private static AoeException failed(KeyMaterial key, Throwable cause) {
    return new AoeException(
        "decryption",
        "the data key sealed to "
            + key.keyId().substring(0, 16)
            + "… could not be opened with this key",
        cause);
  }
}
