"""Validate a source model against its config, and run it as the parity reference.

Formats: Keras (``.keras``, ``.h5``), TensorFlow SavedModel (a folder holding
``saved_model.pb``), TFLite and ONNX. ONNX and TFLite sources are read without
TensorFlow (onnx + onnxruntime, LiteRT); Keras and SavedModel import it lazily.

**Declared I/O.** The config's inputs and outputs are compared with the model's
position by position (declared input *i* against model input *i*, the same for
outputs). Counts must agree and dtypes must be equal. Shapes must have the same
rank and equal sizes, except that ``-1`` in the config and a dynamic dimension
in the model both match any size. Names must match where the format has
meaningful ones:

* ONNX: the graph's input/output name.
* TFLite: the tensor name (``serving_default_image:0``) or its signature key (``image``).
* Keras: the model's own name (the input's name; the output layer's or output
  tensor's name; ``output_<i>``, the key Keras's SavedModel export gives it) or
  ``serving_default_<input name>:0``. A TFLite-style name (``<anything>:<index>``,
  as in a config written for the model's ``.tflite`` conversion, whose output
  names such as ``StatefulPartitionedCall_1:0`` cannot be derived from the
  Keras model) is matched by position only.
* SavedModel: the ``serving_default`` signature's keys, inputs and outputs in
  natural key order (``output_2`` before ``output_10``), with the same
  TFLite-style rule as Keras.

A mismatch raises :class:`ModelSignatureError` listing every tensor, declared
beside found. A corrupt, truncated or foreign file raises
:class:`ModelInvalidError` naming it; an unsupported one (ONNX opset outside
7-18) :class:`UnsupportedModelError`.

**Reference runners** (what parity compares every artifact with) are those of
:mod:`aoe_pack.convert.runners`: ONNX in onnxruntime with graph optimisations
off, TFLite in LiteRT, Keras called eagerly, SavedModel through its
``serving_default`` signature, all on the CPU. Frameworks are imported through
:mod:`aoe_pack.convert.frameworks`.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aoe_pack.config.model import TensorSpec
from aoe_pack.convert.api import Runner, SourceModel
from aoe_pack.convert.frameworks import TF_LOCK, import_numpy, import_onnx, import_tensorflow
from aoe_pack.convert.onnx_wire import WireTensor, read_onnx_io
from aoe_pack.convert.runners import (
    KerasRunner,
    LiteRTRunner,
    OnnxRuntimeRunner,
    SavedModelRunner,
    natural_key,
)
from aoe_pack.errors import (
    ModelFileError,
    ModelInvalidError,
    ModelSignatureError,
    UnsupportedModelError,
)

MIN_OPSET = 7
"""onnxruntime, which runs every ONNX source as the parity reference, starts at opset 7."""
MAX_OPSET = 18
"""tf2onnx, MNN and pnnx handle default-domain opsets up to 18: newer sources are
down-converted for them (:meth:`aoe_pack.convert.context.BuildContext.onnx_of`)."""

_SUFFIXES = {
    ".keras": "keras",
    ".h5": "keras",
    ".hdf5": "keras",
    ".tflite": "tflite",
    ".onnx": "onnx",
}
_TFLITE_NAME = re.compile(r".+:\d+")

# --- formats and the declared-I/O check -------------------------------------------


def detect_format(path: Path) -> str:
    """The source format of ``path``: keras, savedmodel, tflite or onnx."""
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return "savedmodel"
        raise UnsupportedModelError(
            f"{path.name}/ is a folder without saved_model.pb, so not a TensorFlow SavedModel",
            hint="point modelName at a .keras, .h5, .tflite or .onnx file, or a SavedModel folder",
        )
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise UnsupportedModelError(
            f"{path.name}: aoe-pack cannot convert {path.suffix or 'extension-less'} files",
            hint="sources may be Keras (.keras, .h5), SavedModel folders, .tflite or .onnx",
        )
    return fmt


@dataclass(frozen=True)
class _Tensor:
    """A model's tensor as the check sees it."""

    names: tuple[str, ...]
    """The model's own name first, then other names the format accepts for it."""
    dtype: str
    shape: tuple[int | None, ...] | None
    """None: rank unknown. A None dimension is dynamic."""


