package dev.aoepack.json;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/**
 * Numbers a hostile server or bundle author writes into JSON the library reads before any
 * signature is checked (an envelope, aoe/signatures.json): every one must fail as a {@link
 * JsonException}, quickly, never as a RuntimeException or minutes of CPU.
 */
class JsonNumberLimitsTest {
  private static Object parse(String json) throws JsonException {
    return Json.parse(json.getBytes(StandardCharsets.UTF_8), 8, 1000);
  }

  @Test
  void anExponentBeyondAnIntIsAJsonExceptionNotANumberFormatException() {
    assertThrows(JsonException.class, () -> parse("[1e9999999999]"));
    assertThrows(JsonException.class, () -> parse("[-0.5E-99999999999]"));
  }

  @Test
  void aMillionDigitIntegerIsRefusedQuickly() {
    StringBuilder s = new StringBuilder("[1");
    for (int i = 0; i < 1000000; i++) {
      s.append('0');
    }
    String json = s.append(']').toString();
    assertTimeoutPreemptively(Duration.ofSeconds(5), () -> {
      assertThrows(JsonException.class, () -> parse(json));
    });
  }

  @Test
  void aMillionDigitFractionIsRefusedQuickly() {
    StringBuilder s = new StringBuilder("[0.");
    for (int i = 0; i < 1000000; i++) {
      s.append('7');
    }
    String json = s.append(']').toString();
    assertTimeoutPreemptively(Duration.ofSeconds(5), () -> {
      assertThrows(JsonException.class, () -> parse(json));
    });
  }

  @Test
  void ordinaryNumbersStillParse() throws Exception {
    assertEquals(Long.valueOf(9007199254740991L), parse("9007199254740991"));
    assertTrue(parse("9007199254740992") instanceof BigDecimal);
    assertTrue(parse("1.5e300") instanceof BigDecimal);
  }
}
