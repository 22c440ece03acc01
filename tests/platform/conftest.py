"""``simulated``: each test runs once as on macOS and once as on Windows (see _simulated).

On macOS and on Windows themselves, the run as on that OS is a run on it; the
other is simulated where it can be (``as_on_macos``, ``as_on_windows``).
"""

from __future__ import annotations

from pathlib import Path

import _simulated
import pytest


@pytest.fixture(
    params=[
        pytest.param("macos", marks=_simulated.as_on_macos),
        pytest.param("windows", marks=_simulated.as_on_windows),
    ]
)
def simulated(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> str:
    """The OS simulated for this test, taken away after ``tmp_path`` exists."""
    if request.param == "windows":
        _simulated.windows(monkeypatch)
    else:
        _simulated.macos(monkeypatch)
    return str(request.param)
