package dev.aoepack.repo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.aoepack.AoeException;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The state lock keeps other processes (aoe-pack, another process of the app) out for as long as
 * a check holds it, whatever other threads of this process do meanwhile.
 */
class StateLockTest {
  @TempDir File tmp;

  private static String probe(File lock) throws Exception {
    Process p = new ProcessBuilder(
            new File(System.getProperty("java.home"), "bin/java").getPath(),
            "-cp", new File(LockProbe.class.getProtectionDomain().getCodeSource().getLocation().toURI()).getPath(),
            LockProbe.class.getName(), lock.getPath())
        .redirectErrorStream(true)
        .start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
    p.waitFor();
    return out;
  }

  @Test
  void aThreadThatGivesUpWaitingDoesNotReleaseTheHoldersLock() throws Exception {
    File state = new File(tmp, "state.json");
    StateLock held = StateLock.acquire(state, 1000);
    try {
      assertEquals("held", probe(StateLock.lockPath(state)));
      AtomicReference<Throwable> waiter = new AtomicReference<>();
      Thread t = new Thread(() -> waiter.set(assertThrows(AoeException.class, () -> StateLock.acquire(state, 50))));
      t.start();
      t.join();
      assertEquals("state-locked", ((AoeException) waiter.get()).code());
      assertEquals("held", probe(StateLock.lockPath(state)));
    } finally {
      held.close();
    }
    assertEquals("free", probe(StateLock.lockPath(state)));
  }

  @Test
  void aWaitingThreadGetsTheLockOnceTheHolderLetsGo() throws Exception {
    File state = new File(tmp, "state.json");
    StateLock held = StateLock.acquire(state, 1000);
    AtomicReference<StateLock> got = new AtomicReference<>();
    AtomicReference<Throwable> failed = new AtomicReference<>();
    Thread t = new Thread(() -> {
      try {
        got.set(StateLock.acquire(state, 10000));
      } catch (Throwable e) {
        failed.set(e);
      }
    });
    t.start();
    Thread.sleep(100);
    held.close();
    t.join();
    assertEquals(null, failed.get());
    assertEquals("held", probe(StateLock.lockPath(state)));
    got.get().close();
    assertEquals("free", probe(StateLock.lockPath(state)));
  }
}
