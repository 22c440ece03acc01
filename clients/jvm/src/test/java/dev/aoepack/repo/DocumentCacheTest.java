package dev.aoepack.repo;

import static dev.aoepack.repo.TestRepository.entry;
import static dev.aoepack.repo.TestRepository.envelope;
import static dev.aoepack.repo.TestRepository.map;
import static dev.aoepack.repo.TestRepository.release;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.aoepack.AoeException;
import dev.aoepack.internal.Codec;
import dev.aoepack.net.HttpFetcher;
import dev.aoepack.net.Validators;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.zip.GZIPOutputStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The device's document cache and conditional requests (§15.1, §15.12) against a server that
 * revalidates as nginx does: what an unchanged check costs, and that nothing held is ever trusted
 * without the checks a downloaded document gets.
 */
class DocumentCacheTest {
  static final String TAG = "aoe-pack.test-vectors";
  static final String ID = "a0e0a0e0a0e0a0e0a0e0a0e0a0e0a0e0";
  static final String EXPIRES = "2026-02-01T00:00:00Z";
  static final long NOW = Timestamps.parseMillis("2026-01-01T00:00:00Z");
  static final long AFTER_EXPIRY = Timestamps.parseMillis("2026-02-01T00:00:01Z");
  static final String DATE = "Thu, 01 Jan 2026 00:00:00 GMT";

  static TestRepository.Key ed;
  static TestRepository.Key p256;

  @TempDir File tmp;
  TestRepository repo;
  File state;
  byte[] root1;
  long now = NOW;

  /** A static server: ETag and Last-Modified, 304 on a matching If-None-Match, gzip on request. */
  final class Server implements AutoCloseable {
    final HttpServer http;
    final ExecutorService pool = Executors.newCachedThreadPool();
    final List<String> log = new CopyOnWriteArrayList<>();
    final List<String> ifNoneMatch = new CopyOnWriteArrayList<>();
    /** Answer 304 to every conditional request, whatever it names: a frozen server or CDN. */
    volatile boolean notModifiedForever;
    volatile boolean gzip;

    Server() throws IOException {
      http = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
      http.setExecutor(pool);
      http.createContext("/", this::answer);
      http.start();
    }

    void answer(HttpExchange ex) throws IOException {
      try {
        String path = ex.getRequestURI().getRawPath().substring("/repo/".length());
        String inm = ex.getRequestHeaders().getFirst("If-None-Match");
        ifNoneMatch.add(path + " " + inm);
        File f = new File(repo.dir, path);
        if (!f.isFile()) {
          reply(ex, path, 404, new byte[0]);
          return;
        }
        byte[] body = Files.readAllBytes(f.toPath());
        String etag = "\"" + SignedDocument.sha256Hex(body).substring(0, 16) + "\"";
        boolean conditional = inm != null || ex.getRequestHeaders().getFirst("If-Modified-Since") != null;
        if ((notModifiedForever && conditional) || etag.equals(inm)) {
          reply(ex, path, 304, new byte[0]);
          return;
        }
        ex.getResponseHeaders().add("ETag", etag);
        ex.getResponseHeaders().add("Last-Modified", DATE);
        String accept = ex.getRequestHeaders().getFirst("Accept-Encoding");
        if (gzip && accept != null && accept.contains("gzip")) {
          ByteArrayOutputStream z = new ByteArrayOutputStream();
          try (GZIPOutputStream out = new GZIPOutputStream(z)) {
            out.write(body);
          }
          ex.getResponseHeaders().add("Content-Encoding", "gzip");
          body = z.toByteArray();
        }
        reply(ex, path, 200, body);
      } finally {
        ex.close();
      }
    }

    void reply(HttpExchange ex, String path, int status, byte[] body) throws IOException {
      log.add(path + " " + status);
      ex.sendResponseHeaders(status, body.length == 0 ? -1 : body.length);
      try (OutputStream out = ex.getResponseBody()) {
        out.write(body);
      }
    }

    HttpFetcher fetcher() throws AoeException {
      return HttpFetcher.builder("http://127.0.0.1:" + http.getAddress().getPort() + "/repo/")
          .allowCleartextHttp(true).build();
    }

    /** The requests since the last call. */
    List<String> since() {
      List<String> got = new ArrayList<>(log);
      log.clear();
      return got;
    }

    @Override
    public void close() {
      http.stop(0);
      pool.shutdownNow();
    }
  }

