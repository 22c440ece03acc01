"""TensorFlow Lite: float32, float16, dynamic-range int8 and full int8.

Sources: Keras and SavedModel go through ``tf.lite.TFLiteConverter`` (Keras by
way of a SavedModel exported into the target's folder, which keeps the
``serving_default_<input>:0`` tensor names a ``.tflite`` config declares). A
TFLite source gives only ``fp32``, as a copy: quantising needs the float graph.

Variants:

* ``fp32``: no optimisation.
* ``fp16``: float16 weights, dequantised to float32 when the model loads.
* ``int8-dynamic``: int8 weights, activations quantised on the fly.
* ``int8``: full integer, calibrated on ``ctx.calibration`` (the config's .npz
  or seeded samples). Inputs and outputs stay float32 by default, so the app
  feeds the same tensors as before and parity compares like with like; the
  option ``"io_dtype": "int8"`` (or ``"uint8"``) makes them integer as well,
  for integer-only accelerators. The runner quantises those for callers.

Artifacts land in the bundle as ``tflite/<variant>/<model stem>.tflite``.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from aoe_pack.convert.api import (
    Array,
    Artifact,
    ConvertContext,
    Precision,
    Runner,
    SourceModel,
    Target,
    TolerancesTable,
    require_variant,
    single_file_artifact,
)
from aoe_pack.convert.sources import (
    TF_LOCK,
    feed_in_order,
    import_tensorflow,
    litert_interpreter,
    natural_key,
)
from aoe_pack.errors import AoePackError, ConversionError

# Max abs error on the outputs, against the source. FIELD-NOTES §3 measured a
# random-weight CNN at 2e-8 (fp32), 2e-5 (fp16), 6e-4 (dynamic int8) and 2e-3
# (full int8); the mnist sample gives 0 (bit-identical), 1.0e-5, 3.4e-4 and
# 1.9e-3 on its softmax outputs; MobileNetV2 (96x96, alpha 0.35, 100 classes,
# tests/convert/test_mobilenet.py) 2.5e-2 for full int8. fp32 differs only by
# kernel summation order, the quantised variants by design. Full int8 was 1e-1,
# wider than MobileNetV2's whole output spread (~2.7e-2), so an artifact that
# ignored its input could pass: it is 5e-2, 2x the worst real model measured.
_TOLERANCES = {
    "fp32": Precision.FLOAT32,
    "fp16": Precision.FLOAT16,
    "int8-dynamic": Precision.INT8_WEIGHTS,
    "int8": Precision.INT8,
}
_CONTROLS = {"fp16": "fp32", "int8-dynamic": "fp32", "int8": "fp32"}
_IO_DTYPES = ("float32", "int8", "uint8")


class TFLiteConverter(TolerancesTable):
    """Keras / SavedModel / TFLite -> ``.tflite`` (registered as ``tflite``)."""

    runtime = "tflite"
    tolerances = _TOLERANCES
    controls = _CONTROLS

    def convert(self, source: SourceModel, target: Target, ctx: ConvertContext) -> Artifact:
        """Write ``<stem>.tflite`` into ``ctx.workdir``."""
        require_variant(self.runtime, self.variants, target.variant)
        start = time.perf_counter()
        out = ctx.workdir / f"{source.path.stem}.tflite"
        tools: dict[str, str] = {}
        if source.format == "tflite":
            if target.variant != "fp32":
                raise ConversionError(
                    f"tflite:{target.variant} cannot be made from {source.path.name}: "
                    "quantising needs the float model it was converted from",
                    hint="use the Keras or SavedModel source as modelName, or target tflite:fp32",
                )
            shutil.copyfile(source.path, out)
        elif source.format in ("keras", "savedmodel"):
            tf = import_tensorflow()
            out.write_bytes(_convert(tf, source, target, ctx))
            tools["tensorflow"] = tf.__version__
        else:
            raise ConversionError(
                f"aoe-pack has no path from {source.format} ({source.path.name}) to TFLite",
                hint="build the tflite targets from the Keras or SavedModel source",
            )
        return single_file_artifact(target, out, tools=tools, seconds=time.perf_counter() - start)

    def load(self, artifact: Artifact) -> Runner:
        """The artifact in LiteRT's interpreter."""
        model = artifact.model
        return LiteRTRunner(model)


def _convert(tf: Any, source: SourceModel, target: Target, ctx: ConvertContext) -> bytes:
    variant = target.variant
    io_dtype = str(target.options.get("io_dtype", "float32"))
    if io_dtype not in _IO_DTYPES or (io_dtype != "float32" and variant != "int8"):
        raise ConversionError(
            f"tflite:{variant}: io_dtype {io_dtype!r} is not possible",
            hint=f"io_dtype is one of {', '.join(_IO_DTYPES)}, and only int8 takes an integer one",
        )
    calibration = ctx.calibration(source) if variant == "int8" else []
    try:
        saved = ctx.saved_model_of(source)  # a Keras source is exported once per build
        with TF_LOCK:
            converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
            if variant != "fp32":
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
            if variant == "fp16":
                converter.target_spec.supported_types = [tf.float16]
            if variant == "int8":
                keys = list(source.details["model_inputs"])
                names = [s.name for s in source.inputs]

                def representative() -> Iterator[dict[str, Any]]:
                    for feed in calibration:
                        yield {k: feed[n] for k, n in zip(keys, names, strict=True)}

                converter.representative_dataset = representative
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
                converter.inference_input_type = getattr(tf, io_dtype)
                converter.inference_output_type = getattr(tf, io_dtype)
            with warnings.catch_warnings():
                # The calibrator still builds a tf.lite.Interpreter, which warns of
                # its own deprecation on every call; aoe-pack itself uses LiteRT.
                warnings.filterwarnings(
                    "ignore",
                    message=r"\s*Warning: tf.lite.Interpreter is deprecated",
                    category=UserWarning,
                )
                return bytes(converter.convert())
    except AoePackError:
        raise
    except Exception as e:
        raise ConversionError(
            f"TensorFlow Lite could not convert {source.path.name} to tflite:{variant}: "
            f"{type(e).__name__}: {e}",
            hint="an op without a TFLite (or int8) kernel fails here; try a float variant",
        ) from e


class LiteRTRunner:
    """A ``.tflite`` model in LiteRT's interpreter (thread-safe, one call at a time).

    Inputs are matched by tensor name or signature key, else by position.
    Outputs come in the signature's ``output_<i>`` order when it has one (the
    order of the Keras model's outputs), else in the interpreter's order.
    Integer (quantised) inputs and outputs are quantised and dequantised with
    the tensor's scale and zero point, so callers always see the source's floats.
    """

    def __init__(self, model: Path) -> None:
        import numpy as np

        self._np = np
        self._lock = threading.Lock()
        self._it = litert_interpreter()(model_path=str(model))
        self._it.allocate_tensors()
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
        values = feed_in_order(inputs, order)
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
            for d in self._outputs:
                y = np.array(self._it.get_tensor(d["index"]))
                scale, zero = d["quantization"]
                if y.dtype.kind in "iu" and scale:
                    y = (y.astype(np.float32) - zero) * np.float32(scale)
                results.append(y)
        return results
