package dev.aoepack.internal.zip;

import java.io.File;
import java.io.IOException;
import java.io.RandomAccessFile;

/**
 * A {@link Source} over a {@link RandomAccessFile}; its size is taken once, when
 * opened. Internal: not part of the library's API.
 */
public final class FileSource implements Source {
  private final RandomAccessFile file;
  private final long size;

  public FileSource(File path) throws IOException {
    this.file = new RandomAccessFile(path, "r");
    long length;
    try {
      length = file.length();
    } catch (IOException e) {
      file.close();
      throw e;
    }
    this.size = length;
  }

  @Override
  public long size() {
    return size;
  }

  @Override
  public synchronized int read(long position, byte[] buf, int off, int len) throws IOException {
    int done = 0;
    file.seek(position);
    while (done < len) {
      int n = file.read(buf, off + done, len - done);
      if (n < 0) {
        break;
      }
      done += n;
    }
    return done;
  }

  @Override
  public void close() throws IOException {
    file.close();
  }
}
