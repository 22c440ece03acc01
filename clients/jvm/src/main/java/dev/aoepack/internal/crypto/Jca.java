package dev.aoepack.internal.crypto;

import dev.aoepack.AlgorithmUnavailableException;
import java.security.KeyFactory;
import java.security.NoSuchAlgorithmException;
import javax.crypto.Cipher;
import javax.crypto.KeyAgreement;
import javax.crypto.Mac;
import javax.crypto.NoSuchPaddingException;

/**
 * JCA look-ups that name the missing algorithm ({@link
 * AlgorithmUnavailableException}) instead of failing later or silently.
 * Internal: not part of the library's API.
 */
final class Jca {
  static final String AES_GCM = "AES/GCM/NoPadding";
  static final String AES_CBC = "AES/CBC/NoPadding";
  static final String HMAC_SHA256 = "HmacSHA256";
  static final String XDH = "XDH";
  static final String ECDH = "ECDH";

  private Jca() {}

  static Cipher cipher(String name) throws AlgorithmUnavailableException {
    try {
      return Cipher.getInstance(name);
    } catch (NoSuchAlgorithmException | NoSuchPaddingException e) {
      throw unavailable(name, e);
    }
  }

  static Mac mac(String name) throws AlgorithmUnavailableException {
    try {
      return Mac.getInstance(name);
    } catch (NoSuchAlgorithmException e) {
      throw unavailable(name, e);
    }
  }

  /** X25519 key agreement: {@code "X25519"}, else {@code "XDH"} (the name this library reports). */
  static KeyAgreement x25519Agreement() throws AlgorithmUnavailableException {
    try {
      return KeyAgreement.getInstance("X25519");
    } catch (NoSuchAlgorithmException e) {
      try {
        return KeyAgreement.getInstance(XDH);
      } catch (NoSuchAlgorithmException e2) {
        throw unavailable(XDH, e2);
      }
    }
  }

  /** The key factory for X25519 keys: {@code "X25519"}, else {@code "XDH"}. */
  static KeyFactory x25519Factory() throws AlgorithmUnavailableException {
    try {
      return KeyFactory.getInstance("X25519");
    } catch (NoSuchAlgorithmException e) {
      try {
        return KeyFactory.getInstance(XDH);
      } catch (NoSuchAlgorithmException e2) {
        throw unavailable(XDH, e2);
      }
    }
  }

  static KeyAgreement agreement(String name) throws AlgorithmUnavailableException {
    try {
      return KeyAgreement.getInstance(name);
    } catch (NoSuchAlgorithmException e) {
      throw unavailable(name, e);
    }
  }

  static KeyFactory keyFactory(String name) throws AlgorithmUnavailableException {
    try {
      return KeyFactory.getInstance(name);
    } catch (NoSuchAlgorithmException e) {
      throw unavailable(name, e);
    }
  }

  static AlgorithmUnavailableException unavailable(String name, Throwable cause) {
    return new AlgorithmUnavailableException(name, hint(name), cause);
  }

  static String hint(String name) {
    if (name.equals(XDH)) {
      return "X25519 needs Android API 33+ or a provider such as Conscrypt or BouncyCastle"
          + " (docs/android.md)";
    }
    if (name.startsWith("ML-KEM")) {
      return "pass an XWingKem backed by a provider with ML-KEM-768 (BouncyCastle, or"
          + " OpenJDK's \"X-Wing\" KEM) (docs/android.md)";
    }
    return "it is in every Android release; check the installed security providers";
  }
}
