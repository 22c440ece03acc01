"""Attacks on the repository metadata, one test each, as a client meets them.

Every test feeds bytes to the pure checks of ``aoe_pack.repository.trust`` (the
same calls a client makes after fetching) and asserts the exact error class
and the words of its message.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable

import pytest
from _factories import (
    NOW,
    TAG,
    digest_of,
    in_order,
    make_root,
    manifest,
    release,
    sign_manifest,
    sign_root,
)

from aoe_pack._crypto import sign as _sign
from aoe_pack._crypto.asymmetric import KeyKind, PrivateKey, generate
from aoe_pack.dsse import Signature
from aoe_pack.errors import (
    BundleMismatchError,
    ExpiredMetadataError,
    RepositoryError,
    RepositoryFormatError,
    RollbackError,
    RootRotationError,
    UntrustedMetadataError,
)
from aoe_pack.repository import envelope
from aoe_pack.repository.limits import DEFAULT_LIMITS
from aoe_pack.repository.model import check_schema
from aoe_pack.repository.root import (
    Root,
    bundle_key,
    parse_root,
    verify_self_signed,
    verify_successor,
)
from aoe_pack.repository.trust import (
    VerifiedManifest,
    check_bundle_matches,
    update_root,
    verify_manifest,
)

STEPS = DEFAULT_LIMITS.max_root_steps


@pytest.fixture(scope="module")
def k() -> list[PrivateKey]:
    """Five more Ed25519 keys (A..E), made for this module."""
    return [generate(KeyKind.ED25519) for _ in range(5)]


def _verify(data: bytes, root: Root, **kw: object) -> VerifiedManifest:
    """verify_manifest, then read every tag (each is checked when first used)."""
    vm = verify_manifest(data, root, now=NOW, **kw)  # type: ignore[arg-type]
    for tag in vm.manifest.models:
        vm.manifest.models[tag]
    return vm


def _envelope(data: bytes) -> envelope.Envelope:
    doc = json.loads(data)
    return envelope.Envelope(
        doc["payloadType"],
        base64.b64decode(doc["payload"]),
        tuple(Signature(s["keyid"], base64.b64decode(s["sig"])) for s in doc["signatures"]),
    )


def _rewrap(
    data: bytes,
    *,
    payload: bytes | None = None,
    payload_type: str | None = None,
    signatures: tuple[Signature, ...] | None = None,
) -> bytes:
    """The envelope ``data`` with one part replaced, in canonical form."""
    env = _envelope(data)
    return envelope.Envelope(
        payload_type or env.payload_type,
        env.payload if payload is None else payload,
        env.signatures if signatures is None else signatures,
    ).to_bytes()


def _signed(signer: PrivateKey, version: int = 1, **kw: object) -> bytes:
    return sign_manifest(manifest(release("1.0.0"), version=version, **kw), [signer])  # type: ignore[arg-type]


# --- rollback and freeze ------------------------------------------------------------------


def test_rollback_manifest_is_rejected(signer: PrivateKey) -> None:
    root = make_root(1, [signer.public])
    old = _signed(signer, version=4)
    with pytest.raises(
        RollbackError,
        match=r"^manifest version 4 is older than version 5, which this client already accepted$",
    ) as e:
        verify_manifest(old, root, now=NOW, last_version=5)
    assert e.value.hint is not None
    assert "keep the current model" in e.value.hint
    assert e.value.code == "rollback"


def test_same_manifest_version_is_not_a_rollback(signer: PrivateKey) -> None:
    root = make_root(1, [signer.public])
    vm = verify_manifest(_signed(signer, version=4), root, now=NOW, last_version=4)
    assert vm.manifest.version == 4
    vm = verify_manifest(_signed(signer, version=5), root, now=NOW, last_version=4)
    assert vm.manifest.version == 5
    assert vm.signed_by == frozenset({signer.key_id})


def test_expired_manifest_is_rejected_freeze(signer: PrivateKey) -> None:
    root = make_root(1, [signer.public])
    stale = _signed(signer, version=3, expires=NOW - dt.timedelta(days=1))
    with pytest.raises(
        ExpiredMetadataError, match=r"^manifest version 3 expired at 2026-02-28T12:00:00Z$"
    ) as e:
        verify_manifest(stale, root, now=NOW)
    assert e.value.hint is not None
    assert "re-signed" in e.value.hint


def test_manifest_expiring_exactly_now_is_expired(signer: PrivateKey) -> None:
    root = make_root(1, [signer.public])
    with pytest.raises(ExpiredMetadataError, match="expired at 2026-03-01T12:00:00Z"):
        verify_manifest(_signed(signer, expires=NOW), root, now=NOW)
    one_second_left = _signed(signer, expires=NOW + dt.timedelta(seconds=1))
    assert verify_manifest(one_second_left, root, now=NOW).manifest.version == 1


def test_expiry_check_can_be_skipped_explicitly(signer: PrivateKey) -> None:
    root = make_root(1, [signer.public])
    stale = _signed(signer, expires=NOW - dt.timedelta(days=400))
    assert verify_manifest(stale, root, now=NOW, check_expiry=False).manifest.version == 1


def test_checks_run_in_order_signatures_then_rollback_then_expiry(
    signer: PrivateKey, signer2: PrivateKey
) -> None:
    root = make_root(1, [signer.public])
    old_and_stale = _signed(signer, version=2, expires=NOW - dt.timedelta(days=1))
    with pytest.raises(RollbackError, match="version 2 is older than version 3"):
        verify_manifest(old_and_stale, root, now=NOW, last_version=3)
    forged = _signed(signer2, version=2, expires=NOW - dt.timedelta(days=1))
    with pytest.raises(UntrustedMetadataError, match="has 0 of the 1 required"):
        verify_manifest(forged, root, now=NOW, last_version=3)


# --- bundles ------------------------------------------------------------------------------


def test_mix_and_match_bundle_of_other_release_is_rejected() -> None:
    wanted = release("1.0.0", size=4096)
    other = release("1.1.0", size=5000)  # a genuine bundle, of another release
    with pytest.raises(
        BundleMismatchError, match=r"^bundle for 1\.0\.0 is 5000 bytes; the manifest says 4096$"
    ):
        check_bundle_matches(wanted, size=other.size, sha256=other.sha256)
    same_size = release("0.9.0", size=4096)
    with pytest.raises(BundleMismatchError, match=r"substituted or mixed-up bundle\)$"):
        check_bundle_matches(wanted, size=same_size.size, sha256=same_size.sha256)


def test_substituted_bundle_is_rejected() -> None:
    genuine = b"\x00aoe genuine model bytes" * 100
    evil = b"\x00aoe evil!! model bytes" + b"\x00" * (len(genuine) - 23)
    assert len(evil) == len(genuine)
    sha = hashlib.sha256(genuine).hexdigest()
    wanted = release("1.0.0", size=len(genuine), sha256=sha)
    evil_sha = hashlib.sha256(evil).hexdigest()
    with pytest.raises(
        BundleMismatchError,
        match=rf"^bundle for 1\.0\.0 has SHA-256 {evil_sha[:16]}…; the manifest says "
        rf"{sha[:16]}… \(substituted or mixed-up bundle\)$",
    ) as e:
        check_bundle_matches(wanted, size=len(evil), sha256=evil_sha)
    assert e.value.code == "bundle-mismatch"


def test_bundle_matching_its_release_is_accepted() -> None:
    r = release("1.0.0", size=4096)
    check_bundle_matches(r, size=4096, sha256=digest_of("1.0.0"))  # no exception


def test_bundle_digest_is_compared_exactly() -> None:
    r = release("1.0.0")
    with pytest.raises(BundleMismatchError, match="substituted or mixed-up"):
        check_bundle_matches(r, size=r.size, sha256=r.sha256.upper())


# --- root rotation ---------------------------------------------------------------------


def test_root_rotation_with_too_few_old_signatures_is_rejected(k: list[PrivateKey]) -> None:
    a, b, c = k[:3]
    trusted = make_root(1, [a.public, b.public], threshold=2)
    new = sign_root(make_root(2, [c.public]), [a, c])  # a stolen old key and the thief's
    with pytest.raises(
        RootRotationError,
        match=r"^root version 2 is signed by 1 of the 2 required key\(s\) of root version 1$",
    ) as e:
        verify_successor(trusted, new)
    assert e.value.hint is not None
    assert "threshold of the old root's keys" in e.value.hint
    assert isinstance(e.value, UntrustedMetadataError)


def test_root_rotation_signed_only_by_new_keys_is_rejected(k: list[PrivateKey]) -> None:
    a, x = k[0], k[4]
    trusted = make_root(1, [a.public])
    with pytest.raises(RootRotationError, match="signed by 0 of the 1 required key"):
        verify_successor(trusted, sign_root(make_root(2, [x.public]), [x]))


def test_root_rotation_with_too_few_new_signatures_is_rejected(k: list[PrivateKey]) -> None:
    a, b, c = k[:3]
    trusted = make_root(1, [a.public])
    new = sign_root(make_root(2, [b.public, c.public], threshold=2), [a, b])
    with pytest.raises(
        RootRotationError,
        match=r"^root version 2 is signed by 1 of its own 2 required key\(s\)$",
    ) as e:
        verify_successor(trusted, new)
    assert e.value.hint is not None
    assert "threshold of its own keys" in e.value.hint


def test_skipped_root_version_breaks_the_chain(k: list[PrivateKey]) -> None:
    a = k[0]
    trusted = make_root(1, [a.public])
    v3 = sign_root(make_root(3, [a.public]), [a])  # validly signed, but version 2 is skipped
    with pytest.raises(
        RootRotationError, match=r"^root chain broken: expected version 2, found 3$"
    ):
        update_root(trusted, {2: v3}.get)


def test_replayed_root_version_breaks_the_chain(k: list[PrivateKey]) -> None:
    a = k[0]
    trusted = make_root(1, [a.public])
    same = sign_root(make_root(1, [a.public]), [a])
    with pytest.raises(RootRotationError, match="expected version 2, found 1"):
        update_root(trusted, {2: same}.get)


def test_root_chain_is_walked_and_rotated_out_keys_lose_trust(k: list[PrivateKey]) -> None:
    a, b, c = k[:3]
    trusted = make_root(1, [a.public])
    chain = {
        2: sign_root(make_root(2, [b.public]), [a, b]),
        3: sign_root(make_root(3, [c.public]), [b, c]),
    }
    newest, accepted = update_root(trusted, chain.get)
    assert newest.version == 3
    assert set(newest.keys) == {c.key_id}
    assert accepted == [chain[2], chain[3]]
    assert update_root(newest, chain.get) == (newest, [])  # nothing newer: no change
    with pytest.raises(
        UntrustedMetadataError,
        match=r"^manifest\.json has 0 of the 1 required signature\(s\) from root version 3's keys$",
    ):
        verify_manifest(_signed(a), newest, now=NOW)
    assert verify_manifest(_signed(c), newest, now=NOW).signed_by == frozenset({c.key_id})


def test_endless_root_chain_is_capped_at_max_root_steps(k: list[PrivateKey]) -> None:
    a = k[0]
    asked: list[int] = []

    def endless(n: int) -> bytes:
        asked.append(n)
        return sign_root(make_root(n, [a.public]), [a])

    with pytest.raises(
        RepositoryError,
        match=rf"^the root chain grows by more than {STEPS} versions",
    ):
        update_root(make_root(1, [a.public]), endless)
    assert asked == list(range(2, 3 + STEPS))  # the last fetch finds one too many


def test_root_chain_of_exactly_max_root_steps_new_versions_is_accepted(
    k: list[PrivateKey],
) -> None:
    # The cap is "more than STEPS": exactly that many new roots pass.
    a = k[0]
    last = 1 + STEPS
    chain = {n: sign_root(make_root(n, [a.public]), [a]) for n in range(2, last + 1)}
    newest, accepted = update_root(make_root(1, [a.public]), chain.get)
    assert newest.version == last
    assert len(accepted) == STEPS


def test_root_with_a_key_listed_under_another_id_is_rejected(k: list[PrivateKey]) -> None:
    a, b = k[:2]
    doc = make_root(1, [a.public]).to_dict()
    doc["keys"] = {b.key_id: doc["keys"][a.key_id]}  # a's key claims to be b
    data = envelope.sign(envelope.ROOT_TYPE, doc, [a]).to_bytes()
    with pytest.raises(RepositoryFormatError, match="does not match its id or algorithm"):
        parse_root(data)


def test_root_with_threshold_above_its_keys_is_rejected(k: list[PrivateKey]) -> None:
    a = k[0]
    doc = make_root(1, [a.public]).to_dict()
    doc["threshold"] = 2
    data = envelope.sign(envelope.ROOT_TYPE, doc, [a]).to_bytes()
    with pytest.raises(RepositoryFormatError, match=r"^root: threshold 2 exceeds its 1 key\(s\)$"):
        parse_root(data)


def test_trusted_root_without_a_threshold_of_its_own_signatures_is_rejected(
    k: list[PrivateKey],
) -> None:
    a, b = k[:2]
    data = sign_root(make_root(1, [a.public, b.public], threshold=2), [a])
    with pytest.raises(
        UntrustedMetadataError,
        match=r"^trusted root version 1 has 1 of its own 2 required signature\(s\)$",
    ):
        verify_self_signed(data)
    assert verify_self_signed(sign_root(make_root(1, [a.public, b.public], 2), [a, b])).version == 1


# --- signatures -------------------------------------------------------------------------


def test_manifest_signed_by_a_key_not_in_the_root_is_rejected(
    signer: PrivateKey, signer2: PrivateKey
) -> None:
    root = make_root(1, [signer.public])
    with pytest.raises(
        UntrustedMetadataError,
        match=r"^manifest\.json has 0 of the 1 required signature\(s\) from root version 1's keys$",
    ) as e:
        verify_manifest(_signed(signer2), root, now=NOW)
    assert e.value.hint is not None
    assert "signed with a key the root does not list" in e.value.hint


def test_manifest_with_one_flipped_payload_byte_fails_its_signature(signer: PrivateKey) -> None:
    root = make_root(1, [signer.public])
    data = _signed(signer, version=1)
    payload = _envelope(data).payload
    assert payload.endswith(b'"version":1}')
    tampered = payload[:-2] + b"9}"  # version 1 -> 9: still canonical JSON, one byte changed
    with pytest.raises(UntrustedMetadataError, match="has 0 of the 1 required signature"):
        verify_manifest(_rewrap(data, payload=tampered), root, now=NOW)


def test_manifest_with_any_flipped_payload_byte_is_refused(signer: PrivateKey) -> None:
    root = make_root(1, [signer.public])
    data = _signed(signer)
    payload = _envelope(data).payload
    for i in range(len(payload)):
        tampered = bytearray(payload)
        tampered[i] ^= 0x01
        with pytest.raises(RepositoryError) as e:  # bad signature, or no longer canonical JSON
            verify_manifest(_rewrap(data, payload=bytes(tampered)), root, now=NOW)
        assert isinstance(e.value, UntrustedMetadataError | RepositoryFormatError), i


def test_manifest_with_a_flipped_signature_byte_is_rejected(
    signer: PrivateKey, signer2: PrivateKey
) -> None:
    for key in (signer, signer2):  # Ed25519 and P-256
        root = make_root(1, [key.public])
        data = _signed(key)
        (sig,) = _envelope(data).signatures
        bad = Signature(sig.keyid, sig.sig[:-1] + bytes([sig.sig[-1] ^ 0x80]))
        with pytest.raises(UntrustedMetadataError, match="has 0 of the 1 required signature"):
            verify_manifest(_rewrap(data, signatures=(bad,)), root, now=NOW)


def test_signature_copied_under_another_key_id_does_not_count(k: list[PrivateKey]) -> None:
    a, b = k[:2]
    root = make_root(1, [a.public, b.public], threshold=2)
    data = sign_manifest(manifest(release("1.0.0")), [a])
    (sig_a,) = _envelope(data).signatures
    fake_b = Signature(b.key_id, sig_a.sig)
    sigs = tuple(sorted((sig_a, fake_b), key=lambda s: s.keyid))
    with pytest.raises(UntrustedMetadataError, match="has 1 of the 2 required signature"):
        verify_manifest(_rewrap(data, signatures=sigs), root, now=NOW)


def test_threshold_2_root_does_not_count_a_duplicated_signature_twice(
    k: list[PrivateKey],
) -> None:
    a, b = k[:2]
    root = make_root(1, [a.public, b.public], threshold=2)
    data = sign_manifest(manifest(release("1.0.0")), [a])
    (sig_a,) = _envelope(data).signatures
    twice = _rewrap(data, signatures=(sig_a, sig_a))
    with pytest.raises(
        UntrustedMetadataError,
        match=rf"^manifest\.json: key {a.key_id[:16]}… signed more than once; "
        r"each key counts once$",
    ):
        verify_manifest(twice, root, now=NOW)
    # and below the parser, a set of key ids: the same key never counts twice
    env = envelope.Envelope(envelope.MANIFEST_TYPE, _envelope(data).payload, (sig_a, sig_a))
    assert env.valid_keyids(dict(root.keys)) == {a.key_id}


def test_threshold_2_root_rotation_does_not_count_a_duplicated_signature_twice(
    k: list[PrivateKey],
) -> None:
    a, b, c = k[:3]
    trusted = make_root(1, [a.public, b.public], threshold=2)
    data = sign_root(make_root(2, [c.public]), [a, c])
    sigs = _envelope(data).signatures
    sig_a = next(s for s in sigs if s.keyid == a.key_id)
    padded = tuple(sorted((*sigs, sig_a), key=lambda s: s.keyid))
    with pytest.raises(UntrustedMetadataError, match="signed more than once; each key counts once"):
        verify_successor(trusted, _rewrap(data, signatures=padded))


def test_threshold_of_two_different_algorithms_is_accepted(
    signer: PrivateKey, signer2: PrivateKey
) -> None:
    root = make_root(1, [signer.public, signer2.public], threshold=2)
    data = sign_manifest(manifest(release("1.0.0")), [signer, signer2])
    vm = _verify(data, root)
    assert vm.signed_by == frozenset({signer.key_id, signer2.key_id})
    assert vm.envelope_bytes == data
    with pytest.raises(UntrustedMetadataError, match="has 1 of the 2 required"):
        verify_manifest(_signed(signer2), root, now=NOW)


# --- envelope form --------------------------------------------------------------------------


def test_non_canonical_envelope_is_rejected(signer: PrivateKey) -> None:
    root = make_root(1, [signer.public])
    data = _signed(signer)
    for variant in (
        json.dumps(json.loads(data), indent=1).encode(),  # whitespace
        data + b"\n",  # a trailing newline
        json.dumps(json.loads(data), sort_keys=False).encode(),  # spaces after separators
        json.dumps(dict(reversed(json.loads(data).items())), separators=(",", ":")).encode(),
    ):
        with pytest.raises(
            RepositoryFormatError, match=r"^manifest\.json is not in canonical form \(RFC 8785\)$"
        ):
            verify_manifest(variant, root, now=NOW)


def test_unsorted_signatures_are_rejected(signer: PrivateKey, signer2: PrivateKey) -> None:
    root = make_root(1, [signer.public, signer2.public], threshold=2)
    data = sign_manifest(manifest(release("1.0.0")), [signer, signer2])
    doc = json.loads(data)
    doc["signatures"].reverse()
    with pytest.raises(UntrustedMetadataError, match="signatures must be sorted by key id"):
        verify_manifest(json.dumps(doc, separators=(",", ":")).encode(), root, now=NOW)


def test_non_canonical_payload_is_rejected_even_when_signed(signer: PrivateKey) -> None:
    root = make_root(1, [signer.public])
    payload = json.dumps(manifest(release("1.0.0")).to_dict(), indent=2).encode()
    sig = _sign.sign(signer, _sign.pae(envelope.MANIFEST_TYPE, payload))
    data = envelope.Envelope(
        envelope.MANIFEST_TYPE, payload, (Signature(signer.key_id, sig),)
    ).to_bytes()
    with pytest.raises(
        RepositoryFormatError, match=r"^manifest\.json: the signed payload is not canonical JSON$"
    ):
        verify_manifest(data, root, now=NOW)


def test_root_envelope_served_as_manifest_has_wrong_payload_type(k: list[PrivateKey]) -> None:
    a = k[0]
    root = make_root(1, [a.public])
    with pytest.raises(
        RepositoryFormatError,
        match=rf'^manifest\.json has payloadType "{re.escape(envelope.ROOT_TYPE)}", '
        rf'expected "{re.escape(envelope.MANIFEST_TYPE)}"$',
    ):
        verify_manifest(sign_root(root, [a]), root, now=NOW)
    with pytest.raises(RepositoryFormatError, match="has payloadType"):
        verify_successor(root, _signed(a))


def test_payload_type_is_bound_into_the_signature(signer: PrivateKey) -> None:
    root = make_root(1, [signer.public])
    doc = manifest(release("1.0.0")).to_dict()
    as_other_type = envelope.sign("application/vnd.other+json", doc, [signer]).to_bytes()
    relabelled = _rewrap(as_other_type, payload_type=envelope.MANIFEST_TYPE)
    with pytest.raises(UntrustedMetadataError, match="has 0 of the 1 required signature"):
        verify_manifest(relabelled, root, now=NOW)


@pytest.mark.parametrize(
    ("mutate", "error", "fragment"),
    [
        (lambda d: {**d, "extra": 1}, RepositoryFormatError, "must be a DSSE envelope holding"),
        (lambda d: {**d, "signatures": []}, UntrustedMetadataError, "holds no signatures"),
        (lambda d: {**d, "payload": d["payload"][:-1] + "*"}, RepositoryFormatError, "base64"),
        (lambda d: {**d, "payload": 7}, RepositoryFormatError, "payload must be a base64 string"),
        (
            lambda d: {**d, "signatures": d["signatures"] * 33},
            UntrustedMetadataError,
            "33 signatures exceed the limit of 32",
        ),
        (
            lambda d: {**d, "signatures": [{"keyid": "AB" * 32, "sig": "AA=="}]},
            UntrustedMetadataError,
            "is not 64 lowercase hex digits",
        ),
    ],
)
def test_malformed_envelope_is_rejected(
    signer: PrivateKey,
    mutate: Callable[[dict[str, object]], dict[str, object]],
    error: type[Exception],
    fragment: str,
) -> None:
    root = make_root(1, [signer.public])
    doc = json.loads(_signed(signer))
    data = json.dumps(mutate(doc), separators=(",", ":"), sort_keys=True).encode()
    with pytest.raises(error, match=fragment):
        verify_manifest(data, root, now=NOW)


@pytest.mark.parametrize("data", [b"", b"{", b"\xff\xfe", b"[]", b"null"])
def test_envelope_that_is_not_a_json_object_is_rejected(signer: PrivateKey, data: bytes) -> None:
    root = make_root(1, [signer.public])
    with pytest.raises(RepositoryFormatError, match=r"^manifest\.json (is not valid JSON|must be)"):
        verify_manifest(data, root, now=NOW)


# --- signed, but wrong inside --------------------------------------------------------------


def test_manifest_whose_version_code_does_not_match_its_version_is_rejected(
    signer: PrivateKey,
) -> None:
    root = make_root(1, [signer.public])
    data = sign_manifest(manifest(release("1.0.10", version_code=1010)), [signer])
    with pytest.raises(
        RepositoryFormatError,
        match=rf"^manifest: {TAG} 1\.0\.10: versionCode 1010 should be 10010999$",
    ):
        _verify(data, root)


def test_manifest_with_unsorted_releases_is_rejected(signer: PrivateKey) -> None:
    root = make_root(1, [signer.public])
    unsorted = in_order(manifest(release("1.0.10"), release("1.0.9")), "1.0.10", "1.0.9")
    data = sign_manifest(unsorted, [signer])
    with pytest.raises(
        RepositoryFormatError,
        match=rf"^manifest: {TAG}: releases must be sorted by semver precedence without "
        r"duplicates \(1\.0\.10 then 1\.0\.9\)$",
    ):
        _verify(data, root)


def test_manifest_with_two_releases_of_one_precedence_is_rejected(signer: PrivateKey) -> None:
    root = make_root(1, [signer.public])
    twins = manifest(
        release("2.0.0+build.1", sha256=digest_of("a")),
        release("2.0.0+build.2", sha256=digest_of("b")),
    )
    with pytest.raises(RepositoryFormatError, match=r"without duplicates \(2\.0\.0\+build\.1 then"):
        _verify(sign_manifest(twins, [signer]), root)


def test_manifest_breaking_the_schema_is_rejected_after_its_signature(signer: PrivateKey) -> None:
    root = make_root(1, [signer.public])
    doc = manifest(release("1.0.0")).to_dict()
    doc["formatVersion"] = 2
    with pytest.raises(RepositoryFormatError, match=r"^manifest: formatVersion: "):
        _verify(sign_manifest(doc, [signer]), root)


def test_payload_with_a_lone_surrogate_is_a_format_error(signer: PrivateKey) -> None:
    # "\ud800" is valid JSON text but no UTF-8 encoder takes it: there is no
    # canonical form to compare with, and the reader must say so, not crash.
    payload = b'{"_type":"aoe.repository.manifest","x":"\\ud800"}'
    doc = {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": envelope.MANIFEST_TYPE,
        "signatures": [{"keyid": signer.key_id, "sig": base64.b64encode(b"x" * 64).decode()}],
    }
    data = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    with pytest.raises(RepositoryFormatError, match="canonical"):
        envelope.parse(data, envelope.MANIFEST_TYPE, what="manifest.json")


def test_schema_patterns_match_the_whole_string() -> None:
    # Python's "$" matches before a final newline; ECMA-262's (and Java's, Swift's) does not.
    with pytest.raises(RepositoryFormatError, match="does not match"):
        check_schema("tag_x\n", "manifest.schema.json", what="tag", part="tag")


def test_bundle_key_that_is_not_its_key_id_is_refused(
    signer: PrivateKey, signer2: PrivateKey
) -> None:
    # bundleKeys maps key ids to PEMs; an entry whose PEM is another key (or
    # not a key, or an encryption key) must not become a trusted bundle signer.
    with pytest.raises(RepositoryFormatError, match="is not that signing key"):
        bundle_key(signer.key_id, signer2.public.pem.decode())
    with pytest.raises(RepositoryFormatError, match=r"^manifest: "):
        bundle_key(signer.key_id, "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    x = generate(KeyKind.X25519)
    with pytest.raises(RepositoryFormatError, match="is not that signing key"):
        bundle_key(x.key_id, x.public.pem.decode())
    assert bundle_key(signer.key_id, signer.public.pem.decode()).key_id == signer.key_id
