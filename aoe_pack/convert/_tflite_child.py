"""The child program of the TFLite converter: TensorFlow Lite's converter, and onnx2tf.

Both run in a process of their own (``python -c <bootstrap>
aoe_pack.convert._tflite_child``, job as JSON on stdin, see :mod:`aoe_pack._child`;
with ``--serve`` it serves TensorFlow Lite jobs one after the other, so a build
imports TensorFlow once):
TensorFlow Lite's full-integer calibration segfaults on some models (recurrent
layers), and onnx2tf sets process-wide state (random seeds, environment
variables, logging) and prints to stdout. A crash then refuses one target.

Jobs:

* ``{"kind": "convert", "savedModel", "concrete", "variant", "ioDtype",
  "selectTfOps", "calibration", "keys", "perms", "out"}``: a SavedModel to a
  ``.tflite``. ``concrete`` converts the ``serving_default`` signature as a
  concrete function, which keeps the weights of SavedModels written by
  ``tf.saved_model.save`` (``from_saved_model`` drops them). ``calibration``
  is an ``.npz`` of samples (``s<i>_i<j>``) for full int8, transposed by
  ``perms`` (or, where a perm is None, reshaped to ``shapes``) into the
  SavedModel's layout and fed by signature ``keys``.
* ``{"kind": "onnx2tf", "onnx", "folder", "savedModel", "backend"}``: onnx2tf's
  float32 ``.tflite`` (and, when asked, a SavedModel for the quantised
  variants), plus how each input and output is laid out against the ONNX
  model's. ``backend`` is onnx2tf's ``tflite_backend``: ``flatbuffer_direct``
  (its default) or ``tf_converter`` (TensorFlow ops, then TFLite's converter).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from aoe_pack._child import child_main, serve
from aoe_pack.errors import ConversionError

_HINTS = (
    (
        "tensor list",
        "a recurrent layer's loop needs a fixed batch: declare the input's batch as 1",
    ),
    (
        "select tensorflow op",
        'the model needs TensorFlow ops TFLite lacks: add "selectTfOps": true to the target '
        "(devices then need the select-tf-ops runtime)",
    ),
)


def _hint(message: str) -> str:
    lowered = message.lower()
    for needle, hint in _HINTS:
        if needle in lowered:
            return hint
    return "an op without a TFLite (or int8) kernel fails here"


def _converter(tf: Any, job: dict[str, Any]) -> Any:
    path = job["savedModel"]
    if job["concrete"]:
        loaded = tf.saved_model.load(path)
        function = loaded.signatures["serving_default"]
        return tf.lite.TFLiteConverter.from_concrete_functions([function], loaded)
    return tf.lite.TFLiteConverter.from_saved_model(path)


def _representative(job: dict[str, Any], dtypes: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The calibration samples, laid out and typed as the SavedModel's signature takes them.

    ``dtypes``: signature key -> numpy dtype. A float16 ONNX input, say, is a
    float32 one in the SavedModel onnx2tf writes.
    """
    import numpy as np

    keys: list[str] = job["keys"]
    perms: list[list[int] | None] = job.get("perms") or [None] * len(keys)
    shapes: list[list[int] | None] = job.get("shapes") or [None] * len(keys)

    def laid_out(array: Any, key: str, perm: list[int] | None, shape: list[int] | None) -> Any:
        if perm is not None:
            array = array.transpose(perm)
        elif shape is not None and array.size == int(np.prod(shape)):
            array = array.reshape(shape)  # onnx2tf reshaped it (a scalar became [1])
        return array.astype(dtypes[key]) if key in dtypes else array

    with np.load(job["calibration"], allow_pickle=False) as data:
        count = len(data.files) // max(1, len(keys))
        samples = [
            {
                key: laid_out(data[f"s{i}_i{j}"], key, perm, shape)
                for j, (key, perm, shape) in enumerate(zip(keys, perms, shapes, strict=True))
            }
            for i in range(count)
        ]
    yield from samples


