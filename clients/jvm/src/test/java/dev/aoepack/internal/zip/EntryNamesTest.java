package dev.aoepack.internal.zip;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.aoepack.AoeException;
import dev.aoepack.testing.Vectors;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** The §4.7 name rules and keys, against what Python 3.11 (Unicode 14.0.0) computes. */
class EntryNamesTest {
  private static String collide(String first, String second) throws AoeException {
    EntryNames names = new EntryNames();
    names.add(first);
    return assertThrows(AoeException.class, () -> names.add(second)).getMessage();
  }

  @Test
  void assignedRangesAreThoseOfTheReference() {
    String py =
        new String(Vectors.read(new File(Vectors.root(), "aoe_pack/bundle/_unicode14.py")), StandardCharsets.UTF_8);
    Matcher body = Pattern.compile("_RANGES = \\((.*?)\\n\\)", Pattern.DOTALL).matcher(py);
    assertTrue(body.find());
    StringBuilder ranges = new StringBuilder();
    Matcher part = Pattern.compile("\"([^\"]*)\"").matcher(body.group(1));
    while (part.find()) {
      ranges.append(part.group(1));
    }
    assertEquals(ranges.toString().trim(), Unicode14.ASSIGNED.trim());
  }

  @Test
  void assignedFollowsTheRanges() {
    assertTrue(EntryNames.assigned('a'));
    assertTrue(!EntryNames.assigned(0x378));
    assertTrue(EntryNames.assigned(0x377));
    assertTrue(!EntryNames.assigned(0xD800)); // a surrogate is not a character
    assertTrue(EntryNames.assigned(0x1F600));
  }

  @Test
  void foldingIsFullCaseFoldingNotLowercase() {
    assertEquals("ss", EntryNames.fold("\u00df"));
    assertEquals("\u03c3", EntryNames.fold("\u03c2")); // final sigma
    assertEquals("k", EntryNames.fold("\u212a")); // Kelvin sign
    assertEquals("\u13a0", EntryNames.fold("\uab70")); // Cherokee folds to upper case
    assertEquals("i\u0307", EntryNames.fold("\u0130"));
    assertEquals("\u03b9\u0308\u0301", EntryNames.fold("\u0390"));
    assertEquals("\ud801\udc28", EntryNames.fold("\ud801\udc00")); // Deseret, above U+FFFF
  }

  @Test
  void keyIsNfcOfTheFoldedNfc() {
    assertEquals(EntryNames.key("payload/\u00e9"), EntryNames.key("payload/E\u0301"));
  }

  @Test
  void duplicateIsNamedSo() throws AoeException {
    assertTrue(collide("payload/a", "payload/a").startsWith("duplicate entry name"));
  }

  @Test
  void caseAndNormalizationCollide() throws AoeException {
    assertTrue(collide("payload/ss", "payload/\u00df").contains("differ only by case"));
    assertTrue(collide("payload/e\u0301", "payload/\u00c9").contains("differ only by case"));
  }

  @Test
  void fileAndFolderCollide() throws AoeException {
    assertTrue(collide("payload/a/b", "payload/A").contains("needs a folder of that name"));
    assertTrue(collide("payload/A", "payload/a/b").contains("needs a folder where entry"));
  }

  @Test
  void eachRuleOnItsOwn() {
    String[][] cases = {
      {"", "is empty"},
      {"payload/" + "a".repeat(1017), "bytes long"},
      {"a\u0000b", "NUL"},
      {"payload/\u0378", "U+0378"},
      {"a\\b", "backslash"},
      {"/a", "absolute"},
      {"c:a", "drive letter"},
      {"a/", "ends with '/'"},
      {"a/../b", "'..'"},
      {"a/./b", "'.' path segment"},
      {"a//b", "empty path segment"},
    };
    for (String[] c : cases) {
      AoeException e = assertThrows(AoeException.class, () -> EntryNames.checkName(c[0]), c[0]);
      assertEquals("unsafe-entry", e.code());
      assertTrue(e.getMessage().contains(c[1]), e.getMessage());
    }
  }

  @Test
  void a1024ByteNameIsAllowed() throws AoeException {
    EntryNames.checkName("payload/" + "\u00e9".repeat(508));
  }
}
