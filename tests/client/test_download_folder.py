"""What ``client check --download DIR`` writes, attacked through DIR itself.

Whoever can write into the download folder (another app, another user, a
compromised helper) plants links and files under the names the client uses:
the resume sidecar, the partial file, the bundle, the unpacked folder. No
write may follow such a link or land outside the folder, nothing may be
deleted through one, and a failure leaves nothing behind.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _killed import blocked_child, sigkill
from _reindex import reindex
from _server_http import HttpServer
from _skips import needs_posix_modes, needs_symlinks

from aoe_pack._crypto.asymmetric import PrivateKey
from aoe_pack._io import Folder, temporaries
from aoe_pack.client import install
from aoe_pack.client.check import CheckResult, check
from aoe_pack.client.decide import Device
from aoe_pack.errors import BundleMismatchError, OutputError
from aoe_pack.publish import releases
from aoe_pack.publish.workflow import init_repository
from aoe_pack.repository import envelope
from aoe_pack.storage.http import HttpStore
from aoe_pack.storage.local import LocalStore
from aoe_pack.storage.store import MANIFEST, ROOT, Store

TAG, VERSION = "tag_x", "1.1.0"
FILES = {"model.tflite": os.urandom(3000), "labels.txt": b"a\nb\n"}

# Another process's lock on a temporary is a flock (fcntl), which Windows lacks.
needs_flock = pytest.mark.skipif(
    importlib.util.find_spec("fcntl") is None, reason="no flock here (Windows)"
)
# Another user's file is planted by root, with uids, which Windows lacks.
needs_root = pytest.mark.skipif(
    getattr(os, "geteuid", lambda: None)() != 0, reason="planting another user's file needs root"
)


@dataclass(frozen=True)
class Served:
    """A folder repository with one release of TAG, served over HTTP too."""

    server: HttpServer
    bundle_url: str  # relative to the repository
    downloads: Path
    state: Path
    outside: Path  # where planted links point: nothing may appear or change there

    @property
    def folder(self) -> LocalStore:
        return LocalStore(self.server.root)

    @property
    def http(self) -> HttpStore:
        return HttpStore(self.server.url)

    @property
    def bundle(self) -> Path:
        return self.downloads / f"{TAG}-{VERSION}.aoe"

    @property
    def unpacked(self) -> Path:
        return self.downloads / f"{TAG}-{VERSION}"

    def check(self, store: Store) -> CheckResult:
        device = Device(
            device_id="phone-1",
            app_version="1.0.0",
            runtimes=frozenset({"tflite"}),
            local_version="1.0.0",
        )
        return check(
            store,
            tag=TAG,
            device=device,
            trusted_root=(self.server.root / ROOT).read_bytes(),
            state_path=self.state,
            download_dir=self.downloads,
        )


@pytest.fixture
def served(
    http_server: HttpServer, built_bundle: Any, signer: PrivateKey, tmp_path: Path
) -> Served:
    store = LocalStore(http_server.root)
    init_repository(store, root_keys=[signer.public], threshold=1, sign_keys=[signer])
    _, added = releases.publish(
        store, [built_bundle(FILES, tag=TAG, version=VERSION)], sign_keys=[signer]
    )
    outside = tmp_path / "outside"
    outside.mkdir()
    return Served(
        http_server, added[0][1].url, tmp_path / "models", tmp_path / "state.json", outside
    )


def _assert_installed(served: Served, result: CheckResult) -> None:
    assert result.bundle == served.bundle
    assert result.unpacked == served.unpacked
    assert not served.bundle.is_symlink()
    for name, data in FILES.items():
        assert (served.unpacked / name).read_bytes() == data
    assert sorted(p.name for p in served.downloads.iterdir()) == [
        served.unpacked.name,
        served.bundle.name,
    ]


def _assert_installed_with(served: Served, result: CheckResult, others: list[str]) -> None:
    """Installed, and the folder holds ``others`` too."""
    assert result.unpacked == served.unpacked
    for name, data in FILES.items():
        assert (served.unpacked / name).read_bytes() == data
    assert sorted(p.name for p in served.downloads.iterdir()) == sorted(
        [*others, served.unpacked.name, served.bundle.name]
    )


# --- Defect 1: writes under --download never follow a link -----------------------------


@needs_symlinks
def test_sidecar_symlink_is_not_followed(served: Served) -> None:
    victim = served.outside / "victim"
    victim.write_bytes(b"precious")
    served.downloads.mkdir()
    sidecar = served.bundle.with_name(served.bundle.name + ".part.json")
    sidecar.symlink_to(victim)

    _assert_installed(served, served.check(served.http))
    assert victim.read_bytes() == b"precious"


@needs_symlinks
def test_part_symlink_is_not_appended_through(served: Served, tmp_path: Path) -> None:
    """A sidecar that names the right URL and validator makes the client resume the link."""
    victim = served.outside / "victim"
    victim.write_bytes(b"precious")
    served.downloads.mkdir()
    st = (served.server.root / served.bundle_url).stat()
    part = served.bundle.with_name(served.bundle.name + ".part")
    part.symlink_to(victim)
    sidecar = {
        "url": served.server.url_for(served.bundle_url),
        "validator": f'"{st.st_size:x}-{st.st_mtime_ns:x}"',
        "expected_size": None,
    }
    part.with_name(part.name + ".json").write_text(json.dumps(sidecar))

    _assert_installed(served, served.check(served.http))
    assert victim.read_bytes() == b"precious"


@needs_symlinks
def test_dangling_symlink_at_bundle_name_is_not_followed(served: Served) -> None:
    """From a folder repository the copy used to create the link's target."""
    victim = served.outside / "created"
    served.downloads.mkdir()
    served.bundle.symlink_to(victim)

    _assert_installed(served, served.check(served.folder))
    assert not victim.exists()
    assert not victim.is_symlink()


