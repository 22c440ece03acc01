package dev.aoepack.corpus;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/**
 * Every scenario of tests/vectors/attacks/repos.json (TEST-ONLY keys), one test named after
 * it: a fresh device checks each step's repository folder with {@link
 * dev.aoepack.repo.UpdateChecker}, one state file across the steps, and gets exactly the
 * expected error code, or decision (action, release, the reference's reason, running and
 * skipped wording) and trusted root and manifest versions.
 */
class RepoCorpusTest {
  @TestFactory
  Stream<DynamicTest> everyScenario() {
    return Corpus.scenarios().stream()
        .map(
            s ->
                DynamicTest.dynamicTest(
                    (String) s.get("name"),
                    () -> {
                      List<Object> want = new ArrayList<>();
                      for (Map<String, Object> step : Corpus.list(s.get("steps"))) {
                        want.add(step.get("expect"));
                      }
                      List<Map<String, Object>> got =
                          Corpus.runScenario(s, Files.createTempDirectory("aoe-corpus-"));
                      assertEquals(want, got, (String) s.get("description"));
                    }));
  }

  @Test
  void theCorpusHoldsErrorsAndEveryAction() {
    int errors = 0;
    java.util.Set<Object> actions = new java.util.TreeSet<>();
    for (Map<String, Object> s : Corpus.scenarios()) {
      for (Map<String, Object> step : Corpus.list(s.get("steps"))) {
        Map<String, Object> expect = Corpus.map(step.get("expect"));
        if (expect.containsKey("error")) {
          errors++;
        } else {
          actions.add(Corpus.map(expect.get("decision")).get("action"));
        }
      }
    }
    assertTrue(errors >= 25, "errors: " + errors);
    assertEquals(java.util.Set.of("download", "keep", "revert-to-local"), actions);
  }
}
