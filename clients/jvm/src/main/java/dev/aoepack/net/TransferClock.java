package dev.aoepack.net;

import dev.aoepack.AoeException;
import java.net.HttpURLConnection;
import java.util.Locale;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;

/**
 * The time limits of one download, measured from its first request (not API).
 *
 * <p>HttpURLConnection applies its read timeout per read, fixed when it connects, so it cannot
 * enforce a deadline or an average rate by itself. A watchdog on one shared daemon thread wakes at
 * the nearest limit and, once one has passed, disconnects the connection under way: the blocked
 * read fails, and the reader turns that into {@code download-too-slow} naming the limit. The
 * reader also checks the limits after every read it makes. A read blocked on a body that stopped
 * arriving holds a lock the disconnect waits for, so the connection's read timeout, at most the
 * time left when it connected (HttpCall), is what bounds a stall.
 */
final class TransferClock {
  private static final ScheduledThreadPoolExecutor WATCHDOG = watchdog();

  private final String url;
  private final TransferLimits limits;
  private final long start = System.nanoTime();
  private volatile long received;
  private volatile AoeException tripped;
  private ScheduledFuture<?> watch;
  private HttpURLConnection watched;

  TransferClock(String url, TransferLimits limits) {
    this.url = url;
    this.limits = limits;
  }

  TransferLimits limits() {
    return limits;
  }

  void received(long n) {
    received += n;
  }

  long elapsedMillis() {
    return (System.nanoTime() - start) / 1000000L;
  }

  /** Milliseconds until the nearest limit; throws {@code download-too-slow} once one has passed. */
  long leftMillis() throws AoeException {
    AoeException already = tripped;
    if (already != null) {
      throw already;
    }
    long elapsed = elapsedMillis();
    long deadlineLeft = limits.deadlineMillis() - elapsed;
    if (deadlineLeft <= 0) {
      throw deadline();
    }
    long left = deadlineLeft;
    if (limits.minBytesPerSecond() > 0) {
      long rateLeft =
          limits.graceMillis() + received * 1000L / limits.minBytesPerSecond() - elapsed;
      if (rateLeft <= 0) {
        throw tooSlow(elapsed);
      }
      left = Math.min(left, rateLeft);
    }
    return left;
  }

  /** Milliseconds until the deadline (which, unlike the rate limit, never moves). */
  long deadlineLeftMillis() {
    return limits.deadlineMillis() - elapsedMillis();
  }

  /** The limit that ended a failed read, or null when none did (the failure is the network's). */
  AoeException tripped() {
    try {
      leftMillis();
      return null;
    } catch (AoeException e) {
      return e;
    }
  }

  /** The limit that made the watchdog disconnect, or null: a stream it closed may just end. */
  AoeException stopped() {
    return tripped;
  }

  /** Disconnect {@code connection} as soon as a limit passes, until {@link #unwatch()}. */
  synchronized void watch(HttpURLConnection connection) {
    unwatch();
    watched = connection;
    schedule();
  }

  synchronized void unwatch() {
    if (watch != null) {
      watch.cancel(false);
      watch = null;
    }
    watched = null;
  }

  private void schedule() {
    long wait;
    try {
      wait = leftMillis();
    } catch (AoeException e) {
      wait = 0;
    }
    watch = WATCHDOG.schedule(new Runnable() {
      @Override
      public void run() {
        check();
      }
    }, wait + 1, TimeUnit.MILLISECONDS);
  }

  private synchronized void check() {
    if (watched == null) {
      return;
    }
    try {
      leftMillis();
      schedule(); // bytes arrived meanwhile: the rate limit moved on
    } catch (AoeException e) {
      tripped = e;
      final HttpURLConnection victim = watched;
      watched = null;
      // Not on the watchdog's own thread: disconnect can block until the read it should end
      // returns (see HttpCall), and meanwhile no other download's limits would be watched.
      Thread closer = new Thread(new Runnable() {
        @Override
        public void run() {
          victim.disconnect();
        }
      }, "aoe-pack download disconnect");
      closer.setDaemon(true);
      closer.start();
    }
  }

  private AoeException deadline() {
    return new AoeException(
        "download-too-slow",
        url + ": not finished within its deadline of " + seconds(limits.deadlineMillis())
            + " s (" + received + " bytes received); stopped (a slow or stalled server or "
            + "network; a longer deadline allows more time)");
  }

  private AoeException tooSlow(long elapsed) {
    return new AoeException(
        "download-too-slow",
        url + ": " + received + " bytes in " + seconds(elapsed)
            + " s is below the minimum average rate of " + limits.minBytesPerSecond()
            + " bytes/s; stopped (a server or network this slow cannot deliver the file in "
            + "reasonable time)");
  }

  private static String seconds(long millis) {
    return String.format(Locale.ROOT, "%.1f", millis / 1000.0);
  }

  private static ScheduledThreadPoolExecutor watchdog() {
    ScheduledThreadPoolExecutor executor =
        new ScheduledThreadPoolExecutor(1, new ThreadFactory() {
          @Override
          public Thread newThread(Runnable r) {
            Thread t = new Thread(r, "aoe-pack download watchdog");
            t.setDaemon(true);
            return t;
          }
        });
    executor.setRemoveOnCancelPolicy(true);
    return executor;
  }
}
