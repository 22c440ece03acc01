"""A second verifier of bundle format v1 written from docs/format.md (§) alone, as a device
engineer would: stdlib, ``cryptography`` primitives and ``rfc8785``, no aoe_pack. :func:`verify`
raises :class:`Reject` with the spec's error code for the first failing check."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import ipaddress
import json
import re
import struct
import unicodedata
import zlib
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, hpke, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MEDIA_V1, MEDIA_PREFIX = b"application/vnd.aoe.bundle.v1+zip", b"application/vnd.aoe.bundle."
PAYLOAD_TYPE = b"application/vnd.aoe.bundle.manifest.v1+json"
ED25519_SPKI = bytes.fromhex("302a300506032b6570032100")
X25519_SPKI = bytes.fromhex("302a300506032b656e032100")
P256_SPKI = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200")
X25519_PKCS8 = bytes.fromhex("302e020100300506032b656e04220420")
XWING_PKCS8 = bytes.fromhex("3034020100300d060b2b0601040183e62d81c87a0420")  # §10.2
XWING_SPKI = bytes.fromhex("308204d4300d060b2b0601040183e62d81c87a038204c100")
KEMS = {"DHKEM(X25519, HKDF-SHA256)": hpke.KEM.X25519, "DHKEM(P-256, HKDF-SHA256)": hpke.KEM.P256}
KEMS["MLKEM768-X25519"] = hpke.KEM.MLKEM768_X25519
PEM = re.compile(rb"-----BEGIN [A-Z ]+-----(.*?)-----END", re.DOTALL)
HEX64, HEX14 = re.compile(r"[0-9a-f]{64}"), re.compile(r"[0-9a-f]{14}")
U32, NO_ZIP64 = struct.Struct("<I"), 0xFFFFFFFF
POW2 = {1 << k for k in range(16, 25)}  # §5.2: chunk and segment sizes
OPTIONAL = frozenset({"runtime", "variant"})  # §5.2.1
# §5.2.4: scheme://host[:port]path, no userinfo, query or fragment (checked piece by piece below)
UPDATE_URL = re.compile(r"([A-Za-z]+)://(\[[^\]/]*\]|[^:/]*)(?::([0-9]{1,5}))?(/[^?#]*)?")
LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
SEGMENT = re.compile(r"([A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})+")


class Reject(Exception):  # noqa: N818 - a verdict: Reject(code, why)
    code = property(lambda self: self.args[0])


def _need(ok: object, code: str, why: str) -> None:
    if not ok:
        raise Reject(code, why)


def _check_head(d: bytes) -> None:  # §3 and §8 steps 2.1-2.2
    n = len(d)
    _need(n, "not-a-bundle", "empty file")
    if d[:4] != b"PK\x03\x04":
        _need(d[0] != 1 or n < 21, "legacy-aoe-format", "AoE atenc v1 model")
        raise Reject("not-a-bundle", "no ZIP local header")
    if d[26:28] != b"\x08\x00" or d[30:38] != b"mimetype":
        raise Reject("zip-structure" if n < 38 else "not-a-bundle", "first entry not mimetype")
    if not d[38:128].startswith(MEDIA_PREFIX):
        truncated = n <= 128 and MEDIA_PREFIX.startswith(d[38:])
        raise Reject("zip-structure" if truncated else "not-a-bundle", "not an aoe media type")
    _need(d[28:30] == b"\0\0", "zip-structure", "mimetype has an extra field")
    (size,) = U32.unpack_from(d, 18)
    _need(size <= 90 and 38 + size <= n, "zip-structure", "media type size")
    media = d[38 : 38 + size]
    _need(zlib.crc32(media) == U32.unpack_from(d, 14)[0], "zip-structure", "media type crc32")
    _need(media == MEDIA_V1, "unsupported-version", f"media type {media!r}")


def read_entries(d: bytes) -> list[tuple[str, int, int, int]]:
    """§8 step 2: (name, data offset, size, crc32) of every entry, ``mimetype`` first."""
    _check_head(d)
    at = len(d) - 22
    _need(at >= 0 and d[at : at + 4] == b"PK\x05\x06", "zip-structure", "no end record at -22")
    disk, cd_disk, ondisk, count, cd_size, cd_off, comment = struct.unpack_from("<4H2IH", d, at + 4)
    _need(not (comment or disk or cd_disk) and ondisk == count, "zip-structure", "end record")
    _need(count != 0xFFFF and NO_ZIP64 not in (cd_size, cd_off), "limit-exceeded", "ZIP64")
    _need(count, "zip-structure", "no entries")
    _need(count - 1 <= 10_000, "limit-exceeded", "too many entries")
    _need(cd_off + cd_size == at, "zip-structure", "directory does not end at the end record")
    _need(46 * count <= cd_size <= 1070 * count, "zip-structure", "central directory size")
    entries, files, folders, pos, expect, stamp = [], set(), set(), cd_off, 0, (0, 0)
    for i in range(count):
        _need(pos + 46 <= at and d[pos : pos + 4] == b"PK\x01\x02", "zip-structure", "record")
        made, need, flags, method, time, date, crc, csize, size, nlen, xlen, clen, *rest = (
            struct.unpack_from("<6H3I5H2I", d, pos + 4)
        )
        dsk, iattr, eattr, off = rest
        _need(pos + 46 + nlen + xlen + clen <= at, "zip-structure", "central record length")
        raw = d[pos + 46 : pos + 46 + nlen]
        name = raw.decode("utf-8", "replace")
        _need(name.encode() == raw, "unsafe-entry", f"name {raw!r} is not UTF-8")
        if i == 0:  # §4.6: a valid DOS time and date, shared by every header
            dos_ok = time >> 11 < 24 and (time >> 5) & 63 < 60 and (time & 31) < 30
            dos_ok = dos_ok and 1 <= (date >> 5) & 15 <= 12 and date & 31 >= 1
            _need(name == "mimetype" and dos_ok, "zip-structure", "mimetype record")
            stamp = (time, date)
        key = unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())  # §4.7
        ok = 0 < nlen <= 1024 and all(s not in ("", ".", "..") for s in name.split("/"))
        ok &= not (re.match(r"/|[A-Za-z]:", name) or "\x00" in name or "\\" in name)
        parts = key.split("/")
        up = {"/".join(parts[:j]) for j in range(1, len(parts))}  # the folders it needs
        ok &= key not in files and key not in folders and not up & files
        _need(ok, "unsafe-entry", f"unsafe or colliding name {name!r}")
        files, folders = files | {key}, folders | up
        _need(eattr >> 16 & 0o170000 == 0o100000, "unsafe-entry", f"{name} not a regular file")
        _need(eattr == 0x81A40000, "zip-structure", "external attributes")
        _need(method == 0 and flags == 0x0800, "zip-structure", "method or flags")
        _need(NO_ZIP64 not in (csize, size, off), "limit-exceeded", "ZIP64 entry")
        _need(off == expect, "zip-structure", f"{name}: gap or overlap")
        pad = -(off + 30 + nlen + 6) % 64  # §4.4
        extra = b"" if i == 0 else struct.pack("<3H", 0xD935, 2 + pad, 64) + bytes(pad)
        data_off = off + 30 + nlen + len(extra)
        _need(data_off + size <= cd_off, "zip-structure", f"{name} runs into the directory")
        fixed = (made, need, time, date, csize, xlen, clen, dsk, iattr)
        _need(fixed == (0x0314, 10, *stamp, size, 0, 0, 0, 0), "zip-structure", "central fields")
        local = struct.pack("<I5H", 0x04034B50, 10, 0x0800, 0, *stamp)
        local += struct.pack("<3I2H", crc, size, size, nlen, len(extra)) + raw + extra
        _need(d[off:data_off] == local, "zip-structure", f"{name}: local header")
        entries.append((name, data_off, size, crc))
        expect, pos = data_off + size, pos + 46 + nlen + xlen + clen
    _need(pos == at and expect == cd_off, "zip-structure", "directory not contiguous")
    return entries


def public_key(pem: bytes) -> tuple[str, Any]:  # (key id, verify(sig, message)); §6.2, §6.3
    (der,) = [base64.b64decode(b"".join(b.split())) for b in PEM.findall(pem)]
    keyid = hashlib.sha256(der).hexdigest()
    if len(der) == 44 and der.startswith(ED25519_SPKI):
        return keyid, ed25519.Ed25519PublicKey.from_public_bytes(der[12:]).verify
    _need(len(der) == 91 and der.startswith(P256_SPKI), "usage", "not an Ed25519/P-256 key")
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), der[26:])
    return keyid, lambda s, m: key.verify(s, m, ec.ECDSA(hashes.SHA256()))


def check_signatures(envelope: bytes, body: bytes, trusted: list[bytes], threshold: int) -> None:
    """§6.1 and §6.4: at least ``threshold`` valid signatures by distinct trusted keys."""
    try:
        env = json.loads(envelope)
    except ValueError:
        raise Reject("signature", "envelope is not JSON") from None
    _need(isinstance(env, dict) and set(env) == {"payloadType", "signatures"}, "signature", "keys")
    _need(env["payloadType"] == PAYLOAD_TYPE.decode(), "signature", "payloadType")
    sigs = env["signatures"]
    _need(isinstance(sigs, list) and 0 < len(sigs) <= 64, "signature", "signature count")
    decoded, canonical = [], True
    for s in sigs:
        ok = isinstance(s, dict) and set(s) == {"keyid", "sig"}
        _need(ok and all(isinstance(v, str) for v in s.values()), "signature", "signature item")
        try:
            decoded.append((s["keyid"], base64.b64decode(s["sig"], validate=True)))
        except binascii.Error:
            raise Reject("signature", "sig is not base64") from None
        canonical &= base64.b64encode(decoded[-1][1]).decode() == s["sig"]
    _need(len({k for k, _ in decoded}) == len(decoded), "signature", "a key signed twice")
    _need(canonical and rfc8785.dumps(env) == envelope, "signature", "envelope not canonical")
    keys = dict(public_key(pem) for pem in trusted)
    _need(1 <= threshold <= len(keys), "usage", "threshold outside 1..trusted keys")
    message = b"DSSEv1 %d %s %d %s" % (len(PAYLOAD_TYPE), PAYLOAD_TYPE, len(body), body)  # §6.2
    good = 0
    for keyid, sig in decoded:
        with contextlib.suppress(InvalidSignature):
            good += keyid in keys and keys[keyid](sig, message) is None
    _need(good >= threshold, "threshold", f"{good} of {threshold} signatures")


def _is_str(v: Any, rx: re.Pattern[str] | None = None) -> bool:
    return isinstance(v, str) and v != "" and (rx is None or rx.fullmatch(v) is not None)


def _update_url_ok(url: str) -> bool:  # §5.2.4
    shape = UPDATE_URL.fullmatch(url)
    if len(url) > 1024 or not all("!" <= c <= "~" and c != "\\" for c in url) or not shape:
        return False
    scheme, host, port, path = shape[1].lower(), shape[2], shape[3], shape[4] or ""
    if host.startswith("["):
        try:
            ip: Any = ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return False
    else:
        name = host.removesuffix(".")
        labels_ok = all(LABEL.fullmatch(x) for x in name.split("."))
        if not name or len(name) > 253 or not labels_ok:
            return False
        try:
            ip = ipaddress.IPv4Address(host)
        except ValueError:
            ip = None
    loopback = host.lower() == "localhost" or (ip is not None and ip.is_loopback)
    segments = path.split("/")[1:]
    if segments and segments[-1] == "":
        segments.pop()  # one trailing "/"
    return (
        (scheme == "https" or (scheme == "http" and loopback))
        and (port is None or 1 <= int(port) <= 65535)
        and all(x not in (".", "..") and SEGMENT.fullmatch(x) for x in segments)
    )


def _is_uint(v: Any, top: int = (1 << 53) - 1) -> bool:  # §5.2 "uint"
    return type(v) is int and 0 <= v <= top


def _obj(v: Any, required: set[str], optional: frozenset[str] = frozenset()) -> dict[str, Any]:
    _need(isinstance(v, dict) and required <= set(v) <= required | optional, "manifest", "members")
    return v


def parse_manifest(data: bytes) -> dict[str, Any]:  # §5, §8 step 7
    fractions: list[str] = []  # §5.1: numbers with a fraction or an exponent, refused below
    try:
        m = json.loads(data, parse_float=lambda t: fractions.append(t) or float(t))
    except ValueError:
        raise Reject("manifest", "not JSON") from None
    _need(isinstance(m, dict) and _is_str(m.get("format")), "manifest", "format")
    _need(m["format"] == "aoe-bundle/v1", "unsupported-version", m["format"])
    model = _obj(m.get("model"), {"tag", "name", "version", "runtime"}, frozenset({"updateURL"}))
    _need(all(_is_str(v) for v in model.values()), "manifest", "model")
    _need("updateURL" not in model or _update_url_ok(model["updateURL"]), "manifest", "updateURL")
    enc = m.get("encryption")
    if "encryption" in m:
        _obj(enc, {"aead", "segmentSize", "recipients"})
        ok = enc["aead"] == "AES-256-GCM" and enc["segmentSize"] in POW2
        _need(ok and isinstance(enc["recipients"], list) and enc["recipients"], "manifest", "enc")
        for r in enc["recipients"]:
            is_hpke = isinstance(r, dict) and r.get("type") == "hpke"
            _obj(r, {"type", "keyid", "wrapped"} | ({"kem"} if is_hpke else set()))
            ok = r["type"] in ("hpke", "kek") and _is_str(r["keyid"], HEX64)
            ok &= _is_str(r["wrapped"]) and (not is_hpke or r["kem"] in KEMS)
            _need(ok, "manifest", "recipient")
        order = [(r["type"], r["keyid"]) for r in enc["recipients"]]  # §5.2.2
        ok = order == sorted(order) and len({k for _, k in order}) == len(order)
        _need(ok, "manifest", "recipients out of order or a key id twice")
    _need(isinstance(m.get("files"), list), "manifest", "files")
    for f in m["files"]:
        prefix = {"noncePrefix"} if enc is not None else set()
        _obj(f, {"path", "role", "size", "sha256", "stored"} | prefix, OPTIONAL)
        s = _obj(f["stored"], {"size", "crc32", "chunkSize", "chunks"})
        ok = _is_uint(s["size"]) and _is_uint(s["crc32"], NO_ZIP64) and s["chunkSize"] in POW2
        _need(ok and isinstance(s["chunks"], list), "manifest", "stored")
        count = max(1, -(-s["size"] // s["chunkSize"]))
        ok = len(s["chunks"]) == count and all(_is_str(c, HEX64) for c in s["chunks"])
        ok &= enc is None or _is_str(f["noncePrefix"], HEX14)
        ok &= enc is None or s["chunkSize"] == enc["segmentSize"]
        ok &= all(_is_str(f[k]) for k in ("path", "role", *({"runtime", "variant"} & set(f))))
        _need(ok and _is_uint(f["size"]) and _is_str(f["sha256"], HEX64), "manifest", "file")
    _need((p := [f["path"] for f in m["files"]]) == sorted(set(p)), "manifest", "files order")
    ok = isinstance(m.get("config"), dict) and isinstance(m.get("provenance"), dict)
    _need(ok and _is_uint(m.get("sourceDateEpoch")), "manifest", "config/provenance/epoch")
    _need(not fractions, "manifest", f"non-integer number {fractions[:1]}")
    try:
        _need(rfc8785.dumps(m) == data, "manifest", "not canonical (RFC 8785)")
    except ValueError:
        raise Reject("manifest", "outside the JCS domain") from None
    return m


def decryption_key(text: bytes) -> tuple[str, str, Any]:  # (recipient type, key id, key); §10
    if b"-----BEGIN" not in text:
        kek = bytes.fromhex(text.strip().decode())
        return "kek", hashlib.sha256(b"aoe-pack/v1 kek-id\x00" + kek).hexdigest(), kek
    # §10.2: the private key block, then maybe its PUBLIC KEY block (X-Wing files have one).
    der, *public = [base64.b64decode(b"".join(b.split())) for b in PEM.findall(text)]
    if len(der) == 54 and der.startswith(XWING_PKCS8):  # X-Wing: the 32-byte seed
        expanded = hashlib.shake_256(der[22:]).digest(96)
        mk = mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64])
        xk = x25519.X25519PrivateKey.from_private_bytes(expanded[64:])
        pk = mk.public_key().public_bytes_raw() + xk.public_key().public_bytes_raw()
        keyid = hashlib.sha256(XWING_SPKI + pk).hexdigest()
        # A device without ML-KEM takes the key id from the public block alone (§10.2).
        _need(public in ([], [XWING_SPKI + pk]), "key-format", "public block of another key")
        return "hpke", keyid, hpke.MLKEM768X25519PrivateKey(mk, xk)
    if der.startswith(X25519_PKCS8):
        key: Any = x25519.X25519PrivateKey.from_private_bytes(der[16:])
        spki = X25519_SPKI + key.public_key().public_bytes_raw()
    else:  # P-256 PKCS#8
        key = serialization.load_der_private_key(der, None)
        x962, point = serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        spki = P256_SPKI + key.public_key().public_bytes(x962, point)
    return "hpke", hashlib.sha256(spki).hexdigest(), key


def data_key(m: dict[str, Any], key_text: bytes) -> bytes:  # §7.4-§7.7
    kind, keyid, key = decryption_key(key_text)
    r = next((r for r in m["encryption"]["recipients"] if r["keyid"] == keyid), None)
    _need(r, "no-matching-recipient", f"no recipient {keyid}")
    tag, version = (m["model"][k].encode() for k in ("tag", "version"))
    info = b"aoe-pack/v1 data-key\x00" + tag + b"\x00" + version
    _need(r["type"] == kind and (kind == "kek" or r["kem"] in KEMS), "decryption", "key type")
    try:
        blob = base64.b64decode(r["wrapped"], validate=True)
        if kind == "kek":
            return AESGCM(key).decrypt(blob[:12], blob[12:], info)
        suite = hpke.Suite(KEMS[r["kem"]], hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
        return suite.decrypt(blob, key, info=info)
    except (binascii.Error, InvalidTag, ValueError, TypeError):
        raise Reject("decryption", "the data key does not open") from None


def verify(path: Path, trusted: list[bytes], threshold: int = 1, key: bytes | None = None) -> Any:
    """§8: verify ``path``; with ``key`` (PEM or KEK hex text) decrypt too. Returns the manifest."""
    keys = dict(public_key(pem) for pem in trusted)  # §8: the caller's threshold before the file
    _need(1 <= threshold <= len(keys), "usage", "threshold outside 1..trusted keys")
    d = Path(path).read_bytes()
    entries = read_entries(d)[1:]
    names, payload = [e[0] for e in entries], entries[:-2]
    _need(names[-2:] == ["aoe/manifest.json", "aoe/signatures.json"], "zip-structure", "order")
    _need(all(n.startswith("payload/") for n in names[:-2]), "zip-structure", "stray entry")
    _need(names[:-2] == sorted(names[:-2]), "zip-structure", "payload order")  # code points
    (_, m_at, m_size, m_crc), (_, s_at, s_size, s_crc) = entries[-2:]
    _need(m_size <= 16 << 20 and s_size <= 1 << 20, "limit-exceeded", "metadata too large")
    body, envelope = d[m_at : m_at + m_size], d[s_at : s_at + s_size]
    check_signatures(envelope, body, trusted, threshold)  # steps 4-5
    _need(zlib.crc32(body) == m_crc and zlib.crc32(envelope) == s_crc, "integrity", "crc32")
    m = parse_manifest(body)
    files, enc = m["files"], m.get("encryption")
    _need(["payload/" + f["path"] for f in files] == names[:-2], "manifest", "files != entries")
    for f, (name, _, size, crc) in zip(files, payload, strict=True):  # step 8
        seg = enc["segmentSize"] - 16 if enc else 0
        stored = f["size"] + 16 * max(1, -(-f["size"] // seg)) if enc else f["size"]
        _need(f["stored"]["size"] == stored == size, "manifest", f"{name}: stored size")
        _need(crc == f["stored"]["crc32"], "integrity", f"{name}: crc32")
    dkey = data_key(m, key) if key is not None and enc else None  # step 9
    for f, (name, at, size, _) in zip(files, payload, strict=True):  # step 10
        chunk, chunks = f["stored"]["chunkSize"], f["stored"]["chunks"]
        plain, n, prefix = hashlib.sha256(), 0, bytes.fromhex(f.get("noncePrefix", ""))
        for i, digest in enumerate(chunks):
            data = d[at + i * chunk : at + min((i + 1) * chunk, size)]
            _need(hashlib.sha256(data).hexdigest() == digest, "integrity", f"{name} chunk {i}")
            if dkey is not None:  # §7.2
                nonce = prefix + struct.pack(">IB", i, i + 1 == len(chunks))
                try:
                    data = AESGCM(dkey).decrypt(nonce, data, name.encode())
                except InvalidTag:
                    raise Reject("decryption", f"{name} segment {i}") from None
            plain.update(data)
            n += len(data)
        if dkey is not None or not enc:  # the plaintext is in hand: check it (§8, §9)
            ok = n == f["size"] and plain.hexdigest() == f["sha256"]
            _need(ok, "integrity", f"{name}: plaintext size or SHA-256")
    return m
