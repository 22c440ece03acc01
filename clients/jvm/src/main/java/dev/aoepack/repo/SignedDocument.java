package dev.aoepack.repo;

import dev.aoepack.AlgorithmUnavailableException;
import dev.aoepack.AoeException;
import dev.aoepack.internal.Codec;
import dev.aoepack.json.Canonical;
import dev.aoepack.json.Json;
import dev.aoepack.json.JsonException;
import dev.aoepack.keys.TrustedKey;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A repository document's DSSE envelope (§15.2), parsed by the seven checks in their order;
 * signatures are counted afterwards, by whoever knows which root to trust.
 */
final class SignedDocument {
  static final String ROOT = "application/vnd.aoe.repository.root.v1+json";
  static final String MANIFEST = "application/vnd.aoe.repository.manifest.v1+json";
  static final String INDEX = "application/vnd.aoe.repository.index.v1+json";
  static final String TAG = "application/vnd.aoe.repository.tag.v1+json";

  /** Signatures one envelope may hold (§15.2 step 4). */
  static final int MAX_SIGNATURES = 32;
  /** JSON values an envelope may hold (aoe_pack/repository/limits.py). */
  static final int MAX_ENVELOPE_VALUES = 1000;
  /** JSON values a signed payload may hold. */
  static final int MAX_DOCUMENT_VALUES = 2000000;
  /** Nesting the reader parses: the reference (Python) refuses from about 1 000 levels. */
  static final int MAX_DEPTH = 1000;

  final String payloadType;
  final byte[] payload;
  final List<String> keyIds;
  final List<byte[]> sigs;
  final Object body;

  private SignedDocument(String payloadType, byte[] payload, List<String> keyIds, List<byte[]> sigs, Object body) {
    this.payloadType = payloadType;
    this.payload = payload;
    this.keyIds = keyIds;
    this.sigs = sigs;
    this.body = body;
  }

  static SignedDocument parse(byte[] data, String payloadType, String what) throws AoeException {
    // 1. JSON, an object with exactly payload, payloadType and signatures.
    Object parsed;
    try {
      parsed = Json.parse(data, MAX_DEPTH, MAX_ENVELOPE_VALUES);
    } catch (JsonException e) {
      throw new AoeException("repository-format", what + " is not valid JSON: " + e.getMessage(), e);
    }
    if (!(parsed instanceof Map)
        || ((Map<?, ?>) parsed).size() != 3
        || !((Map<?, ?>) parsed).containsKey("payload")
        || !((Map<?, ?>) parsed).containsKey("payloadType")
        || !((Map<?, ?>) parsed).containsKey("signatures")) {
      throw new AoeException(
          "repository-format",
          what + " must be a DSSE envelope holding exactly payload, payloadType and signatures");
    }
    Map<?, ?> doc = (Map<?, ?>) parsed;
    // 2. The payload type of the name being read.
    if (!payloadType.equals(doc.get("payloadType"))) {
      throw new AoeException(
          "repository-format",
          what + " has payloadType " + doc.get("payloadType") + ", expected " + payloadType);
    }
    // 3. Base64 payload.
    if (!(doc.get("payload") instanceof String)) {
      throw new AoeException("repository-format", what + ": payload must be a base64 string");
    }
    byte[] payload = Codec.base64((String) doc.get("payload"));
    if (payload == null) {
      throw new AoeException("repository-format", what + ": payload is not valid base64");
    }
    // 4. Signatures.
    List<String> keyIds = new ArrayList<String>();
    List<byte[]> sigs = new ArrayList<byte[]>();
    signatures(doc.get("signatures"), keyIds, sigs, what);
    // 5. The envelope's own bytes are canonical (non-canonical base64 included).
    if (!java.util.Arrays.equals(envelopeBytes(payloadType, payload, keyIds, sigs), data)) {
      throw new AoeException("repository-format", what + " is not in canonical form (RFC 8785)");
    }
    // 6. The payload: UTF-8 JSON of integers only.
    Object body;
    try {
      body = Json.parse(payload, MAX_DEPTH, MAX_DOCUMENT_VALUES);
    } catch (JsonException e) {
      throw new AoeException(
          "repository-format", what + ": the signed payload is not valid JSON: " + e.getMessage(), e);
    }
    if (Json.hasNonInteger(body)) {
      throw new AoeException(
          "repository-format",
          what + ": the signed payload is not valid JSON: it holds a floating-point number or an"
              + " integer beyond 2**53-1 (repository documents hold none)");
    }
    // 7. The payload is canonical.
    if (!Canonical.isCanonical(payload, body)) {
      throw new AoeException("repository-format", what + ": the signed payload is not canonical JSON");
    }
    return new SignedDocument(
        payloadType, payload, Collections.unmodifiableList(keyIds), Collections.unmodifiableList(sigs), body);
  }

