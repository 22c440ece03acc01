package dev.aoepack.internal.crypto;

import dev.aoepack.AoeException;
import dev.aoepack.keys.XWingKem;

/** RFC 9180 base-mode single-shot open (§7.4). Internal. */
final class Hpke {
  private Hpke() {}

  static byte[] open(KeyMaterial key, XWingKem xwing, byte[] blob, byte[] info)
      throws AoeException {
    throw new UnsupportedOperationException("not yet");
  }
}
