"""Config validation: the samples pass, each broken sample fails exactly as expected."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _skips import needs_fifos, needs_symlinks
from hypothesis import given, settings
from hypothesis import strategies as st

from aoe_pack.config import (
    ModelFile,
    TensorSpec,
    ValidationReport,
    Violation,
    load_config,
    validate_config,
)
from aoe_pack.config._schema import load_schema
from aoe_pack.errors import ConfigParseError, ConfigValidationError

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "sample_models"
RUNTIMES = "tflite, tensorflow, onnx, ort, mnn, ncnn, pytorch, tengine"
TOP_KEYS = (
    "$schema, version, tag, runtime, source, description, modelDir, modelName, minAppVersion, "
    "updateURL, encrypt, inputs, outputs, files, targets, sampleInputs"
)
SEMVER = 'use semantic versioning MAJOR.MINOR.PATCH, e.g. "1.0.0" or "2.1.0-beta.1"'


def found(report: ValidationReport) -> list[tuple[str, int | None, int | None, str, str | None]]:
    return [(v.pointer, v.line, v.column, v.message, v.hint) for v in report.violations]


def write_config(folder: Path, text: str, *, model: str | None = "model.tflite") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if model:
        (folder / model).write_bytes(b"model bytes")
    path = folder / "config.json"
    path.write_text(text, encoding="utf-8")
    return path


def minimal(**changes: object) -> str:
    doc: dict[str, object] = {
        "version": "1.0.0",
        "tag": "tag_x",
        "runtime": "tflite",
        "modelDir": ".",
        "modelName": "model.tflite",
    }
    doc.update(changes)
    return json.dumps({k: v for k, v in doc.items() if v is not None}, indent=2)


# --- the good samples ----------------------------------------------------------------


def test_mnist_sample_is_valid_and_normalises_runtime():
    config = load_config(SAMPLES / "mnist" / "config.json")
    assert config.tag == "tag_mnist"
    assert config.version == "1.0.0"
    assert config.runtime == "tflite"  # AoE's "tensorflow" meant TensorFlow Lite
    assert config.canonical["runtime"] == "tensorflow"  # what the user wrote stays
    assert config.source == "installed"
    assert config.encrypt is True
    assert config.files == (
        ModelFile(path="mnist.keras", role="model"),
        ModelFile(path="labels.txt", role="labels"),
    )
    assert config.inputs[0].shape == (1, 28, 28, 1)
    assert config.inputs[0].value_range == (0.0, 1.0)
    assert config.model_root == (SAMPLES / "mnist").resolve()
    assert config.update_url == "https://models.example.com/mnist/"


def test_squeezenet_sample_is_valid():
    config = load_config(SAMPLES / "squeezenet" / "config.json")
    assert (config.tag, config.runtime, config.source) == ("tag_squeezenet", "onnx", "remote")
    assert config.inputs == (
        TensorSpec(name="image", dtype="float32", shape=(1, 3, 64, 64), value_range=(0.0, 1.0)),
    )
    assert [f.role for f in config.files] == ["model", "labels"]


def test_sample_files_stay_small():
    assert (SAMPLES / "mnist" / "mnist.tflite").stat().st_size < 300_000
    assert (SAMPLES / "mnist" / "mnist.keras").stat().st_size < 300_000
    assert (SAMPLES / "squeezenet" / "squeezenet.onnx").stat().st_size < 1_000_000


# --- the broken samples: exact violations ---------------------------------------------


def test_misspelt_key_suggests_the_canonical_spelling():
    report = validate_config(SAMPLES / "bad-misspelt-key" / "config.json")
    assert found(report) == [
        (
            "",
            1,
            1,
            "missing required key 'modelName'",
            "'modelNmae' looks like a misspelling of 'modelName'",
        ),
        ("/modelNmae", 6, 3, "unknown key 'modelNmae'", "did you mean 'modelName'?"),
    ]
    assert report.config is None


def test_version_that_is_not_semver():
    report = validate_config(SAMPLES / "bad-version" / "config.json")
    assert found(report) == [
        (
            "/version",
            2,
            14,
            'version "1.0" is not a semantic version',
            'semantic versions have three parts: "1.0.0"',
        )
    ]


def test_unknown_runtime_lists_the_allowed_ones():
    report = validate_config(SAMPLES / "bad-runtime" / "config.json")
    assert found(report) == [
        (
            "/runtime",
            4,
            14,
            'runtime "tflight" is not allowed',
            f"did you mean 'tflite'? allowed: {RUNTIMES}",
        )
    ]


def test_missing_model_file_points_at_model_name():
    report = validate_config(SAMPLES / "bad-missing-model" / "config.json")
    assert found(report) == [
        (
            "/modelName",
            6,
            16,
            '"mnist.tflite" not found in modelDir',
            'put "mnist.tflite" into modelDir, or fix modelName',
        )
    ]


def test_every_violation_is_reported_in_line_order():
    report = validate_config(SAMPLES / "bad-many-errors" / "config.json")
    assert found(report) == [
        (
            "/version",
            2,
            14,
            'version "v1.2" is not a semantic version',
            'semantic versions have three parts: "1.2.0"',
        ),
        (
            "/tag",
            3,
            10,
            'tag "-bad tag" is not a valid tag',
            "start with a letter or digit, then use letters, digits, '.', '_' or '-' "
            "(at most 128 characters)",
        ),
        ("/source", 5, 13, 'source "cloudy" is not allowed', "allowed: installed, remote"),
        (
            "/modelDir",
            6,
            15,
            'modelDir "../models" is not a safe relative folder',
            "a relative path with '/' between folders, without '..', a leading '/' or a drive "
            "(relative to the config)",
        ),
        (
            "/encrypt",
            8,
            14,
            "encrypt must be true or false, not a string",
            "write true or false, without quotes",
        ),
        (
            "/inputs/0/dtype",
            10,
            33,
            'dtype "fp32" is not allowed',
            "allowed: float32, float16, float64, int8, uint8, int32, int64, bool",
        ),
        (
            "/inputs/0/shape/1",
            10,
            54,
            "shape[1] must be at least -1, not -2",
            "use a size, or -1 for a dynamic dimension",
        ),
        ("/colour", 12, 3, "unknown key 'colour'", f"allowed keys: {TOP_KEYS}"),
    ]


def test_text_that_is_not_json_is_one_violation_with_its_place():
    report = validate_config(SAMPLES / "bad-not-json" / "config.json")
    assert found(report) == [
        (
            "",
            1,
            1,
            "not valid JSON: Expecting value",
            "a config is a JSON object: start with '{' and quote every key and string",
        )
    ]
    assert report.canonical is None


def test_load_config_raises_with_every_violation():
    with pytest.raises(ConfigValidationError) as info:
        load_config(SAMPLES / "bad-many-errors" / "config.json")
    error = info.value
    assert len(error.violations) == 8
    assert all(isinstance(v, Violation) for v in error.violations)
    assert "8 problems" in error.message
    assert 'line 2: /version: version "v1.2" is not a semantic version' in error.message
    assert error.hint == 'semantic versions have three parts: "1.2.0"'
    assert error.code == "config-invalid"


# --- JSON syntax ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "column", "hint"),
    [
        ('{\n  "version": "1.0.0",\n}\n', 3, 1, "remove the trailing comma before the closing"),
        ('{\n  // a comment\n  "version": "1.0.0"\n}', 2, 3, "JSON has no comments"),
        ("{\n  'version': '1.0.0'\n}", 2, 3, "JSON strings and keys use double quotes"),
        ('{\n  "version": "1.0.0"\n  "tag": "x"\n}', 2, 21, "a comma is missing here"),
        ('{"version": "1.0.0"}\n{}', 2, 1, "a config holds exactly one JSON object"),
        ("", 1, 1, "the file is empty"),
    ],
)
def test_syntax_errors_have_line_and_hint(tmp_path, text, line, column, hint):
    report = validate_config(write_config(tmp_path, text))
    [violation] = report.violations
    assert (violation.pointer, violation.line, violation.column) == ("", line, column)
    assert violation.message.startswith("not valid JSON")
    assert violation.hint is not None
    assert violation.hint.startswith(hint)


def test_nan_is_not_json(tmp_path):
    text = '{\n  "version": "1.0.0",\n  "x": NaN\n}'
    [violation] = validate_config(write_config(tmp_path, text)).violations
    assert (violation.line, violation.column, violation.message) == (
        3,
        8,
        "NaN is not a JSON value",
    )


def test_duplicate_key_is_a_violation(tmp_path):
    text = minimal().replace('"tag": "tag_x"', '"tag": "tag_x",\n  "tag": "tag_y"')
    report = validate_config(write_config(tmp_path, text))
    assert [(v.pointer, v.message) for v in report.violations] == [
        ("/tag", "key appears more than once")
    ]


def test_byte_order_mark_is_accepted(tmp_path):
    path = write_config(tmp_path, "")
    path.write_bytes(b"\xef\xbb\xbf" + minimal().encode())
    assert validate_config(path).ok


def test_missing_config_file_raises_parse_error(tmp_path):
    with pytest.raises(ConfigParseError, match="cannot read config"):
        validate_config(tmp_path / "absent.json")


def test_config_that_is_not_utf8_raises_parse_error(tmp_path):
    path = tmp_path / "config.json"
    path.write_bytes(b'{"tag": "\xff"}')
    with pytest.raises(ConfigParseError, match="not UTF-8") as info:
        validate_config(path)
    assert info.value.hint == "save the config as UTF-8 JSON"


# --- schema details ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "version", ["1.0.0", "0.0.1", "10.20.30", "1.0.0-rc.1", "1.0.0-alpha+001", "1.0.0+build.7"]
)
def test_semver_versions_are_accepted(tmp_path, version):
    assert validate_config(write_config(tmp_path, minimal(version=version))).ok


@pytest.mark.parametrize(
    "version",
    ["1.0", "01.0.0", "1.0.0-", "1.0.0-01", "1.0.0\n", "v1.0.0", "1.0.0.0", "\u0661.\u0662.\u0663"],
)
def test_non_semver_versions_are_refused(tmp_path, version):
    report = validate_config(write_config(tmp_path, minimal(version=version)))
    assert [v.pointer for v in report.violations] == ["/version"]


@pytest.mark.parametrize("version", [1, 1.5])
def test_version_written_as_a_number_gets_a_quoting_hint(tmp_path, version):
    [violation] = validate_config(write_config(tmp_path, minimal(version=version))).violations
    assert violation.message == "version must be a string, not a number"
    assert violation.hint is not None
    assert violation.hint.startswith("quote it and use three parts")


@pytest.mark.parametrize("model_dir", ["/abs", "../up", "a/../../b", "C:/models", "a\\b", "a/.."])
def test_model_dir_must_stay_inside(tmp_path, model_dir):
    report = validate_config(write_config(tmp_path, minimal(modelDir=model_dir)))
    assert [v.pointer for v in report.violations] == ["/modelDir"]


@pytest.mark.parametrize(
    "path", ["/etc/passwd", "../labels.txt", "x/../../y", "C:\\labels.txt", "./labels.txt", "a//b"]
)
def test_associated_file_paths_must_be_plain_and_inside(tmp_path, path):
    text = minimal(files=[{"path": path, "role": "labels"}])
    report = validate_config(write_config(tmp_path, text))
    assert [v.pointer for v in report.violations] == ["/files/0/path"]


@pytest.mark.parametrize("name", ["sub/model.tflite", "", "model.tflite\n", ".", ".."])
def test_model_name_is_a_plain_name(tmp_path, name):
    report = validate_config(write_config(tmp_path, minimal(modelName=name)))
    assert [v.pointer for v in report.violations] == ["/modelName"]


def test_a_bare_model_name_names_the_file_its_runtime_loads(tmp_path):
    """AoE's runtimes added the extension: "model" with runtime tflite is model.tflite."""
    report = validate_config(write_config(tmp_path, minimal(modelName="model")))
    assert report.ok
    assert report.canonical is not None
    assert report.canonical["modelName"] == "model.tflite"
    [notice] = report.notices
    assert notice.message == (
        "AoE's runtime added the model's extension; the file is \"model.tflite\""
    )