def _describe_declared(spec: TensorSpec | None) -> str:
    if spec is None:
        return "(none)"
    return f"{spec.name} {spec.dtype} {list(spec.shape)}"


def _describe_model(tensor: _Tensor | None) -> str:
    if tensor is None:
        return "(none)"
    shape = (
        "[?]"
        if tensor.shape is None
        else "[" + ", ".join("?" if d is None else str(d) for d in tensor.shape) + "]"
    )
    return f"{tensor.names[0]} {tensor.dtype} {shape}"


def _differences(spec: TensorSpec | None, tensor: _Tensor | None, *, positional: bool) -> list[str]:
    if spec is None:
        return ["not declared"]
    if tensor is None:
        return ["not in the model"]
    found = []
    if spec.name not in tensor.names and not (positional and _TFLITE_NAME.fullmatch(spec.name)):
        found.append("name")
    if spec.dtype != tensor.dtype:
        found.append("dtype")
    if tensor.shape is not None:
        if len(spec.shape) != len(tensor.shape):
            found.append("rank")
        elif any(
            d >= 0 and m is not None and d != m
            for d, m in zip(spec.shape, tensor.shape, strict=True)
        ):
            found.append("shape")
    return found


def _check_signature(
    path: Path,
    declared: tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]],
    model: tuple[Sequence[_Tensor], Sequence[_Tensor]],
    *,
    positional: bool = False,
) -> None:
    """Raise ModelSignatureError, showing both sides, unless the declaration fits the model."""
    lines, bad = [], False
    for kind, specs, tensors in zip(("input", "output"), declared, model, strict=True):
        for i in range(max(len(specs), len(tensors))):
            spec = specs[i] if i < len(specs) else None
            tensor = tensors[i] if i < len(tensors) else None
            diff = _differences(spec, tensor, positional=positional)
            bad = bad or bool(diff)
            mark = ""
            if diff:
                mark = (
                    f"   <- differs: {', '.join(diff)}" if spec and tensor else f"   <- {diff[0]}"
                )
            lines.append(
                f"  {kind} {i}: declared {_describe_declared(spec)} "
                f"| model {_describe_model(tensor)}{mark}"
            )
    if bad:
        raise ModelSignatureError(
            f"{path.name}: the model's inputs/outputs disagree with the config "
            "(declared | model; ? is a dynamic size):\n" + "\n".join(lines),
            hint='make the config\'s "inputs" and "outputs" describe this model, '
            "or point modelName at the model they describe",
        )


_DECLARABLE = frozenset(
    {"float32", "float16", "float64", "int8", "uint8", "int32", "int64", "bool"}
)


def read_specs(path: Path, tensors: Sequence[_Tensor], kind: str) -> tuple[TensorSpec, ...]:
    """The model's own inputs or outputs as config declarations (dynamic sizes as -1).

    Raises UnsupportedModelError for a tensor a config cannot declare (a dtype
    outside the schema's, or a rank the model does not state).
    """
    specs = []
    for i, t in enumerate(tensors):
        if t.dtype not in _DECLARABLE:
            raise UnsupportedModelError(
                f"{path.name}: {kind} {i} ({t.names[0]}) has dtype {t.dtype}, which aoe-pack "
                "cannot feed or compare",
                hint=f"aoe-pack handles {', '.join(sorted(_DECLARABLE))}",
            )
        if t.shape is None:
            raise UnsupportedModelError(
                f"{path.name}: the model does not state the rank of {kind} {i} ({t.names[0]})",
                hint=f'declare the config\'s "{kind}s" with their shapes (-1 for a dynamic size)',
            )
        shape = tuple(-1 if d is None else int(d) for d in t.shape)
        specs.append(TensorSpec(name=t.names[0], dtype=t.dtype, shape=shape))
    return tuple(specs)


# --- loading each format ------------------------------------------------------------


