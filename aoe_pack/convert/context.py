"""What a build gives its converters: work folders, the source as ONNX, calibration data.

One :class:`BuildContext` serves one build. :meth:`BuildContext.for_target`
hands each target its own empty folder while sharing the rest, so that the
source's ONNX form is made once however many targets (onnx, ort, mnn, ncnn)
need it, even when they convert concurrently.

Layout under the build's work folder::

    onnx/<n>/<model stem>.onnx     the source as converted by tf2onnx (not for ONNX sources)
    targets/<runtime>-<variant>[~expanded][~again-<role>]/   each attempt's own folder
"""

from __future__ import annotations

import shutil
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aoe_pack.convert import onnx_graph
from aoe_pack.convert._tf2onnx_fixes import (
    CUSTOM_OP_HANDLERS,
    canonical_generated_names,
    inline_compiled_functions,
)
from aoe_pack.convert.api import Array, SourceModel, Target
from aoe_pack.convert.frameworks import EXTRA_HINT, TF_LOCK, import_onnx, import_tensorflow
from aoe_pack.convert.keras_unroll import unrolled as unrolled_model
from aoe_pack.convert.parity import sample_inputs
from aoe_pack.convert.sources import MAX_OPSET, MIN_OPSET
from aoe_pack.errors import ConversionError, MissingExtraError, ModelFileError, UsageError

T = TypeVar("T")

DEFAULT_OPSET = 17
"""tf2onnx's opset: 17 is what onnxruntime, MNN and pnnx all handle well here (18 is the limit)."""

CALIBRATION_SAMPLES = 32
"""Seeded samples for full-integer calibration when the config names no data."""


@dataclass
class _Shared:
    root: Path
    config_dir: Path | None
    opset: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    made: dict[tuple[str, Path], Future[Any]] = field(default_factory=dict)
    """Things made once per build and source, by (kind, source path): "onnx", "keras",
    "savedmodel" (and "-unrolled"), "onnx-expanded", opset-lowered forms, shared folders."""
    seconds: dict[Path, float] = field(default_factory=dict)


