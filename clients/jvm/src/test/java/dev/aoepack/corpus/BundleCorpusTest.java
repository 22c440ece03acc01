package dev.aoepack.corpus;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/**
 * Every case of tests/vectors/attacks/bundles.json (TEST-ONLY keys), one test named after
 * it: the library verifies or unpacks the bundle with the case's keys and threshold and gives
 * exactly the expected outcome, the error code of the first failing check or the files
 * written, byte for byte (their SHA-256).
 */
class BundleCorpusTest {
  @TestFactory
  Stream<DynamicTest> everyBundleCase() {
    return Corpus.bundleCases().stream()
        .map(
            c ->
                DynamicTest.dynamicTest(
                    (String) c.get("name"),
                    () -> {
                      Path scratch = Files.createTempDirectory("aoe-corpus-");
                      Map<String, Object> got = Corpus.runBundleCase(c, scratch);
                      assertEquals(c.get("expect"), got, (String) c.get("description"));
                      if (got.containsKey("error") && "unpack".equals(c.get("operation"))) {
                        assertTrue(
                            !Files.exists(scratch.resolve("out"))
                                || Corpus.files(scratch.resolve("out")).isEmpty(),
                            "a failed unpack leaves no file");
                      }
                    }));
  }

  @Test
  void theCorpusHoldsEveryKindOfCase() {
    Map<String, Long> kinds = new java.util.TreeMap<>();
    for (Map<String, Object> c : Corpus.bundleCases()) {
      kinds.merge((String) c.get("kind"), 1L, Long::sum);
    }
    assertEquals(
        java.util.Set.of("valid", "outsider", "signature", "zip", "insider", "decryption"), kinds.keySet());
    assertTrue(Corpus.bundleCases().size() >= 90, kinds.toString());
  }
}
