package dev.aoepack.bundle;

import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.aoepack.AoeException;
import dev.aoepack.internal.Codec;
import dev.aoepack.internal.Pem;
import dev.aoepack.internal.zip.BundleLayout;
import dev.aoepack.internal.zip.FileSource;
import dev.aoepack.internal.zip.LayoutReader;
import dev.aoepack.internal.zip.ZipEntry;
import dev.aoepack.json.Canonical;
import dev.aoepack.json.Json;
import dev.aoepack.keys.DecryptionKey;
import dev.aoepack.keys.TrustedKey;
import dev.aoepack.testing.Vectors;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.zip.CRC32;
import org.junit.jupiter.api.function.Executable;

/**
 * Test-only tools for bundle tests: the vectors' trusted keys, a writer of
 * canonical v1 containers (so a test can make a bundle with any entries), a
 * signer with the TEST-ONLY keys, and manifest edits.
 */
final class Kit {
  static final String[] SIGNERS = {"test-only-ed25519", "test-only-p256"};
  static final String[] BUNDLES = {
    "v1-plain.aoe", "v1-x25519.aoe", "v1-kek.aoe", "v1-mlkem.aoe", "v1-multi.aoe"
  };
  /** Written as 2^53 after encoding: JCS itself refuses to write it. */
  static final long SENTINEL = 4503599627370495L;

  private Kit() {}

  static TrustedKey trusted(String name) {
    try {
      return TrustedKey.fromPem(Vectors.bytes(name + ".pub"));
    } catch (AoeException e) {
      throw new IllegalStateException(e);
    }
  }

  static BundleVerifier verifier() throws AoeException {
    return BundleVerifier.builder().trust(trusted(SIGNERS[0]), trusted(SIGNERS[1])).threshold(2).build();
  }

  static DecryptionKey key(String file) {
    try {
      return DecryptionKey.fromFile(Vectors.bytes(file));
    } catch (AoeException e) {
      throw new IllegalStateException(e);
    }
  }

  static String code(Executable run) {
    return assertThrows(AoeException.class, run).code();
  }

  static File write(File dir, String name, byte[] data) {
    File f = new File(dir, name);
    try {
      Files.write(f.toPath(), data);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return f;
  }

  /** The verified layout of a vector (offsets of every entry). */
  static BundleLayout layout(String bundle) {
    try (FileSource source = new FileSource(Vectors.file(bundle))) {
      return LayoutReader.read(source, 10000);
    } catch (IOException | AoeException e) {
      throw new IllegalStateException(e);
    }
  }

  static ZipEntry entry(String bundle, String name) {
    for (ZipEntry e : layout(bundle).entries) {
      if (e.name.equals(name)) {
        return e;
      }
    }
    throw new IllegalArgumentException(name);
  }

  static byte[] flip(byte[] data, long at) {
    byte[] out = data.clone();
    out[(int) at] ^= 0x01;
    return out;
  }

  // --- a canonical v1 container ------------------------------------------------

  /** A bundle holding exactly {@code entries} after {@code mimetype} (names and data, in order). */
  static byte[] container(List<String> names, List<byte[]> data, int time, int date) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream directory = new ByteArrayOutputStream();
    List<String> all = new ArrayList<>();
    List<byte[]> bodies = new ArrayList<>();
    all.add("mimetype");
    bodies.add(LayoutReader.MEDIA_TYPE_V1.getBytes(StandardCharsets.US_ASCII));
    all.addAll(names);
    bodies.addAll(data);
    for (int i = 0; i < all.size(); i++) {
      byte[] name = all.get(i).getBytes(StandardCharsets.UTF_8);
      byte[] body = bodies.get(i);
      int offset = out.size();
      CRC32 crc = new CRC32();
      crc.update(body);
      int pad = i == 0 ? 0 : (64 - (offset + 30 + name.length + 6) % 64) % 64;
      int extra = i == 0 ? 0 : 6 + pad;
      ByteBuffer h = le(30 + name.length + extra);
      h.putInt(0x04034B50).putShort((short) 10).putShort((short) 0x0800).putShort((short) 0);
      h.putShort((short) time).putShort((short) date).putInt((int) crc.getValue());
      h.putInt(body.length).putInt(body.length).putShort((short) name.length).putShort((short) extra);
      h.put(name);
      if (i > 0) {
        h.putShort((short) 0xD935).putShort((short) (2 + pad)).putShort((short) 64).put(new byte[pad]);
      }
      out.write(h.array(), 0, h.capacity());
      out.write(body, 0, body.length);
      ByteBuffer c = le(46 + name.length);
      c.putInt(0x02014B50).putShort((short) 0x0314).putShort((short) 10).putShort((short) 0x0800);
      c.putShort((short) 0).putShort((short) time).putShort((short) date).putInt((int) crc.getValue());
      c.putInt(body.length).putInt(body.length).putShort((short) name.length).putShort((short) 0);
      c.putShort((short) 0).putShort((short) 0).putShort((short) 0).putInt(0x81A40000).putInt(offset);
      c.put(name);
      directory.write(c.array(), 0, c.capacity());
    }
    int cdOffset = out.size();
    out.write(directory.toByteArray(), 0, directory.size());
    ByteBuffer end = le(22);
    end.putInt(0x06054B50).putShort((short) 0).putShort((short) 0).putShort((short) all.size());
    end.putShort((short) all.size()).putInt(directory.size()).putInt(cdOffset).putShort((short) 0);
    out.write(end.array(), 0, 22);
    return out.toByteArray();
  }

  private static ByteBuffer le(int size) {
    return ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
  }

