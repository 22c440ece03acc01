package dev.aoepack.bundle;

/**
 * One holder of a bundle's data key (docs/format.md §5.2.2): an HPKE public
 * key or a key-encryption key, by key id.
 */
public final class BundleRecipient {
  private final String type;
  private final String keyId;
  private final String kem;
  private final String wrapped;

  BundleRecipient(String type, String keyId, String kem, String wrapped) {
    this.type = type;
    this.keyId = keyId;
    this.kem = kem;
    this.wrapped = wrapped;
  }

  /** {@code hpke} or {@code kek}. */
  public String type() {
    return type;
  }

  /** The recipient key's id (§6.3 for HPKE keys, §7.6 for a KEK). */
  public String keyId() {
    return keyId;
  }

  /** The HPKE KEM name (§7.4) for {@code hpke}, null for {@code kek}. */
  public String kem() {
    return kem;
  }

  /** The wrapped data key, base64 as the manifest has it. */
  public String wrapped() {
    return wrapped;
  }

  @Override
  public String toString() {
    return "BundleRecipient[" + type + " " + keyId + (kem == null ? "" : " " + kem) + "]";
  }
}