  private static void signatures(Object raw, List<String> keyIds, List<byte[]> sigs, String what)
      throws AoeException {
    if (!(raw instanceof List) || ((List<?>) raw).isEmpty()) {
      throw untrusted(what, "the envelope holds no signatures");
    }
    List<?> items = (List<?>) raw;
    if (items.size() > MAX_SIGNATURES) {
      throw untrusted(what, items.size() + " signatures exceed the limit of " + MAX_SIGNATURES);
    }
    for (Object item : items) {
      if (!(item instanceof Map)
          || ((Map<?, ?>) item).size() != 2
          || !((Map<?, ?>) item).containsKey("keyid")
          || !((Map<?, ?>) item).containsKey("sig")) {
        throw untrusted(what, "each signature must hold exactly keyid and sig");
      }
      Object keyid = ((Map<?, ?>) item).get("keyid");
      Object sig = ((Map<?, ?>) item).get("sig");
      if (!(keyid instanceof String) || !(sig instanceof String)) {
        throw untrusted(what, "signature keyid and sig must be strings");
      }
      if (!Codec.isHex64((String) keyid)) {
        throw untrusted(what, "signature key id is not 64 lowercase hex digits");
      }
      byte[] bytes = Codec.base64((String) sig);
      if (bytes == null) {
        throw untrusted(what, "signature by " + ((String) keyid).substring(0, 16) + "… is not valid base64");
      }
      keyIds.add((String) keyid);
      sigs.add(bytes);
    }
    Set<String> seen = new HashSet<String>();
    for (String k : keyIds) {
      if (!seen.add(k)) {
        throw untrusted(what, "key " + k.substring(0, 16) + "… signed more than once; each key counts once");
      }
    }
    for (int i = 1; i < keyIds.size(); i++) {
      if (keyIds.get(i - 1).compareTo(keyIds.get(i)) > 0) {
        throw untrusted(what, "signatures must be sorted by key id");
      }
    }
  }

  private static AoeException untrusted(String what, String message) {
    return new AoeException("untrusted-metadata", what + ": " + message);
  }

  /** The envelope in canonical form: what a writer writes and a reader compares. */
  static byte[] envelopeBytes(String payloadType, byte[] payload, List<String> keyIds, List<byte[]> sigs) {
    Map<String, Object> env = new LinkedHashMap<String, Object>();
    env.put("payload", Codec.base64(payload));
    env.put("payloadType", payloadType);
    List<Object> list = new ArrayList<Object>();
    for (int i = 0; i < keyIds.size(); i++) {
      Map<String, Object> s = new LinkedHashMap<String, Object>();
      s.put("keyid", keyIds.get(i));
      s.put("sig", Codec.base64(sigs.get(i)));
      list.add(s);
    }
    env.put("signatures", list);
    try {
      return Canonical.encode(env);
    } catch (JsonException e) {
      return new byte[0]; // a payload type with an unpaired surrogate: never equal to the bytes read
    }
  }

  /** Ids of the keys of {@code keys} whose signature over the PAE verifies (each counted once). */
  Set<String> validKeyIds(Map<String, TrustedKey> keys) throws AlgorithmUnavailableException {
    Set<String> good = new HashSet<String>();
    byte[] message = null;
    for (int i = 0; i < keyIds.size(); i++) {
      TrustedKey key = keys.get(keyIds.get(i));
      if (key == null) {
        continue; // signatures by other keys are ignored
      }
      if (message == null) {
        message = Codec.pae(payloadType, payload);
      }
      if (key.verify(message, sigs.get(i))) {
        good.add(keyIds.get(i));
      }
    }
    return good;
  }

  /** The hex SHA-256 of the signed payload (what makes two documents the same one). */
  String payloadSha256() {
    return sha256Hex(payload);
  }

  static String sha256Hex(byte[] b) {
    try {
      return Codec.hex(MessageDigest.getInstance("SHA-256").digest(b));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is in every Java and Android platform", e);
    }
  }

  static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }
}
