package dev.aoepack.net;

/**
 * How long one download may take: an idle timeout, a deadline and a minimum average rate.
 *
 * <p>An idle timeout alone bounds a server that stops, not one that drips (a byte every 29 s
 * never trips a 30 s timeout: TUF's "slow retrieval" attack). So every download, connection and
 * headers included, is also bounded by a deadline, and after a grace period its bytes must keep
 * up with a minimum average rate since it started: a file of {@code n} bytes gets at most {@code
 * grace + n / minRate} seconds. Passing the deadline or falling below the rate fails with {@code
 * download-too-slow}; idleness with {@code download}. The defaults are those of the reference
 * client (docs/format.md §15.6, "Time limits"): 30 s idle, 600 s deadline, 1024 bytes/s after 30
 * s.
 *
 * <p>Immutable. Example: {@code TransferLimits.DEFAULT.withDeadlineMillis(120_000)}.
 */
public final class TransferLimits {
  /** 30 s idle, 600 s deadline, 1024 bytes/s on average after a 30 s grace period. */
  public static final TransferLimits DEFAULT = new TransferLimits(30000, 600000, 1024, 30000);

  private final long idleMillis;
  private final long deadlineMillis;
  private final long minBytesPerSecond;
  private final long graceMillis;

  /**
   * @param idleMillis the longest wait for any byte, connecting included (positive)
   * @param deadlineMillis the whole download (positive)
   * @param minBytesPerSecond the minimum average rate since the start, 0 to turn it off
   * @param graceMillis how long the rate is not checked (connection set-up, first byte)
   * @throws IllegalArgumentException for a non-positive timeout or a negative rate or grace
   */
  public TransferLimits(
      long idleMillis, long deadlineMillis, long minBytesPerSecond, long graceMillis) {
    if (idleMillis <= 0 || deadlineMillis <= 0) {
      throw new IllegalArgumentException("download timeouts must be positive");
    }
    if (minBytesPerSecond < 0 || graceMillis < 0) {
      throw new IllegalArgumentException(
          "the minimum download rate and its grace period cannot be negative");
    }
    this.idleMillis = idleMillis;
    this.deadlineMillis = deadlineMillis;
    this.minBytesPerSecond = minBytesPerSecond;
    this.graceMillis = graceMillis;
  }

  /** These limits with another deadline (what {@code client check --timeout} sets). */
  public TransferLimits withDeadlineMillis(long deadline) {
    return new TransferLimits(idleMillis, deadline, minBytesPerSecond, graceMillis);
  }

  public long idleMillis() {
    return idleMillis;
  }

  public long deadlineMillis() {
    return deadlineMillis;
  }

  public long minBytesPerSecond() {
    return minBytesPerSecond;
  }

  public long graceMillis() {
    return graceMillis;
  }
}
