"""Shared fixtures for the conversion tests: the samples, loaded once, and their artifacts.

Converting is the slow part (TensorFlow import, tf2onnx, the ORT subprocess),
so every artifact is made once per session by ``converted`` and shared by the
tests that check it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from aoe_pack.config import load_config
from aoe_pack.config.model import ModelConfig
from aoe_pack.convert import parity
from aoe_pack.convert.api import Array, Artifact, Parity, Runner, SourceModel, Target
from aoe_pack.convert.context import BuildContext
from aoe_pack.convert.onnx_target import OnnxConverter
from aoe_pack.convert.ort import OrtConverter
from aoe_pack.convert.sources import load_source
from aoe_pack.convert.tflite import TFLiteConverter

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_models"
FIXTURES = ROOT / "tests" / "fixtures" / "models"
CONVERTERS = {c.runtime: c for c in (TFLiteConverter(), OnnxConverter(), OrtConverter())}

SOURCES = {
    # name: (model file, config declaring its I/O)
    "mnist.keras": ("mnist/mnist.keras", "mnist/config.json"),
    "mnist.tflite": ("mnist/mnist.tflite", "mnist/config.json"),
    "squeezenet.onnx": ("squeezenet/squeezenet.onnx", "squeezenet/config.json"),
}


@dataclass(frozen=True)
class Loaded:
    source: SourceModel
    reference: Runner
    config: ModelConfig
    inputs: list[dict[str, Array]]
    """The seeded parity inputs (parity.sample_inputs)."""


@dataclass(frozen=True)
class Converted:
    artifact: Artifact
    runner: Runner
    parity: Parity


@pytest.fixture(scope="session")
def loaded() -> Callable[[str], Loaded]:
    """A sample by name (see SOURCES), loaded and validated once."""
    cache: dict[str, Loaded] = {}

    def get(name: str) -> Loaded:
        if name not in cache:
            model, config_path = SOURCES[name]
            config = load_config(SAMPLES / config_path)
            source, reference = load_source(
                SAMPLES / model, inputs=config.inputs, outputs=config.outputs
            )
            cache[name] = Loaded(source, reference, config, parity.sample_inputs(source))
        return cache[name]

    return get


@pytest.fixture(scope="session")
def converted(
    loaded: Callable[[str], Loaded], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str, str, str], Converted]:
    """The artifact for (sample, runtime, variant) with its parity, made once per session.

    Each sample has one build context, as in a build: its ONNX form is made once.
    """
    builds: dict[str, BuildContext] = {}
    cache: dict[tuple[str, str, str], Converted] = {}

    def get(name: str, runtime: str, variant: str) -> Converted:
        key = (name, runtime, variant)
        if key not in cache:
            sample = loaded(name)
            if name not in builds:
                builds[name] = BuildContext(tmp_path_factory.mktemp("build"), config_dir=SAMPLES)
            conv = CONVERTERS[runtime]
            target = Target(runtime=runtime, variant=variant)
            artifact = conv.convert(sample.source, target, builds[name].for_target(target))
            runner = conv.load(artifact)
            tolerance = conv.default_tolerance(variant)
            measured = parity.measure(
                sample.reference,
                runner,
                sample.inputs,
                tolerance=tolerance,
                names=[o.name for o in sample.source.outputs],
            )
            cache[key] = Converted(artifact, runner, measured)
        return cache[key]

    return get


@pytest.fixture
def build_ctx(tmp_path: Path) -> BuildContext:
    """A fresh build context in tmp_path, the config folder being the mnist sample's."""
    return BuildContext(tmp_path / "build", config_dir=SAMPLES / "mnist")


@pytest.fixture(scope="session")
def mnist_savedmodel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mnist.keras exported as a SavedModel (serving_default: image -> output_0)."""
    from aoe_pack.convert.frameworks import import_tensorflow

    tf = import_tensorflow()
    import keras

    folder = tmp_path_factory.mktemp("savedmodel") / "mnist_savedmodel"
    model = keras.saving.load_model(str(SAMPLES / "mnist" / "mnist.keras"))
    signature = [tf.TensorSpec(t.shape, t.dtype, name=t.name) for t in model.inputs]
    model.export(str(folder), format="tf_saved_model", verbose=False, input_signature=signature)
    return folder


@pytest.fixture(scope="session")
def multi_io_keras(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-input, two-output Keras model whose names sort against their order.

    Inputs ``alpha`` [1, 4] and ``beta`` [1, 3]; outputs ``zeta_probs`` [1, 5]
    (softmax) then ``aaa_reg`` [1, 2]: any runner that reorders by name fails.
    """
    from aoe_pack.convert.frameworks import import_tensorflow

    import_tensorflow()
    import keras

    path = tmp_path_factory.mktemp("multi") / "multi.keras"
    with warnings.catch_warnings():
        # Keras's TF backend still converts tensors with np.array(x, copy=False).
        warnings.filterwarnings(
            "ignore", message=r"__array__ implementation doesn't accept a copy keyword"
        )
        keras.utils.set_random_seed(20261127)
        alpha = keras.Input((4,), batch_size=1, name="alpha")
        beta = keras.Input((3,), batch_size=1, name="beta")
        joined = keras.layers.Concatenate()([alpha, beta])
        probs = keras.layers.Dense(5, activation="softmax", name="zeta_probs")(joined)
        reg = keras.layers.Dense(2, name="aaa_reg")(joined)
        keras.Model([alpha, beta], [probs, reg]).save(str(path))
    return path
