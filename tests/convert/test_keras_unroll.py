"""Recurrent layers unrolled for int8 calibration: the same function, no loop left."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from aoe_pack.convert.frameworks import import_tensorflow
from aoe_pack.convert.keras_unroll import unrolled


@pytest.fixture(scope="module")
def keras() -> Any:
    import_tensorflow()
    import keras

    keras.utils.set_random_seed(11)
    return keras


def test_lstm_and_bidirectional_gru_unroll_to_the_same_outputs(keras: Any) -> None:
    x = keras.Input(shape=(7, 3), name="sequence")
    y = keras.layers.LSTM(5, return_sequences=True)(x)
    y = keras.layers.Bidirectional(keras.layers.GRU(4))(y)
    model = keras.Model(x, keras.layers.Dense(2)(y))
    copy = unrolled(model)
    assert copy is not None
    assert copy.layers[1].unroll
    assert copy.layers[2].forward_layer.unroll
    assert copy.layers[2].backward_layer.unroll
    assert not model.layers[1].unroll  # the original is left as it was
    sample = np.random.default_rng(0).uniform(-1, 1, (4, 7, 3)).astype(np.float32)
    np.testing.assert_allclose(copy(sample), model(sample), rtol=1e-5, atol=1e-6)


def test_a_nested_recurrent_model_is_unrolled_too(keras: Any) -> None:
    inner = keras.Sequential([keras.Input(shape=(5, 2)), keras.layers.SimpleRNN(3)], name="inner")
    x = keras.Input(shape=(5, 2))
    model = keras.Model(x, keras.layers.Dense(1)(inner(x)))
    copy = unrolled(model)
    assert copy is not None
    assert copy.get_layer("inner").layers[0].unroll
    sample = np.ones((1, 5, 2), np.float32)
    np.testing.assert_allclose(copy(sample), model(sample), rtol=1e-5, atol=1e-6)


def test_a_model_without_recurrent_layers_is_left_alone(keras: Any) -> None:
    x = keras.Input(shape=(4,))
    assert unrolled(keras.Model(x, keras.layers.Dense(2)(x))) is None
