package dev.aoepack.repo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.aoepack.AoeException;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

/** The cases of tests/test_versions.py, and the rollout buckets of §15.7. */
class VersionTest {
  static Version v(String s) throws AoeException {
    return Version.parse(s);
  }

  @ParameterizedTest
  @CsvSource({
    "1.9.0,1.10.0", "1.0.9,1.0.10", "9.0.0,10.0.0", "2.0.0,10.0.0", "1.2.9,1.2.10", "0.9.99,0.10.0", "1.99.0,1.100.0",
    "1.0.0-alpha,1.0.0", "1.0.0-rc.1,1.0.0", "1.0.0-rc.99,1.0.0", "0.9.9,1.0.0-alpha", "1.0.0-alpha,1.0.0-alpha.1",
    "1.0.0-alpha.1,1.0.0-alpha.beta", "1.0.0-alpha.beta,1.0.0-beta", "1.0.0-beta,1.0.0-beta.2",
    "1.0.0-beta.2,1.0.0-beta.11", "1.0.0-beta.11,1.0.0-rc.1", "1.0.0-rc.9,1.0.0-rc.10", "1.0.0-1,1.0.0-alpha",
    "1.0.0-RC,1.0.0-alpha", "99999999999999999999.0.0,100000000000000000000.0.0"
  })
  void lowerSortsBelowHigher(String lower, String higher) throws AoeException {
    assertTrue(v(lower).compareTo(v(higher)) < 0);
    assertTrue(v(higher).compareTo(v(lower)) > 0);
    assertTrue(!v(lower).equals(v(higher)));
  }

  @Test
  void aoeTextOrderIsNotSemverOrder() throws AoeException {
    List<Version> list = new ArrayList<>();
    for (String s : new String[] {"1.0.10", "1.0.9", "1.10.0", "1.9.0", "1.0.0", "1.0.0-rc.1", "1.0.0-beta.11"}) {
      list.add(v(s));
    }
    list.sort(null);
    assertEquals("[1.0.0-beta.11, 1.0.0-rc.1, 1.0.0, 1.0.9, 1.0.10, 1.9.0, 1.10.0]", list.toString());
  }

  @Test
  void buildMetadataIsIgnoredInPrecedenceEqualityAndHash() throws AoeException {
    assertEquals(v("1.0.0+build.5"), v("1.0.0+build.6"));
    assertEquals(v("1.0.0+build.5"), v("1.0.0"));
    assertEquals(v("1.0.0+build.5").hashCode(), v("1.0.0").hashCode());
    assertEquals("1.0.0+build.5", v("1.0.0+build.5").toString());
    assertEquals(v("1.0.0-rc.1"), v("1.0.0-rc.1+exp.sha.5114f85"));
    assertTrue(v("1.0.0-rc.1+zzz").compareTo(v("1.0.0+aaa")) < 0);
    assertEquals(v("1.0.0+b").versionCode(), v("1.0.0").versionCode());
  }

  @ParameterizedTest
  @ValueSource(strings = {"1.0", "1", "v1.0.0", "01.0.0", "1.01.0", "1.0.0-", "1.0.0+", "1.0.0-rc..1", "1.0.0-01",
      " 1.0.0", "1.0.0\n", "", "latest", "1.0.0.0", "-1.0.0", "\u0661.0.0"})
  void nonSemverTextIsRefused(String text) {
    AoeException e = assertThrows(AoeException.class, () -> v(text));
    assertEquals("version", e.code());
    assertTrue(e.getMessage().contains("is not a semantic version"), e.getMessage());
    assertTrue(e.getMessage().contains("MAJOR.MINOR.PATCH"));
  }

  @Test
  void overlongVersionIsRefused() throws AoeException {
    AoeException e = assertThrows(AoeException.class, () -> v("1.0.0-" + "a".repeat(123)));
    assertEquals("version", e.code());
    assertTrue(e.getMessage().contains("at most 128 characters"));
    assertEquals("1.0.0-" + "a".repeat(122), v("1.0.0-" + "a".repeat(122)).toString());
    AoeException app = assertThrows(AoeException.class, () -> Version.parse("1.0", "app version"));
    assertTrue(app.getMessage().startsWith("app version '1.0' is not"), app.getMessage());
  }