def load_source(
    path: Path,
    *,
    inputs: tuple[TensorSpec, ...] | None,
    outputs: tuple[TensorSpec, ...] | None,
) -> tuple[SourceModel, Runner]:
    """Load and validate the source model; return it with its reference runner.

    ``inputs`` and ``outputs`` are the config's declarations; None means the
    config declares none, and they are read from the model (:func:`read_specs`).

    ``details`` holds what validation found (ONNX: ``opset``, ``ir_version``,
    ``producer``; TFLite: ``signatures``; Keras: ``keras_version``; SavedModel:
    ``signatures``) and always ``model_inputs``/``model_outputs``: the model's
    own names in declared order. For Keras and SavedModel these are the
    serving-signature keys, which converted TFLite models keep as theirs.
    ``io_read_from_model`` lists which of the two were read from the model.
    """
    fmt = _format_of(path)
    import_numpy()
    loader = {"onnx": _load_onnx, "tflite": _load_tflite, "keras": _load_keras}.get(
        fmt, _load_savedmodel
    )
    details, model_io, runner, positional = loader(path)
    source = _checked(
        path, fmt, details, model_io, positional=positional, inputs=inputs, outputs=outputs
    )
    return source, runner


def inspect_source(
    path: Path,
    *,
    inputs: tuple[TensorSpec, ...] | None,
    outputs: tuple[TensorSpec, ...] | None,
) -> SourceModel:
    """What :func:`load_source` checks and reports, without the reference runner.

    For a model packed as it is, which nothing runs: an ONNX model's structure
    is read from its wire format (:func:`aoe_pack.convert.onnx_wire.read_onnx_io`),
    its weights skipped, never loaded, so a 1 GiB model costs a few kilobytes
    of reading and no framework import. The ONNX checker, shape inference and
    onnxruntime's load, which need the weights, belong to conversions (whose
    parity runs the model) and are not run here. A TFLite model is opened in
    LiteRT, which maps the file, without allocating tensors or applying its
    default delegate, so no weight is copied. Keras and SavedModel sources
    are loaded as :func:`load_source` loads them.
    """
    fmt = _format_of(path)
    if fmt == "tflite":
        import_numpy()
        details, model_io, _, _ = _load_tflite(path, inspect_only=True)
    elif fmt == "onnx":
        details, model_io = _inspect_onnx(path)
    else:
        source, _ = load_source(path, inputs=inputs, outputs=outputs)
        return source
    return _checked(path, fmt, details, model_io, positional=False, inputs=inputs, outputs=outputs)


def _format_of(path: Path) -> str:
    if not path.exists():
        raise ModelFileError(f"the source model {path} does not exist")
    return detect_format(path)


def _checked(
    path: Path,
    fmt: str,
    details: dict[str, Any],
    model_io: tuple[Sequence[_Tensor], Sequence[_Tensor]],
    *,
    positional: bool,
    inputs: tuple[TensorSpec, ...] | None,
    outputs: tuple[TensorSpec, ...] | None,
) -> SourceModel:
    """The declaration checked against the model, undeclared I/O read from it."""
    read = [kind for kind, given in (("inputs", inputs), ("outputs", outputs)) if given is None]
    if inputs is None:
        inputs = read_specs(path, model_io[0], "input")
    if outputs is None:
        outputs = read_specs(path, model_io[1], "output")
    _check_signature(path, (inputs, outputs), model_io, positional=positional)
    details |= {
        "model_inputs": [t.names[0] for t in model_io[0]],
        "model_outputs": [t.names[0] for t in model_io[1]],
    }
    if read:
        details["io_read_from_model"] = " and ".join(read)
    return SourceModel(path=path, format=fmt, inputs=inputs, outputs=outputs, details=details)


_Loaded = tuple[dict[str, Any], tuple[list[_Tensor], list[_Tensor]], Runner, bool]


def _onnx_dtype(onnx: Any, elem_type: int) -> str:
    try:
        return str(onnx.helper.tensor_dtype_to_np_dtype(elem_type).name)
    except (KeyError, TypeError, ValueError):
        return str(onnx.TensorProto.DataType.Name(elem_type)).lower()


def _onnx_tensor(onnx: Any, value_info: Any) -> _Tensor:
    tensor_type = value_info.type.tensor_type
    shape = None
    if tensor_type.HasField("shape"):
        shape = tuple(
            d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
            for d in tensor_type.shape.dim
        )
    return _Tensor((value_info.name,), _onnx_dtype(onnx, tensor_type.elem_type), shape)


