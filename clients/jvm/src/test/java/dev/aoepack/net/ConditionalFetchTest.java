package dev.aoepack.net;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.aoepack.AoeException;
import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.zip.GZIPOutputStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Conditional requests and gzip bodies of documents (docs/format.md §15.1). */
class ConditionalFetchTest {
  private static final byte[] DOC = "{\"a\":1}".getBytes(StandardCharsets.UTF_8);
  private static final String ETAG = "\"5f3c-1a\"";
  private static final String DATE = "Sun, 06 Nov 1994 08:49:37 GMT";
  private static final Validators HELD = new Validators(ETAG, DATE);

  private final TestServer server = TestServer.start();

  @AfterEach
  void stop() {
    server.close();
  }

  private static String code(org.junit.jupiter.api.function.Executable call) {
    return assertThrows(AoeException.class, call).code();
  }

  /** Answers 304 when the request names {@link #ETAG}, else the document with validators. */
  private void revalidating(byte[] body) {
    server.on("index.json", ex -> {
      if (ETAG.equals(ex.getRequestHeaders().getFirst("If-None-Match"))) {
        ex.sendResponseHeaders(304, -1);
        return;
      }
      ex.getResponseHeaders().add("ETag", ETAG);
      ex.getResponseHeaders().add("Last-Modified", DATE);
      TestServer.send(ex, 200, body);
    });
  }

