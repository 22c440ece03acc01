"""Rules of the signed documents that an insider (a trusted signer) could bend.

Each bundle here is re-signed by the trusted key, so signature checks pass
and the specific rule under test must be what refuses it.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from pathlib import Path

import pytest
from _tamper import decryption_key, resign, take_apart

from aoe_pack._crypto import asymmetric as _keys
from aoe_pack._crypto.asymmetric import PrivateKey
from aoe_pack._jcs import canonical_json
from aoe_pack.bundle import build_bundle, inspect_bundle, unpack_bundle, verify_bundle
from aoe_pack.bundle.build import EncryptionSpec
from aoe_pack.bundle.format import Limits
from aoe_pack.bundle.signatures import encode_envelope
from aoe_pack.dsse import Signature
from aoe_pack.errors import (
    DecryptionError,
    KeyFormatError,
    LimitExceededError,
    ManifestError,
    OutputError,
    SignatureError,
)
from aoe_pack.keys.load import load_decryption_key


def _resigned(bundle: Path, signer: PrivateKey, edit, *, raw: bytes | None = None) -> Path:
    parts = take_apart(bundle)
    manifest = parts.manifest()
    edit(manifest)
    bundle.write_bytes(resign(raw if raw is not None else manifest, parts.payloads, [signer]))
    return bundle


def test_unsorted_signature_envelope(built_bundle, signer: PrivateKey, signer2: PrivateKey) -> None:
    path = built_bundle(signers=[signer, signer2])
    parts = take_apart(path)
    doc = json.loads(parts.signatures_bytes)
    sigs = [Signature(s["keyid"], base64.b64decode(s["sig"])) for s in doc["signatures"]]
    envelope = encode_envelope(list(reversed(sigs)))
    path.write_bytes(resign(parts.manifest_bytes, parts.payloads, [], signatures=envelope))
    with pytest.raises(SignatureError, match="signatures must be sorted by key id"):
        verify_bundle(path, trusted_keys=[signer.public, signer2.public], threshold=2)


def test_signature_keyid_not_hex(built_bundle, signer: PrivateKey) -> None:
    path = built_bundle()
    parts = take_apart(path)
    envelope = parts.signatures_bytes.replace(
        signer.key_id.encode(), signer.key_id.upper().encode()
    )
    path.write_bytes(resign(parts.manifest_bytes, parts.payloads, [], signatures=envelope))
    with pytest.raises(SignatureError, match="not 64 lowercase hex digits"):
        verify_bundle(path, trusted_keys=[signer.public])


@pytest.mark.parametrize(
    ("raw_value", "match"),
    [
        (b"NaN", "holds NaN"),
        (b"9007199254740993", r"must be an integer in \[0, 9007199254740991\]"),
        (b'"\\ud800"', "JSON cannot carry exactly"),
    ],
    ids=["nan", "huge-integer", "lone-surrogate"],
)
def test_manifest_outside_canonical_json(
    built_bundle, signer: PrivateKey, raw_value: bytes, match: str
) -> None:
    path = built_bundle()
    parts = take_apart(path)
    field = b'"sourceDateEpoch":' if raw_value[0:1] != b'"' else b'"provenance":{'
    value = parts.manifest_bytes
    if field == b'"sourceDateEpoch":':
        start = value.index(field) + len(field)
        end = value.index(b",", start) if b"," in value[start:] else value.index(b"}", start)
        value = value[:start] + raw_value + value[end:]
    else:
        value = value.replace(field, field + b'"x":' + raw_value + b",")
    path.write_bytes(resign(value, parts.payloads, [signer]))
    with pytest.raises(ManifestError, match=match):
        verify_bundle(path, trusted_keys=[signer.public])


@pytest.mark.parametrize("number", [b"0.5", b"1.0", b"1e3", b"-0.0", b"1E-7"])
@pytest.mark.parametrize("where", ["config", "provenance"])
def test_manifest_number_with_a_fraction_or_exponent(
    built_bundle, signer: PrivateKey, number: bytes, where: str
) -> None:
    """§5.1: integers only, so no reader needs an ECMAScript float formatter."""
    path = built_bundle()
    parts = take_apart(path)
    field = f'"{where}":{{'.encode()
    raw = parts.manifest_bytes.replace(field, field + b'"a":' + number + b",", 1)
    path.write_bytes(resign(raw, parts.payloads, [signer]))
    with pytest.raises(
        ManifestError,
        match=rf"holds the number {re.escape(number.decode())}; a manifest holds integers only",
    ):
        verify_bundle(path, trusted_keys=[signer.public])


def test_float_in_a_field_is_a_field_error(built_bundle, signer: PrivateKey) -> None:
    path = built_bundle()
    _resigned(path, signer, lambda m: m.update(sourceDateEpoch=1.5))
    with pytest.raises(ManifestError, match=r"sourceDateEpoch must be an integer"):
        verify_bundle(path, trusted_keys=[signer.public])


def test_writer_keeps_non_integers_of_the_config_out_of_the_manifest(
    make_config, signer: PrivateKey, tmp_path: Path
) -> None:
    config = make_config()
    canonical = {
        **config.canonical,
        "inputs": [{"name": "x", "range": [-1.0, 0.5]}],
        "targets": [{"runtime": "tflite", "rtol": 0.001, "atol": 1e-7, "big": 1e300}],
    }
    out = tmp_path / "floats.aoe"
    build_bundle(
        dataclasses.replace(config, canonical=canonical),
        out,
        signing_keys=[signer],
        encryption=EncryptionSpec(),
    )
    written = verify_bundle(out, trusted_keys=[signer.public]).manifest.config
    assert written["inputs"] == [{"name": "x", "range": [-1, "0.5"]}]
    assert written["targets"] == [
        {"runtime": "tflite", "rtol": "0.001", "atol": "1e-7", "big": "1e+300"}
    ]


def test_manifest_role_must_not_be_empty(built_bundle, signer: PrivateKey) -> None:
    path = built_bundle()
    _resigned(path, signer, lambda m: m["files"][0].update(role=""))
    with pytest.raises(ManifestError, match=r"manifest\.files\[0\]\.role must be a non-empty"):
        verify_bundle(path, trusted_keys=[signer.public])


def test_manifest_role_of_a_newer_writer_is_accepted(built_bundle, signer: PrivateKey) -> None:
    path = built_bundle()
    _resigned(path, signer, lambda m: m["files"][0].update(role="tokenizer"))
    assert verify_bundle(path, trusted_keys=[signer.public]).manifest.files[0].role == "tokenizer"


@pytest.mark.parametrize("bad", ["../labels.txt", "a//labels.txt", "/labels.txt", "a\\b.txt"])
def test_manifest_path_breaking_the_name_rules_is_a_mismatch(
    built_bundle, signer: PrivateKey, bad: str
) -> None:
    """§5.2.1: no entry can carry such a name, so the file list disagrees (``manifest``)."""
    path = built_bundle()

    def rename(m):
        next(f for f in m["files"] if f["path"] == "labels.txt")["path"] = bad
        m["files"].sort(key=lambda f: f["path"])

    _resigned(path, signer, rename)
    with pytest.raises(ManifestError, match=r"file list disagrees with the bundle's entries"):
        verify_bundle(path, trusted_keys=[signer.public])


@pytest.mark.parametrize("where", ["sourceDateEpoch", "size"])
def test_manifest_uint_above_2_53_minus_1(built_bundle, signer: PrivateKey, where: str) -> None:
    """§5.2: a "uint" stops at 2^53 - 1, the bound of canonical JSON (§5.1)."""
    path = built_bundle()
    parts = take_apart(path)
    m = parts.manifest()
    sentinel = 4_503_599_627_370_495  # JCS cannot write 2^53 itself: patch the bytes
    (m if where == "sourceDateEpoch" else m["files"][0])[where] = sentinel
    raw = canonical_json(m).replace(str(sentinel).encode(), str(2**53).encode())
    path.write_bytes(resign(raw, parts.payloads, [signer]))
    with pytest.raises(
        ManifestError, match=rf"{where} must be an integer in \[0, 9007199254740991\]"
    ):
        verify_bundle(path, trusted_keys=[signer.public])


def test_unknown_nested_fields_are_kept(built_bundle, signer: PrivateKey) -> None:
    """A newer writer's nested additions survive: verify accepts and round-trips them."""
    path = built_bundle()

    def add(m):
        m["model"]["futureField"] = 1
        m["files"][0]["stored"]["futureHash"] = "abc"
        m["files"][0]["futureRole"] = True

    _resigned(path, signer, add)
    result = verify_bundle(path, trusted_keys=[signer.public])
    assert result.manifest.model.extra == {"futureField": 1}
    assert result.manifest.files[0].stored.extra == {"futureHash": "abc"}
    assert result.manifest.canonical_bytes() == take_apart(path).manifest_bytes