  Server server;

  @BeforeAll
  static void keys() throws Exception {
    ed = TestRepository.vectorKey("ed25519");
    p256 = TestRepository.vectorKey("p256");
  }

  @BeforeEach
  void repository() throws Exception {
    File dir = new File(tmp, "repo");
    dir.mkdirs();
    repo = new TestRepository(dir);
    state = new File(tmp, "state/" + ID + ".json");
    root1 = envelope(SignedDocument.ROOT, TestRepository.root(1, 2, ID, ed, p256), ed, p256);
    repo.write("roots/1.root.json", root1);
    server = new Server();
  }

  @AfterEach
  void stop() {
    server.close();
  }

  File cache() {
    return new File(state.getPath() + ".cache");
  }

  /** Index {@code version} naming the tag's document {@code docVersion}, which holds {@code releases}. */
  void publish(long version, long docVersion, Object... releases) throws Exception {
    publishUntil(EXPIRES, version, docVersion, releases);
  }

  void publishUntil(String expires, long version, long docVersion, Object... releases) throws Exception {
    repo.write("tags/" + TAG + "/" + docVersion + ".json",
        envelope(SignedDocument.TAG, TestRepository.tagDocument(TAG, docVersion, entry(releases)), ed, p256));
    repo.write("index.json",
        envelope(SignedDocument.INDEX, TestRepository.index(version, expires, map(TAG, docVersion)), ed, p256));
  }

  Decision check() throws Exception {
    return UpdateChecker.builder().fetcher(server.fetcher()).trustedRoot(root1).stateFile(state)
        .clock(() -> now).build().check(device());
  }

  static Device device() throws AoeException {
    return Device.builder().tag(TAG).deviceId("device-1").appVersion("3.0.0").localVersion("0.9.0").build();
  }

  static String code(UpdateCheckerTest.ThrowingRunnable r) {
    return assertThrows(AoeException.class, r::run).code();
  }

  // --- what an unchanged check costs --------------------------------------------------------

  @Test
  void anUnchangedCheckCostsA404AndA304() throws Exception {
    publish(5, 5, release("1.0.0"));
    Decision first = check();
    assertEquals(List.of("roots/2.root.json 404", "index.json 200", "tags/" + TAG + "/5.json 200"), server.since());
    Decision again = check();
    assertEquals(List.of("roots/2.root.json 404", "index.json 304"), server.since());
    assertEquals(first.toJson(), again.toJson());
    assertTrue(server.ifNoneMatch.get(server.ifNoneMatch.size() - 1).startsWith("index.json \""));
  }

  @Test
  void aChangedIndexCostsTheIndexAndOnlyTheTagDocumentThatChanged() throws Exception {
    publish(5, 5, release("1.0.0"));
    check();
    server.since();
    // Another tag changed: a new index, the same document of this tag, not fetched.
    repo.write("index.json", envelope(SignedDocument.INDEX,
        TestRepository.index(6, EXPIRES, map(TAG, 5L, "other", 6L)), ed, p256));
    assertEquals("1.0.0", check().version());
    assertEquals(List.of("roots/2.root.json 404", "index.json 200"), server.since());
    publish(7, 7, release("1.0.0"), release("1.1.0"));
    assertEquals("1.1.0", check().version());
    assertEquals(List.of("roots/2.root.json 404", "index.json 200", "tags/" + TAG + "/7.json 200"), server.since());
  }

  @Test
  void gzipDocumentsAreVerifiedAsTheUncompressedBytes() throws Exception {
    server.gzip = true;
    publish(5, 5, release("1.0.0"));
    assertEquals("1.0.0", check().version());
    DocumentCache.CachedIndex held = DocumentCache.beside(state).index();
    assertArrayEquals(Files.readAllBytes(new File(repo.dir, "index.json").toPath()), held.data);
    assertEquals(List.of("roots/2.root.json 404", "index.json 200", "tags/" + TAG + "/5.json 200"), server.since());
    check();
    assertEquals(List.of("roots/2.root.json 404", "index.json 304"), server.since());
  }

  @Test
  void aFetcherWithoutConditionalRequestsStillSkipsTheHeldTagDocument() throws Exception {
    publish(5, 5, release("1.0.0"));
    List<String> read = new ArrayList<>();
    dev.aoepack.net.Fetcher folder = (path, max) -> {
      read.add(path);
      return repo.fetcher().fetch(path, max);
    };
    UpdateChecker c = UpdateChecker.builder().fetcher(folder).trustedRoot(root1).stateFile(state).clock(() -> now).build();
    c.check(device());
    read.clear();
    assertEquals("1.0.0", c.check(device()).version());
    assertEquals(List.of("roots/2.root.json", "index.json"), read);
  }