  static byte[] gzip(byte[] data) throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (GZIPOutputStream z = new GZIPOutputStream(out)) {
      z.write(data);
    }
    return out.toByteArray();
  }

  private void gzipped(byte[] body) {
    server.on("index.json", ex -> {
      ex.getResponseHeaders().add("Content-Encoding", "gzip");
      TestServer.send(ex, 200, body);
    });
  }

  @Test
  void aNewAnswerCarriesItsValidators() throws Exception {
    revalidating(DOC);
    Fetched got = server.fetcher().fetch("index.json", 100, null);
    assertFalse(got.notModified());
    assertArrayEquals(DOC, got.data());
    assertEquals(HELD, got.validators());
  }

  @Test
  void theHeldValidatorsGoOutAndA304MeansTheHeldCopy() throws Exception {
    revalidating(DOC);
    Fetched got = server.fetcher().fetch("index.json", 100, HELD);
    assertTrue(got.notModified());
    assertNull(got.data());
    assertEquals(HELD, got.validators());
    TestServer.Request sent = server.requests.get(0);
    assertEquals(ETAG, sent.ifNoneMatch());
    assertEquals(DATE, sent.ifModifiedSince());
  }

  @Test
  void a304ToAnUnconditionalRequestIsADownloadError() throws Exception {
    server.on("index.json", ex -> ex.sendResponseHeaders(304, -1));
    assertEquals("download", code(() -> server.fetcher().fetch("index.json", 100, null)));
    assertEquals("download", code(() -> server.fetcher().fetch("index.json", 100, Validators.NONE)));
    assertEquals("download", code(() -> server.fetcher().fetch("index.json", 100)));
  }

  @Test
  void a304ToARequestWhoseValidatorsWereMalformedIsADownloadError() throws Exception {
    server.on("index.json", ex -> ex.sendResponseHeaders(304, -1));
    Validators bad = new Validators("no-quotes", "yesterday");
    assertTrue(bad.isEmpty());
    assertEquals("download", code(() -> server.fetcher().fetch("index.json", 100, bad)));
    assertNull(server.requests.get(0).ifNoneMatch());
    assertNull(server.requests.get(0).ifModifiedSince());
  }

  @ParameterizedTest
  @ValueSource(strings = {
    "\"a\nb\"", "\"a\"b\"", "W/\"x\" ", "\"\u00e9\"", "x\"y\"", "", "W/x",
  })
  void malformedEtagsAreNeverSent(String etag) throws Exception {
    revalidating(DOC);
    Fetched got = server.fetcher().fetch("index.json", 100, new Validators(etag, DATE));
    assertFalse(got.notModified()); // only If-Modified-Since went out, which this server ignores
    assertNull(server.requests.get(0).ifNoneMatch());
    assertEquals(DATE, server.requests.get(0).ifModifiedSince());
  }

  @ParameterizedTest
  @ValueSource(strings = {
    "Mon, 06 Nov 1994 08:49:37 GMT", // the wrong weekday
    "Sun, 31 Nov 1994 08:49:37 GMT", // no such day
    "Sun, 06 Nov 1994 25:49:37 GMT",
    "Sunday, 06-Nov-94 08:49:37 GMT", // obsolete RFC 850 form: not kept
    "Sun Nov  6 08:49:37 1994",
    "Sun, 06 Nov 1994 08:49:37 GMT\r\nX-Evil: 1",
  })
  void malformedDatesAreNeverSent(String date) throws Exception {
    assertNull(new Validators(null, date).lastModified());
  }

  @Test
  void aValidatorLongerThan256CharactersIsNotKept() {
    assertNull(new Validators("\"" + "a".repeat(255) + "\"", null).etag());
    assertEquals(256, new Validators("\"" + "a".repeat(254) + "\"", null).etag().length());
  }

  @Test
  void weakEtagsAreSent() throws Exception {
    revalidating(DOC);
    server.fetcher().fetch("index.json", 100, new Validators("W/\"1\"", null));
    assertEquals("W/\"1\"", server.requests.get(0).ifNoneMatch());
  }

  @Test
  void validatorsGivenTwiceAreNotKept() throws Exception {
    server.on("index.json", ex -> {
      ex.getResponseHeaders().add("ETag", "\"1\"");
      ex.getResponseHeaders().add("ETag", "\"2\"");
      TestServer.send(ex, 200, DOC);
    });
    assertTrue(server.fetcher().fetch("index.json", 100, null).validators().isEmpty());
  }

  @Test
  void a200ToAConditionalRequestIsANewAnswerEvenWithTheSameBytes() throws Exception {
    server.on("index.json", ex -> {
      ex.getResponseHeaders().add("ETag", "\"new\"");
      TestServer.send(ex, 200, DOC);
    });
    Fetched got = server.fetcher().fetch("index.json", 100, HELD);
    assertFalse(got.notModified());
    assertArrayEquals(DOC, got.data());
    assertEquals("\"new\"", got.validators().etag());
  }

  @Test
  void a304ToABundleRequestIsADownloadError() throws Exception {
    server.on("bundles/b.aoe", ex -> ex.sendResponseHeaders(304, -1));
    java.io.File dir = java.nio.file.Files.createTempDirectory("aoe-304").toFile();
    assertEquals("download", code(() -> BundleDownload.download(
        server.fetcher(), "bundles/b.aoe", 100, "00".repeat(32), dir, "b.aoe")));
  }

  @Test
  void aGzipBodyIsInflated() throws Exception {
    gzipped(gzip(DOC));
    assertArrayEquals(DOC, server.fetcher().fetch("index.json", 100));
  }

  @Test
  void aGzipBodyWithAHeaderNameCommentExtraAndHeaderCrcIsInflated() throws Exception {
    byte[] plain = gzip(DOC);
    // FEXTRA, FNAME, FCOMMENT, FHCRC: rebuild the header by hand around the same deflate data.
    ByteArrayOutputStream h = new ByteArrayOutputStream();
    h.write(new byte[] {0x1f, (byte) 0x8b, 8, 2 | 4 | 8 | 16, 0, 0, 0, 0, 0, 3});
    h.write(new byte[] {3, 0, 'x', 'y', 'z'});
    h.write("name\0".getBytes(StandardCharsets.US_ASCII));
    h.write("comment\0".getBytes(StandardCharsets.US_ASCII));
    java.util.zip.CRC32 crc = new java.util.zip.CRC32();
    crc.update(h.toByteArray());
    h.write((int) crc.getValue() & 0xff);
    h.write((int) (crc.getValue() >> 8) & 0xff);
    h.write(plain, 10, plain.length - 10);
    gzipped(h.toByteArray());
    assertArrayEquals(DOC, server.fetcher().fetch("index.json", 100));
  }

  @Test
  void theCapAppliesToTheInflatedBytes() throws Exception {
    byte[] big = new byte[1000];
    Arrays.fill(big, (byte) 'a');
    gzipped(gzip(big));
    assertArrayEquals(big, server.fetcher().fetch("index.json", 1000));
    assertEquals("download-too-large", code(() -> server.fetcher().fetch("index.json", 999)));
  }

  @Test
  void aGzipBombIsDownloadTooLarge() throws Exception {
    byte[] bomb = gzip(new byte[64 << 20]); // 64 MiB of zeros in about 64 KiB
    assertTrue(bomb.length < 100_000);
    gzipped(bomb);
    AoeException e = assertThrows(AoeException.class, () -> server.fetcher().fetch("index.json", 4 << 20));
    assertEquals("download-too-large", e.code());
    assertTrue(e.getMessage().contains("inflates to more than"), e.getMessage());
  }

  @Test
  void compressedBytesPastTheirBoundAreDownloadTooLarge() throws Exception {
    // A header comment inflates to nothing: only the bound on the wire stops it.
    ByteArrayOutputStream body = new ByteArrayOutputStream();
    body.write(new byte[] {0x1f, (byte) 0x8b, 8, 16, 0, 0, 0, 0, 0, 3});
    body.write(new byte[3000]); // a comment that never ends within the bound
    server.on("index.json", ex -> {
      ex.getResponseHeaders().add("Content-Encoding", "gzip");
      ex.sendResponseHeaders(200, 0); // chunked: no length announced
      try (OutputStream out = ex.getResponseBody()) {
        out.write(body.toByteArray());
      }
    });
    assertEquals("download-too-large", code(() -> server.fetcher().fetch("index.json", 100)));
  }

  @Test
  void anAnnouncedCompressedLengthPastTheBoundIsRefusedBeforeReading() throws Exception {
    gzipped(new byte[2000]);
    AoeException e = assertThrows(AoeException.class, () -> server.fetcher().fetch("index.json", 100));
    assertEquals("download-too-large", e.code());
    assertTrue(e.getMessage().contains("announces 2000 compressed bytes"), e.getMessage());
  }

  @Test
  void aTruncatedGzipBodyIsADownloadError() throws Exception {
    byte[] z = gzip(DOC);
    gzipped(Arrays.copyOf(z, z.length - 3));
    assertEquals("download", code(() -> server.fetcher().fetch("index.json", 100)));
  }

  @Test
  void bytesAfterTheGzipMemberAreADownloadError() throws Exception {
    byte[] z = gzip(DOC);
    byte[] two = Arrays.copyOf(z, z.length * 2);
    System.arraycopy(z, 0, two, z.length, z.length); // a second member
    gzipped(two);
    assertEquals("download", code(() -> server.fetcher().fetch("index.json", 100)));
  }

  @Test
  void aGzipBodyFailingItsCrcIsADownloadError() throws Exception {
    byte[] z = gzip(DOC);
    z[z.length - 8] ^= 1;
    gzipped(z);
    assertEquals("download", code(() -> server.fetcher().fetch("index.json", 100)));
  }

  @Test
  void aBodyThatIsNotGzipIsADownloadError() throws Exception {
    gzipped(DOC);
    assertEquals("download", code(() -> server.fetcher().fetch("index.json", 100)));
  }

  @ParameterizedTest
  @ValueSource(strings = {"gzip, gzip", "deflate", "gzip, br", "x-gzip"})
  void anotherOrAStackOfCodingsIsADownloadError(String coding) throws Exception {
    server.on("index.json", ex -> {
      ex.getResponseHeaders().add("Content-Encoding", coding);
      TestServer.send(ex, 200, gzip(DOC));
    });
    assertEquals("download", code(() -> server.fetcher().fetch("index.json", 100)));
  }

  @Test
  void identityStillWorks() throws Exception {
    server.on("index.json", ex -> {
      ex.getResponseHeaders().add("Content-Encoding", "identity");
      TestServer.send(ex, 200, DOC);
    });
    assertArrayEquals(DOC, server.fetcher().fetch("index.json", 100));
  }
}
