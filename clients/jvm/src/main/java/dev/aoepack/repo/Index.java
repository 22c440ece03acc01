package dev.aoepack.repo;

import dev.aoepack.AoeException;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/** The signed content of {@code index.json} (§15.12): per tag, the version of its current document. */
final class Index {
  final long version;
  final long expiresMillis;
  final String manifestSha256;
  final Map<String, Long> tags;

  private Index(long version, long expiresMillis, String manifestSha256, Map<String, Long> tags) {
    this.version = version;
    this.expiresMillis = expiresMillis;
    this.manifestSha256 = manifestSha256;
    this.tags = Collections.unmodifiableMap(tags);
  }

  static Index fromBody(Object body) throws AoeException {
    Fields f = new Fields("index.json");
    Map<String, Object> d = f.object(body, "(top level)");
    for (String name : new String[] {"_type", "formatVersion", "version", "expires", "manifestSha256", "tags"}) {
      f.required(d, name, "(top level)");
    }
    f.constant(d.get("_type"), "aoe.repository.index", "_type");
    f.constant(d.get("formatVersion"), 1L, "formatVersion");
    long version = f.integer(d.get("version"), "version", 1, Fields.MAX_SAFE);
    String expires = f.matching(d.get("expires"), "expires", Fields.Pattern.TIMESTAMP);
    String digest = f.matching(d.get("manifestSha256"), "manifestSha256", Fields.Pattern.HEX64);
    Map<String, Object> raw = f.object(d.get("tags"), "tags");
    Map<String, Long> tags = new LinkedHashMap<String, Long>();
    for (Map.Entry<String, Object> e : raw.entrySet()) {
      if (!Fields.Pattern.TAG.matches(e.getKey())) {
        throw f.error("tags", PyRepr.of(e.getKey()) + " does not match " + Fields.Pattern.TAG.name);
      }
      tags.put(e.getKey(), f.integer(e.getValue(), "tags/" + e.getKey(), 1, Fields.MAX_SAFE));
    }
    String ahead = null;
    for (Map.Entry<String, Long> e : tags.entrySet()) {
      if (e.getValue() > version && (ahead == null || e.getKey().compareTo(ahead) < 0)) {
        ahead = e.getKey();
      }
    }
    if (ahead != null) {
      throw new AoeException(
          "repository-format",
          "index.json: tag " + ahead + " names version " + tags.get(ahead) + ", after the index's own version "
              + version);
    }
    return new Index(version, Snapshot.expiry(expires, "index.json"), digest, tags);
  }
}
