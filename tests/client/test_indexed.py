"""A device reading through index.json and one tag document (docs/format.md §15.12).

A folder repository is published with the library, and a device checks it
through a store that records every name it reads. Honest flows assert what is
read (only the index and the device's own tag document, nothing when
unchanged); each attack is one test asserting the exact error and that the
device remembered nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from _server_http import HttpServer

sys.path.insert(0, str(Path(__file__).parents[1] / "repository"))
from _factories import release

from aoe_pack._crypto.asymmetric import KeyKind, PrivateKey, generate
from aoe_pack.client.cache import DocumentCache
from aoe_pack.client.check import CheckResult, ClientState, check, refresh
from aoe_pack.client.decide import Action, Device
from aoe_pack.errors import (
    DownloadError,
    DownloadTooLargeError,
    ExpiredMetadataError,
    MixAndMatchError,
    ReleaseNotFoundError,
    RepositoryError,
    RollbackError,
    UntrustedMetadataError,
)
from aoe_pack.publish.split import retire_index
from aoe_pack.publish.workflow import edit_manifest, init_repository
from aoe_pack.repository.limits import DEFAULT_LIMITS
from aoe_pack.repository.model import Manifest, ModelReleases, Models
from aoe_pack.repository.split import Index, sign_index
from aoe_pack.storage.http import HttpStore
from aoe_pack.storage.local import LocalStore
from aoe_pack.storage.store import INDEX, MANIFEST, ROOT, NotModified, Stored, Validators

DEVICE = Device(
    device_id="phone-1", app_version="1.0.0", runtimes=frozenset({"tflite"}), local_version="0.1.0"
)


@dataclass
class Recording:
    """A folder store that records the names read through it."""

    inner: LocalStore
    reads: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.inner.url

    def read(self, name: str, *, max_bytes: int) -> Stored | None:
        self.reads.append(name)
        return self.inner.read(name, max_bytes=max_bytes)


@dataclass
class Repo:
    store: LocalStore
    key: PrivateKey
    state: Path
    trusted_root: bytes
    recording: Recording = field(init=False)

    def __post_init__(self) -> None:
        self.recording = Recording(self.store)

    @property
    def folder(self) -> Path:
        return self.store.root

    def add(self, tag: str, version: str) -> int:
        def edit(m: Manifest) -> Models:
            have = m.models[tag].releases if tag in m.models else ()
            return m.models.updated(tag, ModelReleases(releases=(*have, release(version))))

        return edit_manifest(self.store, edit, sign_keys=[self.key]).manifest.version

    def check(self, tag: str = "a", **kw: object) -> CheckResult:
        self.recording.reads.clear()
        return check(
            self.recording,  # type: ignore[arg-type]
            tag=tag,
            device=DEVICE,
            trusted_root=self.trusted_root,
            state_path=self.state,
            **kw,  # type: ignore[arg-type]
        )

    def tag_reads(self) -> list[str]:
        return [n for n in self.recording.reads if n.startswith("tags/")]


@pytest.fixture
def repo(tmp_path: Path, signer: PrivateKey) -> Repo:
    store = LocalStore(tmp_path / "repo")
    init_repository(store, root_keys=[signer.public], threshold=1, sign_keys=[signer])
    r = Repo(store, signer, tmp_path / "state.json", (tmp_path / "repo" / ROOT).read_bytes())
    r.add("a", "1.0.0")  # version 2
    r.add("b", "1.0.0")  # version 3
    return r


def _state(repo: Repo) -> dict[str, object]:
    doc: dict[str, object] = json.loads(repo.state.read_text())
    return doc


# --- honest flows ---------------------------------------------------------------------


def test_device_reads_the_index_and_its_own_tag_document_only(repo: Repo) -> None:
    result = repo.check()
    assert result.decision.action is Action.DOWNLOAD
    assert result.manifest_version == 3
    assert MANIFEST not in repo.recording.reads
    assert repo.tag_reads() == ["tags/a/2.json"]
    state = _state(repo)
    assert state["manifestVersion"] == 3
    assert state["manifestSha256"] is None
    assert isinstance(state["indexSha256"], str)


def test_unchanged_repository_reads_no_tag_document(repo: Repo) -> None:
    repo.check()
    repo.check()
    assert repo.tag_reads() == []
    assert MANIFEST not in repo.recording.reads


def test_another_tag_changed_reads_no_tag_document(repo: Repo) -> None:
    repo.check()
    assert repo.add("b", "1.1.0") == 4
    assert repo.check().manifest_version == 4
    assert repo.tag_reads() == []


def test_own_tag_changed_reads_a_patch_from_the_document_it_holds(repo: Repo) -> None:
    repo.check()
    assert repo.add("a", "1.1.0") == 4
    result = repo.check()
    assert repo.tag_reads() == ["tags/a/4.from-2.zst"]
    assert _cached_tag(repo) == (repo.folder / "tags/a/4.json").read_bytes()
    assert result.decision.release is not None
    assert result.decision.release.version == "1.1.0"


def test_repository_without_index_is_read_through_the_manifest(repo: Repo) -> None:
    (repo.folder / INDEX).unlink()
    result = repo.check()
    assert MANIFEST in repo.recording.reads
    assert repo.tag_reads() == []
    assert result.decision.action is Action.DOWNLOAD
    assert _state(repo)["indexSha256"] is None


def test_retired_index_is_read_through_the_manifest(repo: Repo) -> None:
    manifest = (repo.folder / MANIFEST).read_bytes()
    assert retire_index(repo.store, manifest_bytes=manifest)
    assert (repo.folder / INDEX).read_bytes() == b""
    assert repo.check().manifest_version == 3
    assert MANIFEST in repo.recording.reads


def test_switching_between_index_and_manifest_neither_rolls_back_nor_trips_replay(
    repo: Repo,
) -> None:
    repo.check()
    index = (repo.folder / INDEX).read_bytes()
    (repo.folder / INDEX).unlink()
    repo.check()  # manifest.json at the same version: accepted
    state = _state(repo)
    assert state["manifestVersion"] == 3
    assert isinstance(state["manifestSha256"], str)
    assert isinstance(state["indexSha256"], str)  # both digests for version 3
    (repo.folder / INDEX).write_bytes(index)
    assert repo.check().manifest_version == 3


def test_tag_absent_from_the_index_is_kept(repo: Repo) -> None:
    result = repo.check(tag="c")
    assert result.decision.action is Action.KEEP
    assert repo.tag_reads() == []
    with pytest.raises(ReleaseNotFoundError, match="its models: a, b"):
        repo.check(tag="c", require_tag=True)


def test_refresh_without_a_tag_reads_the_manifest(repo: Repo) -> None:
    _, manifest = refresh(
        repo.store, trusted_root=repo.trusted_root, state_path=repo.state, now=_now()
    )
    assert set(manifest.models) == {"a", "b"}


def test_state_files_without_index_digest_still_load(repo: Repo) -> None:
    repo.check()
    doc = _state(repo)
    del doc["indexSha256"]
    repo.state.write_text(json.dumps(doc))
    state = ClientState.load(repo.state, repo.trusted_root)
    assert state.index_sha256 is None
    assert state.manifest_version == 3
    repo.check()
    assert isinstance(_state(repo)["indexSha256"], str)


# --- attacks ----------------------------------------------------------------------------


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _refused(repo: Repo, error: type[Exception], match: str, **kw: object) -> None:
    before = repo.state.read_bytes() if repo.state.exists() else None
    with pytest.raises(error, match=match):
        repo.check(**kw)
    assert (repo.state.read_bytes() if repo.state.exists() else None) == before


def test_mix_and_match_tag_document_of_another_tag_is_rejected(repo: Repo) -> None:
    (repo.folder / "tags/a/2.json").write_bytes((repo.folder / "tags/b/3.json").read_bytes())
    _refused(repo, MixAndMatchError, r"tags/a/2\.json holds the document of tag b at version 3")


def test_mix_and_match_older_document_of_the_same_tag_is_rejected(repo: Repo) -> None:
    repo.add("a", "1.1.0")  # tags/a/4.json
    (repo.folder / "tags/a/4.json").write_bytes((repo.folder / "tags/a/2.json").read_bytes())
    _refused(repo, MixAndMatchError, r"tags/a/4\.json holds the document of tag a at version 2")


def test_rollback_index_older_than_the_floor_is_rejected(repo: Repo) -> None:
    old = (repo.folder / INDEX).read_bytes()
    repo.add("b", "1.1.0")
    repo.check()
    (repo.folder / INDEX).write_bytes(old)
    _refused(repo, RollbackError, r"index\.json version 3 is older than version 4")


def test_replayed_index_at_the_floor_version_with_other_content_is_rejected(repo: Repo) -> None:
    repo.check()
    other = Index(
        version=3, expires=_now() + dt.timedelta(days=1), manifest_sha256="0" * 64, tags={"a": 2}
    )
    (repo.folder / INDEX).write_bytes(sign_index(other, [repo.key]))
    _refused(repo, RollbackError, "same version, different content")


def test_expired_index_is_rejected(repo: Repo) -> None:
    _refused(
        repo,
        ExpiredMetadataError,
        r"index\.json version 3 expired at",
        now=_now() + dt.timedelta(days=60),
    )


def test_cached_tag_document_is_never_used_without_a_fresh_index(repo: Repo) -> None:
    repo.check()  # caches tags/a/2.json
    _refused(
        repo,
        ExpiredMetadataError,
        r"index\.json version 3 expired",
        now=_now() + dt.timedelta(days=60),
    )
    assert repo.tag_reads() == []


@dataclass
class FrozenMirror:
    """An attacker's mirror frozen at one index: ``304`` to every conditional request for
    it, whatever validators come, and that index to a request that names none."""

    inner: LocalStore
    index: bytes
    reads: list[tuple[str, bool]] = field(default_factory=list)
    """(name, conditional) of each request."""

    @property
    def url(self) -> str:
        return self.inner.url

    def documents(self) -> list[tuple[str, bool]]:
        """The requests past the root chain."""
        return [r for r in self.reads if not r[0].startswith("roots/")]

    def read(self, name: str, *, max_bytes: int) -> Stored | None:
        self.reads.append((name, False))
        if name == INDEX:
            return Stored(self.index, "frozen")
        return self.inner.read(name, max_bytes=max_bytes)

    def read_if_changed(
        self, name: str, *, max_bytes: int, known: Validators | None
    ) -> Stored | NotModified | None:
        if name == INDEX and known is not None:
            self.reads.append((name, True))
            return NotModified(known)
        return self.read(name, max_bytes=max_bytes)


def _check_through(repo: Repo, store: object, **kw: object) -> CheckResult:
    return check(
        store,  # type: ignore[arg-type]
        tag="a",
        device=DEVICE,
        trusted_root=repo.trusted_root,
        state_path=repo.state,
        **kw,  # type: ignore[arg-type]
    )


def test_freeze_attack_304_forever_after_the_index_expired_is_rejected(repo: Repo) -> None:
    repo.check()  # caches index.json version 3 and its validators
    mirror = FrozenMirror(repo.store, (repo.folder / INDEX).read_bytes())
    repo.add("a", "1.1.0")  # version 4, which the mirror hides
    # Until the index it froze expires, a mirror can hold a device back...
    assert _check_through(repo, mirror).manifest_version == 3
    assert (INDEX, True) in mirror.reads
    # ...and not a moment longer: the cached copy a 304 stands for is checked
    # exactly as a download is, expiry included.
    mirror.reads.clear()
    before = repo.state.read_bytes()
    with pytest.raises(ExpiredMetadataError, match=r"^index\.json version 3 expired at "):
        _check_through(repo, mirror, now=_now() + dt.timedelta(days=60))
    assert mirror.documents() == [(INDEX, True), (INDEX, False)]  # no tag document read
    assert repo.state.read_bytes() == before


def test_rollback_attack_304_to_a_cached_index_older_than_the_floor_is_rejected(
    repo: Repo,
) -> None:
    repo.check()
    old_record = (_cache(repo) / "index.json").read_bytes()
    mirror = FrozenMirror(repo.store, (repo.folder / INDEX).read_bytes())
    repo.add("a", "1.1.0")
    assert repo.check().manifest_version == 4  # the floor
    (_cache(repo) / "index.json").write_bytes(old_record)  # the cache back at version 3
    before = repo.state.read_bytes()
    with pytest.raises(RollbackError, match=r"^index\.json version 3 is older than version 4"):
        _check_through(repo, mirror)
    assert mirror.documents() == [(INDEX, True), (INDEX, False)]
    assert repo.state.read_bytes() == before


def test_freeze_attack_http_304_to_every_request_fails_the_check(
    http_server: HttpServer, signer: PrivateKey, tmp_path: Path
) -> None:
    publisher = LocalStore(http_server.root)
    init_repository(publisher, root_keys=[signer.public], threshold=1, sign_keys=[signer])
    r = Repo(publisher, signer, tmp_path / "state.json", (http_server.root / ROOT).read_bytes())
    r.add("a", "1.0.0")
    device = HttpStore(http_server.url)
    assert _check_through(r, device).manifest_version == 2
    http_server.answer(INDEX, 304, {"Content-Length": "0"})  # to conditional requests and others
    assert _check_through(r, device).manifest_version == 2  # the cached index, still fresh
    with pytest.raises(
        DownloadError, match=r"index\.json: HTTP 304 Not Modified to a request that named no"
    ):
        _check_through(r, device, now=_now() + dt.timedelta(days=60))


def test_tag_document_without_a_threshold_of_signatures_is_rejected(repo: Repo) -> None:
    from aoe_pack.repository.split import sign_tag_document, tag_document
    from aoe_pack.repository.trust import verify_manifest

    m = verify_manifest((repo.folder / MANIFEST).read_bytes(), _root(repo), now=_now()).manifest
    stranger = generate(KeyKind.ED25519)
    forged = sign_tag_document(tag_document(m, "a", 2), [stranger])
    (repo.folder / "tags/a/2.json").write_bytes(forged)
    _refused(repo, UntrustedMetadataError, r"tags/a/2\.json has 0 of the 1 required")


def test_index_naming_a_missing_tag_document_is_refused(repo: Repo) -> None:
    (repo.folder / "tags/a/2.json").unlink()
    with pytest.raises(RepositoryError, match=r"names tags/a/2\.json, which is missing") as info:
        repo.check()
    assert info.value.code == "repository"


def test_oversized_index_is_refused(repo: Repo) -> None:
    (repo.folder / INDEX).write_bytes(b" " * (DEFAULT_LIMITS.max_index_bytes + 1))
    _refused(repo, DownloadTooLargeError, "larger than its cap")


def test_hostile_index_json_is_refused(repo: Repo) -> None:
    from aoe_pack.errors import RepositoryFormatError

    (repo.folder / INDEX).write_bytes(b"[" * 100_000)
    _refused(repo, RepositoryFormatError, r"index\.json")


# --- the cache ------------------------------------------------------------------------


def _cache(repo: Repo) -> Path:
    return repo.state.with_name(repo.state.name + ".cache")


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(b"garbage"),
        lambda p: p.write_bytes(p.read_bytes().replace(b'"payload":"ey', b'"payload":"eX')),
        lambda p: p.write_bytes(b"x" * (DEFAULT_LIMITS.max_manifest_bytes + 1)),
        lambda p: p.unlink(),
    ],
    ids=["garbage", "tampered", "oversized", "missing"],
)
def test_a_damaged_cached_tag_document_is_ignored_and_repaired(
    repo: Repo, damage: Callable[[Path], None]
) -> None:
    repo.check()
    cached = _cache(repo) / "tags" / "a.json"
    good = cached.read_bytes()
    damage(cached)
    assert repo.check().decision.action is Action.DOWNLOAD
    assert repo.tag_reads() == ["tags/a/2.json"]
    assert cached.read_bytes() == good


def test_a_tampered_cached_index_is_ignored(repo: Repo) -> None:
    repo.check()
    record = json.loads((_cache(repo) / "index.json").read_text())
    (_cache(repo) / "index.json").write_text(json.dumps({**record, "envelope": "AAAA"}))
    assert repo.check().manifest_version == 3
    assert INDEX in repo.recording.reads


def test_a_stale_cached_index_with_current_validators_is_read_again(repo: Repo) -> None:
    repo.check()
    old = json.loads((_cache(repo) / "index.json").read_text())
    repo.add("a", "1.1.0")
    repo.check()
    current = json.loads((_cache(repo) / "index.json").read_text())
    # The old envelope under the new validators: a "not modified" answer would
    # hand the device an index older than its floor; it reads the index afresh.
    (_cache(repo) / "index.json").write_text(json.dumps({**current, "envelope": old["envelope"]}))
    assert repo.check().manifest_version == 4


def test_cache_keeps_a_bounded_number_of_tags(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    from aoe_pack.client import cache

    monkeypatch.setattr(cache, "MAX_CACHED_TAGS", 1)
    repo.check(tag="a")
    repo.check(tag="b")
    assert [p.name for p in (_cache(repo) / "tags").iterdir()] == ["b.json"]


def test_an_unwritable_cache_does_not_fail_a_check(repo: Repo) -> None:
    _cache(repo).write_bytes(b"a file where the folder goes")
    assert repo.check().manifest_version == 3
    assert DocumentCache.beside(repo.state).index() is None


def _cached_tag(repo: Repo, tag: str = "a") -> bytes:
    return (_cache(repo) / "tags" / f"{tag}.json").read_bytes()


def _root(repo: Repo) -> object:
    from aoe_pack.repository.root import verify_self_signed

    return verify_self_signed(repo.trusted_root)


# --- tag document patches (§15.12): every failure falls back to the full document ----


PATCH = "tags/a/4.from-2.zst"
FULL = "tags/a/4.json"


@pytest.fixture
def behind(repo: Repo) -> Repo:
    """A device holding tags/a/2.json, and tag a changed at version 4 (a patch from 2)."""
    repo.check()
    assert repo.add("a", "1.1.0") == 4
    assert (repo.folder / PATCH).is_file()
    return repo


def _signed_payload(repo: Repo, name: str) -> tuple[bytes, bytes]:
    """(signatures array in canonical JSON, payload) of the tag document ``name``."""
    from aoe_pack._jcs import canonical_json_integral
    from aoe_pack.repository import envelope

    env = envelope.parse((repo.folder / name).read_bytes(), envelope.TAG_TYPE, what=name)
    sigs = json.loads((repo.folder / name).read_bytes())["signatures"]
    return canonical_json_integral(sigs), env.payload


def _patch_of(repo: Repo, content: bytes, prefix: bytes | None = None) -> None:
    """Replace the patch by a frame of ``content`` made from ``prefix`` (by default the
    payload of tags/a/2.json, the device's base)."""
    from aoe_pack.repository._zstd import compress_from

    if prefix is None:
        _, prefix = _signed_payload(repo, "tags/a/2.json")
    (repo.folder / PATCH).write_bytes(compress_from(prefix, content, level=3))


def _fell_back(repo: Repo) -> None:
    """The check used the full document, succeeded, and cached it."""
    result = repo.check()
    assert repo.tag_reads() == [PATCH, FULL]
    assert result.decision.release is not None
    assert result.decision.release.version == "1.1.0"
    assert _cached_tag(repo) == (repo.folder / FULL).read_bytes()


def test_patch_rebuilds_the_document_the_publisher_wrote(behind: Repo) -> None:
    behind.check()
    assert behind.tag_reads() == [PATCH]
    assert _cached_tag(behind) == (behind.folder / FULL).read_bytes()


def test_missing_patch_404_falls_back_to_the_full_document(behind: Repo) -> None:
    (behind.folder / PATCH).unlink()
    _fell_back(behind)


def test_patch_from_a_different_base_falls_back(behind: Repo) -> None:
    """Made from the old envelope instead of its payload: decoded on the payload, the
    frame's references land elsewhere."""
    sigs, payload = _signed_payload(behind, FULL)
    envelope_bytes = (behind.folder / "tags/a/2.json").read_bytes()
    _patch_of(behind, sigs + b"\n" + payload, prefix=envelope_bytes)
    _fell_back(behind)


def test_patch_with_a_flipped_byte_falls_back(behind: Repo) -> None:
    data = bytearray((behind.folder / PATCH).read_bytes())
    data[len(data) // 2] ^= 0x01
    (behind.folder / PATCH).write_bytes(bytes(data))
    _fell_back(behind)


def test_truncated_patch_falls_back(behind: Repo) -> None:
    data = (behind.folder / PATCH).read_bytes()
    (behind.folder / PATCH).write_bytes(data[: len(data) // 2])
    _fell_back(behind)


def test_zstd_bomb_past_the_tag_document_cap_falls_back(behind: Repo) -> None:
    _patch_of(behind, b"\0" * (DEFAULT_LIMITS.max_manifest_bytes + 1))
    assert (behind.folder / PATCH).stat().st_size < 64 * 1024
    _fell_back(behind)


def test_patch_over_the_cap_on_the_wire_falls_back(behind: Repo) -> None:
    (behind.folder / PATCH).write_bytes(b"\0" * (DEFAULT_LIMITS.max_manifest_bytes + 1))
    _fell_back(behind)


def test_patch_without_a_newline_falls_back(behind: Repo) -> None:
    sigs, _ = _signed_payload(behind, FULL)
    _patch_of(behind, sigs)
    _fell_back(behind)


def test_patch_whose_signatures_are_not_an_array_falls_back(behind: Repo) -> None:
    _, payload = _signed_payload(behind, FULL)
    _patch_of(behind, b'{"keyid":"00"}\n' + payload)
    _fell_back(behind)


def test_patch_rebuilding_a_document_with_a_bad_signature_falls_back(behind: Repo) -> None:
    from aoe_pack._jcs import canonical_json_integral

    sigs, payload = _signed_payload(behind, FULL)
    forged = json.loads(sigs)
    forged[0]["sig"] = json.loads(_signed_payload(behind, "tags/a/2.json")[0])[0]["sig"]
    _patch_of(behind, canonical_json_integral(forged) + b"\n" + payload)
    _fell_back(behind)


def test_patch_rebuilding_a_document_signed_by_a_stranger_falls_back(behind: Repo) -> None:
    from aoe_pack.repository import envelope

    _, payload = _signed_payload(behind, FULL)
    stranger = envelope.sign_canonical(envelope.TAG_TYPE, payload, [generate(KeyKind.ED25519)])
    from aoe_pack._jcs import canonical_json_integral

    sigs = canonical_json_integral(json.loads(stranger.to_bytes())["signatures"])
    _patch_of(behind, sigs + b"\n" + payload)
    _fell_back(behind)


def test_patch_rebuilding_another_tags_document_falls_back(behind: Repo) -> None:
    sigs, payload = _signed_payload(behind, "tags/b/3.json")
    _patch_of(behind, sigs + b"\n" + payload)
    _fell_back(behind)


def test_patch_rebuilding_another_version_falls_back(behind: Repo) -> None:
    sigs, payload = _signed_payload(behind, "tags/a/2.json")  # validly signed, version 2
    _patch_of(behind, sigs + b"\n" + payload)
    _fell_back(behind)


def test_patch_the_server_fails_to_send_falls_back(
    behind: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aoe_pack.errors import DownloadError

    real = behind.recording.read

    def read(name: str, *, max_bytes: int) -> Stored | None:
        if name.endswith(".zst"):
            behind.recording.reads.append(name)
            raise DownloadError(f"{name}: HTTP 500 Internal Server Error")
        return real(name, max_bytes=max_bytes)

    monkeypatch.setattr(behind.recording, "read", read)
    _fell_back(behind)


def test_bad_patch_and_bad_full_document_fail_as_the_full_document_does(behind: Repo) -> None:
    (behind.folder / PATCH).write_bytes(b"garbage")
    (behind.folder / FULL).write_bytes((behind.folder / "tags/b/3.json").read_bytes())
    _refused(behind, MixAndMatchError, r"tags/a/4\.json holds the document of tag b at version 3")
    assert behind.tag_reads() == [PATCH, FULL]


def test_a_valid_patch_is_used_only_from_a_cached_document_of_the_tag(behind: Repo) -> None:
    """A device holding no document of its tag (or a newer one) never asks for a patch."""
    shutil.rmtree(_cache(behind))
    behind.check()
    assert behind.tag_reads() == [FULL]
