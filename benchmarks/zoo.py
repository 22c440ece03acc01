"""Generate the model zoo: models nobody tuned for aoe-pack, for the coverage benchmark.

Run:  .venv/bin/python benchmarks/zoo.py --out DIR [--slice smoke|full|exported] [--only NAME ...]
          [--list]

Each entry is a folder ``DIR/<name>/`` holding ``config.json`` (canonical
aoe-pack form, every one of the 13 targets, the entry's notes as its
``description``), the model file(s) and, for ONNX entries, ``samples.npz``
(real inputs, named by graph input, stacked on a new first axis; the config
names it as ``sampleInputs``) and ``reference.npz`` (ONNX's expected outputs
``output_0``... in graph-output order, stacked the same way). ``DIR/index.json``
lists ``{name, family, source_format, config, notes}`` for every entry in DIR.

Families:

* ``keras_app``: keras.applications at their smallest input size, weights=None,
  classes=10 (softmax), saved as ``.keras``; input ``image`` [1,H,W,3] in [0, 1].
* ``recurrent``: LSTM, GRU, SimpleRNN, Bidirectional(LSTM), Embedding+LSTM on int32
  token ids, Conv1D.
* ``multi_io``: two inputs of different shapes, two outputs.
* ``dynamic_batch``: inputs declared with a -1 batch.
* ``preprocessing``: adapted Normalization, Rescaling on uint8 pixels, Resizing, and
  a Python ``Lambda`` that Keras 3 refuses to load unless ``safe_mode=False``.
* ``source_format``: a SavedModel folder, a legacy ``.h5`` and a ``.tflite``.
* ``onnx_node``: single-operator models from ONNX's backend node tests, one per op
  type (ONNX_TESTS_PER_OP), kept only where onnxruntime reproduces ONNX's expected
  outputs (see :func:`select_onnx`); opsets as ONNX wrote them (1 to 28). The
  selection and every dropped test are written to ``DIR/onnx_selection.json``.
* ``onnx_exported``: the same node tests in the form an exporter writes (named
  ``onnxx_<test>``): the first input stays a graph input, and every later input
  that is not its peer (same dtype and shape) becomes an initializer holding the
  test's value, as weights, biases, axes, shapes, pads and indices are in a model
  from ``torch.onnx.export`` or tf2onnx. A backend node test feeds all of them at
  run time, which no exported model does and which converters that fold
  constants (onnx2tf, MNN, pnnx) cannot express.

The ``smoke`` slice is 10 small entries, one per failure class, made in about
15 seconds; ``full`` is everything but ``onnx_exported``; ``exported`` is
``full`` with ``onnx_exported`` in place of ``onnx_node``. ``--only`` picks entries by name from
the whole registry, whatever the slice.

Determinism: every builder starts from a cleared Keras session and fixed seeds
(keras.utils.set_random_seed, numpy default_rng), ``.keras`` archives are
rewritten without dates or object addresses, and ``.npz`` files are written with
fixed zip times, so two runs give byte-identical ``.keras``, ``.h5``, ``.tflite``,
``.onnx`` and ``.npz`` files, whatever the order or slice. Exceptions, same model
but other bytes: SavedModel folders (TensorFlow orders variables differently) and
the Lambda's marshalled bytecode when zoo.py is imported rather than run.

Reruns are cheap: an entry whose folder already holds its config and model is
skipped, and the ONNX selection is reused while onnx and onnxruntime keep their
versions. Each entry is built in a hidden temporary folder and renamed into
place, so an interrupted run leaves no half entry.

ONNX test data: read from ``onnx/backend/test/data/node`` when the installed onnx
ships it (or from the folder named by ``ZOO_ONNX_NODE_DATA``). onnx wheels that
leave it out (1.23.2 does) still ship the generators of that data,
``onnx.backend.test.case.node``, which ONNX runs with ``np.random.seed(0)``
before each export: the same models and inputs are then made in-process.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import io
import json
import os
import shutil
import sys
import time
import warnings
import zipfile
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sample_models"))
from make_samples import stable_zip

SEED = 20261205
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
SLICES = ("smoke", "full", "exported")
FAMILIES = (
    "keras_app", "recurrent", "multi_io", "dynamic_batch", "preprocessing", "source_format",
    "onnx_node", "onnx_exported",
)  # fmt: skip
TARGETS = [
    {"runtime": runtime, "variant": variant}
    for runtime, variants in (
        ("tflite", ("fp32", "fp16", "int8-dynamic", "int8")),
        ("onnx", ("basic", "extended", "slim")),
        ("ort", ("mobile",)),
        ("mnn", ("fp32", "fp16", "int8-weights")),
        ("ncnn", ("fp32", "fp16")),
    )
    for variant in variants
]
CONFIG_DTYPES = ("float32", "float16", "float64", "int8", "uint8", "int32", "int64", "bool")
IMAGE = (0.0, 1.0)
GENERIC = (-1.0, 1.0)

Array = np.ndarray[Any, Any]
Range = tuple[float, float]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the registry -----------------------------------------------------------------------


@dataclass(frozen=True)
class Built:
    """What a builder made in its folder."""

    model_name: str
    source_format: str  # keras, h5, savedmodel, tflite, onnx
    inputs: list[dict[str, Any]]
    notes: str
    samples: dict[str, Array] | None = None
    reference: dict[str, Array] | None = None


Builder = Callable[[Path], Built]
KerasBuilt = tuple[Any, dict[str, Range], str]  # (model, input ranges by name, notes)


@dataclass(frozen=True)
class Entry:
    name: str
    family: str
    builder: Builder = field(repr=False)
    slices: tuple[str, ...] = ("full",)


ENTRIES: dict[str, Entry] = {}


def zoo_entry(
    family: str,
    *,
    smoke: bool = False,
    name: str | None = None,
    slices: tuple[str, ...] = ("full", "exported"),
) -> Callable[[Builder], Builder]:
    """Register a builder (``build_<name>`` unless ``name`` is given) in ENTRIES."""

    def register(builder: Builder) -> Builder:
        key = name or builder.__name__.removeprefix("build_")
        assert key not in ENTRIES, key
        assert family in FAMILIES, family
        ENTRIES[key] = Entry(key, family, builder, ("smoke", *slices) if smoke else slices)
        return builder

    return register


def keras_entry(
    family: str, *, smoke: bool = False, batch: int = 1
) -> Callable[[Callable[[Any], KerasBuilt]], Builder]:
    """Register ``build_<name>(keras) -> (model, ranges, notes)``; saved as model.keras.

    The builder runs in a cleared, seeded Keras session; a None batch dimension is
    declared as ``batch`` (1, or -1 for the dynamic-batch family).
    """

    def register(make: Callable[[Any], KerasBuilt]) -> Builder:
        name = make.__name__.removeprefix("build_")

        def build(folder: Path) -> Built:
            model, ranges, notes = make(_fresh(name))
            _save_keras(model, folder / "model.keras")
            return Built("model.keras", "keras", _declare(model.inputs, ranges, batch), notes)

        return zoo_entry(family, smoke=smoke, name=name)(build)

    return register


def _runtime_of(source_format: str) -> str:
    return "onnx" if source_format == "onnx" else "tflite"


def _source_format_of(model_name: str) -> str:
    suffix = Path(model_name).suffix.lower()
    formats = {".keras": "keras", ".h5": "h5", ".tflite": "tflite", ".onnx": "onnx"}
    return formats.get(suffix, "savedmodel")


# --- Keras helpers --------------------------------------------------------------------


def _fresh(name: str) -> Any:
    """keras (TensorFlow backend) in a cleared session, seeded from the entry's name."""
    os.environ["KERAS_BACKEND"] = "tensorflow"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # same arithmetic run to run
    import keras

    keras.backend.clear_session()  # layer-name counters restart: same names every run
    keras.utils.set_random_seed(SEED + zlib.crc32(name.encode()) % 100_000)
    return keras


