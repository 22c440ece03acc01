"""What tf2onnx needs to export Keras 3 models it would otherwise refuse.

Both fixes were found on ``keras.applications.ConvNeXtTiny`` (the coverage
zoo's ``app_convnexttiny``), and apply to any model with the same layers:

* Keras 3's TensorFlow backend runs a grouped convolution (``Conv2D(groups=n)``,
  ConvNeXt's depthwise blocks) through a ``tf.function(jit_compile=True)``,
  which TensorFlow marks ``_noinline``. Grappler then leaves it a
  ``StatefulPartitionedCall`` that ONNX has no op for. Dropping the XLA marks
  and running tf2onnx's own grappler pass again inlines it: the body is a
  plain ``Conv2D`` that tf2onnx converts like any other.
* ``keras.activations.gelu(approximate=False)`` traces to ``Erfc``, which
  tf2onnx has no handler for; ``erfc(x) = 1 - erf(x)`` in ONNX's own ops.

A third is not about refusals but reproducibility: tf2onnx numbers the names
it makes (``const_fold_opt__29``) from a counter whose calls come in an order
that depends on Python's string hashing, so two processes gave two names for
the same tensor. :func:`canonical_generated_names` renumbers them in graph
order.

tf2onnx's objects are untyped, hence the ``Any``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

_XLA_MARKS = ("_noinline", "_XlaMustCompile")


def inline_compiled_functions(
    tf: Any, tf2onnx: Any, graph_def: Any, inputs: Sequence[str], outputs: Sequence[str]
) -> Any:
    """``graph_def`` with the functions XLA kept out of line inlined (unchanged if none)."""
    marked = [f for f in graph_def.library.function if any(k in f.attr for k in _XLA_MARKS)]
    if not marked:
        return graph_def
    for function in marked:
        for key in _XLA_MARKS:
            if key in function.attr:
                del function.attr[key]
    for node in graph_def.node:
        if "_XlaMustCompile" in node.attr:
            del node.attr["_XlaMustCompile"]
    with tf.Graph().as_default():  # grappler exports a meta graph: not in eager mode
        return tf2onnx.tf_loader.tf_optimize_grappler(list(inputs), list(outputs), graph_def)


def _erfc(ctx: Any, node: Any, name: str, args: Any) -> None:
    """TensorFlow's ``Erfc`` as ONNX ``Sub(1, Erf(x))``."""
    import numpy as np
    from tf2onnx import utils

    dtype = ctx.get_dtype(node.output[0])
    shape = ctx.get_shape(node.output[0])
    node.type = "Erf"
    one = ctx.make_const(
        utils.make_name(f"{name}_one"), np.array(1, dtype=utils.map_onnx_to_numpy_type(dtype))
    )
    minus = ctx.insert_new_node_on_output(
        "Sub",
        node.output[0],
        name=utils.make_name(f"{name}_one_minus"),
        inputs=[one.output[0], node.output[0]],
    )
    ctx.set_dtype(minus.output[0], dtype)
    ctx.set_shape(minus.output[0], shape)


CUSTOM_OP_HANDLERS: dict[str, tuple[Any, list[Any]]] = {"Erfc": (_erfc, [])}
"""For ``tf2onnx.convert.from_graph_def(custom_op_handlers=...)``."""


_GENERATED = re.compile(r"^(?P<base>.*?)(?:__\d+)+(?P<port>:\d+)?$")
"""What tf2onnx's ``utils.make_name`` appends, ``__<counter>`` once or more, and a port."""


def _graphs(graph: Any) -> Iterator[Any]:
    """``graph`` and its subgraphs (If, Loop, Scan bodies), depth first."""
    yield graph
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("g"):
                yield from _graphs(attribute.g)
            for sub in attribute.graphs:
                yield from _graphs(sub)


def canonical_generated_names(model: Any) -> None:
    """Renumber, in place, the names tf2onnx generated, in order of first appearance.

    A node ``Sub__45`` and its output ``Sub__45:0`` get the same new number.
    The model's own inputs and outputs keep their names (they are its
    interface); so does every name without tf2onnx's ``__<n>`` suffix. A
    subgraph's inputs and outputs (a Loop body's) are renamed with the nodes
    that produce and read them.
    """
    graphs = list(_graphs(model.graph))
    interface = {v.name for v in (*model.graph.input, *model.graph.output)}
    subgraphs = graphs[1:]
    seen: dict[str, None] = {}
    for graph in graphs:
        names = [t.name for t in graph.initializer] + [v.name for v in graph.value_info]
        if graph is not model.graph:
            names += [v.name for v in (*graph.input, *graph.output)]
        for node in graph.node:
            names += [node.name, *node.input, *node.output]
        seen.update((name, None) for name in names if name)
    numbers: dict[str, int] = {}  # a generated name without its port -> its new number
    renamed: dict[str, str] = {}
    for name in seen:
        match = _GENERATED.match(name)
        if name in interface or match is None:
            continue
        stem = name.removesuffix(match["port"] or "")
        number = numbers.setdefault(stem, len(numbers) + 1)
        base, port = match["base"], match["port"] or ""
        new = f"{base}__{number}{port}"
        while new != name and new in seen:  # a name the model already has: step aside
            base += "_"
            new = f"{base}__{number}{port}"
        renamed[name] = new
    if not renamed:
        return
    for graph in subgraphs:
        for value in (*graph.input, *graph.output):
            value.name = renamed.get(value.name, value.name)
    for graph in graphs:
        for tensor in (*graph.initializer, *graph.value_info):
            tensor.name = renamed.get(tensor.name, tensor.name)
        for node in graph.node:
            node.name = renamed.get(node.name, node.name)
            node.input[:] = [renamed.get(i, i) for i in node.input]
            node.output[:] = [renamed.get(o, o) for o in node.output]
