"""Publish to a folder and ``client check`` from it, as on macOS and on Windows.

The folder repository locks with ``flock``, which Windows lacks (``msvcrt``
instead), and fsyncs its folder, which Windows cannot open. Windows will not
rename onto a file a reader holds open. The download folder's staging folder
is swept by the next check only when its writer is gone. macOS and Windows
file systems mostly ignore case, so a name can find another tag's entry. A
check waits a bounded time for the device state that another check holds,
with ``msvcrt.locking`` where there is no ``flock``.
"""

from __future__ import annotations

import nturl2path
import os
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import _simulated
import pytest
from _skips import needs_case_sensitive_names

from aoe_pack._crypto.asymmetric import PrivateKey
from aoe_pack._io import Folder
from aoe_pack.client.check import CheckResult, check
from aoe_pack.client.decide import Device
from aoe_pack.client.state import held
from aoe_pack.errors import OutputError, StateLockedError, StoreError
from aoe_pack.publish import releases
from aoe_pack.publish.workflow import init_repository
from aoe_pack.storage.local import LocalStore
from aoe_pack.storage.open import open_store
from aoe_pack.storage.store import ROOT

TAG, VERSION = "tag_x", "1.1.0"
FILES = {"model.tflite": os.urandom(3000), "labels.txt": b"a\r\nb\n\x1a"}
INSTALLED = [f"{TAG}-{VERSION}", f"{TAG}-{VERSION}.aoe"]


def _publish(repo: Path, bundle: Path, signer: PrivateKey) -> LocalStore:
    store = LocalStore(repo)
    init_repository(store, root_keys=[signer.public], threshold=1, sign_keys=[signer])
    releases.publish(store, [bundle], sign_keys=[signer])
    return store


def _check(repo: Path, downloads: Path) -> CheckResult:
    device = Device(
        device_id="phone-1",
        app_version="1.0.0",
        runtimes=frozenset({"tflite"}),
        local_version="1.0.0",
    )
    return check(
        LocalStore(repo),
        tag=TAG,
        device=device,
        trusted_root=(repo / ROOT).read_bytes(),
        state_path=downloads.parent / "state.json",
        download_dir=downloads,
    )


def _assert_installed(downloads: Path, others: tuple[str, ...] = ()) -> None:
    assert sorted(p.name for p in downloads.iterdir()) == sorted([*INSTALLED, *others])
    for name, data in FILES.items():
        assert (downloads / INSTALLED[0] / name).read_bytes() == data


def test_publish_to_a_folder_then_check_installs_from_it(
    simulated: str, built_bundle: Any, signer: PrivateKey, tmp_path: Path
) -> None:
    repo, downloads = tmp_path / "repo", tmp_path / "models"
    _publish(repo, built_bundle(FILES, tag=TAG, version=VERSION), signer)
    result = _check(repo, downloads)
    assert result.unpacked == downloads / INSTALLED[0]
    _assert_installed(downloads)
    # The device still says 1.0.0: the kept bundle is used again and the first
    # install is renamed aside and replaced, with nothing left over.
    (downloads / INSTALLED[0] / "model.tflite").write_bytes(b"changed since")
    assert _check(repo, downloads).unpacked == downloads / INSTALLED[0]
    _assert_installed(downloads)
    if simulated == "windows" and _simulated.REAL != "windows":
        assert isinstance(sys.modules["msvcrt"], _simulated.FakeMsvcrt)
        assert sys.modules["msvcrt"].calls >= 1  # the repository's lock


def test_staging_folder_of_a_killed_check_is_swept_by_the_next_one(
    simulated: str, built_bundle: Any, signer: PrivateKey, tmp_path: Path
) -> None:
    """A killed check never releases its staging folder: only its descriptors close."""
    repo, downloads = tmp_path / "repo", tmp_path / "models"
    _publish(repo, built_bundle(FILES, tag=TAG, version=VERSION), signer)
    with Folder(downloads) as folder:
        fd, staging = folder.temp_folder(INSTALLED[0])
        (downloads / staging / "model.tflite").write_bytes(b"half")
        os.close(fd)
    _check(repo, downloads)
    _assert_installed(downloads)