# --- Defect 2: what sits where the unpacked folder goes --------------------------------


@needs_symlinks
def test_link_at_unpacked_folder_is_refused_not_deleted_through(served: Served) -> None:
    (served.outside / "keep").write_bytes(b"precious")
    served.downloads.mkdir()
    served.unpacked.symlink_to(served.outside, target_is_directory=True)
    with pytest.raises(OutputError, match=r"tag_x-1\.1\.0 is a symbolic link; refusing to replace"):
        served.check(served.folder)
    assert served.unpacked.is_symlink()
    assert (served.outside / "keep").read_bytes() == b"precious"
    assert list(served.downloads.iterdir()) == [served.unpacked]  # refused before downloading


def test_file_at_unpacked_folder_is_refused_not_deleted(served: Served) -> None:
    served.downloads.mkdir()
    served.unpacked.write_bytes(b"the user's file")
    with pytest.raises(OutputError, match=r"tag_x-1\.1\.0 is a file, not a folder; refusing"):
        served.check(served.folder)
    assert served.unpacked.read_bytes() == b"the user's file"
    assert list(served.downloads.iterdir()) == [served.unpacked]


# --- Defect 6: nothing left behind after a failure -------------------------------------


def test_bundle_with_wrong_tag_leaves_no_partial_folder(
    served: Served, built_bundle: Any, signer: PrivateKey
) -> None:
    """The manifest (validly signed) offers tag_y's bundle as tag_x 1.1.0."""
    store = served.folder
    _, added = releases.publish(
        store, [built_bundle(FILES, tag="tag_y", version=VERSION)], sign_keys=[signer]
    )
    other = added[0][1]
    doc = store.read(MANIFEST, max_bytes=1 << 20)
    assert doc is not None
    manifest = json.loads(base64.b64decode(json.loads(doc.data)["payload"]))
    release = manifest["models"][TAG]["releases"][0]
    release.update(url=other.url, sha256=other.sha256, size=other.size)
    manifest["version"] += 1
    forged = envelope.sign(envelope.MANIFEST_TYPE, manifest, [signer]).to_bytes()
    store.replace(MANIFEST, forged, expected=doc.token)
    reindex(store, [signer])

    with pytest.raises(BundleMismatchError, match=r"the bundle says it is tag_y 1\.1\.0"):
        served.check(store)
    assert list(served.downloads.iterdir()) == []


