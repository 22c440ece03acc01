"""TensorFlow Lite: float32, float16, dynamic-range int8 and full int8.

Sources:

* Keras and SavedModel go through TensorFlow Lite's converter (Keras by way
  of a SavedModel exported once per build, which keeps the
  ``serving_default_<input>:0`` tensor names a ``.tflite`` config declares;
  a SavedModel source through its ``serving_default`` signature, which keeps
  the weights of models written by ``tf.saved_model.save``).
* ONNX goes through onnx2tf (installed apart, see docs/converting.md): its
  float32 ``.tflite`` is ``fp32``; for the other variants onnx2tf writes a
  SavedModel (from its own flatbuffer writer, or else from its TensorFlow
  backend) that TensorFlow Lite's converter quantises as for Keras. onnx2tf
  lays image tensors out channels-last (NHWC); how each input and output of
  the artifact relates to the ONNX model ships beside it as ``<stem>.io.json``
  (``perm``: artifact tensor = ONNX tensor transposed by it), and the runner
  feeds it so.
* A TFLite source gives only ``fp32``, as a copy: quantising needs the float
  graph.

Every conversion runs in a child process (:mod:`aoe_pack.convert._tflite_child`):
TensorFlow Lite's int8 calibration segfaults on some models, which must fail
one target, not the build.

Variants:

* ``fp32``: no optimisation.
* ``fp16``: float16 weights, dequantised to float32 when the model loads.
* ``int8-dynamic``: int8 weights, activations quantised on the fly.
* ``int8``: full integer, calibrated on ``ctx.calibration`` (the config's .npz
  or seeded samples). Inputs and outputs stay float32 by default, so the app
  feeds the same tensors as before and parity compares like with like; the
  option ``"io_dtype": "int8"`` (or ``"uint8"``) makes them integer as well,
  for integer-only accelerators. The runner quantises those for callers.

The target option ``"selectTfOps": true`` lets the converter use TensorFlow
ops TFLite lacks (Flex ops); such an artifact needs the select-tf-ops runtime
on the device, and LiteRT's Python interpreter, which checks parity here,
cannot run it, so it is refused with that reason unless no Flex op was needed.

Artifacts land in the bundle as ``tflite/<variant>/<model stem>.tflite``.
"""

from __future__ import annotations

import atexit
import json
import shutil
import threading
import time
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from aoe_pack._child import Worker, result_of, run_module
from aoe_pack.convert.api import (
    Array,
    Artifact,
    ArtifactFile,
    ConvertContext,
    Precision,
    Runner,
    SourceModel,
    Target,
    TolerancesTable,
    require_variant,
)
from aoe_pack.convert.runners import SELECT_TF_OPS, LiteRTRunner
from aoe_pack.errors import ConversionError

_TOLERANCES = {
    "fp32": Precision.FLOAT32,
    "fp16": Precision.FLOAT16,
    "int8-dynamic": Precision.INT8_WEIGHTS,
    "int8": Precision.INT8,
}
_CONTROLS = {"fp16": "fp32", "int8-dynamic": "fp32", "int8": "fp32"}
_IO_DTYPES = ("float32", "int8", "uint8")
_TIMEOUT_SECONDS = 1800


class TFLiteConverter(TolerancesTable):
    """Keras / SavedModel / TFLite / ONNX -> ``.tflite`` (registered as ``tflite``)."""

    runtime = "tflite"
    tolerances = _TOLERANCES
    controls = _CONTROLS

    def check(self, source: SourceModel, target: Target) -> None:
        """Refuse what cannot be made from the source (``validate`` calls this)."""
        if source.format == "tflite" and target.variant != "fp32":
            raise _quantise_refusal(source, target)

    def convert(self, source: SourceModel, target: Target, ctx: ConvertContext) -> Artifact:
        """Write ``<stem>.tflite`` (and, from ONNX, ``<stem>.io.json``) into ``ctx.workdir``."""
        require_variant(self.runtime, self.variants, target.variant)
        start = time.perf_counter()
        out = ctx.workdir / f"{source.path.stem}.tflite"
        io_dtype = str(target.options.get("io_dtype", "float32"))
        if io_dtype not in _IO_DTYPES or (io_dtype != "float32" and target.variant != "int8"):
            raise ConversionError(
                f"tflite:{target.variant}: io_dtype {io_dtype!r} is not possible",
                hint=f"io_dtype is one of {', '.join(_IO_DTYPES)}; only int8 takes an integer one",
            )
        tools: dict[str, str] = {}
        layout: dict[str, Any] | None = None
        flex = False
        if source.format == "tflite":
            self.check(source, target)
            shutil.copyfile(source.path, out)
        elif source.format == "onnx":
            layout, flex = _from_onnx(source, target, ctx, out, tools)
        else:
            # A Keras source is exported once per build; int8 calibration needs
            # its recurrent loops written out (see convert/keras_unroll.py).
            saved = ctx.saved_model_of(source, unrolled=target.variant == "int8")
            keys = [str(k) for k in source.details["model_inputs"]]
            # SavedModels written by tf.saved_model.save lose their weights through
            # from_saved_model; their serving signature keeps them.
            concrete = source.format == "savedmodel"
            made = _convert(
                source, target, ctx, saved, out, keys=keys, perms=None, concrete=concrete
            )
            flex = bool(made.get("flex"))
            tools["tensorflow"] = _tf_version()
        files = [ArtifactFile(local=out, bundle_path=_bundle_path(target, out.name))]
        if layout is not None:
            io_doc = out.with_suffix(".io.json")
            io_doc.write_text(json.dumps(layout, indent=2, sort_keys=True) + "\n", "utf-8")
            files.append(
                ArtifactFile(
                    local=io_doc, bundle_path=_bundle_path(target, io_doc.name), role="asset"
                )
            )
        return Artifact(
            target=target,
            files=tuple(files),
            tools=tools,
            seconds=time.perf_counter() - start,
            layout=_describe(layout) if layout else None,
            requires=(SELECT_TF_OPS,) if flex else (),
        )

    def load(self, artifact: Artifact) -> Runner:
        """The artifact in LiteRT's interpreter, fed as its ``.io.json`` says (if it has one)."""
        io_doc = next((f.local for f in artifact.files if f.bundle_path.endswith(".io.json")), None)
        layout = json.loads(io_doc.read_text(encoding="utf-8")) if io_doc else None
        return LiteRTRunner(artifact.model, layout=layout)