def test_a_bare_model_name_without_such_a_file_is_not_found(tmp_path):
    report = validate_config(write_config(tmp_path, minimal(modelName="other")))
    [violation] = report.violations
    assert (violation.pointer, violation.message) == ("/modelName", '"other" not found in modelDir')


def test_model_name_with_a_folder_says_to_move_it(tmp_path):
    [violation] = validate_config(
        write_config(tmp_path, minimal(modelName="sub/model.tflite"))
    ).violations
    assert violation.hint == "move the folder part into modelDir; modelName is only the file name"


@pytest.mark.parametrize(
    ("tag", "ok"),
    [("a", True), ("A-b_c.9", True), ("-a", False), ("a b", False), ("a" * 129, False)],
)
def test_tag_pattern(tmp_path, tag, ok):
    assert validate_config(write_config(tmp_path, minimal(tag=tag))).ok is ok


@pytest.mark.parametrize(
    "url",
    [
        "https://x.example/m",
        "https://models.example.com/mnist/",
        "HTTPS://Models.Example.com:8443/Repo",
        "https://203.0.113.7/repo",
        "https://[2001:db8::1]/repo/",
        "https://cdn.example/a%20b/",
        "http://localhost:8000/repo",
        "http://127.0.0.1/",
        "http://[::1]:9000",
    ],
)
def test_update_url_accepts_repository_addresses(tmp_path, url):
    assert validate_config(write_config(tmp_path, minimal(updateURL=url))).ok