def _save_keras(model: Any, path: Path) -> None:
    """model.save, then the archive rewritten without dates and object addresses."""
    model.save(path)
    stable_zip(path)


def _declare(tensors: Sequence[Any], ranges: dict[str, Range], batch: int = 1) -> list[dict]:
    """Config inputs for Keras input tensors; a None batch is declared as ``batch``."""
    declared = []
    for tensor in tensors:
        shape = [batch if i == 0 and d is None else -1 if d is None else int(d)
                 for i, d in enumerate(tensor.shape)]  # fmt: skip
        dtype = str(tensor.dtype)
        assert dtype in CONFIG_DTYPES, dtype
        lo, hi = ranges[tensor.name]
        if dtype.startswith(("int", "uint")):
            lo, hi = int(lo), int(hi)
        declared.append({"name": tensor.name, "dtype": dtype, "shape": shape, "range": [lo, hi]})
    return declared


def _softmax(keras: Any, x: Any, classes: int, name: str = "probabilities") -> Any:
    return keras.layers.Dense(classes, activation="softmax", name=name)(x)


def _tiny_cnn(keras: Any, x: Any, classes: int) -> Any:
    y = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(x)
    return _softmax(keras, keras.layers.GlobalAveragePooling2D(name="pool")(y), classes)


# --- family: keras.applications -----------------------------------------------------------

# (constructor, input size: the smallest each accepts with weights=None)
APPS = (
    ("MobileNetV3Small", 32), ("MobileNet", 32), ("MobileNetV2", 32), ("MobileNetV3Large", 32),
    ("EfficientNetB0", 32), ("EfficientNetV2B0", 32), ("NASNetMobile", 32), ("DenseNet121", 32),
    ("ResNet50", 32), ("ResNet50V2", 32), ("VGG16", 32), ("ConvNeXtTiny", 32),
    ("InceptionV3", 75), ("Xception", 71),
)  # fmt: skip


def _app_builder(constructor: str, size: int) -> Builder:
    name = f"app_{constructor.lower()}"

    def build(folder: Path) -> Built:
        keras = _fresh(name)
        image = keras.Input(shape=(size, size, 3), name="image")
        model = getattr(keras.applications, constructor)(
            weights=None, input_tensor=image, classes=10
        )
        _save_keras(model, folder / "model.keras")
        built_in = [type(layer).__name__ for layer in model.layers[1:4]]
        built_in = [n for n in built_in if n in {"Rescaling", "Normalization"}]
        notes = (
            f"keras.applications.{constructor}(weights=None, classes=10) at {size}x{size}, "
            f"{model.count_params():,} random weights, softmax output"
            + (f"; built-in preprocessing: {' + '.join(built_in)}" if built_in else "")
        )
        return Built("model.keras", "keras", _declare(model.inputs, {"image": IMAGE}), notes)

    smoke = constructor == "MobileNetV3Small"
    return zoo_entry("keras_app", smoke=smoke, name=name)(build)


