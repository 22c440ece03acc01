package dev.aoepack.internal.zip;

import java.io.Closeable;
import java.io.IOException;

/**
 * Positioned reads of a bundle's bytes. Internal: not part of the library's API.
 */
public interface Source extends Closeable {
  /** The number of bytes. */
  long size();

  /**
   * Reads up to {@code len} bytes at {@code position} into {@code buf}; returns
   * how many were read, fewer only at the end of the data.
   */
  int read(long position, byte[] buf, int off, int len) throws IOException;
}
