"""FsspecStore against a real S3 endpoint (moto in server mode) and memory://.

Every s3 test gets a fresh bucket from ``s3_repo_url`` (tests/_server_s3.py).
"""

from __future__ import annotations

import os
import random
import re
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from _server_s3 import S3Server

from aoe_pack.errors import (
    DownloadError,
    DownloadTooLargeError,
    StoreConflictError,
    StoreError,
    UsageError,
)
from aoe_pack.storage.fsspec_store import FsspecStore
from aoe_pack.storage.store import (
    MANIFEST,
    ConditionalStore,
    NotModified,
    Stored,
    Validators,
    bundle_name,
)

BIG = 12 * 2**20 + 12345  # over two 5 MiB parts: put_file goes multipart


@pytest.fixture
def s3_store(s3_repo_url: str) -> Iterator[FsspecStore]:
    store = FsspecStore.from_url(s3_repo_url)
    yield store
    store.close()


@pytest.fixture
def memory_store() -> Iterator[FsspecStore]:
    url = f"memory://aoe-test-{secrets.token_hex(6)}/repo"
    store = FsspecStore.from_url(url)
    yield store
    if store._fs.exists(store._root):
        store._fs.rm(store._root, recursive=True)
    store.close()


def _cas_sequence(store: FsspecStore) -> None:
    """The same compare-and-swap contract, whatever the backend."""
    assert store.read(MANIFEST, max_bytes=1000) is None

    token1 = store.replace(MANIFEST, b"v1", expected=None)
    first = store.read(MANIFEST, max_bytes=1000)
    assert first is not None
    assert (first.data, first.token) == (b"v1", token1)

    with pytest.raises(StoreConflictError, match="created by another writer"):
        store.replace(MANIFEST, b"other", expected=None)

    token2 = store.replace(MANIFEST, b"v2", expected=token1)
    assert token2 != token1
    with pytest.raises(StoreConflictError, match="changed since it was read"):
        store.replace(MANIFEST, b"stale", expected=token1)
    after = store.read(MANIFEST, max_bytes=1000)
    assert after is not None
    assert (after.data, after.token) == (b"v2", token2)

    with pytest.raises(DownloadTooLargeError):
        store.read(MANIFEST, max_bytes=1)
    exact = store.read(MANIFEST, max_bytes=2)
    assert exact is not None
    assert exact.data == b"v2"


def test_s3_compare_and_swap(s3_store: FsspecStore) -> None:
    _cas_sequence(s3_store)
    stored = s3_store.read(MANIFEST, max_bytes=10)
    assert stored is not None
    assert stored.token.startswith('"')  # the ETag exactly as S3 returned it


def test_memory_compare_and_swap(memory_store: FsspecStore) -> None:
    _cas_sequence(memory_store)


def test_s3_blob_upload_fetch_and_noop(
    s3_store: FsspecStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "big.aoe"
    source.write_bytes(os.urandom(BIG))
    name = bundle_name("ab" * 32)
    assert s3_store.has_blob(name) is None

    s3_store.put_blob(name, source, sha256="ab" * 32, size=BIG)
    assert s3_store.has_blob(name) == BIG
    info = s3_store._fs.info(f"{s3_store._root}/{name}")
    assert info["ETag"].endswith('-3"'), "expected a 3-part multipart upload"

    dest = tmp_path / "back.aoe"
    s3_store.fetch_blob(name, dest, max_bytes=BIG)
    assert dest.read_bytes() == source.read_bytes()

    with pytest.raises(DownloadTooLargeError):
        s3_store.fetch_blob(name, tmp_path / "capped.aoe", max_bytes=BIG - 1)
    assert not (tmp_path / "capped.aoe").exists()

    def no_upload(*args: object, **kwargs: object) -> None:
        raise AssertionError("put_blob uploaded a blob that was already there")

    monkeypatch.setattr(s3_store._fs, "put_file", no_upload)
    s3_store.put_blob(name, source, sha256="ab" * 32, size=BIG)

    with pytest.raises(DownloadError, match="does not exist"):
        s3_store.fetch_blob(bundle_name("cd" * 32), tmp_path / "none.aoe", max_bytes=BIG)


def test_s3_concurrent_cas_loses_no_update(s3_repo_url: str) -> None:
    """8 writers x 25 read-modify-CAS increments: every success must count."""
    setup = FsspecStore.from_url(s3_repo_url)
    setup.replace("counter", b"0", expected=None)

    def worker(_: int) -> tuple[int, int]:
        store = FsspecStore.from_url(s3_repo_url)
        wins = conflicts = streak = 0
        try:
            while wins < 25:
                current = store.read("counter", max_bytes=100)
                assert current is not None
                try:
                    store.replace(
                        "counter", b"%d" % (int(current.data) + 1), expected=current.token
                    )
                except StoreConflictError:
                    conflicts += 1
                    streak += 1  # back off with jitter, as a real publisher would
                    time.sleep(random.uniform(0, 0.004 * 2 ** min(streak, 5)))
                else:
                    wins += 1
                    streak = 0
        finally:
            store.close()
        return wins, conflicts

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(worker, range(8)))
    final = setup.read("counter", max_bytes=100)
    setup.close()
    assert final is not None
    wins = sum(w for w, _ in results)
    conflicts = sum(c for _, c in results)
    print(f"200 increments: {conflicts} conflicts, {time.monotonic() - started:.1f} s")
    assert wins == 200
    assert int(final.data) == 200, (
        f"{200 - int(final.data)} of 200 successful conditional PUTs were lost: the server's"
        " If-Match check and write are not atomic (moto's are not locked)"
    )


