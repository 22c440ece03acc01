"""The index never names an older manifest while it is still valid (§15.12).

When an edit cannot bring ``index.json`` to its manifest version (a tag
document name taken by other bytes, as after ``rotate-root
--restart-manifest-version``; a storage error after the commit), it retires the
index (devices then read ``manifest.json``), still syncs ``manifest.json.gz``,
and says so. An offline ceremony's install retires it before the manifest swap,
and again when a stopped install is applied a second time.
"""

from __future__ import annotations

import datetime as dt
import gzip
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "repository"))
from _cli import NO_PASSWORD, Cli
from _factories import release

from aoe_pack._crypto import asymmetric as keys
from aoe_pack._crypto.asymmetric import PrivateKey, private_pem
from aoe_pack.client.check import check
from aoe_pack.client.decide import Device
from aoe_pack.errors import ProposalStaleError, StoreError
from aoe_pack.publish import ceremony, releases
from aoe_pack.publish.workflow import (
    Commit,
    edit_manifest,
    init_repository,
    now_utc,
    read_state,
    rotate_root,
)
from aoe_pack.repository.model import Manifest, ModelReleases, Models
from aoe_pack.repository.proposal import parse_proposal
from aoe_pack.repository.split import verify_index
from aoe_pack.storage.local import LocalStore
from aoe_pack.storage.store import GZIP_SUFFIX, INDEX, MANIFEST, ROOT

aoe = Cli(env=NO_PASSWORD)
DEVICE = Device(
    device_id="phone-1",
    app_version="1.0.0",
    runtimes=frozenset({"tflite"}),
    local_version="0.1.0",
)


def _add(store: LocalStore, key: PrivateKey, tag: str, version: str) -> Commit:
    def edit(m: Manifest) -> Models:
        have = m.models[tag].releases if tag in m.models else ()
        return m.models.updated(tag, ModelReleases(releases=(*have, release(version))))

    return edit_manifest(store, edit, sign_keys=[key])


def _never_stale(store: LocalStore) -> None:
    """index.json is retired, or at the manifest's version; manifest.json.gz is current."""
    state = read_state(store)
    data = (store.root / INDEX).read_bytes()
    if data != b"":
        index = verify_index(data, state.root, now=now_utc()).index
        assert index.version == state.manifest.version
    packed = (store.root / (MANIFEST + GZIP_SUFFIX)).read_bytes()
    assert gzip.decompress(packed) == (store.root / MANIFEST).read_bytes()


@pytest.fixture
def folder(tmp_path: Path, repo_key: PrivateKey) -> LocalStore:
    s = LocalStore(tmp_path / "repo")
    init_repository(s, root_keys=[repo_key.public], threshold=1, sign_keys=[repo_key])
    for tag, version in [("a", "1.0.0"), ("b", "1.0.0"), ("a", "1.1.0"), ("b", "1.1.0")]:
        _add(s, repo_key, tag, version)  # manifest versions 2..5
    return s


def test_a_restarted_manifest_version_retires_the_index_and_says_why(
    folder: LocalStore, repo_key: PrivateKey, tmp_path: Path
) -> None:
    new_key = keys.generate(keys.KeyKind.ED25519)
    warnings: list[str] = []
    rotate_root(
        folder,
        new_keys=[new_key.public],
        threshold=1,
        sign_keys=[repo_key, new_key],
        restart_manifest_version=True,
        warn=warnings.append,
    )
    assert read_state(folder).manifest.version == 2
    assert (folder.root / INDEX).read_bytes() == b""  # not the old sequence's index 5
    assert len(warnings) == 1
    assert warnings[0].startswith("index.json not written (tags/")
    assert "restarted below earlier ones" in warnings[0]
    assert warnings[0].endswith("it is retired: devices read manifest.json")
    _never_stale(folder)
    commit = _add(folder, new_key, "a", "2.0.0")  # version 3: tags/a/3.json is taken
    assert commit.index is not None
    assert (commit.index.index, commit.index.retired) == (None, True)
    assert commit.index.to_dict() == {"written": False, "why": commit.index.reason}
    _never_stale(folder)
    state = tmp_path / "device.json"
    done = check(
        folder,
        tag="a",
        device=DEVICE,
        trusted_root=(folder.root / ROOT).read_bytes(),
        state_path=state,
    )
    assert done.manifest_version == 3  # the yank-carrying manifest.json, not index 5
    for version in ("2.1.0", "2.2.0", "2.3.0"):  # versions 4, 5, 6
        commit = _add(folder, new_key, "a", version)
        _never_stale(folder)
    assert commit.index is not None
    assert commit.index.index is not None
    assert commit.index.index.version == 6  # past the old names: written again
    assert commit.index.warning == ""