  /** {@code bundle}'s payloads with another manifest and envelope. */
  static byte[] rebuild(String bundle, byte[] manifest, byte[] envelope) {
    BundleLayout layout = layout(bundle);
    byte[] whole = Vectors.bytes(bundle);
    List<String> names = new ArrayList<>();
    List<byte[]> data = new ArrayList<>();
    for (ZipEntry e : layout.entries.subList(0, layout.entries.size() - 2)) {
      names.add(e.name);
      byte[] body = new byte[(int) e.size];
      System.arraycopy(whole, (int) e.dataOffset, body, 0, body.length);
      data.add(body);
    }
    names.add("aoe/manifest.json");
    data.add(manifest);
    names.add("aoe/signatures.json");
    data.add(envelope);
    return container(names, data, layout.dosTime, layout.dosDate);
  }

  /** {@code bundle} with its manifest edited and validly re-signed by both TEST-ONLY keys. */
  static byte[] insider(String bundle, Edit edit) {
    Map<String, Object> m = mutable(Vectors.manifest(bundle));
    edit.apply(m);
    return rebuild(bundle, encode(m), envelope(sign(encode(m)), false));
  }

  interface Edit {
    void apply(Map<String, Object> manifest);
  }

  /** JCS of a tree, with {@link #SENTINEL} written as 2^53 and {@code "0.001"} markers as numbers. */
  static byte[] encode(Object tree) {
    try {
      String s = new String(Canonical.encode(tree), StandardCharsets.UTF_8);
      s = s.replace(Long.toString(SENTINEL), "9007199254740992").replace("\"@0.001\"", "0.001");
      return s.getBytes(StandardCharsets.UTF_8);
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  @SuppressWarnings("unchecked")
  static <T> T mutable(Object v) {
    if (v instanceof Map) {
      Map<String, Object> out = new LinkedHashMap<>();
      for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
        out.put((String) e.getKey(), mutable(e.getValue()));
      }
      return (T) out;
    }
    if (v instanceof List) {
      List<Object> out = new ArrayList<>();
      for (Object x : (List<?>) v) {
        out.add(mutable(x));
      }
      return (T) out;
    }
    return (T) v;
  }

  @SuppressWarnings("unchecked")
  static Map<String, Object> obj(Object v) {
    return (Map<String, Object>) v;
  }

  @SuppressWarnings("unchecked")
  static List<Object> arr(Object v) {
    return (List<Object>) v;
  }

  /** Signatures over PAE(manifest) by both TEST-ONLY signing keys, by key id. */
  static Map<String, byte[]> sign(byte[] manifest) {
    Map<String, byte[]> out = new TreeMap<>();
    byte[] pae = Codec.pae(Envelope.PAYLOAD_TYPE, manifest);
    try {
      for (String name : SIGNERS) {
        byte[] der = Pem.blocks(Vectors.bytes(name + ".key")).get(0).der;
        boolean ed = name.contains("ed25519");
        PrivateKey key = KeyFactory.getInstance(ed ? "Ed25519" : "EC").generatePrivate(new PKCS8EncodedKeySpec(der));
        Signature s = Signature.getInstance(ed ? "Ed25519" : "SHA256withECDSA");
        s.initSign(key);
        s.update(pae);
        out.put(trusted(name).keyId(), s.sign());
      }
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
    return out;
  }

  /** The canonical envelope of {@code sigs} (sorted by key id), or in reverse order. */
  static byte[] envelope(Map<String, byte[]> sigs, boolean reversed) {
    List<String> items = new ArrayList<>();
    for (Map.Entry<String, byte[]> e : sigs.entrySet()) {
      items.add("{\"keyid\":\"" + e.getKey() + "\",\"sig\":\"" + Codec.base64(e.getValue()) + "\"}");
    }
    if (reversed) {
      java.util.Collections.reverse(items);
    }
    return ("{\"payloadType\":\"" + Envelope.PAYLOAD_TYPE + "\",\"signatures\":[" + String.join(",", items) + "]}")
        .getBytes(StandardCharsets.UTF_8);
  }

  /** A validly signed bundle with the given payload entries and a manifest listing them (unencrypted). */
  static byte[] signedWithEntries(List<String> names, List<byte[]> data) {
    Map<String, Object> m = mutable(Vectors.manifest("v1-plain.aoe"));
    List<Object> files = new ArrayList<>();
    Map<String, Object> template = obj(arr(m.get("files")).get(1)); // labels.txt
    for (int i = 0; i < names.size(); i++) {
      Map<String, Object> f = mutable(template);
      byte[] body = data.get(i);
      CRC32 crc = new CRC32();
      crc.update(body);
      f.put("path", names.get(i).substring("payload/".length()));
      f.put("size", (long) body.length);
      f.put("sha256", Codec.hex(PayloadStream.sha256().digest(body)));
      Map<String, Object> stored = obj(f.get("stored"));
      stored.put("size", (long) body.length);
      stored.put("crc32", crc.getValue());
      stored.put("chunks", new ArrayList<Object>(List.of(Codec.hex(PayloadStream.sha256().digest(body)))));
      files.add(f);
    }
    m.put("files", files);
    byte[] manifest = encode(m);
    List<String> allNames = new ArrayList<>(names);
    List<byte[]> allData = new ArrayList<>(data);
    allNames.add("aoe/manifest.json");
    allData.add(manifest);
    allNames.add("aoe/signatures.json");
    allData.add(envelope(sign(manifest), false));
    BundleLayout plain = layout("v1-plain.aoe");
    return container(allNames, allData, plain.dosTime, plain.dosDate);
  }

  static Object parse(byte[] json) {
    try {
      return Json.parse(json, 64, 1 << 20);
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }
}
