"""A JVM check and an aoe-pack check of one state file wait for each other.

Java's ``FileChannel.lock`` takes a POSIX record lock and cannot take a
``flock``; aoe-pack takes both (aoe_pack/_io/locks.py), so each side sees the
other's. The Java side here is the lock the library's StateLock takes, in a JVM
of its own, as a device app or a desktop tool would hold it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from aoe_pack.client.state import held
from aoe_pack.errors import StateLockedError

JAVA_HOLDER = """
import java.io.RandomAccessFile;
import java.nio.channels.FileLock;

public class Holder {
  public static void main(String[] args) throws Exception {
    try (RandomAccessFile f = new RandomAccessFile(args[0], "rw")) {
      if (args[1].equals("hold")) {
        FileLock lock = f.getChannel().lock();
        System.out.println("ready");
        System.out.flush();
        System.in.read();
        lock.release();
      } else {
        System.out.println(f.getChannel().tryLock() == null ? "held-elsewhere" : "got-it");
      }
    }
  }
}
"""

# An OS facility, not a missing dependency: what this checks is POSIX's two kinds of
# file lock, flock and record locks, which do not see each other. Windows has one
# kind of byte-range lock, which msvcrt.locking and FileChannel.lock both take.
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX record locks")


def _java(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    source = tmp_path / "Holder.java"
    source.write_text(JAVA_HOLDER, encoding="utf-8")
    return subprocess.Popen(
        ["java", str(source), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_a_state_a_jvm_holds_is_state_locked_for_aoe_pack(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    holder = _java(tmp_path, str(tmp_path / "state.json.lock"), "hold")
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(StateLockedError) as caught, held(state, wait=0.2):
            pass
        assert caught.value.code == "state-locked"
    finally:
        holder.communicate("\n", timeout=60)
    with held(state, wait=0.2):  # the JVM let go: the next check goes on
        pass


def test_a_state_aoe_pack_holds_is_held_for_a_jvm(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with held(state):
        out, _ = _java(tmp_path, str(tmp_path / "state.json.lock"), "try").communicate(timeout=60)
    assert out.strip() == "held-elsewhere"
    out, _ = _java(tmp_path, str(tmp_path / "state.json.lock"), "try").communicate(timeout=60)
    assert out.strip() == "got-it"