  // --- a 304 vouches for nothing ------------------------------------------------------------

  @Test
  void a304ToACheckThatHoldsNothingIsADownloadError() throws Exception {
    publish(5, 5, release("1.0.0"));
    server.http.removeContext("/");
    server.http.createContext("/", ex -> {
      server.reply(ex, "any", ex.getRequestURI().getPath().endsWith("2.root.json") ? 404 : 304, new byte[0]);
      ex.close();
    });
    assertEquals("download", code(this::check));
    assertFalse(cache().exists());
  }

  @Test
  void aHeldIndexThatHasSinceExpiredIsExpiredNotTrusted() throws Exception {
    publish(5, 5, release("1.0.0"));
    check();
    server.since();
    now = AFTER_EXPIRY; // the repository was not re-signed: the server still answers 304
    assertEquals("expired", code(this::check));
    // The held copy failed, so the index was read again, unconditionally: expired too.
    assertEquals(List.of("roots/2.root.json 404", "index.json 304", "index.json 200"), server.since());
  }

  @Test
  void a304ForeverIsAFreezeBoundedByTheHeldIndexsExpiry() throws Exception {
    publish(5, 5, release("1.0.0"));
    check();
    server.notModifiedForever = true;
    publishUntil("2027-01-01T00:00:00Z", 6, 6, release("1.0.0"), release("2.0.0")); // the repository moves on
    assertEquals("1.0.0", check().version()); // frozen: what the device held, nothing newer
    now = AFTER_EXPIRY;
    server.since();
    // After expiry the held index fails; the unconditional read gets the new one.
    assertEquals("2.0.0", check().version());
    assertEquals(List.of("roots/2.root.json 404", "index.json 304", "index.json 200",
        "tags/" + TAG + "/6.json 200"), server.since());
  }

  @Test
  void a304ForeverWithAnExpiredRepositoryIsExpired() throws Exception {
    publish(5, 5, release("1.0.0"));
    check();
    server.notModifiedForever = true;
    now = AFTER_EXPIRY;
    assertEquals("expired", code(this::check));
  }

  @Test
  void aHeldIndexBelowTheFloorIsRollbackNotTrusted() throws Exception {
    publish(5, 5, release("1.0.0"));
    check();
    byte[] held = Files.readAllBytes(new File(cache(), "index.json").toPath());
    publish(6, 6, release("1.0.0"), release("2.0.0"));
    assertEquals("2.0.0", check().version()); // floor 6
    // Someone puts index 5 back in the cache, and the server vouches for it with a 304.
    Files.write(new File(cache(), "index.json").toPath(), held);
    server.notModifiedForever = true;
    server.since();
    assertEquals("2.0.0", check().version()); // index 5 failed the floor: the real one was read
    assertEquals(List.of("roots/2.root.json 404", "index.json 304", "index.json 200"), server.since());
  }

  // --- a damaged cache is never trusted -------------------------------------------------------

  @Test
  void aTamperedCachedIndexIsRefetchedNeverTrusted() throws Exception {
    publish(5, 5, release("1.0.0"));
    check();
    // A newer index naming another document, signed by a key the root does not list.
    TestRepository.Key stranger = TestRepository.fresh();
    byte[] forged = envelope(SignedDocument.INDEX, TestRepository.index(9, EXPIRES, map(TAG, 9L)), stranger);
    Validators held = DocumentCache.beside(state).index().validators;
    Files.write(new File(cache(), "index.json").toPath(), DocumentCache.record(forged, held));
    server.notModifiedForever = true; // even a server that vouches for it
    server.since();
    assertEquals("1.0.0", check().version());
    assertEquals(List.of("roots/2.root.json 404", "index.json 304", "index.json 200"), server.since());
    assertEquals(5, ((DeviceState) DeviceState.read(state)[0]).floor.version);
    // And the next save put the real one back.
    assertArrayEquals(Files.readAllBytes(new File(repo.dir, "index.json").toPath()),
        DocumentCache.beside(state).index().data);
  }