for _constructor, _size in APPS:
    _app_builder(_constructor, _size)


# --- family: recurrent and sequence models ------------------------------------------------

VOCAB = 1000


@keras_entry("recurrent")
def build_rnn_lstm(keras: Any) -> KerasBuilt:
    x = keras.Input(shape=(20, 8), name="sequence")
    y = keras.layers.LSTM(16, name="lstm")(x)
    return keras.Model(x, _softmax(keras, y, 4)), {"sequence": GENERIC}, "LSTM(16), 20 steps"


@keras_entry("recurrent")
def build_rnn_gru(keras: Any) -> KerasBuilt:
    x = keras.Input(shape=(16, 6), name="sequence")
    y = keras.layers.GRU(12, return_sequences=True, name="gru1")(x)
    y = keras.layers.GRU(8, name="gru2")(y)
    model = keras.Model(x, keras.layers.Dense(1, name="value")(y))
    return model, {"sequence": GENERIC}, "two stacked GRUs (sequences, then last state), regression"


@keras_entry("recurrent")
def build_rnn_simplernn(keras: Any) -> KerasBuilt:
    x = keras.Input(shape=(12, 5), name="sequence")
    y = keras.layers.SimpleRNN(16, name="rnn")(x)
    return keras.Model(x, _softmax(keras, y, 3)), {"sequence": GENERIC}, "SimpleRNN(16), softmax"


@keras_entry("recurrent")
def build_rnn_bilstm(keras: Any) -> KerasBuilt:
    x = keras.Input(shape=(15, 8), name="sequence")
    y = keras.layers.Bidirectional(keras.layers.LSTM(12, return_sequences=True), name="bilstm")(x)
    y = keras.layers.GlobalAveragePooling1D(name="pool")(y)
    notes = "Bidirectional(LSTM(12), return_sequences) + average pooling, softmax"
    return keras.Model(x, _softmax(keras, y, 5)), {"sequence": GENERIC}, notes


@keras_entry("recurrent", smoke=True)
def build_rnn_embedding_lstm(keras: Any) -> KerasBuilt:
    x = keras.Input(shape=(24,), dtype="int32", name="tokens")
    y = keras.layers.Embedding(VOCAB, 16, name="embedding")(x)
    y = keras.layers.LSTM(16, name="lstm")(y)
    notes = f"text classifier: int32 token ids (vocabulary {VOCAB}) -> Embedding -> LSTM, softmax"
    return keras.Model(x, _softmax(keras, y, 2)), {"tokens": (0, VOCAB - 1)}, notes


@keras_entry("recurrent")
def build_rnn_varlen_lstm(keras: Any) -> KerasBuilt:
    x = keras.Input(shape=(None,), dtype="int32", name="tokens")
    y = keras.layers.Embedding(VOCAB, 16, name="embedding")(x)
    y = keras.layers.LSTM(16, name="lstm")(y)
    notes = "text classifier over token sequences of any length (declared [1, -1]): its loop "
    notes += "cannot be unrolled"
    return keras.Model(x, _softmax(keras, y, 2)), {"tokens": (0, VOCAB - 1)}, notes


@keras_entry("recurrent")
def build_seq_conv1d(keras: Any) -> KerasBuilt:
    x = keras.Input(shape=(64, 4), name="signal")
    y = keras.layers.Conv1D(16, 5, activation="relu", name="conv1")(x)
    y = keras.layers.MaxPooling1D(2, name="pool1")(y)
    y = keras.layers.Conv1D(32, 3, activation="relu", padding="same", name="conv2")(y)
    y = keras.layers.GlobalMaxPooling1D(name="pool2")(y)
    notes = "Conv1D/MaxPooling1D/GlobalMaxPooling1D over 64 steps of 4 channels, softmax"
    return keras.Model(x, _softmax(keras, y, 3)), {"signal": GENERIC}, notes


# --- family: multiple inputs and outputs ----------------------------------------------------


@keras_entry("multi_io", smoke=True)
def build_multi_io_heads(keras: Any) -> KerasBuilt:
    image = keras.Input(shape=(32, 32, 3), name="image")
    meta = keras.Input(shape=(6,), name="metadata")
    y = keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="conv")(image)
    y = keras.layers.GlobalAveragePooling2D(name="pool")(y)
    z = keras.layers.Dense(8, activation="relu", name="meta_dense")(meta)
    joint = keras.layers.Concatenate(name="joint")([y, z])
    heads = [
        _softmax(keras, joint, 5, name="class_probs"),
        keras.layers.Dense(1, name="score")(joint),
    ]
    notes = "inputs image [1,32,32,3] + metadata [1,6]; outputs class_probs (softmax) + score"
    return keras.Model([image, meta], heads), {"image": IMAGE, "metadata": GENERIC}, notes


@keras_entry("multi_io")
def build_multi_io_seq_tab(keras: Any) -> KerasBuilt:
    seq = keras.Input(shape=(10, 4), name="sequence")
    tab = keras.Input(shape=(8,), name="features")
    y = keras.layers.Flatten(name="flatten")(keras.layers.Conv1D(8, 3, name="conv")(seq))
    z = keras.layers.Dense(8, activation="tanh", name="tab_dense")(tab)
    embedding = keras.layers.Dense(16, name="embedding")(keras.layers.Concatenate()([y, z]))
    logits = keras.layers.Dense(3, name="logits")(keras.layers.ReLU(name="relu")(embedding))
    notes = "inputs sequence [1,10,4] + features [1,8]; outputs logits [1,3] + embedding [1,16]"
    ranges = {"sequence": GENERIC, "features": GENERIC}
    return keras.Model([seq, tab], [logits, embedding]), ranges, notes