# Runs a real check from a folder repository and stops inside the unpack.
_CHECKER = """
import sys, time
from pathlib import Path
import aoe_pack.bundle.unpack as unpack
from aoe_pack.client.check import check
from aoe_pack.client.decide import Device
from aoe_pack.storage.local import LocalStore

def stuck(*args, **kwargs):
    print("ready", flush=True)
    time.sleep(600)

unpack.stream_payload = stuck
repo, root, state, downloads = map(Path, sys.argv[1:])
device = Device(device_id="phone-1", app_version="1.0.0", runtimes=frozenset({"tflite"}),
                local_version="1.0.0")
check(LocalStore(repo), tag="tag_x", device=device, trusted_root=root.read_bytes(),
      state_path=state, download_dir=downloads)
"""


def test_staging_folder_of_a_killed_check_is_removed_by_the_next_check(served: Served) -> None:
    """A live check's staging folder is left alone; a killed one's goes with the next check."""
    root = served.server.root
    args = (root, root / ROOT, served.state.with_name("child-state.json"), served.downloads)
    with blocked_child(_CHECKER, *map(str, args)) as child:
        staging = sorted(served.downloads.glob(".tag_x-1.1.0.*.partial"))
        assert len(staging) == 1
        assert staging[0].is_dir()
        served.check(served.folder)
        assert sorted(served.downloads.glob(".tag_x-1.1.0.*.partial")) == staging
        sigkill(child)
    _assert_installed(served, served.check(served.folder))


# --- Temporaries another process locks first -------------------------------------------


@contextlib.contextmanager
def _racer(monkeypatch: pytest.MonkeyPatch, wins: int) -> Iterator[list[str]]:
    """Lock the first ``wins`` new temporaries between their creation and their writer's lock.

    What a neighbour watching the folder (inotify) does: it opens each new
    ``*.partial`` and takes its lock first. flock locks belong to open files,
    so a second open in this process stands for that neighbour. Yields the
    names it locked; the locks are released on the way out.
    """
    fcntl = importlib.import_module("fcntl")
    real = temporaries._temp
    held: list[int] = []
    names: list[str] = []

    def temp(folder: Folder, stem: str, make: Callable[[str], tuple[int, str]]) -> Any:
        def make_and_race(name: str) -> tuple[int, str]:
            made = make(name)
            if len(names) < wins:
                held.append(os.open(folder.path / name, os.O_RDONLY))
                fcntl.flock(held[-1], fcntl.LOCK_EX)
                names.append(name)
            return made

        return real(folder, stem, make_and_race)

    monkeypatch.setattr(temporaries, "_temp", temp)
    yield names
    # Released only after a pass: a writer still waiting on one after a failure
    # would otherwise go on in a folder already closed.
    for fd in held:
        os.close(fd)


def _within(seconds: float, call: Callable[[], object]) -> object:
    """``call()``'s result or exception, failing the test if it still runs after ``seconds``."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as e:  # noqa: BLE001 - handed back to the test
            outcome.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still waiting after {seconds} s"
    return outcome[0]


def _make_temp(folder: Folder, kind: str) -> tuple[int, str]:
    return folder.temp_file("tag_x-1.1.0.aoe") if kind == "file" else folder.temp_folder("x")


@needs_flock
@pytest.mark.parametrize("kind", ["file", "folder"])
def test_temporary_locked_first_by_another_is_given_up_for_a_new_name(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer used to wait for its own lock: as long as the neighbour held it."""
    with Folder(tmp_path) as folder, _racer(monkeypatch, wins=1) as raced:
        got = _within(5, lambda: _make_temp(folder, kind))
        assert isinstance(got, tuple), got
        fd, name = got
        os.close(fd)
        assert len(raced) == 1
        assert name != raced[0]
        assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # the raced one is removed