class BuildContext:
    """A :class:`~aoe_pack.convert.api.ConvertContext` for one build.

    ``workdir`` is the build's work folder; ``config_dir`` is where relative
    paths in target options (``"calibration": "data.npz"``) are resolved
    (the config's folder). ``opset`` is the ONNX opset tf2onnx writes.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        config_dir: Path | None = None,
        opset: int = DEFAULT_OPSET,
    ) -> None:
        if not MIN_OPSET <= opset <= MAX_OPSET:
            raise UsageError(f"ONNX opset {opset} is outside {MIN_OPSET}-{MAX_OPSET}")
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.target: Target | None = None
        self.used_onnx = False
        """Whether a converter asked this context for the source's ONNX form."""
        self._expand = False
        self._shared = _Shared(root=workdir, config_dir=config_dir, opset=opset)

    def for_target(
        self, target: Target, *, expand_functions: bool = False, again: str | None = None
    ) -> BuildContext:
        """This build's context with ``workdir`` a fresh, empty folder for ``target``.

        ``expand_functions``: :meth:`onnx_of` gives the source's ONNX with its
        ONNX functions expanded (see :meth:`expanded_onnx`). ``again`` names a
        second measurement (``"variant"``, ``"control"``); each combination
        gets a folder of its own, so measuring again never touches an
        artifact the build may ship.
        """
        name = target.name + ("~expanded" if expand_functions else "")
        name += f"~again-{again}" if again else ""
        folder = self._shared.root / "targets" / name
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        child = object.__new__(BuildContext)
        child.workdir = folder
        child.target = target
        child.used_onnx = False
        child._expand = expand_functions
        child._shared = self._shared
        return child

    def expanded_onnx(self, source: SourceModel) -> tuple[Path, dict[str, str]] | None:
        """The source's ONNX with its ONNX functions expanded, and the tools that did it.

        Made once per build (:func:`aoe_pack.convert.onnx_graph.expand_functions`
        writes each call of an op the ONNX spec defines as a function, such as
        Gelu, Swish or Attention, as the spec's body). None when the model calls
        no function, or cannot be expanded or written.
        """
        original = self._onnx_form(source)

        def expand(index: int) -> tuple[Path, dict[str, str]] | None:
            onnx = import_onnx()
            out = self._shared.root / "onnx" / str(index) / f"{source.path.stem}.onnx"
            try:
                expanded = onnx_graph.expand_functions(onnx.load(str(original)))
                if expanded is None:
                    return None
                out.parent.mkdir(parents=True, exist_ok=True)
                onnx.save(expanded.model, str(out))
            except Exception:  # noqa: BLE001 - over 2 GB, unreadable: the first outcome stands
                return None
            return out, expanded.tools

        made: tuple[Path, dict[str, str]] | None = self._once("onnx-expanded", source, expand)
        return made

    def onnx_seconds(self, source: SourceModel) -> float:
        """How long converting ``source`` to ONNX took (0 if it is ONNX or was not converted)."""
        return self._shared.seconds.get(source.path.resolve(), 0.0)

    # --- ConvertContext -----------------------------------------------------------

    def _once(self, kind: str, source: SourceModel, make: Callable[[int], Any]) -> Any:
        """``make(index)`` once per build for (kind, source); concurrent callers wait for it."""
        key = (kind, source.path.resolve())
        with self._shared.lock:
            future = self._shared.made.get(key)
            owner = future is None
            if future is None:
                future = Future()
                self._shared.made[key] = future
                index = len(self._shared.made)
        if owner:
            try:
                future.set_result(make(index))
            except BaseException as e:  # waiting targets get the same error
                future.set_exception(e)
                raise
        return future.result()

    def shared(self, key: str, source: SourceModel, make: Callable[[Path], T]) -> T:
        """``make(folder)`` once per build for (key, source), in a fresh folder of its own.

        Targets that convert concurrently and need the same intermediate (the
        onnx2tf output of a source, say) wait for the one that makes it; an
        error reaches every one of them.
        """

        def run(index: int) -> T:
            folder = self._shared.root / "shared" / f"{index}-{key}"
            folder.mkdir(parents=True, exist_ok=True)
            return make(folder)

        kind = f"shared:{key}" + (":expanded" if self._expand else "")
        result: T = self._once(kind, source, run)
        return result

    def share_keras_model(self, source: SourceModel, model: Any) -> None:
        """Hand over the Keras model validation already loaded, so nothing loads it again."""
        self._once("keras", source, lambda _: model)

    def keras_model(self, source: SourceModel) -> Any:
        """The Keras source, loaded once per build."""

        def load(_: int) -> Any:
            import_tensorflow()
            import keras

            with TF_LOCK:
                return keras.saving.load_model(str(source.path))

        return self._once("keras", source, load)

    def saved_model_of(self, source: SourceModel, *, unrolled: bool = False) -> Path:
        """The source as a SavedModel: itself, or a Keras source exported once per build.

        ``unrolled`` asks for the Keras source with its recurrent layers unrolled
        (:mod:`aoe_pack.convert.keras_unroll`), for int8 calibration; a model
        without any, or whose loop cannot be unrolled (an unknown number of
        steps), gets the plain export.
        """
        if source.format == "savedmodel":
            return source.path
        if source.format != "keras":
            raise ConversionError(f"{source.path.name} ({source.format}) has no SavedModel form")

        def export_to(folder: Path, model: Any) -> None:
            tf = import_tensorflow()
            with TF_LOCK:
                # The declared batch size, where the config gives one: TFLite
                # lowers a Keras RNN's loop only when the batch is known.
                specs = [
                    tf.TensorSpec(_with_batch(t.shape, spec), t.dtype, name=t.name)
                    for t, spec in zip(model.inputs, source.inputs, strict=False)
                ]
                # One positional argument: the input, or the list of a multi-input model.
                signature = specs if len(specs) == 1 else [specs]
                model.export(
                    str(folder), format="tf_saved_model", verbose=False, input_signature=signature
                )

        def export(index: int) -> Path:
            folder = self._shared.root / "saved_model" / str(index)
            export_to(folder, self.keras_model(source))
            return folder

        def export_unrolled(index: int) -> Path:
            model = self.keras_model(source)  # outside the lock: loading takes it itself
            with TF_LOCK:
                copy = unrolled_model(model)
            if copy is None:
                return self.saved_model_of(source)
            folder = self._shared.root / "saved_model" / str(index)
            try:
                export_to(folder, copy)
            except Exception:  # noqa: BLE001 - e.g. "Cannot unroll a RNN if the time dimension
                # is undefined": the plain export is always a safe answer
                shutil.rmtree(folder, ignore_errors=True)
                return self.saved_model_of(source)
            return folder

        if unrolled:
            made: Path = self._once("savedmodel-unrolled", source, export_unrolled)
            return made
        path: Path = self._once("savedmodel", source, export)
        return path

    def onnx_of(self, source: SourceModel, *, max_opset: int | None = None) -> Path:
        """The source as ONNX: itself for ONNX, else converted once with tf2onnx.

        In a context made with ``expand_functions``, that ONNX with its ONNX
        functions expanded (:meth:`expanded_onnx`), where it has any. With
        ``max_opset``, a model of a newer opset is down-converted (once per
        build) with ONNX's version converter. Where that converter
        cannot (an op that did not exist at ``max_opset``, such as Gelu), the
        original is returned: MNN and pnnx read many ops by name whatever the
        opset. Either way parity compares the artifact with the original
        source, so a faulty down-conversion cannot pass.
        """
        self.used_onnx = True
        original = self._onnx_form(source)
        kind = "onnx"
        if self._expand:
            expanded = self.expanded_onnx(source)
            original, kind = (expanded[0] if expanded else original), "onnx-expanded"
        opset = source.details.get("opset") if source.format == "onnx" else self._shared.opset
        if max_opset is None or not isinstance(opset, int) or opset <= max_opset:
            return original

        def down(index: int) -> Path:
            out = self._shared.root / "onnx" / str(index) / f"{source.path.stem}.onnx"
            return out if _down_convert(original, out, max_opset) else original

        lowered: Path = self._once(f"{kind}-opset-{max_opset}", source, down)
        return lowered

    def _onnx_form(self, source: SourceModel) -> Path:
        """The source itself if it is ONNX, else converted once with tf2onnx."""
        if source.format == "onnx":
            return source.path

        def convert(index: int) -> Path:
            out = self._shared.root / "onnx" / str(index) / f"{source.path.stem}.onnx"
            start = time.perf_counter()
            _to_onnx(source, out, self._shared.opset, lambda: self.keras_model(source))
            self._shared.seconds[source.path.resolve()] = time.perf_counter() - start
            return out

        path: Path = self._once("onnx", source, convert)
        return path

    def calibration(self, source: SourceModel) -> list[dict[str, Array]]:
        """Calibration inputs: the target's ``calibration`` .npz, else seeded samples."""
        option = self.target.options.get("calibration") if self.target else None
        if option is None:
            return sample_inputs(source, samples=CALIBRATION_SAMPLES)
        path = Path(str(option))
        if not path.is_absolute() and self._shared.config_dir is not None:
            path = self._shared.config_dir / path
        return load_calibration(path, source)


