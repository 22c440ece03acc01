package dev.aoepack.testing;

import dev.aoepack.json.Json;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.util.List;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;

/**
 * The test vectors of tests/vectors (TEST-ONLY keys) and the test resources,
 * for tests. Bundles are read with java.util.zip here only: the library's own
 * reader is what the bundle tests check.
 */
public final class Vectors {
  private Vectors() {}

  public static File root() {
    String root = System.getProperty("aoe.root");
    if (root == null) {
      throw new IllegalStateException("run the tests with -Daoe.root=<repository root>");
    }
    return new File(root);
  }

  public static File file(String name) {
    return new File(root(), "tests/vectors/" + name);
  }

  public static byte[] bytes(String name) {
    return read(file(name));
  }

  /** A file of clients/jvm/src/test/resources. */
  public static byte[] resource(String name) {
    return read(new File(root(), "clients/jvm/src/test/resources/" + name));
  }

  public static byte[] read(File f) {
    try {
      return Files.readAllBytes(f.toPath());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  public static Map<String, Object> expected() {
    return map(parse(bytes("expected.json")));
  }

  /** expected.json's value at a path of member names. */
  public static Object expected(String... path) {
    Object v = expected();
    for (String p : path) {
      v = map(v).get(p);
      if (v == null) {
        throw new IllegalArgumentException("no " + String.join(".", path) + " in expected.json");
      }
    }
    return v;
  }

  public static String expectedString(String... path) {
    return (String) expected(path);
  }

  /** The bytes of one entry of a vector bundle. */
  public static byte[] entry(String bundle, String name) {
    try (ZipFile zip = new ZipFile(file(bundle))) {
      ZipEntry e = zip.getEntry(name);
      if (e == null) {
        throw new IllegalArgumentException(bundle + " has no " + name);
      }
      try (InputStream in = zip.getInputStream(e)) {
        return in.readAllBytes();
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The parsed aoe/manifest.json of a vector bundle. */
  public static Map<String, Object> manifest(String bundle) {
    return map(parse(entry(bundle, "aoe/manifest.json")));
  }

  public static Object parse(byte[] json) {
    try {
      return Json.parse(json, 64, 1_000_000);
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  @SuppressWarnings("unchecked")
  public static Map<String, Object> map(Object o) {
    return (Map<String, Object>) o;
  }

  @SuppressWarnings("unchecked")
  public static List<Object> list(Object o) {
    return (List<Object>) o;
  }

  public static byte[] unhex(String s) {
    byte[] out = new byte[s.length() / 2];
    for (int i = 0; i < out.length; i++) {
      out[i] = (byte) Integer.parseInt(s.substring(2 * i, 2 * i + 2), 16);
    }
    return out;
  }
}
