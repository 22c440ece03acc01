"""Keras sources as people write them: preprocessing inside the model, Lambda layers.

Each model is built here, with a fixed seed, and saved as .keras.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _cli import NO_PASSWORD, Cli

from aoe_pack.convert.context import BuildContext
from aoe_pack.convert.frameworks import import_tensorflow
from aoe_pack.convert.sources import load_source
from aoe_pack.errors import UnsupportedModelError


def keras_model(tmp_path: Path, build: Callable[[Any], Any], name: str = "model.keras") -> Path:
    import_tensorflow()
    import keras

    keras.utils.set_random_seed(5)
    with warnings.catch_warnings():
        # Keras's TF backend still converts tensors with np.array(x, copy=False).
        warnings.filterwarnings(
            "ignore", message=r"__array__ implementation doesn't accept a copy keyword"
        )
        model = build(keras)
        path = tmp_path / name
        model.save(str(path))
    return path


def test_normalization_constants_stay_constants_in_the_onnx_export(tmp_path: Path) -> None:
    """Its mean and variance are captured tensors, which tf2onnx made graph inputs."""
    import onnx
    import onnxruntime as ort

    def build(keras: Any) -> Any:
        norm = keras.layers.Normalization()
        norm.adapt(np.random.default_rng(1).normal(3.0, 2.0, size=(64, 6)).astype("float32"))
        x = keras.Input(shape=(6,), batch_size=1, name="features")
        return keras.Model(x, keras.layers.Dense(3)(norm(x)))

    path = keras_model(tmp_path, build)
    source, reference = load_source(path, inputs=None, outputs=None)
    exported = BuildContext(tmp_path / "build").onnx_of(source)
    model = onnx.load(str(exported))
    initializers = {i.name for i in model.graph.initializer}
    assert [i.name for i in model.graph.input if i.name not in initializers] == ["features"]
    x = np.random.default_rng(2).normal(3.0, 2.0, size=(1, 6)).astype("float32")
    got = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"]).run(
        None, {"features": x}
    )[0]
    np.testing.assert_allclose(got, reference({"features": x})[0], rtol=1e-5, atol=1e-6)


def test_grouped_convolution_and_exact_gelu_reach_onnx(tmp_path: Path) -> None:
    """ConvNeXt's two blockers: an XLA-compiled grouped Conv2D, and gelu's Erfc.

    tf2onnx refused the first as "No Op registered for StatefulPartitionedCall"
    and had no handler for the second.
    """
    import onnx
    import onnxruntime as ort

    def build(keras: Any) -> Any:
        x = keras.Input(shape=(8, 8, 4), batch_size=1, name="image")
        y = keras.layers.Conv2D(4, 3, padding="same", groups=4)(x)
        return keras.Model(x, keras.layers.Activation("gelu")(y))  # approximate=False

    path = keras_model(tmp_path, build)
    source, reference = load_source(path, inputs=None, outputs=None)
    exported = BuildContext(tmp_path / "build").onnx_of(source)
    ops = {n.op_type for n in onnx.load(str(exported)).graph.node}
    assert {"Conv", "Erf"} <= ops
    x = np.random.default_rng(3).normal(size=(1, 8, 8, 4)).astype("float32")
    got = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"]).run(
        None, {"image": x}
    )[0]
    np.testing.assert_allclose(got, reference({"image": x})[0], rtol=1e-5, atol=1e-6)


def test_a_lambda_layer_is_refused_with_what_to_do(tmp_path: Path) -> None:
    def build(keras: Any) -> Any:
        x = keras.Input(shape=(4,), name="x")
        return keras.Model(x, keras.layers.Lambda(lambda t: t * 2.0)(x))

    path = keras_model(tmp_path, build)
    with pytest.raises(UnsupportedModelError) as caught:
        load_source(path, inputs=None, outputs=None)
    assert caught.value.message == (
        "model.keras has a Lambda layer holding Python code, which Keras "
        f"{_keras_version()} does not load by default (it could run anything) and aoe-pack "
        "never runs"
    )
    assert "export it with model.export(folder)" in (caught.value.hint or "")
    assert "corrupt" not in (caught.value.hint or "")


def _keras_version() -> str:
    import keras

    return str(keras.__version__)


def test_select_tf_ops_are_recorded_and_named_when_parity_cannot_run(tmp_path: Path) -> None:
    """An LSTM of dynamic batch needs TensorFlow's list ops (Flex) unless its batch is fixed.

    Asked for with "selectTfOps", the artifact records that a device needs the
    select-tf-ops runtime; LiteRT's Python interpreter cannot run it, so parity
    refuses it, naming why and what to do.
    """
    import json

    def build(keras: Any) -> Any:
        x = keras.Input(shape=(6, 3), name="sequence")
        return keras.Model(x, keras.layers.Dense(2)(keras.layers.LSTM(4)(x)))

    keras_model(tmp_path, build)
    config = {
        "version": "1.0.0", "tag": "rnn", "runtime": "tflite", "modelDir": ".",
        "modelName": "model.keras",
        "inputs": [{"name": "sequence", "dtype": "float32", "shape": [-1, 6, 3]}],
        "targets": [{"runtime": "tflite", "selectTfOps": True}],
    }  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps(config))
    aoe = Cli(env=NO_PASSWORD, process=True)
    assert aoe("keygen", "--out", tmp_path / "k").exit_code == 0
    r = aoe(
        "build", tmp_path / "config.json", "--out", tmp_path / "r.aoe",
        "--sign-key", tmp_path / "k.key", "--no-encrypt", json=True,
    )  # fmt: skip
    (target,) = r.doc["targets"]
    assert target["status"] == "refused"
    assert target["requires"] == ["tensorflow-lite-select-tf-ops"]
    assert (
        "uses TensorFlow (Flex) ops, which LiteRT's Python interpreter cannot run"
        in (target["reason"])
    )
