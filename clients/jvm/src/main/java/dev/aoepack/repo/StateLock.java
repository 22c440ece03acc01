package dev.aoepack.repo;

import dev.aoepack.AoeException;
import java.io.File;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;

/**
 * The exclusive lock on {@code <state>.lock} held from loading the state to saving it
 * (§15.6), so that two checks of one repository never interleave. The lock file is never
 * removed; the lock goes with the process that holds it.
 *
 * <p>{@link java.nio.channels.FileChannel#lock} takes a POSIX record lock ({@code fcntl}) on
 * Linux and Android. The reference takes a {@code flock} and such a record lock (§15.6), so a
 * Java check and an {@code aoe-pack client check} of one state file wait for each other
 * (tests/jvm/test_state_lock.py); and the save never lowers the floor the file holds, for a
 * writer that does not lock.
 *
 * <p>Within this process, threads first take a lock of their own per lock file, and only its
 * holder ever opens the file: a record lock belongs to the process, and closing any descriptor
 * of the file drops it (POSIX), so a thread that gave up waiting with the file open would, on
 * closing it, release the holder's lock to every other process.
 */
final class StateLock implements java.io.Closeable {
  /** One permit per lock file (by canonical path) for the threads of this process; never removed. */
  private static final Map<String, Semaphore> IN_PROCESS = new HashMap<String, Semaphore>();

  private final RandomAccessFile file;
  private final FileLock lock;
  private final Semaphore permit;
  private boolean closed;

  private StateLock(RandomAccessFile file, FileLock lock, Semaphore permit) {
    this.file = file;
    this.lock = lock;
    this.permit = permit;
  }

  private static Semaphore permitFor(File path) {
    String key;
    try {
      key = path.getCanonicalPath();
    } catch (IOException e) {
      key = path.getAbsolutePath();
    }
    synchronized (IN_PROCESS) {
      Semaphore s = IN_PROCESS.get(key);
      if (s == null) {
        s = new Semaphore(1, true);
        IN_PROCESS.put(key, s);
      }
      return s;
    }
  }

  private static AoeException locked(File state, File path, long waitMillis) {
    return new AoeException(
        "state-locked",
        "another check holds the client state " + state + ": its lock " + path.getName()
            + " was still held after " + waitMillis / 1000.0 + " s; run one check of a repository at a"
            + " time, or again once the other ends (its lock goes with it, even if it is killed)");
  }

  static File lockPath(File state) {
    return new File(state.getPath() + ".lock");
  }

  /** Holds the lock of {@code state}, waiting at most {@code waitMillis}; {@code state-locked} after. */
  static StateLock acquire(File state, long waitMillis) throws AoeException {
    File path = lockPath(state);
    File dir = path.getAbsoluteFile().getParentFile();
    if (dir != null && !dir.isDirectory() && !dir.mkdirs() && !dir.isDirectory()) {
      throw new AoeException("store", "cannot lock the client state " + state + ": cannot create " + dir);
    }
    long deadline = System.nanoTime() + waitMillis * 1000000L;
    Semaphore permit = permitFor(path);
    try {
      if (!permit.tryAcquire(Math.max(0, waitMillis), TimeUnit.MILLISECONDS)) {
        throw locked(state, path, waitMillis);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AoeException("state-locked", "interrupted while waiting for the client state " + state, e);
    }
    RandomAccessFile file;
    try {
      file = new RandomAccessFile(path, "rw");
    } catch (IOException e) {
      permit.release();
      throw new AoeException("store", "cannot lock the client state " + state + ": " + e.getMessage(), e);
    }
    long pause = 1;
    try {
      while (true) {
        FileLock lock;
        try {
          lock = file.getChannel().tryLock();
        } catch (OverlappingFileLockException e) {
          lock = null; // held through another channel of this process (not through this class)
        } catch (IOException e) {
          // A file system without locks: go on unlocked, the save never lowers the floor.
          return new StateLock(file, null, permit);
        }
        if (lock != null) {
          return new StateLock(file, lock, permit);
        }
        long left = (deadline - System.nanoTime()) / 1000000L;
        if (left <= 0) {
          throw locked(state, path, waitMillis);
        }
        try {
          Thread.sleep(Math.min(pause, left));
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new AoeException("state-locked", "interrupted while waiting for the client state " + state, e);
        }
        pause = Math.min(2 * pause, 50);
      }
    } catch (AoeException e) {
      closeQuietly(file);
      permit.release();
      throw e;
    } catch (RuntimeException e) {
      closeQuietly(file);
      permit.release();
      throw e;
    }
  }

  private static void closeQuietly(RandomAccessFile f) {
    try {
      f.close();
    } catch (IOException ignored) {
      // nothing held
    }
  }

  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    try {
      if (lock != null) {
        lock.release();
      }
    } catch (IOException ignored) {
      // closing the file releases it too
    }
    closeQuietly(file);
    permit.release();
  }
}
