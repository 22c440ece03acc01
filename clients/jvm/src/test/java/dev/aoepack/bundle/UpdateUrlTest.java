package dev.aoepack.bundle;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

/** §5.2.4, as aoe_pack/urls.py (and tests/test_urls.py) has it. */
class UpdateUrlTest {
  @ParameterizedTest
  @ValueSource(
      strings = {
        "https://models.example.com/repo/",
        "https://models.example.com",
        "HTTPS://Models.Example.com:443/repo",
        "http://localhost:8080/r",
        "http://127.0.0.1/r",
        "http://127.9.9.9/",
        "http://[::1]:80/",
        "http://[0:0:0:0:0:0:0:1]/",
        "https://[2001:db8::1]/x",
        "https://[::ffff:10.0.0.1]/x",
        "https://example.com./a/%41b/c~d",
        "https://xn--bcher-kva.example/",
        "https://1.2.3.4:65535/"
      })
  void accepted(String url) {
    assertNull(UpdateUrl.problem(url), url);
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "http://models.example/",
        "http://127.1/",
        "http://localhost./",
        "http://[::2]/",
        "https://ci:token@models.example/",
        "ftp://models.example/",
        "https://models.example/?q",
        "https://models.example/#f",
        "https://models.example/a//b",
        "https://models.example/a/../b",
        "https://models.example/%zz",
        "https://models.example:0/",
        "https://models.example:65536/",
        "https://models.example:/",
        "https://-bad.example/",
        "https://[1:2]/",
        "https://[::1%]/",
        "https://exa mple/",
        "https://bücher.example/",
        "models.example/repo",
        "https://",
      })
  void refused(String url) {
    assertNotNull(UpdateUrl.problem(url), url);
  }

  @Test
  void tooLong() {
    assertNotNull(UpdateUrl.problem("https://a.example/" + "a".repeat(1010)));
  }

  @Test
  void comparison() {
    assertTrue(UpdateUrl.sameRepository("HTTPS://Models.Example.com:443/repo/", "https://models.example.com/repo"));
    assertFalse(UpdateUrl.sameRepository("https://models.example.com/Repo", "https://models.example.com/repo"));
    assertEquals("https://m.example:8443/r", UpdateUrl.normalise("https://M.example:08443/r/"));
    assertEquals("http://localhost", UpdateUrl.normalise("http://localhost:0080/"));
  }
}
