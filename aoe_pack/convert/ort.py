"""ONNX Runtime Mobile: the ``.ort`` format with its required-operators config.

The one variant, ``mobile``, runs onnxruntime's own
``python -m onnxruntime.tools.convert_onnx_models_to_ort`` on the source's ONNX
form, in a subprocess whose files all stay in the target's folder:

* ``--optimization_style Fixed``: optimisations are applied before saving,
  the guidance for the CPU execution provider (``Runtime`` is for NNAPI/CoreML).
* ``--target_platform arm``: the tool's level ALL then leaves out the NCHWc
  layout transform, which is x86-only, so the model runs on any phone.

The ``.ort`` (role ``model``) ships with ``<stem>.required_operators.config``
(role ``asset``), which a custom minimal onnxruntime build takes as
``--include_ops_by_config``. Both land under ``ort/mobile/``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

from aoe_pack.convert._ort_layout import canonical_ort
from aoe_pack.convert.api import (
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
from aoe_pack.convert.frameworks import framework_scratch, import_onnxruntime
from aoe_pack.convert.runners import OnnxRuntimeRunner
from aoe_pack.errors import ConversionError

# The tool's arm-safe ALL level fuses like onnx:extended and more: measured
# 3.0e-8 (mnist) and 0 (squeezenet); 1e-4 leaves room for fused float reordering.
_TOLERANCES = {"mobile": Precision.FLOAT32}
_TIMEOUT_SECONDS = 900


class OrtConverter(TolerancesTable):
    """ONNX -> ``.ort`` for ONNX Runtime Mobile (registered as ``ort``)."""

    runtime = "ort"
    tolerances = _TOLERANCES

    def convert(self, source: SourceModel, target: Target, ctx: ConvertContext) -> Artifact:
        """Write ``<stem>.ort`` and ``<stem>.required_operators.config`` into ``ctx.workdir``."""
        require_variant(self.runtime, self.variants, target.variant)
        start = time.perf_counter()
        ort = import_onnxruntime()
        stem = source.path.stem
        # The tool converts every .onnx in a folder; give it a copy of ours alone.
        staged = ctx.workdir / "input" / f"{stem}.onnx"
        staged.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ctx.onnx_of(source), staged)
        out_dir = ctx.workdir / "out"
        argv = [
            sys.executable,
            "-m",
            "onnxruntime.tools.convert_onnx_models_to_ort",
            "--optimization_style",
            "Fixed",
            "--target_platform",
            "arm",
            "--output_dir",
            str(out_dir),
            str(staged),
        ]
        env = dict(os.environ, XDG_CACHE_HOME=str(framework_scratch() / "cache"))
        env.pop("ORT_CONVERT_ONNX_MODELS_TO_ORT_OPTIMIZATION_LEVEL", None)  # the level is ours
        try:
            done = subprocess.run(
                argv,
                cwd=ctx.workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise ConversionError(
                f"ort:mobile conversion of {stem} took over {_TIMEOUT_SECONDS} s and was stopped"
            ) from e
        model = out_dir / f"{stem}.ort"
        config = out_dir / f"{stem}.required_operators.config"
        if done.returncode != 0 or not model.is_file() or not config.is_file():
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
            raise ConversionError(
                f"onnxruntime's ORT converter failed on {stem}.onnx "
                f"(exit {done.returncode}):\n{tail}",
                hint="the model may use an op ONNX Runtime Mobile lacks; the onnx target may work",
            )
        shutil.rmtree(staged.parent, ignore_errors=True)
        # The writer's layout follows a per-process hash seed: give it one layout.
        model.write_bytes(canonical_ort(model.read_bytes()))
        # The tool records the absolute path it wrote to; a bundle should not carry
        # (or vary with) the build machine's folders.
        text = config.read_text(encoding="utf-8").replace(str(model), model.name)
        config.write_text(text, encoding="utf-8")
        tools = {"onnxruntime": ort.__version__}
        if source.format != "onnx":
            from importlib.metadata import version

            tools["tf2onnx"] = version("tf2onnx")
        return Artifact(
            target=target,
            files=(
                ArtifactFile(
                    local=model, bundle_path=f"ort/{target.variant}/{model.name}", role="model"
                ),
                ArtifactFile(
                    local=config, bundle_path=f"ort/{target.variant}/{config.name}", role="asset"
                ),
            ),
            tools=tools,
            seconds=time.perf_counter() - start,
        )

    def load(self, artifact: Artifact) -> Runner:
        """The ``.ort`` model in onnxruntime on the CPU."""
        model = artifact.model
        return OnnxRuntimeRunner(model, model_format="ORT")
