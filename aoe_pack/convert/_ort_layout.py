"""One byte layout per ``.ort`` model, so that builds are reproducible.

onnxruntime writes an ``.ort`` file (a FlatBuffer, root ``InferenceSession``)
as: the version string and the ``Model`` table, then the
``KernelTypeStrResolver`` table, then the root. It fills the resolver by
walking an absl hash map, whose iteration order follows a per-process hash
seed (an address, so it changes with address-space randomisation). The
entries are sorted by key before they are written, so every run has the same
*content*, but the tables land at different offsets: two conversions of the
same model differ in their first few hundred bytes.

:func:`canonical_ort` rebuilds that part: every byte from the ``Model`` table
to the end of the file is kept as it is (at the same distance from the end,
hence the same alignment), and a fresh resolver, written in sorted order, and
a fresh root table are put in front of it. The result loads and runs exactly
as the original; applying it twice changes nothing.

The FlatBuffer classes are onnxruntime's own (``ort_flatbuffers_py``, which
its ``tools.ort_format_model`` package puts on ``sys.path``).
"""

from __future__ import annotations

from typing import Any

from aoe_pack.errors import ConversionError

_IDENTIFIER = b"ORTM"
_VERSION_FIELD, _MODEL_FIELD, _SESSION_STATE_FIELD = 4, 6, 8
_MAX_ALIGN = 64


def _target(table: Any, field: int) -> int:
    """Absolute position of the table a uoffset field points to (0 when absent)."""
    offset = table.Offset(field)
    return 0 if offset == 0 else int(table.Indirect(table.Pos + offset))


def _resolver_entries(
    session: Any,
) -> list[tuple[bytes, list[tuple[bytes, list[tuple[int, int]]]]]]:
    """The resolver's content: (op id, [(type string, [(arg type, index)])]), all sorted."""
    resolver = session.KernelTypeStrResolver()
    entries = []
    for i in range(resolver.OpKernelTypeStrArgsLength()):
        entry = resolver.OpKernelTypeStrArgs(i)
        strings = []
        for j in range(entry.KernelTypeStrArgsLength()):
            item = entry.KernelTypeStrArgs(j)
            args = [
                (item.Args(a).ArgType(), item.Args(a).Index()) for a in range(item.ArgsLength())
            ]
            strings.append((item.KernelTypeStr(), args))
        entries.append((entry.OpId(), sorted(strings)))
    return sorted(entries)


def _session_module() -> Any:
    """onnxruntime's generated ``InferenceSession`` FlatBuffer module (``ort_flatbuffers_py``)."""
    import onnxruntime.tools.ort_format_model  # noqa: F401 - puts ort_flatbuffers_py on sys.path
    from ort_flatbuffers_py.fbs import InferenceSession

    return InferenceSession


def _vector(builder: Any, offsets: list[int]) -> int:
    builder.StartVector(4, len(offsets), 4)
    for o in reversed(offsets):
        builder.PrependUOffsetTRelative(o)
    return int(builder.EndVector())


def _write_resolver(builder: Any, entries: list[Any]) -> int:
    """The resolver table, its entries in the given (sorted) order; returns its offset."""
    from ort_flatbuffers_py.fbs import ArgTypeAndIndex as Arg
    from ort_flatbuffers_py.fbs import KernelTypeStrArgsEntry as TypeStrEntry
    from ort_flatbuffers_py.fbs import KernelTypeStrResolver as Resolver
    from ort_flatbuffers_py.fbs import OpIdKernelTypeStrArgsEntry as OpEntry

    op_offsets = []
    for op_id, strings in entries:
        string_offsets = []
        for type_str, args in strings:
            arg_offsets = []
            for arg_type, index in args:
                Arg.Start(builder)
                Arg.AddArgType(builder, arg_type)
                Arg.AddIndex(builder, index)
                arg_offsets.append(Arg.End(builder))
            args_vector = _vector(builder, arg_offsets)
            name = builder.CreateString(type_str)
            TypeStrEntry.Start(builder)
            TypeStrEntry.AddKernelTypeStr(builder, name)
            TypeStrEntry.AddArgs(builder, args_vector)
            string_offsets.append(TypeStrEntry.End(builder))
        strings_vector = _vector(builder, string_offsets)
        op_name = builder.CreateString(op_id)
        OpEntry.Start(builder)
        OpEntry.AddOpId(builder, op_name)
        OpEntry.AddKernelTypeStrArgs(builder, strings_vector)
        op_offsets.append(OpEntry.End(builder))
    ops_vector = _vector(builder, op_offsets)
    Resolver.Start(builder)
    Resolver.AddOpKernelTypeStrArgs(builder, ops_vector)
    return int(Resolver.End(builder))


def canonical_ort(data: bytes) -> bytes:
    """``data`` (an ``.ort`` model) with its kernel-type resolver laid out in sorted order."""
    import flatbuffers
    from flatbuffers import encode, packer

    session_cls = _session_module()
    if data[4:8] != _IDENTIFIER:
        raise ConversionError("the ORT converter wrote a file that is not an ORT-format model")
    session = session_cls.InferenceSession.GetRootAs(data, 0)
    table = session._tab  # the generated classes expose no other access to field offsets
    if table.Offset(_SESSION_STATE_FIELD) != 0:
        raise ConversionError(
            "the .ort file has a session_state, which this onnxruntime never writes"
        )
    size = len(data)
    version = _target(table, _VERSION_FIELD)
    model = _target(table, _MODEL_FIELD)
    model_vtable = model - encode.Get(packer.soffset, data, model)
    tail_start = min(p for p in (version, model, model_vtable) if p)

    builder = flatbuffers.Builder(size + 4096)
    tail = data[tail_start:]
    # Placed by hand: Prep() would pad between the tail and the end of the buffer.
    builder.head -= len(tail)
    builder.Bytes[builder.head : builder.head + len(tail)] = tail
    builder.minalign = max(builder.minalign, min(size & -size, _MAX_ALIGN))
    resolver = _write_resolver(builder, _resolver_entries(session))
    session_cls.Start(builder)
    if version:
        session_cls.AddOrtVersion(builder, size - version)  # builder offsets count from the end
    session_cls.AddModel(builder, size - model)
    session_cls.AddKernelTypeStrResolver(builder, resolver)
    builder.Finish(session_cls.End(builder), file_identifier=_IDENTIFIER)
    return bytes(builder.Output())
