package dev.aoepack.update;

import dev.aoepack.AoeException;
import dev.aoepack.keys.DecryptionKey;
import dev.aoepack.keys.TrustedKey;
import dev.aoepack.keys.XWingKem;
import java.io.File;
import java.util.Collection;

/** The library's bundle reader behind {@link BundleInstaller} (not API). */
final class LibraryBundleInstaller implements BundleInstaller {
  @Override
  public String[] unpack(
      File bundle, File into, Collection<TrustedKey> keys, DecryptionKey key, XWingKem xwing)
      throws AoeException {
    throw new AoeException(
        "algorithm-unavailable", "this build of the library has no bundle reader yet");
  }
}
