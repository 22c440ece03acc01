"""Publishers write the index and tag documents after each manifest commit (§15.12).

On every backend: what ``init`` and edits write, immutability, the gzip
siblings of plain-file stores; on a folder: a crash between the manifest and
the index, racing publishers, a root rotation, and two writers at one version.
"""

from __future__ import annotations

import gzip
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "repository"))
from _factories import release

from aoe_pack._crypto import asymmetric as keys
from aoe_pack._crypto.asymmetric import PrivateKey
from aoe_pack.errors import StoreError
from aoe_pack.publish import split, workflow
from aoe_pack.publish.workflow import (
    edit_manifest,
    init_repository,
    now_utc,
    read_state,
    rotate_root,
)
from aoe_pack.repository.model import Manifest, ModelReleases, Models
from aoe_pack.repository.root import Root
from aoe_pack.repository.split import (
    Index,
    tag_document,
    verify_index,
    verify_tag_document,
)
from aoe_pack.storage.local import LocalStore
from aoe_pack.storage.open import open_store
from aoe_pack.storage.store import GZIP_SUFFIX, INDEX, MANIFEST, Store

CAP = 1 << 26


def _add(store: Store, key: PrivateKey, tag: str, version: str) -> Manifest:
    def edit(m: Manifest) -> Models:
        have = m.models[tag].releases if tag in m.models else ()
        return m.models.updated(tag, ModelReleases(releases=(*have, release(version))))

    return edit_manifest(store, edit, sign_keys=[key]).manifest


def _index(store: Store, root: Root) -> Index:
    doc = store.read(INDEX, max_bytes=CAP)
    assert doc is not None
    return verify_index(doc.data, root, now=now_utc()).index


def _consistent(store: Store) -> None:
    """The index is the manifest's version, and each tag document holds its entry."""
    state = read_state(store)
    index = _index(store, state.root)
    assert index.version == state.manifest.version
    assert set(index.tags) == set(state.manifest.models)
    for tag, version in index.tags.items():
        doc = store.read(f"tags/{tag}/{version}.json", max_bytes=CAP)
        assert doc is not None
        got = verify_tag_document(doc.data, state.root, tag=tag, version=version)
        assert dict(got.model) == state.manifest.models.to_dict()[tag]


@pytest.fixture
def store(repo_url: str, repo_key: PrivateKey) -> Iterator[Store]:
    s = open_store(repo_url)
    init_repository(s, root_keys=[repo_key.public], threshold=1, sign_keys=[repo_key])
    yield s
    s.close()


def test_init_and_edits_write_the_index_and_only_changed_tag_documents(
    store: Store, repo_key: PrivateKey
) -> None:
    root = read_state(store).root
    assert _index(store, root).tags == {}
    _add(store, repo_key, "a", "1.0.0")  # 2
    _add(store, repo_key, "b", "1.0.0")  # 3
    first = store.read("tags/a/2.json", max_bytes=CAP)
    _add(store, repo_key, "b", "1.1.0")  # 4
    assert _index(store, root).tags == {"a": 2, "b": 4}
    assert store.read("tags/b/3.json", max_bytes=CAP) is not None  # never deleted
    assert store.read("tags/a/4.json", max_bytes=CAP) is None
    assert store.read("tags/a/2.json", max_bytes=CAP) == first  # never rewritten
    _consistent(store)
    if not split.plain_files(store):
        return  # OCI: one tag per document, no gzip siblings
    for name in (INDEX, MANIFEST, "tags/b/4.json"):
        packed = store.read(name + GZIP_SUFFIX, max_bytes=CAP)
        assert packed is not None
        plain = store.read(name, max_bytes=CAP)
        assert plain is not None
        assert gzip.decompress(packed.data) == plain.data


