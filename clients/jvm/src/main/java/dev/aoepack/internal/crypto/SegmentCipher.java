package dev.aoepack.internal.crypto;

import dev.aoepack.AoeException;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * Opens the AES-256-GCM segments of one encrypted payload file (docs/format.md
 * §7.2): segment {@code i} under nonce {@code noncePrefix || uint32_be(i) ||
 * last} with the entry name ({@code "payload/" + path}) as associated data.
 *
 * <p>Not thread-safe: one instance per payload file, segments opened in any
 * order. Internal: not part of the library's API.
 */
public final class SegmentCipher {
  /** The GCM tag that ends every segment. */
  public static final int TAG_SIZE = 16;

  private static final int PREFIX_SIZE = 7;

  private final SecretKeySpec key;
  private final byte[] prefix;
  private final byte[] aad;
  private final String entryName;
  private final Cipher cipher;

  /**
   * A cipher for the payload file stored as {@code entryName}; {@code
   * algorithm-unavailable} if no provider offers AES/GCM/NoPadding.
   *
   * @throws IllegalArgumentException if the data key is not 32 bytes or the
   *     prefix not 7 (the bundle reader checks the manifest's shapes first)
   */
  public SegmentCipher(byte[] dataKey, byte[] noncePrefix, String entryName) throws AoeException {
    if (dataKey.length != 32 || noncePrefix.length != PREFIX_SIZE) {
      throw new IllegalArgumentException("a data key is 32 bytes and a nonce prefix 7");
    }
    this.key = new SecretKeySpec(dataKey, "AES");
    this.prefix = noncePrefix.clone();
    this.entryName = entryName;
    this.aad = entryName.getBytes(StandardCharsets.UTF_8);
    this.cipher = Jca.cipher(Jca.AES_GCM);
  }

  /**
   * The plaintext of segment {@code index} ({@code ct[off, off+len)}: its
   * ciphertext and 16-byte tag); {@code last} is true for the file's last
   * segment. Code {@code decryption} if it fails authentication (wrong key,
   * position, last flag, file or bytes), as {@code aoe-pack} reports it.
   *
   * @throws IllegalArgumentException if {@code index} is not in 0..2^32-1
   */
  public byte[] open(long index, boolean last, byte[] ct, int off, int len) throws AoeException {
    if (index < 0 || index > 0xffffffffL) {
      throw new IllegalArgumentException("segment index out of range: " + index);
    }
    byte[] nonce = new byte[12];
    System.arraycopy(prefix, 0, nonce, 0, PREFIX_SIZE);
    nonce[7] = (byte) (index >>> 24);
    nonce[8] = (byte) (index >>> 16);
    nonce[9] = (byte) (index >>> 8);
    nonce[10] = (byte) index;
    nonce[11] = (byte) (last ? 1 : 0);
    if (len < TAG_SIZE) {
      throw failed(index, null);
    }
    try {
      cipher.init(Cipher.DECRYPT_MODE, key, new GCMParameterSpec(128, nonce));
      cipher.updateAAD(aad);
      return cipher.doFinal(ct, off, len);
    } catch (AEADBadTagException e) {
      throw failed(index, e);
    } catch (GeneralSecurityException e) {
      throw Jca.unavailable(Jca.AES_GCM, e);
    }
  }

  private AoeException failed(long index, Throwable cause) {
    return new AoeException(
        "decryption", "segment " + index + " of " + entryName + " failed authentication", cause);
  }
}
