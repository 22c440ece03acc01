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
        from aoe_pack.convert.sources import import_onnx

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
    from aoe_pack.convert.sources import import_onnx

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
    """Raise UnsupportedModelError when ``rules`` refuse a node of ``src`` (nothing written)."""
    found = list(refusals(_load(src), rules))
    if found:
        raise refusal_error(found, tool=tool, model=src.name)


def refusal_error(found: Sequence[Refusal], *, tool: str, model: str) -> UnsupportedModelError:
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    return UnsupportedModelError(
        f"{tool} cannot take {model}: {found[0]}{more}",
        hint=f"this runtime cannot run the model as it is; drop the {tool} target, or change "
        "the model where it says",
    )
