"""Build, verify and unpack as on macOS and on Windows.

Windows has no ``os.pread`` (verify and unpack read chunks from many threads),
no directory descriptors or ``O_NOFOLLOW`` (unpack walks the output folder),
and a rename there never replaces (unpack places a file without overwriting
through it); some names there are devices or streams. macOS has no
``posix_fallocate``, ``fdatasync`` or ``posix_fadvise`` (build).
"""

from __future__ import annotations

import dataclasses
import errno
import os
import re
import sys
import threading
from pathlib import Path
from typing import Any

import _simulated
import pytest
from _skips import needs_symlinks

from aoe_pack._crypto.asymmetric import PrivateKey
from aoe_pack._io import Folder
from aoe_pack._io.pread import pread
from aoe_pack.bundle import EncryptionSpec, build_bundle, unpack_bundle, verify_bundle
from aoe_pack.bundle.build import as_is_payload
from aoe_pack.bundle.format import CHUNK_SIZE
from aoe_pack.errors import OutputError, UnsafeEntryError
from aoe_pack.keys.load import DecryptionKey

FILES = {
    "model.tflite": os.urandom(2 * CHUNK_SIZE + 12345),
    "labels.txt": b"cat\r\ndog\n\x1aend of text mode\n",
    "assets/vocab/words.bin": os.urandom(777),
}


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_build_verify_and_unpack_an_encrypted_bundle(
    simulated: str, built_bundle: Any, signer: PrivateKey, x25519_key: PrivateKey, tmp_path: Path
) -> None:
    bundle = built_bundle(FILES, recipients=[x25519_key.public])
    key = DecryptionKey(origin="test key", private=x25519_key)
    result = verify_bundle(bundle, trusted_keys=[signer.public], decryption_key=key)
    assert result.decrypted
    out = tmp_path / "out"
    unpack_bundle(bundle, out, trusted_keys=[signer.public], decryption_key=key)
    assert _tree(out) == FILES


@needs_symlinks
def test_unpack_replaces_a_planted_link_and_never_writes_through_it(
    simulated: str, built_bundle: Any, signer: PrivateKey, tmp_path: Path
) -> None:
    bundle = built_bundle(FILES)
    out, victim = tmp_path / "out", tmp_path / "victim"
    out.mkdir()
    victim.write_bytes(b"precious")
    (out / "labels.txt").symlink_to(victim)
    with pytest.raises(OutputError, match=r"labels\.txt already exists"):
        unpack_bundle(bundle, out, trusted_keys=[signer.public])
    unpack_bundle(bundle, out, trusted_keys=[signer.public], force=True)
    assert victim.read_bytes() == b"precious"
    assert _tree(out) == FILES


@needs_symlinks
def test_unpack_refuses_a_planted_link_to_a_folder(
    simulated: str, built_bundle: Any, signer: PrivateKey, tmp_path: Path
) -> None:
    bundle = built_bundle(FILES)
    out, outside = tmp_path / "out", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    (out / "assets").symlink_to(outside, target_is_directory=True)
    with pytest.raises(OutputError, match=r"cannot use 'assets' as an output folder: "):
        unpack_bundle(bundle, out, trusted_keys=[signer.public], force=True)
    assert list(outside.iterdir()) == []
    assert sorted(p.name for p in out.iterdir()) == ["assets"]


