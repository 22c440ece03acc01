package dev.aoepack.net;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * An HTTP/1.1 server on 127.0.0.1 that writes each answer by hand and closes the connection
 * after it: a test can cut a body in the middle, which the JDK's HttpServer cannot.
 */
final class RawServer implements AutoCloseable {
  /** Writes the whole answer (status line, headers, body) for one request. */
  interface Handler {
    void handle(Map<String, String> headers, OutputStream out) throws IOException;
  }

  private final ServerSocket socket;
  private final Handler handler;
  final List<Map<String, String>> requests = new CopyOnWriteArrayList<>();

  RawServer(Handler handler) throws IOException {
    this.handler = handler;
    socket = new ServerSocket(0, 50, InetAddress.getByName("127.0.0.1"));
    Thread accept = new Thread(this::serve, "raw test server");
    accept.setDaemon(true);
    accept.start();
  }

  String base() {
    return "http://127.0.0.1:" + socket.getLocalPort() + "/repo/";
  }

  HttpFetcher fetcher(TransferLimits limits) throws Exception {
    return HttpFetcher.builder(base()).allowCleartextHttp(true).limits(limits).build();
  }

  private void serve() {
    while (!socket.isClosed()) {
      try {
        Socket s = socket.accept();
        Thread t = new Thread(() -> answer(s));
        t.setDaemon(true);
        t.start();
      } catch (IOException e) {
        return;
      }
    }
  }

  private void answer(Socket s) {
    try (s) {
      Map<String, String> headers = new TreeMap<>(String.CASE_INSENSITIVE_ORDER);
      String[] lines = head(s.getInputStream()).split("\r\n");
      headers.put(":path", lines[0].split(" ")[1]);
      for (int i = 1; i < lines.length; i++) {
        int colon = lines[i].indexOf(':');
        headers.put(lines[i].substring(0, colon).trim().toLowerCase(Locale.ROOT),
            lines[i].substring(colon + 1).trim());
      }
      requests.add(headers);
      handler.handle(headers, s.getOutputStream());
      s.getOutputStream().flush();
    } catch (IOException e) {
      // the client went away
    }
  }

  private static String head(InputStream in) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    int state = 0;
    while (state < 4) {
      int b = in.read();
      if (b < 0) {
        throw new IOException("no request");
      }
      out.write(b);
      state = (b == '\r' && (state == 0 || state == 2)) || (b == '\n' && (state == 1 || state == 3))
          ? state + 1 : 0;
    }
    return out.toString(StandardCharsets.ISO_8859_1).trim();
  }

  /** Write a status line and headers (each "Name: value"), then the blank line. */
  static void head(OutputStream out, String status, String... headers) throws IOException {
    StringBuilder b = new StringBuilder("HTTP/1.1 ").append(status).append("\r\nConnection: close\r\n");
    for (String h : headers) {
      b.append(h).append("\r\n");
    }
    out.write(b.append("\r\n").toString().getBytes(StandardCharsets.ISO_8859_1));
  }

  @Override
  public void close() throws IOException {
    socket.close();
  }
}