HOSTILE_URLS = {
    "ftp-scheme": ("ftp://x.example/m", "uses ftp://; devices read repositories over https://"),
    "javascript": ("javascript:alert(1)", "is not an absolute URL (scheme://host/path)"),
    "file-scheme": ("file:///etc/passwd", "uses file://; devices read repositories over https://"),
    "cleartext-http": (
        "http://models.example.com/",
        "uses http:// to a host that is not loopback; devices refuse cleartext HTTP",
    ),
    "userinfo": (
        "https://user:secret@models.example.com/",
        "carries user information (user@ or user:password@); credentials do not belong in it",
    ),
    "query": (
        "https://models.example.com/?token=1",
        "has a query; a repository address has none (names are appended to it)",
    ),
    "fragment": (
        "https://models.example.com/#x",
        "has a fragment; a repository address has none (names are appended to it)",
    ),
    "dot-dot": (
        "https://models.example.com/a/../b",
        "has a path segment '..'; write the path without '//', '.' or '..'",
    ),
    "bad-port": (
        "https://models.example.com:70000/",
        "has port '70000'; a port is a number from 1 to 65535",
    ),
    "bad-host": ("https://-models.example.com/", "has no valid host in '-models.example.com'"),
    "newline": ("https://models.example.com/\nx", "contains the character U+000A"),
    "nul": ("https://models.example.com/\x00", "contains the character U+0000"),
    "space": ("https://models.example.com/a b", "contains a space"),
    "non-ascii-host": ("https://mödels.example.com/", "contains the character U+00F6"),
    "backslash": ("https://models.example.com\\@evil.example/", "contains a backslash"),
    "too-long": ("https://x.example/" + "a" * 1100, "is 1118 characters long; at most 1024"),
}


