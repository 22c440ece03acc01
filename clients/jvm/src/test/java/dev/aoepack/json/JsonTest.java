package dev.aoepack.json;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class JsonTest {
  private static Object parse(String s) throws JsonException {
    return Json.parse(s.getBytes(StandardCharsets.UTF_8), 64, 10_000);
  }

  private static String canonical(String s) throws JsonException {
    return new String(Canonical.encode(parse(s)), StandardCharsets.UTF_8);
  }

  @Test
  void membersSortByUtf16CodeUnitsAndStringsEscapeOnlyWhatJcsEscapes() throws Exception {
    assertEquals(
        "{\"a\":[1,-2,true,false,null],\"b\":\"\\u001f\\n\\\"\\\\/é\",\"\uD83D\uDE00\":1,\"\uFFFF\":0}",
        canonical(
            "{ \"\uD83D\uDE00\": 1, \"\uFFFF\":0, \"b\": \"\\u001F\\n\\\"\\\\\\/\\u00e9\", \"a\": [1, -2, true, false, null] }"));
  }

  @Test
  void integersOfMagnitudeAbove2To53AreNotIntegers() throws Exception {
    assertEquals(9007199254740991L, ((List<?>) parse("[9007199254740991]")).get(0));
    assertTrue(Json.hasNonInteger(parse("[9007199254740992]")));
    assertThrows(JsonException.class, () -> canonical("[9007199254740992]"));
  }

  @ParameterizedTest
  @ValueSource(strings = {"0.5", "1.0", "1e3", "-0.0", "1E+2"})
  void numbersWithAFractionOrExponentParseButHaveNoCanonicalForm(String n) throws Exception {
    Object v = parse("{\"n\":" + n + "}");
    assertTrue(Json.hasNonInteger(v));
    assertThrows(JsonException.class, () -> Canonical.encode(v));
  }

  @Test
  void minusZeroParsesAsZeroSoItsBytesAreNotCanonical() throws Exception {
    byte[] text = "[-0]".getBytes(StandardCharsets.UTF_8);
    assertFalse(Canonical.isCanonical(text, Json.parse(text, 4, 10)));
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "", "{", "[1,]", "{\"a\":1,}", "NaN", "[Infinity]", "[-Infinity]", "01", "[1.]", "[.5]",
        "[1e]", "\"\\x\"", "\"a\tb\"", "{\"a\":1,\"a\":2}", "[1] 2", "{a:1}", "'a'", "[\"\\u12\"]",
        "tru", "nul", "[+1]"
      })
  void notStrictJsonIsRefused(String text) {
    assertThrows(JsonException.class, () -> parse(text));
  }

  @Test
  void aByteOrderMarkAndInvalidUtf8AreRefused() {
    assertThrows(
        JsonException.class,
        () -> Json.parse(new byte[] {(byte) 0xef, (byte) 0xbb, (byte) 0xbf, '[', ']'}, 4, 10));
    assertThrows(
        JsonException.class, () -> Json.parse(new byte[] {'"', (byte) 0xc3, '"'}, 4, 10));
    assertThrows(
        JsonException.class,
        () -> Json.parse(new byte[] {'"', (byte) 0xed, (byte) 0xa0, (byte) 0x80, '"'}, 4, 10));
  }

  @Test
  void anUnpairedSurrogateEscapeParsesButHasNoCanonicalForm() throws Exception {
    Object v = parse("[\"\\ud800\"]");
    assertThrows(JsonException.class, () -> Canonical.encode(v));
    assertEquals("[\"\uD83D\uDE00\"]", canonical("[\"\\ud83d\\ude00\"]"));
  }

  @Test
  void nestingDeeperThanTheLimitIsRefusedNotACrash() throws Exception {
    StringBuilder deep = new StringBuilder();
    for (int i = 0; i < 100_000; i++) {
      deep.append('[');
    }
    JsonException e = assertThrows(JsonException.class, () -> parse(deep.toString()));
    assertTrue(e.getMessage().contains("deeper than 64"), e.getMessage());
    assertEquals(1, ((Map<?, ?>) Json.parse("{\"a\":{}}".getBytes(StandardCharsets.UTF_8), 2, 10)).size());
  }

  @Test
  void moreValuesThanTheLimitAreRefused() {
    byte[] text = "[[],[],[],[]]".getBytes(StandardCharsets.UTF_8);
    assertThrows(JsonException.class, () -> Json.parse(text, 4, 4));
  }

  @Test
  void canonicalBytesRoundTrip() throws Exception {
    byte[] text = "{\"a\":{\"b\":[\"\u00e9\",\"\\u0000\"]},\"c\":-9007199254740991}".getBytes(StandardCharsets.UTF_8);
    assertArrayEquals(text, Canonical.encode(Json.parse(text, 8, 100)));
  }
}