  @Test
  void aCachedIndexWithAFlippedByteIsRefetched() throws Exception {
    publish(5, 5, release("1.0.0"));
    check();
    DocumentCache.CachedIndex held = DocumentCache.beside(state).index();
    byte[] data = held.data.clone();
    data[data.length / 2] ^= 1;
    Files.write(new File(cache(), "index.json").toPath(), DocumentCache.record(data, held.validators));
    server.notModifiedForever = true;
    assertEquals("1.0.0", check().version());
  }

  @Test
  void aTamperedCachedTagDocumentIsRefetchedNeverTrusted() throws Exception {
    publish(5, 5, release("1.0.0"));
    check();
    File held = new File(cache(), "tags/" + TAG + ".json");
    // The right tag and version, signed by a stranger, offering a release the repository never had.
    Files.write(held.toPath(), envelope(SignedDocument.TAG,
        TestRepository.tagDocument(TAG, 5, entry(release("9.0.0"))), TestRepository.fresh()));
    server.since();
    assertEquals("1.0.0", check().version());
    assertEquals(List.of("roots/2.root.json 404", "index.json 304", "tags/" + TAG + "/5.json 200"), server.since());
    // Another tag's document under this tag's name, validly signed: not used either.
    Files.write(held.toPath(), envelope(SignedDocument.TAG,
        TestRepository.tagDocument("other", 5, entry(release("9.0.0"))), ed, p256));
    assertEquals("1.0.0", check().version());
  }

  @Test
  void anUnreadableCacheRecordReadsAsNothingCached() throws Exception {
    publish(5, 5, release("1.0.0"));
    check();
    for (String junk : new String[] {"", "{", "[]", "{\"envelope\": 5}", "{\"envelope\": \"!!\"}"}) {
      Files.write(new File(cache(), "index.json").toPath(), junk.getBytes(StandardCharsets.UTF_8));
      server.since();
      assertEquals("1.0.0", check().version());
      assertEquals(List.of("roots/2.root.json 404", "index.json 200"), server.since(), junk);
    }
  }

  @Test
  void malformedHeldValidatorsAreNotSent() throws Exception {
    publish(5, 5, release("1.0.0"));
    check();
    byte[] data = DocumentCache.beside(state).index().data;
    String record = "{\"envelope\": \"" + Codec.base64(data) + "\", \"etag\": \"\\\"x\\\"\\r\\nX-Evil: 1\", "
        + "\"lastModified\": \"yesterday\"}";
    Files.write(new File(cache(), "index.json").toPath(), record.getBytes(StandardCharsets.UTF_8));
    server.ifNoneMatch.clear();
    server.notModifiedForever = true; // would answer 304 to any conditional request
    assertEquals("1.0.0", check().version());
    assertEquals(List.of("roots/2.root.json null", "index.json null"), server.ifNoneMatch);
  }

  @Test
  void aDeviceThatLosesTheHeldBytesDropsTheirValidators() throws Exception {
    publish(5, 5, release("1.0.0"));
    check();
    String etag = DocumentCache.beside(state).index().validators.etag();
    assertTrue(Validators.isEtag(etag));
    String record = "{\"etag\": \"" + etag.replace("\"", "\\\"") + "\", \"lastModified\": null}";
    Files.write(new File(cache(), "index.json").toPath(), record.getBytes(StandardCharsets.UTF_8));
    server.ifNoneMatch.clear();
    check();
    assertEquals(List.of("roots/2.root.json null", "index.json null"), server.ifNoneMatch);
  }

  // --- the folder ---------------------------------------------------------------------------

