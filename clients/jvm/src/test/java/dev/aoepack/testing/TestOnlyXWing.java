package dev.aoepack.testing;

import dev.aoepack.AoeException;
import dev.aoepack.keys.XWingKem;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.spec.PKCS8EncodedKeySpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.Arrays;
import javax.crypto.KeyAgreement;

/**
 * TEST-ONLY X-Wing (draft-connolly-cfrg-xwing-kem-06 and later, as the
 * Python reference's {@code cryptography} {@code MLKEM768_X25519} and
 * docs/format.md §7.4/§10.2 use it): it stands, in tests, for "a provider with
 * ML-KEM", which the JDK 17 the tests run on does not have. Pure Java ML-KEM-768
 * ({@link MlKem768}) and Keccak ({@link Keccak}), X25519 through the JDK's
 * {@code XDH}. Not constant-time and not reviewed as production code: never
 * ship it, never decrypt anything real with it.
 */
public final class TestOnlyXWing implements XWingKem {
  /** The X-Wing label {@code \.//^\}, the combiner's last input. */
  static final byte[] LABEL = {0x5c, 0x2e, 0x2f, 0x2f, 0x5e, 0x5c};

  private static final byte[] X25519_PKCS8 = Vectors.unhex("302e020100300506032b656e04220420");
  private static final byte[] X25519_SPKI = Vectors.unhex("302a300506032b656e032100");

  /** The expanded key: ML-KEM-768 key pair, X25519 scalar and public key. */
  public static final class Expanded {
    public final MlKem768.KeyPair mlkem;
    public final byte[] x25519Secret;
    public final byte[] x25519Public;

    Expanded(MlKem768.KeyPair mlkem, byte[] sk, byte[] pk) {
      this.mlkem = mlkem;
      this.x25519Secret = sk;
      this.x25519Public = pk;
    }

    /** The 1216-byte X-Wing public key: ML-KEM-768 ek, then X25519 public key. */
    public byte[] publicKey() {
      return MlKem768.cat(mlkem.ek, x25519Public);
    }
  }

  /** The draft's expandDecapsulationKey. */
  public static Expanded expand(byte[] seed) {
    byte[] expanded = Keccak.shake256(96, seed);
    MlKem768.KeyPair kp =
        MlKem768.keyGen(Arrays.copyOfRange(expanded, 0, 32), Arrays.copyOfRange(expanded, 32, 64));
    byte[] skX = Arrays.copyOfRange(expanded, 64, 96);
    byte[] base = new byte[32];
    base[0] = 9;
    return new Expanded(kp, skX, x25519(skX, base));
  }

  @Override
  public byte[] decapsulate(byte[] seed, byte[] enc) throws AoeException {
    if (seed.length != 32 || enc.length != MlKem768.CT_SIZE + 32) {
      throw new AoeException("decryption", "X-Wing takes a 32-byte seed and a 1120-byte enc");
    }
    Expanded key = expand(seed);
    byte[] ctM = Arrays.copyOfRange(enc, 0, MlKem768.CT_SIZE);
    byte[] ctX = Arrays.copyOfRange(enc, MlKem768.CT_SIZE, enc.length);
    byte[] ssM = MlKem768.decaps(key.mlkem.dk, ctM);
    byte[] ssX = x25519(key.x25519Secret, ctX);
    return Keccak.sha3_256(ssM, ssX, ctX, key.x25519Public, LABEL);
  }

  static byte[] x25519(byte[] scalar, byte[] u) {
    try {
      KeyFactory f = KeyFactory.getInstance("XDH");
      PrivateKey priv = f.generatePrivate(new PKCS8EncodedKeySpec(MlKem768.cat(X25519_PKCS8, scalar)));
      PublicKey pub = f.generatePublic(new X509EncodedKeySpec(MlKem768.cat(X25519_SPKI, u)));
      KeyAgreement ka = KeyAgreement.getInstance("XDH");
      ka.init(priv);
      ka.doPhase(pub, true);
      return ka.generateSecret();
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }
}
