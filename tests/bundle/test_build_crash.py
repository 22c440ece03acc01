"""A build killed mid-write leaves a hidden temp file; the next build of the same output clears it.

Only a temp whose writer is provably dead goes: its writer holds a lock on it
for as long as it lives, which the kernel drops when the writer dies. A live
writer's temp, however old, is left alone. On Windows, which has no such
locks, the open file itself is the proof, and a closed temp is spared for
``CLOSED_GRACE`` after its last write (``aoe_pack/_io/temporaries.py``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from _killed import blocked_child, sigkill

from aoe_pack._crypto.asymmetric import PrivateKey
from aoe_pack._io import facilities, temporaries
from aoe_pack.bundle import EncryptionSpec, build_bundle

# Writes the output the way build does (atomic_output), then stops mid-write.
_WRITER = """
import sys, time
from pathlib import Path
from aoe_pack._io import atomic_output
with atomic_output(Path(sys.argv[1])) as out:
    out.write(b"the first half of a bundle")
    out.flush()
    print("ready", flush=True)
    time.sleep(600)
"""


def test_temp_of_a_killed_build_is_removed_by_the_next_build(
    make_config, signer: PrivateKey, tmp_path: Path
) -> None:
    out = tmp_path / "dist" / "model.aoe"

    def temps() -> list[Path]:
        return sorted(out.parent.glob(".model.aoe.*.partial"))

    def build() -> None:
        build_bundle(make_config(), out, signing_keys=[signer], encryption=EncryptionSpec())

    with blocked_child(_WRITER, str(out)) as child:
        left = temps()
        assert len(left) == 1
        build()  # the other writer is alive: its temp stays
        assert temps() == left
        sigkill(child)
    assert temps() == left  # nothing removes it by itself
    if facilities.WINDOWS:  # a temp closed just now may be about to be renamed: let it age
        past = time.time() - temporaries.CLOSED_GRACE - 1
        os.utime(left[0], (past, past))
    build()
    assert temps() == []
    assert out.stat().st_size > 0
