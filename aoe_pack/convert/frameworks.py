"""The conversion frameworks, imported lazily and with their home-directory writes contained.

Frameworks write into the home directory when imported: onnxruntime a device
id and an SQLite database under ``~/.cache/Microsoft``, Keras
``~/.keras/keras.json``. :func:`import_onnxruntime` and
:func:`import_tensorflow` point them at a private temporary folder during the
import; every module of :mod:`aoe_pack.convert` imports these frameworks
through this one. Importing TensorFlow takes seconds, so nothing imports it
before a conversion needs it.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from aoe_pack.errors import MissingExtraError

EXTRA_HINT = "install the conversion extra: pip install 'aoe-pack[convert]'"

TF_LOCK = threading.RLock()
"""Serialises TensorFlow graph work (loading, tracing, converting) across build threads."""
_IMPORT_LOCK = threading.RLock()


@functools.cache
def _scratch() -> Path:
    path = Path(tempfile.mkdtemp(prefix="aoe-pack-frameworks-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def framework_scratch() -> Path:
    """A private folder, removed at exit, standing in for the caches frameworks write."""
    with _IMPORT_LOCK:
        return _scratch()


@contextlib.contextmanager
def _environ(values: Mapping[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _import(name: str, env: Mapping[str, str]) -> ModuleType:
    with _IMPORT_LOCK:
        if name in sys.modules:
            return sys.modules[name]
        try:
            with _environ(env):
                __import__(name)
        except ImportError as e:
            raise MissingExtraError(f"{name} is not installed", hint=EXTRA_HINT) from e
        return sys.modules[name]


def import_onnxruntime() -> ModuleType:
    """onnxruntime, its device id and usage database kept out of the home directory."""
    # It resolves $XDG_CACHE_HOME (else ~/.cache) once, when the library loads.
    return _import("onnxruntime", {"XDG_CACHE_HOME": str(framework_scratch() / "cache")})


def import_tensorflow() -> ModuleType:
    """TensorFlow, with Keras on its TensorFlow backend and its config file kept out of ~."""
    env = {"KERAS_BACKEND": "tensorflow"}
    if "KERAS_HOME" not in os.environ:  # a user's explicit choice stands
        env["KERAS_HOME"] = str(framework_scratch() / "keras")
    tf = _import("tensorflow", env)
    _import("keras", env)
    return tf


def import_onnx() -> ModuleType:
    """The onnx package (no home-directory side effects)."""
    return _import("onnx", {})


def litert_interpreter() -> Any:
    """LiteRT's Interpreter class (TensorFlow Lite without TensorFlow)."""
    module = _import("ai_edge_litert.interpreter", {})
    return module.Interpreter


def import_numpy() -> ModuleType:
    """numpy, which every loader and runner needs and the base install does not have."""
    return _import("numpy", {})
