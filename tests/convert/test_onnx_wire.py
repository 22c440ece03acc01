"""The ONNX wire-format walker: it agrees with onnx.load, and refuses hostile files by name.

The as-is model check (:func:`aoe_pack.convert.sources.inspect_source`) reads
an ONNX model's inputs, outputs and opsets with this walker instead of
loading its weights, so it must report exactly what the onnx-based check
reports for every model onnx reads: the models shipped in onnx's backend test
data, every operator test case onnx generates, and models with external data.
"""

from __future__ import annotations

import contextlib
import json
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from _cli import NO_PASSWORD, aoe
from onnx import TensorProto, helper, numpy_helper

from aoe_pack.config import load_config
from aoe_pack.config.model import TensorSpec
from aoe_pack.convert.onnx_wire import WireLimits, read_onnx_io
from aoe_pack.convert.sources import _onnx_tensor, inspect_source, load_source, onnx_opset
from aoe_pack.errors import ModelInvalidError, ModelSignatureError

REPO = Path(__file__).resolve().parents[2]
SHIPPED = Path(onnx.__file__).parent / "backend" / "test" / "data"


def _by_onnx(model: Any) -> tuple[object, ...]:
    """What the onnx-based check (load_source's) reads from a loaded ModelProto."""
    initializers = {i.name for i in model.graph.initializer}

    def rows(values: Any) -> list[tuple[str, str, object]]:
        tensors = [_onnx_tensor(onnx, v) for v in values]
        return [(t.names[0], t.dtype, t.shape) for t in tensors]

    inputs = [v for v in model.graph.input if v.name not in initializers]
    return rows(inputs), rows(model.graph.output), onnx_opset(model), model.ir_version


def _by_walker(path: Path) -> tuple[object, ...]:
    found = read_onnx_io(path)
    inputs = [(t.name, t.dtype, t.shape) for t in found.inputs]
    outputs = [(t.name, t.dtype, t.shape) for t in found.outputs]
    return inputs, outputs, found.opset, found.ir_version


def test_walker_agrees_with_onnx_on_the_models_onnx_ships() -> None:
    models = sorted(SHIPPED.glob("*/*.onnx")) + sorted(SHIPPED.glob("*/*/model.onnx"))
    assert len(models) > 100, "onnx's backend test data is missing"
    differ = [p for p in models if _by_walker(p) != _by_onnx(onnx.load(str(p)))]
    assert differ == []


def test_walker_agrees_with_onnx_on_every_generated_operator_case(tmp_path: Path) -> None:
    # onnx 1.23 wheels ship the generators of backend/test/data/node, not the
    # files: run them as ONNX does (benchmarks/zoo.py does the same).
    with (
        contextlib.redirect_stdout(sys.stderr),
        np.errstate(all="ignore"),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")  # the generators divide by zero on purpose
        import onnx.backend.test.case.node as generators

        generators.collect_testcases(None)
    cases = generators._NodeTestCases
    assert len(cases) > 1000
    differ = []
    path = tmp_path / "model.onnx"
    for case in cases:
        path.write_bytes(case.model.SerializeToString())
        if _by_walker(path) != _by_onnx(onnx.load(str(path))):
            differ.append(case.name)
    assert differ == []


def _matmul(side: int = 8, *, opset: int = 17) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", side])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", side])
    w = numpy_helper.from_array(np.ones((side, side), np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])], "g", [x], [y], initializer=[w]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _external(tmp_path: Path, location: str = "weights.bin") -> Path:
    path = tmp_path / "m.onnx"
    onnx.save_model(
        _matmul(64),
        str(path),
        save_as_external_data=True,
        location=location,
        size_threshold=0,
    )
    return path


X = TensorSpec(name="x", dtype="float32", shape=(-1, 64))
Y = TensorSpec(name="y", dtype="float32", shape=(-1, 64))


