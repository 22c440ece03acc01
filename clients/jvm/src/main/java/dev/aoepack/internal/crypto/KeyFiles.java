package dev.aoepack.internal.crypto;

import dev.aoepack.AlgorithmUnavailableException;
import dev.aoepack.AoeException;
import dev.aoepack.internal.Codec;
import dev.aoepack.internal.Pem;
import dev.aoepack.internal.crypto.Der.DerException;
import dev.aoepack.internal.crypto.Der.Value;
import dev.aoepack.keys.DecryptionKey;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;

/**
 * Loading decryption key files (docs/format.md §10, as {@code aoe-pack}'s
 * {@code keys/load.py} does): PEM PKCS#8, possibly PBES2-encrypted, or a KEK
 * file of 64 hex characters. Internal: not part of the library's API.
 */
public final class KeyFiles {
  static final byte[] OID_ED25519 = Der.oid("1.3.101.112");
  static final byte[] OID_X25519 = Der.oid("1.3.101.110");
  static final byte[] OID_EC = Der.oid("1.2.840.10045.2.1");
  static final byte[] OID_P256 = Der.oid("1.2.840.10045.3.1.7");
  static final byte[] OID_XWING = Der.oid("1.3.6.1.4.1.62253.25722");
  static final byte[] XWING_SPKI_PREFIX =
      Codec.unhex("308204d4300d060b2b0601040183e62d81c87a038204c100");
  private static final byte[] BEGIN = "-----BEGIN".getBytes(StandardCharsets.US_ASCII);

  private KeyFiles() {}

  /**
   * The key in a decryption key file; {@code password} null or empty when
   * none was given.
   */
  public static KeyMaterial decryptionKey(byte[] text, char[] password) throws AoeException {
    if (text.length > Pem.MAX_KEY_FILE) {
      throw format("the key file holds more than 1 MiB; a key file is at most 1 MiB");
    }
    boolean hasPassword = password != null && password.length > 0;
    if (indexOf(text, BEGIN) < 0) {
      if (hasPassword) {
        throw new AoeException(
            "key-not-encrypted",
            "an encryption key file (KEK) is never password-protected, but a password was given");
      }
      return kek(text);
    }
    byte[] pw = hasPassword ? utf8(password) : null;
    try {
      return privateKey(text, pw);
    } finally {
      if (pw != null) {
        Arrays.fill(pw, (byte) 0);
      }
    }
  }

  private static KeyMaterial kek(byte[] text) throws AoeException {
    int from = 0;
    int to = text.length;
    while (from < to && isSpace(text[from])) {
      from++;
    }
    while (to > from && isSpace(text[to - 1])) {
      to--;
    }
    if (to - from == 64) {
      String hex = new String(text, from, 64, StandardCharsets.ISO_8859_1).toLowerCase(java.util.Locale.ROOT);
      byte[] kek = Codec.unhex(hex);
      if (kek != null) {
        return new KeyMaterial(DecryptionKey.Type.KEK, kek, null, Kek.keyId(kek));
      }
    }
    throw format(
        "an encryption key file holds 32 random bytes as 64 hex characters (found "
            + (to - from)
            + " bytes)");
  }

  private static boolean isSpace(byte b) {
    // Python's bytes.strip(): ASCII whitespace.
    return b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == 0x0b || b == 0x0c;
  }

