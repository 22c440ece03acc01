package dev.aoepack.internal.crypto;

import static dev.aoepack.testing.Vectors.list;
import static dev.aoepack.testing.Vectors.map;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.aoepack.AoeException;
import dev.aoepack.internal.Codec;
import dev.aoepack.testing.Vectors;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** §7.2 against expected.json's segmentVector, and the segment attacks. */
class SegmentCipherTest {
  private static final Map<String, Object> VECTOR = map(Vectors.expected("segmentVector"));
  private static final String ENTRY = (String) VECTOR.get("entry");
  private static final byte[] KEY = Codec.unhex((String) VECTOR.get("dataKeyHex"));
  private static final byte[] PREFIX = Codec.unhex((String) VECTOR.get("noncePrefixHex"));
  private static final byte[] STORED = Vectors.entry((String) VECTOR.get("bundle"), ENTRY);

  private static byte[] segment(int i) {
    Map<String, Object> s = map(list(VECTOR.get("segments")).get(i));
    int off = ((Long) s.get("storedOffset")).intValue();
    return Arrays.copyOfRange(STORED, off, off + ((Long) s.get("ciphertextLength")).intValue());
  }

  @Test
  void opensEverySegmentOfTheVector() throws Exception {
    assertEquals(ENTRY, new String(Codec.unhex((String) VECTOR.get("aadHex")), StandardCharsets.UTF_8));
    SegmentCipher c = new SegmentCipher(KEY, PREFIX, ENTRY);
    List<Object> segments = list(VECTOR.get("segments"));
    assertEquals(2, segments.size());
    for (int i = 0; i < segments.size(); i++) {
      Map<String, Object> s = map(segments.get(i));
      byte[] ct = segment(i);
      byte[] plain = c.open((Long) s.get("index"), (Boolean) s.get("last"), ct, 0, ct.length);
      assertEquals(((Long) s.get("plaintextLength")).intValue(), plain.length);
      assertEquals(s.get("plaintextSha256"), Codec.hex(MessageDigest.getInstance("SHA-256").digest(plain)));
    }
  }

  @Test
  void opensASegmentInsideALargerBuffer() throws Exception {
    byte[] ct = segment(1);
    byte[] padded = new byte[ct.length + 10];
    System.arraycopy(ct, 0, padded, 3, ct.length);
    byte[] plain = new SegmentCipher(KEY, PREFIX, ENTRY).open(1, true, padded, 3, ct.length);
    assertEquals(ct.length - 16, plain.length);
  }

  private static String code(long index, boolean last, byte[] ct, String entry, byte[] prefix) {
    AoeException e =
        assertThrows(
            AoeException.class,
            () -> new SegmentCipher(KEY, prefix, entry).open(index, last, ct, 0, ct.length));
    return e.code();
  }

  @Test
  void attackSegmentAtTheWrongIndexIsDecryption() {
    assertEquals("decryption", code(0, true, segment(1), ENTRY, PREFIX));
    assertEquals("decryption", code(1, false, segment(0), ENTRY, PREFIX));
  }

  @Test
  void attackWrongLastFlagIsDecryption() {
    // Dropping the tail leaves no segment that was sealed with last = 1.
    assertEquals("decryption", code(0, true, segment(0), ENTRY, PREFIX));
    assertEquals("decryption", code(1, false, segment(1), ENTRY, PREFIX));
  }

  @Test
  void attackRenamedEntryIsDecryption() {
    assertEquals("decryption", code(0, false, segment(0), "payload/model2.tflite", PREFIX));
  }

  @Test
  void attackSegmentMovedToAnotherFileIsDecryption() {
    byte[] other = PREFIX.clone();
    other[6] ^= 1;
    assertEquals("decryption", code(0, false, segment(0), ENTRY, other));
  }

  @Test
  void attackFlippedCiphertextOrTagIsDecryption() {
    byte[] ct = segment(1);
    ct[0] ^= 1;
    assertEquals("decryption", code(1, true, ct, ENTRY, PREFIX));
    byte[] tag = segment(1);
    tag[tag.length - 1] ^= 1;
    assertEquals("decryption", code(1, true, tag, ENTRY, PREFIX));
  }

  @Test
  void attackSegmentShorterThanItsTagIsDecryption() {
    assertEquals("decryption", code(1, true, new byte[15], ENTRY, PREFIX));
    assertEquals("decryption", code(1, true, new byte[0], ENTRY, PREFIX));
  }

  @Test
  void anEmptyFileIsOneEmptySegment() throws Exception {
    String bundle = "v1-x25519.aoe";
    String entry = "payload/assets/empty.bin";
    byte[] key = Codec.unhex(Vectors.expectedString("bundles", bundle, "dataKeyHex"));
    byte[] prefix = Codec.unhex(Vectors.expectedString("bundles", bundle, "noncePrefixes", entry));
    byte[] stored = Vectors.entry(bundle, entry);
    assertEquals(16, stored.length);
    assertEquals(0, new SegmentCipher(key, prefix, entry).open(0, true, stored, 0, 16).length);
  }

  @Test
  void keyAndPrefixLengthsAreProgrammingErrors() {
    assertThrows(IllegalArgumentException.class, () -> new SegmentCipher(new byte[31], PREFIX, ENTRY));
    assertThrows(IllegalArgumentException.class, () -> new SegmentCipher(KEY, new byte[8], ENTRY));
    assertThrows(
        IllegalArgumentException.class,
        () -> new SegmentCipher(KEY, PREFIX, ENTRY).open(1L << 32, true, new byte[16], 0, 16));
  }
}