# --- family: dynamic batch --------------------------------------------------------------


@keras_entry("dynamic_batch", smoke=True, batch=-1)
def build_dyn_batch_mlp(keras: Any) -> KerasBuilt:
    x = keras.Input(shape=(16,), name="features")
    y = keras.layers.Dense(32, activation="relu", name="hidden")(x)
    notes = "MLP with a dynamic batch, declared [-1, 16]"
    return keras.Model(x, _softmax(keras, y, 4)), {"features": GENERIC}, notes


@keras_entry("dynamic_batch", batch=-1)
def build_dyn_batch_cnn(keras: Any) -> KerasBuilt:
    x = keras.Input(shape=(28, 28, 1), name="image")
    y = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(x)
    y = keras.layers.BatchNormalization(name="bn")(keras.layers.MaxPooling2D(2, name="pool")(y))
    y = keras.layers.Flatten(name="flatten")(y)
    notes = "small CNN with BatchNormalization and a dynamic batch, declared [-1, 28, 28, 1]"
    return keras.Model(x, _softmax(keras, y, 10)), {"image": IMAGE}, notes


# --- family: preprocessing layers --------------------------------------------------------


@keras_entry("preprocessing")
def build_pre_normalization(keras: Any) -> KerasBuilt:
    rng = np.random.default_rng(SEED)
    data = rng.uniform(-1.0, 1.0, (512, 10)) * np.linspace(0.2, 1.0, 10) + 0.1
    norm = keras.layers.Normalization(name="normalize")
    norm.adapt(data.astype("float32"))
    x = keras.Input(shape=(10,), name="features")
    y = keras.layers.Dense(16, activation="relu", name="hidden")(norm(x))
    notes = "Normalization layer adapted on 512 seeded samples, then an MLP"
    return keras.Model(x, _softmax(keras, y, 3)), {"features": GENERIC}, notes


@keras_entry("preprocessing")
def build_pre_rescaling(keras: Any) -> KerasBuilt:
    x = keras.Input(shape=(32, 32, 3), dtype="uint8", name="pixels")
    y = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(x)
    notes = "uint8 pixels [0, 255] -> Rescaling(1/255) -> small CNN"
    return keras.Model(x, _tiny_cnn(keras, y, 4)), {"pixels": (0, 255)}, notes


@keras_entry("preprocessing")
def build_pre_resizing(keras: Any) -> KerasBuilt:
    x = keras.Input(shape=(48, 48, 3), name="image")
    y = keras.layers.Resizing(32, 32, interpolation="bilinear", name="resize")(x)
    notes = "Resizing(32, 32, bilinear) from 48x48 in the graph, then a small CNN"
    return keras.Model(x, _tiny_cnn(keras, y, 4)), {"image": IMAGE}, notes


@keras_entry("preprocessing", smoke=True)
def build_pre_lambda(keras: Any) -> KerasBuilt:
    x = keras.Input(shape=(16, 16, 3), name="image")
    y = keras.layers.Lambda(lambda t: t * 2.0, name="double")(x)
    notes = (
        "Lambda(lambda x: x * 2.0): keras.saving.load_model refuses it unless "
        "safe_mode=False (expected failure class)"
    )
    return keras.Model(x, _tiny_cnn(keras, y, 3)), {"image": IMAGE}, notes


# --- family: other source formats -----------------------------------------------------------


@zoo_entry("source_format", smoke=True)
def build_fmt_savedmodel(folder: Path) -> Built:
    keras = _fresh("fmt_savedmodel")
    import tensorflow as tf

    x = keras.Input(shape=(24, 24, 3), name="image")
    model = keras.Model(x, _tiny_cnn(keras, x, 5))
    path = folder / "model.savedmodel"
    signature = [tf.TensorSpec(t.shape, t.dtype, name=t.name) for t in model.inputs]
    model.export(str(path), format="tf_saved_model", verbose=False, input_signature=signature)
    serving = tf.saved_model.load(str(path)).signatures["serving_default"]
    inputs = [
        {
            "name": key,
            "dtype": spec.dtype.name,
            "shape": [1, *(-1 if d is None else int(d) for d in spec.shape[1:])],
            "range": list(IMAGE),
        }
        for key, spec in sorted(serving.structured_input_signature[1].items())
    ]
    notes = "TensorFlow SavedModel folder (model.export, format=tf_saved_model), serving_default"
    return Built(path.name, "savedmodel", inputs, notes)


@zoo_entry("source_format")
def build_fmt_h5(folder: Path) -> Built:
    keras = _fresh("fmt_h5")
    x = keras.Input(shape=(12,), name="features")
    y = keras.layers.Dense(24, activation="relu", name="hidden")(x)
    y = keras.layers.Dropout(0.2, name="dropout")(keras.layers.BatchNormalization(name="bn")(y))
    model = keras.Model(x, _softmax(keras, y, 3))
    with contextlib.redirect_stderr(io.StringIO()):  # the "legacy format" warning
        model.save(folder / "model.h5")
    inputs = _declare(model.inputs, {"features": GENERIC})
    return Built("model.h5", "h5", inputs, "legacy HDF5 Keras file (model.save to .h5)")


