"""Mistakes a release manager or a mobile engineer makes, and what the CLI answers.

Each test is one mistake found by trying the commands as a first-time user:
the answer must be a clear message and the documented exit code (2 for a
usage error), never a traceback, and with ``--json`` a JSON error on stdout.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _cli import aoe

from aoe_pack._crypto import asymmetric as keys
from aoe_pack._crypto.asymmetric import private_pem


@pytest.fixture
def repo(tmp_path: Path, keyfiles: tuple[Path, Path], bundle_factory: Any) -> dict[str, Path]:
    key, pub = keyfiles
    folder = tmp_path / "repo"
    assert (
        aoe("manifest", "init", "--repo", folder, "--root-key", pub, "--sign-key", key).exit_code
        == 0
    )
    b = bundle_factory("usab", "1.0.0")
    assert aoe("manifest", "publish", b, "--repo", folder, "--sign-key", key).exit_code == 0
    return {"repo": folder, "key": key, "pub": pub, "bundle": b}


def test_click_usage_errors_are_json_on_stdout_with_json(tmp_path: Path) -> None:
    aoe = Path(sys.executable).with_name("aoe-pack")
    out = subprocess.run(
        [
            aoe,
            "manifest",
            "rollout",
            "--repo",
            tmp_path,
            "t",
            "1.0.0",
            "150",
            "--sign-key",
            "k",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 2
    doc = json.loads(out.stdout)
    assert doc["ok"] is False
    assert doc["error"]["code"] == "usage"
    assert "150.0 is not in the range" in doc["error"]["message"]


def test_non_finite_rollout_is_a_usage_error(repo: dict[str, Path]) -> None:
    # click's FloatRange lets NaN through (every comparison with NaN is false).
    r = aoe(
        "manifest",
        "rollout",
        "--repo",
        repo["repo"],
        "usab",
        "1.0.0",
        "nan",
        "--sign-key",
        repo["key"],
        "--json",
    )
    assert r.exit_code == 2, r.output
    assert "is not a number between 0 and 100" in json.loads(r.stdout)["error"]["message"]


def test_version_typo_is_a_usage_error(repo: dict[str, Path]) -> None:
    r = aoe(
        "manifest",
        "yank",
        "--repo",
        repo["repo"],
        "usab",
        "1.0",
        "--reason",
        "x",
        "--sign-key",
        repo["key"],
        "--json",
    )
    assert r.exit_code == 2
    assert "'1.0' is not a semantic version" in json.loads(r.stdout)["error"]["message"]


def test_pinning_a_yanked_release_is_refused(repo: dict[str, Path]) -> None:
    assert (
        aoe(
            "manifest",
            "yank",
            "--repo",
            repo["repo"],
            "usab",
            "1.0.0",
            "--reason",
            "bad",
            "--sign-key",
            repo["key"],
        ).exit_code
        == 0
    )
    r = aoe(
        "manifest",
        "pin",
        "--repo",
        repo["repo"],
        "usab",
        "1.0.0",
        "--sign-key",
        repo["key"],
        "--json",
    )
    assert r.exit_code == 1  # a refusal of well-formed work, not a usage error
    error = json.loads(r.stdout)["error"]
    assert error["code"] == "release-yanked"
    assert "is yanked (bad)" in error["message"]


def test_republishing_a_bundle_says_nothing_changed_and_warns_about_new_settings(
    repo: dict[str, Path],
) -> None:
    r = aoe(
        "manifest",
        "publish",
        repo["bundle"],
        "--repo",
        repo["repo"],
        "--sign-key",
        repo["key"],
        "--rollout",
        "50",
    )
    assert r.exit_code == 0
    assert "already published, nothing changed" in r.stdout
    assert "keeps its first settings (stable, 100%)" in r.stderr


def test_a_bad_bundle_in_a_batch_uploads_nothing(
    repo: dict[str, Path], bundle_factory: Any, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.aoe"
    bad.write_bytes(b"not a bundle")
    good = bundle_factory("usab", "1.1.0")
    before = sorted(p.name for p in (repo["repo"] / "bundles").iterdir())
    r = aoe(
        "manifest",
        "publish",
        good,
        bad,
        "--repo",
        repo["repo"],
        "--sign-key",
        repo["key"],
        "--json",
    )
    assert r.exit_code == 1
    assert json.loads(r.stdout)["error"]["message"].startswith("bad.aoe: ")
    assert sorted(p.name for p in (repo["repo"] / "bundles").iterdir()) == before


def test_rotate_root_run_twice_does_not_rotate_again(repo: dict[str, Path], tmp_path: Path) -> None:
    new = keys.generate(keys.KeyKind.ED25519)
    new_key, new_pub = tmp_path / "new.key", tmp_path / "new.pub"
    new_key.write_bytes(private_pem(new, None))
    new_pub.write_bytes(new.public.pem)
    args = (
        "manifest",
        "rotate-root",
        "--repo",
        repo["repo"],
        "--root-key",
        new_pub,
        "--sign-key",
        repo["key"],
        "--sign-key",
        new_key,
        "--json",
    )
    first, second = aoe(*args), aoe(*args)
    assert first.exit_code == second.exit_code == 0, second.output
    assert json.loads(first.stdout)["rootVersion"] == json.loads(second.stdout)["rootVersion"] == 2
    assert not (repo["repo"] / "roots" / "3.root.json").exists()


def test_client_refuses_a_trusted_root_unlike_the_one_it_remembers(
    repo: dict[str, Path], tmp_path: Path
) -> None:
    other = keys.generate(keys.KeyKind.ED25519)
    other_key, other_pub = tmp_path / "o.key", tmp_path / "o.pub"
    other_key.write_bytes(private_pem(other, None))
    other_pub.write_bytes(other.public.pem)
    elsewhere = tmp_path / "elsewhere"
    assert (
        aoe(
            "manifest",
            "init",
            "--repo",
            elsewhere,
            "--root-key",
            other_pub,
            "--sign-key",
            other_key,
        ).exit_code
        == 0
    )
    state = tmp_path / "state.json"
    common = (
        "client",
        "check",
        "--repo",
        repo["repo"],
        "--tag",
        "usab",
        "--installed-version",
        "0.9.0",
        "--app-version",
        "1.0.0",
        "--device-id",
        "d1",
        "--state",
        state,
        "--json",
    )
    assert aoe(*common, "--trusted-root", repo["repo"] / "root.json").exit_code == 0
    r = aoe(*common, "--trusted-root", elsewhere / "root.json")
    assert r.exit_code == 1
    err = json.loads(r.stdout)["error"]
    assert err["code"] == "untrusted-metadata"
    assert "differs from the root version 1" in err["message"]


def test_empty_device_id_is_a_usage_error(repo: dict[str, Path], tmp_path: Path) -> None:
    r = aoe(
        "client",
        "check",
        "--repo",
        repo["repo"],
        "--tag",
        "usab",
        "--installed-version",
        "0.9.0",
        "--app-version",
        "1.0.0",
        "--device-id",
        "",
        "--state",
        tmp_path / "s.json",
        "--trusted-root",
        repo["repo"] / "root.json",
        "--json",
    )
    assert r.exit_code == 2
    assert "--device-id is empty" in json.loads(r.stdout)["error"]["message"]


def test_publishing_a_tag_that_differs_only_in_case_from_a_published_one(
    repo: dict[str, Path], bundle_factory: Any
) -> None:
    """On macOS and Windows, tags/usab/ and tags/USAB/ would be one folder."""
    b = bundle_factory("USAB", "1.0.0")
    ran = aoe("manifest", "publish", b, "--repo", repo["repo"], "--sign-key", repo["key"], "--json")
    doc = ran.expect(1)
    assert doc["error"]["code"] == "tag-collision"
    assert doc["error"]["message"] == (
        "tag USAB differs only in case from tag usab, which the manifest already has: "
        "tags/USAB/ and tags/usab/ would be one folder on case-insensitive file systems "
        "(macOS, Windows)"
    )
