"""ONNX functions expanded for a runtime that lacks them: the spec's bodies, folded."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from aoe_pack.convert import onnx_graph
from aoe_pack.convert.api import Target
from aoe_pack.convert.measure import with_second_reason
from aoe_pack.convert.mnn import _rules as mnn_rules
from aoe_pack.convert.outcome import Status, TargetOutcome
from aoe_pack.errors import ParityError, UnsupportedModelError

F = TensorProto.FLOAT


def single(op: str, shape: list[int], opset: int, **attrs: Any) -> Any:
    graph = helper.make_graph(
        [helper.make_node(op, ["x"], ["y"], **attrs)],
        "g",
        [helper.make_tensor_value_info("x", F, shape)],
        [helper.make_tensor_value_info("y", F, shape)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def ops(model: Any) -> list[str]:
    return sorted({n.op_type for n in model.graph.node})


def same_function(a: Any, b: Any, shape: list[int]) -> None:
    x = np.random.default_rng(3).normal(size=shape).astype(np.float32)
    want = ReferenceEvaluator(a).run(None, {"x": x})[0]
    got = ReferenceEvaluator(b).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_swish_becomes_the_ops_its_body_names() -> None:
    original = single("Swish", [2, 5], 24, alpha=1.5)
    expanded = onnx_graph.expand_functions(original)
    assert expanded is not None
    assert ops(expanded.model) == ["Mul", "Sigmoid"]
    assert sorted(expanded.tools) == ["onnx-inliner", "onnxslim"]
    same_function(original, expanded.model, [2, 5])


def test_an_attribute_left_to_its_default_reaches_the_body() -> None:
    # Swish's alpha defaults to 1.0; ONNX's inliner alone cannot type the body without it.
    original = single("Swish", [4], 24)
    expanded = onnx_graph.expand_functions(original)
    assert expanded is not None
    same_function(original, expanded.model, [4])


def test_a_constant_of_a_body_is_written_as_a_value_tensor() -> None:
    expanded = onnx_graph.expand_functions(single("Softsign", [3], 22))
    assert expanded is not None
    for node in expanded.model.graph.node:
        if node.op_type == "Constant":
            assert [a.name for a in node.attribute] == ["value"]


def test_shapes_a_body_computes_at_run_time_are_folded_to_constants() -> None:
    # RMSNormalization's body loops over the rank to find its axes.
    original = single("RMSNormalization", [2, 3, 4], 23, axis=1)
    original.graph.node[0].input.append("scale")
    original.graph.initializer.append(
        onnx.numpy_helper.from_array(np.full((3, 4), 0.5, np.float32), "scale")
    )
    expanded = onnx_graph.expand_functions(original)
    assert expanded is not None
    assert not {"Loop", "Shape", "Size"} & set(ops(expanded.model))
    same_function(original, expanded.model, [2, 3, 4])


def test_a_model_without_functions_has_no_expansion() -> None:
    assert onnx_graph.expand_functions(single("Relu", [4], 17)) is None


def test_validate_accepts_a_node_mnn_lacks_when_its_body_converts(tmp_path: Path) -> None:
    src = tmp_path / "model.onnx"
    onnx.save(single("Swish", [1, 8], 24), str(src))
    onnx_graph.check(src, mnn_rules(), tool="MNN")  # MNN lists no Swish; its body is Mul, Sigmoid


def test_a_second_failure_keeps_the_first_reason_and_adds_its_own() -> None:
    target = Target(runtime="mnn", variant="fp32")
    first = TargetOutcome(
        target=target,
        status=Status.REFUSED,
        error=UnsupportedModelError("MNN cannot take model.onnx: Swish", hint="drop it"),
    )
    second = TargetOutcome(
        target=target,
        status=Status.PARITY_FAILED,
        error=ParityError("mnn-fp32: output 0 (y): max abs error 1\nmore lines"),
        expanded=True,
    )
    merged = with_second_reason(first, second)
    assert isinstance(merged.error, UnsupportedModelError)
    assert merged.error.message == (
        "MNN cannot take model.onnx: Swish\n"
        "(with its ONNX functions expanded: mnn-fp32: output 0 (y): max abs error 1)"
    )
    assert merged.error.hint == "drop it"
    assert with_second_reason(first, replace(second, error=ParityError(""))) is first
