package dev.aoepack.json;

/**
 * Text that is not strict JSON, or a value with no canonical form.
 *
 * <p>It carries no error code: what a malformed document means depends on
 * which document it is ({@code manifest} in a bundle, {@code
 * repository-format} in a repository), so callers turn it into an {@link
 * dev.aoepack.AoeException} with their own code.
 */
public final class JsonException extends Exception {
  private static final long serialVersionUID = 1L;

  public JsonException(String message) {
    super(message);
  }
}
