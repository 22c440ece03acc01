"""The device's cache is reached without links and never blocks nor fails a check (§15.12).

Everything in ``<state>.cache/`` is opened through :class:`aoe_pack._io.Folder`:
a FIFO, a device or a link under a cache name is ignored (and replaced by the
next save), a cache folder or ``tags`` folder that is a link is neither read
nor written through nor pruned, and new folders are the user's alone (0700).
Each attack is planted in a cache a real check wrote, and a second check must
pass, leave what the plant led to untouched, and repair the cache.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import threading
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "repository"))
from _factories import release

from aoe_pack._crypto.asymmetric import PrivateKey
from aoe_pack._io import FileTooLargeError, Folder, read_capped
from aoe_pack._io.capped import read_upto
from aoe_pack.client.cache import DocumentCache
from aoe_pack.client.check import CheckResult, check
from aoe_pack.client.decide import Action, Device
from aoe_pack.publish.workflow import edit_manifest, init_repository
from aoe_pack.repository.limits import DEFAULT_LIMITS
from aoe_pack.repository.model import Manifest, ModelReleases, Models
from aoe_pack.storage.local import LocalStore
from aoe_pack.storage.store import ROOT, Validators

# An OS facility, not a missing dependency: Windows has no FIFOs (os.mkfifo) and
# symbolic links need a privilege there; every test without this mark runs everywhere.
posix = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX links and FIFOs")

DEVICE = Device(
    device_id="phone-1", app_version="1.0.0", runtimes=frozenset({"tflite"}), local_version="0.1.0"
)


class Repo:
    def __init__(self, tmp_path: Path, key: PrivateKey) -> None:
        self.key = key
        self.store = LocalStore(tmp_path / "repo")
        init_repository(self.store, root_keys=[key.public], threshold=1, sign_keys=[key])
        self.trusted_root = (tmp_path / "repo" / ROOT).read_bytes()
        self.state = tmp_path / "state.json"
        self.cache = tmp_path / "state.json.cache"

    def add(self, tag: str, version: str) -> None:
        def edit(m: Manifest) -> Models:
            have = m.models[tag].releases if tag in m.models else ()
            return m.models.updated(tag, ModelReleases(releases=(*have, release(version))))

        edit_manifest(self.store, edit, sign_keys=[self.key])

    def check(self) -> CheckResult:
        return check(
            self.store, tag="a", device=DEVICE, trusted_root=self.trusted_root,
            state_path=self.state,
        )  # fmt: skip

    def check_within(self, seconds: float) -> CheckResult:
        """A check in a thread: a blocked open() fails the test instead of hanging it."""
        done: list[CheckResult] = []
        worker = threading.Thread(target=lambda: done.append(self.check()), daemon=True)
        worker.start()
        worker.join(seconds)
        assert not worker.is_alive(), "the check blocked on the cache"
        return done[0]

    @property
    def cached(self) -> DocumentCache:
        return DocumentCache.beside(self.state)


@pytest.fixture
def repo(tmp_path: Path, signer: PrivateKey) -> Repo:
    r = Repo(tmp_path, signer)
    r.add("a", "1.0.0")  # version 2
    r.check()  # caches index.json and tags/a.json
    return r


def _moved_away(repo: Repo, name: str, tmp_path: Path) -> tuple[Path, bytes]:
    """Move the cache's ``name`` out of the cache: (where it went, its bytes)."""
    elsewhere = tmp_path / ("elsewhere-" + name.replace("/", "-"))
    (repo.cache / name).rename(elsewhere)
    return elsewhere, elsewhere.read_bytes()


def _is_plain_file(path: Path) -> bool:
    st = path.lstat()
    return stat.S_ISREG(st.st_mode) and st.st_nlink == 1


# --- links ------------------------------------------------------------------------------


@posix
def test_cache_index_that_is_a_symlink_is_ignored(repo: Repo, tmp_path: Path) -> None:
    target, good = _moved_away(repo, "index.json", tmp_path)
    (repo.cache / "index.json").symlink_to(target)  # a valid record, through a link
    assert repo.cached.index() is None
    assert repo.check_within(20).manifest_version == 2
    assert _is_plain_file(repo.cache / "index.json")  # replaced, not written through
    assert target.read_bytes() == good


@posix
def test_cache_tag_document_that_is_a_symlink_is_ignored(repo: Repo, tmp_path: Path) -> None:
    target, good = _moved_away(repo, "tags/a.json", tmp_path)
    (repo.cache / "tags" / "a.json").symlink_to(target)
    assert repo.cached.tag("a") is None
    assert repo.check_within(20).decision.action is Action.DOWNLOAD
    assert _is_plain_file(repo.cache / "tags" / "a.json")
    assert (repo.cache / "tags" / "a.json").read_bytes() == good == target.read_bytes()


