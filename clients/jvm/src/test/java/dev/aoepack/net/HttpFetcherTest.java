package dev.aoepack.net;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.aoepack.AoeException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class HttpFetcherTest {
  private static final byte[] DOC = "{\"a\":1}".getBytes(StandardCharsets.UTF_8);
  /** Limits that make the time tests fast: 1 KiB/s after 300 ms, a 5 s deadline. */
  private static final TransferLimits FAST = new TransferLimits(5000, 5000, 1024, 300);

  private final TestServer server = TestServer.start();

  @AfterEach
  void stop() {
    server.close();
  }

  private static String code(org.junit.jupiter.api.function.Executable call) {
    return assertThrows(AoeException.class, call).code();
  }

  @Test
  void aDocumentIsFetchedAsSentAskingForGzipAndNamingNoCopy() throws Exception {
    server.file("index.json", DOC);
    assertArrayEquals(DOC, server.fetcher().fetch("index.json", 100));
    assertEquals("gzip", server.requests.get(0).acceptEncoding());
    assertNull(server.requests.get(0).ifNoneMatch());
    assertNull(server.requests.get(0).ifModifiedSince());
  }

  @Test
  void aDocumentOfExactlyTheCapIsAccepted() throws Exception {
    server.file("index.json", DOC);
    assertArrayEquals(DOC, server.fetcher().fetch("index.json", DOC.length));
  }

  @ParameterizedTest
  @ValueSource(ints = {404, 410})
  void notFoundAndGoneMeanNoSuchFile(int status) throws Exception {
    server.on("index.json", ex -> TestServer.send(ex, status, DOC));
    assertNull(server.fetcher().fetch("index.json", 100));
  }

  @Test
  void aMissingPathIsNull() throws Exception {
    assertNull(server.fetcher().fetch("tags/t/1.json", 100));
  }

  @ParameterizedTest
  @ValueSource(ints = {500, 403, 304, 204, 206})
  void anyOtherStatusIsADownloadError(int status) throws Exception {
    server.on("index.json", ex -> TestServer.send(ex, status, status == 204 || status == 304 ? new byte[0] : DOC));
    assertEquals("download", code(() -> server.fetcher().fetch("index.json", 100)));
  }

  @Test
  void contentLengthOverTheCapIsRefusedBeforeReading() throws Exception {
    server.file("index.json", new byte[1000]);
    AoeException e = assertThrows(AoeException.class, () -> server.fetcher().fetch("index.json", 999));
    assertEquals("download-too-large", e.code());
    assertTrue(e.getMessage().contains("announces 1000 bytes"), e.getMessage());
  }

  @Test
  void aChunkedBodyOverTheCapStopsOneBytePastIt() throws Exception {
    server.on("index.json", ex -> {
      ex.sendResponseHeaders(200, 0); // chunked: no Content-Length
      try (OutputStream out = ex.getResponseBody()) {
        out.write(new byte[5000]);
      }
    });
    AoeException e = assertThrows(AoeException.class, () -> server.fetcher().fetch("index.json", 4999));
    assertEquals("download-too-large", e.code());
    assertTrue(e.getMessage().contains("the cap"), e.getMessage());
  }

  @Test
  void anEndlessChunkedBodyIsCutAtTheCap() throws Exception {
    server.on("index.json", ex -> {
      ex.sendResponseHeaders(200, 0);
      OutputStream out = ex.getResponseBody();
      while (true) {
        out.write(new byte[65536]);
      }
    });
    assertEquals("download-too-large", code(() -> server.fetcher().fetch("index.json", 1 << 20)));
  }

  @Test
  void aBodyEndingBeforeItsContentLengthIsADownloadError() throws Exception {
    try (RawServer raw = new RawServer((headers, out) -> {
      RawServer.head(out, "200 OK", "Content-Length: 1000");
      out.write(new byte[400]); // and the connection closes
    })) {
      assertEquals("download", code(() -> raw.fetcher(FAST).fetch("index.json", 1000)));
    }
  }

  @Test
  void aMalformedContentLengthIsADownloadError() throws Exception {
    server.on("index.json", ex -> {
      ex.getResponseHeaders().add("Content-Length", "12abc");
      ex.sendResponseHeaders(200, 0);
      ex.getResponseBody().write(DOC);
    });
    assertEquals("download", code(() -> server.fetcher().fetch("index.json", 100)));
  }

  @Test
  void aBrotliBodyIsRefusedSinceOnlyGzipWasAskedFor() throws Exception {
    server.on("index.json", ex -> {
      ex.getResponseHeaders().add("Content-Encoding", "br");
      TestServer.send(ex, 200, DOC);
    });
    assertEquals("download", code(() -> server.fetcher().fetch("index.json", 100)));
  }

  @Test
  void aServerDrippingBytesFallsBelowTheMinimumRate() throws Exception {
    server.on("index.json", ex -> {
      ex.sendResponseHeaders(200, 100_000);
      OutputStream out = ex.getResponseBody();
      for (int i = 0; i < 100_000; i++) {
        out.write('x');
        out.flush();
        Thread.sleep(20);
      }
    });
    long start = System.nanoTime();
    AoeException e = assertThrows(AoeException.class, () -> server.fetcher(FAST).fetch("index.json", 100_000));
    assertEquals("download-too-slow", e.code());
    assertTrue(e.getMessage().contains("minimum average rate"), e.getMessage());
    assertTrue(System.nanoTime() - start < 3_000_000_000L, "stopped at the rate limit, not later");
  }

  @Test
  void aDownloadPastItsDeadlineStopsWhileBytesStillArrive() throws Exception {
    server.on("index.json", ex -> {
      ex.sendResponseHeaders(200, 0);
      OutputStream out = ex.getResponseBody();
      while (true) {
        out.write(new byte[2048]); // fast enough for the rate, endless in time
        out.flush();
        Thread.sleep(10);
      }
    });
    TransferLimits limits = new TransferLimits(5000, 400, 1024, 300);
    AoeException e = assertThrows(AoeException.class, () -> server.fetcher(limits).fetch("index.json", 1L << 40));
    assertEquals("download-too-slow", e.code());
    assertTrue(e.getMessage().contains("deadline"), e.getMessage());
  }

  @Test
  void headersThatNeverArriveStopAtTheDeadlineNotTheIdleTimeout() throws Exception {
    server.on("index.json", ex -> Thread.sleep(10_000));
    TransferLimits limits = new TransferLimits(10_000, 300, 0, 0);
    long start = System.nanoTime();
    AoeException e = assertThrows(AoeException.class, () -> server.fetcher(limits).fetch("index.json", 100));
    assertEquals("download-too-slow", e.code());
    assertTrue(System.nanoTime() - start < 3_000_000_000L);
  }

  @Test
  void aBodyThatStopsMidwayStopsAtTheDeadlineNotTheIdleTimeout() throws Exception {
    // A mobile link gone dead: headers and some body, then nothing, the connection open. The
    // watchdog's disconnect cannot end the blocked read; its timeout must.
    server.on("index.json", ex -> {
      ex.sendResponseHeaders(200, 100_000);
      ex.getResponseBody().write(new byte[10_000]);
      ex.getResponseBody().flush();
      Thread.sleep(40_000);
    });
    TransferLimits limits = new TransferLimits(30_000, 800, 0, 0);
    long start = System.nanoTime();
    AoeException e = assertThrows(AoeException.class, () -> server.fetcher(limits).fetch("index.json", 1L << 20));
    assertEquals("download-too-slow", e.code());
    assertTrue(e.getMessage().contains("deadline"), e.getMessage());
    // Far below the 30 s idle timeout, with room for a loaded machine.
    assertTrue(System.nanoTime() - start < 10_000_000_000L, "stopped at the deadline, not the idle timeout");
  }

  @Test
  void aServerThatStopsSendingTripsTheIdleTimeout() throws Exception {
    server.on("index.json", ex -> {
      ex.sendResponseHeaders(200, 100);
      ex.getResponseBody().write(new byte[10]);
      ex.getResponseBody().flush();
      Thread.sleep(10_000);
    });
    TransferLimits limits = new TransferLimits(300, 10_000, 0, 0);
    assertEquals("download", code(() -> server.fetcher(limits).fetch("index.json", 100)));
  }

  @Test
  void aRedirectIsFollowedWithinTheRepository() throws Exception {
    server.on("index.json", ex -> {
      ex.getResponseHeaders().add("Location", "/repo/moved.json");
      TestServer.send(ex, 302, new byte[0]);
    });
    server.file("moved.json", DOC);
    assertArrayEquals(DOC, server.fetcher().fetch("index.json", 100));
  }

  @Test
  void aRedirectToAnotherSchemeIsRefused() throws Exception {
    server.on("index.json", ex -> {
      ex.getResponseHeaders().add("Location", "file:///etc/passwd");
      TestServer.send(ex, 301, new byte[0]);
    });
    assertEquals("download", code(() -> server.fetcher().fetch("index.json", 100)));
  }

  @Test
  void aRedirectFromHttpsToHttpIsRefused() {
    AoeException e = assertThrows(AoeException.class,
        () -> HttpCall.redirect("https://models.example.com/repo/index.json", "http://models.example.com/x"));
    assertEquals("download", e.code());
  }

  @Test
  void aRedirectLoopStopsAfterFourHops() throws Exception {
    server.on("index.json", ex -> {
      ex.getResponseHeaders().add("Location", "/repo/index.json");
      TestServer.send(ex, 307, new byte[0]);
    });
    assertEquals("download", code(() -> server.fetcher().fetch("index.json", 100)));
    assertEquals(5, server.requests.size());
  }

  @ParameterizedTest
  @ValueSource(strings = {"../index.json", "/etc/passwd", "a//b", "a/./b", "", "a\\b", "tags/..", "c:x"})
  void aNameThatCouldLeaveTheRepositoryIsRefused(String name) throws Exception {
    assertEquals("store", code(() -> server.fetcher().fetch(name, 100)));
    assertTrue(server.requests.isEmpty());
  }

  @Test
  void otherCharactersOfANameArePercentEncoded() throws Exception {
    server.file("a%20b%3F.json", DOC);
    assertArrayEquals(DOC, server.fetcher().fetch("a b?.json", 100));
  }

  @Test
  void plainHttpNeedsTheAppsConsent() {
    AoeException e = assertThrows(AoeException.class,
        () -> HttpFetcher.builder("http://127.0.0.1:1/repo/").build());
    assertEquals("usage", e.code());
  }

  @ParameterizedTest
  @ValueSource(strings = {"https://h/repo?x=1", "https://h/repo#f", "https://u:p@h/repo", "https://h/a/../b",
      "https://h//b", "ftp://h/repo", "https://h/r e", "models.example.com/repo", "https:///repo"})
  void aBaseUrlThatIsNotARepositoryAddressIsAUsageError(String url) {
    assertEquals("usage", code(() -> HttpFetcher.builder(url).allowCleartextHttp(true).build()));
  }

  @Test
  void anHttpsBaseUrlGetsATrailingSlash() throws Exception {
    assertEquals("https://models.example.com/repo/",
        HttpFetcher.builder("https://models.example.com/repo").build().baseUrl());
  }
}
