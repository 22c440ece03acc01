package dev.aoepack.update;

import dev.aoepack.AoeException;
import dev.aoepack.keys.DecryptionKey;
import dev.aoepack.keys.TrustedKey;
import dev.aoepack.keys.XWingKem;
import java.io.File;
import java.util.Collection;

/**
 * Steps 14 and 16 of the device update procedure (§15.6): verify a downloaded bundle, decrypt it
 * and unpack it (not API: {@link ModelUpdater} uses the library's bundle reader through it, and
 * tests may stand in for it).
 */
interface BundleInstaller {
  /**
   * Verify {@code bundle} with a threshold of 1 of {@code keys}, refuse it ({@code
   * bundle-mismatch}) before decrypting if its signed manifest is not the model {@code tag} at
   * {@code version}, decrypt it with {@code key} (null for a plaintext bundle) and unpack it into
   * {@code into}, a folder that does not exist yet and appears only once every file passed.
   *
   * @return the authenticated manifest's {@code {model.tag, model.version}}, which the caller
   *     matches with the release (step 15)
   */
  String[] unpack(
      File bundle, String tag, String version, File into, Collection<TrustedKey> keys,
      DecryptionKey key, XWingKem xwing) throws AoeException;
}
