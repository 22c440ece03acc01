"""Co-signing a built bundle (``add_signatures``): the result, and one test per refusal.

A co-signed bundle must be byte for byte the bundle a build with every key
at once makes, and verify with the higher threshold. Every refusal names its
cause with the exact error and leaves the file as it was, with no journal
beside it.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from _skips import needs_symlinks
from _tamper import assemble, flip_file, locate, resign, take_apart

from aoe_pack import dsse
from aoe_pack._crypto import asymmetric as keys
from aoe_pack._crypto.asymmetric import PrivateKey, PublicKey
from aoe_pack.bundle import (
    EncryptionSpec,
    Limits,
    _tailjournal,
    add_signatures,
    build_bundle,
    cosign,
    inspect_bundle,
    signatures,
    verify_bundle,
)
from aoe_pack.bundle._zipwrite import replace_last_data
from aoe_pack.bundle.format import MANIFEST_ENTRY, PAYLOAD_TYPE, SIGNATURES_ENTRY
from aoe_pack.bundle.signatures import sign_manifest
from aoe_pack.bundle.verify import open_bundle
from aoe_pack.dsse import Signature
from aoe_pack.errors import (
    AlreadySignedError,
    AoePackError,
    BundleNotFoundError,
    IntegrityError,
    KeyTypeError,
    LimitExceededError,
    ManifestMismatchError,
    OutputError,
    ThresholdError,
    UsageError,
    ZipStructureError,
)

MODEL = "payload/model.tflite"


@pytest.fixture(scope="module")
def reviewer() -> PrivateKey:
    """The second approver (Ed25519: deterministic, like the build's signers)."""
    return keys.generate(keys.KeyKind.ED25519)


@pytest.fixture
def plain(built_bundle: Any) -> Path:
    """A small unencrypted bundle signed by ``signer``."""
    return built_bundle()


@contextmanager
def refused(path: Path, cls: type[AoePackError], match: str) -> Iterator[None]:
    """The exact error (not a subclass), and ``path`` exactly as it was, with no journal."""
    before = path.read_bytes() if path.is_file() else None
    with pytest.raises(cls, match=match) as info:
        yield
    assert info.type is cls, f"expected {cls.__name__}, got {info.type.__name__}: {info.value}"
    if before is not None:
        assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.glob(".*.cosign")) == []


# --- the result -------------------------------------------------------------------------


def test_cosigned_bundle_equals_one_built_with_both_keys(
    make_config: Any, signer: PrivateKey, signer2: PrivateKey, tmp_path: Path
) -> None:
    """P-256 signs with RFC 6979 nonces, so the two ways give the same bytes."""
    config = make_config({"model.tflite": os.urandom(3 << 20), "labels.txt": b"a\nb\n"})
    once, twice = tmp_path / "once.aoe", tmp_path / "twice.aoe"
    build_bundle(config, once, signing_keys=[signer, signer2], encryption=EncryptionSpec())
    build_bundle(config, twice, signing_keys=[signer], encryption=EncryptionSpec())
    result = add_signatures(twice, [signer2], trusted_keys=[signer.public])
    assert twice.read_bytes() == once.read_bytes()
    assert result.added == (signer2.public.key_id,)
    assert result.signers == tuple(sorted([signer.public.key_id, signer2.public.key_id]))
    assert result.trusted_signers == (signer.public.key_id,)
    assert result.size == once.stat().st_size
    assert result.bytes_checked == (3 << 20) + 4
    assert result.notes == ()


def test_cosigned_encrypted_bundle_changes_only_its_envelope(
    built_bundle: Any, signer: PrivateKey, reviewer: PrivateKey, x25519_key: PrivateKey
) -> None:
    """No decryption key is needed; the digests cover the ciphertext."""
    path = built_bundle(recipients=[x25519_key.public])
    parts = take_apart(path)
    add_signatures(path, [reviewer])
    envelope = sign_manifest(parts.manifest_bytes, [signer, reviewer])
    entries = [*parts.payloads.items(), (MANIFEST_ENTRY, parts.manifest_bytes)]
    expected = assemble([*entries, (SIGNATURES_ENTRY, envelope)], date_time=parts.date_time)
    assert path.read_bytes() == expected


