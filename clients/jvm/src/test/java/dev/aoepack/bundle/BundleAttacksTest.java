package dev.aoepack.bundle;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.aoepack.AoeException;
import dev.aoepack.internal.zip.ZipEntry;
import dev.aoepack.keys.DecryptionKey;
import dev.aoepack.testing.TestOnlyXWing;
import dev.aoepack.testing.Vectors;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.ZipOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * One test per attack, each asserting the exact code: the broken vectors of
 * tests/test_vectors.py ({@code _broken(case)}, outsider edits of
 * v1-x25519.aoe and insider edits of v1-multi.aoe re-signed with the
 * TEST-ONLY keys), and more of §4.7 and §6.1.
 */
class BundleAttacksTest {
  @TempDir File tmp;

  private static final String X25519 = "v1-x25519.aoe";

  private String verify(byte[] data) {
    return verify(data, null);
  }

  private String verify(byte[] data, String keyFile) {
    File f = Kit.write(tmp, "broken.aoe", data);
    DecryptionKey key = keyFile == null ? null : Kit.key(keyFile);
    return Kit.code(() -> Kit.verifier().verify(f, key, new TestOnlyXWing()));
  }

  private static byte[] x25519() {
    return Vectors.bytes(X25519);
  }

  private static long end() {
    return x25519().length - 22;
  }

  private static long cdOffset() {
    return ByteBuffer.wrap(x25519()).order(ByteOrder.LITTLE_ENDIAN).getInt((int) end() + 16) & 0xFFFFFFFFL;
  }

  // --- outsider edits of v1-x25519.aoe (tests/test_vectors.py ATTACKS) ---------------

  @Test
  void mediaTypePrefixIsNotABundle() {
    assertEquals("not-a-bundle", verify(Kit.flip(x25519(), 40)));
  }

  @Test
  void mediaTypeVersionByteFailsItsCrc() {
    assertEquals("zip-structure", verify(Kit.flip(x25519(), 66)));
  }

  @Test
  void futureVersionWithAConsistentCrcIsUnsupported() {
    byte[] v2 = x25519();
    v2[66] = '2';
    CRC32 crc = new CRC32();
    crc.update(v2, 38, 33);
    ByteBuffer.wrap(v2).order(ByteOrder.LITTLE_ENDIAN).putInt(14, (int) crc.getValue());
    assertEquals("unsupported-version", verify(v2));
  }

  @Test
  void mimetypeHeaderTime() {
    assertEquals("zip-structure", verify(Kit.flip(x25519(), 10)));
  }

  @Test
  void payloadHeaderName() {
    assertEquals("zip-structure", verify(Kit.flip(x25519(), 71 + 30)));
  }

  @Test
  void alignmentPadding() {
    assertEquals("zip-structure", verify(Kit.flip(x25519(), 71 + 30 + "payload/assets/empty.bin".length() + 6)));
  }

  @Test
  void firstChunk() {
    ZipEntry model = Kit.entry(X25519, "payload/model.tflite");
    assertEquals("integrity", verify(Kit.flip(x25519(), model.dataOffset + 100)));
  }

  @Test
  void lastChunk() {
    ZipEntry model = Kit.entry(X25519, "payload/model.tflite");
    assertEquals("integrity", verify(Kit.flip(x25519(), model.dataOffset + model.size - 1)));
  }

  @Test
  void firstChunkDecrypting() {
    ZipEntry model = Kit.entry(X25519, "payload/model.tflite");
    assertEquals("integrity", verify(Kit.flip(x25519(), model.dataOffset + 100), "test-only-x25519.key"));
  }

  @Test
  void manifestByteFailsTheThreshold() {
    ZipEntry m = Kit.entry(X25519, "aoe/manifest.json");
    assertEquals("threshold", verify(Kit.flip(x25519(), m.dataOffset + m.size / 2)));
  }

  @Test
  void envelopeJson() {
    ZipEntry s = Kit.entry(X25519, "aoe/signatures.json");
    assertEquals("signature", verify(Kit.flip(x25519(), s.dataOffset)));
  }

  @Test
  void centralVersionMadeBy() {
    assertEquals("zip-structure", verify(Kit.flip(x25519(), cdOffset() + 4)));
  }

  @Test
  void centralCrc32() {
    assertEquals("zip-structure", verify(Kit.flip(x25519(), cdOffset() + 46 + 8 + 16)));
  }

  @Test
  void endRecordCount() {
    assertEquals("zip-structure", verify(Kit.flip(x25519(), end() + 10)));
  }

