package dev.aoepack.bundle;

import dev.aoepack.AoeException;
import dev.aoepack.internal.zip.BundleLayout;
import dev.aoepack.internal.zip.LayoutReader;
import dev.aoepack.internal.zip.Source;
import dev.aoepack.internal.zip.ZipEntry;
import dev.aoepack.keys.TrustedKey;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32;

/**
 * §8 steps 2 to 8 over one open bundle: the container, the entry order, the
 * envelope, the signatures and threshold, the CRC-32 of the two metadata
 * entries, the manifest and its agreement with the container; in that order,
 * as {@code aoe_pack/bundle/verify.py} does them.
 */
final class BundleReader {
  static final String MANIFEST_ENTRY = "aoe/manifest.json";
  static final String SIGNATURES_ENTRY = "aoe/signatures.json";
  static final String PAYLOAD_PREFIX = "payload/";
  static final int MAX_ENTRIES = 10000;
  static final int MAX_MANIFEST_BYTES = 16 << 20;
  static final int MAX_SIGNATURES_BYTES = 1 << 20;

  final BundleLayout layout;
  final List<ZipEntry> payloads;
  final byte[] manifestBytes;
  final byte[] signaturesBytes;

  private BundleReader(BundleLayout layout, byte[] manifestBytes, byte[] signaturesBytes) {
    this.layout = layout;
    this.payloads = layout.entries.subList(0, layout.entries.size() - 2);
    this.manifestBytes = manifestBytes;
    this.signaturesBytes = signaturesBytes;
  }

  /** Steps 2 and 3: the container, the entry order, and the two metadata entries read. */
  static BundleReader open(Source source) throws AoeException, IOException {
    BundleLayout layout = LayoutReader.read(source, MAX_ENTRIES);
    List<ZipEntry> entries = layout.entries;
    int n = entries.size();
    if (n < 2
        || !entries.get(n - 2).name.equals(MANIFEST_ENTRY)
        || !entries.get(n - 1).name.equals(SIGNATURES_ENTRY)) {
      throw new AoeException(
          "zip-structure", "the last entries must be " + MANIFEST_ENTRY + " and " + SIGNATURES_ENTRY);
    }
    for (int i = 0; i < n - 2; i++) {
      if (!entries.get(i).name.startsWith(PAYLOAD_PREFIX)) {
        throw new AoeException(
            "zip-structure", "unexpected entry '" + entries.get(i).name + "'; payloads live under payload/");
      }
    }
    for (int i = 1; i < n - 2; i++) {
      if (Manifest.compareCodePoints(entries.get(i - 1).name, entries.get(i).name) > 0) {
        throw new AoeException("zip-structure", "payload entries are not sorted by name");
      }
    }
    byte[] manifest = readSmall(source, entries.get(n - 2), MAX_MANIFEST_BYTES);
    byte[] signatures = readSmall(source, entries.get(n - 1), MAX_SIGNATURES_BYTES);
    return new BundleReader(layout, manifest, signatures);
  }

  private static byte[] readSmall(Source source, ZipEntry entry, int cap)
      throws AoeException, IOException {
    if (entry.size > cap) {
      throw new AoeException(
          "limit-exceeded", entry.name + " is " + entry.size + " bytes; the limit is " + cap);
    }
    byte[] out = new byte[(int) entry.size];
    if (source.read(entry.dataOffset, out, 0, out.length) != out.length) {
      throw new AoeException("zip-structure", "file is truncated in " + entry.name);
    }
    return out;
  }

  /**
   * Steps 4 to 8; returns the manifest, and in {@code signers} the ids of the
   * trusted keys whose signatures counted.
   */
  Manifest authenticate(Map<String, TrustedKey> trusted, int threshold, List<String> signers)
      throws AoeException {
    Envelope envelope = Envelope.parse(signaturesBytes);
    signers.addAll(envelope.check(manifestBytes, trusted, threshold));
    checkCrc(layout.entries.get(layout.entries.size() - 2), manifestBytes);
    checkCrc(layout.entries.get(layout.entries.size() - 1), signaturesBytes);
    Manifest manifest = Manifest.parse(manifestBytes, MAX_ENTRIES);
    checkEntries(manifest);
    return manifest;
  }

  private static void checkCrc(ZipEntry entry, byte[] data) throws AoeException {
    CRC32 crc = new CRC32();
    crc.update(data, 0, data.length);
    if (crc.getValue() != entry.crc32) {
      throw new AoeException(
          "integrity", entry.name + ": CRC-32 in the ZIP headers does not match its bytes");
    }
  }

  /** §5.2.3: the signed file list agrees with the payload entries, their sizes and CRC-32. */
  private void checkEntries(Manifest manifest) throws AoeException {
    List<BundleFile> files = manifest.files;
    boolean same = files.size() == payloads.size();
    for (int i = 0; same && i < files.size(); i++) {
      same = files.get(i).entryName().equals(payloads.get(i).name);
    }
    if (!same) {
      throw new AoeException(
          "manifest", "the manifest's file list disagrees with the bundle's entries");
    }
    int segment = manifest.encryption == null ? 0 : manifest.encryption.segmentSize();
    for (int i = 0; i < files.size(); i++) {
      BundleFile f = files.get(i);
      ZipEntry e = payloads.get(i);
      long expected = f.encrypted() ? storedSize(f.size(), segment) : f.size();
      if (f.storedSize() != expected || e.size != f.storedSize()) {
        throw new AoeException(
            "manifest",
            e.name + ": stored size " + e.size + " disagrees with the manifest (" + f.storedSize()
                + ", for " + f.size() + " plaintext bytes)");
      }
      if (e.crc32 != f.storedCrc32()) {
        throw new AoeException(
            "integrity", e.name + ": CRC-32 in the ZIP headers differs from the manifest");
      }
    }
  }

  /** §7.2: {@code size + 16 * max(1, ceil(size / (segment - 16)))}. */
  static long storedSize(long size, int segment) {
    long plain = segment - 16;
    return size + 16 * Math.max(1, (size + plain - 1) / plain);
  }

  static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }
}
