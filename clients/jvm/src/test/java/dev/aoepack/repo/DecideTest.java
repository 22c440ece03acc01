package dev.aoepack.repo;

import static dev.aoepack.repo.TestRepository.map;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.aoepack.json.Json;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The decision of §15.7 against the reference's, string for string. The expected rows were
 * produced by {@code aoe_pack.client.decide.decide} on the same entries
 * ({@code PYTHONPATH=$PWD /work/main/.venv/bin/python decide_cases.py}, a script that builds
 * this entry with {@code Manifest.from_dict} and prints, per device, [tag, deviceId, app,
 * local, installed, channels, runtimes (empty: the default), action, version, reason, running,
 * skipped] as JSON).
 *
 * <p>The entry: releases 1.0.9; 1.0.10 (25 percent, app 3.2.0 to 4.0.0-rc.1); 1.1.0-rc.1 (beta,
 * tflite and onnx, requires gpu-delegate); 1.1.0 (critical, yanked "crashes on Android 9");
 * 1.2.0 (0.01 percent, mnn); every salt d17905759f86843f782bc151cf717ecf. Tags: k is the entry,
 * p the entry pinned to 1.0.9, off the entry pinned to local.
 */
class DecideTest {
  static final String EXPECTED = """
      ["k", "sim-000000", "3.2.0", "1.0.0", null, ["stable"], [], "download", "1.0.10", "1.0.10 > 1.0.0: in the 25% rollout", "1.0.0 (local)", ["1.2.0: outside its 0.01% rollout", "1.1.0: yanked (crashes on Android 9)", "1.1.0-rc.1: channel beta"]]
      ["k", "sim-000003", "3.2.0", "1.0.0", null, ["stable"], [], "download", "1.0.9", "1.0.9 > 1.0.0: in the 100% rollout", "1.0.0 (local)", ["1.2.0: outside its 0.01% rollout", "1.1.0: yanked (crashes on Android 9)", "1.1.0-rc.1: channel beta", "1.0.10: outside its 25% rollout"]]
      ["k", "sim-000003", "3.2.0", "1.0.0", "1.1.0", ["stable", "beta"], ["tflite", "gpu-delegate"], "download", "1.1.0-rc.1", "1.1.0 was yanked: crashes on Android 9; 1.1.0-rc.1 replaces it", "1.1.0", ["1.2.0: no runtime of mnn on the device", "1.1.0: yanked (crashes on Android 9)"]]
      ["k", "d", "5.0.0", "1.0.0", null, ["stable"], ["mnn"], "keep", null, "no eligible release above 1.0.0 (1.2.0: outside its 0.01% rollout)", "1.0.0 (local)", ["1.2.0: outside its 0.01% rollout", "1.1.0: yanked (crashes on Android 9)", "1.1.0-rc.1: channel beta", "1.0.10: needs app <= 4.0.0-rc.1", "1.0.9: no runtime of tflite on the device"]]
      ["p", "d", "3.2.0", "1.0.0", "1.0.10", ["stable"], [], "download", "1.0.9", "pinned to 1.0.9; 1.0.9 replaces it", "1.0.10", []]
      ["p", "d", "3.2.0", "1.1.0", null, ["stable"], [], "download", "1.0.9", "pinned to 1.0.9", "1.1.0 (local)", []]
      ["off", "d", "3.2.0", "1.0.0", "1.0.9", ["stable"], [], "revert-to-local", null, "pinned to the local model (kill switch)", "1.0.9", []]
      ["k", "d", "3.2.0", "1.0.10", null, ["stable"], [], "keep", null, "no eligible release above 1.0.10 (1.2.0: outside its 0.01% rollout)", "1.0.10 (local)", ["1.2.0: outside its 0.01% rollout", "1.1.0: yanked (crashes on Android 9)", "1.1.0-rc.1: channel beta"]]
      ["k", "sim-000001", "3.0.0", "1.0.0", "1.0.9", ["stable"], ["tflite", "mnn"], "keep", null, "no eligible release above 1.0.9 (1.2.0: outside its 0.01% rollout)", "1.0.9", ["1.2.0: outside its 0.01% rollout", "1.1.0: yanked (crashes on Android 9)", "1.1.0-rc.1: channel beta", "1.0.10: needs app >= 3.2.0"]]
      """;

  static Map<String, Object> rel(String v, Object... extra) throws Exception {
    Map<String, Object> r = TestRepository.release(v);
    r.put("rollout", map("basisPoints", 10000L, "salt", "d17905759f86843f782bc151cf717ecf"));
    for (int i = 0; i < extra.length; i += 2) {
      if (extra[i].equals("bp")) {
        r.put("rollout", map("basisPoints", extra[i + 1], "salt", "d17905759f86843f782bc151cf717ecf"));
      } else {
        r.put((String) extra[i], extra[i + 1]);
      }
    }
    return r;
  }

  @Test
  void decisionsMatchTheReferenceStringForString() throws Exception {
    List<Object> releases = List.of(
        rel("1.0.9"),
        rel("1.0.10", "bp", 2500L, "minAppVersion", "3.2.0", "maxAppVersion", "4.0.0-rc.1"),
        rel("1.1.0-rc.1", "channel", "beta", "requiredRuntimes", List.of("gpu-delegate"), "runtimes", List.of("tflite", "onnx")),
        rel("1.1.0", "critical", true, "yanked", map("reason", "crashes on Android 9")),
        rel("1.2.0", "bp", 1L, "runtimes", List.of("mnn")));
    Snapshot s = new Snapshot(7, 0, map(
        "k", map("releases", releases),
        "p", map("releases", releases, "pin", "1.0.9"),
        "off", map("releases", releases, "pin", "local")), Map.of());
    int rows = 0;
    for (String line : EXPECTED.strip().split("\n")) {
      List<?> row = (List<?>) Json.parse(line.strip().getBytes(StandardCharsets.UTF_8), 10, 1000);
      Device.Builder b = Device.builder().tag((String) row.get(0)).deviceId((String) row.get(1))
          .appVersion((String) row.get(2)).localVersion((String) row.get(3));
      if (row.get(4) != Json.NULL) {
        b.installedVersion((String) row.get(4));
      }
      for (Object c : (List<?>) row.get(5)) {
        b.channel((String) c);
      }
      for (Object r : (List<?>) row.get(6)) {
        b.runtime((String) r);
      }
      Decision d = Decide.decide(s, (String) row.get(0), b.build());
      String version = row.get(8) == Json.NULL ? null : (String) row.get(8);
      assertEquals(row.get(7), d.action().json(), line);
      assertEquals(version, d.version(), line);
      assertEquals(row.get(9), d.reason(), line);
      assertEquals(row.get(10), d.running(), line);
      assertEquals(new ArrayList<Object>((List<?>) row.get(11)), new ArrayList<Object>(d.skipped()), line);
      rows++;
    }
    assertEquals(9, rows);
  }
}