@pytest.mark.parametrize("size", [750, split.FAST_GZIP_FROM + 1], ids=["zlib", "isa-l"])
def test_gzip_siblings_are_deterministic(size: int) -> None:
    data = (b'{"payload":"x"}' * (size // 15 + 1))[:size]
    packed = split.gzip_sibling(data)
    assert packed == split.gzip_sibling(data)
    assert packed[4:8] == b"\0\0\0\0"  # mtime 0
    assert not packed[3] & 0x08  # no file name
    assert gzip.decompress(packed) == data


@pytest.fixture
def folder(tmp_path: Path, repo_key: PrivateKey) -> LocalStore:
    s = LocalStore(tmp_path / "repo")
    init_repository(s, root_keys=[repo_key.public], threshold=1, sign_keys=[repo_key])
    _add(s, repo_key, "a", "1.0.0")
    _add(s, repo_key, "b", "1.0.0")
    return s


def test_a_crash_before_the_index_leaves_it_behind_and_the_next_edit_repairs_it(
    folder: LocalStore, repo_key: PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = read_state(folder).root

    def crash(*args: object, **kwargs: object) -> None:
        raise StoreError("killed")

    with monkeypatch.context() as m:
        m.setattr(workflow, "publish_index", crash)
        with pytest.raises(StoreError):
            _add(folder, repo_key, "a", "1.1.0")
    assert read_state(folder).manifest.version == 4
    assert _index(folder, root).version == 3  # lags; still valid for devices
    _add(folder, repo_key, "b", "1.1.0")
    assert _index(folder, root).tags == {"a": 5, "b": 5}  # every tag afresh
    _consistent(folder)


def test_a_storage_failure_after_the_commit_says_the_manifest_is_committed(
    folder: LocalStore, repo_key: PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise StoreError("disk full")

    monkeypatch.setattr(split, "sync_gzip", fail)
    with pytest.raises(StoreError, match="disk full") as info:
        _add(folder, repo_key, "a", "1.1.0")
    assert "manifest version 4 is committed" in (info.value.hint or "")


def test_an_index_for_a_replaced_manifest_is_not_written(
    folder: LocalStore, repo_key: PrivateKey
) -> None:
    state = read_state(folder)
    before = folder.read(INDEX, max_bytes=CAP)
    outcome = split.publish_index(
        folder,
        root=state.root,
        previous=state.manifest,
        previous_sha256=state.manifest_sha256,
        manifest=state.manifest,
        manifest_bytes=b"not the manifest there now",
        manifest_sha256="0" * 64,
        sign_keys=[repo_key],
    )
    assert outcome.index is None
    assert "later edit" in outcome.reason
    assert folder.read(INDEX, max_bytes=CAP) == before


def test_two_writers_at_one_version_retire_the_index(
    folder: LocalStore, repo_key: PrivateKey
) -> None:
    state = read_state(folder)
    new = _add(folder, repo_key, "a", "1.1.0")  # version 4: tags/a/4.json
    (folder.root / "tags/a/4.json").write_bytes(b"another writer's document")
    outcome = split.publish_index(
        folder,
        root=state.root,
        previous=state.manifest,
        previous_sha256=state.manifest_sha256,
        manifest=new,
        manifest_bytes=(folder.root / MANIFEST).read_bytes(),
        manifest_sha256=read_state(folder).manifest_sha256,
        sign_keys=[repo_key],
    )
    assert outcome.index is None
    assert "exists with other content" in outcome.reason
    assert outcome.retired  # never left naming an older manifest
    assert (folder.root / INDEX).read_bytes() == b""


def _other_manifest_sha256(state: workflow.RepoState, key: PrivateKey) -> str:
    """The payload SHA-256 of another, validly signed manifest at ``state``'s version
    (one a second publisher of that version would have written)."""
    import dataclasses
    import hashlib

    from aoe_pack.repository import envelope

    other = dataclasses.replace(state.manifest, expires=state.manifest.expires.replace(year=2031))
    signed = envelope.sign(envelope.MANIFEST_TYPE, other.to_dict(), [key])
    digest = hashlib.sha256(signed.payload).hexdigest()
    assert digest != state.manifest_sha256
    return digest


def test_an_index_of_another_manifest_at_the_previous_version_is_not_reused(
    folder: LocalStore, repo_key: PrivateKey
) -> None:
    """Its version and signers are right, but it was made from another manifest 3: the
    tags it names need not be those of the manifest the edit starts from."""
    from aoe_pack.repository.split import sign_index

    state = read_state(folder)
    found = _index(folder, state.root)
    assert found.manifest_sha256 == state.manifest_sha256
    forged = Index(
        version=found.version,
        expires=found.expires,
        manifest_sha256=_other_manifest_sha256(state, repo_key),
        tags=found.tags,
    )
    (folder.root / INDEX).write_bytes(sign_index(forged, [repo_key]))
    _add(folder, repo_key, "a", "1.1.0")  # 4
    index = _index(folder, state.root)
    assert index.tags == {"a": 4, "b": 4}  # every tag afresh, as with no index to build on
    assert index.manifest_sha256 == read_state(folder).manifest_sha256
    assert not list(folder.root.glob("tags/*/*.zst"))
    _consistent(folder)


def test_an_index_of_the_manifest_the_edit_started_from_is_reused(
    folder: LocalStore, repo_key: PrivateKey
) -> None:
    _add(folder, repo_key, "a", "1.1.0")  # 4: only a's document is new
    assert _index(folder, read_state(folder).root).tags == {"a": 4, "b": 3}


def test_racing_publishers_keep_the_index_monotonic_and_consistent(
    folder: LocalStore, repo_key: PrivateKey
) -> None:
    root = read_state(folder).root
    seen: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.append(_index(folder, root).version)

    def publisher(p: int) -> None:
        for i in range(4):
            _add(folder, repo_key, f"m{p}", f"1.{i}.0")

    watcher = threading.Thread(target=watch)
    workers = [threading.Thread(target=publisher, args=(p,)) for p in range(4)]
    watcher.start()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stop.set()
    watcher.join()
    assert seen == sorted(seen)
    assert _index(folder, root).version == 3 + 16
    _consistent(folder)


def test_a_root_rotation_re_issues_every_tag_document_under_the_new_keys(
    folder: LocalStore, repo_key: PrivateKey
) -> None:
    new_key = keys.generate(keys.KeyKind.ED25519)
    root = rotate_root(
        folder, new_keys=[new_key.public], threshold=1, sign_keys=[repo_key, new_key]
    )
    index = _index(folder, root)
    assert set(index.tags.values()) == {index.version}
    _consistent(folder)  # every document verifies under root 2 alone
    after = edit_manifest(
        folder,
        lambda m: m.models.updated("a", ModelReleases(releases=(release("2.0.0"),))),
        sign_keys=[new_key],
    ).manifest
    assert _index(folder, root).tags == {"a": after.version, "b": index.version}


def test_a_ceremony_style_install_retires_the_index(
    folder: LocalStore, repo_key: PrivateKey
) -> None:
    data = (folder.root / MANIFEST).read_bytes()
    assert split.retire_index(folder, manifest_bytes=data)
    assert (folder.root / INDEX).read_bytes() == b""
    assert gzip.decompress((folder.root / (INDEX + GZIP_SUFFIX)).read_bytes()) == b""
    _add(folder, repo_key, "a", "1.1.0")  # the next keyed edit writes a full index
    _consistent(folder)


def test_tag_document_keeps_unknown_members_of_the_entry(repo_key: PrivateKey) -> None:
    m = Manifest.from_dict(
        {
            "_type": "aoe.repository.manifest",
            "formatVersion": 1,
            "version": 2,
            "expires": "2030-01-01T00:00:00Z",
            "models": {"a": {"releases": [], "x-owner": "team"}},
        }
    )
    assert tag_document(m, "a", 2).to_dict()["model"] == {"releases": [], "x-owner": "team"}


# --- manifest verify and show ------------------------------------------------------------


def test_verify_reports_a_current_index_and_checks_every_tag_document(
    folder: LocalStore,
) -> None:
    from aoe_pack.client.verify_repo import verify_repository

    report = verify_repository(
        folder, (folder.root / "root.json").read_bytes(), check_bundles=False
    )
    assert report.to_dict()["index"] == "current"
    assert report.to_dict()["indexVersion"] == 3
    assert report.to_dict()["tagDocumentsChecked"] == 2


def test_verify_reports_an_index_left_behind(
    folder: LocalStore, repo_key: PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aoe_pack.client.verify_repo import verify_repository

    monkeypatch.setattr(workflow, "publish_index", lambda *a, **k: None)
    _add(folder, repo_key, "a", "1.1.0")
    report = verify_repository(
        folder, (folder.root / "root.json").read_bytes(), check_bundles=False
    )
    assert (report.index.status, report.index.version) == ("behind", 3)


def test_verify_refuses_a_tag_document_that_differs_from_the_manifest(
    folder: LocalStore, repo_key: PrivateKey
) -> None:
    from aoe_pack.client.verify_repo import verify_repository
    from aoe_pack.errors import RepositoryError
    from aoe_pack.repository.split import TagDocument, sign_tag_document

    other = TagDocument(tag="a", version=2, model={"releases": []})
    (folder.root / "tags/a/2.json").write_bytes(sign_tag_document(other, [repo_key]))
    with pytest.raises(RepositoryError, match=r"tags/a/2\.json does not hold manifest\.json's"):
        verify_repository(folder, (folder.root / "root.json").read_bytes(), check_bundles=False)


def test_verify_refuses_an_index_made_from_another_manifest_of_its_version(
    folder: LocalStore, repo_key: PrivateKey
) -> None:
    """Validly signed, the manifest's version and tags, every tag document right: only
    its manifestSha256 tells that it was made from another manifest 3."""
    from aoe_pack.client.verify_repo import verify_repository
    from aoe_pack.errors import RepositoryError
    from aoe_pack.repository.split import sign_index

    state = read_state(folder)
    found = _index(folder, state.root)
    other = _other_manifest_sha256(state, repo_key)
    forged = Index(
        version=found.version, expires=found.expires, manifest_sha256=other, tags=found.tags
    )
    (folder.root / INDEX).write_bytes(sign_index(forged, [repo_key]))
    with pytest.raises(RepositoryError) as info:
        verify_repository(folder, (folder.root / "root.json").read_bytes(), check_bundles=False)
    assert type(info.value) is RepositoryError
    assert info.value.message == (
        f"{folder.url}: index.json version 3 was made from another manifest "
        f"(manifestSha256 {other}) than manifest.json version 3 (payload SHA-256 "
        f"{state.manifest_sha256})"
    )


def test_verify_and_show_of_a_repository_without_index(folder: LocalStore) -> None:
    from aoe_pack.client.verify_repo import verify_repository

    (folder.root / INDEX).unlink()
    report = verify_repository(
        folder, (folder.root / "root.json").read_bytes(), check_bundles=False
    )
    assert report.index.status == "absent"
    assert split.index_version(folder, read_state(folder).root) is None


def test_oci_names_tag_documents_within_the_128_characters_of_a_tag() -> None:
    from aoe_pack.storage import oci

    long_tag = "m" * 128
    target = oci._target(f"tags/{long_tag}/9007199254740991.json")
    assert len(target.tag) <= 128
    assert target.title == f"tags/{long_tag}/9007199254740991.json"
    assert oci._target("tags/a/1.json").tag != oci._target("tags/b/1.json").tag
    assert oci._target(INDEX).tag == "index"
    patch = oci._target(f"tags/{long_tag}/9007199254740991.from-9007199254740990.zst")
    assert len(patch.tag) <= 128
    assert patch.layer_type == oci.TAG_PATCH_LAYER
    assert patch.tag not in {target.tag, oci._target(f"tags/{long_tag}/9007199254740990.json").tag}


# --- tag document patches (§15.12) ---------------------------------------------------------


def _envelope(store: Store, name: str) -> bytes:
    doc = store.read(name, max_bytes=CAP)
    assert doc is not None, name
    return doc.data


def _rebuilt(store: Store, root: Root, tag: str, version: int, base: int) -> bytes:
    """What a device holding ``tag``'s document ``base`` rebuilds from the patch."""
    from aoe_pack.repository.split import verify_tag_envelope
    from aoe_pack.repository.tag_patch import apply_patch, patch_name

    held = verify_tag_envelope(
        _envelope(store, f"tags/{tag}/{base}.json"), root, tag=tag, version=base
    )
    return apply_patch(held.payload, _envelope(store, patch_name(tag, version, base)), what="p")


def test_edits_write_patches_from_the_three_documents_before_a_new_one(
    store: Store, repo_key: PrivateKey
) -> None:
    root = read_state(store).root
    _add(store, repo_key, "a", "1.0.0")  # 2: the first document of a, no patch
    _add(store, repo_key, "b", "1.0.0")  # 3
    assert store.read("tags/a/2.from-1.zst", max_bytes=CAP) is None
    for i, version in enumerate((4, 5, 6, 7), start=1):
        _add(store, repo_key, "a", f"1.{i}.0")
        assert _index(store, root).tags["a"] == version
    doc = verify_tag_document(_envelope(store, "tags/a/7.json"), root, tag="a", version=7)
    assert doc.previous == 6
    for base in (6, 5, 4):  # the three documents before 7
        assert _rebuilt(store, root, "a", 7, base) == _envelope(store, "tags/a/7.json")
    assert store.read("tags/a/7.from-2.zst", max_bytes=CAP) is None  # four back: none
    assert store.read("tags/b/7.from-3.zst", max_bytes=CAP) is None  # b did not change
    if split.plain_files(store):  # binary, never served compressed
        assert store.read("tags/a/7.from-6.zst" + GZIP_SUFFIX, max_bytes=CAP) is None


def test_no_patch_across_a_re_issue_of_every_tag(folder: LocalStore, repo_key: PrivateKey) -> None:
    """A new root or new signers re-issue every document: older ones may not verify."""
    new_key = keys.generate(keys.KeyKind.ED25519)
    rotate_root(folder, new_keys=[new_key.public], threshold=1, sign_keys=[repo_key, new_key])
    index = _index(folder, read_state(folder).root)
    assert not list(folder.root.glob("tags/*/*.zst"))
    doc = folder.read(f"tags/a/{index.tags['a']}.json", max_bytes=CAP)
    assert doc is not None
    assert "previous" not in _payload_of(doc.data)


def test_no_patch_from_a_base_that_does_not_verify(
    folder: LocalStore, repo_key: PrivateKey
) -> None:
    from aoe_pack.repository.split import sign_tag_document

    stranger = keys.generate(keys.KeyKind.ED25519)
    state = read_state(folder)
    (folder.root / "tags/a/2.json").write_bytes(
        sign_tag_document(tag_document(state.manifest, "a", 2), [stranger])
    )
    _add(folder, repo_key, "a", "1.1.0")  # 4
    assert not (folder.root / "tags/a/4.from-2.zst").exists()
    _consistent(folder)


def test_no_patch_when_it_is_not_smaller_than_the_gzip_of_the_document(
    folder: LocalStore, repo_key: PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(split, "make_patch", lambda base, new: b"\0" * 100_000)
    _add(folder, repo_key, "a", "1.1.0")
    assert not (folder.root / "tags/a/4.from-2.zst").exists()
    assert (folder.root / "tags/a/4.json").exists()


def test_a_patch_is_written_after_its_document_and_before_the_index(
    folder: LocalStore, repo_key: PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    order: list[str] = []
    real = folder.replace

    def replace(name: str, data: bytes, *, expected: str | None) -> str:
        order.append(name)
        return real(name, data, expected=expected)

    monkeypatch.setattr(folder, "replace", replace)
    _add(folder, repo_key, "a", "1.1.0")
    docs = [n for n in order if n.startswith(("tags/", INDEX))]
    assert docs[:4] == ["tags/a/4.json", "tags/a/4.json.gz", "tags/a/4.from-2.zst", INDEX]


def _payload_of(data: bytes) -> dict[str, object]:
    from aoe_pack.repository import envelope

    doc: dict[str, object] = envelope.parse(data, envelope.TAG_TYPE, what="t").document()
    return doc
