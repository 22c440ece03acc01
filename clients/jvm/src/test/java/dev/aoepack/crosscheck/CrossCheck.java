package dev.aoepack.crosscheck;

import dev.aoepack.AoeException;
import dev.aoepack.corpus.Corpus;
import dev.aoepack.json.Canonical;
import dev.aoepack.json.Json;
import dev.aoepack.json.JsonException;
import dev.aoepack.keys.DecryptionKey;
import dev.aoepack.net.TransferLimits;
import dev.aoepack.repo.Decision;
import dev.aoepack.repo.Device;
import dev.aoepack.update.ModelUpdater;
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
 * CrossCheck update --repo URL --trusted-root ROOT --state FILE --models DIR --tag TAG
 *     --device-id ID --app-version A --local-version L [--min-manifest-version N]
 *     [--decryption-key KEY] [--act yes|no] [--deadline-ms N]
 * </pre>
 *
 * {@code verify} and {@code unpack} print one JSON object, as a bundle case's expect of the
 * attack corpus: {@code {"verified":true}}, {@code {"files":{path: sha256}}} or {@code
 * {"error":code}}. {@code decide} reads one device per line on stdin ({@code {"tag",
 * "deviceId", "appVersion", "localVersion", "installedVersion", "channels", "runtimes"}}) and
 * prints one line per device: the decision as {@code client check --json} prints it (without
 * the download's members), or {@code {"ok":false,"error":{"code":...}}}. X-Wing keys go
 * through the test-only ML-KEM. {@code update} is an app's update (docs/android.md): a {@link
 * ModelUpdater} over http:// (cleartext allowed, for a loopback server), one check of the device
 * whose installed version is the updater's own, then, unless {@code --act no}, what the decision
 * asks: {@code download} or {@code revertToLocal}. It prints {@code {"decision": toJson or
 * null, "installed": folder or null, "currentModel": folder or null, "error": code or null}};
 * {@code --deadline-ms} is every request's deadline (a test cuts a download short with it).
 * Exit code 0 unless the command line is wrong (2).
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
      case "update":
        out.println(json(update(opts)));
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

  private static Map<String, Object> update(Map<String, List<String>> opts) throws IOException {
    String[] required = {
      "--repo", "--trusted-root", "--state", "--models", "--tag", "--device-id", "--app-version",
      "--local-version"
    };
    for (String name : required) {
      if (one(opts, name) == null) {
        usage("update needs " + String.join(", ", required));
      }
    }
    String tag = one(opts, "--tag");
    String min = one(opts, "--min-manifest-version");
    String key = one(opts, "--decryption-key");
    String deadline = one(opts, "--deadline-ms");
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("decision", Json.NULL);
    out.put("installed", Json.NULL);
    out.put("error", Json.NULL);
    ModelUpdater updater = null;
    try {
      ModelUpdater.Builder b = ModelUpdater.builder() // as docs/android.md builds one
          .repository(one(opts, "--repo"))
          .allowCleartextHttp(true)
          .trustedRoot(Files.readAllBytes(new File(one(opts, "--trusted-root")).toPath()))
          .stateFile(new File(one(opts, "--state")))
          .modelsDir(new File(one(opts, "--models")));
      if (min != null) {
        b.minManifestVersion(Long.parseLong(min));
      }
      if (key != null) {
        b.decryptionKey(DecryptionKey.fromFile(Files.readAllBytes(new File(key).toPath())));
      }
      if (deadline != null) {
        b.limits(TransferLimits.DEFAULT.withDeadlineMillis(Long.parseLong(deadline)));
      }
      updater = b.build();
      Decision decision = updater.check(Device.builder()
          .tag(tag)
          .deviceId(one(opts, "--device-id"))
          .appVersion(one(opts, "--app-version"))
          .localVersion(one(opts, "--local-version"))
          .installedVersion(updater.installedVersion(tag))
          .build());
      out.put("decision", Corpus.parse(decision.toJson().getBytes(StandardCharsets.UTF_8)));
      if (!"no".equals(one(opts, "--act"))) {
        if (decision.action() == Decision.Action.DOWNLOAD) {
          out.put("installed", updater.download(decision).getPath());
        } else if (decision.action() == Decision.Action.REVERT_TO_LOCAL) {
          updater.revertToLocal(tag);
        }
      }
    } catch (AoeException e) {
      out.put("error", e.code());
      System.err.println(e.code() + ": " + e.getMessage());
    }
    File current = null;
    try {
      current = updater == null ? null : updater.currentModel(tag);
    } catch (AoeException e) {
      out.put("error", e.code());
    }
    out.put("currentModel", current == null ? Json.NULL : current.getPath());
    return out;
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
