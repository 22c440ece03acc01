package dev.aoepack.repo;

import java.util.Collections;
import java.util.Set;
import java.util.TreeSet;

/**
 * What a device remembers of the last manifest (or index) it accepted (§15.6): its version,
 * the payload digest of each kind of document accepted at that version, and the key ids of
 * the root it was accepted under.
 */
final class Floor {
  final long version;
  final String manifestSha256;
  final Set<String> rootKeys;
  final String indexSha256;

  Floor(long version, String manifestSha256, Set<String> rootKeys, String indexSha256) {
    this.version = version;
    this.manifestSha256 = manifestSha256;
    this.rootKeys = Collections.unmodifiableSet(new TreeSet<String>(rootKeys));
    this.indexSha256 = indexSha256;
  }

  /** Whether {@code root} keeps at least its threshold of the keys that set this floor. */
  boolean holdsUnder(Root root) {
    return root.keepsThresholdOf(rootKeys);
  }
}