  @Test
  void theCacheHasTheReferencesLayoutAndOwnerOnlyModes() throws Exception {
    publish(5, 5, release("1.0.0"));
    check();
    byte[] index = Files.readAllBytes(new File(repo.dir, "index.json").toPath());
    byte[] record = Files.readAllBytes(new File(cache(), "index.json").toPath());
    String etag = "\\\"" + SignedDocument.sha256Hex(index).substring(0, 16) + "\\\"";
    assertEquals("{\"envelope\": \"" + Codec.base64(index) + "\", \"etag\": \"" + etag
        + "\", \"lastModified\": \"" + DATE + "\"}", new String(record, StandardCharsets.UTF_8));
    assertArrayEquals(Files.readAllBytes(new File(repo.dir, "tags/" + TAG + "/5.json").toPath()),
        Files.readAllBytes(new File(cache(), "tags/" + TAG + ".json").toPath()));
    assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(cache().toPath())));
    assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(new File(cache(), "tags").toPath())));
    assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(new File(cache(), "index.json").toPath())));
    assertEquals("rw-------", PosixFilePermissions.toString(
        Files.getPosixFilePermissions(new File(cache(), "tags/" + TAG + ".json").toPath())));
  }

  @Test
  void aLinkUnderACacheNameIsNotFollowedAndIsReplaced() throws Exception {
    publish(5, 5, release("1.0.0"));
    check();
    File outside = new File(tmp, "outside.json");
    byte[] record = Files.readAllBytes(new File(cache(), "index.json").toPath());
    Files.write(outside.toPath(), record); // a valid record, reached through a link
    File link = new File(cache(), "index.json");
    link.delete();
    Files.createSymbolicLink(link.toPath(), outside.toPath());
    server.since();
    check();
    assertEquals(List.of("roots/2.root.json 404", "index.json 200"), server.since()); // not read
    assertFalse(Files.isSymbolicLink(link.toPath())); // a file renamed over the link
    assertArrayEquals(record, Files.readAllBytes(outside.toPath())); // what it led to: untouched
  }

  @Test
  void aCacheFolderThatIsALinkIsNeitherReadNorWrittenThroughAndIsReplaced() throws Exception {
    publish(5, 5, release("1.0.0"));
    check();
    File elsewhere = new File(tmp, "elsewhere");
    Files.move(cache().toPath(), elsewhere.toPath());
    Files.createSymbolicLink(cache().toPath(), elsewhere.toPath());
    byte[] before = Files.readAllBytes(new File(elsewhere, "index.json").toPath());
    File planted = new File(elsewhere, "tags/" + TAG + ".json");
    planted.delete();
    server.since();
    check();
    assertEquals(List.of("roots/2.root.json 404", "index.json 200", "tags/" + TAG + "/5.json 200"), server.since());
    assertTrue(cache().isDirectory() && !Files.isSymbolicLink(cache().toPath()));
    assertArrayEquals(before, Files.readAllBytes(new File(elsewhere, "index.json").toPath()));
    assertFalse(planted.exists()); // nothing written through the link
  }

  @Test
  void aFifoUnderACacheNameNeverBlocksTheCheck() throws Exception {
    publish(5, 5, release("1.0.0"));
    check();
    File fifo = new File(cache(), "tags/" + TAG + ".json");
    fifo.delete();
    Process p = new ProcessBuilder("mkfifo", fifo.getPath()).start();
    assertEquals(0, p.waitFor());
    server.since();
    assertEquals("1.0.0", check().version()); // would block forever if it were opened
    assertEquals(List.of("roots/2.root.json 404", "index.json 304", "tags/" + TAG + "/5.json 200"), server.since());
    assertTrue(Files.isRegularFile(fifo.toPath())); // the save renamed a file over it
  }

  @Test
  void aCachedFileOverItsCapReadsAsNothingCached() throws Exception {
    File dir = new File(tmp, "c");
    DocumentCache cache = new DocumentCache(dir);
    dir.mkdirs();
    byte[] big = new byte[(int) (UpdateChecker.MAX_INDEX_BYTES * 4 / 3 + 4097)];
    java.util.Arrays.fill(big, (byte) ' ');
    Files.write(new File(dir, "index.json").toPath(), big);
    assertNull(cache.index());
  }

  @Test
  void atMost32TagDocumentsAreKeptTheOldestGoFirst() throws Exception {
    File dir = new File(tmp, "state/s.json.cache");
    dir.getParentFile().mkdirs();
    DocumentCache cache = new DocumentCache(dir);
    byte[] index = "{}".getBytes(StandardCharsets.UTF_8);
    for (int i = 0; i < 33; i++) {
      cache.save(index, Validators.NONE, "t" + i, ("doc" + i).getBytes(StandardCharsets.UTF_8));
      new File(dir, "tags/t" + i + ".json").setLastModified(1_000_000_000_000L + i * 1000L);
    }
    cache.save(index, Validators.NONE, "t32", "doc32".getBytes(StandardCharsets.UTF_8)); // prunes
    assertNull(cache.tag("t0"));
    assertArrayEquals("doc1".getBytes(StandardCharsets.UTF_8), cache.tag("t1"));
    assertEquals(32, new File(dir, "tags").list().length);
    assertNull(cache.tag("../escape"));
  }
}