  private static KeyMaterial privateKey(byte[] text, byte[] password) throws AoeException {
    List<Pem.Block> blocks = Pem.blocks(text);
    if (blocks == null) {
      throw format("a key file holds PEM blocks and nothing else (§10.1)");
    }
    Pem.Block priv = blocks.get(0);
    int publicBlocks = 0;
    for (Pem.Block b : blocks) {
      if (b.label.equals("PUBLIC KEY")) {
        publicBlocks++;
      }
    }
    if (publicBlocks == blocks.size()) {
      throw format("no PEM private key found");
    }
    if (blocks.size() - publicBlocks != 1) {
      throw format("expected one PEM private key, found " + (blocks.size() - publicBlocks));
    }
    if (priv.label.equals("PUBLIC KEY") || publicBlocks > 1) {
      throw format(
          "a private key file holds one private key block, then at most its PUBLIC KEY block");
    }
    byte[] publicDer = blocks.size() == 2 ? blocks.get(1).der : null;
    byte[] pkcs8;
    if (priv.label.equals("PRIVATE KEY")) {
      pkcs8 = priv.der;
      if (password != null) {
        byte[] oid = algorithmOid(pkcs8);
        if (oid != null && !Arrays.equals(oid, OID_XWING) && !taken(oid)) {
          throw unsupported(oid);
        }
        throw new AoeException(
            "key-not-encrypted", "the key is not encrypted but a password was given");
      }
    } else if (priv.label.equals("ENCRYPTED PRIVATE KEY")) {
      if (password == null) {
        throw new AoeException(
            "key-password", "the private key is encrypted and no password was given");
      }
      try {
        pkcs8 = Pbes2.decrypt(priv.der, password);
      } catch (DerException e) {
        throw format("not a valid encrypted private key (" + e.getMessage() + ")");
      } catch (Pbes2.WrongPassword e) {
        throw new AoeException("wrong-password", "wrong password for the private key");
      }
    } else {
      throw format(
          "a "
              + priv.label
              + " block is not a PKCS#8 PRIVATE KEY or ENCRYPTED PRIVATE KEY (§10.1)");
    }
    try {
      return fromPkcs8(pkcs8, publicDer);
    } finally {
      if (pkcs8 != priv.der) {
        Arrays.fill(pkcs8, (byte) 0);
      }
    }
  }

  private static KeyMaterial fromPkcs8(byte[] der, byte[] publicDer) throws AoeException {
    byte[] oid = algorithmOid(der);
    if (oid == null) {
      throw format("not a valid PKCS#8 private key");
    }
    if (Arrays.equals(oid, OID_XWING)) {
      return xwing(der, publicDer);
    }
    if (!taken(oid)) {
      throw unsupported(oid);
    }
    KeyMaterial key;
    try {
      if (Arrays.equals(oid, OID_ED25519)) {
        curvePrivateKey(der); // a valid Ed25519 key, but one that signs
        throw new AoeException(
            "key-type",
            "the key is an Ed25519 signing key; decryption needs a recipient key or key file");
      } else if (Arrays.equals(oid, OID_X25519)) {
        byte[] scalar = curvePrivateKey(der);
        byte[] pub = X25519.publicKey(scalar);
        byte[] spki = X25519.concat(X25519.SPKI_PREFIX, pub);
        key = new KeyMaterial(DecryptionKey.Type.X25519, scalar, pub, keyId(spki));
        Arrays.fill(scalar, (byte) 0);
      } else {
        key = p256(der);
      }
    } catch (DerException e) {
      throw format("not a valid private key (" + e.getMessage() + ")");
    }
    if (publicDer != null && !keyId(publicDer).equals(key.keyId())) {
      throw format("the PUBLIC KEY block is not the public key of the private key");
    }
    return key;
  }

  /** The algorithm OID of a PrivateKeyInfo, or null if it does not parse that far. */
  private static byte[] algorithmOid(byte[] der) {
    try {
      List<Value> top = Der.items(Der.decode(der, Der.SEQUENCE));
      if (top.size() < 2) {
        return null;
      }
      List<Value> alg = Der.items(top.get(1));
      if (alg.isEmpty() || alg.get(0).tag != Der.OBJECT_IDENTIFIER) {
        return null;
      }
      return alg.get(0).der();
    } catch (DerException e) {
      return null;
    }
  }

  private static boolean taken(byte[] oid) {
    return Arrays.equals(oid, OID_ED25519)
        || Arrays.equals(oid, OID_X25519)
        || Arrays.equals(oid, OID_EC);
  }

  private static AoeException unsupported(byte[] oid) {
    return format(
        "unsupported key algorithm (OID "
            + Codec.hex(oid)
            + "); decryption keys are X25519, P-256 or ML-KEM-768+X25519 (X-Wing)");
  }

