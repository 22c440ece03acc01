"""A real architecture nobody here wrote: Keras's MobileNetV2, through every mobile runtime.

``keras.applications.MobileNetV2(weights=None)`` is built locally (nothing is
downloaded) with a fixed seed, saved as ``.keras`` and declared in a config as
a user would. One bundle, encrypted for a fresh x25519 device key, is built
through the CLI for ``tflite:int8``, ``onnx:basic``, ``ort:mobile``,
``mnn:fp32`` and ``ncnn:fp32``; the tests read what ``inspect`` and ``verify``
say about it.

Full-integer quantisation of this random-weight network is not faithful: on
the parity samples its top-1 class agrees with the source on about half of
the decisive samples, with errors near 30 % of the outputs' peak. The build
refuses ``tflite:int8`` for that (aoe-pack 0.1's absolute tolerance let it
through), and ``--skip-failed-targets`` ships the four others with the refusal
recorded in the signed provenance.

The configuration is the smallest one Keras publishes weights for, and keeps
the whole architecture (every inverted-residual block, the ZeroPadding2D
before each strided depthwise convolution, ReLU6, batch norm, the classifier):
``alpha=0.35`` and a 96x96x3 input keep the build, its five conversions and
their parity runs near 40 s on two cores; 100 classes give a classifier head of
realistic size that is still small next to the body. The input keeps Keras's
dynamic batch, as ``keras.applications`` builds it; the config declares batch 1.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from _cli import NO_PASSWORD, Cli

INPUT_SHAPE = (96, 96, 3)
ALPHA = 0.35
CLASSES = 100
SEED = 20261127

TARGETS = ["tflite:int8", "onnx:basic", "ort:mobile", "mnn:fp32", "ncnn:fp32"]
FOLDERS = {
    "onnx-basic": "onnx/basic/",
    "ort-mobile": "ort/mobile/",
    "mnn-fp32": "mnn/fp32/",
    "ncnn-fp32": "ncnn/fp32/",
}
"""Each target that passes, in build order, with the bundle folder its files must sit in."""


aoe = Cli(env=NO_PASSWORD)


def calibrate_batch_norm(model: Any, keras: Any) -> None:
    """Give every BatchNormalization the statistics of its input, as training would.

    Untrained, each block shrinks its input (Glorot kernels, identity batch
    norm): the features reaching the classifier are about 1e-10 and the
    softmax is exactly 1/CLASSES whatever the image, so every artifact, even
    one ignoring its input, would match the source exactly (measured: max abs
    error 0 on all four float targets). One training-mode call with momentum 0
    sets each layer's moving mean and variance to those of the batch it sees,
    each layer normalised by the ones before it.
    """
    import numpy as np

    layers = [x for x in model.layers if isinstance(x, keras.layers.BatchNormalization)]
    momentum = {id(x): x.momentum for x in layers}
    batch = np.random.default_rng(SEED).uniform(-1, 1, size=(16, *INPUT_SHAPE))
    for layer in layers:
        layer.momentum = 0.0
    model(batch.astype("float32"), training=True)
    for layer in layers:
        layer.momentum = momentum[id(layer)]


@pytest.fixture(scope="module")
def mobilenet_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MobileNetV2 (random weights) saved as mobilenet_v2.keras, beside its config.json."""
    from aoe_pack.convert.frameworks import import_tensorflow

    import_tensorflow()
    import keras

    folder = tmp_path_factory.mktemp("mobilenet")
    with warnings.catch_warnings():
        # Keras's TF backend still converts tensors with np.array(x, copy=False).
        warnings.filterwarnings(
            "ignore", message=r"__array__ implementation doesn't accept a copy keyword"
        )
        keras.utils.set_random_seed(SEED)
        model = keras.applications.MobileNetV2(
            input_shape=INPUT_SHAPE, alpha=ALPHA, include_top=True, weights=None, classes=CLASSES
        )
        calibrate_batch_norm(model, keras)
        model.save(str(folder / "mobilenet_v2.keras"))
    # The loaded model's input is named after its InputLayer, "input_layer_<n>"
    # with n counting this process's earlier inputs (not model.inputs[0].name,
    # "keras_tensor_<m>", which the saved model does not keep).
    input_name = model.layers[0].name
    config = {
        "version": "1.0.0",
        "tag": "tag_mobilenet_v2",
        "runtime": "tflite",
        "modelDir": ".",
        "modelName": "mobilenet_v2.keras",
        "inputs": [
            # MobileNetV2 expects pixels scaled to [-1, 1] (its preprocess_input).
            {"name": input_name, "dtype": "float32", "shape": [1, *INPUT_SHAPE], "range": [-1, 1]}
        ],
        # The classifier layer's name in keras.applications.
        "outputs": [{"name": "predictions", "dtype": "float32", "shape": [1, CLASSES]}],
    }
    path = folder / "config.json"
    path.write_text(json.dumps(config, indent=2))
    return path


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding signer.key/.pub (ed25519) and device.key/.pub (x25519)."""
    folder = tmp_path_factory.mktemp("keys")
    for name, kind in (("signer", "ed25519"), ("device", "x25519")):
        r = aoe("keygen", "--type", kind, "--out", folder / name, "--json")
        assert r.exit_code == 0, r.output
    return folder


@pytest.fixture(scope="module")
def bundle(mobilenet_config: Path, keys: Path) -> Path:
    """The one bundle: every target, signed, encrypted for the device key."""
    out = mobilenet_config.parent / "mobilenet_v2.aoe"
    targets = [arg for t in TARGETS for arg in ("--target", t)]
    r = aoe(
        "build",
        mobilenet_config,
        "--out",
        out,
        "--sign-key",
        keys / "signer.key",
        "--recipient",
        keys / "device.pub",
        *targets,
        "--skip-failed-targets",
        "--json",
    )
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="module")
def inspected(bundle: Path) -> dict[str, Any]:
    r = aoe("inspect", bundle, "--json")
    assert r.exit_code == 0, r.output
    doc: dict[str, Any] = json.loads(r.stdout)
    return doc


def test_source_output_depends_on_the_image(mobilenet_config: Path) -> None:
    """On the parity inputs, the source's outputs vary 100x more than a float tolerance.

    Otherwise parity would prove nothing (see calibrate_batch_norm).
    """
    import numpy as np

    from aoe_pack.config import load_config
    from aoe_pack.convert.parity import sample_inputs
    from aoe_pack.convert.sources import load_source

    config = load_config(mobilenet_config)
    source, reference = load_source(
        config.model_root / config.model_name, inputs=config.inputs, outputs=config.outputs
    )
    probs = np.concatenate([reference(feed)[0] for feed in sample_inputs(source)])
    spread = float(np.abs(probs - probs.mean(axis=0)).max())
    assert spread > 1e-3, f"predictions barely depend on the image: spread {spread:.1e}"


def test_every_float_target_is_within_its_tolerance(inspected: dict[str, Any]) -> None:
    conversions = inspected["provenance"]["conversions"]
    figures = "\n".join(f"{c['target']}: {json.dumps(c['parity']['outputs'])}" for c in conversions)
    assert [c["target"] for c in conversions] == list(FOLDERS), figures
    for c in conversions:
        parity = c["parity"]
        assert parity["passed"] is True, figures
        assert parity["conclusive"] is True, figures
        assert parity["samples"] == 8, figures
        (out,) = parity["outputs"]
        assert out["scores"] is True, figures  # a softmax: top-1 is checked
        assert float(out["relative"]) < 1e-4, figures
        assert "seconds" not in c
    assert inspected["provenance"]["source"]["format"] == "keras", figures


def test_int8_is_refused_for_disagreeing_with_the_source(inspected: dict[str, Any]) -> None:
    (refused,) = inspected["provenance"]["refused"]
    assert (refused["target"], refused["status"], refused["code"]) == (
        "tflite-int8",
        "parity-failed",
        "parity",
    )
    assert refused["reason"].startswith("tflite-int8: output 0 (predictions): ")
    (out,) = refused["parity"]["outputs"]
    # Far from the source on the scale of its outputs, and on the class it picks.
    assert float(out["relative"]) > 0.1, out
    assert out["top1"] is not None, out
    assert float(out["top1"]) < 0.85, out
    assert not any(f["path"].startswith("tflite/") for f in inspected["files"])


def test_inspect_shows_the_refused_target(bundle: Path) -> None:
    text = aoe("inspect", bundle).stdout
    assert "refused   tflite-int8: parity-failed (parity): tflite-int8: output 0" in text
    assert "parity    onnx-basic: max" in text


def test_artifacts_sit_under_their_runtime_folders(inspected: dict[str, Any]) -> None:
    files = {f["path"]: f for f in inspected["files"]}
    for c in inspected["provenance"]["conversions"]:
        assert c["files"], c["target"]
        for path in c["files"]:
            assert path.startswith(FOLDERS[c["target"]]), path
            assert files[path]["runtime"] == c["runtime"], path
            assert files[path]["encrypted"] is True, path
    models = {f["runtime"] for f in inspected["files"] if f["role"] == "model"}
    assert models == {"onnx", "ort", "mnn", "ncnn"}


def test_bundle_verifies_and_decrypts(bundle: Path, keys: Path) -> None:
    r = aoe(
        "verify",
        bundle,
        "--trusted-key",
        keys / "signer.pub",
        "--decryption-key",
        keys / "device.key",
        "--json",
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["verified"] is True
    assert doc["decrypted"] is True
