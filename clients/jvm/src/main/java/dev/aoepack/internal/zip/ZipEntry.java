package dev.aoepack.internal.zip;

/**
 * Where one stored entry lives in a bundle. Internal: not part of the library's API.
 */
public final class ZipEntry {
  public final String name;
  public final long headerOffset;
  /** Offset of the first data byte; a multiple of 64 for every entry but {@code mimetype}. */
  public final long dataOffset;
  public final long size;
  public final long crc32;

  ZipEntry(String name, long headerOffset, long dataOffset, long size, long crc32) {
    this.name = name;
    this.headerOffset = headerOffset;
    this.dataOffset = dataOffset;
    this.size = size;
    this.crc32 = crc32;
  }

  @Override
  public String toString() {
    return "ZipEntry[" + name + " @" + dataOffset + " +" + size + "]";
  }
}