def test_external_data_model_reads_as_onnx_reads_it(tmp_path: Path) -> None:
    path = _external(tmp_path)
    assert (tmp_path / "weights.bin").stat().st_size == 64 * 64 * 4
    assert _by_walker(path) == _by_onnx(onnx.load(str(path)))
    assert read_onnx_io(path).external_data == ("weights.bin",)
    source = inspect_source(path, inputs=(X,), outputs=(Y,))
    full, _ = load_source(path, inputs=(X,), outputs=(Y,))
    assert (source.inputs, source.outputs) == (full.inputs, full.outputs)
    assert {k: source.details[k] for k in ("opset", "ir_version")} == {"opset": 17, "ir_version": 8}


def test_external_data_that_is_missing_is_refused(tmp_path: Path) -> None:
    path = _external(tmp_path)
    (tmp_path / "weights.bin").unlink()
    with pytest.raises(ModelInvalidError) as e:
        inspect_source(path, inputs=(X,), outputs=(Y,))
    assert e.value.message == (
        "m.onnx keeps weights in 'weights.bin', which is not a file in its folder"
    )


def test_external_data_outside_the_models_folder_is_refused(tmp_path: Path) -> None:
    model = _matmul(4)
    for tensor in model.graph.initializer:
        tensor.ClearField("raw_data")
        tensor.data_location = TensorProto.EXTERNAL
        entry = tensor.external_data.add()
        entry.key, entry.value = "location", "../secret.bin"
    (tmp_path / "secret.bin").write_bytes(b"\0" * 64)
    folder = tmp_path / "model"
    folder.mkdir()
    onnx.save_model(model, str(folder / "m.onnx"))
    with pytest.raises(ModelInvalidError, match=r"keeps weights in '\.\./secret\.bin'"):
        inspect_source(folder / "m.onnx", inputs=None, outputs=None)


def test_inspect_matches_load_source_on_the_sample_model() -> None:
    path = REPO / "sample_models/squeezenet/squeezenet.onnx"
    config = load_config(path.parent / "config.json")
    light = inspect_source(path, inputs=config.inputs, outputs=config.outputs)
    full, _ = load_source(path, inputs=config.inputs, outputs=config.outputs)
    assert light == full


def test_inspect_reads_undeclared_io_as_load_source_does() -> None:
    path = REPO / "sample_models/squeezenet/squeezenet.onnx"
    light = inspect_source(path, inputs=None, outputs=None)
    full, _ = load_source(path, inputs=None, outputs=None)
    assert light == full
    assert light.details["io_read_from_model"] == "inputs and outputs"


def test_inspect_refuses_a_declaration_the_model_disagrees_with(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    onnx.save_model(_matmul(8), str(path))
    wrong = TensorSpec(name="x", dtype="float16", shape=(-1, 8))
    with pytest.raises(
        ModelSignatureError, match=r"declared x float16 \[-1, 8\] \| model x float32 \[\?, 8\]"
    ):
        inspect_source(path, inputs=(wrong,), outputs=None)


# --- hostile files: one test per attack, the exact error -------------------------------


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, body: bytes) -> bytes:
    return _key(number, 2) + _varint(len(body)) + body


def _value(name: bytes, elem: int = 1, dims: Sequence[int] = (1,)) -> bytes:
    shape = b"".join(_field(1, _key(1, 0) + _varint(d)) for d in dims)
    tensor = _key(1, 0) + _varint(elem) + _field(2, shape)
    return _field(1, name) + _field(2, _field(1, tensor))


OPSET = _field(8, _key(2, 0) + _varint(17))
GOOD_GRAPH = _field(11, _value(b"x")) + _field(12, _value(b"y"))


def _refusal(tmp_path: Path, data: bytes, limits: WireLimits | None = None) -> str:
    path = tmp_path / "hostile.onnx"
    path.write_bytes(data)
    with pytest.raises(ModelInvalidError) as e:
        read_onnx_io(path) if limits is None else read_onnx_io(path, limits)
    assert e.value.hint == "the file is corrupt or truncated: export or download it again"
    prefix = "hostile.onnx is not a readable ONNX model ("
    assert e.value.message.startswith(prefix)
    return e.value.message.removeprefix(prefix).removesuffix(")")


