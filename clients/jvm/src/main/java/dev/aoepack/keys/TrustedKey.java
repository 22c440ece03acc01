package dev.aoepack.keys;

import dev.aoepack.AlgorithmUnavailableException;
import dev.aoepack.AoeException;
import dev.aoepack.internal.Codec;
import dev.aoepack.internal.Pem;
import java.security.GeneralSecurityException;
import java.security.InvalidKeyException;
import java.security.KeyFactory;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.Provider;
import java.security.PublicKey;
import java.security.Security;
import java.security.Signature;
import java.security.SignatureException;
import java.security.spec.X509EncodedKeySpec;
import java.util.Arrays;
import java.util.List;

/**
 * A public signing key a device trusts: Ed25519 or ECDSA P-256 (§6.2, §6.3).
 *
 * <p>Its key id is the lowercase hex SHA-256 of its DER SubjectPublicKeyInfo.
 * The algorithm is chosen by the key's type (there is no algorithm field).
 * Verification goes through JCA names ({@code Ed25519}, {@code
 * SHA256withECDSA}), so an app below Android API 33 plugs in a provider for
 * Ed25519; without one, {@link #verify} throws {@link
 * AlgorithmUnavailableException}, never returns a silent false.
 */
public final class TrustedKey {
  /** The signing algorithms of §6.2. */
  public enum Type {
    ED25519,
    P256
  }

  static final byte[] ED25519_PREFIX = Codec.unhex("302a300506032b6570032100");
  static final byte[] P256_PREFIX =
      Codec.unhex("3059301306072a8648ce3d020106082a8648ce3d030107034200");
  static final byte[] X25519_PREFIX = Codec.unhex("302a300506032b656e032100");
  static final byte[] XWING_PREFIX = Codec.unhex("308204d4300d060b2b0601040183e62d81c87a038204c100");

  private final Type type;
  private final byte[] spki;
  private final String keyId;
  private volatile PublicKey jca;

  private TrustedKey(Type type, byte[] spki) {
    this.type = type;
    this.spki = spki.clone();
    this.keyId = Codec.hex(sha256(spki));
  }

  /** A key from its DER SubjectPublicKeyInfo; {@code key-format} or {@code key-type} if not a signing key. */
  public static TrustedKey fromSpki(byte[] spki) throws AoeException {
    if (spki.length == 44 && startsWith(spki, ED25519_PREFIX)) {
      return new TrustedKey(Type.ED25519, spki);
    }
    if (spki.length == 91 && startsWith(spki, P256_PREFIX) && spki[26] == 0x04) {
      return new TrustedKey(Type.P256, spki);
    }
    if ((spki.length == 44 && startsWith(spki, X25519_PREFIX))
        || (spki.length == 1240 && startsWith(spki, XWING_PREFIX))) {
      throw new AoeException(
          "key-type", "an encryption key (X25519 or X-Wing) cannot be a trusted signer");
    }
    throw new AoeException(
        "key-format",
        "not an Ed25519 or P-256 (named curve, uncompressed point) SubjectPublicKeyInfo");
  }

  /** A key from a public key file: exactly one {@code PUBLIC KEY} PEM block (§10.1). */
  public static TrustedKey fromPem(byte[] text) throws AoeException {
    List<Pem.Block> blocks = Pem.blocks(text);
    if (blocks == null || blocks.size() != 1 || !blocks.get(0).label.equals("PUBLIC KEY")) {
      throw new AoeException(
          "key-format", "a public key file must hold exactly one PUBLIC KEY PEM block and nothing else");
    }
    return fromSpki(blocks.get(0).der);
  }

  public Type type() {
    return type;
  }

  /** The lowercase hex SHA-256 of the SPKI DER (§6.3). */
  public String keyId() {
    return keyId;
  }

  /** The DER SubjectPublicKeyInfo. */
  public byte[] spki() {
    return spki.clone();
  }

  /**
   * True if {@code signature} is a valid signature of {@code message} by this key:
   * Ed25519 over the message, or DER ECDSA over SHA-256 of the message.
   */
  public boolean verify(byte[] message, byte[] signature) throws AlgorithmUnavailableException {
    String name = type == Type.ED25519 ? "Ed25519" : "SHA256withECDSA";
    Signature verifier;
    try {
      verifier = Signature.getInstance(name);
    } catch (NoSuchAlgorithmException e) {
      throw new AlgorithmUnavailableException(name, hint(), e);
    }
    try {
      verifier.initVerify(publicKey());
      verifier.update(message);
      return verifier.verify(signature);
    } catch (SignatureException e) {
      return false; // a malformed signature counts zero, like an invalid one (§6.4)
    } catch (RuntimeException e) {
      return false; // so does one a provider chokes on (some throw unchecked on bad DER)
    } catch (InvalidKeyException e) {
      throw new AlgorithmUnavailableException(name, hint(), e);
    }
  }

  /**
   * The JCA key, from the first provider whose key factory takes an SPKI. Not simply
   * {@code KeyFactory.getInstance}: on some Android phones the first {@code Ed25519} key
   * factory is the Android Keystore's, which refuses an {@code X509EncodedKeySpec}; a
   * provider the app added (BouncyCastle, Conscrypt) further down the list takes it.
   */
  private PublicKey publicKey() throws AlgorithmUnavailableException {
    PublicKey key = jca;
    if (key != null) {
      return key;
    }
    String name = type == Type.ED25519 ? "Ed25519" : "EC";
    Provider[] providers = Security.getProviders("KeyFactory." + name);
    GeneralSecurityException last = null;
    if (providers != null) {
      for (Provider provider : providers) {
        try {
          key = KeyFactory.getInstance(name, provider).generatePublic(new X509EncodedKeySpec(spki));
          jca = key;
          return key;
        } catch (GeneralSecurityException e) {
          last = e;
        }
      }
    }
    throw new AlgorithmUnavailableException(name, hint(), last);
  }

  private String hint() {
    return type == Type.ED25519
        ? "Ed25519 needs Android API 33+ or a provider such as BouncyCastle or Conscrypt (docs/android.md)"
        : "ECDSA P-256 is in every Android release; check the installed providers";
  }

  static boolean startsWith(byte[] b, byte[] prefix) {
    return b.length >= prefix.length && Arrays.equals(Arrays.copyOf(b, prefix.length), prefix);
  }

  static byte[] sha256(byte[] b) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(b);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is in every Java and Android platform", e);
    }
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof TrustedKey && ((TrustedKey) o).keyId.equals(keyId);
  }

  @Override
  public int hashCode() {
    return keyId.hashCode();
  }

  @Override
  public String toString() {
    return "TrustedKey[" + type + " " + keyId + "]";
  }
}
