"""Read and rewrite ONNX graphs, for the converters that need their input staged.

MNN and pnnx read some ONNX models wrongly unless an attribute the ONNX spec
leaves optional is spelled out, and cannot handle others at all. Their
converters *stage* a copy of the model (:func:`stage`) through a list of
:class:`Rule`: each rule looks at one node and either rewrites it into the
equivalent form the tool reads correctly, or refuses the model with a reason
naming the node. Refusals are also what ``validate`` reports per target
before any conversion runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aoe_pack.errors import ConversionError, UnsupportedModelError


@dataclass(frozen=True)
class Refusal:
    """Why a converter cannot take one node of a model."""

    node: str
    op: str
    reason: str

    def __str__(self) -> str:
        return f"{self.op} node {self.node!r}: {self.reason}"


class Graph:
    """An ONNX model with the lookups rules need: attributes, static shapes, constants."""

    def __init__(self, model: Any) -> None:
        from aoe_pack.convert.frameworks import import_onnx

        self.onnx = import_onnx()
        self.model = model
        try:
            inferred = self.onnx.shape_inference.infer_shapes(model)
        except Exception:  # noqa: BLE001 - shapes only help; rules then see unknown ones
            inferred = model
        self._shapes: dict[str, tuple[int | None, ...]] = {}
        self._dtypes: dict[str, int] = {}
        graph = inferred.graph
        for info in (*graph.input, *graph.value_info, *graph.output):
            t = info.type.tensor_type
            self._dtypes[info.name] = t.elem_type
            if t.HasField("shape"):
                self._shapes[info.name] = tuple(
                    d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim
                )
        self._constants: dict[str, Any] = {}
        for init in model.graph.initializer:
            self._constants[init.name] = init
            self._shapes[init.name] = tuple(init.dims)
            self._dtypes[init.name] = init.data_type
        for node in model.graph.node:
            if node.op_type == "Constant" and node.output:
                value = self.attr(node, "value")
                if value is not None:
                    self._constants[node.output[0]] = value
        self.consumers: dict[str, list[Any]] = {}
        for node in model.graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)

    @property
    def nodes(self) -> Sequence[Any]:
        return list(self.model.graph.node)

    def attr(self, node: Any, name: str, default: Any = None) -> Any:
        for a in node.attribute:
            if a.name == name:
                value = self.onnx.helper.get_attribute_value(a)
                return value.decode() if isinstance(value, bytes) else value
        return default

    def has(self, node: Any, name: str) -> bool:
        return any(a.name == name for a in node.attribute)

    def set_attr(self, node: Any, name: str, value: Any) -> None:
        self.drop_attr(node, name)
        node.attribute.append(self.onnx.helper.make_attribute(name, value))

    def drop_attr(self, node: Any, name: str) -> None:
        keep = [a for a in node.attribute if a.name != name]
        del node.attribute[:]
        node.attribute.extend(keep)

    def shape(self, name: str) -> tuple[int | None, ...] | None:
        """The static shape of a tensor (None dims are unknown; None if the rank is)."""
        return self._shapes.get(name)

    def rank(self, name: str) -> int | None:
        shape = self.shape(name)
        return None if shape is None else len(shape)

    def dtype(self, name: str) -> str | None:
        """The numpy name of a tensor's element type (None when unknown)."""
        code = self._dtypes.get(name)
        if not code:
            return None
        try:
            return str(self.onnx.helper.tensor_dtype_to_np_dtype(code).name)
        except (KeyError, TypeError, ValueError):
            return None

    def is_integer(self, name: str) -> bool:
        dtype = self.dtype(name)
        return dtype is not None and dtype.startswith(("int", "uint"))

    def constant(self, name: str) -> Any:
        """The value of an initializer or Constant output as a numpy array, else None."""
        tensor = self._constants.get(name)
        return None if tensor is None else self.onnx.numpy_helper.to_array(tensor)

    def set_constant(self, name: str, array: Any) -> None:
        """Replace an initializer's value (the tensor keeps its name)."""
        tensor = self.onnx.numpy_helper.from_array(array, name=name)
        for i, init in enumerate(self.model.graph.initializer):
            if init.name == name:
                self.model.graph.initializer[i].CopyFrom(tensor)
                self._constants[name] = tensor
                self._shapes[name] = tuple(tensor.dims)
                return
        raise KeyError(name)

    def add_initializer(self, name: str, array: Any) -> None:
        tensor = self.onnx.numpy_helper.from_array(array, name=name)
        self.model.graph.initializer.append(tensor)
        self._constants[name] = tensor
        self._shapes[name] = tuple(tensor.dims)


