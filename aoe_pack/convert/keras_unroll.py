"""Keras recurrent layers written out step by step, for full-integer calibration.

TensorFlow Lite turns a Keras RNN's time loop (LSTM, GRU, SimpleRNN, and the
same inside Bidirectional) into a ``WHILE`` op. Its int8 calibrator cannot
record the ranges of the tensors inside that loop and dies with SIGSEGV (the
same happens in ai-edge-quantizer, which stops at the loop's body). With a
known number of steps, Keras can write the loop out instead (``unroll=True``):
the same function of the same weights, in straight-line ops that the
calibrator measures and that TFLite has int8 kernels for.

Only the int8 target uses it; the other variants keep the loop, which is
smaller. Parity then judges the unrolled artifact like any other.
"""

from __future__ import annotations

from typing import Any


def _unroll(config: Any) -> int:
    """Set every ``unroll`` in a Keras config to True, in place; how many were False."""
    count = 0
    if isinstance(config, dict):
        if config.get("unroll") is False:
            config["unroll"] = True
            count += 1
        for value in config.values():
            count += _unroll(value)
    elif isinstance(config, list):
        for value in config:
            count += _unroll(value)
    return count


def unrolled(model: Any) -> Any | None:
    """A copy of a Keras model with its recurrent layers unrolled; None if it has none.

    None as well when the model cannot be rebuilt from its config (a subclassed
    model without ``get_config``, a custom layer that fails to rebuild): the
    caller then keeps the model as it is. Call it holding TensorFlow's lock.
    """
    try:
        config = model.get_config()
    except Exception:  # noqa: BLE001 - a model Keras cannot describe stays as it is
        return None
    if not _unroll(config):
        return None
    try:
        copy = type(model).from_config(config)
        copy.set_weights(model.get_weights())
    except Exception:  # noqa: BLE001 - a custom layer that does not rebuild: keep the loop
        return None
    return copy
