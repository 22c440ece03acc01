"""What a build prints: aoe-pack's own lines by default, frameworks' with -v, errors only with -q.

TensorFlow, absl, oneDNN and LiteRT write to file descriptors 1 and 2 from
native code and to sys.stdout/stderr from Python; only the installed command,
run in a subprocess, shows what reaches a user's terminal.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from _cli import NO_PASSWORD, Cli, Ran

REPO = Path(__file__).resolve().parents[2]
MNIST = REPO / "sample_models" / "mnist" / "config.json"
# What the frameworks print: absl's "I0000 00:00:..." lines, its pre-init banner,
# oneDNN's notice, TensorFlow's CPU-feature guard, LiteRT's XNNPACK line.
FRAMEWORK_LINE = re.compile(
    r"^([IWE]\d{4} \d\d:\d\d|WARNING: All log messages|.*oneDNN|.*cpu_feature_guard"
    r"|INFO: Created TensorFlow Lite)"
)


aoe = Cli(env=NO_PASSWORD, process=True)


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    prefix = tmp_path_factory.mktemp("keys") / "k"
    assert aoe("keygen", "--out", prefix).exit_code == 0
    return prefix.with_suffix(".key")


def build(key: Path, out: Path, before: tuple[str, ...] = (), after: tuple[str, ...] = ()) -> Ran:
    return aoe(
        *before, "build", MNIST, "--out", out, "--sign-key", key, "--no-encrypt",
        "--target", "tflite", "--target", "onnx", *after,
    )  # fmt: skip


def framework_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if FRAMEWORK_LINE.match(line)]


def test_a_build_shows_only_aoe_packs_own_lines(key: Path, tmp_path: Path) -> None:
    r = build(key, tmp_path / "m.aoe")
    assert r.exit_code == 0, r.stderr
    assert framework_lines(r.stderr) == []
    assert framework_lines(r.stdout) == []
    # What remains on stderr is one progress line per target.
    assert sorted(line.split(":")[0] for line in r.stderr.splitlines()) == [
        "onnx-basic",
        "tflite-fp32",
    ]


@pytest.mark.parametrize("where", ["before", "after"])
def test_verbose_shows_what_the_frameworks_say(key: Path, tmp_path: Path, where: str) -> None:
    flag = ("-v",) if where == "before" else ("--verbose",)
    r = build(key, tmp_path / "m.aoe", *((flag, ()) if where == "before" else ((), flag)))
    assert r.exit_code == 0, r.stderr
    assert framework_lines(r.stderr), r.stderr
    assert framework_lines(r.stdout) == []  # stdout stays ours even then


def test_quiet_leaves_nothing_on_success_and_the_error_on_failure(
    key: Path, tmp_path: Path
) -> None:
    r = build(key, tmp_path / "m.aoe", after=("-q",))
    assert r.exit_code == 0
    assert r.stderr == ""
    failed = aoe("-q", "build", MNIST, "--out", tmp_path / "x.aoe", "--sign-key", tmp_path / "no")
    assert failed.exit_code == 2  # --sign-key names no file
    assert failed.stderr.startswith("error: ")


def test_json_is_the_only_thing_on_stdout(key: Path, tmp_path: Path) -> None:
    r = build(key, tmp_path / "m.aoe", after=("--json",))
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [t["status"] for t in doc["targets"]] == ["ok", "ok"]
    assert r.stderr == ""