def test_recipient_kem_mismatch(built_bundle, signer: PrivateKey, x25519_key: PrivateKey) -> None:
    path = built_bundle(recipients=[x25519_key.public])

    def lie(m):
        m["encryption"]["recipients"][0]["kem"] = "DHKEM(P-256, HKDF-SHA256)"

    _resigned(path, signer, lie)
    with pytest.raises(
        DecryptionError, match="uses DHKEM\\(P-256, HKDF-SHA256\\), but the key is X25519"
    ):
        verify_bundle(path, trusted_keys=[signer.public], decryption_key=decryption_key(x25519_key))


def test_recipient_unknown_kem(built_bundle, signer: PrivateKey, x25519_key: PrivateKey) -> None:
    path = built_bundle(recipients=[x25519_key.public])
    _resigned(path, signer, lambda m: m["encryption"]["recipients"][0].update(kem="RSA-KEM"))
    with pytest.raises(ManifestError, match='kem is "RSA-KEM"; expected one of'):
        verify_bundle(path, trusted_keys=[signer.public])


def test_duplicate_recipient(built_bundle, signer: PrivateKey, x25519_key: PrivateKey) -> None:
    path = built_bundle(recipients=[x25519_key.public])

    def dup(m):
        m["encryption"]["recipients"].append(dict(m["encryption"]["recipients"][0]))

    _resigned(path, signer, dup)
    with pytest.raises(ManifestError, match="sorted by type and key id, without duplicates"):
        verify_bundle(path, trusted_keys=[signer.public])


