"""What MNN's converter and runtime make of ONNX nodes: rewrites that help, refusals.

Measured with MNN 3.6.1 on ONNX's node tests: optional attributes MNN reads
wrongly when absent are spelled out with their ONNX defaults, and nodes that
crash MNN's runtime (SIGFPE, SIGSEGV, heap corruption) or come out wrong are
refused with the reason, before anything runs.
"""

from __future__ import annotations

import math
from typing import Any

from aoe_pack.convert.onnx_graph import Graph, Pass, Rule

_POOLS = ("MaxPool", "AveragePool", "LpPool")


def _pool(g: Graph, node: Any) -> str | None:
    if node.op_type not in _POOLS:
        return None
    kernel = list(g.attr(node, "kernel_shape", []))
    shape = g.shape(node.input[0])
    auto_pad = g.attr(node, "auto_pad", "NOTSET")
    dilations = list(g.attr(node, "dilations", [1] * len(kernel)))
    pads = list(g.attr(node, "pads", [0] * 2 * len(kernel)))
    refusal = next(
        (
            reason
            for holds, reason in (
                (len(kernel) >= 3, "3-D pooling crashes MNN's runtime (SIGSEGV)"),
                (
                    any(d != 1 for d in dilations),
                    "pooling with dilations: MNN gets the shape wrong",
                ),
                (
                    g.attr(node, "ceil_mode", 0) == 1 and any(pads),
                    "padded pooling with ceil_mode: MNN gets the shape wrong",
                ),
                (
                    node.op_type == "MaxPool"
                    and len(node.output) > 1
                    and bool(node.output[1])
                    and bool(g.consumers.get(node.output[1])),
                    "MaxPool's indices output: MNN computes it wrongly",
                ),
                (
                    node.op_type == "LpPool" and auto_pad != "NOTSET",
                    "LpPool with automatic padding: MNN computes it wrongly",
                ),
            )
            if holds
        ),
        None,
    )
    if refusal:
        return refusal
    # Without "strides" (default 1) MNN divides by zero: SIGFPE.
    strides = list(g.attr(node, "strides", [1] * len(kernel)))
    if not g.has(node, "strides"):
        g.set_attr(node, "strides", strides)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        # MNN mishandles SAME_LOWER and fails on SAME_UPPER without strides:
        # give it the explicit pads ONNX defines for them.
        if shape is None or any(d is None for d in shape[2:]):
            return "pooling with automatic padding on a size known only at run time"
        spatial = [int(d) for d in shape[2:] if d is not None]
        begins, ends = [], []
        for size, k, s in zip(spatial, kernel, strides, strict=True):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            small, large = total // 2, total - total // 2
            begin, end = (small, large) if auto_pad == "SAME_UPPER" else (large, small)
            begins.append(begin)
            ends.append(end)
        g.drop_attr(node, "auto_pad")
        g.set_attr(node, "pads", begins + ends)
    return None


def _batch_norm(g: Graph, node: Any) -> str | None:
    if node.op_type != "BatchNormalization":
        return None
    if g.attr(node, "training_mode", 0) == 1:
        return "BatchNormalization in training mode: MNN ignores the flag"
    if any(g.constant(name) is None for name in node.input[1:5]):
        # MNN folds the statistics into a scale at conversion: it crashes without them.
        return "BatchNormalization whose scale, bias, mean or variance is not a constant"
    if not g.has(node, "epsilon"):  # MNN reads a missing epsilon as 0, ONNX means 1e-5
        g.set_attr(node, "epsilon", 1e-5)
    return None


def _resize(g: Graph, node: Any) -> str | None:
    if node.op_type != "Resize":
        return None
    rank = g.rank(node.input[0])
    scales = g.constant(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if rank is None or scales is None or scales.size != rank:
        return None
    changed = [i for i, v in enumerate(scales) if v != 1]
    # MNN reshapes to rank + 2 - (first resized axis) dimensions, and has no 6-D Interp.
    if changed and rank + 2 - changed[0] >= 6:
        dims = rank + 2 - changed[0]
        return f"Resize of axis {changed[0]} of a {rank}-D tensor: MNN has no {dims}-D Interp"
    return None


def _arithmetic(g: Graph, node: Any) -> str | None:
    op = node.op_type
    if op in ("Add", "Sub", "Mul", "Div") and any(g.dtype(i) == "uint8" for i in node.input):
        return f"{op} on uint8 tensors crashes MNN's runtime (SIGSEGV)"
    if op == "Mod" and any(g.is_integer(i) for i in node.input):
        return "integer Mod crashes MNN's runtime (SIGFPE)"
    if op == "MatMul" and all(g.rank(i) == 1 for i in node.input):
        return "MatMul of two vectors corrupts MNN's heap (abort)"
    return None


def _one_hot(g: Graph, node: Any) -> str | None:
    if node.op_type != "OneHot":
        return None
    depth = g.constant(node.input[1])
    if depth is None or depth.dtype.kind not in "iu":
        # MNN reads the depth's bytes as an integer: 10.0 becomes about a billion,
        # and the allocation that follows gets the process killed.
        return "OneHot whose depth is not a constant integer: MNN misreads it (out of memory)"
    return None


def _reduce(g: Graph, node: Any) -> str | None:
    axes = node.input[1] if len(node.input) > 1 else ""
    if node.op_type.startswith("Reduce") and axes and g.constant(axes) is None:
        # MNN ignores a runtime axes input and reduces over every axis.
        return f"{node.op_type} whose axes are computed, not a constant: MNN reduces every axis"
    return None


RULES: tuple[Rule, ...] = (_pool, _batch_norm, _resize, _arithmetic, _one_hot, _reduce)
"""Applied in order to every node before MNN's converter runs."""

_FUSING = ("Conv", "ConvTranspose", "MatMul", "Gemm")


def keep_outputs_unfused(g: Graph) -> None:
    """Give a graph output that other nodes also read a producer of its own.

    MNN fuses an activation into the convolution or matrix product before it
    even when that product's result is itself a graph output, which then comes
    out activated: a model returning both an embedding and the logits computed
    from ``Relu(embedding)`` gave ``Relu(embedding)`` as its embedding (0.7
    relative error, the zoo's ``multi_io_seq_tab``). The nodes that read the
    output are switched to a copy of its producer, so the output stays
    unfused; the copy costs the producer's work once more.
    """
    outputs = {o.name for o in g.model.graph.output}
    nodes = list(g.model.graph.node)
    staged: list[Any] = []
    copies = 0
    for node in nodes:
        staged.append(node)
        shared = [o for o in node.output if o in outputs and g.consumers.get(o)]
        if node.op_type not in _FUSING or not shared:
            continue
        twin = type(node)()
        twin.CopyFrom(node)
        twin.name = f"{node.name or node.output[0]}__unfused_output"
        del twin.output[:]
        twin.output.extend(f"{o}__for_consumers" if o in shared else "" for o in node.output)
        staged.append(twin)
        renamed = dict(zip(node.output, twin.output, strict=True))
        for consumer in {id(c): c for o in shared for c in g.consumers[o]}.values():
            consumer.input[:] = [renamed.get(i) or i for i in consumer.input]
        copies += 1
    if copies:
        del g.model.graph.node[:]
        g.model.graph.node.extend(staged)


PASSES: tuple[Pass, ...] = (keep_outputs_unfused,)
"""Applied to the whole graph after the rules."""
