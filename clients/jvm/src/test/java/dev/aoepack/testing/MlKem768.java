package dev.aoepack.testing;

import java.security.MessageDigest;
import java.util.Arrays;

/**
 * ML-KEM-768 (FIPS 203) key generation from a seed and decapsulation, written
 * straight from the standard for tests: TEST-ONLY, not constant-time, not for
 * any real key.
 */
public final class MlKem768 {
  static final int N = 256;
  static final int Q = 3329;
  static final int K = 3;
  static final int ETA1 = 2;
  static final int ETA2 = 2;
  static final int DU = 10;
  static final int DV = 4;
  public static final int EK_SIZE = 384 * K + 32; // 1184
  public static final int CT_SIZE = 32 * (DU * K + DV); // 1088
  private static final int[] ZETAS = new int[128];
  private static final int[] GAMMAS = new int[128];

  static {
    for (int i = 0; i < 128; i++) {
      ZETAS[i] = pow(17, bitRev7(i));
      GAMMAS[i] = pow(17, 2 * bitRev7(i) + 1);
    }
  }

  /** A key pair: encapsulation key and decapsulation key (FIPS 203 layout). */
  public static final class KeyPair {
    public final byte[] ek;
    public final byte[] dk;

    KeyPair(byte[] ek, byte[] dk) {
      this.ek = ek;
      this.dk = dk;
    }
  }

  private MlKem768() {}

  /** ML-KEM.KeyGen_internal(d, z). */
  public static KeyPair keyGen(byte[] d, byte[] z) {
    byte[] g = Keccak.sha3_512(d, new byte[] {(byte) K});
    byte[] rho = Arrays.copyOfRange(g, 0, 32);
    byte[] sigma = Arrays.copyOfRange(g, 32, 64);
    int[][][] a = matrix(rho);
    int n = 0;
    int[][] s = new int[K][];
    int[][] e = new int[K][];
    for (int i = 0; i < K; i++) {
      s[i] = ntt(cbd(prf(sigma, n++, ETA1), ETA1));
    }
    for (int i = 0; i < K; i++) {
      e[i] = ntt(cbd(prf(sigma, n++, ETA1), ETA1));
    }
    byte[] ek = new byte[EK_SIZE];
    byte[] dkPke = new byte[384 * K];
    for (int i = 0; i < K; i++) {
      int[] t = e[i].clone();
      for (int j = 0; j < K; j++) {
        add(t, mulNtt(a[i][j], s[j]));
      }
      System.arraycopy(encode(t, 12), 0, ek, 384 * i, 384);
      System.arraycopy(encode(s[i], 12), 0, dkPke, 384 * i, 384);
    }
    System.arraycopy(rho, 0, ek, 384 * K, 32);
    byte[] dk = cat(dkPke, ek, Keccak.sha3_256(ek), z);
    return new KeyPair(ek, dk);
  }

  /** ML-KEM.Decaps_internal(dk, c): the 32-byte shared key, with implicit rejection. */
  public static byte[] decaps(byte[] dk, byte[] c) {
    if (c.length != CT_SIZE || dk.length != 768 * K + 96) {
      throw new IllegalArgumentException("ML-KEM-768 sizes");
    }
    byte[] dkPke = Arrays.copyOfRange(dk, 0, 384 * K);
    byte[] ek = Arrays.copyOfRange(dk, 384 * K, 768 * K + 32);
    byte[] h = Arrays.copyOfRange(dk, 768 * K + 32, 768 * K + 64);
    byte[] z = Arrays.copyOfRange(dk, 768 * K + 64, 768 * K + 96);
    byte[] m = decrypt(dkPke, c);
    byte[] g = Keccak.sha3_512(m, h);
    byte[] key = Arrays.copyOfRange(g, 0, 32);
    byte[] r = Arrays.copyOfRange(g, 32, 64);
    byte[] rejected = Keccak.shake256(32, z, c);
    byte[] again = encrypt(ek, m, r);
    return MessageDigest.isEqual(again, c) ? key : rejected;
  }

