package dev.aoepack.net;

import dev.aoepack.AoeException;

/**
 * A {@link Fetcher} that can ask "has it changed since the copy I hold?" (docs/format.md §15.1,
 * "Conditional requests"): an unchanged document then costs an answer without a body (HTTP
 * {@code 304 Not Modified}). {@link HttpFetcher} is one; a fetcher that is not is read in full
 * every time, which is always correct.
 */
public interface ConditionalFetcher extends Fetcher {
  /**
   * The document at {@code path}, or "not modified" when the copy {@code held} names is still
   * it; null when the repository has no such file. {@code held} (null or {@link
   * Validators#NONE} for none) are sent as {@code If-None-Match} and {@code If-Modified-Since}.
   *
   * @throws AoeException as {@link Fetcher#fetch(String, long)}; also {@code download} for a
   *     "not modified" answer to a request that named no copy
   */
  Fetched fetch(String path, long maxBytes, Validators held) throws AoeException;
}
