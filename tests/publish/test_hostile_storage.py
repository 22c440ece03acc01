"""Attacks from whoever can write to the repository's storage or serve it.

One named test per attack found in the security review; each asserts the
exact error (or that the attack has no effect).
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
from _cli import Cli

from aoe_pack._crypto.asymmetric import PrivateKey, private_pem
from aoe_pack.errors import DownloadTooLargeError, RepositoryFormatError, StoreError
from aoe_pack.repository import envelope
from aoe_pack.repository.root import Root
from aoe_pack.storage.local import LocalStore
from aoe_pack.storage.store import MANIFEST


def test_fifo_in_a_local_repository_is_refused_not_waited_on(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / MANIFEST)
    with pytest.raises(StoreError, match="is not a regular file"):
        LocalStore(tmp_path).read(MANIFEST, max_bytes=1 << 20)


def test_bundle_linked_to_dev_zero_is_cut_at_its_cap(tmp_path: Path) -> None:
    name = "bundles/" + "a" * 64 + ".aoe"
    (tmp_path / "bundles").mkdir()
    (tmp_path / name).symlink_to("/dev/zero")
    with pytest.raises(StoreError, match="is not a regular file"):
        LocalStore(tmp_path).fetch_blob(name, tmp_path / "out", max_bytes=4096)


def test_bundle_larger_than_its_cap_is_cut(tmp_path: Path) -> None:
    name = "bundles/" + "b" * 64 + ".aoe"
    (tmp_path / "bundles").mkdir()
    (tmp_path / name).write_bytes(b"x" * 10_000)
    with pytest.raises(DownloadTooLargeError):
        LocalStore(tmp_path).fetch_blob(name, tmp_path / "out", max_bytes=4096)
    assert not (tmp_path / "out").exists()  # not even the first 4096 bytes under its name


def test_oversized_root_key_is_refused_before_any_pem_parsing(signer: PrivateKey) -> None:
    # A 1 MiB "PEM" made the PEM regex quadratic: minutes of CPU per check.
    doc = Root(1, {signer.key_id: signer.public}, 1).to_dict()
    doc["keys"][signer.key_id]["publicKey"] = (
        "-----BEGIN PUBLIC KEY-----" + "-----BEGIN A-----\n" * 4000
    )
    with pytest.raises(RepositoryFormatError, match=r"^root: keys/[0-9a-f]{64}/publicKey: "):
        Root.from_dict(doc)


def test_deeply_nested_payload_is_a_format_error_not_a_crash(signer: PrivateKey) -> None:
    payload = ("[" * 5000 + '"\u00e9"' + "]" * 5000).encode()
    doc = {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": envelope.MANIFEST_TYPE,
        "signatures": [{"keyid": signer.key_id, "sig": base64.b64encode(b"x" * 64).decode()}],
    }
    data = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    with pytest.raises(RepositoryFormatError):
        envelope.parse(data, envelope.MANIFEST_TYPE, what="manifest.json")


def test_rollback_floor_is_per_repository_not_per_tag(
    tmp_path: Path, repo_key: PrivateKey, bundle_factory: Any
) -> None:
    """A device that accepted version N checking one model refuses N-1 checking another."""
    key, pub = tmp_path / "k.pem", tmp_path / "k.pub"
    key.write_bytes(private_pem(repo_key, None))
    pub.write_bytes(repo_key.public.pem)
    repo = tmp_path / "repo"
    aoe = Cli(env={"XDG_STATE_HOME": str(tmp_path / "state")})

    assert (
        aoe("manifest", "init", "--repo", repo, "--root-key", pub, "--sign-key", key).exit_code == 0
    )
    for tag in ("model_a", "model_b"):
        b = bundle_factory(tag, "1.0.0")
        assert aoe("manifest", "publish", b, "--repo", repo, "--sign-key", key).exit_code == 0
    old = (repo / MANIFEST).read_bytes()
    old_index = (repo / "index.json").read_bytes()
    assert aoe("manifest", "resign", "--repo", repo, "--sign-key", key).exit_code == 0

    def check(tag: str) -> Any:
        return aoe(
            "client",
            "check",
            "--repo",
            repo,
            "--trusted-root",
            repo / "root.json",
            "--tag",
            tag,
            "--installed-version",
            "1.0.0",
            "--app-version",
            "1.0.0",
            "--device-id",
            "d",
            "--json",
        )

    assert check("model_a").exit_code == 0  # accepts the newest manifest
    (repo / MANIFEST).write_bytes(old)  # a mirror now serves the older documents
    (repo / "index.json").write_bytes(old_index)
    r = check("model_b")
    assert r.exit_code == 1
    assert json.loads(r.stdout)["error"]["code"] == "rollback"
