"""``manifest publish --public-url``: a bundle goes only to the repository its updateURL names.

The address devices read (``https://models.example.com/repo/``) is not the
storage the publisher writes (a folder here); the release manager gives it,
and a bundle whose signed updateURL names another repository is refused
before anything is uploaded (docs/format.md §15.8.1).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _cli import aoe

from aoe_pack._crypto.asymmetric import PrivateKey
from aoe_pack.bundle import EncryptionSpec, build_bundle
from aoe_pack.config.model import ModelConfig

PUBLIC = "https://models.example.com/repo/"


@pytest.fixture
def make(
    tmp_path: Path, repo_key: PrivateKey, config_writer: Callable[..., ModelConfig]
) -> Callable[..., Path]:
    def build(version: str, update_url: str | None) -> Path:
        src = tmp_path / f"src-{version}"
        src.mkdir()
        files = {"model.tflite": f"model {version}".encode() * 64}
        config = config_writer(src, files, version=version, tag="tag_m", update_url=update_url)
        out = tmp_path / f"m-{version}.aoe"
        build_bundle(config, out, signing_keys=[repo_key], encryption=EncryptionSpec())
        return out

    return build


@pytest.fixture
def repo(tmp_path: Path, keyfiles: tuple[Path, Path]) -> Path:
    key, pub = keyfiles
    folder = tmp_path / "repo"
    assert (
        aoe("manifest", "init", "--repo", folder, "--root-key", pub, "--sign-key", key).exit_code
        == 0
    )
    return folder


def _publish(repo: Path, key: Path, *args: object, exit_code: int = 0) -> dict[str, Any]:
    doc: dict[str, Any] = aoe(
        "manifest", "publish", *args, "--repo", repo, "--sign-key", key, json=True
    ).expect(exit_code)
    return doc


def _uploaded(repo: Path) -> list[Path]:
    return sorted((repo / "bundles").glob("*")) if (repo / "bundles").exists() else []


def test_publish_accepts_a_bundle_naming_the_public_url(
    repo: Path, keyfiles: tuple[Path, Path], make: Callable[..., Path]
) -> None:
    bundle = make("1.0.0", "HTTPS://Models.Example.com/repo")  # same repository, other spelling
    doc = _publish(repo, keyfiles[0], bundle, "--public-url", PUBLIC)
    assert [r["version"] for r in doc["releases"]] == ["1.0.0"]


def test_publish_accepts_a_bundle_without_update_url(
    repo: Path, keyfiles: tuple[Path, Path], make: Callable[..., Path]
) -> None:
    doc = _publish(repo, keyfiles[0], make("1.0.0", None), "--public-url", PUBLIC)
    assert doc["manifestVersion"] == 2


def test_publish_without_public_url_checks_nothing(
    repo: Path, keyfiles: tuple[Path, Path], make: Callable[..., Path]
) -> None:
    """Repositories published before --public-url existed keep publishing as they did."""
    doc = _publish(repo, keyfiles[0], make("1.0.0", "https://elsewhere.example/"))
    assert doc["manifestVersion"] == 2


def test_publish_refuses_a_bundle_naming_another_repository(
    repo: Path, keyfiles: tuple[Path, Path], make: Callable[..., Path]
) -> None:
    good = make("1.0.0", PUBLIC)
    other = make("1.1.0", "https://models.example.com/staging/")
    doc = _publish(repo, keyfiles[0], good, other, "--public-url", PUBLIC, exit_code=1)
    assert doc["error"] == {
        "code": "update-url-mismatch",
        "type": "UpdateURLMismatchError",
        "message": "m-1.1.0.aoe: its updateURL https://models.example.com/staging/ names "
        "another repository than --public-url https://models.example.com/repo/ "
        "(https://models.example.com/staging is not https://models.example.com/repo); "
        "apps that ship it would look for updates there",
        "hint": "publish it to the repository served at https://models.example.com/staging/, "
        'or rebuild it from a config with "updateURL": "https://models.example.com/repo/"',
    }
    assert _uploaded(repo) == []  # not even the good one: refused before any upload
    manifest = json.loads(aoe("manifest", "show", "--repo", repo, json=True).stdout)
    assert manifest["manifestVersion"] == 1


def test_publish_prepare_refuses_a_bundle_naming_another_repository(
    repo: Path, tmp_path: Path, make: Callable[..., Path]
) -> None:
    other = make("1.0.0", "https://cdn.example.org/models/")
    r = aoe("manifest", "publish", other, "--repo", repo, "--prepare",
            "--out", tmp_path / "p.json", "--public-url", PUBLIC, json=True)  # fmt: skip
    assert r.expect(1)["error"]["code"] == "update-url-mismatch"
    assert _uploaded(repo) == []
    assert not (tmp_path / "p.json").exists()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://models.example.com/repo/", "uses http:// to a host that is not loopback"),
        ("https://ci:token@models.example.com/", "carries user information"),
        ("s3://bucket/repo", "uses s3://; devices read repositories over https://"),
        ("https://models.example.com/repo?v=2", "has a query"),
    ],
    ids=["cleartext", "userinfo", "storage-address", "query"],
)
def test_an_invalid_public_url_is_a_usage_error(
    repo: Path, keyfiles: tuple[Path, Path], make: Callable[..., Path], url: str, problem: str
) -> None:
    doc = _publish(repo, keyfiles[0], make("1.0.0", None), "--public-url", url, exit_code=2)
    assert doc["error"]["code"] == "usage"
    assert doc["error"]["message"].startswith(f"--public-url {url!r} {problem}")
    assert _uploaded(repo) == []