@zoo_entry("source_format", smoke=True)
def build_fmt_tflite(folder: Path) -> Built:
    keras = _fresh("fmt_tflite")
    import tensorflow as tf

    x = keras.Input(shape=(20, 20, 1), name="image")
    model = keras.Model(x, _tiny_cnn(keras, x, 6))
    with contextlib.redirect_stdout(io.StringIO()):  # the converter's export summary
        (folder / "model.tflite").write_bytes(
            tf.lite.TFLiteConverter.from_keras_model(model).convert()
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter is deprecated, still fine here
        interpreter = tf.lite.Interpreter(model_path=str(folder / "model.tflite"))
    inputs = [
        {
            "name": key,
            "dtype": np.dtype(detail["dtype"]).name,
            "shape": [1, *(int(d) for d in detail["shape_signature"][1:])],
            "range": list(IMAGE),
        }
        for key, detail in sorted(
            interpreter.get_signature_runner("serving_default").get_input_details().items()
        )
    ]
    notes = "a .tflite converted from a small Keras CNN (TFLiteConverter.from_keras_model)"
    return Built("model.tflite", "tflite", inputs, notes)


# --- family: ONNX backend node tests ----------------------------------------------------------

ONNX_TESTS_PER_OP = 1  # 2 doubles the family (about 320 tests instead of 170)
ONNX_RTOL, ONNX_ATOL = 1e-4, 1e-6  # ORT vs ONNX's reference; integers and bools exactly
ONNX_RULES = 1  # bump when the selection rules change: invalidates onnx_selection.json
ONNX_SELECTION = "onnx_selection.json"
# Smoke pins (test, generator module): opset 14 (converts as is) and 20 (down-conversion)
ONNX_PINS = (("test_relu", "relu"), ("test_gelu_default_1", "gelu"))
EXPORTED_PINS = (("test_basic_conv_with_padding", "conv"),)


@dataclass
class NodeCase:
    """One backend node test: its model and, loaded on demand, its first data set."""

    name: str
    model: Any  # onnx.ModelProto
    load: Callable[[], tuple[list[Array], list[Array]]] = field(repr=False)


def onnx_entry_name(test: str) -> str:
    return "onnx_" + test.removeprefix("test_")


def exported_entry_name(test: str) -> str:
    return "onnxx_" + test.removeprefix("test_")


def _node_data_dir() -> Path | None:
    override = os.environ.get("ZOO_ONNX_NODE_DATA")
    if override:
        return Path(override)
    import onnx

    shipped = Path(onnx.__file__).parent / "backend" / "test" / "data" / "node"
    return shipped if shipped.is_dir() else None


def _as_array(value: Any) -> Array:
    import onnx
    from onnx import numpy_helper

    return (
        numpy_helper.to_array(value) if isinstance(value, onnx.TensorProto) else np.asarray(value)
    )


def _cases_from_dir(root: Path, names: set[str] | None) -> Iterator[NodeCase]:
    import onnx

    def loader(folder: Path) -> Callable[[], tuple[list[Array], list[Array]]]:
        def load() -> tuple[list[Array], list[Array]]:
            def read(prefix: str) -> list[Array]:
                files = sorted(
                    folder.glob(f"{prefix}_*.pb"), key=lambda p: int(p.stem.split("_")[1])
                )
                return [_as_array(onnx.TensorProto.FromString(p.read_bytes())) for p in files]

            return read("input"), read("output")

        return load

    for test in sorted(p for p in root.iterdir() if (p / "model.onnx").is_file()):
        if names is None or test.name in names:
            model = onnx.load_model(test / "model.onnx", load_external_data=False)
            yield NodeCase(test.name, model, loader(test / "test_data_set_0"))


def _data_loader(inputs: Sequence[Any], outputs: Sequence[Any]) -> Callable[[], Any]:
    return lambda: ([_as_array(a) for a in inputs], [_as_array(a) for a in outputs])


def _cases_in_process(names: set[str] | None, modules: Sequence[str]) -> Iterator[NodeCase]:
    import importlib

    with (
        contextlib.redirect_stdout(sys.stderr),
        np.errstate(all="ignore"),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")  # the generators divide by zero on purpose
        import onnx.backend.test.case.node as generators

        for module in modules:  # a few generators instead of all of them (smoke)
            importlib.import_module(f"{generators.__name__}.{module}")
        found = {c.name for c in generators._NodeTestCases}
        if not modules or (names is not None and not names <= found):
            generators.collect_testcases(None)
    for case in sorted(generators._NodeTestCases, key=lambda c: c.name):
        if names is None or case.name in names:
            yield NodeCase(case.name, case.model, _data_loader(*case.data_sets[0]))


def node_cases(names: set[str] | None = None, modules: Sequence[str] = ()) -> Iterator[NodeCase]:
    """Backend node tests by name order (all, or those in ``names``)."""
    root = _node_data_dir()
    if root is not None:
        return _cases_from_dir(root, names)
    return _cases_in_process(names, modules)


def _dtype_name(elem_type: int) -> str:
    from onnx import TensorProto, helper

    if elem_type in (TensorProto.UNDEFINED, TensorProto.STRING):
        return TensorProto.DataType.Name(elem_type).lower()
    return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)).name


def _graph_inputs(model: Any) -> list[Any]:
    initializers = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in initializers]


