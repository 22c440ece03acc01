package dev.aoepack.repo;

import dev.aoepack.json.Canonical;
import dev.aoepack.json.Json;
import dev.aoepack.json.JsonException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The outcome of a check: what to do (§15.7), which release, and why, with the versions of
 * the root and manifest it was decided under. Immutable.
 */
public final class Decision {
  /** What the device does. */
  public enum Action {
    /** Keep running what runs. */
    KEEP("keep"),
    /** Download {@link #release()}, verify it (§15.6 steps 12-16) and switch to it. */
    DOWNLOAD("download"),
    /** Stop using the installed model and run the local one. */
    REVERT_TO_LOCAL("revert-to-local");

    private final String json;

    Action(String json) {
      this.json = json;
    }

    /** The name {@code aoe-pack client check --json} prints. */
    public String json() {
      return json;
    }
  }

  private final Action action;
  private final String tag;
  private final Release release;
  private final String reason;
  private final String running;
  private final List<String> skipped;
  private final long rootVersion;
  private final long manifestVersion;
  private final Snapshot snapshot;
  private final Root root;

  Decision(Action action, String tag, Release release, String reason, String running, List<String> skipped) {
    this(action, tag, release, reason, running, skipped, 0, 0, null, null);
  }

  private Decision(
      Action action,
      String tag,
      Release release,
      String reason,
      String running,
      List<String> skipped,
      long rootVersion,
      long manifestVersion,
      Snapshot snapshot,
      Root root) {
    this.action = action;
    this.tag = tag;
    this.release = release;
    this.reason = reason;
    this.running = running;
    this.skipped = Collections.unmodifiableList(new ArrayList<String>(skipped));
    this.rootVersion = rootVersion;
    this.manifestVersion = manifestVersion;
    this.snapshot = snapshot;
    this.root = root;
  }

  Decision under(Root root, Snapshot snapshot) {
    return new Decision(action, tag, release, reason, running, skipped, root.version(), snapshot.version, snapshot, root);
  }

  public Action action() {
    return action;
  }

  public String tag() {
    return tag;
  }

  /** The release to download; null to keep or revert. */
  public Release release() {
    return release;
  }

  /** The chosen release's version text, or null. */
  public String version() {
    return release == null ? null : release.version().toString();
  }

  public String url() {
    return release == null ? null : release.url();
  }

  public String sha256() {
    return release == null ? null : release.sha256();
  }

  /** The chosen release's size in bytes, or -1 when there is none. */
  public long size() {
    return release == null ? -1 : release.size();
  }

  /** Why, in the reference's words (the same strings as {@code aoe-pack client check}). */
  public String reason() {
    return reason;
  }

  /** What the device runs now: the installed version, or {@code "<local> (local)"}. */
  public String running() {
    return running;
  }

  /** Newer releases passed over, each with why, newest first. */
  public List<String> skipped() {
    return skipped;
  }

  /** The version of the root the decision was made under. */
  public long rootVersion() {
    return rootVersion;
  }

  /** The version of the manifest (or index) the decision was made from. */
  public long manifestVersion() {
    return manifestVersion;
  }

  /**
   * The keys the chosen release's bundle must be signed by (§15.6 step 14), threshold 1: its
   * {@code signers} looked up in {@code bundleKeys}, or the trusted root's keys when it names
   * none. {@code repository-format} when a signer is missing from {@code bundleKeys} or is
   * another key there. Empty when there is no release.
   */
  public Map<String, dev.aoepack.keys.TrustedKey> bundleKeys() throws dev.aoepack.AoeException {
    Map<String, dev.aoepack.keys.TrustedKey> out = new LinkedHashMap<String, dev.aoepack.keys.TrustedKey>();
    if (release == null || root == null) {
      return out;
    }
    for (String kid : release.signers()) {
      String pem = snapshot.bundleKeys.get(kid);
      if (pem == null) {
        throw new dev.aoepack.AoeException(
            "repository-format",
            "manifest: " + release.version() + " names signer " + kid.substring(0, 16) + "…, which bundleKeys lacks");
      }
      out.put(kid, Root.signingKey(kid, pem, "manifest: bundleKeys[" + kid.substring(0, 16) + "…]"));
    }
    if (out.isEmpty()) {
      out.putAll(root.keys());
    }
    return out;
  }

  /**
   * The members of {@code aoe-pack client check --json} (schemas/cli/client-check.schema.json)
   * but {@code bundle}, {@code unpacked}, {@code repository}, {@code via} and {@code delta}, with
   * the same values, as canonical JSON (members sorted).
   */
  public String toJson() {
    Map<String, Object> d = new LinkedHashMap<String, Object>();
    d.put("ok", Boolean.TRUE);
    d.put("action", action.json());
    d.put("tag", tag);
    d.put("version", release == null ? Json.NULL : version());
    d.put("url", release == null ? Json.NULL : url());
    d.put("sha256", release == null ? Json.NULL : sha256());
    d.put("size", release == null ? Json.NULL : (Object) Long.valueOf(size()));
    d.put("reason", reason);
    d.put("running", running);
    d.put("skipped", new ArrayList<Object>(skipped));
    d.put("rootVersion", rootVersion);
    d.put("manifestVersion", manifestVersion);
    try {
      return new String(Canonical.encode(d), StandardCharsets.UTF_8);
    } catch (JsonException e) {
      throw new IllegalStateException("a decision holds only strings and integers", e);
    }
  }

  @Override
  public String toString() {
    return "Decision[" + action.json() + " " + tag + (release == null ? "" : " " + release.version()) + ": " + reason + "]";
  }
}
