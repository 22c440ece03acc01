package dev.aoepack.update;

import dev.aoepack.AoeException;
import dev.aoepack.bundle.BundleVerifier;
import dev.aoepack.bundle.VerifiedBundle;
import dev.aoepack.keys.DecryptionKey;
import dev.aoepack.keys.TrustedKey;
import dev.aoepack.keys.XWingKem;
import java.io.File;
import java.util.Collection;

/** The library's {@link BundleVerifier} behind {@link BundleInstaller} (not API). */
final class LibraryBundleInstaller implements BundleInstaller {
  @Override
  public String[] unpack(
      File bundle, String tag, String version, File into, Collection<TrustedKey> keys,
      DecryptionKey key, XWingKem xwing) throws AoeException {
    // Threshold 1 of the release's bundle keys (§15.6 step 14): the bytes are already pinned by
    // the threshold-signed manifest, which vouches for those keys.
    // The release's identity is checked before anything is decrypted (§15.6, after step 7).
    BundleVerifier verifier =
        BundleVerifier.builder().trust(keys).threshold(1).expectModel(tag, version).build();
    VerifiedBundle verified = verifier.unpack(bundle, into, key, xwing);
    return new String[] {verified.tag(), verified.version()};
  }
}