def test_a_storage_error_writing_the_index_retires_it(
    folder: LocalStore, repo_key: PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = LocalStore.replace

    def failing(self: LocalStore, name: str, data: bytes, *, expected: str | None) -> str:
        if name == INDEX and data != b"":
            raise StoreError("disk full")
        return real(self, name, data, expected=expected)

    monkeypatch.setattr(LocalStore, "replace", failing)
    with pytest.raises(StoreError, match="disk full") as info:
        _add(folder, repo_key, "a", "1.2.0")
    assert info.value.hint == (
        "manifest version 6 is committed, but index.json is retired (devices read "
        "manifest.json) until the next edit (`aoe-pack manifest resign` writes it)"
    )
    assert (folder.root / INDEX).read_bytes() == b""
    _never_stale(folder)


def test_publish_json_and_stderr_report_an_index_not_written(
    folder: LocalStore, repo_key: PrivateKey, tmp_path: Path
) -> None:
    key = tmp_path / "release.key"
    key.write_bytes(private_pem(repo_key, None))
    (folder.root / "tags/a/6.json").write_bytes(b"another writer's document")
    ran = aoe(
        "manifest", "yank", "--repo", folder.root, "a", "1.0.0", "--reason", "bad",
        "--sign-key", key, json=True,
    )  # fmt: skip
    doc = ran.expect()
    why = (
        "tags/a/6.json exists with other content (two writers at one version, tag names "
        "that differ only in case, or a manifest version restarted below earlier ones)"
    )
    assert doc["manifestVersion"] == 6
    assert doc["index"] == {"written": False, "why": why}
    assert f"warning: index.json not written ({why}); it is retired" in ran.stderr
    assert (folder.root / INDEX).read_bytes() == b""
    _never_stale(folder)
    written = aoe(
        "manifest", "resign", "--repo", folder.root, "--sign-key", key, json=True
    ).expect()
    assert written["index"] == {"written": True, "version": 7}


# --- an offline ceremony's install ------------------------------------------------------------


def _proposal(store: LocalStore, key: PrivateKey) -> Any:
    p = ceremony.prepare_edit(store, releases.resign_edit)
    p = parse_proposal(p.to_bytes(), what="proposal.json")
    p = ceremony.sign_proposal(p, key, trusted_root=p.base_root_bytes)
    return parse_proposal(p.to_bytes(), what="proposal.json")


def test_a_ceremony_install_retires_the_index_before_the_manifest_swap(
    folder: LocalStore, repo_key: PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    proposal = _proposal(folder, repo_key)
    seen: list[bytes] = []
    real = ceremony.swap_manifest

    def swap(*args: Any, **kwargs: Any) -> bool:
        seen.append((folder.root / INDEX).read_bytes())
        return real(*args, **kwargs)

    monkeypatch.setattr(ceremony, "swap_manifest", swap)
    ceremony.apply_proposal(folder, proposal)
    assert seen == [b""]
    _never_stale(folder)


def test_a_ceremony_install_stopped_after_the_manifest_retires_the_index_when_applied_again(
    folder: LocalStore, repo_key: PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    proposal = _proposal(folder, repo_key)
    index_5 = (folder.root / INDEX).read_bytes()
    real = ceremony.swap_manifest

    def power_cut(*args: Any, **kwargs: Any) -> bool:
        real(*args, **kwargs)
        # the state a stop between the swap and the retirement used to leave:
        (folder.root / INDEX).write_bytes(index_5)
        (folder.root / (MANIFEST + GZIP_SUFFIX)).write_bytes(b"stale")
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(ceremony, "swap_manifest", power_cut)
        with pytest.raises(KeyboardInterrupt):
            ceremony.apply_proposal(folder, proposal)
    assert read_state(folder).manifest.version == 6
    with pytest.raises(ProposalStaleError, match="this proposal is installed already"):
        ceremony.apply_proposal(folder, proposal, now=now_utc() + dt.timedelta(seconds=1))
    assert (folder.root / INDEX).read_bytes() == b""
    _never_stale(folder)
