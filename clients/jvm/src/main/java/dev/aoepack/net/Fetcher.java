package dev.aoepack.net;

import dev.aoepack.AoeException;

/**
 * Where repository documents come from: an HTTP(S) server or a folder.
 *
 * <p>The update procedure reads every document through this interface, so it
 * does no I/O of its own and tests drive it with a folder. Paths are relative
 * to the repository ({@code roots/2.root.json}, {@code index.json}, {@code
 * tags/<tag>/3.json}).
 */
public interface Fetcher {
  /**
   * The bytes at {@code path}, or null if the repository has no such file (HTTP 404 or 410,
   * or no such file in a folder).
   *
   * @throws AoeException {@code download-too-large} when the file is longer than {@code
   *     maxBytes} (nothing beyond {@code maxBytes + 1} bytes is read), {@code download-too-slow}
   *     past a time limit (deadline, minimum rate; {@link TransferLimits}), {@code store} for a
   *     name that could leave the repository ({@code ..}, an absolute path, a link out of a
   *     folder), {@code download} for any other failure (network, server error, idle timeout)
   */
  byte[] fetch(String path, long maxBytes) throws AoeException;
}
