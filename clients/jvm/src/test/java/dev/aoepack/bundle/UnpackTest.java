package dev.aoepack.bundle;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.aoepack.AoeException;
import dev.aoepack.internal.zip.ZipEntry;
import dev.aoepack.testing.Vectors;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** §9: nothing unverified becomes visible, nothing is left behind, existing files are kept. */
class UnpackTest {
  @TempDir File tmp;

  private static List<String> list(File dir) {
    String[] names = dir.list();
    Arrays.sort(names);
    return Arrays.asList(names);
  }

  private File broken() {
    ZipEntry model = Kit.entry("v1-plain.aoe", "payload/model.tflite");
    return Kit.write(tmp, "broken.aoe", Kit.flip(Vectors.bytes("v1-plain.aoe"), model.dataOffset + model.size - 1));
  }

  @Test
  void aFailedUnpackLeavesNoFolderBehind() {
    File bundle = broken();
    File out = new File(tmp, "deep/er/model");
    assertEquals("integrity", Kit.code(() -> Kit.verifier().unpack(bundle, out, null, null)));
    assertEquals(List.of("broken.aoe"), list(tmp)); // no model folder, no parents, no staging
  }

  @Test
  void aFailedUnpackIntoAnExistingFolderLeavesItAsItWas() throws Exception {
    File out = new File(tmp, "model");
    out.mkdir();
    Kit.write(out, "keep.txt", new byte[] {1});
    File bundle = broken();
    assertEquals("integrity", Kit.code(() -> Kit.verifier().unpack(bundle, out, null, null)));
    assertEquals(List.of("keep.txt"), list(out));
    assertEquals(List.of("broken.aoe", "model"), list(tmp));
  }

  @Test
  void anExistingEmptyFolderIsUsed() throws Exception {
    File out = new File(tmp, "model");
    out.mkdir();
    Kit.verifier().unpack(Vectors.file("v1-plain.aoe"), out, null, null);
    assertEquals(List.of("assets", "labels.txt", "model.tflite"), list(out));
    assertEquals(List.of("model"), list(tmp));
  }

  @Test
  void anExistingFileIsRefusedAndKept() throws Exception {
    File out = new File(tmp, "model");
    out.mkdir();
    Kit.write(out, "labels.txt", "mine".getBytes(StandardCharsets.US_ASCII));
    assertEquals("output", Kit.code(() -> Kit.verifier().unpack(Vectors.file("v1-plain.aoe"), out, null, null)));
    assertEquals(List.of("labels.txt"), list(out));
    assertArrayEquals("mine".getBytes(StandardCharsets.US_ASCII), Vectors.read(new File(out, "labels.txt")));
    assertEquals(List.of("model"), list(tmp));
  }

  @Test
  void anExistingFileIsReplacedWhenAsked() throws Exception {
    File out = new File(tmp, "model");
    out.mkdir();
    Kit.write(out, "labels.txt", "mine".getBytes(StandardCharsets.US_ASCII));
    BundleVerifier replacing =
        BundleVerifier.builder()
            .trust(Kit.trusted(Kit.SIGNERS[0]), Kit.trusted(Kit.SIGNERS[1]))
            .threshold(2)
            .replaceExisting(true)
            .build();
    replacing.unpack(Vectors.file("v1-plain.aoe"), out, null, null);
    assertArrayEquals("cat\ndog\n".getBytes(StandardCharsets.US_ASCII), Vectors.read(new File(out, "labels.txt")));
  }

  @Test
  void aFolderWhereAFileGoesIsRefused() throws Exception {
    File out = new File(tmp, "model");
    new File(out, "labels.txt").mkdirs();
    assertEquals("output", Kit.code(() -> Kit.verifier().unpack(Vectors.file("v1-plain.aoe"), out, null, null)));
    assertEquals(List.of("labels.txt"), list(out));
  }

  @Test
  void aFileAsTheDestinationIsRefused() {
    File out = Kit.write(tmp, "model", new byte[0]);
    assertEquals("output", Kit.code(() -> Kit.verifier().unpack(Vectors.file("v1-plain.aoe"), out, null, null)));
  }

  @Test
  void aSymlinkAsTheDestinationIsRefused() throws Exception {
    File target = new File(tmp, "elsewhere");
    target.mkdir();
    File out = new File(tmp, "model");
    Files.createSymbolicLink(out.toPath(), target.toPath());
    assertEquals("output", Kit.code(() -> Kit.verifier().unpack(Vectors.file("v1-plain.aoe"), out, null, null)));
    assertEquals(0, target.list().length);
  }

  @Test
  void aSymlinkedFolderInTheDestinationIsNotFollowed() throws Exception {
    File target = new File(tmp, "elsewhere");
    target.mkdir();
    File out = new File(tmp, "model");
    out.mkdir();
    Files.createSymbolicLink(new File(out, "assets").toPath(), target.toPath());
    assertEquals("output", Kit.code(() -> Kit.verifier().unpack(Vectors.file("v1-plain.aoe"), out, null, null)));
    assertEquals(0, target.list().length);
  }

  @Test
  void anEncryptedBundleWithoutItsKeyIsDecryption() {
    File out = new File(tmp, "model");
    assertEquals("decryption", Kit.code(() -> Kit.verifier().unpack(Vectors.file("v1-x25519.aoe"), out, null, null)));
    assertFalse(out.exists());
  }

  @Test
  void theWrongKeyLeavesNothing() {
    File out = new File(tmp, "model");
    assertEquals(
        "no-matching-recipient",
        Kit.code(() -> Kit.verifier().unpack(Vectors.file("v1-x25519.aoe"), out, Kit.key("test-only-aes256.key"), null)));
    assertEquals(0, tmp.list().length);
  }

  @Test
  void aWrongPlaintextDigestIsRefusedEvenInTheClear() {
    // verify without a key may skip the whole-file SHA-256 of a payload in the clear; unpack never does
    byte[] data =
        Kit.insider("v1-plain.aoe", m -> Kit.obj(Kit.arr(m.get("files")).get(1)).put("sha256", "00".repeat(32)));
    File bundle = Kit.write(tmp, "b.aoe", data);
    assertTrue(() -> {
      try {
        Kit.verifier().verify(bundle);
        return true;
      } catch (AoeException e) {
        return false;
      }
    });
    File out = new File(tmp, "model");
    assertEquals("integrity", Kit.code(() -> Kit.verifier().unpack(bundle, out, null, null)));
    assertEquals(List.of("b.aoe"), list(tmp));
  }

  @Test
  void unsafePathsAreRefusedAgainAtUnpack() {
    for (String p : new String[] {"../x", "/x", "a//b", "a/./b", "a\\b", ""}) {
      assertEquals("unsafe-entry", Kit.code(() -> OutputTree.safeParts(p)), p);
    }
  }

  @Test
  void windowsNamesAreRefusedThere() {
    for (String p : new String[] {"aux.txt", "COM1", "a:b", "x.", "x ", "a?b", "CON .txt"}) {
      assertEquals("unsafe-entry", Kit.code(() -> OutputTree.refuseOnWindows(p, p)), p);
    }
  }
}