def test_verify_reaches_threshold_two_only_after_cosigning(
    plain: Path, signer: PrivateKey, reviewer: PrivateKey
) -> None:
    trusted = [signer.public, reviewer.public]
    with pytest.raises(ThresholdError, match=r"1 valid signature of 2 required"):
        verify_bundle(plain, trusted_keys=trusted, threshold=2)
    add_signatures(plain, [reviewer])
    result = verify_bundle(plain, trusted_keys=trusted, threshold=2)
    assert sorted(s.keyid for s in result.signatures if s.valid) == sorted(
        k.key_id for k in trusted
    )


def test_two_keys_cosign_at_once_and_a_third_later(
    plain: Path, signer: PrivateKey, signer2: PrivateKey, reviewer: PrivateKey
) -> None:
    third = keys.generate(keys.KeyKind.ED25519)
    add_signatures(plain, [reviewer, signer2])
    result = add_signatures(
        plain, [third], trusted_keys=[signer.public, reviewer.public], threshold=2
    )
    everyone = [signer, signer2, reviewer, third]
    assert result.signers == tuple(sorted(k.public.key_id for k in everyone))
    verify_bundle(plain, trusted_keys=[k.public for k in everyone], threshold=4)


def test_inspect_lists_every_signer_after_cosigning(
    plain: Path, signer: PrivateKey, reviewer: PrivateKey
) -> None:
    add_signatures(plain, [reviewer])
    assert inspect_bundle(plain).signer_keyids == tuple(
        sorted([signer.public.key_id, reviewer.public.key_id])
    )


# --- the manifest the approver reviewed ----------------------------------------------------


def test_bundle_other_than_the_one_reviewed_is_refused(
    plain: Path, built_bundle: Any, reviewer: PrivateKey
) -> None:
    """The reviewer approved another build (the digest `inspect` showed them): no signature."""
    reviewed = inspect_bundle(built_bundle({"model.tflite": b"the reviewed model"}))
    actual = hashlib.sha256(take_apart(plain).manifest_bytes).hexdigest()
    with refused(
        plain,
        ManifestMismatchError,
        rf"^{re.escape(str(plain))}'s manifest has SHA-256 {actual}, not "
        rf"{reviewed.manifest_sha256} as expected: it is not the bundle that was reviewed; "
        "nothing was signed$",
    ):
        add_signatures(plain, [reviewer], expect_manifest_sha256=reviewed.manifest_sha256)


def test_bundle_reviewed_is_signed_and_its_digest_shown_everywhere(
    plain: Path, signer: PrivateKey, reviewer: PrivateKey
) -> None:
    digest = hashlib.sha256(take_apart(plain).manifest_bytes).hexdigest()
    assert inspect_bundle(plain).manifest_sha256 == digest
    assert verify_bundle(plain, trusted_keys=[signer.public]).to_dict()["manifestSha256"] == digest
    result = add_signatures(plain, [reviewer], expect_manifest_sha256=digest.upper())
    assert result.to_dict()["manifestSha256"] == digest
    assert result.added == (reviewer.public.key_id,)


# --- what is checked before a key adds its name --------------------------------------------


def test_flipped_payload_byte_is_refused(plain: Path, reviewer: PrivateKey) -> None:
    flip_file(plain, locate(plain.read_bytes())[MODEL].data.middle)
    match = r"payload/model\.tflite: chunk 0 \(bytes 0-\d+\) does not match its signed SHA-256"
    with refused(plain, IntegrityError, match):
        add_signatures(plain, [reviewer])


def test_flipped_ciphertext_byte_is_refused_without_a_decryption_key(
    built_bundle: Any, reviewer: PrivateKey, x25519_key: PrivateKey
) -> None:
    path = built_bundle(recipients=[x25519_key.public])
    flip_file(path, locate(path.read_bytes())[MODEL].data.middle)
    with refused(path, IntegrityError, r"payload/model\.tflite: chunk 0 .* signed SHA-256"):
        add_signatures(path, [reviewer])


