"""`export provenance` of a bundle converted for real: targets, tools and parity in the statement.

Apart from test_provenance.py because it converts a model (ONNX to ONNX
Runtime's onnx:basic, without TensorFlow), which needs aoe-pack[convert].
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from _interop import Keys, aoe
from _statement_checks import protobuf_problem, schema_problems

from aoe_pack.bundle import inspect_bundle


def _relu_config(folder: Path) -> Path:
    """A one-node ONNX model with an onnx:basic target: a real conversion, without TensorFlow."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    folder.mkdir()
    onnx.save(model, str(folder / "model.onnx"))
    config = {
        "version": "1.0.0", "tag": "relu", "runtime": "onnx", "modelDir": ".",
        "modelName": "model.onnx", "encrypt": False,
        "targets": [{"runtime": "onnx", "variant": "basic"}],
    }  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config))
    return folder / "config.json"


def test_a_converted_bundle_records_its_targets_tools_and_parity(
    keys: Keys, tmp_path: Path
) -> None:
    bundle = tmp_path / "relu.aoe"
    config = _relu_config(tmp_path / "relu")
    aoe("build", config, "--out", bundle, "--sign-key", keys.key("p256"), json=True).expect()
    out = tmp_path / "relu.intoto.jsonl"
    aoe(
        "export", "provenance", bundle, "--sign-key", keys.key("p256"), "--out", out, json=True
    ).expect()
    statement: dict[str, Any] = json.loads(
        base64.b64decode(json.loads(out.read_bytes())["payload"])
    )
    assert schema_problems(statement) == []
    assert protobuf_problem(statement) is None
    recorded = inspect_bundle(bundle).manifest.provenance
    (conversion,) = recorded["conversions"]
    predicate = statement["predicate"]
    assert predicate["buildDefinition"]["externalParameters"]["targets"] == ["onnx-basic"]
    assert predicate["runDetails"]["byproducts"] == [
        {"name": "conversion/onnx-basic", "annotations": conversion}
    ]
    assert conversion["parity"]["passed"] is True
    source, *tools = predicate["buildDefinition"]["resolvedDependencies"]
    assert source["digest"]["sha256"] == recorded["source"]["sha256"]
    assert source["annotations"]["format"] == "onnx"
    assert {t["name"]: t["annotations"]["version"] for t in tools} == conversion["tools"]
    assert all(t["annotations"]["targets"] == ["onnx-basic"] for t in tools)