def test_hand_written_model_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(_key(1, 0) + _varint(8) + OPSET + _field(7, GOOD_GRAPH))
    assert _by_walker(path) == ([("x", "float32", (1,))], [("y", "float32", (1,))], 17, 8)
    assert _by_walker(path) == _by_onnx(onnx.load(str(path)))


def test_empty_file_has_no_graph(tmp_path: Path) -> None:
    assert _refusal(tmp_path, b"") == "byte 0: no graph (ModelProto.graph is missing)"


def test_truncated_varint(tmp_path: Path) -> None:
    assert _refusal(tmp_path, _key(1, 0) + b"\x80") == "byte 1: truncated varint"


def test_truncated_varint_at_the_end_of_a_message(tmp_path: Path) -> None:
    # the graph says 2 bytes; its field's varint would need a third
    data = _field(7, _key(1, 0) + b"\x80") + b"\x01"
    assert _refusal(tmp_path, data) == "byte 3: truncated varint"


def test_varint_longer_than_ten_bytes(tmp_path: Path) -> None:
    data = _key(1, 0) + b"\xff" * 11 + b"\x01"
    assert _refusal(tmp_path, data) == "byte 1: varint longer than 10 bytes"


def test_varint_over_64_bits(tmp_path: Path) -> None:
    data = _key(1, 0) + b"\xff" * 9 + b"\x7f"
    assert _refusal(tmp_path, data) == "byte 1: varint over 64 bits"


def test_length_past_the_end_of_the_file(tmp_path: Path) -> None:
    data = _key(7, 2) + _varint(5) + b"ab"
    assert _refusal(tmp_path, data) == "byte 1: length 5 runs past the end of its message"


def test_huge_length(tmp_path: Path) -> None:
    data = _key(7, 2) + _varint(1 << 62) + GOOD_GRAPH
    assert _refusal(tmp_path, data) == f"byte 1: length {1 << 62} runs past the end of its message"


def test_length_past_the_end_of_the_enclosing_message(tmp_path: Path) -> None:
    # the input's length fits the file but not the graph that holds it
    inner = _field(11, _value(b"x"))
    graph = inner[:-3]
    data = _field(7, graph) + inner[-3:] + OPSET
    assert _refusal(tmp_path, data) == (
        f"byte 3: length {len(inner) - 2} runs past the end of its message"
    )


def test_fixed_size_field_past_the_end(tmp_path: Path) -> None:
    data = _field(7, _key(3, 1) + b"\0\0\0")
    assert _refusal(tmp_path, data) == "byte 2: fixed-size field runs past the end of its message"


def test_graph_with_the_wrong_wire_type(tmp_path: Path) -> None:
    data = _key(7, 0) + _varint(1)
    assert _refusal(tmp_path, data) == "byte 0: ModelProto.graph has wire type 0, not a message"


def test_ir_version_with_the_wrong_wire_type(tmp_path: Path) -> None:
    data = _field(1, b"8") + _field(7, GOOD_GRAPH)
    assert _refusal(tmp_path, data) == "byte 0: ModelProto.ir_version has wire type 2, not varint"


def test_elem_type_with_the_wrong_wire_type(tmp_path: Path) -> None:
    tensor = _field(1, b"\x01")
    value = _field(1, b"x") + _field(2, _field(1, tensor))
    data = _field(7, _field(11, value))
    assert _refusal(tmp_path, data) == (
        "byte 11: TypeProto.Tensor.elem_type has wire type 2, not varint"
    )


def test_group_wire_type(tmp_path: Path) -> None:
    assert _refusal(tmp_path, _key(4, 3) + _key(4, 4)) == "byte 0: unsupported wire group"