def test_unsorted_recipients(
    built_bundle, signer: PrivateKey, x25519_key: PrivateKey, p256_kem_key: PrivateKey, kek: bytes
) -> None:
    path = built_bundle(recipients=[x25519_key.public, p256_kem_key.public], keks=[kek])
    _resigned(path, signer, lambda m: m["encryption"]["recipients"].reverse())
    with pytest.raises(ManifestError, match="sorted by type and key id, without duplicates"):
        verify_bundle(path, trusted_keys=[signer.public])


def test_recipient_key_id_listed_under_two_types(
    built_bundle, signer: PrivateKey, kek: bytes
) -> None:
    """(hpke, K) and (kek, K) are distinct pairs, but a reader picks by key id: one reading only."""
    path = built_bundle(keks=[kek])

    def twice(m):
        (kek_entry,) = m["encryption"]["recipients"]
        hpke_entry = dict(kek_entry, type="hpke", kem="DHKEM(X25519, HKDF-SHA256)")
        m["encryption"]["recipients"] = [hpke_entry, kek_entry]

    _resigned(path, signer, twice)
    with pytest.raises(ManifestError, match=r"each key id at most once"):
        verify_bundle(path, trusted_keys=[signer.public])


def test_recipient_type_that_does_not_fit_the_key(
    built_bundle, signer: PrivateKey, kek: bytes
) -> None:
    """A signer lists the KEK's id as an HPKE recipient: the key id matches, the kind cannot."""
    path = built_bundle(keks=[kek])

    def as_hpke(m):
        m["encryption"]["recipients"][0].update(type="hpke", kem="DHKEM(X25519, HKDF-SHA256)")

    _resigned(path, signer, as_hpke)
    verify_bundle(path, trusted_keys=[signer.public])  # nothing is wrong without a key
    with pytest.raises(DecryptionError, match=r"has type hpke$") as e:
        verify_bundle(path, trusted_keys=[signer.public], decryption_key=decryption_key(kek))
    assert e.value.code == "decryption"


