"""Configs as AoE users have them: no inputs or outputs, AoE's own path conventions.

The seed article's config (``version``, ``tag``, ``runtime``, ``source``,
``modelDir``, ``modelName``, ``updateURL``) sits in ``assets/mnist/`` beside
the model, as in AoE's demo apps: its ``modelDir`` names its own folder from
the assets root, and its ``modelName`` has no extension (the runtime added
``.tflite``). It must validate and build unchanged, the model supplying what
the config does not say.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from _cli import NO_PASSWORD, Cli

from aoe_pack.config import validate_config

SAMPLES = Path(__file__).resolve().parents[2] / "sample_models"

ARTICLE_CONFIG = """{"version": "1.0.0",
 "tag": "tag_mnist",
 "runtime": "tensorflow",
 "source": "installed",
 "modelDir": "mnist",
 "modelName": "mnist_cnn_keras",
 "updateURL": "https://www.didiglobal.com"
}
"""
MODEL_INPUT = {"name": "serving_default_image:0", "dtype": "float32", "shape": [1, 28, 28, 1]}
MODEL_OUTPUT = {"name": "StatefulPartitionedCall_1:0", "dtype": "float32", "shape": [1, 10]}


aoe = Cli(env=NO_PASSWORD)


@pytest.fixture
def article(tmp_path: Path) -> Path:
    """assets/mnist/model.config, exactly as the article prints it, beside a real model."""
    folder = tmp_path / "assets" / "mnist"
    folder.mkdir(parents=True)
    shutil.copyfile(SAMPLES / "mnist" / "mnist.tflite", folder / "mnist_cnn_keras.tflite")
    path = folder / "model.config"
    path.write_text(ARTICLE_CONFIG, encoding="utf-8")
    return path


def test_the_articles_config_validates_with_aoes_path_conventions(article: Path) -> None:
    report = validate_config(article)
    assert report.ok, report.violations
    assert report.canonical is not None
    assert (report.canonical["modelDir"], report.canonical["modelName"]) == (
        ".",
        "mnist_cnn_keras.tflite",
    )
    assert [n.pointer for n in report.notices] == ["/modelDir", "/modelName"]
    assert "inputs" not in report.canonical


def test_validate_shows_the_inputs_and_outputs_it_read(article: Path) -> None:
    r = aoe("validate", article)
    assert r.exit_code == 0, r.output
    assert "inputs read from the model (not declared; --fix writes them into the config):" in (
        r.stdout
    )
    assert "    serving_default_image:0  float32  [1, 28, 28, 1]" in r.stdout
    assert "    StatefulPartitionedCall_1:0  float32  [1, 10]" in r.stdout
    doc = json.loads(aoe("validate", article, "--json").stdout)
    assert doc["model"]["readFromModel"] == ["inputs", "outputs"]
    assert doc["model"]["inputs"] == [MODEL_INPUT]
    assert json.loads(article.read_text()) == json.loads(ARTICLE_CONFIG)  # not written


def test_validate_fix_writes_what_it_read(article: Path) -> None:
    r = aoe("validate", article, "--fix")
    assert r.exit_code == 0, r.output
    written = json.loads(article.read_text())
    assert written["inputs"] == [MODEL_INPUT]
    assert written["outputs"] == [MODEL_OUTPUT]
    assert written["modelName"] == "mnist_cnn_keras.tflite"
    again = json.loads(aoe("validate", article, "--json").stdout)
    assert again["model"]["readFromModel"] == []
    assert again["notices"] == []


def test_migrate_writes_what_it_read(article: Path, tmp_path: Path) -> None:
    out = article.parent / "canonical.json"
    r = aoe("migrate", article, "--out", out, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(out.read_text())["outputs"] == [MODEL_OUTPUT]
    r = aoe("migrate", article, "--out", article.parent / "bare.json", "--no-model")
    assert r.exit_code == 0, r.output
    assert "inputs" not in json.loads((article.parent / "bare.json").read_text())


def test_the_articles_config_builds_unchanged(article: Path, tmp_path: Path) -> None:
    assert aoe("keygen", "--out", tmp_path / "k").exit_code == 0
    bundle = tmp_path / "mnist.aoe"
    r = aoe("build", article, "--out", bundle, "--sign-key", tmp_path / "k.key", "--no-encrypt")
    assert r.exit_code == 0, r.output
    doc = json.loads(aoe("inspect", bundle, "--json").stdout)
    assert [f["path"] for f in doc["files"]] == ["mnist_cnn_keras.tflite"]
    assert doc["model"] == {
        "name": "mnist_cnn_keras.tflite",
        "runtime": "tflite",
        "tag": "tag_mnist",
        "version": "1.0.0",
        "updateURL": "https://www.didiglobal.com",  # the article's upgrade link, signed
    }
    # The bundle's config carries what the build read from the model.
    assert doc["config"]["inputs"] == [MODEL_INPUT]
    assert doc["config"]["outputs"] == [MODEL_OUTPUT]
    assert json.loads(article.read_text()) == json.loads(ARTICLE_CONFIG)


def test_a_keras_source_without_declared_io_converts(tmp_path: Path) -> None:
    shutil.copyfile(SAMPLES / "mnist" / "mnist.keras", tmp_path / "mnist.keras")
    config = {
        "version": "1.0.0",
        "tag": "tag_mnist",
        "runtime": "tflite",
        "modelDir": ".",
        "modelName": "mnist.keras",
        "targets": [{"runtime": "tflite"}, {"runtime": "onnx"}],
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert aoe("keygen", "--out", tmp_path / "k").exit_code == 0
    bundle = tmp_path / "m.aoe"
    r = aoe(
        "build", tmp_path / "config.json", "--out", bundle, "--sign-key", tmp_path / "k.key",
        "--no-encrypt", "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    doc = json.loads(aoe("inspect", bundle, "--json").stdout)
    (declared,) = doc["config"]["inputs"]
    assert (declared["dtype"], declared["shape"]) == ("float32", [1, 28, 28, 1])
    assert doc["provenance"]["source"]["io_read_from_model"] == "inputs and outputs"
