package dev.aoepack.testing;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import org.junit.jupiter.api.Test;

/** The test-only X-Wing stand-in is right before other tests lean on it. */
class TestOnlyXWingTest {
  @Test
  void keccakAgreesWithTheJdksSha3AndFips202Shake() throws Exception {
    byte[] msg = new byte[500];
    for (int i = 0; i < msg.length; i++) {
      msg[i] = (byte) i;
    }
    for (int n : new int[] {0, 1, 135, 136, 137, 500}) {
      byte[] m = java.util.Arrays.copyOf(msg, n);
      assertArrayEquals(MessageDigest.getInstance("SHA3-256").digest(m), Keccak.sha3_256(m));
      assertArrayEquals(MessageDigest.getInstance("SHA3-512").digest(m), Keccak.sha3_512(m));
    }
    // FIPS 202 examples: SHAKE128("") and SHAKE256("").
    assertEquals(
        "7f9c2ba4e88f827d616045507605853ed73b8093f6efbc88eb1a6eacfa66ef26",
        hex(Keccak.shake128().squeeze(32)));
    assertEquals(
        "46b9dd2b0ba88d13233b3feb743eeb243fcd52ea62b81b82b50c27646ed5762f",
        hex(Keccak.shake256(32, "".getBytes(StandardCharsets.US_ASCII))));
  }

  @Test
  void theSeedOfTheTestOnlyKeyDerivesItsPublishedPublicKey() {
    byte[] seed = Vectors.unhex(Vectors.expectedString("keys", "mlkem768-x25519", "seedHex"));
    String raw = Vectors.expectedString("keys", "mlkem768-x25519", "rawHex");
    assertEquals(raw, hex(TestOnlyXWing.expand(seed).publicKey()));
  }

  static String hex(byte[] b) {
    StringBuilder s = new StringBuilder();
    for (byte x : b) {
      s.append(String.format("%02x", x));
    }
    return s.toString();
  }
}