def _quantise_refusal(source: SourceModel, target: Target) -> ConversionError:
    return ConversionError(
        f"tflite:{target.variant} cannot be made from {source.path.name}: "
        "quantising needs the float model it was converted from",
        hint="use the Keras, SavedModel or ONNX source as modelName, or target tflite:fp32",
    )


def _bundle_path(target: Target, name: str) -> str:
    return f"{target.runtime}/{target.variant}/{name}"


def _tf_version() -> str:
    try:
        return version("tensorflow-cpu")
    except PackageNotFoundError:
        return version("tensorflow")


def _describe(layout: Mapping[str, Any]) -> str:
    parts = []
    for t in layout["inputs"]:
        perm = t["perm"]
        if perm is None:
            how = f"reshaped to {t['shape']}"
        elif perm == sorted(perm):
            how = "as in the ONNX model"
        else:
            how = f"transposed {perm}"
        parts.append(f"{t['name']} {how}")
    return "tflite from ONNX: " + "; ".join(parts) + " (see the .io.json beside the model)"


_PROGRAM = "aoe_pack.convert._tflite_child"
_worker_lock = threading.Lock()
_worker: Worker | None = None


def _tflite_worker() -> Worker:
    """The process that serves this process's TensorFlow Lite conversions (started once)."""
    global _worker  # noqa: PLW0603 - one worker per process, closed at exit
    with _worker_lock:
        if _worker is None:
            _worker = Worker(_PROGRAM)
            atexit.register(_worker.close)
        return _worker


_CALIBRATOR_CRASH_HINT = (
    "int8 calibration runs the model in TensorFlow Lite's calibrator, which can die or hang "
    "on some graphs: a Keras recurrent layer over a sequence of unknown length is one "
    "(declare the length, and aoe-pack unrolls the loop); tflite:int8-dynamic needs no "
    "calibration"
)


class _ChildDiedError(ConversionError):
    """The converter's process died or hung: no answer about the model itself."""


def _run(
    job: dict[str, Any], folder: Path, what: str, *, crash_hint: str | None = None
) -> dict[str, Any]:
    """A TFLite job in a child: converter jobs share one worker, onnx2tf gets a fresh process.

    onnx2tf changes process-wide state (seeds, environment, tf.keras itself), so
    it never shares a process; TensorFlow Lite's converter does, and a crash
    there fails only the job that was running (the next one starts a new worker).
    """
    if job["kind"] == "convert":
        outcome = _tflite_worker().run(job, timeout=_TIMEOUT_SECONDS)
    else:
        outcome = run_module(_PROGRAM, job, timeout=_TIMEOUT_SECONDS, log_dir=folder)

    def crash(message: str) -> ConversionError:
        return _ChildDiedError(message, hint=crash_hint)

    return result_of(outcome, what=what, crash=crash, timeout=_TIMEOUT_SECONDS)