@needs_flock
@pytest.mark.parametrize("kind", ["file", "folder"])
def test_every_temporary_locked_first_by_another_is_a_named_error(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Folder(tmp_path) as folder, _racer(monkeypatch, wins=1000) as raced:
        got = _within(5, lambda: _make_temp(folder, kind))
        assert isinstance(got, OutputError), got
        assert got.message.startswith(f"cannot create a temporary entry for {tmp_path}/")
        assert got.message.endswith("another process holds the lock of every new one")
        assert len(raced) == 16
        assert list(tmp_path.iterdir()) == []


# --- Errors of the download folder itself ------------------------------------------------


@contextlib.contextmanager
def _frozen(path: Path) -> Iterator[None]:
    """No entry can be added to or removed from the folder ``path`` meanwhile.

    A user's folder without write permission; root writes through permissions,
    so there the immutable attribute stands in (skipped where it cannot be set).
    """
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", path], check=False).returncode:
        pytest.skip("root writes through permissions, and the immutable attribute is unavailable")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", path], check=True)


@needs_posix_modes  # Windows' read-only flag on a folder keeps no entry out
def test_download_folder_without_room_for_the_staging_folder_is_a_named_error(
    served: Served,
) -> None:
    """The kept bundle needs no download; creating the staging folder then fails."""
    served.check(served.folder)
    with _frozen(served.downloads), pytest.raises(OutputError) as err:
        served.check(served.folder)
    assert err.value.message.startswith(f"cannot create a temporary entry for {served.unpacked}: ")


# --- What the sweep of dead writers' temporaries may remove --------------------------------

_PLANTED = ".tag_x-1.1.0.0123abcd.partial"  # the name of a staging folder of the unpack


@needs_root
def test_sweep_leaves_another_users_temporaries(served: Served) -> None:
    """Nobody holds its lock, so it looked dead; but it is not ours to remove."""
    served.downloads.mkdir()
    planted = served.downloads / _PLANTED
    planted.mkdir()
    (planted / "theirs").write_bytes(b"precious")
    for path in (planted / "theirs", planted):
        os.chown(path, 65534, 65534)

    _assert_installed_with(served, served.check(served.folder), [_PLANTED])
    assert (planted / "theirs").read_bytes() == b"precious"


@needs_posix_modes  # Windows' read-only flag on a folder keeps no entry in
def test_undeletable_temporary_does_not_fail_later_checks(served: Served) -> None:
    """A dead writer's temporary whose removal fails is left; the check goes on."""
    served.downloads.mkdir()
    planted = served.downloads / _PLANTED
    planted.mkdir()
    (planted / "stuck").write_bytes(b"")
    with _frozen(planted):
        _assert_installed_with(served, served.check(served.folder), [_PLANTED])
        _assert_installed_with(served, served.check(served.folder), [_PLANTED])
        assert (planted / "stuck").exists()


def _descend(fd: int, name: str) -> int:
    """The folder ``name`` in the open folder ``fd``, opened; ``fd`` closed."""
    try:
        return os.open(name, os.O_RDONLY, dir_fd=fd)
    finally:
        os.close(fd)


# The tree is deeper than a path can name: it is built and removed by descriptor.
@pytest.mark.skipif(os.mkdir not in os.supports_dir_fd, reason="no dir_fd here (Windows)")
def test_temporary_too_deep_to_remove_does_not_fail_later_checks(served: Served) -> None:
    """shutil.rmtree recurses once per level: a deep enough tree raises RecursionError."""
    served.downloads.mkdir()
    planted = served.downloads / _PLANTED
    planted.mkdir()
    depth = sys.getrecursionlimit() + 100
    fd = os.open(planted, os.O_RDONLY)
    for _ in range(depth):  # one descriptor open at a time: macOS allows 256 by default
        os.mkdir("d", dir_fd=fd)
        fd = _descend(fd, "d")
    os.close(fd)
    try:
        _assert_installed_with(served, served.check(served.folder), [_PLANTED])
    finally:  # deepest first: pytest's own rmtree would recurse
        fd = os.open(planted, os.O_RDONLY)
        for _ in range(depth - 1):
            fd = _descend(fd, "d")
        for _ in range(depth):
            os.rmdir("d", dir_fd=fd)
            fd = _descend(fd, "..")
        os.close(fd)


# --- Files in the download folder that are not only ours --------------------------------


def _plant_resume(served: Served) -> tuple[Path, Path]:
    """The sidecar that makes the next check resume ``.part``: the right URL and validator."""
    served.downloads.mkdir(exist_ok=True)
    st = (served.server.root / served.bundle_url).stat()
    sidecar = {
        "url": served.server.url_for(served.bundle_url),
        "validator": f'"{st.st_size:x}-{st.st_mtime_ns:x}"',
        "expected_size": None,
    }
    part = served.bundle.with_name(served.bundle.name + ".part")
    meta = part.with_name(part.name + ".json")
    meta.write_text(json.dumps(sidecar))
    return part, meta


def _bundle_requests(served: Served) -> list[str | None]:
    """The Range header of every request for the bundle (None: the whole file)."""
    return [r for _, path, r in served.server.requests if path == served.bundle_url]


def _prefix(served: Served) -> bytes:
    """What an interrupted download of the bundle had written: a resume of it succeeds."""
    return (served.server.root / served.bundle_url).read_bytes()[:1000]


def test_part_hard_link_is_not_appended_through(served: Served) -> None:
    """A neighbour hard-links .part to a file elsewhere: the resume appended the bundle to it."""
    victim = served.outside / "victim"
    victim.write_bytes(b"precious")
    part, _ = _plant_resume(served)
    os.link(victim, part)

    _assert_installed(served, served.check(served.http))
    assert victim.read_bytes() == b"precious"
    assert victim.stat().st_nlink == 1  # only our link to it was removed
    assert _bundle_requests(served) == [None]


@needs_root
def test_part_of_another_user_is_not_appended_to(served: Served) -> None:
    part, _ = _plant_resume(served)
    part.write_bytes(_prefix(served))
    os.chown(part, 65534, 65534)

    _assert_installed(served, served.check(served.http))
    assert _bundle_requests(served) == [None]


def test_hard_linked_sidecar_is_not_trusted(served: Served) -> None:
    """Its other name lets someone else rewrite what the next resume asks for."""
    part, meta = _plant_resume(served)
    part.write_bytes(_prefix(served))
    elsewhere = served.outside / "sidecar"
    os.link(meta, elsewhere)

    _assert_installed(served, served.check(served.http))
    assert _bundle_requests(served) == [None]
    assert json.loads(elsewhere.read_bytes())["url"].endswith(served.bundle_url)


@needs_root
def test_sidecar_of_another_user_is_not_trusted(served: Served) -> None:
    part, meta = _plant_resume(served)
    part.write_bytes(_prefix(served))
    os.chown(meta, 65534, 65534)

    _assert_installed(served, served.check(served.http))
    assert _bundle_requests(served) == [None]


def test_sidecar_nested_too_deep_restarts_the_download(served: Served) -> None:
    """json.loads raised RecursionError, which the resume did not expect."""
    part, meta = _plant_resume(served)
    part.write_bytes(_prefix(served))
    meta.write_bytes(b"[" * 60_000)

    _assert_installed(served, served.check(served.http))
    assert _bundle_requests(served) == [None]


def test_hard_linked_bundle_is_downloaded_again(served: Served) -> None:
    """The right bytes, but under a second name elsewhere: changeable after they were checked."""
    served.check(served.http)
    elsewhere = served.outside / "bundle"
    os.link(served.bundle, elsewhere)

    _assert_installed(served, served.check(served.http))
    assert _bundle_requests(served) == [None, None]
    assert elsewhere.stat().st_nlink == 1


@needs_root
def test_bundle_of_another_user_is_downloaded_again(served: Served) -> None:
    """The right bytes, but someone else's file: theirs to change after they were checked."""
    served.check(served.http)
    os.chown(served.bundle, 65534, 65534)

    _assert_installed(served, served.check(served.http))
    assert _bundle_requests(served) == [None, None]
    assert served.bundle.stat().st_uid == os.geteuid()


def test_unreadable_bundle_is_downloaded_again(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file under the bundle's name that the OS will not open for us: PermissionError.

    Root reads through permission bits, so the kernel's refusal (what a user
    gets for a file of mode 000) is injected for that one file. Windows has no
    mode 000 (chmod there sets a read-only flag, which stops replacing the
    file, not reading it); a file another program holds open refuses us there.
    """
    served.downloads.mkdir()
    served.bundle.write_bytes(b"not readable")
    if sys.platform != "win32":
        served.bundle.chmod(0)
    unreadable = served.bundle.stat().st_ino
    real = os.open

    def refusing(path: Any, flags: int, *args: Any, dir_fd: int | None = None) -> int:
        # Opened by name in the folder (dir_fd), or by its whole path (Windows).
        if (
            Path(path).name == served.bundle.name
            and unreadable == os.stat(path, dir_fd=dir_fd, follow_symlinks=False).st_ino
        ):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        return real(path, flags, *args, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", refusing)
    _assert_installed(served, served.check(served.http))
    assert _bundle_requests(served) == [None]


# The swap is a rename onto the bundle the check holds open, which Windows refuses.
@pytest.mark.skipif(sys.platform == "win32", reason="Windows renames nothing onto an open file")
def test_bundle_swapped_after_its_check_is_not_what_is_unpacked(
    served: Served, built_bundle: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unpack reopened the bundle by name after its SHA-256 was checked.

    Swapped in between: another build of the same release, signed by the same
    key, which the unpack's own checks accept. What is unpacked must be the
    bytes that were checked.
    """
    other = built_bundle(
        {"model.tflite": b"swapped", "labels.txt": b"x\n"}, tag=TAG, version=VERSION
    )
    real = install.check_bundle_matches

    def check_then_swap(release: Any, *, size: int, sha256: str) -> None:
        real(release, size=size, sha256=sha256)
        other.replace(served.bundle)

    monkeypatch.setattr(install, "check_bundle_matches", check_then_swap)
    result = served.check(served.http)
    for name, data in FILES.items():
        assert (result.unpacked / name).read_bytes() == data


def test_bundle_swapped_between_its_hashed_download_and_its_unpack_is_refused(
    served: Served, built_bundle: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A download hashed on the way in is then opened by name to be unpacked.

    Swapped in between (after the rename from ``.part``, before the open):
    another build of the same release, of the same size, signed by the same
    key, which the unpack's own checks accept. The file opened must be the one
    written and hashed.
    """
    other = built_bundle(
        {"model.tflite": os.urandom(3000), "labels.txt": b"x\ny\n"}, tag=TAG, version=VERSION
    )
    real = HttpStore.fetch_blob_hashed

    def fetch_then_swap(store: HttpStore, name: str, dest: Path, *, max_bytes: int) -> Any:
        got = real(store, name, dest, max_bytes=max_bytes)
        assert other.stat().st_size == dest.stat().st_size  # only the bytes differ
        other.replace(dest)
        return got

    monkeypatch.setattr(HttpStore, "fetch_blob_hashed", fetch_then_swap)
    with pytest.raises(OutputError) as caught:
        served.check(served.http)
    assert caught.value.message == (
        f"{served.bundle} is not the file that was downloaded and hashed: it was replaced "
        "since; refusing to unpack it"
    )
    assert sorted(p.name for p in served.downloads.iterdir()) == [served.bundle.name]
