package dev.aoepack.repo;

import dev.aoepack.AoeException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * What the decision (§15.7) knows about the device and the app. Build one with {@link
 * #builder}; immutable.
 *
 * <p>As {@code aoe-pack client check} does: an installed version whose text equals the local
 * version counts as none (the local model runs); channels default to {@code stable}; runtimes
 * default to {@code tflite, onnx, ort, mnn, ncnn}. {@link Builder#build} refuses ({@code usage})
 * what the CLI refuses: a version that does not parse, an empty device id, a channel or runtime
 * name the schema does not allow.
 */
public final class Device {
  /** The runtimes a device has when none are given. */
  public static final List<String> DEFAULT_RUNTIMES =
      Collections.unmodifiableList(Arrays.asList("tflite", "onnx", "ort", "mnn", "ncnn"));

  private final String tag;
  private final String deviceId;
  private final String appVersion;
  private final String localVersion;
  private final String installedVersion;
  private final List<String> channels;
  private final Set<String> runtimes;

  private Device(Builder b) {
    this.tag = b.tag;
    this.deviceId = b.deviceId;
    this.appVersion = b.appVersion;
    this.localVersion = b.localVersion != null ? b.localVersion : b.installedVersion;
    this.installedVersion =
        b.installedVersion != null && !b.installedVersion.isEmpty() && !b.installedVersion.equals(this.localVersion)
            ? b.installedVersion
            : null;
    this.channels = Collections.unmodifiableList(new ArrayList<String>(b.channels.isEmpty() ? Arrays.asList("stable") : b.channels));
    this.runtimes = Collections.unmodifiableSet(new LinkedHashSet<String>(b.runtimes.isEmpty() ? DEFAULT_RUNTIMES : b.runtimes));
  }

  public static Builder builder() {
    return new Builder();
  }

  /** The model tag the app uses. */
  public String tag() {
    return tag;
  }

  public String deviceId() {
    return deviceId;
  }

  public String appVersion() {
    return appVersion;
  }

  /** The version of the model shipped in the app. */
  public String localVersion() {
    return localVersion;
  }

  /** The version of the downloaded model in use, or null when the local model runs. */
  public String installedVersion() {
    return installedVersion;
  }

  public List<String> channels() {
    return channels;
  }

  public Set<String> runtimes() {
    return runtimes;
  }

  /** Builds a {@link Device}. */
  public static final class Builder {
    private String tag;
    private String deviceId;
    private String appVersion;
    private String localVersion;
    private String installedVersion;
    private final List<String> channels = new ArrayList<String>();
    private final List<String> runtimes = new ArrayList<String>();

    private Builder() {}

    public Builder tag(String tag) {
      this.tag = tag;
      return this;
    }

    /** A stable id of this installation (a random UUID drawn at first launch and kept). */
    public Builder deviceId(String deviceId) {
      this.deviceId = deviceId;
      return this;
    }

    public Builder appVersion(String appVersion) {
      this.appVersion = appVersion;
      return this;
    }

    /** The version of the model shipped in the app (default: the installed version). */
    public Builder localVersion(String localVersion) {
      this.localVersion = localVersion;
      return this;
    }

    /** The version of the downloaded model in use; null (the default) when the local one runs. */
    public Builder installedVersion(String installedVersion) {
      this.installedVersion = installedVersion;
      return this;
    }

    /** Adds a channel the device follows; none given means {@code stable}. */
    public Builder channel(String channel) {
      channels.add(channel);
      return this;
    }

    /** Adds a runtime or capability name; none given means {@link #DEFAULT_RUNTIMES}. */
    public Builder runtime(String runtime) {
      runtimes.add(runtime);
      return this;
    }

    /** The device; {@code usage} for a missing or malformed input. */
    public Device build() throws AoeException {
      if (tag == null || !Fields.Pattern.TAG.matches(tag)) {
        throw new AoeException("usage", "tag " + (tag == null ? "is missing" : PyRepr.of(tag) + " is not a model tag"));
      }
      if (installedVersion != null && !installedVersion.isEmpty()) {
        cliVersion(installedVersion, "installed version");
      }
      if (appVersion == null || (localVersion == null && (installedVersion == null || installedVersion.isEmpty()))) {
        throw new AoeException("usage", "the app version and the local model version are required");
      }
      cliVersion(appVersion, "app version");
      cliVersion(localVersion != null ? localVersion : installedVersion, "local model version");
      if (deviceId == null || deviceId.trim().isEmpty()) {
        throw new AoeException(
            "usage",
            "the device id is empty: every device would fall in the same rollout bucket; pass a stable"
                + " per-install id (e.g. a random UUID kept by the app)");
      }
      for (int i = 0; i < deviceId.length(); i++) {
        char c = deviceId.charAt(i);
        boolean paired = Character.isHighSurrogate(c)
            ? i + 1 < deviceId.length() && Character.isLowSurrogate(deviceId.charAt(++i))
            : !Character.isLowSurrogate(c);
        if (!paired) {
          throw new AoeException(
              "usage", "the device id holds an unpaired UTF-16 surrogate: it has no UTF-8 bytes to bucket");
        }
      }
      for (String c : channels) {
        if (!Fields.Pattern.CHANNEL.matches(c)) {
          throw new AoeException("usage", "channel " + PyRepr.of(c) + ": use lowercase letters, digits and '-'");
        }
      }
      for (String r : runtimes) {
        if (!Fields.Pattern.RUNTIME.matches(r)) {
          throw new AoeException("usage", "runtime " + PyRepr.of(r) + ": use a lowercase runtime name (tflite, mnn, ...)");
        }
      }
      return new Device(this);
    }

    private static void cliVersion(String text, String what) throws AoeException {
      try {
        Version.parse(text, what);
      } catch (AoeException e) {
        throw new AoeException("usage", e.getMessage(), e);
      }
    }
  }
}