@posix
def test_cache_link_to_dev_zero_is_ignored_and_replaced(repo: Repo) -> None:
    cached = repo.cache / "tags" / "a.json"
    good = cached.read_bytes()
    cached.unlink()
    cached.symlink_to("/dev/zero")
    assert repo.check_within(20).decision.action is Action.DOWNLOAD
    assert not cached.is_symlink()
    assert cached.read_bytes() == good


@posix
def test_cache_hard_link_is_ignored(repo: Repo, tmp_path: Path) -> None:
    # Whoever holds the other name could change the bytes between our checks.
    other = tmp_path / "other-name.json"
    os.link(repo.cache / "index.json", other)
    good = other.read_bytes()
    assert repo.cached.index() is None
    assert repo.check().manifest_version == 2
    assert _is_plain_file(repo.cache / "index.json")
    assert other.read_bytes() == good


@posix
def test_cache_tags_folder_that_is_a_link_is_neither_written_nor_pruned_through(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aoe_pack.client import cache

    monkeypatch.setattr(cache, "MAX_CACHED_TAGS", 1)
    victim = tmp_path / "other-app-data"
    victim.mkdir()
    for i in range(3):
        (victim / f"doc-{i}.json").write_text("{}")
    (victim / "a.json").write_bytes((repo.cache / "tags" / "a.json").read_bytes())
    for p in (repo.cache / "tags").iterdir():
        p.unlink()
    (repo.cache / "tags").rmdir()
    (repo.cache / "tags").symlink_to(victim)
    assert repo.cached.tag("a") is None  # a valid document, reached through a link
    repo.add("a", "1.1.0")  # a new document to cache: a save and a prune
    assert repo.check().decision.action is Action.DOWNLOAD
    assert sorted(p.name for p in victim.iterdir()) == [
        "a.json",
        "doc-0.json",
        "doc-1.json",
        "doc-2.json",
    ]
    tags = repo.cache / "tags"
    assert not tags.is_symlink()
    assert stat.S_IMODE(tags.stat().st_mode) == 0o700
    assert [p.name for p in tags.iterdir()] == ["a.json"]


@posix
def test_cache_folder_that_is_a_link_is_not_used_and_is_rebuilt(repo: Repo, tmp_path: Path) -> None:
    victim = tmp_path / "elsewhere"
    repo.cache.rename(victim)  # a valid cache, but reached through a link
    repo.cache.symlink_to(victim)
    assert repo.cached.index() is None
    assert repo.cached.tag("a") is None
    before = {p.name: p.read_bytes() for p in victim.rglob("*") if p.is_file()}
    repo.add("a", "1.1.0")
    assert repo.check().manifest_version == 3
    assert {p.name: p.read_bytes() for p in victim.rglob("*") if p.is_file()} == before
    assert not repo.cache.is_symlink()
    assert stat.S_IMODE(repo.cache.stat().st_mode) == 0o700
    assert sorted(p.name for p in repo.cache.iterdir()) == ["index.json", "tags"]


# --- FIFOs and devices ------------------------------------------------------------------


@posix
@pytest.mark.parametrize("name", ["index.json", "tags/a.json"])
def test_cache_fifo_does_not_block(repo: Repo, name: str) -> None:
    (repo.cache / name).unlink()
    os.mkfifo(repo.cache / name)
    assert repo.check_within(20).decision.action is Action.DOWNLOAD
    assert _is_plain_file(repo.cache / name)  # replaced by the save


@posix
def test_cache_fifo_swapped_in_after_the_lstat_does_not_block(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The lstat that keeps a FIFO from being opened at all is a step behind a
    # planter who swaps one in: the open itself must not wait for a writer.
    monkeypatch.setattr(Folder, "own_file", lambda self, name: self.lstat(name))
    (repo.cache / "index.json").unlink()
    os.mkfifo(repo.cache / "index.json")
    assert repo.check_within(20).manifest_version == 2
    assert _is_plain_file(repo.cache / "index.json")


@posix
def test_cache_folder_that_is_a_fifo_is_replaced(repo: Repo) -> None:
    shutil.rmtree(repo.cache)
    os.mkfifo(repo.cache)
    assert repo.cached.index() is None
    assert repo.check_within(20).manifest_version == 2
    assert stat.S_ISDIR(repo.cache.lstat().st_mode)
    assert repo.cached.index() is not None


# --- modes ------------------------------------------------------------------------------


@posix
def test_cache_folders_are_the_users_alone(repo: Repo) -> None:
    # Which tags a device checks is its own business; umask 022 must not publish it.
    assert stat.S_IMODE(repo.cache.stat().st_mode) == 0o700
    assert stat.S_IMODE((repo.cache / "tags").stat().st_mode) == 0o700
    for name in ("index.json", "tags/a.json"):
        assert stat.S_IMODE((repo.cache / name).stat().st_mode) == 0o600


# --- every failure reads as nothing cached ----------------------------------------------


@pytest.mark.parametrize(
    "record",
    [
        b"[]",
        b'"index"',
        b"[" * 100_000,
        b'{"envelope": 5}',
        b'{"envelope": "not base64!"}',
        b"\xff\xfe",
        b" " * (DEFAULT_LIMITS.max_index_bytes * 2),
    ],
    ids=["list", "string", "deep", "number", "not-base64", "binary", "huge"],
)
def test_cache_hostile_index_record_reads_as_nothing_cached(repo: Repo, record: bytes) -> None:
    good = (repo.cache / "index.json").read_bytes()
    (repo.cache / "index.json").write_bytes(record)
    assert repo.cached.index() is None
    assert repo.check().manifest_version == 2
    assert (repo.cache / "index.json").read_bytes() == good


def test_cache_validators_that_are_not_text_are_dropped(repo: Repo) -> None:
    record = json.loads((repo.cache / "index.json").read_bytes())
    odd = {**record, "etag": ["x"], "lastModified": "x" * 2000}
    (repo.cache / "index.json").write_text(json.dumps(odd))
    cached = repo.cached.index()
    assert cached is not None
    assert cached.validators == Validators()
    assert repo.check().manifest_version == 2


@pytest.mark.parametrize("method", ["subfolder", "read", "names", "output", "mkdir", "kind"])
def test_cache_file_system_errors_never_fail_a_check(
    repo: Repo, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    repo.add("a", "1.1.0")  # a new index and tag document to save
    if method == "mkdir":
        shutil.rmtree(repo.cache)
    real = getattr(Folder, method)
    failed: list[Path] = []

    def failing(self: Folder, *args: object, **kw: object) -> object:
        if repo.cache.name in self.path.parts or repo.cache.name in map(str, args):
            failed.append(self.path)
            raise OSError(5, "Input/output error")  # in the cache only: the state is saved
        return real(self, *args, **kw)

    monkeypatch.setattr(Folder, method, failing)
    assert repo.check().manifest_version == 3
    assert failed


def test_cache_in_a_state_folder_not_yet_made_creates_nothing(tmp_path: Path) -> None:
    cache = DocumentCache.beside(tmp_path / "missing" / "state.json")
    assert cache.index() is None
    assert cache.tag("a") is None
    assert not (tmp_path / "missing").exists()


# --- memory -----------------------------------------------------------------------------


def _peak(call: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


def test_read_capped_allocates_what_the_file_holds_not_the_cap(tmp_path: Path) -> None:
    small = tmp_path / "small.json"
    small.write_bytes(b"x" * 1024)
    assert _peak(lambda: read_capped(small, 32 << 20)) < 1 << 20  # was bytearray(cap + 1)
    assert read_capped(small, 32 << 20) == b"x" * 1024
    with pytest.raises(FileTooLargeError):
        read_capped(small, 1023)
    assert read_capped(small, 1024) == b"x" * 1024


class _Endless:
    """A file without end that counts what it is asked for."""

    def __init__(self) -> None:
        self.given = 0

    def read(self, size: int = -1, /) -> bytes:
        assert size > 0, "an unbounded read of an endless file"
        self.given += size
        return b"\0" * size


def test_read_capped_stops_reading_an_endless_file_one_byte_past_the_cap() -> None:
    endless = _Endless()
    cap = 5 << 20
    peak = _peak(lambda: read_upto(endless, cap + 1))
    assert endless.given == cap + 1
    assert peak < 2 * (cap + 1) + (1 << 20)  # the chunks, then the bytes joined


@posix
def test_read_capped_of_dev_zero_is_too_large() -> None:
    with pytest.raises(FileTooLargeError, match="holds more than 4096 bytes"):
        read_capped("/dev/zero", 4096)


def test_cache_read_costs_what_the_file_holds_not_the_cap(repo: Repo) -> None:
    assert DEFAULT_LIMITS.max_manifest_bytes >= 32 << 20
    assert _peak(lambda: repo.cached.tag("a")) < 1 << 20
    assert _peak(repo.cached.index) < 1 << 20