@pytest.mark.parametrize(("url", "problem"), HOSTILE_URLS.values(), ids=HOSTILE_URLS.keys())
def test_update_url_refuses_hostile_addresses(tmp_path, url, problem):
    [violation] = validate_config(write_config(tmp_path, minimal(updateURL=url))).violations
    assert violation.pointer == "/updateURL"
    assert violation.message.startswith("updateURL ")
    assert problem in violation.message
    assert violation.hint is not None
    assert "https://models.example.com/repo/" in violation.hint


def test_unknown_key_differing_in_case_is_suggested(tmp_path):
    text = minimal(modelName=None, modelname="model.tflite")
    hints = [v.hint for v in validate_config(write_config(tmp_path, text)).violations]
    assert "did you mean 'modelName'?" in hints


def test_targets_accept_extra_keys_but_need_a_runtime(tmp_path):
    good = minimal(targets=[{"runtime": "onnx", "variant": "fp16", "opset": 17}])
    assert validate_config(write_config(tmp_path, good)).ok
    bad = minimal(targets=[{"variant": "fp16"}])
    report = validate_config(write_config(tmp_path, bad))
    assert found(report) == [
        (
            "/targets/0",
            8,
            5,
            "missing required key 'runtime'",
            'add "runtime": one of tflite, onnx, ort, mnn, ncnn, pytorch, tengine',
        )
    ]


