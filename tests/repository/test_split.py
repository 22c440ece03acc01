"""The split repository's documents: derivation, and attacks on the checks a device makes.

``index.json`` and ``tags/<tag>/<N>.json`` (docs/format.md §15.12) are fed as
bytes to the pure checks of ``aoe_pack.repository.split``; every attack is one
test asserting the exact error.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json

import pytest
from _factories import EXPIRES, NOW, make_root, manifest, release

from aoe_pack._crypto.asymmetric import KeyKind, PrivateKey, generate
from aoe_pack.errors import (
    ExpiredMetadataError,
    MixAndMatchError,
    RepositoryFormatError,
    RollbackError,
    UntrustedMetadataError,
)
from aoe_pack.repository import envelope
from aoe_pack.repository.model import Manifest, ModelReleases
from aoe_pack.repository.root import Root
from aoe_pack.repository.split import (
    Index,
    TagDocument,
    changed_tags,
    next_index,
    sign_index,
    sign_tag_document,
    tag_document,
    verify_index,
    verify_tag_document,
)

M_SHA = "ab" * 32
"""The manifestSha256 of the indexes here (what manifest they came from is not checked)."""


@pytest.fixture
def root(signer: PrivateKey) -> Root:
    return make_root(1, [signer.public])


def _index(version: int = 5, tags: dict[str, int] | None = None, **kw: object) -> Index:
    return Index(
        version=version,
        expires=kw.pop("expires", EXPIRES),  # type: ignore[arg-type]
        manifest_sha256=M_SHA,
        tags={"a": 3, "b": version} if tags is None else tags,
    )


def _two_tags(version: int, a: str = "1.0.0", b: str = "2.0.0") -> Manifest:
    return Manifest(
        version=version,
        expires=EXPIRES,
        models={
            "a": ModelReleases(releases=(release(a),)),
            "b": ModelReleases(releases=(release(b),)),
        },
    )


# --- derivation ---------------------------------------------------------------------


def test_only_the_tag_whose_entry_changed_gets_a_new_document() -> None:
    old, new = _two_tags(4), _two_tags(5, b="2.1.0")
    assert changed_tags(old, new) == {"b"}
    index = next_index(
        new,
        manifest_sha256="cd" * 32,
        previous=Index(version=4, expires=EXPIRES, manifest_sha256=M_SHA, tags={"a": 2, "b": 4}),
        changed={"b"},
    )
    assert index.tags == {"a": 2, "b": 5}
    assert index.version == 5
    assert index.expires == new.expires
    assert index.manifest_sha256 == "cd" * 32


def test_a_new_tag_gets_a_document_and_a_removed_tag_leaves_the_index() -> None:
    old = manifest(release("1.0.0"), version=4, tag="gone")
    new = manifest(release("1.0.0"), version=5, tag="new")
    index = next_index(
        new,
        manifest_sha256=M_SHA,
        previous=Index(version=4, expires=EXPIRES, manifest_sha256=M_SHA, tags={"gone": 4}),
        changed=changed_tags(old, new),
    )
    assert index.tags == {"new": 5}


def test_without_a_previous_index_every_tag_gets_a_document() -> None:
    index = next_index(_two_tags(7), manifest_sha256=M_SHA, previous=None, changed=set())
    assert index.tags == {"a": 7, "b": 7}


def test_a_re_signed_manifest_changes_no_tag() -> None:
    old = _two_tags(4)
    new = dataclasses.replace(old, version=5, expires=EXPIRES + dt.timedelta(days=1))
    assert changed_tags(old, new) == set()


def test_a_tag_document_holds_the_entry_as_the_manifest_and_only_its_bundle_keys(
    signer: PrivateKey, signer2: PrivateKey
) -> None:
    signed = dataclasses.replace(release("1.0.0"), signers=(signer.public.key_id,))
    m = Manifest(
        version=3,
        expires=EXPIRES,
        models={"a": ModelReleases(releases=(signed,)), "b": ModelReleases()},
        bundle_keys={
            signer.public.key_id: signer.public.pem.decode(),
            signer2.public.key_id: signer2.public.pem.decode(),
        },
    )
    doc = tag_document(m, "a", 3)
    assert doc.model == m.models.to_dict()["a"]
    assert dict(doc.bundle_keys) == {signer.public.key_id: signer.public.pem.decode()}
    assert "bundleKeys" not in tag_document(m, "b", 3).to_dict()


def test_documents_are_canonical_and_deterministic(signer: PrivateKey) -> None:
    doc = tag_document(_two_tags(2), "a", 2)
    assert sign_tag_document(doc, [signer]) == sign_tag_document(doc, [signer])
    payload = envelope.parse(sign_index(_index(), [signer]), envelope.INDEX_TYPE, what="i").payload
    assert payload == (
        b'{"_type":"aoe.repository.index","expires":"2026-03-31T12:00:00Z","formatVersion":1,'
        b'"manifestSha256":"' + M_SHA.encode() + b'","tags":{"a":3,"b":5},"version":5}'
    )


# --- the index: attacks ---------------------------------------------------------------


def test_index_is_accepted_and_its_digest_kept(signer: PrivateKey, root: Root) -> None:
    got = verify_index(sign_index(_index(), [signer]), root, now=NOW)
    assert got.index.tags == {"a": 3, "b": 5}
    assert len(got.payload_sha256) == 64


def test_rollback_index_older_than_the_floor_is_rejected(signer: PrivateKey, root: Root) -> None:
    with pytest.raises(RollbackError, match=r"index\.json version 5 is older than version 6"):
        verify_index(sign_index(_index(5), [signer]), root, now=NOW, last_version=6)


def test_replayed_index_at_the_floor_version_with_other_content_is_rejected(
    signer: PrivateKey, root: Root
) -> None:
    first = verify_index(sign_index(_index(5), [signer]), root, now=NOW)
    other = sign_index(_index(5, {"a": 5, "b": 5}), [signer])
    with pytest.raises(RollbackError, match="same version, different content"):
        verify_index(other, root, now=NOW, last_version=5, last_sha256=first.payload_sha256)


def test_same_index_at_the_floor_version_is_accepted(signer: PrivateKey, root: Root) -> None:
    data = sign_index(_index(5), [signer])
    first = verify_index(data, root, now=NOW)
    verify_index(data, root, now=NOW, last_version=5, last_sha256=first.payload_sha256)


def test_expired_index_is_rejected(signer: PrivateKey, root: Root) -> None:
    data = sign_index(_index(expires=NOW), [signer])
    with pytest.raises(ExpiredMetadataError, match=r"index\.json version 5 expired at"):
        verify_index(data, root, now=NOW)


def test_index_signed_by_a_key_outside_the_root_is_rejected(root: Root) -> None:
    stranger = generate(KeyKind.ED25519)
    with pytest.raises(UntrustedMetadataError, match=r"index\.json has 0 of the 1 required"):
        verify_index(sign_index(_index(), [stranger]), root, now=NOW)


def test_index_below_the_threshold_is_rejected(signer: PrivateKey, signer2: PrivateKey) -> None:
    two = make_root(1, [signer.public, signer2.public], threshold=2)
    with pytest.raises(UntrustedMetadataError, match=r"index\.json has 1 of the 2 required"):
        verify_index(sign_index(_index(), [signer]), two, now=NOW)


def test_manifest_served_as_index_is_rejected_by_its_payload_type(
    signer: PrivateKey, root: Root
) -> None:
    data = envelope.sign(envelope.MANIFEST_TYPE, _two_tags(5).to_dict(), [signer]).to_bytes()
    with pytest.raises(RepositoryFormatError, match="payloadType"):
        verify_index(data, root, now=NOW)


def test_index_naming_a_tag_version_after_its_own_is_rejected(
    signer: PrivateKey, root: Root
) -> None:
    data = sign_index(_index(5, {"a": 6}), [signer])
    with pytest.raises(RepositoryFormatError, match="after the index's own version 5"):
        verify_index(data, root, now=NOW)


def _index_payload(**members: object) -> bytes:
    """A canonical index payload: a valid one at version 1 with ``members`` changed (a
    value of None drops the member)."""
    from aoe_pack._jcs import canonical_json

    d: dict[str, object] = {
        "_type": "aoe.repository.index",
        "expires": "2030-01-01T00:00:00Z",
        "formatVersion": 1,
        "manifestSha256": M_SHA,
        "tags": {},
        "version": 1,
    }
    d.update(members)
    return canonical_json({k: v for k, v in d.items() if v is not None})


def test_the_payload_the_hostile_cases_change_is_accepted(signer: PrivateKey, root: Root) -> None:
    from aoe_pack import dsse

    payload = _index_payload()
    sigs = dsse.sign(envelope.INDEX_TYPE, payload, [signer])
    data = envelope.Envelope(envelope.INDEX_TYPE, payload, tuple(sigs)).to_bytes()
    assert verify_index(data, root, now=NOW).index.manifest_sha256 == M_SHA


@pytest.mark.parametrize(
    "payload",
    [
        b"[]",
        _index_payload(formatVersion=2),
        _index_payload(tags={"../x": 1}),
        _index_payload(tags={"a": "1"}),
        _index_payload(expires="2030-02-30T00:00:00Z"),
        _index_payload().replace(b'"tags":{}', b'"tags":{"a":1.5}'),
        _index_payload(manifestSha256=None),
        _index_payload(manifestSha256=M_SHA.upper()),
        _index_payload(manifestSha256=M_SHA[:-2]),
        b'{"a":' * 2000 + b"1" + b"}" * 2000,
    ],
    ids=[
        "array",
        "format-2",
        "tag-path",
        "string-version",
        "no-such-date",
        "float",
        "no-manifest-sha256",
        "uppercase-manifest-sha256",
        "short-manifest-sha256",
        "deep",
    ],
)
def test_hostile_index_payloads_are_refused_as_repository_format(
    signer: PrivateKey, root: Root, payload: bytes
) -> None:
    from aoe_pack import dsse

    sigs = dsse.sign(envelope.INDEX_TYPE, payload, [signer])
    data = envelope.Envelope(envelope.INDEX_TYPE, payload, tuple(sigs)).to_bytes()
    with pytest.raises(RepositoryFormatError):
        verify_index(data, root, now=NOW)


# --- tag documents: attacks -----------------------------------------------------------


def _doc(signer: PrivateKey, tag: str = "a", version: int = 3) -> bytes:
    return sign_tag_document(tag_document(_two_tags(version), tag, version), [signer])


def test_tag_document_is_accepted(signer: PrivateKey, root: Root) -> None:
    doc = verify_tag_document(_doc(signer), root, tag="a", version=3)
    assert doc.as_manifest(_index(5)).models["a"].releases[0].version == "1.0.0"


def test_mix_and_match_document_of_another_tag_is_rejected(signer: PrivateKey, root: Root) -> None:
    with pytest.raises(MixAndMatchError, match=r"tags/a/3\.json holds the document of tag b"):
        verify_tag_document(_doc(signer, tag="b"), root, tag="a", version=3)


def test_mix_and_match_document_of_another_version_is_rejected(
    signer: PrivateKey, root: Root
) -> None:
    with pytest.raises(
        MixAndMatchError, match=r"tags/a/5\.json holds the document of tag a at version 3"
    ):
        verify_tag_document(_doc(signer, version=3), root, tag="a", version=5)


def test_tag_document_below_the_threshold_is_rejected(
    signer: PrivateKey, signer2: PrivateKey
) -> None:
    two = make_root(1, [signer.public, signer2.public], threshold=2)
    with pytest.raises(UntrustedMetadataError, match=r"tags/a/3\.json has 1 of the 2 required"):
        verify_tag_document(_doc(signer), two, tag="a", version=3)


def test_tag_document_with_a_changed_payload_is_rejected(signer: PrivateKey, root: Root) -> None:
    env = json.loads(_doc(signer))
    payload = base64.b64decode(env["payload"]).replace(b'"1.0.0"', b'"1.0.1"')
    env["payload"] = base64.b64encode(payload).decode()
    data = json.dumps(env, separators=(",", ":"), sort_keys=True).encode()
    with pytest.raises(UntrustedMetadataError, match=r"tags/a/3\.json has 0 of the 1"):
        verify_tag_document(data, root, tag="a", version=3)


def test_index_served_as_tag_document_is_rejected_by_its_payload_type(
    signer: PrivateKey, root: Root
) -> None:
    with pytest.raises(RepositoryFormatError, match="payloadType"):
        verify_tag_document(sign_index(_index(3), [signer]), root, tag="a", version=3)


def test_tag_document_with_a_broken_entry_is_refused_when_the_entry_is_used(
    signer: PrivateKey, root: Root
) -> None:
    bad = TagDocument(tag="a", version=3, model={"releases": [{"version": "x"}]})
    doc = verify_tag_document(sign_tag_document(bad, [signer]), root, tag="a", version=3)
    with pytest.raises(RepositoryFormatError, match="manifest: models/a"):
        doc.as_manifest(_index(5)).models["a"]
