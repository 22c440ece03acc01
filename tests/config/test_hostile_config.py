"""Config files built to exhaust validate: each refused by name, within the caps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _cli import aoe

from aoe_pack.config.validate import MAX_CONFIG_BYTES, MAX_CONFIG_VALUES


def _error(path: Path) -> dict[str, str]:
    error: dict[str, str] = aoe("validate", path, json=True).expect(1)["error"]
    return error


# An OS facility, not a dependency: Windows has no endless device file to hand
# in. The byte-cap test below runs everywhere.
@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero on this OS")
def test_endless_config_is_refused_at_its_cap() -> None:
    error = _error(Path("/dev/zero"))
    assert (error["code"], error["message"]) == (
        "config-parse",
        f"/dev/zero: larger than {MAX_CONFIG_BYTES} bytes; a config is a few kilobytes",
    )


def test_config_just_over_the_byte_cap_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(b'{"description": "' + b"x" * MAX_CONFIG_BYTES + b'"}')
    assert _error(path)["message"].endswith("a config is a few kilobytes")


def test_config_of_many_tiny_values_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "many.json"
    path.write_text(json.dumps({"a": [[]] * MAX_CONFIG_VALUES}))
    error = _error(path)
    assert error["code"] == "config-parse"
    assert error["message"] == (
        f"{path}: holds {MAX_CONFIG_VALUES + 3} JSON values; "
        f"a config holds at most {MAX_CONFIG_VALUES}"
    )
