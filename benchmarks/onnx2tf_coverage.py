"""What onnx2tf itself says it cannot lower, against what our builds refused.

Run:
    .venv/bin/python benchmarks/onnx2tf_coverage.py --zoo DIR --report cov.json

``DIR`` is a zoo of benchmarks/zoo.py and ``cov.json`` the ``--report`` of a
benchmarks/bench_coverage.py run over it. For every ONNX model of the zoo,
onnx2tf's own op-coverage report (the one ``onnx2tf`` writes with
``report_op_coverage``, after its preprocessing) lists the nodes its
flatbuffer writer has no builtin TFLite form for. The table counts them
against the build's ``tflite-fp32`` status: refusals onnx2tf predicts,
refusals it does not, and passes it flags (where onnx2tf found another way,
or our ONNX function expansion did).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def unsupported_nodes(model_path: Path) -> list[str]:
    """``op (reason)`` of each node onnx2tf's own report cannot lower to a builtin."""
    import onnx
    from onnx2tf.tflite_builder.preprocess import register_default_preprocess_rules
    from onnx2tf.tflite_builder.preprocess.pipeline import run_preprocess_pipeline
    from onnx2tf.tflite_builder.reporting import build_op_coverage_report

    register_default_preprocess_rules()
    model, _ = run_preprocess_pipeline(onnx_graph=onnx.load(str(model_path)))
    report: dict[str, Any] = build_op_coverage_report(onnx_graph=model, output_file_name="m")
    return [
        f"{n['onnx_op']} ({n.get('reason_code')})"
        for n in report["graph_node_reports"]
        if not n["supported"] or n.get("dispatch_mode") == "custom"
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zoo", type=Path, required=True)
    parser.add_argument("--report", type=Path, required=True, help="bench_coverage.py --report")
    parser.add_argument("--target", default="tflite-fp32")
    args = parser.parse_args(argv)
    built = json.loads(args.report.read_text())["results"]
    status = {r["name"]: r.get("targets", {}).get(args.target, {}).get("status") for r in built}
    table: Counter[tuple[str, str]] = Counter()
    for model in sorted(args.zoo.glob("*/model.onnx")):
        name = model.parent.name
        try:
            flagged = "flagged" if unsupported_nodes(model) else "clean"
        except Exception as e:  # noqa: BLE001 - onnx2tf's report failing is a row of its own
            flagged = f"report failed ({type(e).__name__})"
        outcome = status.get(name) or "not built"
        table[outcome, flagged] += 1
        print(f"{name:50s} {outcome:14s} {flagged}")
    print()
    for (outcome, flagged), n in sorted(table.items()):
        print(f"{n:5d}  {args.target} {outcome:14s} onnx2tf report: {flagged}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
