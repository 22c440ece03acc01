"""Other tools' own verifiers, run on aoe-pack's output: the judges of interoperability.

They live in .venv-oracles, a venv of their own with the versions of
.ci/oracles.txt (``bash .ci/oracles``, which ``bash .ci/setup`` runs). A
missing oracle fails the test that needs it, naming that command: an interop
claim nobody checked is no claim.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".venv-oracles"


def _program(name: str) -> Path:
    folder = VENV / ("Scripts" if sys.platform == "win32" else "bin")
    path = folder / (f"{name}.exe" if sys.platform == "win32" else name)
    if not path.is_file():
        pytest.fail(
            f"{path} is missing: install the interop oracles with `bash .ci/setup` "
            "(or only them: `bash .ci/oracles`)",
            pytrace=False,
        )
    return path


def model_signing(*args: object) -> subprocess.CompletedProcess[str]:
    """``model_signing ARGS`` (OpenSSF model-signing, the version .ci/oracles.txt pins)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return subprocess.run(
        [str(_program("model_signing")), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def verify_key(folder: Path, signature: Path, public_key: Path) -> subprocess.CompletedProcess[str]:
    """``model_signing verify key FOLDER --signature SIG --public_key PUB``: exit 0 or 1."""
    return model_signing(
        "verify", "key", folder, "--signature", signature, "--public_key", public_key
    )