def test_signed_manifest_that_does_not_describe_its_payload_is_refused(
    plain: Path, signer: PrivateKey, reviewer: PrivateKey
) -> None:
    """The first signer's signature is valid, but the payload is not what it signed."""
    parts = take_apart(plain)
    payloads = dict(parts.payloads)
    payloads[MODEL] = payloads[MODEL][:-1] + bytes([payloads[MODEL][-1] ^ 1])
    plain.write_bytes(resign(parts.manifest(), payloads, [signer], restamp_files=False))
    with refused(plain, IntegrityError, r"CRC-32 in the ZIP headers differs from the manifest"):
        add_signatures(plain, [reviewer], trusted_keys=[signer.public])


def test_untrusted_first_signature_is_refused(plain: Path, reviewer: PrivateKey) -> None:
    stranger = keys.generate(keys.KeyKind.ED25519)
    with refused(plain, ThresholdError, r"0 valid signatures of 1 required; .*key not trusted"):
        add_signatures(plain, [reviewer], trusted_keys=[stranger.public])


def test_threshold_without_trusted_keys_is_a_usage_error(plain: Path, reviewer: PrivateKey) -> None:
    with refused(plain, UsageError, r"--threshold counts the signatures of --trusted-key keys"):
        add_signatures(plain, [reviewer], threshold=2)


@pytest.mark.parametrize(
    ("cut", "match"),
    [
        (lambda r: r[MODEL].data.middle, r"no end of central directory"),
        (lambda r: r[SIGNATURES_ENTRY].data.middle, r"no end of central directory"),
        (lambda r: r.size - 1, r"no end of central directory"),
    ],
    ids=["in-payload", "in-envelope", "last-byte"],
)
def test_truncated_bundle_is_refused(
    plain: Path, reviewer: PrivateKey, cut: Callable[..., int], match: str
) -> None:
    data = plain.read_bytes()
    plain.write_bytes(data[: cut(locate(data))])
    with refused(plain, ZipStructureError, match):
        add_signatures(plain, [reviewer])


def test_trailing_junk_after_the_end_record_is_refused(plain: Path, reviewer: PrivateKey) -> None:
    plain.write_bytes(plain.read_bytes() + b"junk" * 10)
    match = r"40 bytes of trailing data after the end of central directory record"
    with refused(plain, ZipStructureError, match):
        add_signatures(plain, [reviewer])


# --- the signatures entry ----------------------------------------------------------------


def test_envelope_already_at_the_cap_is_refused(built_bundle: Any, reviewer: PrivateKey) -> None:
    """Verifiers refuse more than 64 signatures: a 65th would make an unverifiable bundle."""
    many = [keys.generate(keys.KeyKind.ED25519) for _ in range(64)]
    path = built_bundle(signers=many)
    with refused(path, LimitExceededError, r"carries 64 signatures; 1 more would exceed .* 64"):
        add_signatures(path, [reviewer])


def test_envelope_growing_past_its_byte_limit_is_refused(plain: Path, reviewer: PrivateKey) -> None:
    size = locate(plain.read_bytes())[SIGNATURES_ENTRY].data
    limits = Limits(max_signatures_bytes=len(size) + 10)
    match = rf"aoe/signatures\.json would be \d+ bytes; verifiers refuse more than {len(size) + 10}"
    with refused(plain, LimitExceededError, match):
        add_signatures(plain, [reviewer], limits=limits)


def test_key_that_signed_already_is_refused(plain: Path, signer: PrivateKey) -> None:
    match = rf"key {signer.public.key_id[:16]}… has signed .* already; each key counts once"
    with refused(plain, AlreadySignedError, match):
        add_signatures(plain, [signer])


def test_same_key_twice_is_refused(plain: Path, reviewer: PrivateKey) -> None:
    with refused(plain, UsageError, r"the same signing key was given twice"):
        add_signatures(plain, [reviewer, reviewer])


def test_encryption_key_as_signer_is_refused(plain: Path, x25519_key: PrivateKey) -> None:
    with refused(plain, KeyTypeError, r"a X25519 key was given to sign; it only encrypts"):
        add_signatures(plain, [x25519_key])


def test_no_key_is_refused(plain: Path) -> None:
    with refused(plain, UsageError, r"at least one --sign-key is required"):
        add_signatures(plain, [])


# --- the file ----------------------------------------------------------------------------


