package dev.aoepack.bundle;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * One payload file of a verified bundle, as its signed manifest describes it
 * (docs/format.md §5.2.1): the plaintext's path, size and SHA-256, and how its
 * bytes are stored in the bundle.
 */
public final class BundleFile {
  private final String path;
  private final String role;
  private final long size;
  private final String sha256;
  private final String runtime;
  private final String variant;
  private final String noncePrefix;
  private final long storedSize;
  private final long storedCrc32;
  private final int chunkSize;
  private final List<String> chunks;

  BundleFile(
      String path,
      String role,
      long size,
      String sha256,
      String runtime,
      String variant,
      String noncePrefix,
      long storedSize,
      long storedCrc32,
      int chunkSize,
      List<String> chunks) {
    this.path = path;
    this.role = role;
    this.size = size;
    this.sha256 = sha256;
    this.runtime = runtime;
    this.variant = variant;
    this.noncePrefix = noncePrefix;
    this.storedSize = storedSize;
    this.storedCrc32 = storedCrc32;
    this.chunkSize = chunkSize;
    this.chunks = Collections.unmodifiableList(new ArrayList<String>(chunks));
  }

  /** The path below the model folder, {@code /}-separated ({@code labels.txt}, {@code assets/a.bin}). */
  public String path() {
    return path;
  }

  /** The ZIP entry holding it: {@code "payload/" + path}. */
  public String entryName() {
    return "payload/" + path;
  }

  /** {@code model}, {@code weights}, {@code labels}, {@code asset}, or a newer writer's role. */
  public String role() {
    return role;
  }

  /** The plaintext size in bytes. */
  public long size() {
    return size;
  }

  /** The lowercase hex SHA-256 of the plaintext. */
  public String sha256() {
    return sha256;
  }

  /** This file's runtime, or null. */
  public String runtime() {
    return runtime;
  }

  /** The conversion variant ({@code fp16}, {@code int8}...), or null. */
  public String variant() {
    return variant;
  }

  /** True when its stored bytes are AES-256-GCM segments (§7.2). */
  public boolean encrypted() {
    return noncePrefix != null;
  }

  /** The 7-byte nonce prefix in hex when encrypted, else null. */
  public String noncePrefix() {
    return noncePrefix;
  }

  /** The size of the stored bytes (the ZIP entry's size). */
  public long storedSize() {
    return storedSize;
  }

  /** The CRC-32 of the stored bytes. */
  public long storedCrc32() {
    return storedCrc32;
  }

  /** Stored bytes per signed chunk digest. */
  public int chunkSize() {
    return chunkSize;
  }

  /** The SHA-256 (hex) of each stored chunk, in order. */
  public List<String> chunks() {
    return chunks;
  }

  @Override
  public String toString() {
    return "BundleFile[" + path + ", " + size + " bytes, sha256 " + sha256 + "]";
  }
}
