"""Regenerate the sample models: ``.venv/bin/python sample_models/make_samples.py [NAME...]``.

Every model has random weights from fixed seeds, so running this twice gives
the same files and nothing is downloaded:

* ``mnist/``: a small Keras CNN for 28x28 grey digits, saved as ``mnist.keras``
  and converted to ``mnist.tflite`` (runtime ``tensorflow``, AoE's name for
  TensorFlow Lite).
* ``squeezenet/``: a SqueezeNet-style ONNX classifier (fire modules with
  reduced widths) for 64x64 RGB images and 100 classes, built node by node
  with ``onnx.helper``.
* ``bankcard/``: the seed article's two-model feature (a card detector and a
  digit reader, one tag), built into one bundle (see :func:`make_bankcard`).

Each model's folder gets a ``config.json`` (and labels), which is validated
at the end. Needs the ``samples`` extra (tensorflow-cpu, onnx, numpy).
"""

from __future__ import annotations

import io
import json
import os
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 20261127
# Keras writes the save date into the archive; a fixed one keeps bytes stable.
FIXED_DATE = "2026-11-27@00:00:00"
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)

# CIFAR-100 class names: the labels are decorative, the weights are random.
_CIFAR100_TEXT = """
apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus
butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch
crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster house
kangaroo keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree motorcycle
mountain mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree
plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark
shrew skunk skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table
tank telephone television tiger tractor train trout tulip turtle wardrobe whale
willow_tree wolf woman worm
"""
CIFAR100 = _CIFAR100_TEXT.split()


def write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def renumber_shared_ids(value: object, ids: dict[int, int]) -> object:
    """Replace Keras's ``shared_object_id`` (a memory address) by a counter."""
    if isinstance(value, dict):
        return {
            k: ids.setdefault(v, len(ids) + 1) if k == "shared_object_id" else
            renumber_shared_ids(v, ids)
            for k, v in value.items()
        }  # fmt: skip
    if isinstance(value, list):
        return [renumber_shared_ids(v, ids) for v in value]
    return value


def stable_zip(path: Path) -> None:
    """Rewrite a Keras archive so that the same model gives the same bytes.

    Keras stores the save date, object addresses and zip entry times.
    """
    with zipfile.ZipFile(path) as src:
        entries = [(info.filename, src.read(info)) for info in src.infolist()]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as dst:
        for name, raw in sorted(entries):
            data = raw
            if name == "metadata.json":
                meta = json.loads(raw)
                meta["date_saved"] = FIXED_DATE
                data = json.dumps(meta, sort_keys=True).encode()
            elif name == "config.json":
                data = json.dumps(renumber_shared_ids(json.loads(raw), {})).encode()
            dst.writestr(zipfile.ZipInfo(name, ZIP_EPOCH), data, zipfile.ZIP_DEFLATED)
    path.write_bytes(buffer.getvalue())


# --- MNIST (Keras -> TFLite) ---------------------------------------------------


def make_mnist(out: Path) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(SEED)
    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1), batch_size=1, name="image"),
            keras.layers.Conv2D(8, 3, activation="relu", name="conv1"),
            keras.layers.MaxPooling2D(2, name="pool1"),
            keras.layers.Conv2D(16, 3, activation="relu", name="conv2"),
            keras.layers.MaxPooling2D(2, name="pool2"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(10, activation="softmax", name="probabilities"),
        ],
        name="mnist_cnn",
    )
    model.save(out / "mnist.keras")
    stable_zip(out / "mnist.keras")

    tflite = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    (out / "mnist.tflite").write_bytes(tflite)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter is deprecated, still fine here
        interpreter = tf.lite.Interpreter(model_content=tflite)
    input_name = interpreter.get_input_details()[0]["name"]
    output_name = interpreter.get_output_details()[0]["name"]

    (out / "labels.txt").write_text("".join(f"{d}\n" for d in range(10)), encoding="utf-8")
    write_json(
        out / "config.json",
        {
            "version": "1.0.0",
            "tag": "tag_mnist",
            "runtime": "tensorflow",
            "source": "installed",
            "description": "MNIST-style digit classifier with random weights (a sample).",
            "modelDir": ".",
            "modelName": "mnist.keras",
            "updateURL": "https://models.example.com/mnist/",
            "encrypt": True,
            # The Keras model is the source; build converts it for every runtime
            # (mnist.tflite stays beside it for teams that ship it as it is).
            "targets": [
                {"runtime": "tflite", "variant": "fp32"},
                {"runtime": "tflite", "variant": "fp16"},
                {"runtime": "tflite", "variant": "int8"},
                {"runtime": "onnx", "variant": "basic"},
                {"runtime": "ort", "variant": "mobile"},
                {"runtime": "mnn", "variant": "fp32"},
                {"runtime": "ncnn", "variant": "fp32"},
            ],
            "inputs": [
                {
                    "name": input_name,
                    "dtype": "float32",
                    "shape": [1, 28, 28, 1],
                    "range": [0.0, 1.0],
                }
            ],
            "outputs": [{"name": output_name, "dtype": "float32", "shape": [1, 10]}],
            "files": [{"path": "labels.txt", "role": "labels"}],
        },
    )


