"""tf2onnx's generated names, renumbered in graph order (they varied with string hashing)."""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

from aoe_pack.convert._tf2onnx_fixes import canonical_generated_names


def exported(fold: int, axes: int) -> onnx.ModelProto:
    """A model as tf2onnx names it, its counters at ``fold`` and ``axes``."""
    graph = helper.make_graph(
        [
            helper.make_node("Unsqueeze", ["x", f"const_fold_opt__{fold}"], ["u"], name="expand"),
            helper.make_node(
                "Squeeze", ["u", f"axes_const__14__{axes}"], ["y"], name=f"sq__{axes}"
            ),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        [
            helper.make_tensor(f"const_fold_opt__{fold}", TensorProto.INT64, [1], [0]),
            helper.make_tensor(f"axes_const__14__{axes}", TensorProto.INT64, [1], [0]),
        ],
    )
    return helper.make_model(graph)


def test_the_same_graph_counted_in_another_order_gets_the_same_names() -> None:
    first, second = exported(29, 30), exported(30, 29)
    canonical_generated_names(first)
    canonical_generated_names(second)
    assert first.SerializeToString() == second.SerializeToString()
    assert [t.name for t in first.graph.initializer] == ["const_fold_opt__1", "axes_const__2"]
    assert [n.name for n in first.graph.node] == ["expand", "sq__3"]
    onnx.checker.check_model(first, full_check=True)


def test_the_model_interface_and_plain_names_stay() -> None:
    model = exported(3, 4)
    model.graph.output[0].name = "y__7"
    model.graph.node[1].output[0] = "y__7"
    canonical_generated_names(model)
    assert [v.name for v in model.graph.input] == ["x"]
    assert [v.name for v in model.graph.output] == ["y__7"]
    assert model.graph.node[0].name == "expand"
    assert model.graph.node[1].output[:] == ["y__7"]


def test_a_node_and_its_ports_keep_one_number() -> None:
    model = exported(3, 4)
    model.graph.node[0].output[0] = "Sub__45:0"
    model.graph.node[1].input[0] = "Sub__45:0"
    model.graph.node[0].name = "Sub__45"
    canonical_generated_names(model)
    assert model.graph.node[0].name == "Sub__3"
    assert model.graph.node[0].output[:] == ["Sub__3:0"]
    assert model.graph.node[1].input[0] == "Sub__3:0"


def test_a_loop_body_keeps_its_inputs_outputs_and_outer_names_consistent() -> None:
    """A recurrent layer's while loop: its body's inputs and outputs are generated names."""
    i64, b = TensorProto.INT64, TensorProto.BOOL
    body = helper.make_graph(
        [
            helper.make_node("Less", ["i__12", "limit__8"], ["cond__13:0"], name="Less__13"),
            helper.make_node("Add", ["v__11", "v__11"], ["v_out__14"], name="Add__14"),
        ],
        "body",
        [
            helper.make_tensor_value_info("i__12", i64, []),
            helper.make_tensor_value_info("c__10", b, []),
            helper.make_tensor_value_info("v__11", TensorProto.FLOAT, [2]),
        ],
        [
            helper.make_tensor_value_info("cond__13:0", b, []),
            helper.make_tensor_value_info("v_out__14", TensorProto.FLOAT, [2]),
        ],
    )
    graph = helper.make_graph(
        [helper.make_node("Loop", ["trips__9", "", "x"], ["y"], name="while__15", body=body)],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        [
            helper.make_tensor("trips__9", i64, [], [3]),
            helper.make_tensor("limit__8", i64, [], [3]),  # read inside the body
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    canonical_generated_names(model)
    onnx.checker.check_model(model, full_check=True)
    renamed = model.graph.node[0].attribute[0].g
    assert [v.name for v in renamed.output] == [renamed.node[0].output[0], "v_out__8"]
    assert renamed.node[0].input[1] == model.graph.initializer[1].name
