package dev.aoepack.net;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/** An HTTP server on 127.0.0.1 for tests: one handler per path, every request recorded. */
final class TestServer implements AutoCloseable {
  /** Answers one request. */
  interface Handler {
    void handle(HttpExchange exchange) throws Exception;
  }

  /** What a request asked for. */
  record Request(String path, String range, String ifRange, String acceptEncoding,
      String ifNoneMatch, String ifModifiedSince) {}

  private final HttpServer server;
  private final ExecutorService pool = Executors.newCachedThreadPool();
  private final Map<String, Handler> handlers = new ConcurrentHashMap<>();
  final List<Request> requests = new CopyOnWriteArrayList<>();

  /** A server started on a free loopback port, for a test's field initialiser. */
  static TestServer start() {
    try {
      return new TestServer();
    } catch (IOException e) {
      throw new AssertionError(e);
    }
  }

  TestServer() throws IOException {
    server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
    server.setExecutor(pool);
    server.createContext("/", exchange -> {
      String path = exchange.getRequestURI().getRawPath();
      var h = exchange.getRequestHeaders();
      requests.add(new Request(path, h.getFirst("Range"), h.getFirst("If-Range"),
          h.getFirst("Accept-Encoding"), h.getFirst("If-None-Match"),
          h.getFirst("If-Modified-Since")));
      Handler handler = handlers.get(path);
      try {
        if (handler == null) {
          send(exchange, 404, new byte[0]);
        } else {
          handler.handle(exchange);
        }
      } catch (Exception e) {
        // a handler that cuts the connection ends here
      } finally {
        exchange.close();
      }
    });
    server.start();
  }

  String base() {
    return "http://127.0.0.1:" + server.getAddress().getPort() + "/repo/";
  }

  HttpFetcher fetcher() throws Exception {
    return fetcher(TransferLimits.DEFAULT);
  }

  HttpFetcher fetcher(TransferLimits limits) throws Exception {
    return HttpFetcher.builder(base()).allowCleartextHttp(true).limits(limits).build();
  }

  TestServer on(String name, Handler handler) {
    handlers.put("/repo/" + name, handler);
    return this;
  }

  TestServer file(String name, byte[] body) {
    return on(name, ex -> send(ex, 200, body));
  }

  static void send(HttpExchange ex, int status, byte[] body) throws IOException {
    ex.sendResponseHeaders(status, body.length == 0 ? -1 : body.length);
    try (OutputStream out = ex.getResponseBody()) {
      out.write(body);
    }
  }

  @Override
  public void close() {
    server.stop(0);
    pool.shutdownNow();
  }
}