@pytest.mark.parametrize("tag", ["bad\x00tag", "-starts-with-dash"])
def test_manifest_tag_must_be_a_tag(built_bundle, signer: PrivateKey, tag: str) -> None:
    """A NUL in the tag would make the HPKE info string ambiguous."""
    path = built_bundle()
    _resigned(path, signer, lambda m: m["model"].update(tag=tag))
    with pytest.raises(ManifestError, match=r"manifest\.model\.tag must be a tag"):
        verify_bundle(path, trusted_keys=[signer.public])


def test_manifest_version_must_be_semver(built_bundle, signer: PrivateKey) -> None:
    path = built_bundle()
    _resigned(path, signer, lambda m: m["model"].update(version="1.0"))
    with pytest.raises(ManifestError, match=r"manifest\.model\.version must be a semantic version"):
        verify_bundle(path, trusted_keys=[signer.public])


def test_half_pasted_kek_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "app.key"
    key.write_text("ab" * 16 + "\n")  # 32 hex characters: half a key
    with pytest.raises(KeyFormatError, match=r"64 hex characters \(found 32 bytes\)"):
        load_decryption_key(str(key))


def test_kek_with_spaces_between_its_digits_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "app.key"
    key.write_text("ab" * 15 + " ab " + "cd" * 15 + "\n")  # 64 characters, 31 bytes of hex
    with pytest.raises(KeyFormatError, match=r"64 hex characters \(found 64 bytes\)"):
        load_decryption_key(str(key))


def test_build_refuses_more_entries_than_verifiers_accept(
    make_config, signer: PrivateKey, tmp_path: Path
) -> None:
    config = make_config({"model.tflite": b"m", "a.txt": b"a", "b.txt": b"b"})
    with pytest.raises(LimitExceededError, match="3 files exceed the 2 a bundle may hold"):
        build_bundle(
            config,
            tmp_path / "x.aoe",
            signing_keys=[signer],
            encryption=EncryptionSpec(),
            limits=Limits(max_entries=4),
        )
    assert not (tmp_path / "x.aoe").exists()


def test_p256_kem_key_file_decrypts(tmp_path: Path) -> None:
    """PEM does not say whether a P-256 key signs or decrypts; as a decryption key it is HPKE."""
    key = _keys.generate(_keys.KeyKind.P256_KEM)
    path = tmp_path / "k.key"
    path.write_bytes(_keys.private_pem(key, None))
    loaded = load_decryption_key(str(path))
    assert loaded.private is not None
    assert loaded.private.kind is _keys.KeyKind.P256_KEM


@pytest.mark.parametrize(
    ("envelope", "match"),
    [
        (b"[" * 5000 + b"]" * 5000, "is not valid JSON"),
        (b'{"payloadType":' + b"1" * 5000 + b',"signatures":[]}', "is not valid JSON"),
    ],
    ids=["deep-nesting", "huge-integer"],
)
def test_hostile_envelope_is_a_signature_error(
    built_bundle, signer: PrivateKey, envelope: bytes, match: str
) -> None:
    path = built_bundle()
    parts = take_apart(path)
    path.write_bytes(resign(parts.manifest_bytes, parts.payloads, [], signatures=envelope))
    with pytest.raises(SignatureError, match=match):
        verify_bundle(path, trusted_keys=[signer.public])
    with pytest.raises(SignatureError, match=match):
        inspect_bundle(path)


