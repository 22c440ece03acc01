package dev.aoepack.net;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.aoepack.AoeException;
import dev.aoepack.internal.Codec;
import java.io.File;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BundleDownloadTest {
  private static final String PATH = "bundles/b.aoe";
  private static final String NAME = "tag-1.0.0.aoe";
  private static final TransferLimits FAST = new TransferLimits(5000, 5000, 1024, 300);

  @TempDir Path tmp;
  private final byte[] bundle = bytes(200_000, 1);
  private final byte[] other = bytes(200_000, 2);
  private File folder;
  private Served served;
  private RawServer server;

  /** A file served with an ETag, honouring Range and If-Range unless told otherwise. */
  private static final class Served {
    volatile byte[] body;
    volatile String etag = "\"v1\"";
    volatile int cutAfter = -1; // the next answer stops after this many body bytes
    volatile boolean ignoreRange;
    volatile String rangeAnswer; // a Content-Range to send instead of the right one
    volatile boolean answer416;
    volatile int dripMillis;

    void handle(Map<String, String> h, OutputStream out) throws IOException {
      byte[] b = body;
      String range = h.get("range");
      boolean sameVersion = etag.equals(h.get("if-range"));
      int from = 0;
      if (range != null && answer416) {
        RawServer.head(out, "416 Range Not Satisfiable", "Content-Length: 0");
        answer416 = false;
        return;
      }
      if (range != null && sameVersion && !ignoreRange) {
        from = Integer.parseInt(range.substring("bytes=".length(), range.length() - 1));
        String cr = rangeAnswer != null ? rangeAnswer : "bytes " + from + "-" + (b.length - 1) + "/" + b.length;
        RawServer.head(out, "206 Partial Content", "ETag: " + etag, "Content-Range: " + cr,
            "Content-Length: " + (b.length - from));
      } else {
        RawServer.head(out, "200 OK", "ETag: " + etag, "Content-Length: " + b.length);
      }
      int end = b.length;
      if (cutAfter >= 0) {
        end = Math.min(end, from + cutAfter);
        cutAfter = -1;
      }
      if (dripMillis > 0) {
        for (int i = from; i < end; i++) {
          out.write(b[i]);
          out.flush();
          try {
            Thread.sleep(dripMillis);
          } catch (InterruptedException e) {
            throw new IOException(e);
          }
        }
      } else {
        out.write(b, from, end - from);
      }
    }
  }

  @BeforeEach
  void start() throws Exception {
    folder = tmp.resolve("downloads").toFile();
    served = new Served();
    served.body = bundle;
    server = new RawServer(served::handle);
  }

  @AfterEach
  void stop() throws Exception {
    server.close();
  }

  private static byte[] bytes(int n, long seed) {
    byte[] b = new byte[n];
    new Random(seed).nextBytes(b);
    return b;
  }

  private static String sha(byte[] b) throws Exception {
    return Codec.hex(MessageDigest.getInstance("SHA-256").digest(b));
  }

  private File download() throws Exception {
    return BundleDownload.download(server.fetcher(FAST), PATH, bundle.length, sha(bundle), folder, NAME);
  }

  private String failure() {
    return assertThrows(AoeException.class, this::download).code();
  }

  private File part() {
    return new File(folder, NAME + ".part");
  }

  @Test
  void aBundleIsDownloadedMatchedAndRenamedIntoPlace() throws Exception {
    File got = download();
    assertArrayEquals(bundle, Files.readAllBytes(got.toPath()));
    assertEquals(new File(folder, NAME), got);
    assertFalse(part().exists());
    assertFalse(new File(folder, NAME + ".part.json").exists());
    assertEquals("identity", server.requests.get(0).get("accept-encoding"));
  }

  @Test
  void aCutDownloadResumesWhereItStoppedAndTheDigestMatches() throws Exception {
    served.cutAfter = 70_000;
    assertEquals("download", failure());
    assertEquals(70_000, part().length());
    assertFalse(new File(folder, NAME).exists());
    File got = download();
    assertArrayEquals(bundle, Files.readAllBytes(got.toPath()));
    Map<String, String> second = server.requests.get(1);
    assertEquals("bytes=70000-", second.get("range"));
    assertEquals("\"v1\"", second.get("if-range"));
  }

  @Test
  void aServerIgnoringRangeRestartsFromZero() throws Exception {
    served.cutAfter = 70_000;
    failure();
    served.ignoreRange = true;
    assertArrayEquals(bundle, Files.readAllBytes(download().toPath()));
    assertEquals("bytes=70000-", server.requests.get(1).get("range"));
    assertEquals(2, server.requests.size());
  }

  @Test
  void aChangedETagRestartsWithTheNewFile() throws Exception {
    served.body = other; // an older file was being served when the cut happened
    served.cutAfter = 70_000;
    failure();
    served.body = bundle;
    served.etag = "\"v2\"";
    assertArrayEquals(bundle, Files.readAllBytes(download().toPath()));
    assertEquals(2, server.requests.size());
  }

  @Test
  void aRangeAnswerForAnotherRangeDiscardsThePartialFileAndRestarts() throws Exception {
    served.cutAfter = 70_000;
    failure();
    served.rangeAnswer = "bytes 0-199999/200000";
    assertArrayEquals(bundle, Files.readAllBytes(download().toPath()));
    assertEquals(3, server.requests.size());
    assertNull(server.requests.get(2).get("range"));
  }

  @Test
  void a416DiscardsThePartialFileAndRestarts() throws Exception {
    served.cutAfter = 70_000;
    failure();
    served.answer416 = true;
    assertArrayEquals(bundle, Files.readAllBytes(download().toPath()));
    assertEquals(3, server.requests.size());
  }

  @Test
  void aPartialFileWithoutItsRecordIsNeverAppendedTo() throws Exception {
    served.cutAfter = 70_000;
    failure();
    assertTrue(new File(folder, NAME + ".part.json").delete());
    assertArrayEquals(bundle, Files.readAllBytes(download().toPath()));
    assertNull(server.requests.get(1).get("range"));
  }

  @Test
  void aDigestMismatchIsBundleMismatchAndTheFileIsDeleted() throws Exception {
    served.body = other;
    assertEquals("bundle-mismatch", failure());
    assertFalse(new File(folder, NAME).exists());
    assertFalse(part().exists());
  }

  @Test
  void aShorterFileIsBundleMismatch() throws Exception {
    served.body = java.util.Arrays.copyOf(bundle, 1000);
    assertEquals("bundle-mismatch", failure());
    assertFalse(new File(folder, NAME).exists());
  }

  @Test
  void aLongerFileIsTooLargeBeforeReadingAndNoPartialFileStays() throws Exception {
    served.body = java.util.Arrays.copyOf(bundle, bundle.length + 1);
    assertEquals("download-too-large", failure());
    assertFalse(part().exists());
  }

  @Test
  void aBodyLongerThanItsSignedSizeIsCutOneBytePastIt() throws Exception {
    try (RawServer liar = new RawServer((h, out) -> {
      RawServer.head(out, "200 OK", "ETag: \"x\""); // no length: read until the connection closes
      out.write(bundle);
      out.write(new byte[100_000]);
    })) {
      AoeException e = assertThrows(AoeException.class, () ->
          BundleDownload.download(liar.fetcher(FAST), PATH, bundle.length, sha(bundle), folder, NAME));
      assertEquals("download-too-large", e.code());
      assertFalse(part().exists());
    }
  }

  @Test
  void aTooSlowDownloadKeepsItsPartialFileAndTheNextOneResumes() throws Exception {
    served.body = java.util.Arrays.copyOf(bundle, bundle.length);
    served.cutAfter = -1;
    served.dripMillis = 0;
    try (RawServer slow = new RawServer((h, out) -> {
      if (h.get("range") == null) {
        RawServer.head(out, "200 OK", "ETag: \"v1\"", "Content-Length: " + bundle.length);
        out.write(bundle, 0, 1000);
        out.flush();
        try {
          Thread.sleep(5000); // then nothing: far below 1 KiB/s once the grace period ends
        } catch (InterruptedException e) {
          throw new IOException(e);
        }
      } else {
        served.handle(h, out);
      }
    })) {
      HttpFetcher http = slow.fetcher(FAST);
      AoeException e = assertThrows(AoeException.class,
          () -> BundleDownload.download(http, PATH, bundle.length, sha(bundle), folder, NAME));
      assertEquals("download-too-slow", e.code());
      assertEquals(1000, part().length());
      File got = BundleDownload.download(http, PATH, bundle.length, sha(bundle), folder, NAME);
      assertArrayEquals(bundle, Files.readAllBytes(got.toPath()));
      assertEquals("bytes=1000-", slow.requests.get(1).get("range"));
    }
  }

  @Test
  void aMissingBundleIsADownloadError() throws Exception {
    try (RawServer gone = new RawServer((h, out) -> RawServer.head(out, "404 Not Found", "Content-Length: 0"))) {
      assertEquals("download", assertThrows(AoeException.class, () ->
          BundleDownload.download(gone.fetcher(FAST), PATH, bundle.length, sha(bundle), folder, NAME)).code());
    }
  }

  @Test
  void aCompleteMatchingBundleIsUsedAgainWithoutARequest() throws Exception {
    download();
    download();
    assertEquals(1, server.requests.size());
  }

  @Test
  void aBundleIsCopiedFromAFolderRepository() throws Exception {
    Path repo = Files.createDirectories(tmp.resolve("repo/bundles"));
    Files.write(repo.resolve("b.aoe"), bundle);
    FolderFetcher local = new FolderFetcher(tmp.resolve("repo").toFile());
    File got = BundleDownload.download(local, PATH, bundle.length, sha(bundle), folder, NAME);
    assertArrayEquals(bundle, Files.readAllBytes(got.toPath()));
    assertEquals("store", assertThrows(AoeException.class, () ->
        BundleDownload.download(local, "bundles/none.aoe", 1, sha(bundle), folder, "x.aoe")).code());
    assertEquals("store", assertThrows(AoeException.class, () ->
        BundleDownload.download(local, "../secret.aoe", 1, sha(bundle), folder, "x.aoe")).code());
  }

  @Test
  void aFolderBundleOverItsSignedSizeIsTooLarge() throws Exception {
    Path repo = Files.createDirectories(tmp.resolve("repo/bundles"));
    Files.write(repo.resolve("b.aoe"), bundle);
    FolderFetcher local = new FolderFetcher(tmp.resolve("repo").toFile());
    assertEquals("download-too-large", assertThrows(AoeException.class, () ->
        BundleDownload.download(local, PATH, 1000, sha(bundle), folder, NAME)).code());
    assertFalse(part().exists());
  }
}
