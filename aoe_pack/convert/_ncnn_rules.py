"""What pnnx and ncnn make of ONNX nodes: rewrites that help, refusals that name the reason.

Measured with pnnx 20261020 and ncnn 1.0.20261020 on ONNX's node tests and
Keras models through tf2onnx. A rewrite turns a node into the equivalent form
pnnx translates; a refusal is a node pnnx leaves untranslated (ncnn then
refuses the model) or translates into wrong numbers.
"""

from __future__ import annotations

from typing import Any

from aoe_pack.convert.onnx_graph import Graph, Rule


def _pad_mode(g: Graph, node: Any) -> str | None:
    # Without the optional "mode" (ONNX default "constant"; tf2onnx omits it for
    # Keras's ZeroPadding2D) pnnx keeps a raw Pad that ncnn cannot load.
    if node.op_type == "Pad" and not g.has(node, "mode"):
        g.set_attr(node, "mode", "constant")
    return None


def _gather_axis(g: Graph, node: Any) -> str | None:
    # pnnx's Embed pattern matches a Gather without "axis"; an explicit axis=0
    # (tf2onnx and onnx.helper write it) leaves a Gather ncnn does not have.
    if node.op_type == "Gather" and g.has(node, "axis") and g.attr(node, "axis") == 0:
        g.drop_attr(node, "axis")
    return None


def _layer_norm(g: Graph, node: Any) -> str | None:
    if node.op_type != "LayerNormalization":
        return None
    rank = g.rank(node.input[0])
    axis = g.attr(node, "axis", -1)
    if rank is not None and rank >= 3 and axis % rank == 1:
        return "LayerNormalization over every non-batch axis: ncnn computes it wrongly"
    if len(node.input) < 3 or not node.input[2]:  # no bias: pnnx keeps F.layer_norm
        import numpy as np

        scale = g.constant(node.input[1])
        if scale is None:
            return "LayerNormalization whose scale is not a constant"
        name = f"{node.input[1]}__zero_bias"
        g.add_initializer(name, np.zeros_like(scale))
        node.input.extend([""] * (3 - len(node.input)))
        node.input[2] = name
    return None


def _gemm_bias(g: Graph, node: Any) -> str | None:
    if node.op_type != "Gemm" or len(node.input) < 3 or not node.input[2]:
        return None
    import numpy as np

    c = g.constant(node.input[2])
    if c is None:
        return "Gemm whose bias C is computed, not a constant"
    if c.ndim == 2 and c.shape[0] > 1:
        return "Gemm with a full bias matrix C: pnnx has no ncnn form for it"
    out = g.shape(node.output[0])
    n = out[-1] if out else None
    if c.ndim == 0 or c.size == 1:
        if not n:
            return "Gemm with a scalar bias and an unknown output width"
        c = np.full((n,), c.reshape(()).item(), dtype=c.dtype)
    else:
        c = c.reshape(-1)
    name = f"{node.input[2]}__vector"
    g.add_initializer(name, c)
    node.input[2] = name
    return None


def _tile(g: Graph, node: Any) -> str | None:
    if node.op_type != "Tile":
        return None
    import numpy as np

    repeats = g.constant(node.input[1])
    shape = g.shape(node.input[0])
    if repeats is None or shape is None:
        return "Tile with repeats or a shape known only at run time"
    dims = [d for d in shape if d is not None]
    if len(dims) != len(shape):
        return "Tile of a tensor whose shape is known only at run time"
    if any(r != 1 and d != 1 for r, d in zip(repeats, dims, strict=True)):
        return "Tile that copies data along a dimension larger than 1 (ncnn has no tile)"
    # Repeating size-1 dimensions is broadcasting: Expand, which pnnx translates.
    target = np.array([d * int(r) for d, r in zip(dims, repeats, strict=True)], np.int64)
    name = f"{node.input[1]}__expand_shape"
    g.add_initializer(name, target)
    node.op_type = "Expand"
    node.input[1] = name
    return None


def _first(checks: list[tuple[bool, str]]) -> str | None:
    """The reason of the first check that holds."""
    return next((reason for holds, reason in checks if holds), None)


