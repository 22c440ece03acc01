package dev.aoepack.repo;

import dev.aoepack.AoeException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * One tag's entry (§15.4): its releases, lowest first, and its pin; checked by the schema
 * and the rules beyond it when the device first uses the tag, as the reference does.
 */
final class ModelEntry {
  static final String LOCAL = "local";

  final List<Release> releases;
  final String pin;

  private ModelEntry(List<Release> releases, String pin) {
    this.releases = Collections.unmodifiableList(releases);
    this.pin = pin;
  }

  /** The release of {@code v}'s precedence, or null. */
  Release find(Version v) {
    for (Release r : releases) {
      if (r.version().equals(v)) {
        return r;
      }
    }
    return null;
  }

  static ModelEntry check(String tag, Object raw) throws AoeException {
    Fields f = new Fields("manifest: models/" + tag);
    Map<String, Object> d = f.object(raw, "(top level)");
    List<Object> rawReleases = f.array(f.required(d, "releases", "(top level)"), "releases");
    String pin = null;
    if (d.containsKey("pin")) {
      pin = f.string(d.get("pin"), "pin");
      if (!pin.equals(LOCAL) && !Fields.Pattern.SEMVER.matches(pin)) {
        throw f.error("pin", PyRepr.of(pin) + " is not valid under any of the given schemas");
      }
    }
    List<Map<String, Object>> items = new ArrayList<Map<String, Object>>();
    for (int i = 0; i < rawReleases.size(); i++) {
      items.add(schema(f, rawReleases.get(i), "releases/" + i));
    }
    // The rules beyond the schema (aoe_pack/repository/model.py _model_from_dict).
    List<Release> releases = new ArrayList<Release>();
    Version previous = null;
    for (Map<String, Object> r : items) {
      String text = (String) r.get("version");
      Version v;
      int code;
      try {
        v = Version.parse(text);
        code = v.versionCode();
      } catch (AoeException e) {
        throw new AoeException("repository-format", "manifest: " + tag + " " + text + ": " + e.getMessage(), e);
      }
      long declared = (Long) r.get("versionCode");
      if (code != declared) {
        throw new AoeException(
            "repository-format",
            "manifest: " + tag + " " + text + ": versionCode " + declared + " should be " + code);
      }
      if (previous != null && previous.compareTo(v) >= 0) {
        throw new AoeException(
            "repository-format",
            "manifest: " + tag + ": releases must be sorted by semver precedence without duplicates ("
                + previous + " then " + v + ")");
      }
      Version min = null;
      Version max = null;
      try {
        if (r.containsKey("minAppVersion")) {
          min = Version.parse((String) r.get("minAppVersion"), "app version");
        }
        if (r.containsKey("maxAppVersion")) {
          max = Version.parse((String) r.get("maxAppVersion"), "app version");
        }
      } catch (AoeException e) {
        throw new AoeException("repository-format", "manifest: " + tag + " " + text + ": " + e.getMessage(), e);
      }
      String sha = (String) r.get("sha256");
      if (!r.get("url").equals("bundles/" + sha + ".aoe")) {
        throw new AoeException("repository-format", "manifest: " + tag + " " + text + ": url must name its sha256");
      }
      deltas(tag, text, v, r.get("deltas"));
      previous = v;
      Map<?, ?> rollout = (Map<?, ?>) r.get("rollout");
      Map<?, ?> yanked = (Map<?, ?>) r.get("yanked");
      releases.add(
          new Release(
              v,
              code,
              (String) r.get("url"),
              (Long) r.get("size"),
              sha,
              strings(r.get("runtimes")),
              (String) r.get("channel"),
              ((Long) rollout.get("basisPoints")).intValue(),
              (String) rollout.get("salt"),
              min,
              max,
              strings(r.get("requiredRuntimes")),
              (Boolean) r.get("critical"),
              yanked == null ? null : (String) yanked.get("reason"),
              r.containsKey("signers") ? strings(r.get("signers")) : new ArrayList<String>()));
    }
    ModelEntry entry = new ModelEntry(releases, pin);
    if (pin != null && !pin.equals(LOCAL)) {
      Version p = Version.tryParse(pin);
      if (p == null) {
        throw new AoeException("repository-format", "manifest: " + tag + ": pin " + PyRepr.of(pin) + " is not a version");
      }
      if (entry.find(p) == null) {
        throw new AoeException(
            "repository-format", "manifest: " + tag + " is pinned to " + pin + ", which is not a release");
      }
    }
    return entry;
  }

  private static List<String> strings(Object list) {
    List<String> out = new ArrayList<String>();
    for (Object o : (List<?>) list) {
      out.add((String) o);
    }
    return out;
  }

