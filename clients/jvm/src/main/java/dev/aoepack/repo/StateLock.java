package dev.aoepack.repo;

import dev.aoepack.AoeException;
import java.io.File;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;

/**
 * The exclusive lock on {@code <state>.lock} held from loading the state to saving it
 * (§15.6), so that two checks of one repository never interleave. The lock file is never
 * removed; the lock goes with the process that holds it.
 *
 * <p>{@link java.nio.channels.FileChannel#lock} takes a POSIX record lock ({@code fcntl}) on
 * Linux and Android, while the reference takes {@code flock}: on Linux the two kinds do not see
 * each other, so a Java check and an {@code aoe-pack client check} of one state file are kept
 * apart only by the save, which never lowers the floor the file holds.
 */
final class StateLock implements java.io.Closeable {
  private final RandomAccessFile file;
  private final FileLock lock;

  private StateLock(RandomAccessFile file, FileLock lock) {
    this.file = file;
    this.lock = lock;
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
    RandomAccessFile file;
    try {
      file = new RandomAccessFile(path, "rw");
    } catch (IOException e) {
      throw new AoeException("store", "cannot lock the client state " + state + ": " + e.getMessage(), e);
    }
    long deadline = System.nanoTime() + waitMillis * 1000000L;
    long pause = 1;
    try {
      while (true) {
        FileLock lock;
        try {
          lock = file.getChannel().tryLock();
        } catch (OverlappingFileLockException e) {
          lock = null; // another check in this process holds it
        } catch (IOException e) {
          // A file system without locks: go on unlocked, the save never lowers the floor.
          return new StateLock(file, null);
        }
        if (lock != null) {
          return new StateLock(file, lock);
        }
        long left = (deadline - System.nanoTime()) / 1000000L;
        if (left <= 0) {
          throw new AoeException(
              "state-locked",
              "another check holds the client state " + state + ": its lock " + path.getName()
                  + " was still held after " + waitMillis / 1000.0 + " s; run one check of a repository at a"
                  + " time, or again once the other ends (its lock goes with it, even if it is killed)");
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
      throw e;
    } catch (RuntimeException e) {
      closeQuietly(file);
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
  public void close() {
    try {
      if (lock != null) {
        lock.release();
      }
    } catch (IOException ignored) {
      // closing the file releases it too
    }
    closeQuietly(file);
  }
}
