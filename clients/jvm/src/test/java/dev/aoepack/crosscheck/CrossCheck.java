package dev.aoepack.crosscheck;

import dev.aoepack.corpus.Corpus;
import dev.aoepack.json.Canonical;
import dev.aoepack.json.JsonException;
import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The library as a command, for the cross-checks of tests/jvm/test_crosscheck.py, which
 * compare what it prints with what aoe-pack does:
 *
 * <pre>
 * CrossCheck verify BUNDLE --trusted-key PUB... [--threshold N] [--decryption-key KEY]
 * CrossCheck unpack BUNDLE --out DIR --trusted-key PUB... [--threshold N] [--decryption-key KEY]
 * CrossCheck decide --repo DIR --trusted-root ROOT --state FILE [--min-manifest-version N]
 * </pre>
 *
 * {@code verify} and {@code unpack} print one JSON object, as a bundle case's expect of the
 * attack corpus: {@code {"verified":true}}, {@code {"files":{path: sha256}}} or {@code
 * {"error":code}}. {@code decide} reads one device per line on stdin ({@code {"tag",
 * "deviceId", "appVersion", "localVersion", "installedVersion", "channels", "runtimes"}}) and
 * prints one line per device: the decision as {@code client check --json} prints it (without
 * the download's members), or {@code {"ok":false,"error":{"code":...}}}. X-Wing keys go
 * through the test-only ML-KEM. Exit code 0 unless the command line is wrong (2).
 */
public final class CrossCheck {
  private CrossCheck() {}

  public static void main(String[] args) throws IOException {
    PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
    if (args.length < 1) {
      usage("a command is required: verify, unpack or decide");
    }
    Map<String, List<String>> opts = new LinkedHashMap<>();
    List<String> positional = new ArrayList<>();
    for (int i = 1; i < args.length; i++) {
      if (args[i].startsWith("--")) {
        if (i + 1 >= args.length) {
          usage(args[i] + " needs a value");
        }
        opts.computeIfAbsent(args[i], k -> new ArrayList<>()).add(args[++i]);
      } else {
        positional.add(args[i]);
      }
    }
    switch (args[0]) {
      case "verify":
      case "unpack":
        out.println(json(bundle(args[0], positional, opts)));
        break;
      case "decide":
        decide(opts, out);
        break;
      default:
        usage("unknown command " + args[0]);
    }
  }

  private static Map<String, Object> bundle(
      String command, List<String> positional, Map<String, List<String>> opts) {
    if (positional.size() != 1) {
      usage(command + " takes one bundle");
    }
    List<File> trusted = new ArrayList<>();
    for (String k : opts.getOrDefault("--trusted-key", List.of())) {
      trusted.add(new File(k));
    }
    String key = one(opts, "--decryption-key");
    String threshold = one(opts, "--threshold");
    String out = one(opts, "--out");
    if (command.equals("unpack") && out == null) {
      usage("unpack needs --out");
    }
    return Corpus.runBundle(
        new File(positional.get(0)),
        trusted,
        threshold == null ? 1 : Integer.parseInt(threshold),
        key == null ? null : new File(key),
        command.equals("unpack") ? new File(out) : null);
  }

  private static void decide(Map<String, List<String>> opts, PrintStream out) throws IOException {
    String repo = one(opts, "--repo");
    String root = one(opts, "--trusted-root");
    String state = one(opts, "--state");
    String min = one(opts, "--min-manifest-version");
    if (repo == null || root == null || state == null) {
      usage("decide needs --repo, --trusted-root and --state");
    }
    byte[] trusted = Files.readAllBytes(new File(root).toPath());
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    for (String line = in.readLine(); line != null; line = in.readLine()) {
      if (line.isBlank()) {
        continue;
      }
      Map<String, Object> device = Corpus.map(Corpus.parse(line.getBytes(StandardCharsets.UTF_8)));
      Map<String, Object> got =
          Corpus.check(
              new File(repo),
              trusted,
              new File(state),
              min == null ? null : Long.valueOf(min),
              (String) device.get("tag"),
              device);
      out.println(json(flat(got)));
    }
  }

  /** A check's outcome as {@code client check --json} prints it. */
  private static Map<String, Object> flat(Map<String, Object> got) {
    Map<String, Object> out = new LinkedHashMap<>();
    if (got.containsKey("error")) {
      out.put("ok", Boolean.FALSE);
      Map<String, Object> error = new LinkedHashMap<>();
      error.put("code", got.get("error"));
      out.put("error", error);
      return out;
    }
    out.put("ok", Boolean.TRUE);
    out.putAll(Corpus.map(got.get("decision")));
    out.putAll(Corpus.map(got.get("state")));
    return out;
  }

  private static String one(Map<String, List<String>> opts, String name) {
    List<String> values = opts.get(name);
    if (values == null) {
      return null;
    }
    if (values.size() != 1) {
      usage(name + " given more than once");
    }
    return values.get(0);
  }

  private static String json(Map<String, Object> value) {
    try {
      return new String(Canonical.encode(value), StandardCharsets.UTF_8);
    } catch (JsonException e) {
      throw new IllegalStateException(e);
    }
  }

  private static void usage(String message) {
    System.err.println("usage: " + message);
    System.exit(2);
  }
}
