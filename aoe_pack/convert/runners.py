"""Run a model in-process on the CPU: the parity reference and each artifact's runner.

Every runner takes inputs keyed by the declared names (or, where the names
differ, by position) in the source's layout, and returns the outputs in the
model's order: :class:`OnnxRuntimeRunner` (ONNX and ORT), :class:`LiteRTRunner`
(TFLite), :class:`KerasRunner` and :class:`SavedModelRunner`.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aoe_pack.convert.api import Array
from aoe_pack.convert.frameworks import import_onnxruntime, litert_interpreter
from aoe_pack.errors import ConversionError, ModelSignatureError

SELECT_TF_OPS = "tensorflow-lite-select-tf-ops"
"""The runtime a TFLite model with TensorFlow (Flex) ops needs on a device."""


def natural_key(key: str) -> list[Any]:
    """Sort key putting ``output_2`` before ``output_10``."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", key)]


def feed_in_order(feed: Mapping[str, Array], names: Sequence[str]) -> list[Array]:
    """Feed values ordered as ``names``: by name where all match, else by position."""
    if all(n in feed for n in names) and len(feed) == len(names):
        return [feed[n] for n in names]
    if len(feed) != len(names):
        raise ModelSignatureError(
            f"the model takes {len(names)} inputs ({', '.join(names)}), "
            f"but {len(feed)} were given ({', '.join(feed)})"
        )
    return list(feed.values())


class KerasRunner:
    """A Keras model called eagerly on the CPU; inputs by position in declared order."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self._names = [t.name for t in model.inputs]
        # Call with the structure the model was built with: a model made from a
        # one-element input list wants a list, or Keras warns that they differ.
        self._as_list = isinstance(getattr(model, "input", None), list | tuple)

    @property
    def model(self) -> Any:
        """The loaded Keras model (shared with the conversions of the same build)."""
        return self._model

    def __call__(self, inputs: Mapping[str, Array]) -> Sequence[Array]:
        import numpy as np

        values = feed_in_order(inputs, self._names)
        single = len(values) == 1 and not self._as_list
        result = self._model(values[0] if single else values, training=False)
        if isinstance(result, Mapping):
            result = list(result.values())
        if not isinstance(result, list | tuple):
            result = [result]
        return [np.asarray(r) for r in result]


class SavedModelRunner:
    """A SavedModel's serving_default signature; inputs by key, else by position."""

    def __init__(
        self, loaded: Any, function: Any, in_keys: Sequence[str], out_keys: Sequence[str]
    ) -> None:
        self._loaded = loaded  # the signature function needs its object alive
        self._function = function
        self._in_keys = list(in_keys)
        self._out_keys = list(out_keys)

    def __call__(self, inputs: Mapping[str, Array]) -> Sequence[Array]:
        import numpy as np

        values = feed_in_order(inputs, self._in_keys)
        result = self._function(**dict(zip(self._in_keys, values, strict=True)))
        if not isinstance(result, Mapping):
            return [np.asarray(result)]
        return [np.asarray(result[k]) for k in self._out_keys]


class OnnxRuntimeRunner:
    """An ONNX or ORT-format model in onnxruntime on the CPU.

    Inputs are matched by name, or by position when the names differ (tf2onnx
    renames the inputs of Keras models). ``reference=True`` disables graph
    optimisations, so a source runs exactly as written. ``model_format``
    ("ONNX" or "ORT") says what the file is where its name cannot: onnxruntime
    otherwise goes by the ``.ort`` extension, and ``bench`` opens artifacts as
    ``/proc/self/fd/<n>``.
    """

    def __init__(
        self, model: Path, *, reference: bool = False, model_format: str | None = None
    ) -> None:
        ort = import_onnxruntime()
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: warnings are about the host, not the model
        if reference:
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        if model_format is not None:
            options.add_session_config_entry("session.load_model_format", model_format)
        self._session = ort.InferenceSession(
            str(model), options, providers=["CPUExecutionProvider"]
        )
        self.input_names = [i.name for i in self._session.get_inputs()]

    def __call__(self, inputs: Mapping[str, Array]) -> Sequence[Array]:
        feed = dict(zip(self.input_names, feed_in_order(inputs, self.input_names), strict=True))
        return list(self._session.run(None, feed))


