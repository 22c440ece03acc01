package dev.aoepack.repo;

import dev.aoepack.AoeException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * The decision of §15.7, a pure function of a verified snapshot, the tag and the device; a
 * port of the reference's {@code aoe_pack/client/decide.py}, reasons and skipped strings
 * included.
 */
final class Decide {
  private Decide() {}

  static Decision decide(Snapshot snapshot, String tag, Device device) throws AoeException {
    Version local = Version.parse(device.localVersion(), "local model version");
    Version remote = device.installedVersion() != null ? Version.parse(device.installedVersion()) : null;
    String running = remote != null ? remote.toString() : local + " (local)";
    List<String> none = Collections.emptyList();
    ModelEntry entry = snapshot.entry(tag);
    if (entry == null) {
      return new Decision(Decision.Action.KEEP, tag, null, "the manifest has no model " + PyRepr.of(tag), running, none);
    }
    if (ModelEntry.LOCAL.equals(entry.pin)) {
      if (remote == null) {
        return new Decision(Decision.Action.KEEP, tag, null, "pinned to the local model", running, none);
      }
      return new Decision(
          Decision.Action.REVERT_TO_LOCAL, tag, null, "pinned to the local model (kill switch)", running, none);
    }
    Version app = Version.parse(device.appVersion(), "app version");
    String gone = remote != null ? whyLeave(entry, remote, local) : null;
    Version base = remote != null && gone == null ? remote : local;
    List<String> skipped = new ArrayList<String>();
    Release best = best(entry, tag, device, app, base, skipped);
    if (gone != null) {
      if (best != null && local.compareTo(best.version()) < 0) {
        return new Decision(
            Decision.Action.DOWNLOAD, tag, best, gone + "; " + best.version() + " replaces it", running, skipped);
      }
      return new Decision(Decision.Action.REVERT_TO_LOCAL, tag, null, gone, running, skipped);
    }
    if (best != null && base.compareTo(best.version()) < 0) {
      String why = best.critical() ? "critical release" : "in the " + best.rolloutPercent() + "% rollout";
      if (entry.pin != null) {
        why = "pinned to " + entry.pin;
      }
      return new Decision(
          Decision.Action.DOWNLOAD, tag, best, best.version() + " > " + base + ": " + why, running, skipped);
    }
    if (entry.pin != null && best != null && best.version().compareTo(base) < 0) {
      return new Decision(Decision.Action.DOWNLOAD, tag, best, "pinned to " + entry.pin, running, skipped);
    }
    String reason = "no eligible release above " + base;
    if (!skipped.isEmpty()) {
      reason += " (" + skipped.get(0) + ")";
    }
    return new Decision(Decision.Action.KEEP, tag, null, reason, running, skipped);
  }

  /** Why {@code r} is not eligible by E1-E6 (the device id has no part in them), or null. */
  static String whyNot(Release r, Device device, Version app) {
    if (r.yanked() != null) {
      return r.version() + ": yanked (" + r.yanked() + ")";
    }
    if (!device.channels().contains(r.channel())) {
      return r.version() + ": channel " + r.channel();
    }
    if (r.minAppVersion() != null && app.compareTo(r.minAppVersion()) < 0) {
      return r.version() + ": needs app >= " + r.minAppVersion();
    }
    if (r.maxAppVersion() != null && r.maxAppVersion().compareTo(app) < 0) {
      return r.version() + ": needs app <= " + r.maxAppVersion();
    }
    boolean any = false;
    for (String rt : r.runtimes()) {
      any |= device.runtimes().contains(rt);
    }
    if (!any) {
      return r.version() + ": no runtime of " + join(r.runtimes()) + " on the device";
    }
    List<String> missing = new ArrayList<String>();
    for (String rt : r.requiredRuntimes()) {
      if (!device.runtimes().contains(rt)) {
        missing.add(rt);
      }
    }
    if (!missing.isEmpty()) {
      return r.version() + ": device lacks " + join(missing);
    }
    return null;
  }

  /** The highest eligible release above {@code floor} (any version for a pin); what was passed over goes to {@code skipped}. */
  private static Release best(
      ModelEntry entry, String tag, Device device, Version app, Version floor, List<String> skipped)
      throws AoeException {
    if (entry.pin != null && !ModelEntry.LOCAL.equals(entry.pin)) {
      Release pinned = entry.find(Version.parse(entry.pin));
      String why = pinned == null ? null : whyNot(pinned, device, app);
      if (pinned != null && why == null) {
        return pinned;
      }
      skipped.add(why != null ? why : entry.pin + ": not a release");
      return null;
    }
    for (int i = entry.releases.size() - 1; i >= 0; i--) {
      Release r = entry.releases.get(i);
      if (floor.compareTo(r.version()) >= 0) {
        break;
      }
      String why = whyNot(r, device, app);
      if (why != null) {
        skipped.add(why);
      } else if (r.critical() || r.basisPoints() >= Rollout.BUCKETS) {
        return r;
      } else if (r.basisPoints() > 0 && Rollout.bucket(r.salt(), tag, device.deviceId()) < r.basisPoints()) {
        return r;
      } else {
        skipped.add(r.version() + ": outside its " + r.rolloutPercent() + "% rollout");
      }
    }
    return null;
  }

  /** Why the device must stop running its downloaded model, or null (rule 3). */
  private static String whyLeave(ModelEntry entry, Version remote, Version local) throws AoeException {
    Release current = entry.find(remote);
    if (current != null && current.yanked() != null) {
      return remote + " was yanked: " + current.yanked();
    }
    if (entry.pin != null) {
      return Version.parse(entry.pin).equals(remote) ? null : "pinned to " + entry.pin;
    }
    if (remote.compareTo(local) < 0) {
      return "the app's own model " + local + " is newer than the downloaded " + remote;
    }
    return null;
  }

  private static String join(List<String> items) {
    StringBuilder b = new StringBuilder();
    for (String s : items) {
      if (b.length() > 0) {
        b.append(", ");
      }
      b.append(s);
    }
    return b.toString();
  }
}
