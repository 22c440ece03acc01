package dev.aoepack.keys;

import dev.aoepack.AoeException;
import dev.aoepack.internal.crypto.KeyAccess;
import dev.aoepack.internal.crypto.KeyFiles;
import dev.aoepack.internal.crypto.KeyMaterial;

/**
 * A key that opens encrypted bundles: what {@code aoe-pack unpack
 * --decryption-key} takes (docs/format.md §10).
 *
 * <p>Either an HPKE recipient's private key in a PKCS#8 PEM file (X25519, P-256,
 * or an X-Wing seed, §10.1, §10.2), possibly password-protected ({@code
 * ENCRYPTED PRIVATE KEY}: PBES2, PBKDF2-HMAC-SHA256, AES-256-CBC), or a
 * key-encryption key (KEK) file of 64 hex characters (§10.3). Loading checks
 * the file as strictly as {@code aoe-pack} does and gives the same error codes:
 * {@code key-format}, {@code key-type} (a signing key), {@code key-password}
 * (encrypted and no password), {@code wrong-password}, {@code
 * key-not-encrypted} (a password for a key that has none).
 *
 * <p>An X-Wing key's id comes from the {@code PUBLIC KEY} block that {@code
 * aoe-pack keygen} writes after the seed (§10.2); a file without that block
 * needs ML-KEM-768 to derive it, and loading it throws {@link
 * dev.aoepack.AlgorithmUnavailableException}. Loading an X25519 key needs the
 * JCA {@code XDH} key agreement (Android API 33+, or a provider).
 *
 * <p>Immutable. The secret stays inside; {@link #toString()} shows only the
 * type and key id.
 */
public final class DecryptionKey {
  /** The kinds of decryption key. */
  public enum Type {
    /** DHKEM(X25519, HKDF-SHA256). */
    X25519,
    /** DHKEM(P-256, HKDF-SHA256). */
    P256,
    /** X-Wing, {@code MLKEM768-X25519}. */
    XWING,
    /** A 32-byte key-encryption key (§7.5). */
    KEK
  }

  static {
    KeyAccess.install(
        new KeyAccess() {
          @Override
          protected KeyMaterial material(DecryptionKey key) {
            return key.material;
          }
        });
  }

  private final KeyMaterial material;

  private DecryptionKey(KeyMaterial material) {
    this.material = material;
  }

  /**
   * A decryption key from the bytes of a key file: a PEM private key (not
   * encrypted) or a KEK file. {@code key-password} if the key is encrypted.
   */
  public static DecryptionKey fromFile(byte[] text) throws AoeException {
    return new DecryptionKey(KeyFiles.decryptionKey(text, null));
  }

  /**
   * A decryption key from the bytes of a password-protected key file ({@code
   * ENCRYPTED PRIVATE KEY}). The password is UTF-8 encoded, as {@code aoe-pack}
   * reads it. {@code wrong-password} if it does not decrypt the key; {@code
   * key-not-encrypted} if the file has no password (a plain key or a KEK file).
   */
  public static DecryptionKey fromFile(byte[] text, char[] password) throws AoeException {
    if (password == null) {
      return fromFile(text);
    }
    return new DecryptionKey(KeyFiles.decryptionKey(text, password));
  }

  /** The kind of key. */
  public Type type() {
    return material.type();
  }

  /**
   * The id a bundle's recipient entry names: the SHA-256 of the public key's
   * SubjectPublicKeyInfo for an HPKE key (§6.3), the §7.6 hash for a KEK.
   */
  public String keyId() {
    return material.keyId();
  }

  /**
   * The manifest's {@code kem} for this key (§7.4): {@code "DHKEM(X25519,
   * HKDF-SHA256)"}, {@code "DHKEM(P-256, HKDF-SHA256)"} or {@code
   * "MLKEM768-X25519"}; null for a KEK.
   */
  public String kem() {
    return material.kem();
  }

  @Override
  public String toString() {
    return "DecryptionKey[" + type() + " " + keyId() + "]";
  }
}
