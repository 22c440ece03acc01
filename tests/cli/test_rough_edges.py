"""Rough edges a first-time user met on the command line, one test each."""

from __future__ import annotations

from pathlib import Path

from _cli import aoe


def test_bad_installed_version_is_named_as_the_option_given(tmp_path: Path) -> None:
    """Without --local-version the installed one stands for both: name what was typed."""
    r = aoe(
        *("client", "check", "--repo", str(tmp_path), "--trusted-root", "/dev/null"),
        *("--tag", "t", "--installed-version", "1.0", "--app-version", "1.0.0"),
        *("--device-id", "d"),
        json=True,
    )
    assert r.exit_code == 2
    assert r.doc["error"] == {
        "code": "usage",
        "hint": "write MAJOR.MINOR.PATCH, e.g. 1.0.10 or 2.1.0-rc.1 (semver.org)",
        "message": "--installed-version '1.0' is not a semantic version",
        "type": "UsageError",
    }
