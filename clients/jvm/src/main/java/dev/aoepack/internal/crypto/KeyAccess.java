package dev.aoepack.internal.crypto;

import dev.aoepack.keys.DecryptionKey;

/**
 * How this package reaches the secret inside a {@link DecryptionKey} without a
 * public accessor on it: {@code DecryptionKey} installs the one instance when
 * its class initialises. Internal: not part of the library's API.
 */
public abstract class KeyAccess {
  private static volatile KeyAccess instance;

  /** Installs the accessor; only the first call counts. */
  public static synchronized void install(KeyAccess access) {
    if (instance == null) {
      instance = access;
    }
  }

  static KeyMaterial of(DecryptionKey key) {
    return instance.material(key); // installed: a DecryptionKey exists, so its class ran its static block
  }

  /** The material {@code key} holds. */
  protected abstract KeyMaterial material(DecryptionKey key);
}
