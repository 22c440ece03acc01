package dev.aoepack.repo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.aoepack.AoeException;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** Repository documents as a hostile server writes them, read before any signature counts. */
class HostileDocumentTest {
  @Test
  void anEnvelopeWithAnOverflowingExponentIsRepositoryFormat() {
    byte[] data = "{\"payload\":1e9999999999,\"payloadType\":\"x\",\"signatures\":[]}"
        .getBytes(StandardCharsets.UTF_8);
    AoeException e = assertThrows(
        AoeException.class, () -> SignedDocument.parse(data, SignedDocument.MANIFEST, "manifest.json"));
    assertEquals("repository-format", e.code());
  }
}
