package dev.aoepack.internal.zip;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * The verified container structure of a v1 bundle (docs/format.md §4).
 * Internal: not part of the library's API.
 */
public final class BundleLayout {
  public final String mediaType;
  /** Every entry but {@code mimetype}, in file order. */
  public final List<ZipEntry> entries;
  public final int dosTime;
  public final int dosDate;
  public final long fileSize;

  BundleLayout(String mediaType, List<ZipEntry> entries, int dosTime, int dosDate, long fileSize) {
    this.mediaType = mediaType;
    this.entries = Collections.unmodifiableList(new ArrayList<ZipEntry>(entries));
    this.dosTime = dosTime;
    this.dosDate = dosDate;
    this.fileSize = fileSize;
  }
}