def onnx_opset(model: Any) -> int | None:
    """The default-domain opset an ONNX ModelProto imports (None if it imports none)."""
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def _check_opset(path: Path, opset: int | None) -> None:
    if opset is None or opset < MIN_OPSET:
        raise UnsupportedModelError(
            f"{path.name} uses ONNX opset {opset}; onnxruntime, which aoe-pack checks every "
            f"conversion against, runs opsets {MIN_OPSET} and later",
            hint="convert it up first: onnx.version_converter.convert_version(model, 17)",
        )


def _inspect_onnx(path: Path) -> tuple[dict[str, Any], tuple[list[_Tensor], list[_Tensor]]]:
    """The ONNX model's I/O and opset from its wire format, its weights never read."""
    found = read_onnx_io(path)
    _check_opset(path, found.opset)
    folder = path.parent.resolve()
    for location in found.external_data:
        # onnx.load reads external data beside the model and refuses paths that
        # leave its folder; a file missing here is one the model cannot load.
        where = (folder / location).resolve()
        if not where.is_relative_to(folder) or not where.is_file():
            raise ModelInvalidError(
                f"{path.name} keeps weights in {location!r}, which is not a file in its folder",
                hint='put the external data file beside the model (and list it in "files")',
            )

    def tensor(t: WireTensor) -> _Tensor:
        return _Tensor((t.name,), t.dtype, t.shape)

    details: dict[str, Any] = {
        "opset": found.opset,
        "ir_version": found.ir_version,
        "producer": found.producer,
    }
    if found.external_data:
        details["external_data"] = list(found.external_data)
    return details, ([tensor(t) for t in found.inputs], [tensor(t) for t in found.outputs])


def _load_onnx(path: Path) -> _Loaded:
    onnx = import_onnx()
    try:
        model = onnx.load(str(path))
    except Exception as e:
        raise ModelInvalidError(
            f"{path.name} is not a readable ONNX model ({type(e).__name__}: {e})",
            hint="the file is corrupt or truncated: export or download it again",
        ) from e
    opset = onnx_opset(model)
    _check_opset(path, opset)
    try:
        # Not full_check / strict shape inference: they refuse valid models whose
        # function bodies ONNX's own inference cannot resolve (its MeanVariance-
        # Normalization), and caught nothing the lenient checks miss in ONNX's
        # node tests; onnxruntime must load the model below in any case.
        onnx.checker.check_model(model)
        model = onnx.shape_inference.infer_shapes(model, check_type=True)
    except Exception as e:
        raise ModelInvalidError(
            f"{path.name} fails the ONNX checker: {e}",
            hint="fix or re-export the model; the error names the node or tensor at fault",
        ) from e
    initializers = {i.name for i in model.graph.initializer}
    ins = [_onnx_tensor(onnx, v) for v in model.graph.input if v.name not in initializers]
    outs = [_onnx_tensor(onnx, v) for v in model.graph.output]
    details = {
        "opset": opset,
        "ir_version": model.ir_version,
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
    }

    try:
        runner = OnnxRuntimeRunner(path, reference=True)
    except Exception as e:
        raise ModelInvalidError(
            f"onnxruntime cannot load {path.name} "
            f"(IR version {model.ir_version}, opset {opset}): {e}"
        ) from e
    return details, (ins, outs), runner, False


def _load_tflite(path: Path, *, inspect_only: bool = False) -> _Loaded:
    import numpy as np

    try:
        runner = LiteRTRunner(path, inspect_only=inspect_only)
    except Exception as e:
        raise ModelInvalidError(
            f"{path.name} is not a TFLite model LiteRT can load ({type(e).__name__}: {e})",
            hint="the file is corrupt or truncated, or needs TensorFlow (Flex) ops: "
            "convert it again",
        ) from e

    def tensor(detail: Mapping[str, Any], key: str | None) -> _Tensor:
        names = (detail["name"], key) if key else (detail["name"],)
        shape = tuple(None if s < 0 else int(s) for s in detail["shape_signature"])
        return _Tensor(names, np.dtype(detail["dtype"]).name, shape)

    ins = [tensor(d, key) for d, key in runner.input_details]
    outs = [tensor(d, None) for d in runner.output_details]
    return {"signatures": runner.signatures}, (ins, outs), runner, False


