"""``simulated``: each test runs once as on macOS and once as on Windows (see _simulated)."""

from __future__ import annotations

from pathlib import Path

import _simulated
import pytest


@pytest.fixture(params=["macos", "windows"])
def simulated(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> str:
    """The OS simulated for this test, taken away after ``tmp_path`` exists."""
    if request.param == "windows":
        _simulated.windows(monkeypatch)
    else:
        _simulated.macos(monkeypatch)
    return str(request.param)