def test_unpack_never_overwrites_a_name_that_appears_while_it_runs(
    simulated: str,
    built_bundle: Any,
    signer: PrivateKey,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bundle = built_bundle(FILES)
    out = tmp_path / "out"
    real = Folder.rename_new

    def late_neighbour(folder: Folder, src: str, dst: str) -> None:
        if dst == "labels.txt":
            (folder.path / dst).write_bytes(b"the neighbour's")
        real(folder, src, dst)

    monkeypatch.setattr(Folder, "rename_new", late_neighbour)
    with pytest.raises(OutputError, match=r"labels\.txt appeared while unpacking"):
        unpack_bundle(bundle, out, trusted_keys=[signer.public])
    assert (out / "labels.txt").read_bytes() == b"the neighbour's"
    assert not list(out.rglob(".*.partial"))


def test_unpack_without_hard_links_renames_after_a_check(
    built_bundle: Any, signer: PrivateKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FAT and exFAT (an SD card, a USB stick) have no hard links, on any OS."""

    def no_links(*_: object, **__: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    bundle = built_bundle(FILES)
    monkeypatch.setattr(os, "link", no_links)
    unpack_bundle(bundle, tmp_path / "out", trusted_keys=[signer.public])
    assert _tree(tmp_path / "out") == FILES


WINDOWS_NAMES = {
    "aux.txt": "is a device there",
    "CON": "is a device there",
    "lpt1.bin": "is a device there",
    "com3": "is a device there",
    "model.bin:hidden": "is a stream of the file 'model.bin' there",
    "notes.": "Windows drops the dot or space that 'notes.' ends with",
    "space ": "Windows drops the dot or space that 'space ' ends with",
    "q?.txt": "holds a character Windows refuses",
}


def _bundle_holding(name: str, make_config: Any, signer: PrivateKey, out: Path) -> Path:
    """A bundle with ``sub/<name>``, packed from a file of a plain name: on Windows no
    file can have such a name to pack."""
    config = make_config({"model.tflite": b"m", "x.bin": b"x"})
    payload = [
        dataclasses.replace(p, path=f"sub/{name}") if p.path == "x.bin" else p
        for p in as_is_payload(config)
    ]
    build_bundle(config, out, signing_keys=[signer], encryption=EncryptionSpec(), payload=payload)
    return out


@_simulated.as_on_windows
@pytest.mark.parametrize("name", WINDOWS_NAMES)
def test_unpack_on_windows_refuses_device_stream_and_altered_names(
    name: str,
    make_config: Any,
    signer: PrivateKey,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bundle = _bundle_holding(name, make_config, signer, tmp_path / "names.aoe")
    _simulated.windows(monkeypatch)
    out = tmp_path / "out"
    message = f"refusing to write 'sub/{name}' on Windows: "
    with pytest.raises(UnsafeEntryError, match=re.escape(message)) as refused:
        unpack_bundle(bundle, out, trusted_keys=[signer.public])
    assert WINDOWS_NAMES[name] in refused.value.message
    assert _tree(out) == {}


# An OS limit, not a missing dependency: Windows itself reads CON, aux.txt and the
# like as devices, so there they are refused (the test above), never plain files.
@pytest.mark.skipif(sys.platform == "win32", reason="Windows reads these names otherwise")
def test_those_names_are_plain_files_elsewhere(
    built_bundle: Any, signer: PrivateKey, tmp_path: Path
) -> None:
    files = {"model.tflite": b"m", **{f"sub/{name}": name.encode() for name in WINDOWS_NAMES}}
    unpack_bundle(built_bundle(files), tmp_path / "out", trusted_keys=[signer.public])
    assert _tree(tmp_path / "out") == files


def test_pread_without_os_pread_reads_at_each_offset_and_keeps_the_position(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(1 << 16)
    (tmp_path / "f").write_bytes(data)
    monkeypatch.delattr(os, "pread", raising=False)  # Windows has none
    got: dict[int, bytes] = {}
    with (tmp_path / "f").open("rb") as f:
        f.seek(5)
        fd = f.fileno()

        def read(offset: int) -> None:
            got[offset] = pread(fd, 4096, offset)

        threads = [threading.Thread(target=read, args=(o,)) for o in range(0, 1 << 16, 4000)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert os.lseek(fd, 0, os.SEEK_CUR) == 5
        assert pread(fd, 100, len(data) - 10) == data[-10:]  # short only at the end
    assert got == {o: data[o : o + 4096] for o in got}
    assert len(got) == len(threads)