def _static_reason(model: Any) -> str | None:
    """Why a test's model is not a single default-domain op on static, supported inputs."""
    ops = [n for n in model.graph.node if n.op_type != "Constant"]
    if len(ops) != 1:
        return "not a single-op graph"
    if ops[0].domain not in ("", "ai.onnx") or any(
        o.domain not in ("", "ai.onnx") for o in model.opset_import
    ):
        return "non-default domain"
    inputs = _graph_inputs(model)
    return "no graph inputs" if not inputs else _tensor_reason(inputs, model.graph.output)


def _tensor_reason(inputs: Sequence[Any], outputs: Sequence[Any]) -> str | None:
    for value, kind in [(v, "input") for v in inputs] + [(v, "output") for v in outputs]:
        if not value.type.HasField("tensor_type"):
            return f"non-tensor {kind}"
        tensor = value.type.tensor_type
        if _dtype_name(tensor.elem_type) not in CONFIG_DTYPES:
            return f"{kind} dtype {_dtype_name(tensor.elem_type)}"
        static = tensor.HasField("shape") and all(d.HasField("dim_value") for d in tensor.shape.dim)
        if kind == "input" and not static:
            return "dynamic input shape"
    return None


def _ort_reason(model: Any, inputs: list[Array], expected: list[Array]) -> str | None:
    """Why onnxruntime (CPU, no graph optimisation) does not reproduce ``expected``."""
    import onnxruntime as ort

    if any(a.size == 0 for a in inputs):
        return "empty input"
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 4
    options.intra_op_num_threads = 1
    try:
        session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
    except Exception:  # noqa: BLE001 - any load failure is a reason to drop the test
        return "ORT cannot load"
    names = [i.name for i in _graph_inputs(model)]
    try:
        got = session.run(None, dict(zip(names, inputs, strict=True)))
    except Exception:  # noqa: BLE001 - likewise for a run failure
        return "ORT cannot run"
    return None if all(map(_agrees, got, expected)) else "ORT disagrees with the reference"


def _agrees(actual: Any, want: Array) -> bool:
    actual = np.asarray(actual)
    if actual.shape != want.shape:
        return False
    if want.dtype.kind not in "fc":
        return bool(np.array_equal(actual, want))
    with np.errstate(all="ignore"):
        return bool(np.allclose(actual, want, rtol=ONNX_RTOL, atol=ONNX_ATOL, equal_nan=True))


def _op_and_opset(model: Any) -> tuple[str, int]:
    op = next(n.op_type for n in model.graph.node if n.op_type != "Constant")
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    return op, int(opset)


def _versions() -> dict[str, Any]:
    import onnx
    import onnxruntime

    return {
        "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__, "rules": ONNX_RULES,
        "per_op": ONNX_TESTS_PER_OP, "rtol": ONNX_RTOL, "atol": ONNX_ATOL,
        "source": str(_node_data_dir() or "onnx.backend.test.case.node (in-process)"),
    }  # fmt: skip


def select_onnx(cache: Path | None = None) -> dict[str, Any]:
    """Pick the node tests (at most ONNX_TESTS_PER_OP per op type, in name order).

    Static checks come first (one non-Constant node, default domain, tensor inputs
    and outputs of config dtypes, static input shapes); then, op type by op type,
    tests run in onnxruntime until the op has its quota: a test is kept when none of
    its inputs is empty (zero elements: nothing to declare a range for) and ORT
    loads it, runs it and matches ONNX's expected outputs (rtol 1e-4, atol 1e-6;
    integers exactly). Tests after the quota is met are not run.
    """
    versions = _versions()
    if cache is not None and cache.is_file():
        previous = json.loads(cache.read_text(encoding="utf-8"))
        if previous.get("versions") == versions:
            return previous
    log("onnx_node: selecting backend node tests...")
    start = time.perf_counter()
    dropped: dict[str, list[str]] = defaultdict(list)
    kept: list[dict[str, Any]] = []
    per_op: Counter[str] = Counter()
    considered = 0
    for case in node_cases():
        considered += 1
        reason = _static_reason(case.model)
        if reason is None:
            op, opset = _op_and_opset(case.model)
            if per_op[op] >= ONNX_TESTS_PER_OP:
                reason = f"op type already has {ONNX_TESTS_PER_OP} test(s)"
            else:
                inputs, outputs = case.load()
                reason = _ort_reason(case.model, inputs, outputs)
        if reason is not None:
            dropped[reason].append(case.name)
            continue
        per_op[op] += 1
        kept.append(
            {"test": case.name, "name": onnx_entry_name(case.name), "op": op, "opset": opset}
        )
    selection = {
        "versions": versions,
        "considered": considered,
        "kept": kept,
        "op_types": len(per_op),
        "dropped": {r: sorted(n) for r, n in sorted(dropped.items(), key=lambda kv: -len(kv[1]))},
    }
    log(f"onnx_node: selection took {time.perf_counter() - start:.1f} s")
    if cache is not None:
        _write_json(cache, selection)
    return selection


def print_selection_summary(selection: dict[str, Any]) -> None:
    log(
        f"onnx_node: {selection['considered']} tests considered, {len(selection['kept'])} kept "
        f"over {selection['op_types']} op types; dropped:"
    )
    for reason, names in selection["dropped"].items():
        log(f"  {len(names):5d}  {reason}")