  @Test
  void endRecordCdOffset() {
    assertEquals("zip-structure", verify(Kit.flip(x25519(), end() + 16)));
  }

  @Test
  void truncated() {
    byte[] d = x25519();
    assertEquals("zip-structure", verify(java.util.Arrays.copyOf(d, d.length - 1)));
  }

  @Test
  void trailingByte() {
    byte[] d = x25519();
    assertEquals("zip-structure", verify(java.util.Arrays.copyOf(d, d.length + 1)));
  }

  @Test
  void emptyFile() {
    assertEquals("not-a-bundle", verify(new byte[0]));
  }

  @Test
  void legacyAtenc() {
    byte[] legacy = new byte[37];
    legacy[0] = 0x01;
    legacy[4] = 16;
    assertEquals("legacy-aoe-format", verify(legacy));
  }

  @Test
  void plainZip() throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (ZipOutputStream z = new ZipOutputStream(out)) {
      z.putNextEntry(new java.util.zip.ZipEntry("model.tflite"));
      z.write("not a bundle".getBytes(StandardCharsets.US_ASCII));
    }
    assertEquals("not-a-bundle", verify(out.toByteArray()));
  }

  @Test
  void untrustedSigner() throws AoeException {
    File f = Kit.write(tmp, "b.aoe", x25519());
    BundleVerifier verifier = BundleVerifier.builder().trust(Kit.trusted("test-only-p256-kem")).build();
    assertEquals("threshold", Kit.code(() -> verifier.verify(f)));
  }

  @Test
  void wrongDecryptionKey() {
    assertEquals("no-matching-recipient", verify(x25519(), "test-only-mlkem768-x25519.key"));
  }

  // --- the threshold is the caller's, checked before the file (§8) ----------------

  @Test
  void thresholdAboveTheTrustedKeysIsUsageBeforeAnyFile() {
    assertEquals(
        "usage",
        Kit.code(() -> BundleVerifier.builder().trust(Kit.trusted(Kit.SIGNERS[0])).threshold(2).build()));
  }

  @Test
  void thresholdZeroIsUsage() {
    assertEquals(
        "usage",
        Kit.code(() -> BundleVerifier.builder().trust(Kit.trusted(Kit.SIGNERS[0])).threshold(0).build()));
  }

  @Test
  void aKeyTrustedTwiceCountsOnce() {
    assertEquals(
        "usage",
        Kit.code(
            () ->
                BundleVerifier.builder()
                    .trust(Kit.trusted(Kit.SIGNERS[0]), Kit.trusted(Kit.SIGNERS[0]))
                    .threshold(2)
                    .build()));
  }

  @Test
  void oneSignerShortOfThreeIsThreshold() throws AoeException {
    File f = Kit.write(tmp, "b.aoe", x25519());
    BundleVerifier verifier =
        BundleVerifier.builder()
            .trust(Kit.trusted(Kit.SIGNERS[0]), Kit.trusted(Kit.SIGNERS[1]), Kit.trusted("test-only-p256-kem"))
            .threshold(3)
            .build();
    assertEquals("threshold", Kit.code(() -> verifier.verify(f)));
  }

  @Test
  void missingFileIsBundleNotFound() {
    assertEquals("bundle-not-found", Kit.code(() -> Kit.verifier().verify(new File(tmp, "none.aoe"))));
  }

  @Test
  void folderIsBundleNotFound() {
    assertEquals("bundle-not-found", Kit.code(() -> Kit.verifier().verify(tmp)));
  }

  @Test
  void aStreamShorterThanAnnouncedIsTruncated() {
    byte[] d = x25519();
    assertEquals(
        "zip-structure",
        Kit.code(() -> Kit.verifier().verify(new ByteArrayInputStream(d, 0, d.length - 5), d.length)));
  }

  @Test
  void aStreamOfTheWrongLengthFailsLikeATruncatedFile() {
    byte[] d = x25519();
    assertEquals(
        "zip-structure", Kit.code(() -> Kit.verifier().verify(new ByteArrayInputStream(d), d.length - 1)));
  }

  // --- envelope (§6.1) ------------------------------------------------------------

  private static byte[] withEnvelope(String bundle, byte[] envelope) {
    return Kit.rebuild(bundle, Vectors.entry(bundle, "aoe/manifest.json"), envelope);
  }

  @Test
  void unsortedSignatures() {
    byte[] manifest = Vectors.entry("v1-plain.aoe", "aoe/manifest.json");
    assertEquals("signature", verify(withEnvelope("v1-plain.aoe", Kit.envelope(Kit.sign(manifest), true))));
  }

  @Test
  void envelopeWithWhitespaceIsNotCanonical() {
    byte[] manifest = Vectors.entry("v1-plain.aoe", "aoe/manifest.json");
    String e = new String(Kit.envelope(Kit.sign(manifest), false), StandardCharsets.UTF_8);
    assertEquals("signature", verify(withEnvelope("v1-plain.aoe", e.replace(",\"signatures\"", ", \"signatures\"").getBytes(StandardCharsets.UTF_8))));
  }

  @Test
  void envelopeWithTheWrongPayloadType() {
    byte[] manifest = Vectors.entry("v1-plain.aoe", "aoe/manifest.json");
    String e = new String(Kit.envelope(Kit.sign(manifest), false), StandardCharsets.UTF_8);
    assertEquals("signature", verify(withEnvelope("v1-plain.aoe", e.replace("manifest.v1", "manifest.v2").getBytes(StandardCharsets.UTF_8))));
  }

  @Test
  void envelopeWithNoSignature() {
    byte[] e = ("{\"payloadType\":\"" + Envelope.PAYLOAD_TYPE + "\",\"signatures\":[]}").getBytes(StandardCharsets.UTF_8);
    assertEquals("signature", verify(withEnvelope("v1-plain.aoe", e)));
  }

  @Test
  void aKeySigningTwice() {
    byte[] manifest = Vectors.entry("v1-plain.aoe", "aoe/manifest.json");
    Map<String, byte[]> sigs = Kit.sign(manifest);
    String one = new String(Kit.envelope(sigs, false), StandardCharsets.UTF_8);
    String item = one.substring(one.indexOf('[') + 1, one.indexOf('}') + 1);
    String twice = one.replace("[" + item, "[" + item + "," + item);
    assertEquals("signature", verify(withEnvelope("v1-plain.aoe", twice.getBytes(StandardCharsets.UTF_8))));
  }

  @Test
  void signatureThatIsNotBase64() {
    byte[] manifest = Vectors.entry("v1-plain.aoe", "aoe/manifest.json");
    String e = new String(Kit.envelope(Kit.sign(manifest), false), StandardCharsets.UTF_8);
    assertEquals("signature", verify(withEnvelope("v1-plain.aoe", e.replaceFirst("\"sig\":\"", "\"sig\":\"*").getBytes(StandardCharsets.UTF_8))));
  }

  @Test
  void envelopeCrcMismatchAfterValidSignaturesIsIntegrity() {
    byte[] data = Vectors.bytes("v1-plain.aoe");
    ZipEntry s = Kit.entry("v1-plain.aoe", "aoe/signatures.json");
    // the crc32 fields of the envelope's local header and central record, both
    ByteBuffer b = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
    int crc = b.getInt((int) s.headerOffset + 14) ^ 1;
    b.putInt((int) s.headerOffset + 14, crc);
    long cd = b.getInt(data.length - 22 + 16) & 0xFFFFFFFFL;
    int records = b.getShort(data.length - 22 + 10);
    long at = cd;
    for (int i = 0; i < records - 1; i++) {
      at += 46 + (b.getShort((int) at + 28) & 0xffff);
    }
    b.putInt((int) at + 16, crc);
    assertEquals("integrity", verify(data));
  }

  // --- insider edits of v1-multi.aoe, validly re-signed ----------------------------

  private String insider(Kit.Edit edit) {
    return verify(Kit.insider("v1-multi.aoe", edit));
  }

  private static Map<String, Object> kek(Map<String, Object> m) {
    for (Object r : Kit.arr(Kit.obj(m.get("encryption")).get("recipients"))) {
      if ("kek".equals(Kit.obj(r).get("type"))) {
        return Kit.obj(r);
      }
    }
    throw new IllegalStateException("no kek recipient");
  }

  private static void sortRecipients(Map<String, Object> m) {
    Kit.arr(Kit.obj(m.get("encryption")).get("recipients"))
        .sort(
            (a, b) -> {
              int c = ((String) Kit.obj(a).get("type")).compareTo((String) Kit.obj(b).get("type"));
              return c != 0 ? c : ((String) Kit.obj(a).get("keyid")).compareTo((String) Kit.obj(b).get("keyid"));
            });
  }

  @Test
  void recipientsUnsorted() {
    assertEquals("manifest", insider(m -> Collections.reverse(Kit.arr(Kit.obj(m.get("encryption")).get("recipients")))));
  }

  @Test
  void recipientKeyIdTwice() {
    assertEquals(
        "manifest",
        insider(
            m -> {
              Map<String, Object> twin = Kit.mutable(kek(m));
              twin.put("type", "hpke");
              twin.put("kem", "DHKEM(X25519, HKDF-SHA256)");
              Kit.arr(Kit.obj(m.get("encryption")).get("recipients")).add(twin);
              sortRecipients(m);
            }));
  }

  @Test
  void recipientTypeNotTheKeys() {
    byte[] data =
        Kit.insider(
            "v1-multi.aoe",
            m -> {
              Map<String, Object> kek = kek(m);
              kek.put("type", "hpke");
              kek.put("kem", "DHKEM(X25519, HKDF-SHA256)");
              sortRecipients(m);
            });
    assertEquals("decryption", verify(data, "test-only-aes256.key"));
  }

  @Test
  void kemOnAKekRecipientIsNotCanonical() {
    assertEquals("manifest", insider(m -> kek(m).put("kem", "DHKEM(X25519, HKDF-SHA256)")));
  }

  @Test
  void configNonInteger() {
    assertEquals("manifest", insider(m -> Kit.obj(m.get("config")).put("rtol", "@0.001")));
  }

  @Test
  void roleEmpty() {
    assertEquals("manifest", insider(m -> Kit.obj(Kit.arr(m.get("files")).get(0)).put("role", "")));
  }

  @Test
  void pathClimbsOut() {
    assertEquals(
        "manifest",
        insider(
            m -> {
              Kit.obj(Kit.arr(m.get("files")).get(1)).put("path", "../labels.txt");
              Kit.arr(m.get("files")).sort((a, b) -> ((String) Kit.obj(a).get("path")).compareTo((String) Kit.obj(b).get("path")));
            }));
  }

  @Test
  void uintAbove2To53() {
    assertEquals("manifest", insider(m -> m.put("sourceDateEpoch", Kit.SENTINEL)));
  }

  @Test
  void updateUrlCleartext() {
    assertEquals("manifest", insider(m -> Kit.obj(m.get("model")).put("updateURL", "http://models.example/")));
  }

  @Test
  void updateUrlUserinfo() {
    assertEquals("manifest", insider(m -> Kit.obj(m.get("model")).put("updateURL", "https://ci:token@models.example/")));
  }

  @Test
  void updateUrlNotAString() {
    assertEquals(
        "manifest",
        insider(m -> Kit.obj(m.get("model")).put("updateURL", new ArrayList<Object>(List.of("https://x.ex/")))));
  }

  @Test
  void formatOfAnotherVersionIsUnsupported() {
    assertEquals("unsupported-version", insider(m -> m.put("format", "aoe-bundle/v2")));
  }

  @Test
  void versionThatIsNotSemver() {
    assertEquals("manifest", insider(m -> Kit.obj(m.get("model")).put("version", "1.0")));
  }

  @Test
  void tagWithASlash() {
    assertEquals("manifest", insider(m -> Kit.obj(m.get("model")).put("tag", "a/b")));
  }

  @Test
  void noncePrefixMissing() {
    assertEquals("manifest", insider(m -> Kit.obj(Kit.arr(m.get("files")).get(0)).remove("noncePrefix")));
  }

  @Test
  void fileSizeDisagreesWithTheEntry() {
    assertEquals("manifest", insider(m -> Kit.obj(Kit.arr(m.get("files")).get(1)).put("size", 9L)));
  }

  @Test
  void storedCrcDisagreesWithTheEntry() {
    assertEquals(
        "integrity",
        insider(m -> Kit.obj(Kit.obj(Kit.arr(m.get("files")).get(1)).get("stored")).put("crc32", 1L)));
  }

  @Test
  void sha256OfThePlaintextWrongFailsWhenDecrypting() {
    byte[] data =
        Kit.insider(
            "v1-multi.aoe",
            m -> Kit.obj(Kit.arr(m.get("files")).get(1)).put("sha256", "00".repeat(32)));
    assertEquals("integrity", verify(data, "test-only-aes256.key"));
  }

  @Test
  void nonCanonicalManifest() {
    byte[] manifest = Vectors.entry("v1-plain.aoe", "aoe/manifest.json");
    byte[] spaced = new String(manifest, StandardCharsets.UTF_8).replaceFirst("\\{", "{ ").getBytes(StandardCharsets.UTF_8);
    assertEquals("manifest", verify(Kit.rebuild("v1-plain.aoe", spaced, Kit.envelope(Kit.sign(spaced), false))));
  }

  @Test
  void manifestThatIsNotJson() {
    byte[] junk = "{\"format\":".getBytes(StandardCharsets.UTF_8);
    assertEquals("manifest", verify(Kit.rebuild("v1-plain.aoe", junk, Kit.envelope(Kit.sign(junk), false))));
  }

  @Test
  void keyForABundleInTheClearIsDecryption() {
    assertEquals("decryption", verify(Vectors.bytes("v1-plain.aoe"), "test-only-aes256.key"));
  }

  // --- names (§4.7) and entry order (§4.2) -------------------------------------------

  private String entries(String... names) {
    List<String> n = new ArrayList<>();
    List<byte[]> d = new ArrayList<>();
    for (String name : names) {
      n.add(name);
      d.add(name.getBytes(StandardCharsets.UTF_8));
    }
    return verify(Kit.signedWithEntries(n, d));
  }

  @Test
  void wellFormedHandMadeBundleVerifies() {
    List<String> n = List.of("payload/a.bin", "payload/b/c.bin");
    List<byte[]> d = List.of(new byte[] {1}, new byte[] {2, 3});
    File f = Kit.write(tmp, "ok.aoe", Kit.signedWithEntries(n, d));
    org.junit.jupiter.api.Assertions.assertDoesNotThrow(() -> Kit.verifier().verify(f));
  }

  @Test
  void duplicateEntry() {
    assertEquals("unsafe-entry", entries("payload/a", "payload/a"));
  }

  @Test
  void pathTraversal() {
    assertEquals("unsafe-entry", entries("payload/../evil"));
  }

  @Test
  void absolutePath() {
    assertEquals("unsafe-entry", entries("/payload/evil"));
  }

  @Test
  void driveLetter() {
    assertEquals("unsafe-entry", entries("C:payload"));
  }

  @Test
  void backslash() {
    assertEquals("unsafe-entry", entries("payload/a\\b"));
  }

  @Test
  void emptySegment() {
    assertEquals("unsafe-entry", entries("payload//a"));
  }

  @Test
  void namesDifferingOnlyInCase() {
    assertEquals("unsafe-entry", entries("payload/A.bin", "payload/a.bin"));
  }

  @Test
  void sharpSFoldsToSs() {
    assertEquals("unsafe-entry", entries("payload/ss", "payload/\u00df"));
  }

  @Test
  void kelvinSignFoldsToK() {
    assertEquals("unsafe-entry", entries("payload/k", "payload/\u212a"));
  }

  @Test
  void namesDifferingOnlyInNormalization() {
    assertEquals("unsafe-entry", entries("payload/e\u0301", "payload/\u00e9"));
  }

  @Test
  void fileWhereAFolderIsNeeded() {
    assertEquals("unsafe-entry", entries("payload/a", "payload/a/b"));
  }

  @Test
  void folderWhereAFileIsNeededAfterCaseFolding() {
    assertEquals("unsafe-entry", entries("payload/A/b", "payload/a"));
  }

  @Test
  void unassignedCodePoint() {
    assertEquals("unsafe-entry", entries("payload/\u0378"));
  }

  @Test
  void nulInAName() {
    assertEquals("unsafe-entry", entries("payload/a\u0000b"));
  }

  @Test
  void entryOutsidePayload() {
    assertEquals("zip-structure", entries("model.tflite"));
  }

  @Test
  void payloadEntriesUnsorted() {
    assertEquals("zip-structure", entries("payload/b", "payload/a"));
  }

  @Test
  void symlinkEntry() {
    byte[] data = Vectors.bytes("v1-plain.aoe");
    ByteBuffer b = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
    long cd = b.getInt(data.length - 22 + 16) & 0xFFFFFFFFL;
    int second = (int) cd + 46 + 8; // the record after mimetype's
    b.putInt(second + 38, 0xA1FF0000); // 0o120777 << 16
    assertEquals("unsafe-entry", verify(data));
  }

  @Test
  void compressedEntry() {
    byte[] data = Vectors.bytes("v1-plain.aoe");
    ByteBuffer b = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
    long cd = b.getInt(data.length - 22 + 16) & 0xFFFFFFFFL;
    b.putShort((int) cd + 46 + 8 + 10, (short) 8);
    assertEquals("zip-structure", verify(data));
  }

  @Test
  void zip64MarkerInTheEndRecord() {
    byte[] data = Vectors.bytes("v1-plain.aoe");
    ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN).putInt(data.length - 22 + 12, -1);
    assertEquals("limit-exceeded", verify(data));
  }

  @Test
  void zipCommentInTheEndRecord() {
    byte[] data = Vectors.bytes("v1-plain.aoe");
    ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN).putShort(data.length - 2, (short) 1);
    assertEquals("zip-structure", verify(data));
  }
}
