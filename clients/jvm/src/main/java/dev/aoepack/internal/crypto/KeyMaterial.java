package dev.aoepack.internal.crypto;

import dev.aoepack.keys.DecryptionKey;

/**
 * The bytes of a loaded decryption key: its secret (X25519 or P-256 scalar,
 * X-Wing seed, KEK), its raw public key (X25519 32 bytes, P-256 65-byte
 * uncompressed point, X-Wing 1216 bytes; null for a KEK), its key id and KEM
 * name. Internal: not part of the library's API.
 */
public final class KeyMaterial {
  private final DecryptionKey.Type type;
  final byte[] secret;
  final byte[] publicKey;
  private final String keyId;

  KeyMaterial(DecryptionKey.Type type, byte[] secret, byte[] publicKey, String keyId) {
    this.type = type;
    this.secret = secret.clone();
    this.publicKey = publicKey == null ? null : publicKey.clone();
    this.keyId = keyId;
  }

  public DecryptionKey.Type type() {
    return type;
  }

  public String keyId() {
    return keyId;
  }

  /** The manifest's {@code kem} name (§7.4), null for a KEK. */
  public String kem() {
    return kemName(type);
  }

  static String kemName(DecryptionKey.Type type) {
    switch (type) {
      case X25519:
        return "DHKEM(X25519, HKDF-SHA256)";
      case P256:
        return "DHKEM(P-256, HKDF-SHA256)";
      case XWING:
        return "MLKEM768-X25519";
      default:
        return null;
    }
  }
}