@needs_symlinks
def test_bundle_path_that_is_a_symlink_is_refused(
    plain: Path, reviewer: PrivateKey, tmp_path: Path
) -> None:
    link = tmp_path / "link.aoe"
    link.symlink_to(plain)
    with refused(plain, OutputError, r"link\.aoe is a link; sign rewrites a bundle in place"):
        add_signatures(link, [reviewer])


def test_bundle_with_another_name_is_refused(
    plain: Path, reviewer: PrivateKey, tmp_path: Path
) -> None:
    os.link(plain, tmp_path / "published.aoe")
    with refused(plain, OutputError, r"has 2 names \(hard links\); rewriting it in place"):
        add_signatures(plain, [reviewer])


def test_missing_bundle_and_folder_are_not_found(tmp_path: Path, reviewer: PrivateKey) -> None:
    missing = tmp_path / "x.aoe"
    with refused(missing, BundleNotFoundError, re.escape(f"{missing} does not exist")):
        add_signatures(missing, [reviewer])
    nowhere = tmp_path / "nowhere" / "x.aoe"
    with refused(missing, BundleNotFoundError, re.escape(f"{nowhere} does not exist")):
        add_signatures(nowhere, [reviewer])
    assert not (tmp_path / "nowhere").exists()  # no folder made on the way
    with refused(tmp_path / "x.aoe", BundleNotFoundError, r"is a folder, not a bundle"):
        add_signatures(tmp_path, [reviewer])


def _after_the_checks(monkeypatch: pytest.MonkeyPatch, meddle: Callable[[], None]) -> None:
    """Run ``meddle`` once a payload is checked, before anything is written."""
    real = cosign.stream_payload
    done: list[bool] = []

    def checked_then_meddled(*args: Any, **kwargs: Any) -> None:
        real(*args, **kwargs)
        if not done:
            done.append(True)
            meddle()

    monkeypatch.setattr(cosign, "stream_payload", checked_then_meddled)


