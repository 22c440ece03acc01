package dev.aoepack.internal.crypto;

import dev.aoepack.AlgorithmUnavailableException;
import dev.aoepack.internal.Codec;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.spec.InvalidKeySpecException;
import java.security.spec.PKCS8EncodedKeySpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.Arrays;
import javax.crypto.KeyAgreement;

/**
 * X25519 through JCA ({@code "X25519"} or {@code "XDH"}): keys handed over in
 * their PKCS#8 and SPKI encodings, which every provider takes. Internal.
 */
final class X25519 {
  static final byte[] SPKI_PREFIX = Codec.unhex("302a300506032b656e032100");
  private static final byte[] PKCS8_PREFIX = Codec.unhex("302e020100300506032b656e04220420");
  private static final byte[] BASE_POINT = basePoint();

  private X25519() {}

  private static byte[] basePoint() {
    byte[] u = new byte[32];
    u[0] = 9;
    return u;
  }

  /** The public key of a 32-byte scalar: X25519(k, 9). */
  static byte[] publicKey(byte[] scalar) throws AlgorithmUnavailableException {
    byte[] out = agree(scalar, BASE_POINT);
    if (out == null) {
      throw new IllegalStateException("X25519 with the base point never fails");
    }
    return out;
  }

  /**
   * X25519(scalar, u): the 32-byte shared secret, or null if the provider refuses
   * the peer (a small-order point, an all-zero result).
   */
  static byte[] agree(byte[] scalar, byte[] u) throws AlgorithmUnavailableException {
    KeyFactory factory = Jca.x25519Factory();
    KeyAgreement agreement = Jca.x25519Agreement();
    PrivateKey priv;
    PublicKey pub;
    try {
      priv = factory.generatePrivate(new PKCS8EncodedKeySpec(concat(PKCS8_PREFIX, scalar)));
    } catch (InvalidKeySpecException e) {
      throw Jca.unavailable(Jca.XDH, e); // a 32-byte scalar is always a key: the provider lacks X25519
    }
    try {
      pub = factory.generatePublic(new X509EncodedKeySpec(concat(SPKI_PREFIX, u)));
    } catch (InvalidKeySpecException e) {
      return null; // a provider that refuses this peer point: the blob does not open
    }
    byte[] secret;
    try {
      agreement.init(priv);
      agreement.doPhase(pub, true);
      secret = agreement.generateSecret();
    } catch (IllegalStateException | GeneralSecurityException e) {
      return null; // the JDK refuses small-order points here
    }
    if (secret.length != 32 || Arrays.equals(secret, new byte[32])) {
      return null; // RFC 7748 §6.1 / RFC 9180 §7.1.4: an all-zero output is refused
    }
    return secret;
  }

  static byte[] concat(byte[] a, byte[] b) {
    byte[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }
}