  static byte[] encrypt(byte[] ek, byte[] m, byte[] r) {
    int[][] t = new int[K][];
    for (int i = 0; i < K; i++) {
      t[i] = decode(Arrays.copyOfRange(ek, 384 * i, 384 * (i + 1)), 12);
    }
    byte[] rho = Arrays.copyOfRange(ek, 384 * K, 384 * K + 32);
    int[][][] a = matrix(rho);
    int n = 0;
    int[][] y = new int[K][];
    int[][] e1 = new int[K][];
    for (int i = 0; i < K; i++) {
      y[i] = ntt(cbd(prf(r, n++, ETA1), ETA1));
    }
    for (int i = 0; i < K; i++) {
      e1[i] = cbd(prf(r, n++, ETA2), ETA2);
    }
    int[] e2 = cbd(prf(r, n, ETA2), ETA2);
    byte[] c = new byte[CT_SIZE];
    for (int i = 0; i < K; i++) {
      int[] acc = new int[N];
      for (int j = 0; j < K; j++) {
        add(acc, mulNtt(a[j][i], y[j])); // A transposed
      }
      int[] u = invNtt(acc);
      add(u, e1[i]);
      System.arraycopy(encode(compress(u, DU), DU), 0, c, 32 * DU * i, 32 * DU);
    }
    int[] acc = new int[N];
    for (int j = 0; j < K; j++) {
      add(acc, mulNtt(t[j], y[j]));
    }
    int[] v = invNtt(acc);
    add(v, e2);
    add(v, decompress(decode(m, 1), 1));
    System.arraycopy(encode(compress(v, DV), DV), 0, c, 32 * DU * K, 32 * DV);
    return c;
  }

  static byte[] decrypt(byte[] dkPke, byte[] c) {
    int[] acc = new int[N];
    for (int i = 0; i < K; i++) {
      int[] u = decompress(decode(Arrays.copyOfRange(c, 32 * DU * i, 32 * DU * (i + 1)), DU), DU);
      int[] s = decode(Arrays.copyOfRange(dkPke, 384 * i, 384 * (i + 1)), 12);
      add(acc, mulNtt(s, ntt(u)));
    }
    int[] v = decompress(decode(Arrays.copyOfRange(c, 32 * DU * K, CT_SIZE), DV), DV);
    int[] w = invNtt(acc);
    for (int i = 0; i < N; i++) {
      w[i] = mod(v[i] - w[i]);
    }
    return encode(compress(w, 1), 1);
  }

  /** Â[i][j] = SampleNTT(rho || j || i). */
  private static int[][][] matrix(byte[] rho) {
    int[][][] a = new int[K][K][];
    for (int i = 0; i < K; i++) {
      for (int j = 0; j < K; j++) {
        a[i][j] = sampleNtt(cat(rho, new byte[] {(byte) j, (byte) i}));
      }
    }
    return a;
  }

  private static int[] sampleNtt(byte[] seed) {
    Keccak xof = Keccak.shake128().absorb(seed);
    int[] a = new int[N];
    int j = 0;
    while (j < N) {
      byte[] c = xof.squeeze(3);
      int d1 = (c[0] & 0xff) + 256 * ((c[1] & 0xff) % 16);
      int d2 = (c[1] & 0xff) / 16 + 16 * (c[2] & 0xff);
      if (d1 < Q) {
        a[j++] = d1;
      }
      if (d2 < Q && j < N) {
        a[j++] = d2;
      }
    }
    return a;
  }

  private static byte[] prf(byte[] s, int b, int eta) {
    return Keccak.shake256(64 * eta, s, new byte[] {(byte) b});
  }

  private static int[] cbd(byte[] bytes, int eta) {
    int[] f = new int[N];
    for (int i = 0; i < N; i++) {
      int x = 0;
      int y = 0;
      for (int j = 0; j < eta; j++) {
        x += bit(bytes, 2 * i * eta + j);
        y += bit(bytes, 2 * i * eta + eta + j);
      }
      f[i] = mod(x - y);
    }
    return f;
  }