def _signature_dtypes(tf: Any, path: str) -> dict[str, Any]:
    """Input name -> numpy dtype of a SavedModel's ``serving_default`` signature."""
    signature = tf.saved_model.load(path).signatures["serving_default"]
    specs = signature.structured_input_signature[1]
    return {key: spec.dtype.as_numpy_dtype for key, spec in specs.items()}


def convert(job: dict[str, Any]) -> dict[str, Any]:
    """TensorFlow Lite's converter on a SavedModel, one variant."""
    import warnings

    from aoe_pack.convert.frameworks import import_tensorflow

    tf = import_tensorflow()
    variant, io_dtype = job["variant"], job["ioDtype"]
    try:
        converter = _converter(tf, job)
        if variant != "fp32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if variant == "fp16":
            converter.target_spec.supported_types = [tf.float16]
        if job["selectTfOps"]:
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.TFLITE_BUILTINS,
                tf.lite.OpsSet.SELECT_TF_OPS,
            ]
        if variant == "int8":
            dtypes = _signature_dtypes(tf, job["savedModel"])
            converter.representative_dataset = lambda: _representative(job, dtypes)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = getattr(tf, io_dtype)
            converter.inference_output_type = getattr(tf, io_dtype)
        with warnings.catch_warnings():
            # The calibrator builds a tf.lite.Interpreter, which warns of its own deprecation.
            warnings.filterwarnings("ignore", message=r"\s*Warning: tf.lite.Interpreter")
            data = bytes(converter.convert())
    except Exception as e:
        message = str(e).strip() or type(e).__name__
        raise ConversionError(
            f"TensorFlow Lite could not convert it to tflite:{variant}: "
            f"{type(e).__name__}: {message[:2000]}",
            hint=_hint(message),
        ) from e
    Path(job["out"]).write_bytes(data)
    # Flex ops are custom ops named Flex<Op>: the device needs the select-tf-ops runtime.
    return {"flex": b"Flex" in data, "tensors": _signature_tensors(Path(job["out"]))}


