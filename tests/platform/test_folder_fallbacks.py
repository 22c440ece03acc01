"""Folder writes, reads, temporaries and their sweep, as on macOS and on Windows.

On Windows there are no directory descriptors, no ``O_NOFOLLOW``, no flock
and no uids: every entry is reached by path and checked before and after it is
opened, and a writer is proven alive by its open file, which Windows will not
remove (see ``_simulated``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from _skips import needs_symlinks

from aoe_pack._io import Folder, atomic_output, temporaries
from aoe_pack.errors import OutputError

STEM = "doc.json"


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_output_replaces_the_file_and_leaves_no_temporary(simulated: str, tmp_path: Path) -> None:
    with Folder(tmp_path) as folder:
        for data in (b"first\n", b"second\r\n\x1a end"):
            with folder.output(STEM) as fp:
                fp.write(data)
            assert folder.read(STEM, limit=100) == data
    assert _entries(tmp_path) == [STEM]


def _write_half_then_fail(folder: Folder) -> None:
    with folder.output(STEM) as fp:
        fp.write(b"half of the new")
        raise RuntimeError("disk on fire")


def test_output_failing_midway_keeps_the_old_file(simulated: str, tmp_path: Path) -> None:
    (tmp_path / STEM).write_bytes(b"old")
    with Folder(tmp_path) as folder, pytest.raises(RuntimeError, match="disk on fire"):
        _write_half_then_fail(folder)
    assert (tmp_path / STEM).read_bytes() == b"old"
    assert _entries(tmp_path) == [STEM]


@needs_symlinks
def test_output_replaces_a_planted_link_and_never_writes_through_it(
    simulated: str, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / STEM).symlink_to(victim)
    with atomic_output(out / STEM) as fp:
        fp.write(b"ours")
    assert victim.read_bytes() == b"precious"
    assert not (out / STEM).is_symlink()
    assert (out / STEM).read_bytes() == b"ours"


@needs_symlinks
def test_create_refuses_a_dangling_link_and_creates_nothing_behind_it(
    simulated: str, tmp_path: Path
) -> None:
    target = tmp_path / "created-elsewhere"
    out = tmp_path / "out"
    out.mkdir()
    (out / STEM).symlink_to(target)
    with Folder(out) as folder, pytest.raises(FileExistsError):
        folder.create(STEM)
    assert not target.exists()


@pytest.mark.parametrize("planted", [pytest.param("symlink", marks=needs_symlinks), "hard link"])
def test_open_file_takes_no_link_for_our_file(simulated: str, planted: str, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(b"theirs")
    out = tmp_path / "out"
    out.mkdir()
    if planted == "symlink":
        (out / STEM).symlink_to(elsewhere)
    else:
        os.link(elsewhere, out / STEM)
    with Folder(out) as folder:
        assert folder.open_file(STEM) is None
        assert folder.read(STEM, limit=100) is None


@needs_symlinks
def test_folder_swapped_for_a_link_is_refused_before_anything_is_written(
    simulated: str, tmp_path: Path
) -> None:
    """With directory descriptors (macOS) the writes stay in the folder first opened;
    by path (Windows) the swap is noticed after the open, and the write refused."""
    out, moved, elsewhere = tmp_path / "out", tmp_path / "moved", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    with Folder(out) as folder:
        out.rename(moved)
        out.symlink_to(elsewhere, target_is_directory=True)
        if simulated == "windows":
            with pytest.raises(OutputError, match=r"[/\\]out was replaced while in use"):
                folder.create(STEM)
            # Opened, found out, closed: an empty file is all that reaches the other folder.
            assert [p.read_bytes() for p in elsewhere.iterdir()] == [b""]
        else:
            os.close(folder.create(STEM))
            assert _entries(moved) == [STEM]
            assert list(elsewhere.iterdir()) == []


def test_sweep_spares_a_live_writers_temp_file_and_removes_a_dead_ones(
    simulated: str, tmp_path: Path
) -> None:
    with Folder(tmp_path) as writer, Folder(tmp_path) as sweeper:
        live_fd, live = writer.temp_file(STEM)
        dead_fd, dead = writer.temp_file(STEM)
        os.close(dead_fd)  # its writer died
        if simulated == "windows":  # closed just now: perhaps about to be renamed
            assert sweeper.sweep(STEM) == []
            past = time.time() - temporaries.CLOSED_GRACE - 1
            for name in (live, dead):  # the live one is held by its open file alone
                os.utime(tmp_path / name, (past, past))
        assert sweeper.sweep(STEM) == [dead]
        assert _entries(tmp_path) == [live]
        os.close(live_fd)


def test_sweep_spares_a_live_writers_temp_folder_and_removes_a_dead_ones(
    simulated: str, tmp_path: Path
) -> None:
    """A killed writer never calls release(): only its descriptor closes."""
    with Folder(tmp_path) as writer, Folder(tmp_path) as sweeper:
        live_fd, live = writer.temp_folder("model")
        dead_fd, dead = writer.temp_folder("model")
        (tmp_path / dead / "half.bin").write_bytes(b"half")
        os.close(dead_fd)
        swept = sweeper.sweep("model")
        assert dead in swept
        assert _entries(tmp_path) == sorted(
            [live, live.replace(".partial", ".held")] if simulated == "windows" else [live]
        )
        writer.release(live_fd, live)
        assert _entries(tmp_path) == [live]  # released, and the folder kept for its owner


def test_released_temp_folder_renamed_into_place_leaves_nothing_else(
    simulated: str, tmp_path: Path
) -> None:
    with Folder(tmp_path) as folder:
        fd, staging = folder.temp_folder("model")
        (tmp_path / staging / "weights.bin").write_bytes(b"w")
        folder.replace(staging, "model")
        folder.release(fd, staging)
        folder.fsync()
    assert _entries(tmp_path) == ["model"]
    assert (tmp_path / "model" / "weights.bin").read_bytes() == b"w"