def test_reserved_wire_type(tmp_path: Path) -> None:
    assert _refusal(tmp_path, _key(4, 6)) == "byte 0: unsupported wire type 6"


def test_field_number_zero(tmp_path: Path) -> None:
    assert _refusal(tmp_path, b"\x00") == "byte 0: field number 0"


def test_graph_repeated(tmp_path: Path) -> None:
    # protobuf would merge the two graphs; the walker refuses the ambiguity
    first = _field(7, GOOD_GRAPH)
    data = first + _field(7, _field(11, _value(b"z")))
    assert _refusal(tmp_path, data) == f"byte {len(first)}: ModelProto.graph appears twice"


def test_value_type_repeated(tmp_path: Path) -> None:
    value = _value(b"x") + _field(2, _field(1, _key(1, 0) + b"\x07"))
    data = _field(7, _field(11, value))
    at = 4 + len(_value(b"x"))  # graph key+len, input key+len, then the value's fields
    assert _refusal(tmp_path, data) == f"byte {at}: ValueInfoProto.type appears twice"


def test_initializer_name_repeated(tmp_path: Path) -> None:
    tensor = _field(8, b"W") + _field(8, b"x")
    data = _field(7, _field(5, tensor) + GOOD_GRAPH)
    assert _refusal(tmp_path, data) == "byte 7: TensorProto.name appears twice"


def test_name_that_is_not_utf8(tmp_path: Path) -> None:
    data = _field(7, _field(11, _value(b"\xff\xfe")))
    assert _refusal(tmp_path, data) == "byte 5: value name is not UTF-8"


def test_name_over_the_cap(tmp_path: Path) -> None:
    data = _field(7, _field(11, _value(b"abcdef")))
    assert _refusal(tmp_path, data, WireLimits(max_name_bytes=5)) == (
        "byte 5: value name of 6 bytes exceeds 5"
    )


def test_too_many_inputs_and_outputs(tmp_path: Path) -> None:
    data = _field(7, _field(11, _value(b"a")) + _field(11, _value(b"b")) + _field(12, _value(b"c")))
    at = 2 + 2 * len(_field(11, _value(b"a")))
    assert _refusal(tmp_path, data, WireLimits(max_values=2)) == (
        f"byte {at}: more than 2 inputs and outputs"
    )


def test_too_many_initializers(tmp_path: Path) -> None:
    one = _field(5, _field(8, b"W"))
    data = _field(7, one * 3)
    assert _refusal(tmp_path, data, WireLimits(max_initializers=2)) == (
        f"byte {2 + 2 * len(one)}: more than 2 initializers"
    )


def test_too_many_opsets(tmp_path: Path) -> None:
    data = OPSET * 3 + _field(7, GOOD_GRAPH)
    assert _refusal(tmp_path, data, WireLimits(max_opsets=2)) == (
        f"byte {2 * len(OPSET)}: more than 2 opset imports"
    )


def test_rank_over_the_cap(tmp_path: Path) -> None:
    data = _field(7, _field(11, _value(b"x", dims=(1, 2, 3))))
    assert _refusal(tmp_path, data, WireLimits(max_rank=2)).endswith(
        ": a shape of more than 2 dimensions"
    )


def test_deeply_nested_type_is_skipped_not_recursed(tmp_path: Path) -> None:
    # sequence(sequence(...(tensor))) 100,000 deep: protobuf's own parser stops
    # at 100 levels; the walker reads no type but tensor_type, so it skips the
    # nest by its length, in one seek, and reports no tensor type ("undefined").
    nested = _field(1, _key(1, 0) + b"\x01")
    for _ in range(100_000):
        nested = _field(4, _field(1, nested))
    data = OPSET + _field(7, _field(11, _field(1, b"x") + _field(2, nested)))
    path = tmp_path / "deep.onnx"
    path.write_bytes(data)
    found = read_onnx_io(path)
    assert [(t.name, t.dtype, t.shape) for t in found.inputs] == [("x", "undefined", None)]
    with pytest.raises(Exception, match=r"recursion|Error parsing|DecodeError|protobuf"):
        onnx.load(str(path))