  private static int bit(byte[] b, int i) {
    return (b[i >> 3] >> (i & 7)) & 1;
  }

  static int[] ntt(int[] in) {
    int[] f = in.clone();
    int k = 1;
    for (int len = 128; len >= 2; len /= 2) {
      for (int start = 0; start < N; start += 2 * len) {
        long zeta = ZETAS[k++];
        for (int j = start; j < start + len; j++) {
          int t = (int) (zeta * f[j + len] % Q);
          f[j + len] = mod(f[j] - t);
          f[j] = mod(f[j] + t);
        }
      }
    }
    return f;
  }

  static int[] invNtt(int[] in) {
    int[] f = in.clone();
    int k = 127;
    for (int len = 2; len <= 128; len *= 2) {
      for (int start = 0; start < N; start += 2 * len) {
        long zeta = ZETAS[k--];
        for (int j = start; j < start + len; j++) {
          int t = f[j];
          f[j] = mod(t + f[j + len]);
          f[j + len] = (int) (zeta * mod(f[j + len] - t) % Q);
        }
      }
    }
    for (int i = 0; i < N; i++) {
      f[i] = (int) ((long) f[i] * 3303 % Q);
    }
    return f;
  }

  private static int[] mulNtt(int[] f, int[] g) {
    int[] h = new int[N];
    for (int i = 0; i < 128; i++) {
      long a0 = f[2 * i];
      long a1 = f[2 * i + 1];
      long b0 = g[2 * i];
      long b1 = g[2 * i + 1];
      h[2 * i] = (int) ((a0 * b0 + a1 * b1 % Q * GAMMAS[i]) % Q);
      h[2 * i + 1] = (int) ((a0 * b1 + a1 * b0) % Q);
    }
    return h;
  }

  private static void add(int[] acc, int[] x) {
    for (int i = 0; i < N; i++) {
      acc[i] = mod(acc[i] + x[i]);
    }
  }

  private static int[] compress(int[] x, int d) {
    int[] out = new int[N];
    for (int i = 0; i < N; i++) {
      out[i] = (int) ((((long) x[i] << d) + Q / 2) / Q) & ((1 << d) - 1);
    }
    return out;
  }

  private static int[] decompress(int[] y, int d) {
    int[] out = new int[N];
    for (int i = 0; i < N; i++) {
      out[i] = (int) (((long) y[i] * Q + (1 << (d - 1))) >> d);
    }
    return out;
  }

  private static byte[] encode(int[] f, int d) {
    byte[] out = new byte[32 * d];
    for (int i = 0; i < N; i++) {
      for (int j = 0; j < d; j++) {
        int b = i * d + j;
        out[b >> 3] |= (byte) (((f[i] >> j) & 1) << (b & 7));
      }
    }
    return out;
  }

  private static int[] decode(byte[] bytes, int d) {
    int[] f = new int[N];
    for (int i = 0; i < N; i++) {
      int v = 0;
      for (int j = 0; j < d; j++) {
        v |= bit(bytes, i * d + j) << j;
      }
      f[i] = d == 12 ? v % Q : v;
    }
    return f;
  }

  private static int mod(int x) {
    int r = x % Q;
    return r < 0 ? r + Q : r;
  }

  private static int pow(int base, int e) {
    long r = 1;
    for (int i = 0; i < e; i++) {
      r = r * base % Q;
    }
    return (int) r;
  }

  private static int bitRev7(int i) {
    int r = 0;
    for (int b = 0; b < 7; b++) {
      r |= ((i >> b) & 1) << (6 - b);
    }
    return r;
  }

  static byte[] cat(byte[]... parts) {
    int n = 0;
    for (byte[] p : parts) {
      n += p.length;
    }
    byte[] out = new byte[n];
    int at = 0;
    for (byte[] p : parts) {
      System.arraycopy(p, 0, out, at, p.length);
      at += p.length;
    }
    return out;
  }
}