def _convert(
    source: SourceModel,
    target: Target,
    ctx: ConvertContext,
    saved: Path,
    out: Path,
    *,
    keys: Sequence[str],
    perms: Sequence[Sequence[int] | None] | None,
    shapes: Sequence[Sequence[int]] | None = None,
    concrete: bool,
) -> dict[str, Any]:
    """TensorFlow Lite's converter on ``saved``, in a worker process (a crash fails this target).

    Returns ``tensors`` (the artifact's signature keys and the tensor names they
    stand for) and ``flex`` (whether it needs TensorFlow ops, the select-tf-ops runtime).
    """
    calibration = None
    if target.variant == "int8":
        calibration = ctx.workdir / "calibration.npz"
        _write_samples(ctx.calibration(source), source, calibration)
    job = {
        "kind": "convert",
        "savedModel": str(saved),
        "concrete": concrete,
        "variant": target.variant,
        "ioDtype": str(target.options.get("io_dtype", "float32")),
        "selectTfOps": bool(target.options.get("selectTfOps", False)),
        "calibration": str(calibration) if calibration else None,
        "keys": list(keys),
        # A tensor onnx2tf reshaped rather than transposed has no permutation (None).
        "perms": [None if p is None else list(p) for p in perms] if perms is not None else None,
        "shapes": [list(s) for s in shapes] if shapes is not None else None,
        "out": str(out),
    }
    what = f"TensorFlow Lite's converter on {source.path.name} (tflite:{target.variant})"
    hint = _CALIBRATOR_CRASH_HINT if target.variant == "int8" and source.format == "keras" else None
    return _run(job, ctx.workdir, what, crash_hint=hint)


def _write_samples(samples: Sequence[Mapping[str, Array]], source: SourceModel, path: Path) -> None:
    import numpy as np

    names = [s.name for s in source.inputs]
    arrays = {
        f"s{i}_i{j}": np.asarray(feed[name])
        for i, feed in enumerate(samples)
        for j, name in enumerate(names)
    }
    np.savez(path, **arrays)  # type: ignore[arg-type]


def _from_onnx(
    source: SourceModel, target: Target, ctx: ConvertContext, out: Path, tools: dict[str, str]
) -> tuple[dict[str, Any], bool]:
    """An ONNX source through onnx2tf: its float32 model, or its SavedModel quantised here."""
    float32 = target.variant == "fp32" and not target.options.get("selectTfOps")
    key = "onnx2tf" if float32 else "onnx2tf-savedmodel"

    # Asked here, outside the shared job: every target that shares onnx2tf's
    # output then records that it read the ONNX form (the build may retry it
    # with that form's functions expanded).
    onnx_path = ctx.onnx_of(source)

    def attempt(folder: Path, backend: str) -> dict[str, Any]:
        staged = folder / "model.onnx"  # onnx2tf rewrites its input, and embeds its name
        shutil.copyfile(onnx_path, staged)
        job = {
            "kind": "onnx2tf",
            "onnx": str(staged),
            "folder": str(folder),
            "savedModel": not float32,
            "backend": backend,
        }
        return _run(job, folder, f"onnx2tf on {source.path.name}")

    def make(folder: Path) -> dict[str, Any]:
        try:
            result = attempt(folder, "flatbuffer_direct")
        except _ChildDiedError:
            raise  # a timeout says nothing of the model: trying elsewhere would be luck
        except ConversionError as direct:
            if float32:
                raise
            # onnx2tf's own flatbuffer writer makes the float32 model but has no
            # SavedModel for some graphs it converts; its TensorFlow backend
            # builds the graph from TensorFlow ops, which always gives one.
            shutil.rmtree(folder)
            folder.mkdir()
            try:
                result = attempt(folder, "tf_converter")
            except ConversionError as classic:
                raise ConversionError(
                    f"{direct.message}; and with its tf_converter backend: {classic.message}",
                    hint=direct.hint,
                ) from None
            return {"folder": str(folder), "io": result["io"], "backend": "tf_converter"}
        return {"folder": str(folder), "io": result["io"], "backend": "flatbuffer_direct"}

    made = ctx.shared(key, source, make)
    folder, layout = Path(made["folder"]), made["io"]
    tools["onnx2tf"] = version("onnx2tf")
    if made["backend"] != "flatbuffer_direct":
        tools["onnx2tf"] += f" ({made['backend']} backend)"
    if float32:
        shutil.copyfile(folder / "model_float32.tflite", out)
        return dict(layout), False
    keys = [t["name"] for t in layout["inputs"]]
    perms = [t["perm"] for t in layout["inputs"]]
    shapes = [t["shape"] for t in layout["inputs"]]
    made = _convert(
        source, target, ctx, folder, out, keys=keys, perms=perms, shapes=shapes, concrete=False
    )
    tensors: dict[str, str] = made.get("tensors") or {}
    tools["tensorflow"] = _tf_version()
    # The SavedModel's signature keys are the ONNX names; the tensors are this artifact's.
    retargeted = {
        kind: [{**t, "tensor": tensors.get(t["name"], t["tensor"])} for t in layout[kind]]
        for kind in ("inputs", "outputs")
    }
    return {**layout, **retargeted}, bool(made.get("flex"))
