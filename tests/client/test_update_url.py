"""Where a device looks for updates: ``client check`` without ``--repo``.

The app ships its local model as a bundle whose config named the repository
(``updateURL``, AoE's "upgrade config link"). ``client check --local-bundle``
reads that signed address and checks the repository there, end to end over
HTTP against a folder the CLI published; trust still comes from the shipped
root alone, so an address naming another repository fails the check.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from _cli import NO_PASSWORD, Cli
from _server_http import HttpServer

from aoe_pack.storage.store import ROOT

REPO = Path(__file__).resolve().parents[2]
TAG = "tag_mnist"
aoe = Cli(env=NO_PASSWORD)


def _json(*args: object, exit_code: int = 0) -> dict[str, Any]:
    doc: dict[str, Any] = aoe(*args, json=True).expect(exit_code)
    return doc


def _build(work: Path, key: Path, version: str, *, update_url: str | None, tag: str = TAG) -> Path:
    src = work / f"src-{tag}-{version}"
    shutil.copytree(REPO / "sample_models" / "mnist", src)
    config = json.loads((src / "config.json").read_text())
    config.pop("targets", None)  # packed as it is: this is about delivery
    config.update(modelName="mnist.tflite", version=version, tag=tag)
    config.pop("updateURL", None)
    if update_url is not None:
        config["updateURL"] = update_url
    (src / "config.json").write_text(json.dumps(config))
    out = work / f"{tag}-{version}.aoe"
    _json("build", src / "config.json", "--out", out, "--sign-key", key, "--no-encrypt")
    return out


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("keys")
    for name in ("release", "other"):
        assert aoe("keygen", "--out", folder / name).exit_code == 0
    return folder


@pytest.fixture
def served(keys: Path, http_server: HttpServer, tmp_path: Path) -> tuple[HttpServer, Path]:
    """The served folder holds a repository with 1.1.0 published; returns (server, root.json)."""
    release = keys / "release.key"
    _json("manifest", "init", "--repo", http_server.root, "--root-key", keys / "release.pub",
          "--sign-key", release)  # fmt: skip
    shipped_root = tmp_path / "app" / "root.json"
    shipped_root.parent.mkdir()
    shutil.copyfile(http_server.root / ROOT, shipped_root)
    newer = _build(tmp_path, release, "1.1.0", update_url=http_server.url)
    _json("manifest", "publish", newer, "--repo", http_server.root, "--sign-key", release)
    return http_server, shipped_root


def _check(root: Path, *args: object, exit_code: int = 0) -> dict[str, Any]:
    return _json(
        *("client", "check", "--tag", TAG, "--trusted-root", root),
        *("--installed-version", "1.0.0", "--app-version", "3.0.0", "--device-id", "phone-1"),
        *args,
        exit_code=exit_code,
    )


def test_check_without_repo_reads_the_shipped_bundles_update_url(
    served: tuple[HttpServer, Path], keys: Path, tmp_path: Path
) -> None:
    server, root = served
    shipped = _build(tmp_path, keys / "release.key", "1.0.0", update_url=server.url + "/")
    downloads = tmp_path / "models"
    doc = _check(root, "--local-bundle", shipped, "--state", tmp_path / "s.json",
                 "--download", downloads)  # fmt: skip
    assert (doc["action"], doc["version"]) == ("download", "1.1.0")
    assert doc["repository"] == server.url + "/"
    assert (downloads / f"{TAG}-1.1.0" / "mnist.tflite").is_file()
    assert any(path == "index.json" for _, path, _ in server.requests)
    text = aoe(*("client", "check", "--tag", TAG, "--trusted-root", root),
               *("--installed-version", "1.1.0", "--app-version", "3.0.0"),
               *("--device-id", "phone-1", "--local-bundle", shipped,
                 "--state", tmp_path / "s.json"))  # fmt: skip
    assert text.exit_code == 0, text.output
    assert f"  repo      {server.url}/  (updateURL of --local-bundle)\n" in text.stdout


def test_repo_wins_over_the_local_bundle(
    served: tuple[HttpServer, Path], keys: Path, tmp_path: Path
) -> None:
    server, root = served
    nowhere = _build(tmp_path, keys / "release.key", "1.0.0", update_url="https://nowhere.invalid/")
    doc = _check(root, "--repo", server.root, "--local-bundle", nowhere,
                 "--state", tmp_path / "s.json")  # fmt: skip
    assert (doc["action"], doc["repository"]) == ("download", str(server.root))


def test_update_url_naming_another_repository_is_not_trusted(
    served: tuple[HttpServer, Path], keys: Path, tmp_path: Path
) -> None:
    """The address is where to look, never what to trust: another root there is refused."""
    server, root = served
    other = server.root / "other"
    _json("manifest", "init", "--repo", other, "--root-key", keys / "other.pub",
          "--sign-key", keys / "other.key")  # fmt: skip
    elsewhere = _build(tmp_path, keys / "release.key", "1.0.0", update_url=server.url + "/other")
    doc = _check(root, "--local-bundle", elsewhere, "--state", tmp_path / "s.json", exit_code=1)
    assert doc["error"]["code"] == "untrusted-metadata"


def test_check_without_repo_or_local_bundle_is_a_usage_error(
    served: tuple[HttpServer, Path],
) -> None:
    _, root = served
    doc = _check(root, exit_code=2)
    assert doc["error"]["code"] == "usage"
    assert doc["error"]["message"] == (
        "no repository to check: give --repo, or --local-bundle with the bundle the app "
        "ships (its updateURL names the repository)"
    )


def test_local_bundle_without_update_url_is_a_usage_error(
    served: tuple[HttpServer, Path], keys: Path, tmp_path: Path
) -> None:
    _, root = served
    android = _build(tmp_path, keys / "release.key", "1.0.0", update_url=None)
    doc = _check(root, "--local-bundle", android, exit_code=2)
    assert doc["error"]["code"] == "usage"
    assert doc["error"]["message"] == (
        f"--local-bundle {android} names no repository: its config had no updateURL"
    )
    assert "--repo" in doc["error"]["hint"]


def test_local_bundle_of_another_tag_is_a_usage_error(
    served: tuple[HttpServer, Path], keys: Path, tmp_path: Path
) -> None:
    server, root = served
    other = _build(tmp_path, keys / "release.key", "1.0.0", update_url=server.url, tag="tag_other")
    doc = _check(root, "--local-bundle", other, exit_code=2)
    assert doc["error"]["message"] == (
        f"--local-bundle {other} is model 'tag_other', not --tag '{TAG}': its updateURL "
        "names another model's repository"
    )


def test_local_bundle_that_is_not_a_bundle_is_refused(
    served: tuple[HttpServer, Path], tmp_path: Path
) -> None:
    _, root = served
    config = tmp_path / "model.config"
    config.write_text('{"updateURL": "https://models.example.com/"}')  # an AoE config, not a bundle
    doc = _check(root, "--local-bundle", config, exit_code=1)
    assert doc["error"]["code"] == "not-a-bundle"
