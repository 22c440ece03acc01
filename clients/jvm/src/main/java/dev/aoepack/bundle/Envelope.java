package dev.aoepack.bundle;

import dev.aoepack.AlgorithmUnavailableException;
import dev.aoepack.AoeException;
import dev.aoepack.internal.Codec;
import dev.aoepack.json.Json;
import dev.aoepack.json.JsonException;
import dev.aoepack.keys.TrustedKey;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * {@code aoe/signatures.json}, the detached DSSE envelope over the manifest
 * (docs/format.md §6.1), parsed strictly as the reference does
 * ({@code aoe_pack/bundle/signatures.py}, {@code dsse.py}): every refusal is
 * {@code signature}.
 */
final class Envelope {
  static final String PAYLOAD_TYPE = "application/vnd.aoe.bundle.manifest.v1+json";
  static final int MAX_SIGNATURES = 64;

  final List<String> keyIds;
  final List<byte[]> sigs;

  private Envelope(List<String> keyIds, List<byte[]> sigs) {
    this.keyIds = keyIds;
    this.sigs = sigs;
  }

  static Envelope parse(byte[] data) throws AoeException {
    Object doc;
    try {
      doc = Json.parse(data, 64, Integer.MAX_VALUE);
    } catch (JsonException e) {
      throw bad("aoe/signatures.json is not valid JSON: " + e.getMessage());
    }
    if (!(doc instanceof Map)
        || !((Map<?, ?>) doc).keySet().equals(new HashSet<String>(Arrays.asList("payloadType", "signatures")))) {
      throw bad("aoe/signatures.json must hold exactly payloadType and signatures");
    }
    Map<?, ?> envelope = (Map<?, ?>) doc;
    if (!PAYLOAD_TYPE.equals(envelope.get("payloadType"))) {
      throw bad("signature payloadType is not " + PAYLOAD_TYPE);
    }
    Object raw = envelope.get("signatures");
    if (!(raw instanceof List) || ((List<?>) raw).isEmpty()) {
      throw bad("the envelope holds no signatures");
    }
    List<?> items = (List<?>) raw;
    if (items.size() > MAX_SIGNATURES) {
      throw bad(items.size() + " signatures exceed the limit of " + MAX_SIGNATURES);
    }
    List<String> keyIds = new ArrayList<String>();
    List<byte[]> sigs = new ArrayList<byte[]>();
    Set<String> wanted = new HashSet<String>(Arrays.asList("keyid", "sig"));
    for (Object item : items) {
      if (!(item instanceof Map) || !((Map<?, ?>) item).keySet().equals(wanted)) {
        throw bad("each signature must hold exactly keyid and sig");
      }
      Object keyId = ((Map<?, ?>) item).get("keyid");
      Object sig = ((Map<?, ?>) item).get("sig");
      if (!(keyId instanceof String) || !(sig instanceof String)) {
        throw bad("signature keyid and sig must be strings");
      }
      if (!Codec.isHex64((String) keyId)) {
        throw bad("signature key id is not 64 lowercase hex digits");
      }
      byte[] bytes = Codec.base64((String) sig);
      if (bytes == null) {
        throw bad("the signature by " + ((String) keyId).substring(0, 16) + "… is not valid base64");
      }
      keyIds.add((String) keyId);
      sigs.add(bytes);
    }
    if (new HashSet<String>(keyIds).size() != keyIds.size()) {
      throw bad("a key signed more than once; each key counts once");
    }
    for (int i = 1; i < keyIds.size(); i++) {
      if (keyIds.get(i - 1).compareTo(keyIds.get(i)) > 0) {
        throw bad("signatures must be sorted by key id");
      }
    }
    StringBuilder canonical = new StringBuilder("{\"payloadType\":\"" + PAYLOAD_TYPE + "\",\"signatures\":[");
    for (int i = 0; i < keyIds.size(); i++) {
      canonical.append(i == 0 ? "" : ",").append("{\"keyid\":\"").append(keyIds.get(i));
      canonical.append("\",\"sig\":\"").append(Codec.base64(sigs.get(i))).append("\"}");
    }
    canonical.append("]}");
    if (!Arrays.equals(canonical.toString().getBytes(StandardCharsets.US_ASCII), data)) {
      throw bad("aoe/signatures.json is not in canonical form (RFC 8785)");
    }
    return new Envelope(keyIds, sigs);
  }

  /**
   * The key ids of the trusted keys whose signature over PAE(manifest) verifies
   * (§6.4); {@code threshold} if fewer than {@code threshold}.
   */
  List<String> check(byte[] manifest, Map<String, TrustedKey> trusted, int threshold)
      throws AoeException {
    byte[] pae = Codec.pae(PAYLOAD_TYPE, manifest);
    List<String> valid = new ArrayList<String>();
    List<String> refused = new ArrayList<String>();
    for (int i = 0; i < keyIds.size(); i++) {
      TrustedKey key = trusted.get(keyIds.get(i));
      if (key == null) {
        refused.add(keyIds.get(i).substring(0, 16) + "…: key not trusted");
      } else if (verify(key, pae, sigs.get(i))) {
        valid.add(keyIds.get(i));
      } else {
        refused.add(keyIds.get(i).substring(0, 16) + "…: invalid signature");
      }
    }
    if (valid.size() < threshold) {
      throw new AoeException(
          "threshold",
          valid.size() + " valid signature(s) of " + threshold + " required"
              + (refused.isEmpty() ? "" : "; " + String.valueOf(refused))
              + ": pass the signers' public keys, or verify with a lower threshold; an invalid"
              + " signature means the manifest was changed after signing");
    }
    return valid;
  }

  private static boolean verify(TrustedKey key, byte[] pae, byte[] sig)
      throws AlgorithmUnavailableException {
    return key.verify(pae, sig);
  }

  private static AoeException bad(String message) {
    return new AoeException("signature", message);
  }
}