  private static void deltas(String tag, String text, Version v, Object raw) throws AoeException {
    if (raw == null) {
      return;
    }
    Set<Version> seen = new HashSet<Version>();
    for (Object o : (List<?>) raw) {
      Map<?, ?> d = (Map<?, ?>) o;
      if (!d.get("url").equals("deltas/" + d.get("sha256") + ".aoed")) {
        throw new AoeException("repository-format", "manifest: " + tag + " " + text + ": delta url must name its sha256");
      }
      Version base;
      try {
        base = Version.parse((String) d.get("from"));
      } catch (AoeException e) {
        throw new AoeException("repository-format", "manifest: " + tag + " " + text + ": " + e.getMessage(), e);
      }
      if (!seen.add(base) || base.compareTo(v) >= 0) {
        throw new AoeException(
            "repository-format",
            "manifest: " + tag + " " + text + ": a delta from " + d.get("from")
                + " must come from an earlier version, once");
      }
    }
  }

  /** schemas/manifest.schema.json#/$defs/release. */
  private static Map<String, Object> schema(Fields f, Object raw, String at) throws AoeException {
    Map<String, Object> r = f.object(raw, at);
    String[] required = {
      "version", "versionCode", "url", "size", "sha256", "runtimes", "artifacts", "channel", "rollout",
      "requiredRuntimes", "critical"
    };
    for (String name : required) {
      f.required(r, name, at);
    }
    f.matching(r.get("version"), at + "/version", Fields.Pattern.SEMVER);
    f.integer(r.get("versionCode"), at + "/versionCode", 0, 2099999999L);
    f.matching(r.get("url"), at + "/url", Fields.Pattern.BUNDLE_URL);
    f.integer(r.get("size"), at + "/size", 1, Long.MAX_VALUE);
    f.matching(r.get("sha256"), at + "/sha256", Fields.Pattern.HEX64);
    f.names(r.get("runtimes"), at + "/runtimes", Fields.Pattern.RUNTIME, 1, Integer.MAX_VALUE);
    List<Object> artifacts = f.array(r.get("artifacts"), at + "/artifacts");
    for (int i = 0; i < artifacts.size(); i++) {
      String where = at + "/artifacts/" + i;
      Map<String, Object> a = f.object(artifacts.get(i), where);
      f.matching(f.required(a, "runtime", where), where + "/runtime", Fields.Pattern.RUNTIME);
      if (a.containsKey("variant")) {
        String variant = f.string(a.get("variant"), where + "/variant");
        if (Fields.length(variant) > 64) {
          throw f.error(where + "/variant", "is too long");
        }
      }
    }
    f.matching(r.get("channel"), at + "/channel", Fields.Pattern.CHANNEL);
    Map<String, Object> rollout = f.object(r.get("rollout"), at + "/rollout");
    f.integer(f.required(rollout, "basisPoints", at + "/rollout"), at + "/rollout/basisPoints", 0, 10000);
    f.matching(f.required(rollout, "salt", at + "/rollout"), at + "/rollout/salt", Fields.Pattern.HEX32);
    if (r.containsKey("minAppVersion")) {
      f.matching(r.get("minAppVersion"), at + "/minAppVersion", Fields.Pattern.SEMVER);
    }
    if (r.containsKey("maxAppVersion")) {
      f.matching(r.get("maxAppVersion"), at + "/maxAppVersion", Fields.Pattern.SEMVER);
    }
    f.names(r.get("requiredRuntimes"), at + "/requiredRuntimes", Fields.Pattern.RUNTIME, 0, Integer.MAX_VALUE);
    f.bool(r.get("critical"), at + "/critical");
    if (r.containsKey("signers")) {
      f.names(r.get("signers"), at + "/signers", Fields.Pattern.HEX64, 0, 32);
    }
    if (r.containsKey("yanked")) {
      Map<String, Object> y = f.object(r.get("yanked"), at + "/yanked");
      String reason = f.string(f.required(y, "reason", at + "/yanked"), at + "/yanked/reason");
      int n = Fields.length(reason);
      if (n < 1 || n > 1024) {
        throw f.error(at + "/yanked/reason", "must be 1 to 1024 characters");
      }
    }
    if (r.containsKey("deltas")) {
      List<Object> deltas = f.array(r.get("deltas"), at + "/deltas");
      if (deltas.size() > 64) {
        throw f.error(at + "/deltas", "is too long");
      }
      for (int i = 0; i < deltas.size(); i++) {
        String where = at + "/deltas/" + i;
        Map<String, Object> d = f.object(deltas.get(i), where);
        f.matching(f.required(d, "from", where), where + "/from", Fields.Pattern.SEMVER);
        f.matching(f.required(d, "url", where), where + "/url", Fields.Pattern.DELTA_URL);
        f.integer(f.required(d, "size", where), where + "/size", 1, Long.MAX_VALUE);
        f.matching(f.required(d, "sha256", where), where + "/sha256", Fields.Pattern.HEX64);
      }
    }
    return r;
  }
}
