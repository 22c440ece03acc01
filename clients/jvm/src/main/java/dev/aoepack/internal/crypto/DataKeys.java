package dev.aoepack.internal.crypto;

import dev.aoepack.AlgorithmUnavailableException;
import dev.aoepack.AoeException;
import dev.aoepack.internal.Codec;
import dev.aoepack.keys.DecryptionKey;
import dev.aoepack.keys.XWingKem;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * Unwrapping a bundle's data key (docs/format.md §7.4-§7.7). Internal: not
 * part of the library's API.
 */
public final class DataKeys {
  /** What {@link AlgorithmUnavailableException#algorithm()} names when X-Wing has no KEM. */
  public static final String XWING_ALGORITHM = "ML-KEM-768 (X-Wing)";

  private static final byte[] INFO_LABEL =
      "aoe-pack/v1 data-key".getBytes(StandardCharsets.US_ASCII);

  private DataKeys() {}

  /**
   * The HPKE {@code info} and KEK associated data of §7.4: {@code "aoe-pack/v1
   * data-key" || 0x00 || UTF-8(tag) || 0x00 || UTF-8(version)}.
   */
  public static byte[] info(String tag, String version) {
    byte[] t = tag.getBytes(StandardCharsets.UTF_8);
    byte[] v = version.getBytes(StandardCharsets.UTF_8);
    byte[] out = new byte[INFO_LABEL.length + 1 + t.length + 1 + v.length];
    System.arraycopy(INFO_LABEL, 0, out, 0, INFO_LABEL.length);
    System.arraycopy(t, 0, out, INFO_LABEL.length + 1, t.length);
    System.arraycopy(v, 0, out, INFO_LABEL.length + 2 + t.length, v.length);
    return out;
  }

  /**
   * §7.7 over the manifest's recipients (already structurally validated by
   * the bundle reader): the 32-byte data key. {@code no-matching-recipient}
   * when no recipient names the key's id; {@code decryption} when its type or
   * kem does not fit the key, {@code wrapped} is not base64 or the blob does
   * not open; {@code algorithm-unavailable} when a JCA algorithm is missing,
   * or for an X-Wing key with {@code xwing} null (naming {@value
   * #XWING_ALGORITHM}).
   */
  public static byte[] unwrap(
      List<Recipient> recipients, DecryptionKey key, XWingKem xwing, byte[] info)
      throws AoeException {
    KeyMaterial m = KeyAccess.of(key);
    Recipient match = null;
    StringBuilder ids = new StringBuilder();
    for (Recipient r : recipients) {
      if (r.keyid.equals(m.keyId())) {
        match = r;
        break;
      }
      ids.append(ids.length() == 0 ? "" : ", ").append(short16(r.keyid)).append('…');
    }
    if (match == null) {
      throw new AoeException(
          "no-matching-recipient",
          "the bundle is not encrypted for key "
              + short16(m.keyId())
              + "…; its recipients are "
              + ids);
    }
    byte[] blob = Codec.base64(match.wrapped);
    if (blob == null) {
      throw new AoeException(
          "decryption", "wrapped key for " + short16(match.keyid) + "… is not base64");
    }
    if (m.type() == DecryptionKey.Type.KEK) {
      if (!match.type.equals("kek")) {
        throw typeMismatch(match);
      }
      return dataKey(Kek.unwrap(blob, m.secret, info));
    }
    if (!match.type.equals("hpke")) {
      throw typeMismatch(match);
    }
    if (!m.kem().equals(match.kem)) {
      throw new AoeException(
          "decryption",
          "recipient " + short16(match.keyid) + "… uses " + match.kem + ", but the key is "
              + m.kem());
    }
    if (m.type() == DecryptionKey.Type.XWING && xwing == null) {
      throw new AlgorithmUnavailableException(
          XWING_ALGORITHM, Jca.hint(XWING_ALGORITHM), null);
    }
    return dataKey(Hpke.open(m, xwing, blob, info));
  }

  private static byte[] dataKey(byte[] opened) throws AoeException {
    if (opened.length != 32) {
      // Sealed correctly but not a data key: only a manifest writer can do this.
      throw new AoeException(
          "decryption", "the wrapped data key is " + opened.length + " bytes, not 32");
    }
    return opened;
  }

  private static AoeException typeMismatch(Recipient r) {
    return new AoeException(
        "decryption", "recipient " + short16(r.keyid) + "… has type " + r.type);
  }

  private static String short16(String keyid) {
    return keyid.length() > 16 ? keyid.substring(0, 16) : keyid;
  }

  /** One entry of the manifest's {@code encryption.recipients} (§5.2.2). */
  public static final class Recipient {
    private final String type;
    private final String keyid;
    private final String kem;
    private final String wrapped;

    /**
     * @param type {@code "hpke"} or {@code "kek"}
     * @param keyid the recipient's key id
     * @param kem the HPKE KEM name, null for {@code kek}
     * @param wrappedBase64 the wrapped data key, base64 as in the manifest
     */
    public Recipient(String type, String keyid, String kem, String wrappedBase64) {
      this.type = type;
      this.keyid = keyid;
      this.kem = kem;
      this.wrapped = wrappedBase64;
    }

    public String type() {
      return type;
    }

    public String keyid() {
      return keyid;
    }

    public String kem() {
      return kem;
    }

    public String wrapped() {
      return wrapped;
    }
  }
}
