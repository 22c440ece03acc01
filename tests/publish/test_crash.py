"""A publisher killed at any step leaves a valid repository: the old manifest or the new.

The publisher runs in a child process that ``os._exit``s (no cleanup, no
``finally``: what a SIGKILL or power cut leaves) at one of these points:

- ``after-upload``: the bundle is uploaded, the manifest not yet written;
- ``mid-manifest``: inside the manifest write itself (folder: temp file
  written and fsynced, not yet renamed; OCI: blobs uploaded, tag not yet
  moved; S3: the conditional PUT not yet sent, S3 writes are atomic);
- ``after-manifest``: the new manifest is written, the publisher never returns.

Afterwards the repository verifies as a device would check it (bundles
included), it names the release only in the third case, and the next publish
works: no stale lock, no half-written file in the way.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from aoe_pack._crypto.asymmetric import PrivateKey, private_pem
from aoe_pack.client.verify_repo import verify_repository
from aoe_pack.publish import releases
from aoe_pack.publish.workflow import init_repository, read_state
from aoe_pack.storage.open import open_store
from aoe_pack.storage.store import ROOT

_CHILD = textwrap.dedent(
    """
    import os, pathlib, sys
    from aoe_pack._crypto.asymmetric import load_private
    from aoe_pack.publish import releases
    from aoe_pack.storage.open import open_store
    from aoe_pack.storage.store import MANIFEST

    url, key_file, bundle, point = sys.argv[1:5]
    store = open_store(url)
    kind = type(store).__name__

    def die():
        os._exit(137)

    if point == "after-upload":
        real_put_blob = store.put_blob
        def put_blob(*a, **k):
            real_put_blob(*a, **k)
            die()
        store.put_blob = put_blob
    elif point == "mid-manifest" and kind == "LocalStore":
        real_os_replace = os.replace
        def os_replace(src, dst, **kwargs):
            if os.path.basename(dst) == MANIFEST:
                die()
            return real_os_replace(src, dst, **kwargs)
        os.replace = os_replace
    elif point == "mid-manifest" and kind == "OciStore":
        real_put_manifest = store._put_manifest
        def put_manifest(target, body):
            if target.tag == "manifest":
                die()
            return real_put_manifest(target, body)
        store._put_manifest = put_manifest
    elif point == "mid-manifest":
        real_replace = store.replace
        def replace(name, data, *, expected):
            if name == MANIFEST:
                die()
            return real_replace(name, data, expected=expected)
        store.replace = replace
    elif point == "after-manifest":
        real_replace = store.replace
        def replace(name, data, *, expected):
            token = real_replace(name, data, expected=expected)
            if name == MANIFEST:
                die()
            return token
        store.replace = replace
    key = load_private(pathlib.Path(key_file).read_bytes(), None, origin="key")
    releases.publish(store, [pathlib.Path(bundle)], sign_keys=[key])
    sys.exit(0)
    """
)

POINTS = ["after-upload", "mid-manifest", "after-manifest"]


@pytest.mark.parametrize("point", POINTS)
def test_crash_leaves_a_valid_repository(
    point: str, repo_url: str, repo_key: PrivateKey, bundle_factory: Any, tmp_path: Path
) -> None:
    store = open_store(repo_url)
    init_repository(store, root_keys=[repo_key.public], threshold=1, sign_keys=[repo_key])
    releases.publish(store, [bundle_factory("crash", "1.0.0")], sign_keys=[repo_key])
    before = read_state(store).manifest.version
    key_file = tmp_path / "k.pem"
    key_file.write_bytes(private_pem(repo_key, None))
    bundle = bundle_factory("crash", "1.1.0")

    child = subprocess.run(
        [sys.executable, "-c", _CHILD, repo_url, str(key_file), str(bundle), point],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == 137, child.stderr

    root_doc = store.read(ROOT, max_bytes=1 << 20)
    assert root_doc is not None
    report = verify_repository(store, root_doc.data, check_bundles=True)
    versions = {r.version for r in report.manifest.models["crash"].releases}
    if point == "after-manifest":
        assert report.manifest.version == before + 1
        assert versions == {"1.0.0", "1.1.0"}
    else:
        assert report.manifest.version == before
        assert versions == {"1.0.0"}

    if point == "mid-manifest" and repo_url.startswith("/"):
        left = list(Path(repo_url).glob(".*.partial"))
        assert left, "the crash should have left its temp file (which nothing reads)"

    # The next publish goes through: the crashed one held no lock and left nothing in the way,
    # and its temp file, whose writer is provably dead (its lock is free), is swept.
    commit, _ = releases.publish(store, [bundle], sign_keys=[repo_key])
    final = {r.version for r in commit.manifest.models["crash"].releases}
    assert final == {"1.0.0", "1.1.0"}
    if repo_url.startswith("/"):
        assert list(Path(repo_url).rglob(".*.partial")) == []
    store.close()