  /**
   * The 32-byte key of an Ed25519 or X25519 PrivateKeyInfo (RFC 8410): version
   * 0, or 1 with an optional public key, no algorithm parameters.
   */
  private static byte[] curvePrivateKey(byte[] der) throws DerException {
    List<Value> top = Der.items(Der.decode(der, Der.SEQUENCE));
    if (top.size() < 3) {
      throw new DerException("PrivateKeyInfo has " + top.size() + " elements");
    }
    long version = Der.toLong(top.get(0));
    Der.children(top.get(1), Der.OBJECT_IDENTIFIER);
    Der.expect(top.get(2), Der.OCTET_STRING);
    if (version == 0 ? top.size() != 3 : version != 1 || !optionalTail(top, 3)) {
      throw new DerException("PrivateKeyInfo version or trailing fields are not RFC 8410's");
    }
    byte[] inner = top.get(2).content();
    Value key = Der.decode(inner, Der.OCTET_STRING);
    if (key.length() != 32) {
      throw new DerException("the key is " + key.length() + " bytes, expected 32");
    }
    return key.content();
  }

  /** [0] attributes then [1] publicKey, each optional, nothing else. */
  private static boolean optionalTail(List<Value> top, int from) {
    int at = from;
    if (at < top.size() && top.get(at).tag == 0xa0) {
      at++;
    }
    if (at < top.size() && top.get(at).tag == 0x81) {
      at++;
    }
    return at == top.size();
  }

  private static KeyMaterial p256(byte[] der) throws AoeException, DerException {
    List<Value> top = Der.items(Der.decode(der, Der.SEQUENCE));
    if (top.size() < 3) {
      throw new DerException("PrivateKeyInfo has " + top.size() + " elements");
    }
    long version = Der.toLong(top.get(0));
    List<Value> alg = Der.items(top.get(1));
    if (alg.size() != 2 || !alg.get(1).derEquals(OID_P256)) {
      throw new AoeException(
          "key-format", "unsupported elliptic curve (only the named curve P-256 is taken)");
    }
    Der.expect(top.get(2), Der.OCTET_STRING);
    if (version != 0 || !optionalTail(top, 3) || (top.size() > 3 && top.get(3).tag != 0xa0)) {
      throw new DerException("PrivateKeyInfo version or trailing fields");
    }
    // ECPrivateKey (RFC 5915): version 1, privateKey, [0] parameters, [1] publicKey.
    List<Value> ec = Der.items(Der.decode(top.get(2).content(), Der.SEQUENCE));
    if (ec.size() < 2 || Der.toLong(ec.get(0)) != 1) {
      throw new DerException("ECPrivateKey version must be 1");
    }
    Der.expect(ec.get(1), Der.OCTET_STRING);
    byte[] embedded = null;
    int at = 2;
    if (at < ec.size() && ec.get(at).tag == 0xa0) {
      if (!Der.decode(ec.get(at).content(), Der.OBJECT_IDENTIFIER).derEquals(OID_P256)) {
        throw new AoeException("key-format", "the ECPrivateKey's curve is not P-256");
      }
      at++;
    }
    if (at < ec.size() && ec.get(at).tag == 0xa1) {
      byte[] bits = Der.decode(ec.get(at).content(), Der.BIT_STRING).content();
      if (bits.length == 0 || bits[0] != 0) {
        throw new DerException("the public key BIT STRING must have 0 unused bits");
      }
      embedded = Arrays.copyOfRange(bits, 1, bits.length);
      at++;
    }
    if (at != ec.size()) {
      throw new DerException("unexpected fields in ECPrivateKey");
    }
    byte[] raw = ec.get(1).content();
    if (raw.length == 0 || raw.length > 32) {
      throw new DerException("the P-256 private key is " + raw.length + " bytes");
    }
    BigInteger d = new BigInteger(1, raw);
    Arrays.fill(raw, (byte) 0);
    if (d.signum() == 0 || d.compareTo(P256.N) >= 0) {
      throw new DerException("the P-256 private key is out of range");
    }
    byte[] pub = P256.publicKey(d);
    if (embedded != null && !Arrays.equals(embedded, pub)) {
      throw new AoeException(
          "key-format", "the public key inside the P-256 private key is not its public key");
    }
    byte[] scalar = new byte[32];
    byte[] dBytes = d.toByteArray();
    int n = Math.min(dBytes.length, 32);
    System.arraycopy(dBytes, dBytes.length - n, scalar, 32 - n, n);
    KeyMaterial key =
        new KeyMaterial(
            DecryptionKey.Type.P256, scalar, pub, keyId(X25519.concat(P256.SPKI_PREFIX, pub)));
    Arrays.fill(scalar, (byte) 0);
    Arrays.fill(dBytes, (byte) 0);
    return key;
  }

