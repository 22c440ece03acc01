package dev.aoepack.internal.crypto;

import dev.aoepack.AoeException;

/** Loading decryption key files (§10). Internal: not part of the library's API. */
public final class KeyFiles {
  private KeyFiles() {}

  /** The key in a key file; {@code password} null when none was given. */
  public static KeyMaterial decryptionKey(byte[] text, char[] password) throws AoeException {
    throw new UnsupportedOperationException("not yet");
  }
}
