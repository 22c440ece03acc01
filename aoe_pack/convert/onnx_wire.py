"""Read an ONNX model's inputs, outputs and opsets from its protobuf wire format.

``onnx.load`` materialises every weight (a 1 GiB initializer costs several GiB
of memory and seconds of copying) to answer questions that sit in a few
hundred bytes of the file. :func:`read_onnx_io` walks the wire format with
seeks instead: it enters only the messages that hold the answer and skips every
other field by its length, initializer bytes included, so it reads a few
kilobytes of any model in bounded memory and never imports onnx.

Field numbers are onnx.proto's (onnx 1.23, unchanged since IR version 3):

* ModelProto: ir_version 1, producer_name 2, producer_version 3, graph 7,
  opset_import 8 (OperatorSetIdProto: domain 1, version 2).
* GraphProto: initializer 5 (TensorProto: name 8, external_data 13 as
  StringStringEntryProto key 1 / value 2), input 11, output 12.
* ValueInfoProto: name 1, type 2. TypeProto: tensor_type 1 (elem_type 1,
  shape 2). TensorShapeProto: dim 1 (dim_value 1, dim_param 2).

The walker is stricter than protobuf where strictness costs no valid model:
a singular field written twice (protobuf would merge or keep the last) and the
deprecated group wire types are refused, so no two readers of the file can
disagree on what it declares. Counts and name lengths are capped
(:class:`WireLimits`); a length past the end of its message or the file is an
error, not a short read.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from aoe_pack.errors import ModelInvalidError

_VARINT, _I64, _LEN, _SGROUP, _EGROUP, _I32 = 0, 1, 2, 3, 4, 5
_MAX_VARINT_BYTES = 10

ONNX_DTYPES: dict[int, str] = {
    0: "undefined",
    1: "float32",
    2: "uint8",
    3: "int8",
    4: "uint16",
    5: "int16",
    6: "int32",
    7: "int64",
    8: "object",
    9: "bool",
    10: "float16",
    11: "float64",
    12: "uint32",
    13: "uint64",
    14: "complex64",
    15: "complex128",
    16: "bfloat16",
    17: "float8_e4m3fn",
    18: "float8_e4m3fnuz",
    19: "float8_e5m2",
    20: "float8_e5m2fnuz",
    21: "uint4",
    22: "int4",
    23: "float4_e2m1fn",
    24: "float8_e8m0fnu",
    25: "uint2",
    26: "int2",
}
"""TensorProto.DataType to the name the onnx-based check reports (numpy's dtype name)."""


@dataclass(frozen=True, kw_only=True)
class WireLimits:
    """Caps on what one model may declare; far above any real model's."""

    max_values: int = 1 << 16
    """Graph inputs plus outputs."""
    max_initializers: int = 1 << 20
    max_opsets: int = 1 << 10
    max_rank: int = 1 << 10
    max_name_bytes: int = 1 << 16
    """Any one string the walker keeps (names, domains, producer)."""


DEFAULT_WIRE_LIMITS = WireLimits()


@dataclass(frozen=True)
class WireTensor:
    """One graph input or output as the file declares it."""

    name: str
    dtype: str
    shape: tuple[int | None, ...] | None
    """None: no shape given. A None dimension is symbolic or unknown."""


@dataclass(frozen=True, kw_only=True)
class OnnxIO:
    """What :func:`read_onnx_io` found."""

    ir_version: int
    producer: str
    opsets: tuple[tuple[str, int], ...]
    """(domain, version) as imported, in file order."""
    inputs: tuple[WireTensor, ...]
    """Graph inputs that are not initializers, as the onnx-based check lists them."""
    outputs: tuple[WireTensor, ...]
    external_data: tuple[str, ...] = field(default=())
    """Locations of initializers kept outside the file, in first-use order."""

    @property
    def opset(self) -> int | None:
        """The default-domain opset (None if the model imports none)."""
        return next((v for d, v in self.opsets if d in ("", "ai.onnx")), None)


class _WireError(Exception):
    """A wire-format violation at ``offset``; turned into ModelInvalidError by the caller."""

    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(reason)
        self.offset = offset
        self.reason = reason


class _Reader:
    """Fields of one message, read from a seekable file between two offsets."""

    def __init__(self, f: BinaryIO, end: int, limits: WireLimits) -> None:
        self.f = f
        self.end = end
        self.limits = limits

    def pos(self) -> int:
        return self.f.tell()

    def varint(self) -> int:
        start, shift, value = self.pos(), 0, 0
        for _ in range(_MAX_VARINT_BYTES):
            if self.pos() >= self.end:
                raise _WireError(start, "truncated varint")
            byte = self.f.read(1)
            if not byte:
                raise _WireError(start, "truncated varint")
            value |= (byte[0] & 0x7F) << shift
            if byte[0] < 0x80:
                if value >= 1 << 64:
                    raise _WireError(start, "varint over 64 bits")
                return value
            shift += 7
        raise _WireError(start, "varint longer than 10 bytes")

    def fields(self) -> _Fields:
        return _Fields(self)

    def length(self) -> int:
        """A length prefix, checked against the end of the enclosing message."""
        at = self.pos()
        n = self.varint()
        if n > self.end - self.pos():
            raise _WireError(at, f"length {n} runs past the end of its message")
        return n

    def skip(self, wire: int, at: int) -> None:
        if wire == _VARINT:
            self.varint()
            return
        if wire == _LEN:
            n = self.length()
        elif wire in (_I64, _I32):
            n = 8 if wire == _I64 else 4
            if n > self.end - self.pos():
                raise _WireError(at, "fixed-size field runs past the end of its message")
        else:
            kind = "group" if wire in (_SGROUP, _EGROUP) else f"type {wire}"
            raise _WireError(at, f"unsupported wire {kind}")
        self.f.seek(n, os.SEEK_CUR)

    def sub(self) -> _Reader:
        """The embedded message that starts here; the caller seeks to its end after."""
        n = self.length()
        return _Reader(self.f, self.pos() + n, self.limits)

    def text(self, what: str) -> str:
        at = self.pos()
        n = self.length()
        if n > self.limits.max_name_bytes:
            raise _WireError(at, f"{what} of {n} bytes exceeds {self.limits.max_name_bytes}")
        raw = self.f.read(n)
        if len(raw) != n:
            raise _WireError(at, "file ends inside a string")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _WireError(at, f"{what} is not UTF-8") from None

    def integer(self, wire: int, at: int, what: str) -> int:
        if wire != _VARINT:
            raise _WireError(at, f"{what} has wire type {wire}, not varint")
        value = self.varint()
        return value - (1 << 64) if value >= 1 << 63 else value  # int64 two's complement


class _Fields:
    """Iterate (field number, wire type, offset); refuse a singular field seen twice."""

    def __init__(self, reader: _Reader) -> None:
        self.r = reader
        self.seen: set[int] = set()

    def __iter__(self) -> _Fields:
        return self

    def __next__(self) -> tuple[int, int, int]:
        r = self.r
        at = r.pos()
        if at >= r.end:
            if at > r.end:
                raise _WireError(r.end, "a field runs past the end of its message")
            raise StopIteration
        key = r.varint()
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _WireError(at, "field number 0")
        return number, wire, at

    def once(self, message: str, number: int, name: str, at: int) -> None:
        if number in self.seen:
            raise _WireError(at, f"{message}.{name} appears twice")
        self.seen.add(number)


def _embedded(r: _Reader, wire: int, at: int, what: str) -> _Reader:
    if wire != _LEN:
        raise _WireError(at, f"{what} has wire type {wire}, not a message")
    return r.sub()


def _walk(sub: _Reader, body: Callable[[_Reader], None]) -> None:
    body(sub)
    sub.f.seek(sub.end)


def read_onnx_io(path: Path, limits: WireLimits = DEFAULT_WIRE_LIMITS) -> OnnxIO:
    """Inputs, outputs, opsets and IR version of the ONNX model at ``path``.

    Raises ModelInvalidError naming the byte offset when the file is not a
    well-formed ModelProto (truncated, foreign, or hostile).
    """
    try:
        f = path.open("rb")
    except OSError as e:
        raise ModelInvalidError(f"cannot read {path.name}: {e.strerror}") from e
    with f:
        end = os.fstat(f.fileno()).st_size
        try:
            return _Model(limits).read(_Reader(f, end, limits))
        except _WireError as e:
            raise ModelInvalidError(
                f"{path.name} is not a readable ONNX model (byte {e.offset}: {e.reason})",
                hint="the file is corrupt or truncated: export or download it again",
            ) from None


class _Model:
    """Accumulates what the walk finds."""

    def __init__(self, limits: WireLimits) -> None:
        self.limits = limits
        self.ir_version = 0
        self.producer = ["", ""]
        self.opsets: list[tuple[str, int]] = []
        self.inputs: list[WireTensor] = []
        self.outputs: list[WireTensor] = []
        self.initializers: set[str] = set()
        self.initializer_count = 0
        self.external: list[str] = []
        self.graphs = 0

    def read(self, r: _Reader) -> OnnxIO:
        fields = r.fields()
        for number, wire, at in fields:
            if number == 1:
                fields.once("ModelProto", number, "ir_version", at)
                self.ir_version = r.integer(wire, at, "ModelProto.ir_version")
            elif number in (2, 3) and wire == _LEN:
                name = ("producer_name", "producer_version")[number - 2]
                fields.once("ModelProto", number, name, at)
                self.producer[number - 2] = r.text("producer")
            elif number == 7:
                fields.once("ModelProto", number, "graph", at)
                _walk(_embedded(r, wire, at, "ModelProto.graph"), self._graph)
                self.graphs += 1
            elif number == 8:
                if len(self.opsets) >= self.limits.max_opsets:
                    raise _WireError(at, f"more than {self.limits.max_opsets} opset imports")
                _walk(_embedded(r, wire, at, "ModelProto.opset_import"), self._opset)
            else:
                r.skip(wire, at)
        if not self.graphs:
            raise _WireError(0, "no graph (ModelProto.graph is missing)")
        return OnnxIO(
            ir_version=self.ir_version,
            producer=" ".join(self.producer).strip(),
            opsets=tuple(self.opsets),
            inputs=tuple(t for t in self.inputs if t.name not in self.initializers),
            outputs=tuple(self.outputs),
            external_data=tuple(dict.fromkeys(self.external)),
        )

    def _opset(self, r: _Reader) -> None:
        domain, version = "", 0
        fields = r.fields()
        for number, wire, at in fields:
            if number == 1 and wire == _LEN:
                fields.once("OperatorSetIdProto", number, "domain", at)
                domain = r.text("opset domain")
            elif number == 2:
                fields.once("OperatorSetIdProto", number, "version", at)
                version = r.integer(wire, at, "OperatorSetIdProto.version")
            else:
                r.skip(wire, at)
        self.opsets.append((domain, version))

    def _graph(self, r: _Reader) -> None:
        for number, wire, at in r.fields():
            if number == 5:
                if self.initializer_count >= self.limits.max_initializers:
                    raise _WireError(at, f"more than {self.limits.max_initializers} initializers")
                self.initializer_count += 1
                _walk(_embedded(r, wire, at, "GraphProto.initializer"), self._initializer)
            elif number in (11, 12):
                kind = self.inputs if number == 11 else self.outputs
                if len(self.inputs) + len(self.outputs) >= self.limits.max_values:
                    raise _WireError(at, f"more than {self.limits.max_values} inputs and outputs")
                what = "GraphProto.input" if number == 11 else "GraphProto.output"
                sub = _embedded(r, wire, at, what)
                kind.append(_value_info(sub))
                sub.f.seek(sub.end)
            else:
                r.skip(wire, at)

    def _initializer(self, r: _Reader) -> None:
        # Only the name and where external data lives; raw_data and the typed
        # arrays are skipped by their length, never read.
        fields = r.fields()
        for number, wire, at in fields:
            if number == 8 and wire == _LEN:
                fields.once("TensorProto", number, "name", at)
                self.initializers.add(r.text("initializer name"))
            elif number == 13 and wire == _LEN:
                sub = r.sub()
                key, value = _entry(sub)
                sub.f.seek(sub.end)
                if key == "location":
                    self.external.append(value)
            else:
                r.skip(wire, at)


def _entry(r: _Reader) -> tuple[str, str]:
    key = value = ""
    fields = r.fields()
    for number, wire, at in fields:
        if number in (1, 2) and wire == _LEN:
            fields.once("StringStringEntryProto", number, ("key", "value")[number - 1], at)
            text = r.text("external data entry")
            key, value = (text, value) if number == 1 else (key, text)
        else:
            r.skip(wire, at)
    return key, value


def _value_info(r: _Reader) -> WireTensor:
    name, elem, shape = "", 0, None
    fields = r.fields()
    for number, wire, at in fields:
        if number == 1 and wire == _LEN:
            fields.once("ValueInfoProto", number, "name", at)
            name = r.text("value name")
        elif number == 2:
            fields.once("ValueInfoProto", number, "type", at)
            sub = _embedded(r, wire, at, "ValueInfoProto.type")
            elem, shape = _type(sub)
            sub.f.seek(sub.end)
        else:
            r.skip(wire, at)
    return WireTensor(name, ONNX_DTYPES.get(elem, f"onnx-type-{elem}"), shape)


def _type(r: _Reader) -> tuple[int, tuple[int | None, ...] | None]:
    """A TypeProto's tensor elem_type and shape; other kinds (sequence, map) read as none."""
    elem, shape = 0, None
    fields = r.fields()
    for number, wire, at in fields:
        if number == 1:
            fields.once("TypeProto", number, "tensor_type", at)
            sub = _embedded(r, wire, at, "TypeProto.tensor_type")
            tensor = sub.fields()
            for n, w, a in tensor:
                if n == 1:
                    tensor.once("TypeProto.Tensor", n, "elem_type", a)
                    elem = sub.integer(w, a, "TypeProto.Tensor.elem_type")
                elif n == 2:
                    tensor.once("TypeProto.Tensor", n, "shape", a)
                    dims = _embedded(sub, w, a, "TypeProto.Tensor.shape")
                    shape = _shape(dims)
                    dims.f.seek(dims.end)
                else:
                    sub.skip(w, a)
            sub.f.seek(sub.end)
        else:
            r.skip(wire, at)
    return elem, shape


def _shape(r: _Reader) -> tuple[int | None, ...]:
    dims: list[int | None] = []
    for number, wire, at in r.fields():
        if number != 1:
            r.skip(wire, at)
            continue
        if len(dims) >= r.limits.max_rank:
            raise _WireError(at, f"a shape of more than {r.limits.max_rank} dimensions")
        sub = _embedded(r, wire, at, "TensorShapeProto.dim")
        value: int | None = None
        for n, w, a in sub.fields():
            if n == 1:  # dim_value and dim_param are a oneof: the last one written wins
                value = sub.integer(w, a, "Dimension.dim_value")
            elif n == 2:
                value = None
                sub.skip(w, a)
            else:
                sub.skip(w, a)
        sub.f.seek(sub.end)
        dims.append(value if value is not None and value > 0 else None)
    return tuple(dims)