def _input_range(array: Array) -> list[float] | list[int]:
    if array.dtype == np.bool_:
        return [0, 1]
    finite = array[np.isfinite(array)] if array.dtype.kind == "f" else array
    if finite.size == 0:
        return [0.0, 1.0]
    lo, hi = finite.min().item(), finite.max().item()
    if lo == hi:
        if array.dtype.kind in "iu" and hi == np.iinfo(array.dtype).max:
            lo -= 1
        else:
            hi += 1
    return [lo, hi] if array.dtype.kind in "iu" else [float(lo), float(hi)]


def freeze_operands(model: Any, inputs: list[Array]) -> tuple[Any, list[Array], list[str]]:
    """The model as an exporter writes it: later non-peer inputs become initializers.

    Returns the new model, the inputs it still takes and the frozen inputs' names.
    """
    from onnx import numpy_helper

    frozen_model = type(model)()
    frozen_model.CopyFrom(model)
    graph_inputs = _graph_inputs(frozen_model)
    first = graph_inputs[0].type.tensor_type
    kept: list[Array] = [inputs[0]]
    frozen: list[str] = []
    for value, array in zip(graph_inputs[1:], inputs[1:], strict=True):
        tensor = value.type.tensor_type
        if tensor.elem_type == first.elem_type and tensor.shape == first.shape:
            kept.append(array)
            continue
        frozen.append(value.name)
        frozen_model.graph.initializer.append(numpy_helper.from_array(array, value.name))
    remaining = [i for i in frozen_model.graph.input if i.name not in frozen]
    del frozen_model.graph.input[:]
    frozen_model.graph.input.extend(remaining)
    return frozen_model, kept, frozen


def _onnx_builder(
    test: str, module: str | None = None, *, exported: bool = False
) -> Callable[[Path], Built]:
    def build(folder: Path) -> Built:
        case = next(node_cases({test}, (module,) if module else ()), None)
        if case is None:
            raise LookupError(f"no ONNX backend node test named {test}")
        inputs, outputs = case.load()
        reason = _static_reason(case.model) or _ort_reason(case.model, inputs, outputs)
        if reason is not None:
            raise ValueError(f"{test} fails the selection rules: {reason}")
        model, frozen = case.model, list[str]()
        if exported:
            model, inputs, frozen = freeze_operands(case.model, inputs)
            reason = _ort_reason(model, inputs, outputs)
            if reason is not None:
                raise ValueError(f"{test} in exported form: {reason}")
        graph_inputs = _graph_inputs(model)
        (folder / "model.onnx").write_bytes(model.SerializeToString())
        declared = [
            {
                "name": value.name,
                "dtype": _dtype_name(value.type.tensor_type.elem_type),
                "shape": [int(d.dim_value) for d in value.type.tensor_type.shape.dim],
                "range": _input_range(array),
            }
            for value, array in zip(graph_inputs, inputs, strict=True)
        ]
        op, opset = _op_and_opset(model)
        extras = [f"exported form, initializers: {', '.join(frozen) or 'none'}"] if exported else []
        if any(a.type in (a.GRAPH, a.GRAPHS) for n in case.model.graph.node for a in n.attribute):
            extras.append("control flow with subgraph(s)")
        if any(a.dtype.kind == "f" and not np.isfinite(a).all() for a in inputs):
            extras.append("test inputs hold inf/nan (range: finite values)")
        notes = f"op {op}, opset {opset}, ONNX backend node test {test}" + "".join(
            f"; {e}" for e in extras
        )
        return Built(
            "model.onnx",
            "onnx",
            declared,
            notes,
            samples={v.name: a[np.newaxis] for v, a in zip(graph_inputs, inputs, strict=True)},
            reference={f"output_{i}": a[np.newaxis] for i, a in enumerate(outputs)},
        )

    return build


for _test, _module in ONNX_PINS:
    zoo_entry("onnx_node", smoke=True, name=onnx_entry_name(_test), slices=("full",))(
        _onnx_builder(_test, _module)
    )
for _test, _module in EXPORTED_PINS:
    zoo_entry("onnx_exported", smoke=True, name=exported_entry_name(_test), slices=("exported",))(
        _onnx_builder(_test, _module, exported=True)
    )


# --- writing entries ---------------------------------------------------------------------------


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def _save_npz(path: Path, arrays: dict[str, Array]) -> None:
    """np.savez with fixed zip times, so the same arrays give the same bytes."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for key, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            archive.writestr(zipfile.ZipInfo(f"{key}.npy", ZIP_EPOCH), buffer.getvalue())


def _config(name: str, built: Built) -> dict[str, Any]:
    config: dict[str, Any] = {
        "version": "1.0.0",
        "tag": f"zoo_{name}",
        "runtime": _runtime_of(built.source_format),
        "source": "installed",
        "description": built.notes,
        "modelDir": ".",
        "modelName": built.model_name,
        "encrypt": False,
        "inputs": built.inputs,
    }
    if built.samples is not None:
        config["sampleInputs"] = "samples.npz"
    config["targets"] = TARGETS
    return config


def _complete(folder: Path) -> dict[str, Any] | None:
    """The entry's config when its folder holds the config and every file it names."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    model = config.get("modelName") if isinstance(config, dict) else None
    if not model or not (folder / model).exists():
        return None
    samples = config.get("sampleInputs")
    return config if samples is None or (folder / samples).is_file() else None


def _index_entry(entry: Entry, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": entry.name,
        "family": entry.family,
        "source_format": _source_format_of(config["modelName"]),
        "config": f"{entry.name}/config.json",
        "notes": config.get("description", ""),
    }