def test_a_text_file_named_onnx_is_refused(tmp_path: Path) -> None:
    assert _refusal(tmp_path, b"hello, I am not a model\n").startswith("byte ")


def test_truncated_fixture_is_refused() -> None:
    with pytest.raises(ModelInvalidError, match=r"truncated\.onnx is not a readable ONNX model"):
        read_onnx_io(REPO / "tests/fixtures/models/truncated.onnx")


# --- the as-is path never loads the weights --------------------------------------------


def _big_config(tmp_path: Path) -> Path:
    """A model with a 64 MiB initializer, packed as it is (no targets)."""
    onnx.save_model(_matmul(4096), str(tmp_path / "m.onnx"))
    config = {
        "version": "1.0.0",
        "tag": "big",
        "runtime": "onnx",
        "modelDir": ".",
        "modelName": "m.onnx",
        "inputs": [{"name": "x", "dtype": "float32", "shape": [-1, 4096]}],
        "outputs": [{"name": "y", "dtype": "float32", "shape": [-1, 4096]}],
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    return tmp_path / "config.json"


def test_validate_as_is_never_imports_a_framework(
    tmp_path: Path, modules_imported_by: Callable[[Sequence[str]], tuple[object, set[str]]]
) -> None:
    code, loaded = modules_imported_by(["validate", str(_big_config(tmp_path))])
    assert code == 0
    assert sorted(loaded & {"onnx", "onnxruntime", "numpy", "tensorflow", "google"}) == []


def test_validate_as_is_reports_the_model_without_loading_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("onnx.load was called")

    monkeypatch.setattr(onnx, "load", refuse)
    monkeypatch.setattr(onnx, "load_model", refuse)
    r = aoe("validate", _big_config(tmp_path), json=True)
    assert r.exit_code == 0, r.output
    model = json.loads(r.stdout)["model"]
    assert (model["checked"], model["format"], model["details"]["opset"]) == (True, "onnx", 17)


def _external_config(tmp_path: Path, files: list[dict[str, str]]) -> Path:
    folder = tmp_path / "m"
    folder.mkdir()
    _external(folder)
    config = {
        "version": "1.0.0",
        "tag": "ext",
        "runtime": "onnx",
        "modelDir": ".",
        "modelName": "m.onnx",
        "files": files,
    }
    (folder / "config.json").write_text(json.dumps(config))
    return folder / "config.json"


def test_as_is_external_data_must_be_packed(tmp_path: Path) -> None:
    r = aoe("validate", _external_config(tmp_path, []), json=True)
    assert r.exit_code == 1
    err = json.loads(r.stdout)["error"]
    assert err["code"] == "model-file"
    assert err["message"] == (
        "m.onnx keeps weights in 'weights.bin', which the config does not pack: "
        "the bundle's model would not load"
    )
    assert err["hint"] == 'add {"path": "weights.bin", "role": "weights"} to "files"'


def test_as_is_external_data_packed_beside_the_model_builds(tmp_path: Path) -> None:
    config = _external_config(tmp_path, [{"path": "weights.bin", "role": "weights"}])
    r = aoe("validate", config, json=True)
    assert r.exit_code == 0, r.output
    model = json.loads(r.stdout)["model"]
    assert model["readFromModel"] == ["inputs", "outputs"]
    assert model["inputs"] == [{"name": "x", "dtype": "float32", "shape": [-1, 64]}]
    assert aoe("keygen", "--out", tmp_path / "k", env=NO_PASSWORD).exit_code == 0
    out = tmp_path / "b.aoe"
    built = aoe("build", config, "--out", out, "--sign-key", tmp_path / "k.key", "--no-encrypt")
    assert built.exit_code == 0, built.output
    assert out.is_file()
