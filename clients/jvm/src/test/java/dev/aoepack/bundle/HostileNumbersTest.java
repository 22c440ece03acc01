package dev.aoepack.bundle;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.aoepack.testing.Vectors;
import java.io.File;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** aoe/signatures.json is read before any signature counts: its numbers are an attacker's. */
class HostileNumbersTest {
  @TempDir File tmp;

  @Test
  void anEnvelopeWithAnOverflowingExponentIsSignature() {
    byte[] manifest = Vectors.entry("v1-plain.aoe", "aoe/manifest.json");
    String e = new String(Kit.envelope(Kit.sign(manifest), false), StandardCharsets.UTF_8);
    String hostile = "{\"x\":1e9999999999," + e.substring(1);
    File f = Kit.write(tmp, "hostile.aoe",
        Kit.rebuild("v1-plain.aoe", manifest, hostile.getBytes(StandardCharsets.UTF_8)));
    assertEquals("signature", Kit.code(() -> Kit.verifier().verify(f)));
  }
}