Rule = Callable[[Graph, Any], str | None]
"""Look at one node: rewrite it in place and return None, or return why it is refused."""

Pass = Callable[[Graph], None]
"""Rewrite the whole graph (add or reorder nodes), after the rules have run."""


def refusals(graph: Graph, rules: Sequence[Rule]) -> Iterator[Refusal]:
    """Apply every rule to every node: rewrites happen, refusals are yielded."""
    for node in graph.nodes:
        for rule in rules:
            reason = rule(graph, node)
            if reason is not None:
                yield Refusal(node=node.name or node.output[0], op=node.op_type, reason=reason)
                break


def _load(src: Path) -> Graph:
    from aoe_pack.convert.frameworks import import_onnx

    try:
        model = import_onnx().load(str(src))
    except Exception as e:
        raise ConversionError(
            f"{src.name} is not a readable ONNX model ({type(e).__name__}: {e})"
        ) from e
    return Graph(model)


def stage(
    src: Path, dst: Path, rules: Sequence[Rule], *, tool: str, passes: Sequence[Pass] = ()
) -> None:
    """Write ``src`` to ``dst`` rewritten by ``rules`` then ``passes``.

    Raises UnsupportedModelError when a rule refuses a node.
    """
    graph = _load(src)
    found = list(refusals(graph, rules))
    if found:
        raise refusal_error(found, tool=tool, model=src.name)
    for rewrite in passes:
        rewrite(graph)
    graph.onnx.save(graph.model, str(dst))


def check(src: Path, rules: Sequence[Rule], *, tool: str) -> None:
    """Raise UnsupportedModelError when ``rules`` refuse a node of ``src`` (nothing written).

    A model whose refused nodes go away once its ONNX functions are expanded
    (:func:`expand_functions`) is accepted: the build expands them for a target
    that refuses the model as it is.
    """
    graph = _load(src)
    found = list(refusals(graph, rules))
    if not found:
        return
    expanded = expand_functions(graph.model)
    if expanded is None or list(refusals(Graph(expanded.model), rules)):
        raise refusal_error(found, tool=tool, model=src.name)


_SCALAR_CONSTANTS = {
    "value_float": ("float32", False),
    "value_floats": ("float32", True),
    "value_int": ("int64", False),
    "value_ints": ("int64", True),
}


def _constant_as_tensor(onnx: Any, node: Any) -> None:
    """Rewrite a Constant's ``value_float(s)``/``value_int(s)`` as the ``value`` tensor it means.

    Function bodies write their constants that way; onnx2tf and others read
    only ``value``.
    """
    import numpy as np

    for attribute in node.attribute:
        spec = _SCALAR_CONSTANTS.get(attribute.name)
        if spec is None:
            continue
        dtype, is_list = spec
        raw = onnx.helper.get_attribute_value(attribute)
        array = np.asarray(list(raw) if is_list else raw, dtype=dtype)
        tensor = onnx.numpy_helper.from_array(array, name=node.output[0])
        del node.attribute[:]
        node.attribute.append(onnx.helper.make_attribute("value", tensor))
        return


