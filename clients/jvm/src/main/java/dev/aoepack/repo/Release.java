package dev.aoepack.repo;

import java.util.Collections;
import java.util.List;

/**
 * One release of a model tag, as the verified manifest (or tag document) lists it (§15.4).
 * Immutable; only the members a device reads.
 */
public final class Release {
  private final Version version;
  private final int versionCode;
  private final String url;
  private final long size;
  private final String sha256;
  private final List<String> runtimes;
  private final String channel;
  private final int basisPoints;
  private final String salt;
  private final Version minAppVersion;
  private final Version maxAppVersion;
  private final List<String> requiredRuntimes;
  private final boolean critical;
  private final String yanked;
  private final List<String> signers;

  Release(
      Version version,
      int versionCode,
      String url,
      long size,
      String sha256,
      List<String> runtimes,
      String channel,
      int basisPoints,
      String salt,
      Version minAppVersion,
      Version maxAppVersion,
      List<String> requiredRuntimes,
      boolean critical,
      String yanked,
      List<String> signers) {
    this.version = version;
    this.versionCode = versionCode;
    this.url = url;
    this.size = size;
    this.sha256 = sha256;
    this.runtimes = Collections.unmodifiableList(runtimes);
    this.channel = channel;
    this.basisPoints = basisPoints;
    this.salt = salt;
    this.minAppVersion = minAppVersion;
    this.maxAppVersion = maxAppVersion;
    this.requiredRuntimes = Collections.unmodifiableList(requiredRuntimes);
    this.critical = critical;
    this.yanked = yanked;
    this.signers = Collections.unmodifiableList(signers);
  }

  public Version version() {
    return version;
  }

  public int versionCode() {
    return versionCode;
  }

  /** {@code bundles/<sha256>.aoe}, relative to the repository (§15.1). */
  public String url() {
    return url;
  }

  /** The bundle's length in bytes: download at most this many. */
  public long size() {
    return size;
  }

  /** The lowercase hex SHA-256 the downloaded bundle must have (§15.6 step 13). */
  public String sha256() {
    return sha256;
  }

  public List<String> runtimes() {
    return runtimes;
  }

  public String channel() {
    return channel;
  }

  /** The rollout's share of devices, 0 to 10 000. */
  public int basisPoints() {
    return basisPoints;
  }

  /** The rollout's salt, 32 lowercase hex characters. */
  public String salt() {
    return salt;
  }

  /** The lowest app version that may run it, or null. */
  public Version minAppVersion() {
    return minAppVersion;
  }

  /** The highest app version that may run it, or null. */
  public Version maxAppVersion() {
    return maxAppVersion;
  }

  public List<String> requiredRuntimes() {
    return requiredRuntimes;
  }

  public boolean critical() {
    return critical;
  }

  /** The yank reason, or null when the release is not yanked. */
  public String yanked() {
    return yanked;
  }

  /** Key ids whose signatures on the bundle verified at publish time (empty: the root's keys). */
  public List<String> signers() {
    return signers;
  }

  /** {@code basisPoints / 100} as Python's {@code format(x, "g")} writes it: 12.5, 25, 0.01. */
  String rolloutPercent() {
    int whole = basisPoints / 100;
    int cents = basisPoints % 100;
    if (cents == 0) {
      return Integer.toString(whole);
    }
    return cents % 10 == 0 ? whole + "." + cents / 10 : whole + "." + (cents < 10 ? "0" : "") + cents;
  }

  @Override
  public String toString() {
    return "Release[" + version + "]";
  }
}