class LiteRTRunner:
    """A ``.tflite`` model in LiteRT's interpreter (thread-safe, one call at a time).

    Inputs are matched by tensor name or signature key, else by position.
    Outputs come in the signature's ``output_<i>`` order when it has one (the
    order of the Keras model's outputs), else in the interpreter's order.
    Integer (quantised) inputs and outputs are quantised and dequantised with
    the tensor's scale and zero point, so callers always see the source's floats.

    With a ``layout`` (the ``.io.json`` of a model onnx2tf made), inputs and
    outputs follow the ONNX model's order and layout: each input is transposed
    by its ``perm`` on the way in, each output back on the way out.
    """

    def __init__(
        self, model: Path, *, layout: Mapping[str, Any] | None = None, inspect_only: bool = False
    ) -> None:
        """``inspect_only``: read the I/O, never run. LiteRT maps the file; without
        tensors allocated and without its default XNNPack delegate (which repacks
        every weight into memory of its own), no weight is copied."""
        import numpy as np

        self._np = np
        self._lock = threading.Lock()
        try:
            interpreter = litert_interpreter()
            if inspect_only:
                resolver = sys.modules[interpreter.__module__].OpResolverType
                self._it = interpreter(
                    model_path=str(model),
                    experimental_op_resolver_type=resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
                )
            else:
                self._it = interpreter(model_path=str(model))
                self._it.allocate_tensors()
        except (RuntimeError, ValueError) as e:
            if "Select TensorFlow op" in str(e):
                raise ConversionError(
                    "the artifact uses TensorFlow (Flex) ops, which LiteRT's Python interpreter "
                    "cannot run, so its parity cannot be checked here; on a device it would need "
                    f"the {SELECT_TF_OPS} runtime",
                    hint="declare the input's batch as 1 so that recurrent layers lower to "
                    'builtin ops, or drop "selectTfOps"',
                ) from e
            raise
        self.signatures = {k: dict(v) for k, v in self._it.get_signature_list().items()}
        in_keys: dict[int, str] = {}
        out_keys: dict[int, str] = {}
        if len(self.signatures) == 1:
            sig = self._it.get_signature_runner(next(iter(self.signatures)))
            in_keys = {d["index"]: k for k, d in sig.get_input_details().items()}
            out_keys = {d["index"]: k for k, d in sig.get_output_details().items()}
        self.input_details: list[tuple[dict[str, Any], str | None]] = [
            (d, in_keys.get(d["index"])) for d in self._it.get_input_details()
        ]
        """Each input's tensor details and signature key, in the interpreter's order."""
        self._inputs = [(d["index"], d["name"], key) for d, key in self.input_details]
        outputs = self._it.get_output_details()
        if out_keys and all(re.fullmatch(r"output_\d+", k) for k in out_keys.values()):
            outputs.sort(key=lambda d: natural_key(out_keys.get(d["index"], "")))
        self.output_details: list[dict[str, Any]] = outputs
        """Each output's tensor details, in the order the runner returns them."""
        self._outputs = outputs
        self._in_perms: list[list[int] | None] = [None] * len(self._inputs)
        self._out_perms: list[list[int] | None] = [None] * len(outputs)
        self._in_shapes: list[tuple[int, ...] | None] = [None] * len(self._inputs)
        if layout is not None:
            self._follow(layout)

    def _follow(self, layout: Mapping[str, Any]) -> None:
        """Order and transpose inputs and outputs as an onnx2tf ``.io.json`` describes them."""
        by_name = {d["name"]: d for d in self._it.get_input_details()}
        out_by_name = {d["name"]: d for d in self._it.get_output_details()}
        try:
            self._inputs = [
                (by_name[t["tensor"]]["index"], t["name"], None) for t in layout["inputs"]
            ]
            self._outputs = [out_by_name[t["tensor"]] for t in layout["outputs"]]
        except KeyError as e:
            raise ConversionError(f"the model has no tensor {e} that its .io.json names") from e
        self._in_perms = [t["perm"] for t in layout["inputs"]]
        self._out_perms = [t["perm"] for t in layout["outputs"]]
        self._in_shapes = [tuple(t["shape"]) for t in layout["inputs"]]

    def _to_tensor(self, value: Array, detail: Mapping[str, Any]) -> Array:
        np = self._np
        want = np.dtype(detail["dtype"])
        x = np.asarray(value)
        scale, zero = detail["quantization"]
        if want.kind in "iu" and x.dtype.kind == "f" and scale:
            info = np.iinfo(want)
            x = np.clip(np.round(x / scale + zero), info.min, info.max)
        converted: Array = x.astype(want, copy=False)
        return converted

    def __call__(self, inputs: Mapping[str, Array]) -> Sequence[Array]:
        np = self._np
        names = [n for _, n, _ in self._inputs]
        keys = [k or n for _, n, k in self._inputs]
        order = keys if all(k in inputs for k in keys) else names
        values = [
            np.transpose(v, perm) if perm else np.reshape(v, shape) if shape else v
            for v, perm, shape in zip(
                feed_in_order(inputs, order), self._in_perms, self._in_shapes, strict=True
            )
        ]
        with self._lock:
            details = {d["index"]: d for d in self._it.get_input_details()}
            resized = False
            for (index, _, _), value in zip(self._inputs, values, strict=True):
                shape = tuple(np.shape(value))
                if tuple(details[index]["shape"]) != shape:
                    self._it.resize_input_tensor(index, shape, strict=True)
                    resized = True
            if resized:
                self._it.allocate_tensors()
                details = {d["index"]: d for d in self._it.get_input_details()}
            for (index, _, _), value in zip(self._inputs, values, strict=True):
                self._it.set_tensor(index, self._to_tensor(value, details[index]))
            self._it.invoke()
            results = []
            for d, perm in zip(self._outputs, self._out_perms, strict=True):
                y = np.array(self._it.get_tensor(d["index"]))
                scale, zero = d["quantization"]
                if y.dtype.kind in "iu" and scale:
                    y = (y.astype(np.float32) - zero) * np.float32(scale)
                # perm None: a reshape of the same elements (rank 0 -> [1]); parity and
                # callers take the values in order.
                results.append(np.transpose(y, np.argsort(perm)) if perm else y)
        return results
