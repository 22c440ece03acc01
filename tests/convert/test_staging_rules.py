"""The ONNX staging rules of MNN and ncnn, on graphs built node by node.

Each rewrite is checked on the staged model's attributes and initializers,
each refusal on its exact reason; none of this runs a runtime. Whether the
rewrites make the runtimes right is what the conversion tests and the
coverage benchmark measure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from aoe_pack.convert import onnx_graph
from aoe_pack.convert._mnn_rules import PASSES as MNN_PASSES
from aoe_pack.convert._ncnn_rules import RULES as NCNN
from aoe_pack.convert.mnn import _rules as mnn_rules
from aoe_pack.errors import UnsupportedModelError

F = TensorProto.FLOAT


def model(
    tmp_path: Path,
    nodes: list[Any],
    inputs: list[Any],
    outputs: list[Any],
    initializers: dict[str, Any] | None = None,
    opset: int = 17,
) -> Path:
    graph = helper.make_graph(
        nodes,
        "g",
        inputs,
        outputs,
        [numpy_helper.from_array(np.asarray(v), name=k) for k, v in (initializers or {}).items()],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    path = tmp_path / "model.onnx"
    onnx.save(m, str(path))
    return path


def tensor(name: str, shape: list[Any], dtype: int = F) -> Any:
    return helper.make_tensor_value_info(name, dtype, shape)


def staged(src: Path, rules: Any, tool: str) -> onnx.ModelProto:
    dst = src.with_name("staged.onnx")
    onnx_graph.stage(src, dst, rules, tool=tool)
    return onnx.load(str(dst))


def staged_for_mnn(src: Path) -> onnx.ModelProto:
    """``src`` as MNN's converter gets it: the rules, then the whole-graph passes."""
    dst = src.with_name("staged.onnx")
    onnx_graph.stage(src, dst, mnn_rules(), tool="MNN", passes=MNN_PASSES)
    return onnx.load(str(dst))


def attrs(node: Any) -> dict[str, Any]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def refused(src: Path, rules: Any, tool: str) -> str:
    with pytest.raises(UnsupportedModelError) as caught:
        onnx_graph.check(src, rules, tool=tool)
    return caught.value.message


# --- MNN ----------------------------------------------------------------------------


def test_mnn_gets_the_pooling_strides_onnx_leaves_implicit(tmp_path: Path) -> None:
    src = model(
        tmp_path,
        [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2])],
        [tensor("x", [1, 3, 8, 8])],
        [tensor("y", [1, 3, 7, 7])],
    )
    (node,) = staged(src, mnn_rules(), "MNN").graph.node
    assert attrs(node)["strides"] == [1, 1]  # without them MNN divides by zero (SIGFPE)


def test_mnn_gets_explicit_pads_for_same_lower(tmp_path: Path) -> None:
    pool = helper.make_node(
        "AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_LOWER"
    )
    src = model(tmp_path, [pool], [tensor("x", [1, 1, 6, 6])], [tensor("y", [1, 1, 3, 3])])
    (node,) = staged(src, mnn_rules(), "MNN").graph.node
    # total padding (3-1)*2 + 3 - 6 = 1 per axis; SAME_LOWER puts the odd one first
    assert "auto_pad" not in attrs(node)
    assert attrs(node)["pads"] == [1, 1, 0, 0]


def test_mnn_gets_onnxs_default_batch_norm_epsilon(tmp_path: Path) -> None:
    src = model(
        tmp_path,
        [helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])],
        [tensor("x", [1, 2, 4, 4])],
        [tensor("y", [1, 2, 4, 4])],
        {k: np.ones(2, np.float32) for k in "sbmv"},
    )
    (node,) = staged(src, mnn_rules(), "MNN").graph.node
    assert attrs(node)["epsilon"] == pytest.approx(1e-5)  # MNN read a missing one as 0


def test_mnn_refuses_a_resize_that_would_need_a_6d_interp(tmp_path: Path) -> None:
    """MNN printed 'don't support >= 6 dimension Interp' to stdout and computed nothing."""
    src = model(
        tmp_path,
        [helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="nearest")],
        [tensor("x", [1, 2, 4, 4])],
        [tensor("y", [2, 2, 4, 4])],
        {"scales": np.array([2, 1, 1, 1], np.float32)},
    )
    assert refused(src, mnn_rules(), "MNN") == (
        "MNN cannot take model.onnx: Resize node 'y': Resize of axis 0 of a 4-D tensor: "
        "MNN has no 6-D Interp"
    )


def test_mnn_refuses_a_float_one_hot_depth(tmp_path: Path) -> None:
    src = model(
        tmp_path,
        [helper.make_node("OneHot", ["i", "depth", "values"], ["y"])],
        [tensor("i", [3], TensorProto.INT64), tensor("depth", []), tensor("values", [2])],
        [tensor("y", [3, 10])],
    )
    assert "OneHot whose depth is not a constant integer" in refused(src, mnn_rules(), "MNN")


def test_mnn_refuses_an_op_its_converter_does_not_list(tmp_path: Path) -> None:
    src = model(
        tmp_path,
        [helper.make_node("Hardmax", ["x"], ["y"])],
        [tensor("x", [1, 4])],
        [tensor("y", [1, 4])],
    )
    assert refused(src, mnn_rules(), "MNN") == (
        "MNN cannot take model.onnx: Hardmax node 'y': MNN's converter has no ONNX Hardmax "
        "(it lists the ops it converts)"
    )


# --- ncnn ---------------------------------------------------------------------------


