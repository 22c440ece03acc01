package dev.aoepack.corpus;

import dev.aoepack.AoeException;
import dev.aoepack.bundle.BundleVerifier;
import dev.aoepack.json.Json;
import dev.aoepack.json.JsonException;
import dev.aoepack.keys.DecryptionKey;
import dev.aoepack.keys.TrustedKey;
import dev.aoepack.keys.XWingKem;
import dev.aoepack.net.FolderFetcher;
import dev.aoepack.repo.Decision;
import dev.aoepack.repo.Device;
import dev.aoepack.repo.UpdateChecker;
import dev.aoepack.testing.TestOnlyXWing;
import dev.aoepack.testing.Vectors;
import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * The shared attack corpus of tests/vectors/attacks (README.md there; TEST-ONLY keys), run
 * through this library: each case's outcome in the form its {@code expect} member has, so a
 * test compares the two maps. Also the outcome helpers of {@link dev.aoepack.crosscheck.CrossCheck}.
 */
public final class Corpus {
  /** ML-KEM through the test-only X-Wing of the test sources, as an app's provider would. */
  public static final XWingKem XWING = new TestOnlyXWing();

  private Corpus() {}

  public static File dir() {
    return new File(Vectors.root(), "tests/vectors/attacks");
  }

  public static File file(String relative) {
    return new File(dir(), relative);
  }

  /** bundles.json's cases. */
  public static List<Map<String, Object>> bundleCases() {
    return list(manifest("bundles.json").get("cases"));
  }

  /** repos.json's scenarios. */
  public static List<Map<String, Object>> scenarios() {
    return list(manifest("repos.json").get("scenarios"));
  }

  private static Map<String, Object> manifest(String name) {
    return map(parse(Vectors.read(file(name))));
  }

  public static Object parse(byte[] json) {
    try {
      return Json.parse(json, 64, 10_000_000);
    } catch (JsonException e) {
      throw new IllegalStateException(e);
    }
  }

  @SuppressWarnings("unchecked")
  public static Map<String, Object> map(Object v) {
    return (Map<String, Object>) v;
  }

  @SuppressWarnings("unchecked")
  public static List<Map<String, Object>> list(Object v) {
    return (List<Map<String, Object>>) v;
  }

  public static String string(Object v) {
    return v == Json.NULL ? null : (String) v;
  }

  /** {"error": code}. */
  public static Map<String, Object> error(AoeException e) {
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("error", e.code());
    return out;
  }

  // --- bundles ---------------------------------------------------------------------------

  /** A bundle case's outcome: {"verified": true}, {"files": {...}} or {"error": code}. */
  public static Map<String, Object> runBundleCase(Map<String, Object> c, Path scratch) {
    List<File> trusted = new ArrayList<>();
    for (Object k : (List<?>) c.get("trustedKeys")) {
      trusted.add(file((String) k));
    }
    String key = string(c.get("decryptionKey"));
    return runBundle(
        file((String) c.get("bundle")),
        trusted,
        ((Long) c.get("threshold")).intValue(),
        key == null ? null : file(key),
        "unpack".equals(c.get("operation")) ? scratch.resolve("out").toFile() : null);
  }

  /** Verify (or, with {@code out}, unpack into it) a bundle: the outcome, as a case's expect. */
  public static Map<String, Object> runBundle(
      File bundle, List<File> trustedKeys, int threshold, File decryptionKey, File out) {
    Map<String, Object> result = new LinkedHashMap<>();
    try {
      BundleVerifier.Builder b = BundleVerifier.builder().threshold(threshold);
      for (File k : trustedKeys) {
        b.trust(TrustedKey.fromPem(Vectors.read(k)));
      }
      DecryptionKey key = decryptionKey == null ? null : DecryptionKey.fromFile(Vectors.read(decryptionKey));
      BundleVerifier verifier = b.build();
      if (out == null) {
        verifier.verify(bundle, key, XWING);
        result.put("verified", Boolean.TRUE);
      } else {
        verifier.unpack(bundle, out, key, XWING);
        result.put("files", files(out.toPath()));
      }
      return result;
    } catch (AoeException e) {
      return error(e);
    }
  }

