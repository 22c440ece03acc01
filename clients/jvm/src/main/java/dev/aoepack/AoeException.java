package dev.aoepack;

/**
 * The one exception the library throws for anything it refuses or cannot do.
 *
 * <p>{@link #code()} is the stable error code of docs/format.md, the same string
 * {@code aoe-pack} prints in its {@code --json} errors ({@code signature},
 * {@code threshold}, {@code rollback}, {@code expired}, ...), so an app can
 * branch on it and the two implementations can be checked against the same
 * attack corpus. The message says what was wrong and what to do.
 */
public class AoeException extends Exception {
  private static final long serialVersionUID = 1L;

  private final String code;

  public AoeException(String code, String message) {
    super(message);
    this.code = code;
  }

  public AoeException(String code, String message, Throwable cause) {
    super(message, cause);
    this.code = code;
  }

  /** The error code of docs/format.md, e.g. {@code "threshold"}. */
  public final String code() {
    return code;
  }

  @Override
  public String toString() {
    return "AoeException[" + code + "]: " + getMessage();
  }
}