def _signature_tensors(tflite: Path) -> dict[str, str]:
    """Signature key -> tensor name, for the inputs and outputs of a ``.tflite``."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(tflite))
    signatures = interpreter.get_signature_list()
    if len(signatures) != 1:
        return {}
    runner = interpreter.get_signature_runner(next(iter(signatures)))
    by_index = {d["index"]: d["name"] for d in interpreter.get_input_details()}
    by_index |= {d["index"]: d["name"] for d in interpreter.get_output_details()}
    details = {**runner.get_input_details(), **runner.get_output_details()}
    return {key: by_index[d["index"]] for key, d in details.items() if d["index"] in by_index}


def _channels_last(rank: int) -> list[int]:
    return [0, *range(2, rank), 1] if rank >= 3 else list(range(rank))


def _perm(
    onnx_shape: Sequence[int | None], shape: Sequence[int], *, output: bool
) -> list[int] | None:
    """How onnx2tf laid a tensor out: tflite = onnx.transpose(perm), or None for a reshape.

    A rank-0 tensor becomes shape [1] (a reshape of the same elements). Where
    several permutations fit (equal sizes), onnx2tf's rule decides: channels-
    last for rank 3-5 inputs and rank 4-5 outputs, else the ONNX layout.
    """
    import math
    from itertools import permutations

    rank = len(onnx_shape)
    if len(shape) != rank:
        known = [d for d in onnx_shape if d is not None]
        if len(known) == rank and math.prod(known) == math.prod(shape):
            return None
        raise ConversionError(
            f"onnx2tf changed a tensor's rank ({list(onnx_shape)} -> {list(shape)})"
        )

    def fits(perm: Sequence[int]) -> bool:
        return all(onnx_shape[p] in (None, s) for p, s in zip(perm, shape, strict=True))

    identity = list(range(rank))
    last = _channels_last(rank)
    preferred = [last, identity] if last != identity and (rank >= 4 or not output) else [identity]
    for perm in preferred:
        if fits(perm):
            return perm
    found = [list(p) for p in permutations(range(rank)) if fits(p)]
    if len(found) == 1:
        return found[0]
    raise ConversionError(
        f"onnx2tf gave a tensor of ONNX shape {list(onnx_shape)} the shape {list(shape)}, "
        "whose layout cannot be told"
    )


def onnx2tf(job: dict[str, Any]) -> dict[str, Any]:
    """onnx2tf on a staged ``model.onnx``; the layout of every input and output."""
    from aoe_pack.convert.frameworks import import_onnx, import_onnxruntime, import_tensorflow

    onnx = import_onnx()
    import_onnxruntime()  # first, so its cache stays out of the home folder
    if job["savedModel"]:
        import_tensorflow()  # likewise Keras's config file
    try:
        from onnx2tf.onnx2tf import convert as onnx2tf_convert
    except ImportError as e:
        from aoe_pack.errors import MissingExtraError

        raise MissingExtraError(
            "onnx2tf, which converts ONNX to TFLite, is not installed",
            hint="pip install --no-deps --ignore-requires-python onnx2tf==2.6.9 tf_keras "
            "sng4onnx sne4onnx psutil (see docs/converting.md)",
        ) from e
    folder = Path(job["folder"])
    try:
        backend = job.get("backend", "flatbuffer_direct")
        onnx2tf_convert(
            input_onnx_file_path=job["onnx"],
            output_folder_path=str(folder),
            non_verbose=True,
            tflite_backend=backend,
            # The tf_converter backend writes its SavedModel whatever this says.
            flatbuffer_direct_output_saved_model=bool(job["savedModel"])
            and backend == "flatbuffer_direct",
        )
    except BaseException as e:  # noqa: BLE001 - it also ends with sys.exit(1) on some failures
        raise ConversionError(
            f"onnx2tf could not convert the model: {type(e).__name__}: {str(e)[:2000]}",
            hint="the model may use an op onnx2tf lacks; the other targets may still work",
        ) from None
    tflite = folder / "model_float32.tflite"
    if not tflite.is_file():
        raise ConversionError("onnx2tf wrote no float32 .tflite")
    # Where onnx2tf has no TFLite form for an op it writes a custom op named
    # ONNX_<OP>, which no TFLite runtime implements: say which op, now.
    custom = sorted({m.decode() for m in re.findall(rb"ONNX_[A-Z0-9_]+", tflite.read_bytes())})
    if custom:
        raise ConversionError(
            f"onnx2tf has no TFLite form for {', '.join(c[5:] for c in custom)}: it left the "
            f"custom op(s) {', '.join(custom)}, which no TFLite runtime implements",
            hint="the other targets may take the model; TFLite needs the op rewritten",
        )
    return {"io": _layout(onnx.load(job["onnx"], load_external_data=False), tflite)}


def _layout(model: Any, tflite: Path) -> dict[str, Any]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(tflite))
    initializers = {i.name for i in model.graph.initializer}

    def onnx_shape(value: Any) -> list[int | None]:
        dims = value.type.tensor_type.shape.dim
        return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims]

    def describe(values: Sequence[Any], details: Sequence[Any], output: bool) -> list[Any]:
        by_name = {d["name"]: d for d in details}
        out = []
        for i, value in enumerate(values):
            detail = by_name.get(value.name) or (details[i] if i < len(details) else None)
            if detail is None:
                raise ConversionError(f"onnx2tf dropped the tensor {value.name!r}")
            shape = [int(s) for s in detail["shape"]]
            out.append(
                {
                    "name": value.name,
                    "tensor": detail["name"],
                    "onnxShape": onnx_shape(value),
                    "shape": shape,
                    "perm": _perm(onnx_shape(value), shape, output=output),
                }
            )
        return out

    inputs = [v for v in model.graph.input if v.name not in initializers]
    return {
        "format": "aoe-tflite-io/v1",
        "inputs": describe(inputs, interpreter.get_input_details(), output=False),
        "outputs": describe(model.graph.output, interpreter.get_output_details(), output=True),
    }


def handle(job: dict[str, Any]) -> dict[str, Any]:
    return onnx2tf(job) if job["kind"] == "onnx2tf" else convert(job)


if __name__ == "__main__":
    sys.exit(serve(handle) if "--serve" in sys.argv else child_main(handle))
