"""The demo's flow through the CLI on every backend: folder, S3 (moto), OCI (registry).

Three versions are published, the newest to 10% of devices; a fleet of
10,000 simulated devices reads the repository through the same destination,
verifies it against the root and resolves as the rollout says; widening,
yanking and the kill switch move the fleet as they should.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _cli import aoe


def test_three_versions_and_a_fleet_on_every_backend(
    repo_url: str, keyfiles: tuple[Path, Path], bundle_factory: Any, tmp_path: Path
) -> None:
    key, pub = keyfiles
    sign = ("--sign-key", key)
    aoe("manifest", "init", "--repo", repo_url, "--root-key", pub, *sign, "--json").expect()
    b = [bundle_factory("fleet", v) for v in ("1.0.0", "1.1.0", "1.2.0")]
    aoe("manifest", "publish", b[0], b[1], "--repo", repo_url, *sign, "--json").expect()
    published = aoe(
        "manifest", "publish", b[2], "--repo", repo_url, *sign, "--rollout", "10", "--json"
    ).expect()
    assert published["manifestVersion"] == 3
    shown = aoe("manifest", "show", "--repo", repo_url, "--json").expect()
    releases = shown["models"]["fleet"]["releases"]
    assert [r["version"] for r in releases] == ["1.0.0", "1.1.0", "1.2.0"]
    assert [r["versionCode"] for r in releases] == [10000999, 10100999, 10200999]

    root = tmp_path / "root.json"  # what the app ships
    root.write_bytes(_read_root(repo_url))

    def fleet(*installed: str) -> dict[str, int]:
        doc = aoe(
            "client",
            "simulate",
            "--repo",
            repo_url,
            "--trusted-root",
            root,
            "--tag",
            "fleet",
            "--local-version",
            "1.0.0",
            "--app-version",
            "2.0.0",
            "--devices",
            "10000",
            *(x for v in installed for x in ("--installed-version", v)),
            "--json",
        ).expect()
        return {k: int(v) for k, v in doc["outcomes"].items()}

    ten = fleet("1.1.0")
    assert set(ten) == {"keep", "download 1.2.0"}
    assert abs(ten["download 1.2.0"] - 1000) <= 150
    aoe("manifest", "rollout", "--repo", repo_url, "fleet", "1.2.0", "50", *sign, "--json").expect()
    half = fleet("1.1.0")
    assert abs(half["download 1.2.0"] - 5000) <= 250
    assert half["download 1.2.0"] > ten["download 1.2.0"]
    aoe(
        "manifest", "yank", "--repo", repo_url, "fleet", "1.2.0", "--reason", "bad", *sign, "--json"
    ).expect()
    assert fleet("1.2.0") == {"download 1.1.0": 10000}
    aoe("manifest", "pin", "--repo", repo_url, "fleet", "local", *sign, "--json").expect()
    assert fleet("1.1.0") == {"revert-to-local": 10000}
    report = aoe(
        "manifest", "verify", "--repo", repo_url, "--trusted-root", root, "--bundles", "--json"
    ).expect()
    assert report["manifestVersion"] == 6
    assert report["bundlesChecked"] == 3


def _read_root(url: str) -> bytes:
    from aoe_pack.storage.open import open_store

    store = open_store(url)
    doc = store.read("root.json", max_bytes=1 << 20)
    store.close()
    assert doc is not None
    return doc.data


def test_device_client_stays_light(
    tmp_path: Path,
    bundle_factory: Any,
    keyfiles: tuple[Path, Path],
    modules_imported_by: Callable[[Sequence[str]], tuple[object, set[str]]],
) -> None:
    """The device flow imports no ML framework and no publishing stack."""
    key, pub = keyfiles
    repo = tmp_path / "repo"
    aoe("manifest", "init", "--repo", repo, "--root-key", pub, "--sign-key", key, "--json").expect()
    aoe(
        "manifest",
        "publish",
        bundle_factory("light", "1.0.0"),
        "--repo",
        repo,
        "--sign-key",
        key,
        "--json",
    ).expect()
    code, loaded = modules_imported_by(
        [
            "client",
            "check",
            "--repo",
            str(repo),
            "--trusted-root",
            str(repo / "root.json"),
            "--tag",
            "light",
            "--installed-version",
            "0.9.0",
            "--app-version",
            "1.0.0",
            "--device-id",
            "d1",
            "--state",
            str(tmp_path / "state.json"),
            "--download",
            str(tmp_path / "dl"),
            "--json",
        ]
    )
    assert code == 0
    heavy = {
        "tensorflow",
        "keras",
        "onnx",
        "onnxruntime",
        "MNN",
        "ncnn",
        "numpy",
        "torch",
        "fsspec",
        "s3fs",
        "botocore",
        "oras",
        "requests",
        "rich",
    }
    assert not loaded & heavy
    assert (tmp_path / "dl" / "light-1.0.0" / "model.tflite").exists()