def test_range_that_runs_backwards(tmp_path):
    tensor = {"name": "x", "dtype": "float32", "shape": [1], "range": [1.0, 0.0]}
    report = validate_config(write_config(tmp_path, minimal(inputs=[tensor])))
    assert [(v.pointer, v.message) for v in report.violations] == [
        ("/inputs/0/range", "range minimum 1.0 is greater than its maximum 0.0")
    ]


def test_range_needs_two_numbers(tmp_path):
    tensor = {"name": "x", "dtype": "float32", "shape": [-1], "range": [1.0]}
    report = validate_config(write_config(tmp_path, minimal(inputs=[tensor])))
    assert [(v.pointer, v.hint) for v in report.violations] == [
        ("/inputs/0/range", "write [min, max]")
    ]


def test_tensor_names_must_be_unique(tmp_path):
    tensor = {"name": "x", "dtype": "float32", "shape": [1]}
    report = validate_config(write_config(tmp_path, minimal(outputs=[tensor, tensor])))
    assert [v.pointer for v in report.violations] == ["/outputs/1/name"]


def test_model_listed_again_in_files(tmp_path):
    text = minimal(files=[{"path": "model.tflite", "role": "weights"}])
    [violation] = validate_config(write_config(tmp_path, text)).violations
    assert violation.pointer == "/files/0/path"
    assert violation.message == '"model.tflite" is the model itself'


# --- files on disk ---------------------------------------------------------------------


def test_missing_model_dir(tmp_path):
    [violation] = validate_config(write_config(tmp_path, minimal(modelDir="nowhere"))).violations
    assert (violation.pointer, violation.message) == (
        "/modelDir",
        'model folder "nowhere" not found',
    )


def test_missing_file_suggests_a_close_name(tmp_path):
    path = write_config(tmp_path, minimal(modelName="modle.tflite"))
    [violation] = validate_config(path).violations
    assert violation.hint == "did you mean 'model.tflite'?"


def test_missing_associated_file_points_at_its_path(tmp_path):
    text = minimal(files=[{"path": "labels.txt", "role": "labels"}])
    [violation] = validate_config(write_config(tmp_path, text)).violations
    assert (violation.pointer, violation.line) == ("/files/0/path", 9)


def test_model_name_that_is_a_folder(tmp_path):
    path = write_config(tmp_path, minimal(modelName="weights.d"), model=None)
    (tmp_path / "weights.d").mkdir()
    [violation] = validate_config(path).violations
    assert violation.message == '"weights.d" is a folder, not a file'


