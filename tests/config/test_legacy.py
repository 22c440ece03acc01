"""Legacy AoE configs: each dialect is understood, migrated, and migrates once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from _skips import needs_posix_modes

from aoe_pack.config import migrate_config, validate_config
from aoe_pack.config.legacy import map_legacy, repair_text
from aoe_pack.errors import ConfigValidationError, OutputError

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "legacy"
SAMPLES = REPO / "sample_models"

ANDROID = {
    "version": "1.0.1",
    "tag": "squeeze",
    "runtime": "ncnn",
    "source": "remote",
    "modelDir": "squeeze",
    "modelName": "squeezenet.param",
    "encrypt": True,
    "files": [
        {"path": "squeezenet.bin", "role": "weights"},
        {"path": "synset_words.txt", "role": "labels"},
    ],
}
IOS = {
    "version": "2.0.0",
    "tag": "tag_digits",
    "runtime": "mnn",
    "source": "installed",
    "modelDir": "ios",
    "modelName": "digits.bin",
    "updateURL": "https://models.example.com/digits/",
    "encrypt": True,
}
UNQUOTED = {
    "version": "0.0.1",
    "tag": "mnist",
    "runtime": "tensorflow",
    "source": "installed",
    "modelDir": "mnist",
    "modelName": "mnist_cnn.tflite",
    "encrypt": True,
}
CASES = {
    "android-model.config": (
        ANDROID,
        [
            ("/source", 4, "source: cloud", "source: remote"),
            ("/modelId", 5, "modelId", ""),
            ("/modelDir", 6, "", "tag: squeeze"),
            ("/modelSign", 8, "modelSign", ""),
            ("/modelParamName", 9, "modelParamName", "modelName"),
            ("/modelLabelName", 10, "modelLabelName", "files"),
        ],
    ),
    "ios-config.json": (
        IOS,
        [
            ("/modelPath", 6, "modelPath", ""),
            ("/modelName", 7, "digits", "digits.bin"),
            ("/updateUrl", 8, "updateUrl", "updateURL"),
            ("/sign", 9, "sign", ""),
            ("/encrypted", 10, "encrypted", "encrypt"),
            ("/encryptType", 11, "encryptType", ""),
        ],
    ),
    "unquoted-version.json": (
        UNQUOTED,
        [
            ("/version", 2, "0.0.1", '"0.0.1"'),
            ("/source", 4, "source: local", "source: installed"),
            ("/modelId", 5, "modelId", ""),
            ("/modelDir", 6, "", "tag: mnist"),
            ("/modelSign", 8, "modelSign", ""),
        ],
    ),
}


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    """A writable copy of the legacy fixtures."""
    return Path(shutil.copytree(FIXTURES, tmp_path / "legacy"))


def canonical_text(doc: dict[str, object]) -> str:
    return json.dumps(doc, indent=2) + "\n"


def write(folder: Path, doc: dict[str, object], *files: str, name: str = "config.json") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for file in files:
        (folder / file).parent.mkdir(parents=True, exist_ok=True)
        (folder / file).write_bytes(b"x")
    (folder / name).write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return folder / name


# --- the three dialects -------------------------------------------------------------


@pytest.mark.parametrize("name", CASES)
def test_legacy_config_validates_with_a_notice_per_legacy_spelling(name):
    expected, notices = CASES[name]
    report = validate_config(FIXTURES / name)
    assert report.violations == ()
    assert report.canonical == expected
    assert [(n.pointer, n.line, n.legacy, n.canonical) for n in report.notices] == notices


@pytest.mark.parametrize("name", CASES)
def test_migrate_writes_canonical_json_that_validates_clean(legacy, name):
    expected, notices = CASES[name]
    path = legacy / name
    report = migrate_config(path)
    assert len(report.notices) == len(notices)
    assert path.read_text(encoding="utf-8") == canonical_text(expected)
    again = validate_config(path)
    assert (again.ok, again.notices) == (True, ())
    assert again.config == report.config


@pytest.mark.parametrize("name", CASES)
def test_migrate_is_idempotent(legacy, name):
    path = legacy / name
    migrate_config(path)
    first = path.read_bytes()
    stamp = path.stat().st_mtime_ns
    report = migrate_config(path)
    assert report.notices == ()
    assert path.read_bytes() == first
    assert path.stat().st_mtime_ns == stamp  # an unchanged file is not rewritten


def test_android_ncnn_param_is_the_model_and_bin_the_weights():
    config = validate_config(FIXTURES / "android-model.config").config
    assert config is not None
    assert [(f.path, f.role) for f in config.files] == [
        ("squeezenet.param", "model"),
        ("squeezenet.bin", "weights"),
        ("synset_words.txt", "labels"),
    ]


def test_notices_explain_what_replaced_md5():
    report = validate_config(FIXTURES / "android-model.config")
    [sign] = [n for n in report.notices if n.pointer == "/modelSign"]
    assert "not a signature" in sign.message
    assert "aoe-pack build --sign-key" in sign.message


def test_canonical_sample_migrates_to_the_same_bytes(tmp_path):
    folder = Path(shutil.copytree(SAMPLES / "mnist", tmp_path / "mnist"))
    before = (folder / "config.json").read_bytes()
    report = migrate_config(folder / "config.json")
    assert report.notices == ()
    assert (folder / "config.json").read_bytes() == before


# --- where migrate writes ---------------------------------------------------------------


def test_migrate_to_out_leaves_the_original(legacy):
    source = legacy / "ios-config.json"
    before = source.read_bytes()
    migrate_config(source, legacy / "model.json")
    assert source.read_bytes() == before
    assert (legacy / "model.json").read_text(encoding="utf-8") == canonical_text(IOS)


def test_migrate_to_a_parent_folder_rebases_model_dir(legacy):
    out = legacy.parent / "model.json"
    report = migrate_config(legacy / "unquoted-version.json", out)
    assert json.loads(out.read_text(encoding="utf-8"))["modelDir"] == "legacy/mnist"
    assert report.config is not None
    assert report.config.source_path == out.resolve()
    assert validate_config(out).ok


def test_migrate_refuses_a_folder_that_would_need_dotdot(legacy):
    (legacy / "elsewhere").mkdir()
    with pytest.raises(OutputError, match="would have to leave the folder"):
        migrate_config(legacy / "ios-config.json", legacy / "elsewhere" / "model.json")
    assert not (legacy / "elsewhere" / "model.json").exists()


def test_migrate_refuses_an_invalid_config_and_writes_nothing(tmp_path):
    path = write(tmp_path, {"version": "0.1", "modelSign": "x"})
    before = path.read_bytes()
    with pytest.raises(ConfigValidationError, match="config not migrated") as info:
        migrate_config(path)
    assert len(info.value.violations) >= 1
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]  # no temp file left


@needs_posix_modes
def test_migrate_keeps_the_file_mode(legacy):
    path = legacy / "ios-config.json"
    path.chmod(0o640)
    migrate_config(path)
    assert path.stat().st_mode & 0o777 == 0o640


# --- single mappings --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "canonical"),
    [("local", "installed"), ("cloud", "remote"), ("LOCAL", "installed"), ("asset", "installed")],
)
def test_android_source_values(source, canonical):
    mapping = map_legacy({"source": source, "modelId": 3})
    assert mapping.data["source"] == canonical
    assert any(n.pointer == "/source" for n in mapping.notices)


def test_source_typo_in_a_canonical_config_is_not_silently_fixed(tmp_path):
    doc = {"version": "1.0.0", "tag": "t", "runtime": "onnx", "source": "remte"}
    path = write(tmp_path, {**doc, "modelDir": ".", "modelName": "m.onnx"}, "m.onnx")
    [violation] = validate_config(path).violations
    assert violation.pointer == "/source"
    assert violation.hint == "did you mean 'remote'? allowed: installed, remote"


def test_map_legacy_does_not_change_its_input():
    data = {"modelParamName": "a.param", "modelName": "a.bin", "files": [], "modelLabelName": "l"}
    snapshot = json.loads(json.dumps(data))
    map_legacy(data)
    assert data == snapshot


def test_canonical_config_has_no_notices():
    doc = json.loads((SAMPLES / "squeezenet" / "config.json").read_text(encoding="utf-8"))
    mapping = map_legacy(doc)
    assert (mapping.data, mapping.notices, mapping.origins) == (doc, (), {})


def test_disagreeing_spellings_are_a_violation_at_the_legacy_key(tmp_path):
    doc = {**IOS, "updateUrl": "https://old.example/"}
    path = write(tmp_path / "cfg", doc, "ios/digits.bin")
    [violation] = validate_config(path).violations
    assert (violation.pointer, violation.line) == ("/updateUrl", 10)
    assert violation.hint == "keep only updateURL"


def test_agreeing_spellings_drop_the_legacy_one(tmp_path):
    doc = {**IOS, "updateUrl": IOS["updateURL"]}
    report = validate_config(write(tmp_path / "cfg", doc, "ios/digits.bin"))
    assert report.ok
    assert [(n.pointer, n.canonical) for n in report.notices] == [("/updateUrl", "")]


def test_violation_in_a_renamed_key_is_placed_where_it_was_written(tmp_path):
    doc = {k: v for k, v in IOS.items() if k != "updateURL"}
    doc["updateUrl"] = "ftp://models.example/"
    path = write(tmp_path / "cfg", doc, "ios/digits.bin")
    [violation] = validate_config(path).violations
    assert (violation.pointer, violation.line) == ("/updateURL", 9)


def test_missing_ncnn_weights_are_reported_at_the_legacy_model_name(tmp_path):
    doc = {"version": "1.0.0", "runtime": "ncnn", "modelId": 1, "modelDir": "m",
           "modelName": "net.bin", "modelParamName": "net.param"}  # fmt: skip
    path = write(tmp_path, doc, "m/net.param")
    [violation] = validate_config(path).violations
    assert (violation.pointer, violation.line) == ("/files/0/path", 6)


def test_ios_config_without_runtime_asks_for_one(tmp_path):
    doc = {k: v for k, v in IOS.items() if k != "runtime"}
    doc["sign"] = "abc"
    [violation] = validate_config(write(tmp_path, doc, "ios/digits.bin")).violations
    assert (violation.pointer, violation.message) == ("", "missing required key 'runtime'")
    assert violation.hint == 'add "runtime": one of tflite, onnx, ort, mnn, ncnn, pytorch, tengine'


def test_ios_runtime_follows_from_an_unambiguous_extension():
    mapping = map_legacy({"tag": "t", "modelName": "digits.tflite", "sign": "abc"})
    assert mapping.data["runtime"] == "tflite"
    assert mapping.data["modelName"] == "digits.tflite"


def test_ios_relative_model_path_becomes_model_dir():
    mapping = map_legacy({"tag": "t", "modelPath": "models/digits"})
    assert mapping.data["modelDir"] == "models/digits"
    assert "modelPath" not in mapping.data


def test_ios_encrypted_number_becomes_a_boolean():
    assert map_legacy({"encrypted": 0}).data == {"encrypt": False}


def test_android_tag_falls_back_to_model_id():
    mapping = map_legacy({"modelId": "16", "modelDir": "."})
    assert mapping.data["tag"] == "model-16"


def test_android_model_dir_naming_its_own_folder_becomes_dot(tmp_path):
    doc = {"version": "1.0.0", "runtime": "tensorflow", "source": "local",
           "modelDir": "mnist", "modelName": "mnist.tflite"}  # fmt: skip
    path = write(tmp_path / "assets" / "mnist", doc, "mnist.tflite", name="model.config")
    report = validate_config(path)
    assert report.ok
    assert report.canonical is not None
    assert (report.canonical["modelDir"], report.canonical["tag"]) == (".", "mnist")


# --- the unquoted version repair -----------------------------------------------------


def test_repair_quotes_only_bare_dotted_versions():
    text = '{"version": 0.0.1, "minAppVersion": 2.3.4-rc.1, "size": 1.5}'
    repair = repair_text(text)
    assert repair.text == '{"version": "0.0.1", "minAppVersion": "2.3.4-rc.1", "size": 1.5}'
    assert repair.values == ((12, "0.0.1"), (38, "2.3.4-rc.1"))


def test_columns_after_a_repaired_value_are_those_of_the_file(tmp_path):
    text = '{"version": 0.0.1, "tag": "bad tag", "runtime": "tflite", "modelDir": ".", '
    text += '"modelName": "m.tflite", "modelId": 1}'
    path = tmp_path / "model.config"
    path.write_text(text, encoding="utf-8")
    (tmp_path / "m.tflite").write_bytes(b"m")
    [violation] = validate_config(path).violations
    assert (violation.pointer, violation.line, violation.column) == ("/tag", 1, 27)
    assert text[violation.column - 1 :].startswith('"bad tag"')


def test_text_still_broken_after_repair_reports_what_is_left_where_the_file_has_it(tmp_path):
    path = tmp_path / "model.config"
    path.write_text('{"version": 0.0.1,,}', encoding="utf-8")
    [violation] = validate_config(path).violations
    assert (violation.line, violation.column) == (1, 19)  # the second comma
    assert violation.message.startswith("not valid JSON: Expecting property name")


# --- iOS updateUrl: the repository address -----------------------------------------------


def test_ios_update_url_is_the_configs_update_url(legacy):
    config = validate_config(legacy / "ios-config.json").config
    assert config is not None
    assert config.update_url == "https://models.example.com/digits/"
    assert config.canonical["updateURL"] == "https://models.example.com/digits/"


def test_ios_update_url_over_cleartext_http_is_placed_where_it_was_written(tmp_path):
    doc = {k: v for k, v in IOS.items() if k != "updateURL"}
    doc["updateUrl"] = "http://upgrade.example.com/aoe"  # AoE's upgrade server, over HTTP
    [violation] = validate_config(write(tmp_path / "cfg", doc, "ios/digits.bin")).violations
    assert (violation.pointer, violation.line) == ("/updateURL", 9)
    assert violation.message == (
        'updateURL "http://upgrade.example.com/aoe" uses http:// to a host that is not '
        "loopback; devices refuse cleartext HTTP"
    )