# --- Bank card: two models, one feature (Keras) ------------------------------------


def _keras_sample(model: object, path: Path) -> None:
    model.save(path)  # type: ignore[attr-defined]
    stable_zip(path)


def make_bankcard(out: Path) -> None:
    """The seed article's example: find the card and its number, then read the digits.

    Two Keras models with random weights, each in a folder of its own with a
    config under the same tag and version, built into one bundle:

    * ``detector/``: a 96x96 RGB photo -> the number strip's box (4 values in
      [0, 1]) and whether a card is there (2-class softmax);
    * ``recognizer/``: the 32x128 grey strip -> 16 character positions, each a
      softmax over the 10 digits and a blank. Its config declares no inputs
      or outputs, as AoE configs never did: the build reads them.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    common = {"version": "1.0.0", "tag": "tag_bankcard", "runtime": "tensorflow",
              "source": "installed", "modelDir": ".", "encrypt": True,
              "updateURL": "https://models.example.com/bankcard/"}  # fmt: skip

    keras.utils.set_random_seed(SEED + 1)
    image = keras.Input(shape=(96, 96, 3), batch_size=1, name="photo")
    x = image
    for i, width in enumerate((16, 32, 64)):
        x = keras.layers.Conv2D(width, 3, strides=2, padding="same", name=f"conv{i}")(x)
        x = keras.layers.ReLU(name=f"relu{i}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    box = keras.layers.Dense(4, activation="sigmoid", name="box")(x)
    card = keras.layers.Dense(2, activation="softmax", name="card")(x)
    folder = out / "detector"
    folder.mkdir(parents=True, exist_ok=True)
    _keras_sample(keras.Model(image, [box, card], name="card_detector"), folder / "detector.keras")
    write_json(
        folder / "config.json",
        {**common, "description": "Bank-card detector: the number strip's box (a sample).",
         "modelName": "detector.keras",
         "inputs": [{"name": "photo", "dtype": "float32", "shape": [1, 96, 96, 3],
                     "range": [0.0, 1.0]}],
         "targets": [{"runtime": "tflite", "variant": "fp16"}, {"runtime": "onnx"},
                     {"runtime": "mnn"}]},
    )  # fmt: skip

    keras.utils.set_random_seed(SEED + 2)
    strip = keras.Input(shape=(32, 128, 1), batch_size=1, name="strip")
    x = strip
    for i, width in enumerate((16, 32)):
        x = keras.layers.Conv2D(width, 3, padding="same", activation="relu", name=f"conv{i}")(x)
        x = keras.layers.MaxPooling2D((2, 2), name=f"pool{i}")(x)
    x = keras.layers.Conv2D(64, (8, 1), activation="relu", name="column")(x)  # 1 x 32 x 64
    x = keras.layers.Reshape((32, 64), name="columns")(x)
    x = keras.layers.Reshape((16, 128), name="positions")(x)  # two columns per position
    digits = keras.layers.Dense(11, activation="softmax", name="digits")(x)
    folder = out / "recognizer"
    folder.mkdir(parents=True, exist_ok=True)
    _keras_sample(keras.Model(strip, digits, name="digit_reader"), folder / "recognizer.keras")
    (folder / "labels.txt").write_text("".join(f"{d}\n" for d in [*range(10), "blank"]))
    write_json(
        folder / "config.json",
        {**common, "description": "Bank-card number reader: 16 positions, 10 digits and a "
         "blank (a sample).", "modelName": "recognizer.keras",
         "files": [{"path": "labels.txt", "role": "labels"}],
         "targets": [{"runtime": "tflite", "variant": "fp16"}, {"runtime": "ncnn"}]},
    )  # fmt: skip


# --- SqueezeNet (ONNX, built by hand) --------------------------------------------


class GraphBuilder:
    """Collects ONNX nodes and random initializers with unique names."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[object] = []
        self.initializers: list[object] = []

    def weight(self, name: str, shape: tuple[int, ...]) -> str:
        from onnx import numpy_helper

        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
        scale = np.sqrt(2.0 / fan_in)
        value = (self.rng.standard_normal(shape) * scale).astype(np.float32)
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], name: str, **attrs: object) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def conv(self, x: str, name: str, c_in: int, c_out: int, *, k: int, stride: int = 1) -> str:
        w = self.weight(f"{name}.weight", (c_out, c_in, k, k))
        b = self.weight(f"{name}.bias", (c_out,))
        pad = k // 2
        y = self.node(
            "Conv", [x, w, b], name, kernel_shape=[k, k], strides=[stride, stride],
            pads=[pad] * 4,
        )  # fmt: skip
        return self.node("Relu", [y], f"{name}.relu")

    def fire(self, x: str, name: str, c_in: int, squeeze: int, expand: int) -> str:
        s = self.conv(x, f"{name}.squeeze1x1", c_in, squeeze, k=1)
        e1 = self.conv(s, f"{name}.expand1x1", squeeze, expand, k=1)
        e3 = self.conv(s, f"{name}.expand3x3", squeeze, expand, k=3)
        return self.node("Concat", [e1, e3], f"{name}.concat", axis=1)

    def max_pool(self, x: str, name: str) -> str:
        return self.node("MaxPool", [x], name, kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)