@needs_fifos
def test_model_that_is_not_a_regular_file(tmp_path):
    path = write_config(tmp_path, minimal(modelName="pipe.tflite"), model=None)
    os.mkfifo(tmp_path / "pipe.tflite")
    [violation] = validate_config(path).violations
    assert violation.message == '"pipe.tflite" is not a regular file'


@needs_symlinks
def test_symlink_leading_out_of_model_dir_is_refused(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the bundle")
    models = tmp_path / "project" / "models"
    models.mkdir(parents=True)
    (models / "model.tflite").write_bytes(b"m")
    (models / "labels.txt").symlink_to(secret)
    text = minimal(modelDir="models", files=[{"path": "labels.txt", "role": "labels"}])
    path = write_config(tmp_path / "project", text, model=None)
    [violation] = validate_config(path).violations
    assert violation.pointer == "/files/0/path"
    assert violation.message == '"labels.txt" resolves outside modelDir'


@needs_symlinks
def test_symlink_inside_model_dir_is_fine(tmp_path):
    path = write_config(tmp_path, minimal(modelName="link.tflite"))
    (tmp_path / "link.tflite").symlink_to(tmp_path / "model.tflite")
    assert validate_config(path).ok


@needs_symlinks
def test_dangling_symlink_is_missing(tmp_path):
    path = write_config(tmp_path, minimal(), model=None)
    (tmp_path / "model.tflite").symlink_to(tmp_path / "gone.tflite")
    [violation] = validate_config(path).violations
    assert violation.message == '"model.tflite" not found in modelDir'


# --- report, schema, packaging ------------------------------------------------------------


def test_report_to_dict_is_json_ready():
    report = validate_config(SAMPLES / "bad-version" / "config.json")
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is False
    assert data["path"].endswith("config.json")
    assert data["violations"][0]["pointer"] == "/version"
    assert data["violations"][0]["line"] == 2
    assert data["notices"] == []
    assert data["canonical"]["version"] == "1.0"


def test_schema_is_a_valid_2020_12_schema():
    from jsonschema import Draft202012Validator

    schema = load_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$id"] == "https://aoe-pack.dev/schemas/model-config.schema.json"
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["version", "tag", "runtime", "modelDir", "modelName"]


def test_importing_the_config_package_does_not_load_jsonschema():
    code = "import sys, aoe_pack.config; print('jsonschema' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert result.stdout.strip() == "False"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
_keys = st.sampled_from(
    ["version", "tag", "runtime", "source", "modelDir", "modelName", "files", "inputs",
     "targets", "encrypt", "modelSign", "modelParamName", "modelLabelName", "updateUrl",
     "modelPath", "encrypted", "modelId"]
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(doc=st.dictionaries(_keys, _json, max_size=10))
def test_any_json_config_gets_a_report_not_a_crash(tmp_path_factory, doc):
    path = tmp_path_factory.mktemp("fuzz") / "config.json"
    path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    report = validate_config(path)
    assert report.ok == (report.config is not None)
    assert all(v.line is not None for v in report.violations)


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=60))
def test_any_text_gets_a_report_not_a_crash(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "config.json"
    path.write_text(text, encoding="utf-8")
    assert isinstance(validate_config(path), ValidationReport)


@pytest.mark.parametrize("field", ["modelDir", "modelName"])
def test_a_name_longer_than_the_file_system_takes_is_a_finding_not_a_crash(
    field: str, tmp_path: Path
) -> None:
    """ENAMETOOLONG from the OS is "not found", as coverage-guided fuzzing first showed."""
    doc = {"version": "1.0.0", "tag": "tag_x", "runtime": "tflite", "source": "installed",
           "modelDir": ".", "modelName": "m.tflite"}  # fmt: skip
    doc[field] = "[" * 5000
    config = tmp_path / "config.json"
    config.write_text(json.dumps(doc))
    report = validate_config(config)
    assert [(v.pointer, v.message.endswith("not found") or "not found" in v.message)
            for v in report.violations] == [(f"/{field}", True)]  # fmt: skip
