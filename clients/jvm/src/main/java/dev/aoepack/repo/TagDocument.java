package dev.aoepack.repo;

import dev.aoepack.AoeException;
import java.util.HashMap;
import java.util.Map;

/** The signed content of {@code tags/<tag>/N.json} (§15.12): one tag's entry at one version. */
final class TagDocument {
  final String tag;
  final long version;
  final Object model;
  final Map<String, String> bundleKeys;

  private TagDocument(String tag, long version, Object model, Map<String, String> bundleKeys) {
    this.tag = tag;
    this.version = version;
    this.model = model;
    this.bundleKeys = bundleKeys;
  }

  static TagDocument fromBody(Object body, String what) throws AoeException {
    Fields f = new Fields(what);
    Map<String, Object> d = f.object(body, "(top level)");
    for (String name : new String[] {"_type", "formatVersion", "tag", "version", "model"}) {
      f.required(d, name, "(top level)");
    }
    f.constant(d.get("_type"), "aoe.repository.tag", "_type");
    f.constant(d.get("formatVersion"), 1L, "formatVersion");
    String tag = f.matching(d.get("tag"), "tag", Fields.Pattern.TAG);
    long version = f.integer(d.get("version"), "version", 1, Fields.MAX_SAFE);
    if (d.containsKey("previous")) {
      f.integer(d.get("previous"), "previous", 1, Fields.MAX_SAFE);
    }
    Object model = f.object(d.get("model"), "model");
    Map<String, String> keys =
        d.containsKey("bundleKeys") ? Snapshot.bundleKeys(f, d.get("bundleKeys")) : new HashMap<String, String>();
    return new TagDocument(tag, version, model, keys);
  }
}