def test_ncnn_gets_gather_without_its_default_axis(tmp_path: Path) -> None:
    src = model(
        tmp_path,
        [helper.make_node("Gather", ["table", "ids"], ["y"], axis=0)],
        [tensor("ids", [1, 5], TensorProto.INT64)],
        [tensor("y", [1, 5, 8])],
        {"table": np.zeros((100, 8), np.float32)},
    )
    (node,) = staged(src, NCNN, "ncnn").graph.node
    assert "axis" not in attrs(node)  # pnnx's Embed pattern matches only then


def test_ncnn_gets_a_zero_bias_for_layer_norm(tmp_path: Path) -> None:
    src = model(
        tmp_path,
        [helper.make_node("LayerNormalization", ["x", "scale"], ["y"], axis=-1)],
        [tensor("x", [1, 4, 6])],
        [tensor("y", [1, 4, 6])],
        {"scale": np.ones(6, np.float32)},
    )
    graph = staged(src, NCNN, "ncnn").graph
    (node,) = graph.node
    bias = {i.name: numpy_helper.to_array(i) for i in graph.initializer}[node.input[2]]
    np.testing.assert_array_equal(bias, np.zeros(6, np.float32))


def test_ncnn_gets_tile_of_size_one_axes_as_expand(tmp_path: Path) -> None:
    src = model(
        tmp_path,
        [helper.make_node("Tile", ["x", "repeats"], ["y"])],
        [tensor("x", [1, 1, 4])],
        [tensor("y", [1, 3, 4])],
        {"repeats": np.array([1, 3, 1], np.int64)},
    )
    graph = staged(src, NCNN, "ncnn").graph
    (node,) = graph.node
    assert node.op_type == "Expand"
    shape = {i.name: numpy_helper.to_array(i) for i in graph.initializer}[node.input[1]]
    assert shape.tolist() == [1, 3, 4]


@pytest.mark.parametrize(
    ("node", "reason"),
    [
        (
            helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="nearest"),
            "nearest Resize: pnnx leaves F.interpolate, which ncnn cannot load",
        ),
        (
            helper.make_node("LpNormalization", ["x"], ["y"]),
            "LpNormalization: pnnx keeps a raw op (the ReduceL2/Div form works)",
        ),
    ],
    ids=["nearest-resize", "lp-normalization"],
)
def test_ncnn_refuses_what_pnnx_cannot_express(node: Any, reason: str, tmp_path: Path) -> None:
    src = model(
        tmp_path,
        [node],
        [tensor("x", [1, 2, 4, 4])],
        [tensor("y", None)],
        {"scales": np.array([1, 1, 2, 2], np.float32)},
    )
    assert refused(src, NCNN, "ncnn").endswith(f"node 'y': {reason}")


def test_ncnn_refuses_a_shape_parameter_set_by_a_model_input(tmp_path: Path) -> None:
    src = model(
        tmp_path,
        [helper.make_node("Squeeze", ["x", "axes"], ["y"])],
        [tensor("x", [1, 3, 1, 5]), tensor("axes", [2], TensorProto.INT64)],
        [tensor("y", [3, 5])],
        opset=13,
    )
    assert refused(src, NCNN, "ncnn") == (
        "ncnn cannot take model.onnx: Squeeze node 'y': its axes is the model input 'axes', "
        "set at run time: ncnn fixes shapes and layer parameters when it loads the model "
        "(make it a constant)"
    )


def test_ncnn_takes_a_shape_parameter_that_is_a_constant(tmp_path: Path) -> None:
    src = model(
        tmp_path,
        [helper.make_node("Squeeze", ["x", "axes"], ["y"])],
        [tensor("x", [1, 3, 1, 5])],
        [tensor("y", [3, 5])],
        {"axes": np.array([0, 2], np.int64)},
        opset=13,
    )
    onnx_graph.check(src, NCNN, tool="ncnn")


def test_mnn_a_graph_output_read_by_other_nodes_gets_a_producer_of_its_own(
    tmp_path: Path,
) -> None:
    """MNN fused the Relu into the MatMul whose result is also an output (it came out activated)."""
    import onnxruntime as ort

    rng = np.random.default_rng(4)
    src = model(
        tmp_path,
        [
            helper.make_node("MatMul", ["x", "w1"], ["embedding"], name="embed"),
            helper.make_node("Relu", ["embedding"], ["hidden"]),
            helper.make_node("MatMul", ["hidden", "w2"], ["logits"], name="head"),
        ],
        [tensor("x", [1, 4])],
        [tensor("logits", [1, 3]), tensor("embedding", [1, 5])],
        {
            "w1": rng.normal(size=(4, 5)).astype("float32"),
            "w2": rng.normal(size=(5, 3)).astype("float32"),
        },
    )
    out = staged_for_mnn(src)
    onnx.checker.check_model(out, full_check=True)
    assert [(n.name, list(n.input), list(n.output)) for n in out.graph.node] == [
        ("embed", ["x", "w1"], ["embedding"]),
        ("embed__unfused_output", ["x", "w1"], ["embedding__for_consumers"]),
        ("", ["embedding__for_consumers"], ["hidden"]),
        ("head", ["hidden", "w2"], ["logits"]),
    ]
    x = rng.normal(size=(1, 4)).astype("float32")
    want = ort.InferenceSession(str(src)).run(None, {"x": x})
    got = ort.InferenceSession(out.SerializeToString()).run(None, {"x": x})
    for a, b in zip(want, got, strict=True):
        np.testing.assert_array_equal(a, b)


def test_mnn_an_output_nothing_else_reads_is_left_alone(tmp_path: Path) -> None:
    src = model(
        tmp_path,
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="only")],
        [tensor("x", [1, 2])],
        [tensor("y", [1, 2])],
        {"w": np.eye(2, dtype="float32")},
    )
    assert [n.name for n in staged_for_mnn(src).graph.node] == ["only"]