  @ParameterizedTest
  @CsvSource({
    "0.0.0-alpha,100", "0.0.0,999", "1.0.0,10000999", "1.0.9,10009999", "1.0.10,10010999", "1.9.0,10900999",
    "1.10.0,11000999", "1.2.3-alpha,10203100", "1.2.3-alpha.0,10203101", "1.2.3-beta,10203200",
    "1.2.3-beta.3,10203204", "1.2.3-rc.1,10203302", "1.2.3-rc.98,10203399", "1.2.3+build.7,10203999",
    "209.99.99,2099999999", "2.1.0-rc.1,20100302", "1.0.0-beta.3,10000204"
  })
  void versionCodeValues(String text, int code) throws AoeException {
    assertEquals(code, v(text).versionCode());
  }

  @Test
  void everySlotOfOneVersionIsInSemverOrder() throws AoeException {
    List<String> ladder = new ArrayList<>();
    ladder.add("1.2.2");
    for (String label : new String[] {"alpha", "beta", "rc"}) {
      ladder.add("1.2.3-" + label);
      for (int n = 0; n < 99; n++) {
        ladder.add("1.2.3-" + label + "." + n);
      }
    }
    ladder.add("1.2.3");
    ladder.add("1.2.4-alpha");
    for (int i = 1; i < ladder.size(); i++) {
      assertTrue(v(ladder.get(i - 1)).versionCode() < v(ladder.get(i)).versionCode(), ladder.get(i));
      assertTrue(v(ladder.get(i - 1)).compareTo(v(ladder.get(i))) < 0, ladder.get(i));
    }
  }

  @ParameterizedTest
  @CsvSource(delimiter = '|', value = {
    "210.0.0|major 210 is above 209", "1.100.0|minor 100 is above 99", "1.0.100|patch 100 is above 99",
    "1000.0.0|major 1000 is above 209", "1.0.0-alpha.99|only pre-releases alpha, beta, rc",
    "1.0.0-rc.100|only pre-releases alpha, beta, rc", "1.0.0-preview|only pre-releases alpha, beta, rc",
    "1.0.0-RC.1|only pre-releases alpha, beta, rc", "1.0.0-alpha.1.2|only pre-releases alpha, beta, rc",
    "1.0.0-beta.x|only pre-releases alpha, beta, rc", "1.0.0-rc1|only pre-releases alpha, beta, rc",
    "1.0.0-alpha-1|only pre-releases alpha, beta, rc", "1.0.0-1|only pre-releases alpha, beta, rc",
    "1.0.0-rc.-1|only pre-releases alpha, beta, rc", "1.0.0-dev.1|only pre-releases alpha, beta, rc"
  })
  void versionsWithoutAVersionCodeAreRefused(String text, String fragment) throws AoeException {
    Version version = v(text);
    AoeException e = assertThrows(AoeException.class, version::versionCode);
    assertEquals("version", e.code());
    assertTrue(e.getMessage().contains("has no versionCode"), e.getMessage());
    assertTrue(e.getMessage().contains(fragment), e.getMessage());
  }

  // Expected buckets from the reference, produced with:
  //   PYTHONPATH=$PWD /work/main/.venv/bin/python -c "from aoe_pack.client.decide import bucket; print(bucket(s, t, d))"
  // for each row (the first four are also the table of docs/format.md §15.7).
  @ParameterizedTest
  @CsvSource({
    "00112233445566778899aabbccddeeff,tag_mnist,device-1,1327",
    "00112233445566778899aabbccddeeff,tag_mnist,设备-1,2784",
    "287611a64135eb10d9b51ee19c1e5435,keyboard-lm,3f0c9a8e-5b1d-4c7e-9a62-0d4e1b7c2a90,6191",
    "00000000000000000000000000000000,tag_x,device-0,5100",
    "00000000000000000000000000000000,tag_x,device-4,1652",
    "ffffffffffffffffffffffffffffffff,a,'',1145",
    "d17905759f86843f782bc151cf717ecf,keyboard-lm,sim-000000,7163",
    "d17905759f86843f782bc151cf717ecf,keyboard-lm,sim-000001,6690",
    "d17905759f86843f782bc151cf717ecf,keyboard-lm,sim-000002,4182",
    "d17905759f86843f782bc151cf717ecf,keyboard-lm,sim-000003,3742",
    "d17905759f86843f782bc151cf717ecf,keyboard-lm,sim-000004,4574"
  })
  void rolloutBucketMatchesTheReference(String salt, String tag, String device, int expected) {
    assertEquals(expected, Rollout.bucket(salt, tag, device));
  }
}
