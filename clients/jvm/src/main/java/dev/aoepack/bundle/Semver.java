package dev.aoepack.bundle;

import java.util.regex.Pattern;

/**
 * Whether a string is a Semantic Versioning 2.0.0 version, exactly as the
 * reference's {@code semver.Version.is_valid} (python-semver 3) decides:
 * {@code MAJOR.MINOR.PATCH[-pre][+build]}, ASCII, no leading zeros in numbers,
 * at most 255 characters.
 */
final class Semver {
  private static final String NUMBER = "(?:0|[1-9][0-9]*)";
  private static final String PRE = "(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)";
  private static final String BUILD = "[0-9a-zA-Z-]+";
  private static final Pattern VERSION =
      Pattern.compile(
          NUMBER + "\\." + NUMBER + "\\." + NUMBER
              + "(?:-" + PRE + "(?:\\." + PRE + ")*)?"
              + "(?:\\+" + BUILD + "(?:\\." + BUILD + ")*)?");
  static final int MAX_LENGTH = 255;

  private Semver() {}

  static boolean isValid(String version) {
    return version.length() <= MAX_LENGTH && VERSION.matcher(version).matches();
  }
}