def test_check_refuses_a_name_another_tag_has_where_case_is_ignored(
    built_bundle: Any, signer: PrivateKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, downloads = tmp_path / "repo", tmp_path / "models"
    _publish(repo, built_bundle(FILES, tag=TAG, version=VERSION), signer)
    other = downloads / INSTALLED[0].upper()
    other.mkdir(parents=True)
    (other / "model.tflite").write_bytes(b"another tag's model")
    _simulated.case_insensitive(monkeypatch)
    with pytest.raises(OutputError, match=rf"is '{other.name}' on this file system, which ig"):
        _check(repo, downloads)
    assert (other / "model.tflite").read_bytes() == b"another tag's model"
    assert sorted(p.name for p in downloads.iterdir()) == [other.name]


@needs_case_sensitive_names
def test_where_case_counts_both_tags_are_installed_side_by_side(
    built_bundle: Any, signer: PrivateKey, tmp_path: Path
) -> None:
    repo, downloads = tmp_path / "repo", tmp_path / "models"
    _publish(repo, built_bundle(FILES, tag=TAG, version=VERSION), signer)
    other = downloads / INSTALLED[0].upper()
    other.mkdir(parents=True)
    _check(repo, downloads)
    _assert_installed(downloads, (other.name,))


def _hold_open(path: Path, seconds: float) -> threading.Thread:
    """A reader that keeps ``path`` open for ``seconds`` (from now)."""
    opened = threading.Event()

    def read() -> None:
        with path.open("rb"):
            opened.set()
            time.sleep(seconds)

    reader = threading.Thread(target=read)
    reader.start()
    opened.wait()
    return reader


@_simulated.as_on_windows
def test_replacing_a_document_waits_for_its_reader_on_windows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(tmp_path)
    token = store.replace("doc.json", b"old", expected=None)
    _simulated.windows(monkeypatch)
    reader = _hold_open(tmp_path / "doc.json", 0.3)
    store.replace("doc.json", b"new", expected=token)
    reader.join()
    assert (tmp_path / "doc.json").read_bytes() == b"new"


@_simulated.as_on_windows
def test_a_reader_that_never_lets_go_fails_the_replace_on_windows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(tmp_path)
    token = store.replace("doc.json", b"old", expected=None)
    _simulated.windows(monkeypatch)
    reader = _hold_open(tmp_path / "doc.json", 5)
    with pytest.raises(OutputError, match=r"cannot write .*doc\.json: "):  # and the OS's reason
        store.replace("doc.json", b"new", expected=token)
    reader.join()
    assert (tmp_path / "doc.json").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".aoe-repo.lock", "doc.json"]


def test_a_check_waits_for_the_state_another_holds_then_gives_up(
    simulated: str, tmp_path: Path, built_bundle: Any, signer: PrivateKey
) -> None:
    repo, downloads = tmp_path / "repo", tmp_path / "downloads"
    _publish(repo, built_bundle(FILES, tag=TAG, version=VERSION), signer)
    state = downloads.parent / "state.json"
    with held(state), pytest.raises(StateLockedError, match=r"lock state\.json\.lock was still"):
        check(
            LocalStore(repo),
            tag=TAG,
            device=Device(
                device_id="d",
                app_version="1.0.0",
                runtimes=frozenset({"tflite"}),
                local_version="1.0.0",
            ),
            trusted_root=(repo / ROOT).read_bytes(),
            state_path=state,
            lock_wait=0.1,
        )
    _check(repo, downloads)  # released: the next check goes on
    _assert_installed(downloads)


@pytest.mark.parametrize("name", ["a\\b.json", "C:doc.json", "doc.json:stream", "a//b"])
def test_document_names_that_windows_reads_otherwise_are_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="outside the repository"):
        LocalStore(tmp_path).read(name, max_bytes=10)


def test_file_url_is_a_path_on_every_os(monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store("file:///srv/model%20repo")
    assert isinstance(store, LocalStore)
    assert store.root == Path("/srv/model repo")
    monkeypatch.setattr(urllib.request, "url2pathname", nturl2path.url2pathname)
    store = open_store("file:///C:/Models/model%20repo")
    assert isinstance(store, LocalStore)
    assert str(store.root) == "C:\\Models\\model repo"
