package dev.aoepack.repo;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * The rollout bucket of §15.7: {@code uint64_be(SHA-256("aoe-rollout/v1" 0x00 salt 0x00 tag
 * 0x00 deviceId)[0..7]) mod 10 000}, salt as its 32 ASCII hex characters, tag and device id in
 * UTF-8. A device is in a release's rollout when its bucket is below the release's basis points.
 */
public final class Rollout {
  /** Buckets there are: basis points of 10 000 reach every device. */
  public static final int BUCKETS = 10000;

  private Rollout() {}

  /** The device's bucket for one release, 0 to 9 999. */
  public static int bucket(String salt, String tag, String deviceId) {
    MessageDigest sha;
    try {
      sha = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is in every Java and Android platform", e);
    }
    sha.update("aoe-rollout/v1".getBytes(StandardCharsets.US_ASCII));
    sha.update((byte) 0);
    sha.update(salt.getBytes(StandardCharsets.UTF_8));
    sha.update((byte) 0);
    sha.update(tag.getBytes(StandardCharsets.UTF_8));
    sha.update((byte) 0);
    sha.update(deviceId.getBytes(StandardCharsets.UTF_8));
    byte[] d = sha.digest();
    long first = 0;
    for (int i = 0; i < 8; i++) {
      first = first << 8 | (d[i] & 0xff);
    }
    // Unsigned: Long.remainderUnsigned is Android API 26, so split off the sign bit.
    long high = (first >>> 1) % BUCKETS; // first = 2 * (first >>> 1) + (first & 1)
    return (int) ((2 * high + (first & 1)) % BUCKETS);
  }
}
