package dev.aoepack;

/**
 * A JCA algorithm the bundle or repository needs is not offered by any
 * installed provider (for example {@code Ed25519} before Android API 33).
 *
 * <p>Its code is {@code algorithm-unavailable}; {@link #algorithm()} names the
 * JCA algorithm, and the message names the provider to add (see
 * docs/android.md). Nothing was verified: treat it as a failed check, never as
 * a pass.
 */
public final class AlgorithmUnavailableException extends AoeException {
  private static final long serialVersionUID = 1L;

  private final String algorithm;

  public AlgorithmUnavailableException(String algorithm, String hint, Throwable cause) {
    super(
        "algorithm-unavailable",
        "no installed security provider offers " + algorithm + ": " + hint,
        cause);
    this.algorithm = algorithm;
  }

  /** The JCA name that was asked for, e.g. {@code "Ed25519"} or {@code "XDH"}. */
  public String algorithm() {
    return algorithm;
  }
}