def _load_keras(path: Path) -> _Loaded:
    if path.suffix.lower() == ".keras" and not zipfile.is_zipfile(path):
        raise ModelInvalidError(
            f"{path.name} is not a Keras archive (a .keras file is a zip; this one is "
            "corrupt, truncated or something else)",
            hint="save the model again with model.save(...)",
        )
    import_tensorflow()
    import keras

    try:
        with TF_LOCK:
            model = keras.saving.load_model(str(path))
    except Exception as e:
        raise _keras_load_error(path, keras.__version__, e) from e
    try:
        model_inputs, model_outputs = list(model.inputs), list(model.outputs)
    except (AttributeError, ValueError) as e:
        raise UnsupportedModelError(
            f"{path.name} holds a Keras model without defined inputs and outputs",
            hint="save a Functional or Sequential model built on keras.Input, "
            "or export a SavedModel",
        ) from e
    ins = [
        _Tensor((t.name, f"serving_default_{t.name}:0"), str(t.dtype), tuple(t.shape))
        for t in model_inputs
    ]
    outs = []
    for i, t in enumerate(model_outputs):
        history = getattr(t, "_keras_history", None)
        layer = getattr(getattr(history, "operation", None), "name", t.name)
        outs.append(_Tensor((f"output_{i}", t.name, layer), str(t.dtype), tuple(t.shape)))
    details = {"keras_version": keras.__version__, "signature": "serve (the model's call)"}
    return details, (ins, outs), KerasRunner(model), True


def _keras_load_error(path: Path, version: str, error: Exception) -> ModelInvalidError:
    """Why Keras refused the file, with what to do about it."""
    message = str(error)
    if "safe_mode" in message and "Lambda" in message:
        return UnsupportedModelError(
            f"{path.name} has a Lambda layer holding Python code, which Keras {version} does "
            "not load by default (it could run anything) and aoe-pack never runs",
            hint="replace the Lambda with a Layer subclass registered with "
            "@keras.saving.register_keras_serializable(), or, if you trust the file, load it "
            "yourself with safe_mode=False, export it with model.export(folder) and point "
            "modelName at that SavedModel folder",
        )
    if "Could not locate" in message:
        return UnsupportedModelError(
            f"{path.name} uses a custom class or function Keras {version} cannot find "
            f"({message.splitlines()[0][:300]})",
            hint="export it with model.export(folder) where its code is importable, and point "
            "modelName at that SavedModel folder",
        )
    return ModelInvalidError(
        f"{path.name} is not a Keras model Keras {version} can load "
        f"({type(error).__name__}: {message[:500]})",
        hint="the file is corrupt or truncated: save it again",
    )


def _load_savedmodel(path: Path) -> _Loaded:
    tf = import_tensorflow()
    try:
        with TF_LOCK:
            loaded = tf.saved_model.load(str(path))
    except Exception as e:
        raise ModelInvalidError(
            f"{path.name}/ is not a SavedModel TensorFlow {tf.__version__} can load "
            f"({type(e).__name__}: {e})",
            hint="the folder is incomplete or corrupt: export it again",
        ) from e
    signatures = dict(loaded.signatures)
    function = signatures.get("serving_default")
    if function is None:
        raise UnsupportedModelError(
            f"{path.name}/ has no serving_default signature "
            f"(it has: {', '.join(signatures) or 'none'})",
            hint="export the SavedModel with a serving_default signature",
        )
    in_specs = function.structured_input_signature[1]
    out_specs = function.structured_outputs
    if not isinstance(out_specs, Mapping):
        out_specs = {"output_0": out_specs}
    in_keys, out_keys = sorted(in_specs, key=natural_key), sorted(out_specs, key=natural_key)

    def tensor(key: str, spec: Any) -> _Tensor:
        return _Tensor((key, f"serving_default_{key}:0"), spec.dtype.name, tuple(spec.shape))

    ins = [tensor(k, in_specs[k]) for k in in_keys]
    outs = [tensor(k, out_specs[k]) for k in out_keys]
    details = {"signature": "serving_default", "signatures": sorted(signatures)}
    return details, (ins, outs), SavedModelRunner(loaded, function, in_keys, out_keys), True
