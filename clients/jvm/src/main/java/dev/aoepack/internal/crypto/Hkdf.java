package dev.aoepack.internal.crypto;

import dev.aoepack.AlgorithmUnavailableException;
import java.security.InvalidKeyException;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/** HKDF-SHA256 (RFC 5869) over JCA {@code HmacSHA256}. Internal. */
final class Hkdf {
  private Hkdf() {}

  static Mac hmac(byte[] key) throws AlgorithmUnavailableException {
    Mac mac = Jca.mac(Jca.HMAC_SHA256);
    try {
      // An empty key is HMAC's all-zero key (RFC 2104 pads it); SecretKeySpec refuses empty.
      mac.init(new SecretKeySpec(key.length == 0 ? new byte[32] : key, Jca.HMAC_SHA256));
    } catch (InvalidKeyException e) {
      throw Jca.unavailable(Jca.HMAC_SHA256, e);
    }
    return mac;
  }

  static byte[] extract(byte[] salt, byte[] ikm) throws AlgorithmUnavailableException {
    return hmac(salt).doFinal(ikm);
  }

  static byte[] expand(byte[] prk, byte[] info, int length) throws AlgorithmUnavailableException {
    if (length > 255 * 32) {
      throw new IllegalArgumentException("HKDF-SHA256 output is at most 8160 bytes");
    }
    Mac mac = hmac(prk);
    byte[] out = new byte[length];
    byte[] t = new byte[0];
    int at = 0;
    for (int i = 1; at < length; i++) {
      mac.update(t);
      mac.update(info);
      mac.update((byte) i);
      t = mac.doFinal();
      int n = Math.min(t.length, length - at);
      System.arraycopy(t, 0, out, at, n);
      at += n;
    }
    return out;
  }
}
