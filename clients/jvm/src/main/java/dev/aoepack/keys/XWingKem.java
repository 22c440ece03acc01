package dev.aoepack.keys;

import dev.aoepack.AoeException;

/**
 * X-Wing decapsulation (draft-connolly-cfrg-xwing-kem, the {@code MLKEM768-X25519}
 * KEM of docs/format.md §7.4), which an app plugs in where its platform lacks
 * ML-KEM-768.
 *
 * <p>The library does the rest of HPKE itself (§7.4's key schedule over the
 * returned shared secret, AES-256-GCM); an implementation only has to run the
 * draft's {@code Decapsulate}, for example with OpenJDK's {@code KEM} {@code
 * "X-Wing"} (JDK-8360939: {@code KeyFactory.getInstance("X-Wing")
 * .generatePrivate(new PKCS8EncodedKeySpec(pkcs8))}, {@code
 * KEM.getInstance("X-Wing").newDecapsulator(key).decapsulate(enc)}) or with
 * BouncyCastle's X-Wing (a release whose private key is the 32-byte seed).
 * The PKCS#8 DER of a seed is {@code 3034020100300d060b2b0601040183e62d81c87a0420}
 * followed by the seed (§10.2). Check an implementation against the draft's
 * test vectors and {@code tests/vectors/v1-mlkem.aoe}.
 *
 * <p>Without one, unwrapping a data key with an X-Wing key throws {@link
 * dev.aoepack.AlgorithmUnavailableException} naming {@code ML-KEM-768 (X-Wing)}.
 */
public interface XWingKem {
  /**
   * X-Wing {@code Decapsulate} of the 1120-byte {@code enc} (ML-KEM-768
   * ciphertext, 1088 bytes, then the X25519 ephemeral public key, 32 bytes)
   * with the private key given as its 32-byte {@code seed}: the 32-byte shared
   * secret. ML-KEM's implicit rejection means a wrong {@code enc} gives a
   * wrong secret, not an error; throw {@link AoeException} (code {@code
   * decryption}) only for what the KEM itself refuses, or {@link
   * dev.aoepack.AlgorithmUnavailableException} if a needed algorithm is missing.
   */
  byte[] decapsulate(byte[] seed, byte[] enc) throws AoeException;
}
