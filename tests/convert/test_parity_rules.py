"""Parity cannot be fooled by values that compare false with everything."""

from __future__ import annotations

import numpy as np
import pytest

from aoe_pack.convert.api import Tolerance
from aoe_pack.convert.parity import check, measure
from aoe_pack.errors import ParityError

INPUTS = [{"x": np.zeros((1, 3), np.float32)} for _ in range(4)]


def reference(feed):
    return [np.array([[0.1, 0.7, 0.2]], np.float32)]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_non_finite_artifact_output_fails_parity(bad: float) -> None:
    def candidate(feed):
        return [np.full((1, 3), bad, np.float32)]

    parity = measure(reference, candidate, INPUTS, tolerance=Tolerance.absolute(1e-5))
    assert not parity.passed
    with pytest.raises(ParityError, match="exceeds"):
        check(parity, "t")


def test_the_same_non_finite_values_on_both_sides_agree() -> None:
    def both(feed):
        return [np.array([[np.nan, np.inf, 0.5]], np.float32)]

    parity = measure(both, both, INPUTS, tolerance=Tolerance.absolute(1e-5))
    assert parity.passed
    assert parity.max_abs == 0.0
