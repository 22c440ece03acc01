package dev.aoepack.testing;

import java.util.Arrays;

/**
 * Keccak-f[1600] sponges (FIPS 202) for the test-only X-Wing: SHA3-256,
 * SHA3-512, SHAKE128 and SHAKE256, with incremental squeezing. Written for
 * clarity, not speed; TEST-ONLY.
 */
public final class Keccak {
  private static final long[] RC = {
    0x0000000000000001L, 0x0000000000008082L, 0x800000000000808aL, 0x8000000080008000L,
    0x000000000000808bL, 0x0000000080000001L, 0x8000000080008081L, 0x8000000000008009L,
    0x000000000000008aL, 0x0000000000000088L, 0x0000000080008009L, 0x000000008000000aL,
    0x000000008000808bL, 0x800000000000008bL, 0x8000000000008089L, 0x8000000000008003L,
    0x8000000000008002L, 0x8000000000000080L, 0x000000000000800aL, 0x800000008000000aL,
    0x8000000080008081L, 0x8000000000008080L, 0x0000000080000001L, 0x8000000080008008L
  };
  private static final int[] ROT = {
    0, 1, 62, 28, 27, 36, 44, 6, 55, 20, 3, 10, 43, 25, 39, 41, 45, 15, 21, 8, 18, 2, 61, 56, 14
  };

  private final long[] state = new long[25];
  private final int rate;
  private final byte suffix;
  private final byte[] buffer;
  private int at;
  private boolean squeezing;

  private Keccak(int rate, int suffix) {
    this.rate = rate;
    this.suffix = (byte) suffix;
    this.buffer = new byte[rate];
  }

  public static Keccak shake128() {
    return new Keccak(168, 0x1f);
  }

  public static Keccak shake256() {
    return new Keccak(136, 0x1f);
  }

  public static byte[] sha3_256(byte[]... parts) {
    Keccak k = new Keccak(136, 0x06);
    for (byte[] p : parts) {
      k.absorb(p);
    }
    return k.squeeze(32);
  }

  public static byte[] sha3_512(byte[]... parts) {
    Keccak k = new Keccak(72, 0x06);
    for (byte[] p : parts) {
      k.absorb(p);
    }
    return k.squeeze(64);
  }

  public static byte[] shake256(int length, byte[]... parts) {
    Keccak k = shake256();
    for (byte[] p : parts) {
      k.absorb(p);
    }
    return k.squeeze(length);
  }

  public Keccak absorb(byte[] data) {
    if (squeezing) {
      throw new IllegalStateException("already squeezing");
    }
    for (byte b : data) {
      buffer[at++] = b;
      if (at == rate) {
        xorBlock();
        permute();
        at = 0;
      }
    }
    return this;
  }

  public byte[] squeeze(int length) {
    if (!squeezing) {
      Arrays.fill(buffer, at, rate, (byte) 0);
      buffer[at] ^= suffix;
      buffer[rate - 1] ^= (byte) 0x80;
      xorBlock();
      permute();
      squeezing = true;
      extract();
      at = 0;
    }
    byte[] out = new byte[length];
    for (int i = 0; i < length; i++) {
      if (at == rate) {
        permute();
        extract();
        at = 0;
      }
      out[i] = buffer[at++];
    }
    return out;
  }

  private void xorBlock() {
    for (int i = 0; i < rate / 8; i++) {
      long lane = 0;
      for (int b = 7; b >= 0; b--) {
        lane = lane << 8 | (buffer[8 * i + b] & 0xff);
      }
      state[i] ^= lane;
    }
  }

  private void extract() {
    for (int i = 0; i < rate / 8; i++) {
      long lane = state[i];
      for (int b = 0; b < 8; b++) {
        buffer[8 * i + b] = (byte) (lane >>> (8 * b));
      }
    }
  }

  private void permute() {
    long[] a = state;
    long[] c = new long[5];
    long[] b = new long[25];
    for (int round = 0; round < 24; round++) {
      for (int x = 0; x < 5; x++) {
        c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20];
      }
      for (int x = 0; x < 5; x++) {
        long d = c[(x + 4) % 5] ^ Long.rotateLeft(c[(x + 1) % 5], 1);
        for (int y = 0; y < 25; y += 5) {
          a[y + x] ^= d;
        }
      }
      for (int x = 0; x < 5; x++) {
        for (int y = 0; y < 5; y++) {
          int i = x + 5 * y;
          b[y + 5 * ((2 * x + 3 * y) % 5)] = Long.rotateLeft(a[i], ROT[i]);
        }
      }
      for (int y = 0; y < 25; y += 5) {
        for (int x = 0; x < 5; x++) {
          a[y + x] = b[y + x] ^ (~b[y + (x + 1) % 5] & b[y + (x + 2) % 5]);
        }
      }
      a[0] ^= RC[round];
    }
  }
}
