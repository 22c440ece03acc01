"""Tag document patches (docs/format.md §15.12): made, applied, and refused.

A patch is decoded into unverified envelope bytes; each way a hostile patch
can fail to decode is one test asserting the exact error. What a decoded
patch rebuilds is checked by the device as a downloaded document
(tests/client/test_indexed.py attacks that path end to end).
"""

from __future__ import annotations

import json

import pytest
from _factories import TAG, manifest, release

from aoe_pack._crypto.asymmetric import PrivateKey
from aoe_pack._jcs import canonical_json_integral as canonical_json
from aoe_pack.errors import TagPatchError
from aoe_pack.repository import envelope
from aoe_pack.repository._zstd import compress_from, zstd
from aoe_pack.repository.split import sign_tag_document, tag_document
from aoe_pack.repository.tag_patch import apply_patch, make_patch, patch_name


def _documents(signer: PrivateKey, releases: int = 30) -> tuple[bytes, bytes]:
    """The envelopes of one tag at version 2 (``releases``) and 3 (one release more)."""
    rel = [release(f"1.{i}.0") for i in range(releases + 1)]
    old = tag_document(manifest(*rel[:releases], version=2), TAG, 2)
    new = tag_document(manifest(*rel, version=3), TAG, 3, previous=2)
    return sign_tag_document(old, [signer]), sign_tag_document(new, [signer])


def _env(data: bytes) -> envelope.Envelope:
    return envelope.parse(data, envelope.TAG_TYPE, what="test")


@pytest.fixture
def docs(signer: PrivateKey) -> tuple[bytes, bytes, bytes]:
    """(old envelope, new envelope, the patch from old to new)."""
    old, new = _documents(signer)
    return old, new, make_patch(_env(old).payload, _env(new))


def test_a_patch_rebuilds_the_new_envelope_byte_for_byte(docs: tuple[bytes, bytes, bytes]) -> None:
    old, new, patch = docs
    assert apply_patch(_env(old).payload, patch, what="p") == new
    assert len(patch) < 600 < len(new) // 10


def test_patch_content_is_signatures_newline_payload(docs: tuple[bytes, bytes, bytes]) -> None:
    old, new, patch = docs
    content = zstd.ZstdDecompressor(
        zstd_dict=zstd.ZstdDict(_env(old).payload, is_raw=True).as_prefix
    ).decompress(patch)
    sigs, _, payload = content.partition(b"\n")
    assert json.loads(sigs) == json.loads(new)["signatures"]
    assert sigs == canonical_json(json.loads(new)["signatures"])
    assert payload == _env(new).payload


def test_patch_names_carry_tag_version_and_base() -> None:
    assert patch_name("m.x", 9, 7) == "tags/m.x/9.from-7.zst"


def test_patch_applied_to_another_base_is_refused(
    docs: tuple[bytes, bytes, bytes], signer: PrivateKey
) -> None:
    """A shorter base: the frame refers past its end, which zstd reports as corrupt.

    (A base as long as the real one may decode into other bytes instead: the
    device's checks of the rebuilt document refuse those, test_indexed.py.)
    """
    _, _, patch = docs
    other, _ = _documents(signer, releases=5)
    with pytest.raises(TagPatchError, match="p is not a zstd frame made from its base"):
        apply_patch(_env(other).payload, patch, what="p")


def test_truncated_patch_is_refused(docs: tuple[bytes, bytes, bytes]) -> None:
    old, _, patch = docs
    with pytest.raises(TagPatchError, match=r"p ends before its frame does \(truncated\)"):
        apply_patch(_env(old).payload, patch[:-20], what="p")


def test_bytes_after_the_frame_are_refused(docs: tuple[bytes, bytes, bytes]) -> None:
    old, _, patch = docs
    with pytest.raises(TagPatchError, match="p: 3 bytes follow its frame"):
        apply_patch(_env(old).payload, patch + b"abc", what="p")


def test_not_a_zstd_frame_is_refused(docs: tuple[bytes, bytes, bytes]) -> None:
    old, _, _ = docs
    with pytest.raises(TagPatchError, match="p is not a zstd frame made from its base"):
        apply_patch(_env(old).payload, b"{not zstd}", what="p")


def test_zstd_bomb_stops_one_byte_past_the_cap(docs: tuple[bytes, bytes, bytes]) -> None:
    old, _, _ = docs
    bomb = compress_from(_env(old).payload, b"\0" * (1 << 20), level=3)
    assert len(bomb) < 1000
    with pytest.raises(TagPatchError, match=r"p inflates to more than 65536 bytes \(the cap\)"):
        apply_patch(_env(old).payload, bomb, what="p", max_bytes=1 << 16)


def test_patch_without_a_newline_is_refused(docs: tuple[bytes, bytes, bytes]) -> None:
    old, _, _ = docs
    patch = compress_from(_env(old).payload, b'[{"keyid":"00"}]', level=3)
    with pytest.raises(TagPatchError, match="p holds no newline between signatures and payload"):
        apply_patch(_env(old).payload, patch, what="p")


@pytest.mark.parametrize(
    "sigs",
    [b'{"keyid":"x"}', b"[]", b"not json", b"[" * 5000, b'[{"keyid":"00","sig":"AA=="}]'],
    ids=["object", "empty", "not-json", "nested", "bad-keyid"],
)
def test_signatures_that_are_not_a_dsse_array_are_refused(
    docs: tuple[bytes, bytes, bytes], sigs: bytes
) -> None:
    old, new, _ = docs
    patch = compress_from(_env(old).payload, sigs + b"\n" + _env(new).payload, level=3)
    with pytest.raises(TagPatchError, match="p: its signatures are not a DSSE signatures array"):
        apply_patch(_env(old).payload, patch, what="p")


def test_a_rebuilt_envelope_over_the_cap_is_refused(docs: tuple[bytes, bytes, bytes]) -> None:
    old, new, patch = docs
    content_size = len(new) - 100  # the content fits; its base64 envelope does not
    with pytest.raises(TagPatchError, match=rf"rebuilds a document of more than {content_size}"):
        apply_patch(_env(old).payload, patch, what="p", max_bytes=content_size)
