package dev.aoepack.repo;

import java.io.RandomAccessFile;
import java.nio.channels.FileLock;

/** Run in a second JVM: prints "free" if it can lock the file given, "held" if not. */
public final class LockProbe {
  private LockProbe() {}

  public static void main(String[] args) throws Exception {
    try (RandomAccessFile f = new RandomAccessFile(args[0], "rw")) {
      FileLock lock = f.getChannel().tryLock();
      System.out.println(lock == null ? "held" : "free");
    }
  }
}
