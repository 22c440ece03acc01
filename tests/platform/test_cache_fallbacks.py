"""The device's document cache, as on macOS and on Windows (docs/format.md §15.12).

Without ``dir_fd`` and ``O_NOFOLLOW`` (Windows) the cache's entries are reached
by path, each checked with ``lstat`` before it is opened: a planted link is
still never read nor written through, and the cache still never fails a check.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "repository"))
from _factories import release

from aoe_pack._crypto.asymmetric import PrivateKey
from aoe_pack.client.cache import DocumentCache
from aoe_pack.client.check import CheckResult, check
from aoe_pack.client.decide import Device
from aoe_pack.publish.workflow import edit_manifest, init_repository
from aoe_pack.repository.model import Manifest, ModelReleases, Models
from aoe_pack.storage.local import LocalStore
from aoe_pack.storage.store import ROOT

# An OS facility, not a missing dependency: Windows has no FIFOs (os.mkfifo) and
# symbolic links need a privilege there; every test without this mark runs everywhere.
posix = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX links and FIFOs")

DEVICE = Device(
    device_id="phone-1", app_version="1.0.0", runtimes=frozenset({"tflite"}), local_version="0.1.0"
)


class Repo:
    def __init__(self, tmp_path: Path, key: PrivateKey) -> None:
        self.store = LocalStore(tmp_path / "repo")
        init_repository(self.store, root_keys=[key.public], threshold=1, sign_keys=[key])

        def edit(m: Manifest) -> Models:
            return m.models.updated("a", ModelReleases(releases=(release("1.0.0"),)))

        edit_manifest(self.store, edit, sign_keys=[key])
        self.trusted_root = (tmp_path / "repo" / ROOT).read_bytes()
        self.state = tmp_path / "state.json"
        self.cache = DocumentCache.beside(self.state)

    def check(self) -> CheckResult:
        return check(
            self.store, tag="a", device=DEVICE, trusted_root=self.trusted_root,
            state_path=self.state,
        )  # fmt: skip


@pytest.fixture
def repo(simulated: str, tmp_path: Path, signer: PrivateKey) -> Repo:
    r = Repo(tmp_path, signer)
    assert r.check().manifest_version == 2
    return r


def test_cache_is_written_then_read_back(repo: Repo) -> None:
    index, document = repo.cache.index(), repo.cache.tag("a")
    assert index is not None
    assert document is not None
    assert repo.check().manifest_version == 2
    assert repo.cache.index() == index
    assert repo.cache.tag("a") == document


@posix
def test_cache_index_that_is_a_link_is_ignored_and_replaced(repo: Repo, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    (repo.cache.folder / "index.json").rename(target)
    good = target.read_bytes()
    (repo.cache.folder / "index.json").symlink_to(target)
    assert repo.cache.index() is None
    assert repo.check().manifest_version == 2
    assert not (repo.cache.folder / "index.json").is_symlink()
    assert target.read_bytes() == good


@posix
def test_cache_folder_that_is_a_link_is_ignored_and_replaced(repo: Repo, tmp_path: Path) -> None:
    victim = tmp_path / "elsewhere"
    repo.cache.folder.rename(victim)
    repo.cache.folder.symlink_to(victim, target_is_directory=True)
    before = {p: p.read_bytes() for p in victim.rglob("*") if p.is_file()}
    assert repo.cache.index() is None
    assert repo.check().manifest_version == 2
    assert not repo.cache.folder.is_symlink()
    assert repo.cache.index() is not None
    assert {p: p.read_bytes() for p in victim.rglob("*") if p.is_file()} == before
