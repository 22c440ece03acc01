"""The lock in .ci/constraints.txt is what this environment runs: the tested versions.

.ci/setup installs from it and users are told to; a package upgraded without
the lock (or the lock edited without a run of the suite) fails here.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

LOCK = Path(__file__).resolve().parents[1] / ".ci" / "constraints.txt"
CONVERSION_STACK = (
    "tensorflow-cpu", "keras", "numpy", "protobuf", "onnx", "onnxruntime", "ai-edge-litert",
    "tf2onnx", "onnxslim", "mnn", "ncnn", "pnnx", "onnx2tf", "tf-keras",
)  # fmt: skip


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins() -> dict[str, str]:
    pins = {}
    for raw in LOCK.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, _, pinned = line.partition("==")
            assert pinned, f"not an exact pin: {line!r}"
            pins[_canonical(name)] = pinned
    return pins


def test_every_pin_is_the_installed_version() -> None:
    wrong = {}
    for name, pinned in _pins().items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = "not installed"
        if installed != pinned:
            wrong[name] = f"lock {pinned}, installed {installed}"
    assert wrong == {}


def test_the_conversion_stack_is_locked() -> None:
    pins = _pins()
    assert [name for name in CONVERSION_STACK if name not in pins] == []