def _remove_stale_temps(out: Path) -> None:
    """Delete the temporary folders of runs that were interrupted (their process is gone)."""
    for tmp in out.glob(".*.tmp-*"):
        pid = tmp.name.rpartition("-")[2]
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:  # no such process: the run is over
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
        except (ValueError, PermissionError):  # not our naming, or another user's live run
            continue


def _build_entry(out: Path, entry: Entry) -> dict[str, Any]:
    folder = out / entry.name
    config = _complete(folder)
    if config is not None:
        log(f"  {entry.name}: present, skipped")
        return _index_entry(entry, config)
    tmp = out / f".{entry.name}.tmp-{os.getpid()}"
    tmp.mkdir()
    start = time.perf_counter()
    try:
        with contextlib.redirect_stdout(sys.stderr):  # TensorFlow prints export summaries
            built = entry.builder(tmp)
        if built.samples is not None:
            _save_npz(tmp / "samples.npz", built.samples)
        if built.reference is not None:
            _save_npz(tmp / "reference.npz", built.reference)
        config = _config(entry.name, built)
        _write_json(tmp / "config.json", config)
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    log(f"  {entry.name}: {size / 1e6:.2f} MB in {time.perf_counter() - start:.1f} s")
    return _index_entry(entry, config)


# --- selection of entries and the index ---------------------------------------------------------


def _onnx_entries(selection: dict[str, Any]) -> list[Entry]:
    raw = [
        Entry(k["name"], "onnx_node", _onnx_builder(k["test"]), ("full",))
        for k in selection["kept"]
    ]
    exported = [
        Entry(
            exported_entry_name(k["test"]),
            "onnx_exported",
            _onnx_builder(k["test"], exported=True),
            ("exported",),
        )
        for k in selection["kept"]
    ]
    return raw + exported


def plan(out: Path | None, *, slice: str = "full", only: Sequence[str] = ()) -> list[Entry]:
    """The entries to make: the slice's, or those named in ``only`` (any slice)."""
    if slice not in SLICES:
        raise ValueError(f"unknown slice {slice!r}: choose from {', '.join(SLICES)}")
    static = list(ENTRIES.values())
    need_onnx = (not only and slice != "smoke") or any(n not in ENTRIES for n in only)
    dynamic: list[Entry] = []
    if need_onnx:
        cache = out / ONNX_SELECTION if out is not None and out.is_dir() else None
        selection = select_onnx(cache)
        print_selection_summary(selection)
        dynamic = [e for e in _onnx_entries(selection) if e.name not in ENTRIES]
    if only:
        known = {e.name: e for e in static + dynamic}
        unknown = [n for n in only if n not in known]
        if unknown:
            hints = [f"{n} (did you mean {', '.join(difflib.get_close_matches(n, known, 3))}?)"
                     for n in unknown]  # fmt: skip
            raise ValueError(f"unknown zoo entries: {'; '.join(hints)}")
        return [known[n] for n in dict.fromkeys(only)]
    return [e for e in static + dynamic if slice in e.slices]


def _order(item: dict[str, Any]) -> tuple[int, int, str]:
    names = list(ENTRIES)
    position = names.index(item["name"]) if item["name"] in ENTRIES else len(names)
    return FAMILIES.index(item["family"]), position, item["name"]


def generate(out: Path, *, slice: str = "full", only: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Make the slice's entries (or ``only``) in ``out``; return their index entries.

    ``out/index.json`` lists every complete entry in ``out``, from earlier runs too.
    Raises RuntimeError naming the entries that failed, after writing the rest.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(out)
    entries = plan(out, slice=slice, only=only)
    log(f"zoo: {len(entries)} entries into {out}")
    start = time.perf_counter()
    made: list[dict[str, Any]] = []
    failed: dict[str, str] = {}
    for entry in entries:
        try:
            made.append(_build_entry(out, entry))
        except Exception as exc:  # noqa: BLE001 - report every failing builder, keep going
            failed[entry.name] = f"{type(exc).__name__}: {exc}"
            log(f"  {entry.name}: FAILED {failed[entry.name]}")
    index_path = out / "index.json"
    merged: dict[str, dict[str, Any]] = {}
    if index_path.is_file():
        for item in json.loads(index_path.read_text(encoding="utf-8")):
            if _complete(out / item["name"]) is not None:
                merged[item["name"]] = item
    merged.update((item["name"], item) for item in made)
    _write_json(index_path, sorted(merged.values(), key=_order))
    log(
        f"zoo: {len(made)} entries ready, {len(failed)} failed, {time.perf_counter() - start:.1f} s"
    )
    if failed:
        raise RuntimeError(
            "zoo entries failed: " + "; ".join(f"{k}: {v}" for k, v in failed.items())
        )
    return made


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="zoo folder (required unless --list)")
    parser.add_argument("--slice", choices=SLICES, default="full")
    parser.add_argument("--only", nargs="+", default=[], metavar="NAME", help="entries by name")
    parser.add_argument("--list", action="store_true", help="print the entries, make nothing")
    args = parser.parse_args(argv)
    if args.list:
        for entry in plan(args.out, slice=args.slice, only=args.only):
            print(f"{entry.name}\t{entry.family}\t{','.join(entry.slices)}")
        return 0
    if args.out is None:
        parser.error("--out is required")
    try:
        generate(args.out, slice=args.slice, only=args.only)
    except (RuntimeError, ValueError) as exc:
        log(f"zoo: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