def test_bundle_appended_to_between_check_and_rewrite_is_refused(
    plain: Path, reviewer: PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer that ignores the lock is caught when the checked bytes are read again."""
    before = plain.read_bytes()

    def append() -> None:
        with plain.open("ab") as f:
            f.write(b"junk")

    _after_the_checks(monkeypatch, append)
    with pytest.raises(OutputError, match=r"changed while it was being checked .* nothing was"):
        add_signatures(plain, [reviewer])
    assert plain.read_bytes() == before + b"junk"
    assert list(plain.parent.glob(".*.cosign")) == []


def test_bundle_tail_changed_between_check_and_rewrite_is_refused(
    plain: Path, reviewer: PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same size, one byte of the central directory different."""
    at = locate(plain.read_bytes()).central_directory.middle
    _after_the_checks(monkeypatch, lambda: flip_file(plain, at, 0x20))
    with pytest.raises(OutputError, match=r"changed while it was being checked"):
        add_signatures(plain, [reviewer])
    assert list(plain.parent.glob(".*.cosign")) == []


# An OS limit, not a missing dependency: Windows cannot rename over an open file,
# so the swap this test plays cannot happen there (the lock refuses it first).
@pytest.mark.skipif(
    sys.platform == "win32", reason="Windows renames nothing onto a file that is open"
)
def test_bundle_replaced_between_check_and_rewrite_is_refused(
    plain: Path, built_bundle: Any, reviewer: PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rebuild renamed over the path: its bytes are not those checked."""
    other = built_bundle({"model.tflite": b"another model"})
    rebuilt = other.read_bytes()
    _after_the_checks(monkeypatch, lambda: other.replace(plain))
    with pytest.raises(OutputError, match=r"changed while it was being checked"):
        add_signatures(plain, [reviewer])
    assert plain.read_bytes() == rebuilt
    assert list(plain.parent.glob(".*.cosign")) == []


# --- the journal, in this process (tests/bundle/test_cosign_crash.py kills real ones) ------


def _interrupted_before(
    step: str, bundle: Path, key: PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A signing of ``bundle`` by ``key`` that stops just before ``_tailjournal.<step>``."""

    class StoppedError(Exception):
        pass

    def stop(*args: Any, **kwargs: Any) -> None:
        raise StoppedError

    with monkeypatch.context() as patch:
        patch.setattr(_tailjournal, step, stop)
        with pytest.raises(StoppedError):
            add_signatures(bundle, [key])


def test_journal_replays_over_a_tail_of_old_and_new_bytes_in_any_order(
    plain: Path, built_bundle: Any, signer: PrivateKey, reviewer: PrivateKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """After a power cut the disk may hold any of the blocks written, not just a prefix."""
    old = plain.read_bytes()
    new = built_bundle(signers=[signer, reviewer]).read_bytes()
    _interrupted_before("apply", plain, reviewer, monkeypatch)
    pairs = enumerate(zip(old, new, strict=False))  # the new file is the longer
    mixed = bytes(n if i % 2 else o for i, (o, n) in pairs) + new[len(old) :]
    plain.write_bytes(mixed)
    assert plain.read_bytes() not in (old, new)
    result = add_signatures(plain, [reviewer])
    assert plain.read_bytes() == new
    assert result.notes == (f"finished an interrupted signing of {plain} first",)


def test_journal_that_no_longer_fits_is_dropped_and_the_file_left_alone(
    plain: Path, reviewer: PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    _interrupted_before("finish", plain, reviewer, monkeypatch)
    plain.write_bytes(plain.read_bytes() + b"junk")  # neither the old nor the new tail
    with refused(plain, ZipStructureError, r"4 bytes of trailing data after the end of central"):
        add_signatures(plain, [keys.generate(keys.KeyKind.ED25519)])


def test_garbage_journal_is_dropped_as_one_cut_short(
    plain: Path, signer: PrivateKey, reviewer: PrivateKey
) -> None:
    (plain.parent / f".{plain.name}.cosign").write_bytes(b"aoe-pack tail journal v1\n" + bytes(99))
    result = add_signatures(plain, [reviewer])
    assert result.notes == (
        f"removed the journal of an interrupted signing of {plain}: it was cut short, before "
        "the bundle was changed",
    )
    assert result.signers == tuple(sorted([signer.public.key_id, reviewer.public.key_id]))
    assert list(plain.parent.glob(".*.cosign")) == []


@needs_symlinks
def test_journal_name_taken_by_a_link_is_refused(
    plain: Path, reviewer: PrivateKey, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    journal = plain.parent / f".{plain.name}.cosign"
    journal.symlink_to(victim)
    before = plain.read_bytes()
    with pytest.raises(OutputError, match=r"\.cosign is not a journal this user's aoe-pack wrote"):
        add_signatures(plain, [reviewer])
    assert (plain.read_bytes(), victim.read_bytes()) == (before, b"precious")
    assert journal.is_symlink()


# --- journals nobody's aoe-pack wrote: dropped, the bundle left to its own checks ----------


def _plant(bundle: Path, journal: _tailjournal.TailJournal) -> None:
    """A journal beside ``bundle``, as anyone who can create a file in its folder may."""
    (bundle.parent / _tailjournal.journal_name(bundle.name)).write_bytes(journal.encode())


def _dropped(bundle: Path, why: str) -> tuple[str, ...]:
    return (f"removed the journal of an interrupted signing of {bundle}: {why}",)


def test_planted_journal_that_swaps_in_an_older_bundle_is_dropped(
    built_bundle: Any, signer: PrivateKey, reviewer: PrivateKey
) -> None:
    """Offsets 0 and 0, the whole current file as the old tail, an older release as the new.

    Replayed, it would turn the 2.0.0 bundle back into 1.0.0 and have the
    reviewer sign that. The layout comes from the file: its manifest's and
    envelope's headers are nowhere near offset 0.
    """
    older = built_bundle(version="1.0.0").read_bytes()
    current = built_bundle(version="2.0.0", name="current.aoe")
    _plant(
        current,
        _tailjournal.TailJournal(
            anchor_offset=0,
            tail_offset=0,
            anchor_sha256=hashlib.sha256(b"").digest(),
            old_tail=current.read_bytes(),
            new_tail=older,
        ),
    )
    result = add_signatures(current, [reviewer])
    assert result.notes == _dropped(
        current,
        "it names offsets (0 and 0) that are not those of this bundle's manifest and "
        "signatures; the bundle was left as it was",
    )
    assert result.manifest.model.version == "2.0.0"
    expected = built_bundle(version="2.0.0", signers=[signer, reviewer]).read_bytes()
    assert current.read_bytes() == expected
    assert list(current.parent.glob(".*.cosign")) == []


def test_journal_with_a_huge_tail_offset_is_dropped_and_signing_goes_on(
    plain: Path, signer: PrivateKey, reviewer: PrivateKey
) -> None:
    """2**62 bytes are never read: every offset is bounded by the file's size first."""
    _plant(
        plain,
        _tailjournal.TailJournal(
            anchor_offset=0,
            tail_offset=2**62,
            anchor_sha256=bytes(32),
            old_tail=b"old",
            new_tail=b"new",
        ),
    )
    result = add_signatures(plain, [reviewer])
    assert result.notes == _dropped(
        plain,
        f"it names offsets (0 and {2**62}) that are not those of this bundle's manifest "
        "and signatures; the bundle was left as it was",
    )
    assert result.signers == tuple(sorted([signer.public.key_id, reviewer.public.key_id]))
    assert list(plain.parent.glob(".*.cosign")) == []


def _journal_adding(
    bundle: Path, added: list[Signature], by: PublicKey, *, keep_old: bool = True
) -> _tailjournal.TailJournal:
    """A journal whose new tail is the writer's own, with ``added`` (said to be by ``by``)
    in the envelope, and the old signatures unless ``keep_old`` is False."""
    data = bundle.read_bytes()
    with open_bundle(bundle) as opened:
        layout, old = opened.layout, signatures.parse_envelope(opened.signatures_bytes, Limits())
    anchor, tail = (e.header_offset for e in layout.entries[-2:])
    kept = old if keep_old else []
    envelope = signatures.encode_envelope(sorted([*kept, *added], key=lambda s: s.keyid))
    at, new_tail = replace_last_data(
        [layout.mimetype, *layout.entries], date_time=layout.date_time, data=envelope
    )
    assert at == tail
    return _tailjournal.TailJournal(
        anchor_offset=anchor,
        tail_offset=tail,
        anchor_sha256=hashlib.sha256(data[anchor:tail]).digest(),
        old_tail=data[tail:],
        new_tail=new_tail,
        signers=(by,),
    )


def test_journal_adding_a_signature_that_does_not_verify_is_dropped(
    plain: Path, built_bundle: Any, signer: PrivateKey, reviewer: PrivateKey
) -> None:
    """The reviewer's signature over another manifest, put in this bundle's envelope."""
    other = built_bundle({"model.tflite": b"another model"}, signers=[signer, reviewer])
    with open_bundle(other) as opened:
        sigs = signatures.parse_envelope(opened.signatures_bytes, Limits())
    forged = next(s for s in sigs if s.keyid == reviewer.public.key_id)
    _plant(plain, _journal_adding(plain, [forged], reviewer.public))
    third = keys.generate(keys.KeyKind.ED25519)
    result = add_signatures(plain, [third])
    assert result.notes == _dropped(
        plain,
        f"its signature by {reviewer.public.key_id[:16]}… does not verify over the bundle's "
        "manifest; the bundle was left as it was",
    )
    assert plain.read_bytes() == built_bundle(signers=[signer, third]).read_bytes()


def test_journal_that_leaves_out_a_signature_is_dropped(
    plain: Path, signer: PrivateKey, reviewer: PrivateKey
) -> None:
    """A new envelope with the reviewer's valid signature but not CI's: a rewrite only adds."""
    with open_bundle(plain) as opened:
        added = list(dsse.sign(PAYLOAD_TYPE, opened.manifest_bytes, [reviewer]))
    _plant(plain, _journal_adding(plain, added, reviewer.public, keep_old=False))
    result = add_signatures(plain, [keys.generate(keys.KeyKind.ED25519)])
    assert result.notes == _dropped(
        plain,
        f"its new signatures leave out {signer.public.key_id[:16]}…'s; the bundle was left "
        "as it was",
    )
    assert signer.public.key_id in result.signers
    assert reviewer.public.key_id not in result.signers
