package dev.aoepack.net;

/**
 * The answer to a conditional read ({@link ConditionalFetcher}): the document's bytes with the
 * validators to keep for the next read, or "not modified", meaning only "the bytes you hold".
 *
 * <p>"Not modified" vouches for nothing: the caller verifies the bytes it holds again exactly as
 * if they had just been downloaded (docs/format.md §15.1). Immutable.
 */
public final class Fetched {
  private final byte[] data;
  private final Validators validators;

  private Fetched(byte[] data, Validators validators) {
    if (validators == null) {
      throw new NullPointerException("validators");
    }
    this.data = data;
    this.validators = validators;
  }

  /** A new answer: {@code data} and the validators that came with it. */
  public static Fetched of(byte[] data, Validators validators) {
    return new Fetched(data.clone(), validators);
  }

  /** The copy named by {@code held} is still the document. */
  public static Fetched notModified(Validators held) {
    return new Fetched(null, held);
  }

  /** Whether the server answered "not modified" (HTTP 304). */
  public boolean notModified() {
    return data == null;
  }

  /** The bytes of a new answer (a copy); null when {@link #notModified()}. */
  public byte[] data() {
    return data == null ? null : data.clone();
  }

  /** The bytes without a copy, for the library's own use (not API). */
  byte[] bytes() {
    return data;
  }

  /**
   * What to keep with the bytes for the next conditional read: those of the new answer, or,
   * when {@link #notModified()}, the ones the request sent.
   */
  public Validators validators() {
    return validators;
  }
}