def make_squeezenet(out: Path, classes: int = len(CIFAR100)) -> None:
    import onnx
    from onnx import TensorProto, helper

    g = GraphBuilder(SEED)
    x = g.conv("image", "conv1", 3, 32, k=3, stride=2)  # 64 -> 32
    x = g.max_pool(x, "pool1")  # 32 -> 16
    x = g.fire(x, "fire2", 32, 8, 32)
    x = g.fire(x, "fire3", 64, 8, 32)
    x = g.max_pool(x, "pool3")  # 16 -> 8
    x = g.fire(x, "fire4", 64, 16, 64)
    x = g.fire(x, "fire5", 128, 16, 64)
    x = g.conv(x, "conv10", 128, classes, k=1)
    x = g.node("GlobalAveragePool", [x], "gap")
    x = g.node("Flatten", [x], "flatten", axis=1)
    g.node("Softmax", [x], "probabilities", axis=1)

    graph = helper.make_graph(
        g.nodes,
        "squeezenet_mini",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, classes])],
        initializer=g.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17)],
        producer_name="aoe-pack make_samples",
        ir_version=8,
    )
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, out / "squeezenet.onnx")

    (out / "labels.txt").write_text("".join(f"{c}\n" for c in CIFAR100), encoding="utf-8")
    write_json(
        out / "config.json",
        {
            "version": "1.0.0",
            "tag": "tag_squeezenet",
            "runtime": "onnx",
            "source": "remote",
            "description": "SqueezeNet-style 100-class image classifier with random weights "
            "(a sample).",
            "modelDir": ".",
            "modelName": "squeezenet.onnx",
            "updateURL": "https://models.example.com/squeezenet/",
            "encrypt": True,
            # Every target reachable from an ONNX source.
            "targets": [
                {"runtime": "onnx", "variant": "basic"},
                {"runtime": "ort", "variant": "mobile"},
                {"runtime": "mnn", "variant": "fp32"},
                {"runtime": "mnn", "variant": "fp16"},
                {"runtime": "ncnn", "variant": "fp32"},
                {"runtime": "ncnn", "variant": "fp16"},
            ],
            "inputs": [
                {"name": "image", "dtype": "float32", "shape": [1, 3, 64, 64], "range": [0.0, 1.0]}
            ],
            "outputs": [{"name": "probabilities", "dtype": "float32", "shape": [1, classes]}],
            "files": [{"path": "labels.txt", "role": "labels"}],
        },
    )


SAMPLES = {"mnist": make_mnist, "squeezenet": make_squeezenet, "bankcard": make_bankcard}


def main(argv: list[str]) -> int:
    """Make every sample, or those named on the command line."""
    from aoe_pack.config import migrate_config, validate_config

    for name in argv or list(SAMPLES):
        out = HERE / name
        out.mkdir(exist_ok=True)
        SAMPLES[name](out)
        for config in sorted(out.glob("**/config.json")):
            # The config in canonical key order, exactly as `aoe-pack migrate --no-model` would.
            migrate_config(config)
            report = validate_config(config)
            for violation in report.violations:
                print(f"{config}: {violation}", file=sys.stderr)
            files = sorted(p for p in config.parent.iterdir() if p.is_file())
            sizes = ", ".join(f"{p.name} {p.stat().st_size} B" for p in files)
            print(f"{config.parent.relative_to(HERE)}: {sizes}")
            if not report.ok:
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
