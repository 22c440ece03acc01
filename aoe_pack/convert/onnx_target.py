"""Optimised ONNX, from the source's ONNX form (``ctx.onnx_of``).

Variants:

* ``basic`` (default): onnxruntime's BASIC graph optimisations (constant
  folding, redundant-node removal), saved with ``optimized_model_filepath``.
  Only standard ONNX ops: any ONNX runtime can load the result.
* ``extended``: onnxruntime's EXTENDED level adds fusions that emit
  ``com.microsoft`` ops (``FusedConv``, ``FusedGemm``...), so the result needs
  onnxruntime (mobile included), not just any ONNX runtime.
* ``slim``: onnxslim's graph simplification; standard ONNX ops.

Never onnxruntime's ALL level: it adds layout transforms for the building
machine's CPU (NCHWc), and the saved model is then hardware-specific.

Keras sources converted by tf2onnx keep their NHWC layout, but their ONNX
input names are the Keras ones: the runner matches inputs by position when
the declared names differ. Artifacts land as ``onnx/<variant>/<stem>.onnx``.
"""

from __future__ import annotations

import time
from importlib.metadata import version
from typing import Any

from aoe_pack.convert.api import (
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
from aoe_pack.convert.frameworks import EXTRA_HINT, import_onnx, import_onnxruntime
from aoe_pack.convert.runners import OnnxRuntimeRunner
from aoe_pack.errors import ConversionError, MissingExtraError

# Largest absolute error against the source, at every level: mnist (Keras, via
# tf2onnx) 3.0e-8, squeezenet (ONNX) 3.7e-9; `aoe-pack inspect` of a bundle
# built with --target onnx:basic --target onnx:extended --target onnx:slim shows
# them ("parity ... max"). Fusions only reorder float sums, so the float32 bound
# (atol 1e-6 + rtol 1e-4 x the output's peak) is ample at every level.
_TOLERANCES = {
    "basic": Precision.FLOAT32,
    "extended": Precision.FLOAT32,
    "slim": Precision.FLOAT32,
}


class OnnxConverter(TolerancesTable):
    """Source -> optimised ONNX (registered as ``onnx``)."""

    runtime = "onnx"
    tolerances = _TOLERANCES

    def convert(self, source: SourceModel, target: Target, ctx: ConvertContext) -> Artifact:
        """Write the optimised ``<stem>.onnx`` into ``ctx.workdir``."""
        require_variant(self.runtime, self.variants, target.variant)
        start = time.perf_counter()
        model = ctx.onnx_of(source)
        out = ctx.workdir / f"{source.path.stem}.onnx"
        tools = {} if source.format == "onnx" else {"tf2onnx": version("tf2onnx")}
        ort = import_onnxruntime()  # before onnxslim, which imports it lazily
        onnxslim = _import_onnxslim() if target.variant == "slim" else None
        try:
            if onnxslim is not None:
                import_onnx().save(onnxslim.slim(str(model)), str(out))
                tools["onnxslim"] = version("onnxslim")
            else:
                options = ort.SessionOptions()
                options.log_severity_level = 3
                options.graph_optimization_level = (
                    ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
                    if target.variant == "basic"
                    else ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
                )
                options.optimized_model_filepath = str(out)
                ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
                tools["onnxruntime"] = ort.__version__
        except Exception as e:
            raise ConversionError(
                f"onnx:{target.variant} optimisation of {model.name} failed: "
                f"{type(e).__name__}: {e}",
                hint="try the onnx:basic variant, which changes the least",
            ) from e
        if not out.is_file():
            raise ConversionError(f"onnx:{target.variant} wrote no model for {model.name}")
        return single_file_artifact(target, out, tools=tools, seconds=time.perf_counter() - start)

    def load(self, artifact: Artifact) -> Runner:
        """The artifact in onnxruntime on the CPU."""
        model = artifact.model
        return OnnxRuntimeRunner(model, model_format="ONNX")


def _import_onnxslim() -> Any:
    try:
        import onnxslim
    except ImportError as e:
        raise MissingExtraError("onnxslim is not installed", hint=EXTRA_HINT) from e
    return onnxslim