def _with_batch(shape: Any, spec: Any) -> list[int | None]:
    """A Keras input shape with its batch set as the config declares it (kept when -1)."""
    dims = list(shape)
    if dims and spec.shape and spec.shape[0] >= 1:
        dims[0] = spec.shape[0]
    return dims


def load_calibration(path: Path, source: SourceModel) -> list[dict[str, Array]]:
    """Samples from a ``.npz`` holding one array per declared input name.

    Each array stacks samples along a new first axis (``(N, *shape)``) or, when
    it has the declared rank, along the batch axis (``(N, 28, 28, 1)`` for
    ``[1, 28, 28, 1]``). A model with one input may use any array name.
    """
    import numpy as np

    if not path.is_file():
        raise ModelFileError(
            f"calibration data {path} does not exist",
            hint='"calibration" in a target is a .npz path relative to the config\'s folder',
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays: dict[str, Any] = {k: data[k] for k in data.files}
    except Exception as e:
        raise ModelFileError(f"{path.name} is not a readable .npz file: {e}") from e
    if len(source.inputs) == 1 and len(arrays) == 1:
        arrays = {source.inputs[0].name: next(iter(arrays.values()))}
    missing = [s.name for s in source.inputs if s.name not in arrays]
    if missing:
        raise ConversionError(
            f"{path.name} has no array for input(s) {', '.join(missing)} "
            f"(it has {', '.join(arrays) or 'none'})",
            hint="name each array in the .npz after the declared input it feeds",
        )
    per_input: dict[str, list[Array]] = {}
    for spec in source.inputs:
        arr = arrays[spec.name]

        def fits(shape: tuple[int, ...], declared: tuple[int, ...] = spec.shape) -> bool:
            return len(shape) == len(declared) and all(
                d < 0 or s == d for s, d in zip(shape, declared, strict=True)
            )

        if arr.ndim == len(spec.shape) + 1 and fits(arr.shape[1:]):
            samples = [arr[i] for i in range(arr.shape[0])]
        elif arr.ndim == len(spec.shape) and arr.ndim and fits((1, *arr.shape[1:])):
            samples = [arr[i : i + 1] for i in range(arr.shape[0])]
        else:
            raise ConversionError(
                f"{path.name}: array {spec.name!r} of shape {list(arr.shape)} does not hold "
                f"samples of the declared shape {list(spec.shape)}",
                hint="stack samples along a new first axis, or along the batch axis",
            )
        per_input[spec.name] = [np.asarray(s, dtype=spec.dtype) for s in samples]
    counts = {len(v) for v in per_input.values()}
    if len(counts) != 1 or 0 in counts:
        raise ConversionError(
            f"{path.name}: every input needs the same, non-zero number of samples "
            f"(found {', '.join(f'{k}: {len(v)}' for k, v in per_input.items())})"
        )
    return [{k: v[i] for k, v in per_input.items()} for i in range(counts.pop())]


def _to_onnx(
    source: SourceModel, out: Path, opset: int, keras_model: Callable[[], Any] | None = None
) -> None:
    """Convert ``source`` to ONNX; ``keras_model`` gives the build's loaded Keras model."""
    tf = import_tensorflow()
    onnx = import_onnx()
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        import tf2onnx
        import tf2onnx.convert  # before the counter reset below: importing it moves the counter
    except ImportError as e:
        raise MissingExtraError("tf2onnx is not installed", hint=EXTRA_HINT) from e
    try:
        # Resolved before TF_LOCK: another thread may be loading it under that lock.
        model = keras_model() if keras_model is not None and source.format == "keras" else None
        with TF_LOCK, warnings.catch_warnings():
            # from_tflite reads tensor shapes with tf.lite.Interpreter, which warns
            # of its own deprecation (and tf2onnx logs any warning it is handed).
            warnings.filterwarnings(
                "ignore",
                message=r"\s*Warning: tf.lite.Interpreter is deprecated",
                category=UserWarning,
            )
            # tf2onnx names the nodes it inserts from a process-wide counter:
            # start it afresh so that a conversion's names do not depend on
            # what this process converted before.
            tf2onnx.utils.INTERNAL_NAME = 1
            if source.format == "tflite":
                proto, _ = tf2onnx.convert.from_tflite(str(source.path), opset=opset)
            else:
                function, signature = _tf_function(tf, source, model)
                proto = _from_function(tf, tf2onnx, function, signature, opset)
        # It records the traced function's name, numbered by a TensorFlow
        # counter that other threads' exports move: nothing a device needs.
        proto.graph.doc_string = ""
        canonical_generated_names(proto)
        onnx.save(proto, str(out))
        onnx.checker.check_model(str(out), full_check=True)
    except Exception as e:
        raise ConversionError(
            f"tf2onnx could not convert {source.path.name} to ONNX (opset {opset}): "
            f"{type(e).__name__}: {e}",
            hint="the model may use an op ONNX lacks; the tflite target does not need ONNX",
        ) from e


def _down_convert(src: Path, out: Path, max_opset: int) -> bool:
    """Write ``src`` at ``max_opset`` to ``out``; False when ONNX's converter cannot."""
    onnx = import_onnx()
    try:
        model = onnx.version_converter.convert_version(onnx.load(str(src)), max_opset)
        onnx.checker.check_model(model)
    except Exception:  # noqa: BLE001 - "No Previous Version of Gelu" and the like: use src
        return False
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return True


def _from_function(tf: Any, tf2onnx: Any, function: Any, signature: Any, opset: int) -> Any:
    """tf2onnx's ``from_function``, without the captured tensors as graph inputs.

    A Keras 3 Normalization layer keeps its mean and variance as plain
    tensors, which the traced function captures; tf2onnx's ``from_function``
    lists every non-resource placeholder as an input, captures included, so
    the ONNX model took three inputs instead of one (EfficientNet, any model
    that normalises inside). Its freezing step already turns captures into
    constants: only the input list changes here.
    """
    concrete = function.get_concrete_function(*signature)
    captured = {id(t) for t in concrete.graph.internal_captures}
    inputs = [
        t.name for t in concrete.inputs if t.dtype != tf.dtypes.resource and id(t) not in captured
    ]
    outputs = [t.name for t in concrete.outputs if t.dtype != tf.dtypes.resource]
    renames = tf2onnx.convert.tensor_names_from_structed(concrete, inputs, outputs)
    with tf.device("/cpu:0"):
        graph_def = tf2onnx.tf_loader.from_function(concrete, inputs, outputs)
        graph_def = inline_compiled_functions(tf, tf2onnx, graph_def, inputs, outputs)
    proto, _ = tf2onnx.convert.from_graph_def(
        graph_def,
        name=concrete.name,
        input_names=inputs,
        output_names=outputs,
        opset=opset,
        tensors_to_rename=renames,
        custom_op_handlers=CUSTOM_OP_HANDLERS,
    )
    return proto


def _tf_function(tf: Any, source: SourceModel, model: Any) -> tuple[Any, list[Any]]:
    """A tf.function over the source's serving computation, and its input signature."""
    if source.format == "keras":
        if model is None:
            import keras

            model = keras.saving.load_model(str(source.path))
        signature = [tf.TensorSpec(t.shape, t.dtype, name=t.name) for t in model.inputs]

        @tf.function(input_signature=signature)  # type: ignore[untyped-decorator]
        def serve_keras(*args: Any) -> Any:
            return model(args[0] if len(args) == 1 else list(args), training=False)

        serve_keras.model = model  # keep the model alive with the function
        return serve_keras, signature

    loaded = tf.saved_model.load(str(source.path))
    function = loaded.signatures["serving_default"]
    keys: list[str] = list(source.details["model_inputs"])
    specs: Mapping[str, Any] = function.structured_input_signature[1]
    signature = [tf.TensorSpec(specs[k].shape, specs[k].dtype, name=k) for k in keys]

    @tf.function(input_signature=signature)  # type: ignore[untyped-decorator]
    def serve_saved(*args: Any) -> Any:
        return function(**dict(zip(keys, args, strict=True)))

    serve_saved.loaded = loaded
    return serve_saved, signature