def _resize(g: Graph, node: Any) -> str | None:
    if node.op_type != "Resize":
        return None
    mode = g.attr(node, "mode", "nearest")
    transform = g.attr(node, "coordinate_transformation_mode", "half_pixel")
    scales = g.constant(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    nhwc = g.rank(node.input[0]) == 4 and scales is not None and scales.size == 4
    return _first(
        [
            (
                mode == "nearest",
                "nearest Resize: pnnx leaves F.interpolate, which ncnn cannot load",
            ),
            (mode == "cubic", "cubic Resize: pnnx crashes on it"),
            (
                transform == "asymmetric",
                "linear Resize with asymmetric coordinates: ncnn computes it wrongly",
            ),
            (
                nhwc and scales is not None and scales[1] != 1,
                "Resize of axis 1 of a 4-D tensor (an NHWC image): ncnn resizes the last two axes",
            ),
        ]
    )


def _squeezed_on_axis_1(g: Graph, name: str) -> bool:
    """Every use of ``name`` is a Squeeze of axis 1 (how pnnx recognises an RNN's output)."""
    for user in g.consumers.get(name, []):
        axes = g.attr(user, "axes")
        if axes is None and len(user.input) > 1:
            axes = g.constant(user.input[1])
        if user.op_type != "Squeeze" or axes is None or list(axes) != [1]:
            return False
    return True


def _recurrent(g: Graph, node: Any) -> str | None:
    if node.op_type in ("Loop", "Scan", "If"):
        return f"control flow ({node.op_type}): ncnn has no such layer"
    if node.op_type not in ("LSTM", "GRU", "RNN"):
        return None
    op = node.op_type
    return _first(
        [
            (
                op == "RNN" and g.attr(node, "direction", "forward") == "bidirectional",
                "bidirectional RNN: ncnn cannot load what pnnx makes of it",
            ),
            (
                op == "GRU" and g.attr(node, "linear_before_reset", 0) == 0,
                "GRU with linear_before_reset=0 (Keras reset_after=False): ncnn gets it wrong",
            ),
            (
                any(bool(name and g.consumers.get(name)) for name in node.output[1:]),
                f"{op} whose final states (Y_h/Y_c) are used: pnnx keeps a raw op",
            ),
            (
                not _squeezed_on_axis_1(g, node.output[0]),
                f"{op} whose output is not squeezed on its direction axis: pnnx keeps a raw op",
            ),
        ]
    )


_REFUSED_OPS = {
    "LpNormalization": "LpNormalization: pnnx keeps a raw op (the ReduceL2/Div form works)",
    "DepthToSpace": "DepthToSpace: pnnx has no ncnn form for it",
    "Where": "Where: ncnn has no select layer",
    "Greater": "comparison (Greater): ncnn has no boolean tensors",
    "Less": "comparison (Less): ncnn has no boolean tensors",
    "Equal": "comparison (Equal): ncnn has no boolean tensors",
}


_REDUCE_AXES_INPUT = (
    "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
    "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare", "ReduceSum",
)  # fmt: skip

_PARAMETER_INPUTS: dict[str, dict[int, str]] = {
    "Reshape": {1: "shape"},
    "Expand": {1: "shape"},
    "Tile": {1: "repeats"},
    "Slice": {1: "starts", 2: "ends", 3: "axes", 4: "steps"},
    "Squeeze": {1: "axes"},
    "Unsqueeze": {1: "axes"},
    "TopK": {1: "K"},
    "Pad": {1: "pads", 2: "constant_value", 3: "axes"},
    "Resize": {1: "roi", 2: "scales", 3: "sizes"},
    "Upsample": {1: "scales"},
    "ConstantOfShape": {0: "shape"},
    "Range": {0: "start", 1: "limit", 2: "delta"},
    "OneHot": {1: "depth"},
    "Split": {1: "split"},
    "CenterCropPad": {1: "shape"},
    "Trilu": {1: "k"},
    "Clip": {1: "min", 2: "max"},
    **{op: {1: "axes"} for op in _REDUCE_AXES_INPUT},
}
"""Inputs that ncnn takes as a layer's parameters, fixed when the model loads."""


def _parameter_from_input(g: Graph, node: Any) -> str | None:
    # ncnn layers hold shapes, axes and bounds as parameters written in the
    # .param file: a model input cannot set them at run time. pnnx then traces
    # on uninitialised values (and crashes) or keeps a raw op ncnn refuses.
    slots = _PARAMETER_INPUTS.get(node.op_type)
    if not slots:
        return None
    initializers = {i.name for i in g.model.graph.initializer}
    inputs = {i.name for i in g.model.graph.input} - initializers
    for index, slot in slots.items():
        if index < len(node.input) and node.input[index] in inputs:
            return (
                f"its {slot} is the model input {node.input[index]!r}, set at run time: ncnn "
                "fixes shapes and layer parameters when it loads the model (make it a constant)"
            )
    return None


def _asymmetric_pool(g: Graph, node: Any) -> bool:
    pads = g.attr(node, "pads")
    half = len(pads) // 2 if pads else 0
    asymmetric = pads is not None and list(pads[:half]) != list(pads[half:])
    return asymmetric or g.attr(node, "auto_pad", "NOTSET") in ("SAME_UPPER", "SAME_LOWER")


def _unsupported(g: Graph, node: Any) -> str | None:
    op = node.op_type
    if op in _REFUSED_OPS:
        return _REFUSED_OPS[op]
    axes = g.attr(node, "axes")
    return _first(
        [
            (
                op == "ReduceMax" and len(node.input) > 1 and bool(node.input[1]),
                "ReduceMax with its axes as an input: pnnx keeps a raw op",
            ),
            (
                op == "ReduceMax" and axes is not None and len(axes) > 1,
                "ReduceMax over several axes: pnnx keeps a raw op",
            ),
            (
                op == "AveragePool" and _asymmetric_pool(g, node),
                "AveragePool with asymmetric padding: pnnx keeps a raw op",
            ),
            (
                op == "Cast"
                and any(p.op_type == "ArgMax" and node.input[0] in p.output for p in g.nodes),
                "Cast of an ArgMax result: pnnx keeps a raw op",
            ),
        ]
    )


RULES: tuple[Rule, ...] = (
    _pad_mode,
    _gather_axis,
    _layer_norm,
    _gemm_bias,
    _tile,
    _resize,
    _recurrent,
    _parameter_from_input,
    _unsupported,
)
"""Applied in order to every node before pnnx runs; the first refusal stops a node."""
