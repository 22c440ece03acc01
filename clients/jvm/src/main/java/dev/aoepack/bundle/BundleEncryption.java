package dev.aoepack.bundle;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/** How a bundle's payloads are encrypted (docs/format.md §5.2.2, §7). */
public final class BundleEncryption {
  private final String aead;
  private final int segmentSize;
  private final List<BundleRecipient> recipients;

  BundleEncryption(String aead, int segmentSize, List<BundleRecipient> recipients) {
    this.aead = aead;
    this.segmentSize = segmentSize;
    this.recipients = Collections.unmodifiableList(new ArrayList<BundleRecipient>(recipients));
  }

  /** {@code AES-256-GCM}. */
  public String aead() {
    return aead;
  }

  /** Stored bytes per segment (a power of two, 64 KiB to 16 MiB). */
  public int segmentSize() {
    return segmentSize;
  }

  /** Who can unwrap the data key, sorted by type then key id. */
  public List<BundleRecipient> recipients() {
    return recipients;
  }
}
