"""A bundle upload killed mid-copy into a folder repository; the next publish clears its temp."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from _killed import blocked_child, sigkill

from aoe_pack._crypto.asymmetric import PrivateKey
from aoe_pack.publish import releases
from aoe_pack.publish.workflow import init_repository
from aoe_pack.storage.local import LocalStore
from aoe_pack.storage.store import bundle_name

# put_blob creates its temp, then blocks opening the source: a FIFO nobody writes.
_UPLOADER = """
import contextlib, sys
from pathlib import Path
import aoe_pack.storage.local as local

real_atomic_output = local.atomic_output

@contextlib.contextmanager
def announced(path, **kwargs):
    with real_atomic_output(path, **kwargs) as out:
        print("ready", flush=True)
        yield out

local.atomic_output = announced
repo, name, source, sha, size = sys.argv[1:]
local.LocalStore(Path(repo)).put_blob(name, Path(source), sha256=sha, size=int(size))
"""


def test_temp_of_a_killed_upload_is_removed_by_the_next_publish(
    repo_key: PrivateKey, bundle_factory: Any, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    store = LocalStore(repo)
    init_repository(store, root_keys=[repo_key.public], threshold=1, sign_keys=[repo_key])
    bundle = bundle_factory("crash", "1.0.0")
    data = bundle.read_bytes()
    name = bundle_name(hashlib.sha256(data).hexdigest())
    fifo = tmp_path / "source"
    os.mkfifo(fifo)
    args = (str(repo), name, str(fifo), hashlib.sha256(data).hexdigest(), str(len(data)))

    with blocked_child(_UPLOADER, *args) as child:
        left = sorted((repo / "bundles").glob(".*.partial"))
        assert len(left) == 1
        sigkill(child)
    assert sorted((repo / "bundles").glob(".*.partial")) == left
    releases.publish(store, [bundle], sign_keys=[repo_key])
    assert sorted((repo / "bundles").glob(".*.partial")) == []
    assert (repo / name).read_bytes() == data