def _for_inliner(onnx: Any, model: Any) -> Any:
    """A copy of ``model`` with what ONNX's inliner needs spelled out.

    A function body refers to its node's attributes by name, and the inliner
    does not fill in the schema's defaults for those the node leaves out; it
    also needs the type of every value a body reads, initializers included.
    """
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    typed = {v.name for v in (*copy.graph.input, *copy.graph.value_info, *copy.graph.output)}
    for init in copy.graph.initializer:
        if init.name not in typed:
            info = onnx.helper.make_tensor_value_info(init.name, init.data_type, list(init.dims))
            copy.graph.value_info.append(info)
    opset = next((o.version for o in copy.opset_import if o.domain in ("", "ai.onnx")), None)
    for node in copy.graph.node:
        if node.domain not in ("", "ai.onnx") or opset is None:
            continue
        try:
            schema = onnx.defs.get_schema(node.op_type, opset, "")
        except onnx.defs.SchemaError:
            continue
        present = {a.name for a in node.attribute}
        for name, attribute in schema.attributes.items():
            default = attribute.default_value
            if name in present or default.type == onnx.AttributeProto.UNDEFINED:
                continue
            filled = onnx.AttributeProto()
            filled.CopyFrom(default)
            filled.name = name
            node.attribute.append(filled)
    return copy


@dataclass(frozen=True)
class Expanded:
    """A model with its ONNX functions expanded, and the tools that did it (name -> version)."""

    model: Any
    tools: dict[str, str]


def expand_functions(model: Any) -> Expanded | None:
    """``model`` with every op that ONNX defines as a function replaced by its body.

    The ONNX spec defines many ops as functions of simpler ones (Gelu, Mish,
    Swish, Softsign, LayerNormalization, GroupNormalization, Attention...);
    ONNX's inliner writes each call out as the spec's own body. A runtime that
    lacks such an op may run its body. The result then goes through onnxslim
    (:func:`_slimmed`). None when the model calls no function or the inliner
    cannot expand one validly.
    """
    from importlib.metadata import version

    from aoe_pack.convert.frameworks import import_onnx

    onnx = import_onnx()
    from onnx import inliner

    try:
        expanded = inliner.inline_selected_functions(
            _for_inliner(onnx, model), [], exclude=True, inline_schema_functions=True
        )
        if [n.op_type for n in expanded.graph.node] == [n.op_type for n in model.graph.node]:
            return None
        for node in expanded.graph.node:
            if node.op_type == "Constant":
                _constant_as_tensor(onnx, node)
        initializers = {i.name for i in expanded.graph.initializer}
        kept = [v for v in expanded.graph.value_info if v.name not in initializers]
        del expanded.graph.value_info[:]
        expanded.graph.value_info.extend(kept)
        onnx.checker.check_model(expanded, full_check=True)
    except Exception:  # noqa: BLE001 - an inliner assertion or an invalid body: nothing to offer
        return None
    tools = {"onnx-inliner": version("onnx")}
    slimmed = _slimmed(onnx, expanded)
    if slimmed is None:
        return Expanded(model=expanded, tools=tools)
    return Expanded(model=slimmed, tools={**tools, "onnxslim": version("onnxslim")})


def _slimmed(onnx: Any, model: Any) -> Any | None:
    """``model`` through onnxslim; None if onnxslim fails on it.

    A function body is written for any shape, so it computes axes and sizes
    from ``Shape`` at run time (RMSNormalization even loops over the rank);
    with the model's static shapes onnxslim folds these to constants, which
    converters take. onnxslim also simplifies the rest of the graph (fuses
    Conv and BatchNormalization, drops dead and duplicate nodes), as the
    onnx-slim target does.
    """
    try:
        import onnxslim

        slimmed = onnxslim.slim(model)
        onnx.checker.check_model(slimmed, full_check=True)
    except Exception:  # noqa: BLE001 - a help only: without it the expanded body stands
        return None
    return slimmed


def refusal_error(found: Sequence[Refusal], *, tool: str, model: str) -> UnsupportedModelError:
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    return UnsupportedModelError(
        f"{tool} cannot take {model}: {found[0]}{more}",
        hint=f"this runtime cannot run the model as it is; drop the {tool} target, or change "
        "the model where it says",
    )
