package dev.aoepack.repo;

import dev.aoepack.AoeException;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What the decision reads, from {@code manifest.json} or from {@code index.json} and the
 * tag's document (§15.12): the version, the expiry, the tags' raw entries (each checked on
 * first use) and {@code bundleKeys}.
 */
final class Snapshot {
  final long version;
  final long expiresMillis;
  final Map<String, Object> models;
  final Map<String, String> bundleKeys;
  private final Map<String, ModelEntry> checked = new HashMap<String, ModelEntry>();

  Snapshot(long version, long expiresMillis, Map<String, Object> models, Map<String, String> bundleKeys) {
    this.version = version;
    this.expiresMillis = expiresMillis;
    this.models = Collections.unmodifiableMap(new LinkedHashMap<String, Object>(models));
    this.bundleKeys = Collections.unmodifiableMap(new LinkedHashMap<String, String>(bundleKeys));
  }

  /** The checked entry of {@code tag}, or null when there is none; {@code repository-format} when broken. */
  synchronized ModelEntry entry(String tag) throws AoeException {
    ModelEntry e = checked.get(tag);
    if (e == null && models.containsKey(tag)) {
      e = ModelEntry.check(tag, models.get(tag));
      checked.put(tag, e);
    }
    return e;
  }

  /** The manifest's top level (§15.4, "When to check"): {@code repository-format} when it breaks the schema. */
  static Snapshot manifest(Object body) throws AoeException {
    Fields f = new Fields("manifest");
    Map<String, Object> d = f.object(body, "(top level)");
    for (String name : new String[] {"_type", "formatVersion", "version", "expires", "models"}) {
      f.required(d, name, "(top level)");
    }
    f.constant(d.get("_type"), "aoe.repository.manifest", "_type");
    f.constant(d.get("formatVersion"), 1L, "formatVersion");
    long version = f.integer(d.get("version"), "version", 1, Fields.MAX_SAFE);
    String expires = f.matching(d.get("expires"), "expires", Fields.Pattern.TIMESTAMP);
    Map<String, Object> models = f.object(d.get("models"), "models");
    for (Map.Entry<String, Object> e : models.entrySet()) {
      if (!Fields.Pattern.TAG.matches(e.getKey())) {
        throw f.error("models", PyRepr.of(e.getKey()) + " does not match " + Fields.Pattern.TAG.name);
      }
      f.object(e.getValue(), "models/" + e.getKey());
    }
    Map<String, String> keys = d.containsKey("bundleKeys") ? bundleKeys(f, d.get("bundleKeys")) : new HashMap<String, String>();
    return new Snapshot(version, expiry(expires, "manifest"), models, keys);
  }

  static Map<String, String> bundleKeys(Fields f, Object raw) throws AoeException {
    Map<String, Object> m = f.object(raw, "bundleKeys");
    Map<String, String> out = new LinkedHashMap<String, String>();
    for (Map.Entry<String, Object> e : m.entrySet()) {
      if (!Fields.Pattern.HEX64.matches(e.getKey())) {
        throw f.error("bundleKeys", PyRepr.of(e.getKey()) + " does not match ^[0-9a-f]{64}$");
      }
      out.put(e.getKey(), f.pem(e.getValue(), "bundleKeys/" + e.getKey()));
    }
    return out;
  }

  static long expiry(String text, String what) throws AoeException {
    long t = Timestamps.parseMillis(text);
    if (t < 0) {
      // The reference names the manifest in this message for every document.
      throw new AoeException("repository-format", "manifest: expires " + PyRepr.of(text) + " is not a real date");
    }
    return t;
  }
}
