"""One feature, two models: the bank-card sample built, published and installed as a unit.

``sample_models/bankcard`` is the seed article's example: a card detector and
a digit reader under one tag. Built together they make one bundle, each model
converted and checked on its own; a device that updates gets both models of
one version, never detector 2 with recogniser 1.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from _cli import NO_PASSWORD, Cli

REPO = Path(__file__).resolve().parents[2]
BANKCARD = REPO / "sample_models" / "bankcard"
CONFIGS = [BANKCARD / "detector" / "config.json", BANKCARD / "recognizer" / "config.json"]


aoe = Cli(env=NO_PASSWORD, process=True)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("keys")
    assert aoe("keygen", "--out", folder / "release").exit_code == 0
    assert aoe("keygen", "--type", "x25519", "--out", folder / "device").exit_code == 0
    return folder


@pytest.fixture(scope="module")
def bundle(keys: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "bankcard.aoe"
    r = aoe(
        "build", *CONFIGS, "--out", out, "--sign-key", keys / "release.key",
        "--recipient", keys / "device.pub", "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert {(t["model"], t["target"], t["status"]) for t in doc["targets"]} >= {
        ("detector", "tflite-fp16", "ok"),
        ("detector", "onnx-basic", "ok"),
        ("detector", "mnn-fp32", "ok"),
        ("recognizer", "tflite-fp16", "ok"),
        ("recognizer", "ncnn-fp32", "ok"),
    }
    return out


@pytest.fixture(scope="module")
def inspected(bundle: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(aoe("inspect", bundle, "--json").stdout)
    return doc


def test_the_feature_is_one_release_of_its_tag(inspected: dict[str, Any]) -> None:
    assert inspected["model"] == {
        "tag": "tag_bankcard",
        "name": "tag_bankcard",
        "version": "1.0.0",
        "runtime": "tflite",
        "updateURL": "https://models.example.com/bankcard/",  # both configs name it
    }
    assert sorted(inspected["config"]["models"]) == ["detector", "recognizer"]
    assert inspected["config"]["models"]["detector"]["modelName"] == "detector.keras"
    # The recognizer's config declares no inputs: the bundle records what the build read.
    (strip,) = inspected["config"]["models"]["recognizer"]["inputs"]
    assert (strip["dtype"], strip["shape"]) == ("float32", [1, 32, 128, 1])


def test_each_model_sits_in_its_folder_with_its_own_parity(inspected: dict[str, Any]) -> None:
    paths = [f["path"] for f in inspected["files"]]
    assert {p.split("/")[0] for p in paths} == {"detector", "recognizer"}
    assert "recognizer/labels.txt" in paths
    models = inspected["provenance"]["models"]
    assert [c["target"] for c in models["detector"]["conversions"]] == [
        "tflite-fp16",
        "onnx-basic",
        "mnn-fp32",
    ]
    assert [c["target"] for c in models["recognizer"]["conversions"]] == [
        "tflite-fp16",
        "ncnn-fp32",
    ]
    for model in models.values():
        assert all(c["parity"]["passed"] for c in model["conversions"])
    assert models["detector"]["source"]["path"] == "detector.keras"
    assert "source" not in inspected["provenance"]  # no single file is the source


def test_unpack_gives_the_app_both_model_folders(bundle: Path, keys: Path, tmp_path: Path) -> None:
    out = tmp_path / "models"
    r = aoe(
        "unpack", bundle, "--out", out, "--trusted-key", keys / "release.pub",
        "--decryption-key", keys / "device.key",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert (out / "detector" / "tflite" / "fp16" / "detector.tflite").is_file()
    assert (out / "recognizer" / "ncnn" / "fp32" / "recognizer.param").is_file()


def test_a_device_updates_the_feature_as_a_unit(bundle: Path, keys: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    sign = ["--sign-key", keys / "release.key"]
    init = aoe("manifest", "init", "--repo", repo, "--root-key", keys / "release.pub", *sign)
    assert init.exit_code == 0, init.stderr
    assert aoe("manifest", "publish", bundle, "--repo", repo, *sign).exit_code == 0
    downloads = tmp_path / "device"
    r = aoe(
        "client", "check", "--repo", repo, "--trusted-root", repo / "root.json",
        "--tag", "tag_bankcard", "--installed-version", "0.9.0", "--app-version", "1.0.0",
        "--device-id", "phone-1", "--state", downloads / "state.json",
        "--download", downloads, "--decryption-key", keys / "device.key", "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.stdout + r.stderr
    installed = downloads / "tag_bankcard-1.0.0"
    assert sorted(p.name for p in installed.iterdir()) == ["detector", "recognizer"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("tag", "tag_other", "has tag 'tag_other'"),
        ("version", "1.0.1", "is version 1.0.1"),
        ("updateURL", "https://models.example.org/bankcard/", "a feature is released in one"),
    ],
)
def test_models_of_one_feature_must_agree_on_tag_version_and_repository(
    field: str, value: str, message: str, keys: Path, tmp_path: Path
) -> None:
    other = tmp_path / "recognizer"
    shutil.copytree(BANKCARD / "recognizer", other)
    config = json.loads((other / "config.json").read_text())
    config[field] = value
    (other / "config.json").write_text(json.dumps(config))
    r = aoe(
        "build", CONFIGS[0], other / "config.json", "--out", tmp_path / "x.aoe",
        "--sign-key", keys / "release.key", "--no-encrypt",
    )  # fmt: skip
    assert r.exit_code == 1  # the configs disagree: a refusal, not a usage error
    assert message in r.stderr
    assert not (tmp_path / "x.aoe").exists()


def test_two_models_in_folders_of_one_name_are_refused(keys: Path, tmp_path: Path) -> None:
    twin = tmp_path / "twin" / "detector"
    shutil.copytree(BANKCARD / "detector", twin)
    r = aoe(
        "build", CONFIGS[0], twin / "config.json", "--out", tmp_path / "x.aoe",
        "--sign-key", keys / "release.key", "--no-encrypt",
    )  # fmt: skip
    assert r.exit_code == 1
    assert "two models sit in folders named 'detector'" in r.stderr