def test_s3_missing_bucket_is_an_error(s3_repo_url: str) -> None:
    store = FsspecStore.from_url(f"s3://aoe-missing-{secrets.token_hex(6)}/repo")
    try:
        with pytest.raises(StoreError, match="reading"):
            store.read(MANIFEST, max_bytes=100)
    finally:
        store.close()


def test_unsupported_scheme_reads_but_refuses_to_publish(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / MANIFEST).write_bytes(b"{}")
    store = FsspecStore.from_url(f"file://{tmp_path}/repo")
    stored = store.read(MANIFEST, max_bytes=100)
    assert stored is not None
    assert stored.data == b"{}"
    with pytest.raises(StoreError, match=r"compare-and-swap publishing to file:// .*s3://"):
        store.replace(MANIFEST, b"{}", expected=stored.token)
    with pytest.raises(StoreError, match="not supported"):
        store.put_blob(bundle_name("ab" * 32), tmp_path / "x", sha256="ab" * 32, size=1)
    store.close()


@pytest.mark.parametrize("name", ["../root.json", "/root.json", "a//b", "a/./b", "a\\b", ""])
def test_unsafe_names_are_refused(memory_store: FsspecStore, name: str) -> None:
    with pytest.raises(StoreError, match="unsafe"):
        memory_store.read(name, max_bytes=10)


@pytest.mark.parametrize("url", ["bucket/repo", "nosuchscheme://x/y", "s3://"])
def test_bad_urls(url: str) -> None:
    with pytest.raises(UsageError):
        FsspecStore.from_url(url)


def test_s3_unchanged_document_is_not_sent_again(
    s3_store: FsspecStore, s3_server: S3Server
) -> None:
    """GetObject with IfNoneMatch: moto answers 304 without a body, as S3 does."""
    s3_store.replace(MANIFEST, b"v1" * 1000, expected=None)
    first = s3_store.read(MANIFEST, max_bytes=10_000)
    assert first is not None
    got = s3_store.read_if_changed(MANIFEST, max_bytes=10_000, known=first.revalidation)
    assert got == NotModified(first.revalidation)
    assert isinstance(s3_store, ConditionalStore)
    key = s3_store._path(MANIFEST).split("/", 1)[1]
    for _ in range(50):  # the server logs a request after answering it
        if re.search(rf'"GET /[^ ]*{re.escape(key)} HTTP/1.1" 304', s3_server.log.read_text()):
            break
        time.sleep(0.05)
    else:
        pytest.fail("moto logged no 304 for the conditional GetObject")

    token = s3_store.replace(MANIFEST, b"v2", expected=first.token)
    changed = s3_store.read_if_changed(MANIFEST, max_bytes=10_000, known=first.revalidation)
    assert isinstance(changed, Stored)
    assert (changed.data, changed.token) == (b"v2", token)
    assert (
        s3_store.read_if_changed("roots/9.root.json", max_bytes=10, known=first.revalidation)
        is None
    )
    with pytest.raises(DownloadTooLargeError):
        s3_store.read_if_changed(MANIFEST, max_bytes=1, known=Validators(etag='"other"'))


def test_memory_read_if_changed_compares_tokens(memory_store: FsspecStore) -> None:
    token = memory_store.replace(MANIFEST, b"v1", expected=None)
    known = Validators(etag=token)
    assert memory_store.read_if_changed(MANIFEST, max_bytes=10, known=known) == NotModified(known)
    memory_store.replace(MANIFEST, b"v2", expected=token)
    changed = memory_store.read_if_changed(MANIFEST, max_bytes=10, known=known)
    assert isinstance(changed, Stored)
    assert changed.data == b"v2"
