"""Rough edges a first-time user met on the command line, one test each."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from aoe_pack.cli import cli


def _json(*args: str) -> tuple[int, dict[str, object]]:
    result = CliRunner().invoke(cli, [*args, "--json"])
    return result.exit_code, json.loads(result.stdout)


def test_bad_installed_version_is_named_as_the_option_given(tmp_path: Path) -> None:
    """Without --local-version the installed one stands for both: name what was typed."""
    code, doc = _json(
        *("client", "check", "--repo", str(tmp_path), "--trusted-root", "/dev/null"),
        *("--tag", "t", "--installed-version", "1.0", "--app-version", "1.0.0"),
        *("--device-id", "d"),
    )
    assert code == 2
    assert doc["error"] == {
        "code": "usage",
        "hint": "write MAJOR.MINOR.PATCH, e.g. 1.0.10 or 2.1.0-rc.1 (semver.org)",
        "message": "--installed-version '1.0' is not a semantic version",
        "type": "UsageError",
    }


def _config(folder: Path, **fields: object) -> Path:
    """A minimal valid config (a .tflite packed as it is), with ``fields`` changed."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "m.tflite").write_bytes(b"TFL3" + bytes(60))
    doc = {
        "version": "1.0.0",
        "tag": "tag_x",
        "runtime": "tflite",
        "modelDir": ".",
        "modelName": "m.tflite",
        **fields,
    }
    path = folder / "config.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def test_version_without_version_code_fails_validate_not_publish(tmp_path: Path) -> None:
    """1000.0.0 is semver, but manifest publish refuses it: validate (and build) say so first."""
    config = _config(tmp_path, version="1000.0.0")
    code, doc = _json("validate", str(config), "--no-model")
    assert code == 1
    assert doc["violations"] == [
        {
            "pointer": "/version",
            "line": 2,
            "column": 14,
            "message": "1000.0.0 has no versionCode: major 1000 is above 209; "
            "`aoe-pack manifest publish` would refuse it",
            "hint": "versionCode bounds: major 0-209, minor 0-99, patch 0-99 "
            "(docs/format.md, versionCode)",
        }
    ]
    code, doc = _json(
        "build", str(config), "--out", str(tmp_path / "b.aoe"), "--sign-key", "k", "--no-encrypt"
    )
    assert code == 1
    assert doc["error"]["message"].startswith(
        f"{config} has 1 problem(s); first: 1000.0.0 has no versionCode"
    )
    assert not (tmp_path / "b.aoe").exists()