  /**
   * §10.2: exactly the 54-byte PKCS#8 of a 32-byte seed. The key id comes from
   * the file's PUBLIC KEY block: deriving it needs ML-KEM-768, which this
   * library leaves to the app's {@link dev.aoepack.keys.XWingKem}.
   */
  private static KeyMaterial xwing(byte[] der, byte[] publicDer) throws AoeException {
    byte[] seed;
    try {
      List<Value> f =
          Der.children(
              Der.decode(der, Der.SEQUENCE), Der.INTEGER, Der.SEQUENCE, Der.OCTET_STRING);
      if (Der.toLong(f.get(0)) != 0) {
        throw new DerException("PKCS#8 version must be 0 (no attributes or public key)");
      }
      if (!Arrays.equals(f.get(1).content(), OID_XWING)) {
        throw new DerException("the algorithm must be 1.3.6.1.4.1.62253.25722 with no parameters");
      }
      seed = f.get(2).content();
    } catch (DerException e) {
      throw format("not a valid X-Wing private key (" + e.getMessage() + ")");
    }
    if (seed.length != 32) {
      throw format(
          "not a valid X-Wing private key (the seed is " + seed.length + " bytes, expected 32)");
    }
    if (publicDer == null) {
      throw new AlgorithmUnavailableException(
          DataKeys.XWING_ALGORITHM,
          "this X-Wing key file has no PUBLIC KEY block, and its key id takes ML-KEM-768 to"
              + " derive; append the .pub file's block to the .key file (§10.2)",
          null);
    }
    if (publicDer.length != 1240
        || !Arrays.equals(Arrays.copyOf(publicDer, XWING_SPKI_PREFIX.length), XWING_SPKI_PREFIX)) {
      throw format("the PUBLIC KEY block is not an X-Wing public key (§10.2)");
    }
    byte[] raw = Arrays.copyOfRange(publicDer, XWING_SPKI_PREFIX.length, publicDer.length);
    KeyMaterial key = new KeyMaterial(DecryptionKey.Type.XWING, seed, raw, keyId(publicDer));
    Arrays.fill(seed, (byte) 0);
    return key;
  }

  private static String keyId(byte[] spki) {
    return Codec.hex(Kek.sha256().digest(spki));
  }

  private static AoeException format(String message) {
    return new AoeException("key-format", message);
  }

  private static byte[] utf8(char[] password) throws AoeException {
    try {
      ByteBuffer b =
          StandardCharsets.UTF_8
              .newEncoder()
              .onMalformedInput(CodingErrorAction.REPORT)
              .onUnmappableCharacter(CodingErrorAction.REPORT)
              .encode(CharBuffer.wrap(password));
      byte[] out = new byte[b.remaining()];
      b.get(out);
      if (b.hasArray()) {
        Arrays.fill(b.array(), (byte) 0);
      }
      return out;
    } catch (CharacterCodingException e) {
      throw new AoeException("password-source", "the password is not valid Unicode (a lone surrogate)");
    }
  }

  private static int indexOf(byte[] hay, byte[] needle) {
    outer:
    for (int i = 0; i + needle.length <= hay.length; i++) {
      for (int j = 0; j < needle.length; j++) {
        if (hay[i + j] != needle[j]) {
          continue outer;
        }
      }
      return i;
    }
    return -1;
  }
}
