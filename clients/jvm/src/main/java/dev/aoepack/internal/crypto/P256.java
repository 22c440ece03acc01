package dev.aoepack.internal.crypto;

import dev.aoepack.AlgorithmUnavailableException;
import dev.aoepack.internal.Codec;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.InvalidKeyException;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.Signature;
import java.security.spec.ECFieldFp;
import java.security.spec.ECParameterSpec;
import java.security.spec.ECPoint;
import java.security.spec.ECPrivateKeySpec;
import java.security.spec.ECPublicKeySpec;
import java.security.spec.EllipticCurve;
import java.security.spec.InvalidKeySpecException;
import java.util.Arrays;
import javax.crypto.KeyAgreement;

/**
 * P-256 through JCA ({@code "EC"}, {@code "ECDH"}, {@code "SHA256withECDSA"}),
 * with the curve's parameters spelled out (no {@code AlgorithmParameters}
 * look-up, which older Android lacks). Only public values are computed here
 * with BigInteger (point checks, a square root); the scalar stays in JCA.
 * Internal.
 */
final class P256 {
  static final byte[] SPKI_PREFIX =
      Codec.unhex("3059301306072a8648ce3d020106082a8648ce3d030107034200");
  static final BigInteger P =
      new BigInteger("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff", 16);
  static final BigInteger N =
      new BigInteger("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551", 16);
  private static final BigInteger A = P.subtract(BigInteger.valueOf(3));
  private static final BigInteger B =
      new BigInteger("5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b", 16);
  private static final BigInteger GX =
      new BigInteger("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296", 16);
  private static final BigInteger GY =
      new BigInteger("4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5", 16);
  static final ECParameterSpec PARAMS =
      new ECParameterSpec(new EllipticCurve(new ECFieldFp(P), A, B), new ECPoint(GX, GY), N, 1);

  private P256() {}

  /** The 65-byte uncompressed public point of scalar {@code d} (1 <= d < n). */
  static byte[] publicKey(BigInteger d) throws AlgorithmUnavailableException {
    PrivateKey priv = privateKey(d);
    byte[] x = agree(priv, new ECPoint(GX, GY));
    if (x == null) {
      throw new IllegalStateException("ECDH with the generator never fails");
    }
    BigInteger bx = new BigInteger(1, x);
    BigInteger rhs = rhs(bx);
    BigInteger y = rhs.modPow(P.add(BigInteger.ONE).shiftRight(2), P); // p = 3 mod 4
    // d·G has x; its y is y or p - y. A signature by d verifies under one of them only.
    byte[] message = "aoe-pack: which y".getBytes(StandardCharsets.US_ASCII);
    byte[] signature;
    try {
      Signature signer = Signature.getInstance("SHA256withECDSA");
      signer.initSign(priv);
      signer.update(message);
      signature = signer.sign();
      Signature verifier = Signature.getInstance("SHA256withECDSA");
      verifier.initVerify(publicKey(new ECPoint(bx, y)));
      verifier.update(message);
      if (!verifier.verify(signature)) {
        y = P.subtract(y);
      }
    } catch (GeneralSecurityException e) {
      throw Jca.unavailable("SHA256withECDSA", e);
    }
    return encode(bx, y);
  }

  /** The point of a 65-byte uncompressed encoding, or null if it is not one on the curve. */
  static ECPoint decode(byte[] point) {
    if (point.length != 65 || point[0] != 4) {
      return null;
    }
    BigInteger x = new BigInteger(1, Arrays.copyOfRange(point, 1, 33));
    BigInteger y = new BigInteger(1, Arrays.copyOfRange(point, 33, 65));
    if (x.compareTo(P) >= 0 || y.compareTo(P) >= 0 || !y.multiply(y).mod(P).equals(rhs(x))) {
      return null;
    }
    return new ECPoint(x, y);
  }

  static byte[] encode(BigInteger x, BigInteger y) {
    byte[] out = new byte[65];
    out[0] = 4;
    put(x, out, 1);
    put(y, out, 33);
    return out;
  }

  private static void put(BigInteger v, byte[] out, int at) {
    byte[] b = v.toByteArray();
    int n = Math.min(b.length, 32);
    System.arraycopy(b, b.length - n, out, at + 32 - n, n);
  }

  private static BigInteger rhs(BigInteger x) {
    return x.multiply(x).add(A).multiply(x).add(B).mod(P);
  }

  static PrivateKey privateKey(BigInteger d) throws AlgorithmUnavailableException {
    try {
      return ecFactory().generatePrivate(new ECPrivateKeySpec(d, PARAMS));
    } catch (InvalidKeySpecException e) {
      throw Jca.unavailable("EC", e);
    }
  }

  private static PublicKey publicKey(ECPoint w) throws AlgorithmUnavailableException {
    try {
      return ecFactory().generatePublic(new ECPublicKeySpec(w, PARAMS));
    } catch (InvalidKeySpecException e) {
      throw Jca.unavailable("EC", e);
    }
  }

  private static KeyFactory ecFactory() throws AlgorithmUnavailableException {
    return Jca.keyFactory("EC");
  }

  /** ECDH: the 32-byte x-coordinate of d·W, or null if the provider refuses the point. */
  static byte[] agree(PrivateKey priv, ECPoint w) throws AlgorithmUnavailableException {
    KeyAgreement agreement = Jca.agreement(Jca.ECDH);
    PublicKey pub = publicKey(w);
    byte[] secret;
    try {
      agreement.init(priv);
      agreement.doPhase(pub, true);
      secret = agreement.generateSecret();
    } catch (InvalidKeyException | IllegalStateException e) {
      return null;
    }
    if (secret.length > 32) {
      return null;
    }
    byte[] out = new byte[32];
    System.arraycopy(secret, 0, out, 32 - secret.length, secret.length);
    return out;
  }
}