def test_non_ascii_signature_is_a_signature_error(built_bundle, signer: PrivateKey) -> None:
    path = built_bundle()
    parts = take_apart(path)
    doc = json.loads(parts.signatures_bytes)
    doc["signatures"][0]["sig"] = "é" + doc["signatures"][0]["sig"][1:]
    path.write_bytes(
        resign(parts.manifest_bytes, parts.payloads, [], signatures=canonical_json(doc))
    )
    with pytest.raises(SignatureError, match="is not valid base64"):
        verify_bundle(path, trusted_keys=[signer.public])


def test_deeply_nested_manifest_is_a_manifest_error_in_inspect(
    built_bundle, signer: PrivateKey
) -> None:
    path = built_bundle()
    parts = take_apart(path)
    hostile = b"[" * 5000 + b"]" * 5000
    path.write_bytes(resign(hostile, parts.payloads, [signer]))
    with pytest.raises(ManifestError, match="is not valid JSON"):
        inspect_bundle(path)


def test_unpack_into_a_path_under_a_file_is_an_output_error(
    built_bundle, signer: PrivateKey, tmp_path: Path
) -> None:
    path = built_bundle()
    (tmp_path / "afile").write_bytes(b"x")
    with pytest.raises(OutputError, match="cannot create the output folder"):
        unpack_bundle(path, tmp_path / "afile" / "sub", trusted_keys=[signer.public])


URL = "https://models.example.com/repo/"


def test_build_signs_the_configs_update_url_into_model(built_bundle, signer: PrivateKey) -> None:
    path = built_bundle(update_url=URL)
    manifest = verify_bundle(path, trusted_keys=[signer.public]).manifest
    assert manifest.model.update_url == URL
    assert manifest.model.to_dict()["updateURL"] == URL
    assert "updateURL" not in manifest.model.extra  # a known member, not an unknown one


def test_bundle_without_update_url_has_no_member(built_bundle, signer: PrivateKey) -> None:
    path = built_bundle()
    manifest = verify_bundle(path, trusted_keys=[signer.public]).manifest
    assert manifest.model.update_url is None
    assert "updateURL" not in take_apart(path).manifest()["model"]


def test_update_url_is_covered_by_the_signature(built_bundle, signer: PrivateKey) -> None:
    path = built_bundle(update_url=URL)
    parts = take_apart(path)
    moved = parts.manifest_bytes.replace(b"models.example.com", b"models.example.org")
    path.write_bytes(resign(moved, parts.payloads, [], signatures=parts.signatures_bytes))
    with pytest.raises(SignatureError):
        verify_bundle(path, trusted_keys=[signer.public])


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("http://models.example.com/", "uses http:// to a host that is not loopback"),
        ("https://user:pw@models.example.com/", "carries user information"),
        ("https://models.example.com/?q=1", "has a query"),
        ("ftp://models.example.com/", "uses ftp://"),
        ("https://models.example.com/\u202e", "contains the character U\\+202E"),
        ("https://x.example/" + "a" * 1024, "is 1042 characters long; at most 1024"),
    ],
    ids=["cleartext-http", "userinfo", "query", "ftp", "bidi-control", "too-long"],
)
def test_manifest_update_url_must_be_a_repository_address(
    built_bundle, signer: PrivateKey, url: str, match: str
) -> None:
    path = built_bundle()
    _resigned(path, signer, lambda m: m["model"].update(updateURL=url))
    with pytest.raises(ManifestError, match=r"manifest\.model\.updateURL " + match):
        verify_bundle(path, trusted_keys=[signer.public])


@pytest.mark.parametrize("value", [7, "", None, ["https://x.example/"]])
def test_manifest_update_url_must_be_a_string(built_bundle, signer: PrivateKey, value) -> None:
    path = built_bundle()
    _resigned(path, signer, lambda m: m["model"].update(updateURL=value))
    with pytest.raises(ManifestError, match=r"manifest\.model\.updateURL must be a non-empty"):
        verify_bundle(path, trusted_keys=[signer.public])