  /** SHA-256 (hex) of every file under {@code root}, by its path relative to it with '/'. */
  public static Map<String, Object> files(Path root) {
    Map<String, Object> out = new TreeMap<>();
    try (Stream<Path> walk = Files.walk(root)) {
      for (Path p : (Iterable<Path>) walk::iterator) {
        if (Files.isRegularFile(p)) {
          String rel = root.relativize(p).toString().replace(File.separatorChar, '/');
          out.put(rel, sha256(p)); // streamed: a test of bounded memory unpacks big files
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return out;
  }

  /** SHA-256 (hex) of the file {@code p}, read in 64 KiB pieces. */
  public static String sha256(Path p) throws IOException {
    MessageDigest md;
    try {
      md = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
    byte[] buffer = new byte[1 << 16];
    try (java.io.InputStream in = Files.newInputStream(p)) {
      for (int n; (n = in.read(buffer)) > 0; ) {
        md.update(buffer, 0, n);
      }
    }
    return HexFormat.of().formatHex(md.digest());
  }

  public static String sha256(byte[] data) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  // --- repositories ----------------------------------------------------------------------

  /** A scenario's step outcomes, one state file for all its steps (a fresh device). */
  public static List<Map<String, Object>> runScenario(Map<String, Object> s, Path scratch) {
    File state = scratch.resolve("state.json").toFile();
    List<Map<String, Object>> out = new ArrayList<>();
    for (Map<String, Object> step : list(s.get("steps"))) {
      String root = string(step.get("trustedRoot"));
      byte[] trusted = Vectors.read(file(root != null ? root : (String) s.get("trustedRoot")));
      Object min = s.get("minManifestVersion");
      out.add(
          check(
              file((String) step.get("repo")),
              trusted,
              state,
              min == Json.NULL ? null : (Long) min,
              (String) s.get("tag"),
              map(step.get("device"))));
    }
    return out;
  }

  /** One check of a repository folder by a device: its outcome, as a step's expect. */
  public static Map<String, Object> check(
      File repo, byte[] trustedRoot, File state, Long minManifestVersion, String tag, Map<String, Object> d) {
    try {
      UpdateChecker.Builder b =
          UpdateChecker.builder().fetcher(new FolderFetcher(repo)).trustedRoot(trustedRoot).stateFile(state);
      if (minManifestVersion != null) {
        b.minManifestVersion(minManifestVersion);
      }
      return outcome(b.build().check(device(tag, d)));
    } catch (AoeException e) {
      return error(e);
    }
  }

  /** The corpus's device JSON as a {@link Device}. */
  public static Device device(String tag, Map<String, Object> d) throws AoeException {
    Device.Builder b =
        Device.builder()
            .tag(tag)
            .deviceId((String) d.get("deviceId"))
            .appVersion((String) d.get("appVersion"))
            .localVersion((String) d.get("localVersion"))
            .installedVersion(string(d.get("installedVersion")));
    for (Object c : (List<?>) d.get("channels")) {
      b.channel((String) c);
    }
    for (Object r : (List<?>) d.get("runtimes")) {
      b.runtime((String) r);
    }
    return b.build();
  }

  /** {"decision": {action, version, url, sha256, size, reason, running, skipped}, "state": {...}}. */
  public static Map<String, Object> outcome(Decision d) {
    Map<String, Object> decision = new LinkedHashMap<>();
    decision.put("action", d.action().json());
    decision.put("version", orNull(d.version()));
    decision.put("url", orNull(d.url()));
    decision.put("sha256", orNull(d.sha256()));
    decision.put("size", d.release() == null ? Json.NULL : (Object) d.size());
    decision.put("reason", d.reason());
    decision.put("running", d.running());
    decision.put("skipped", new ArrayList<Object>(d.skipped()));
    Map<String, Object> state = new LinkedHashMap<>();
    state.put("rootVersion", d.rootVersion());
    state.put("manifestVersion", d.manifestVersion());
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("decision", decision);
    out.put("state", state);
    return out;
  }

  private static Object orNull(String s) {
    return s == null ? Json.NULL : s;
  }
}
