"""The parity rules, on outputs made to order (no framework involved).

Each test names a way a parity check can be wrong and builds the outputs
that would expose it: an error on one sample or one output only, a scale the
tolerance must follow, a classifier whose ranking changes within tolerance,
a source that ignores its input.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from aoe_pack.convert.api import Precision, Tolerance
from aoe_pack.convert.parity import compare

RNG = np.random.default_rng(7)
FP32 = Precision.FLOAT32
INT8 = Precision.INT8


def samples(n: int, *shapes: tuple[int, ...], scale: float = 1.0) -> list[list[np.ndarray]]:
    """n samples, each with one output per shape, varying from sample to sample."""
    return [[RNG.normal(0, scale, size=s).astype(np.float32) for s in shapes] for _ in range(n)]


def copy(outputs: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
    return [[o.copy() for o in sample] for sample in outputs]


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def test_an_error_on_the_first_of_several_samples_fails() -> None:
    expected = samples(5, (1, 10))
    got = copy(expected)
    got[0][0][0, 3] += 0.5
    parity = compare(expected, got, tolerance=FP32)
    assert not parity.passed
    assert parity.failure() is not None
    assert parity.failure().startswith("output 0: max abs error 5.00e-01")


def test_an_error_in_the_first_of_several_outputs_fails() -> None:
    expected = samples(4, (1, 6), (1, 3), (1, 2))
    got = copy(expected)
    for sample in got:
        sample[0] += 0.25
    parity = compare(expected, got, tolerance=FP32, names=["boxes", "scores", "count"])
    assert not parity.passed
    assert [o.within for o in parity.outputs] == [False, True, True]
    assert parity.failure().startswith("output 0 (boxes): max abs error 2.50e-01")


def test_float32_drift_is_judged_on_the_scale_of_the_outputs() -> None:
    """Outputs of 100-200 drift by a few ulps: far above 1e-5 absolute, far below 1e-4 relative."""
    expected = [[RNG.uniform(100, 200, size=(1, 64)).astype(np.float32)] for _ in range(4)]
    got = [[np.nextafter(e, np.float32(np.inf)) for e in sample] for sample in expected]
    got = [[np.nextafter(g, np.float32(np.inf)) for g in sample] for sample in got]
    parity = compare(expected, got, tolerance=FP32)
    assert parity.max_abs > 1e-5
    assert parity.passed, parity.failure()


def test_an_error_as_large_as_the_outputs_themselves_fails_even_int8() -> None:
    """A 100-class softmax whose values are all near 0.01: 0.02 of error is everything."""
    expected = [[softmax(RNG.normal(0, 0.5, size=(1, 100)))] for _ in range(8)]
    got = [[softmax(RNG.normal(0, 0.5, size=(1, 100)))] for _ in range(8)]
    parity = compare(expected, got, tolerance=INT8)
    assert not parity.passed
    assert parity.worst is not None
    assert parity.worst.relative > INT8.rtol


def test_a_classifier_whose_ranking_changes_within_tolerance_fails_on_top1() -> None:
    """Values within int8's tolerance, but the top class swapped on 3 of 8 samples."""
    expected, got = [], []
    for i in range(8):
        probs = np.full((1, 10), 0.05, np.float32)
        probs[0, 0], probs[0, 1] = 0.32, 0.28  # margin 0.04, well above a tie
        expected.append([probs])
        swapped = probs.copy()
        if i < 3:
            swapped[0, 0], swapped[0, 1] = 0.295, 0.305  # errors 0.025 < 1e-3 + 0.1 x 0.32
        got.append([swapped])
    parity = compare(expected, got, tolerance=INT8)
    (out,) = parity.outputs
    assert out.within
    assert out.scores
    assert out.decisive == 8
    assert out.top1 == pytest.approx(5 / 8)
    assert not parity.passed
    assert "top-1 class agrees on 62% of 8 decisive sample(s), below 85%" in parity.failure()


def test_ties_in_the_source_do_not_count_against_top1() -> None:
    expected, got = [], []
    for _ in range(4):
        probs = np.full((1, 4), 0.25, np.float32)  # no class stands out
        expected.append([probs])
        flipped = probs.copy()
        flipped[0, 2] += 1e-6
        got.append([flipped])
    parity = compare(expected, got, tolerance=FP32)
    (out,) = parity.outputs
    assert out.scores
    assert out.decisive == 0
    assert out.top1 is None


def test_config_can_call_logits_scores_and_probabilities_values() -> None:
    logits = samples(6, (1, 5), scale=3.0)
    parity = compare(logits, copy(logits), tolerance=FP32, kinds=["scores"])
    assert parity.outputs[0].scores
    assert parity.top1 == 1.0
    probs = [[softmax(o[0])] for o in logits]
    parity = compare(probs, copy(probs), tolerance=FP32, kinds=["values"])
    assert not parity.outputs[0].scores
    assert parity.top1 is None


def test_probability_rows_are_detected_as_scores() -> None:
    probs = [[softmax(RNG.normal(0, 2, size=(2, 7)))] for _ in range(3)]
    assert compare(probs, copy(probs), tolerance=FP32).outputs[0].scores
    values = samples(3, (2, 7))
    assert not compare(values, copy(values), tolerance=FP32).outputs[0].scores


def test_a_source_that_ignores_its_input_makes_parity_inconclusive() -> None:
    constant = np.full((1, 10), 0.1, np.float32)
    expected = [[constant, RNG.normal(size=(1, 3)).astype(np.float32)] for _ in range(8)]
    parity = compare(expected, copy(expected), tolerance=FP32, names=["probs", "features"])
    assert parity.passed
    assert parity.conclusive is False
    assert parity.inconclusive_outputs() == ["probs"]
    assert parity.to_dict()["conclusive"] is False


def test_one_sample_cannot_tell_whether_outputs_vary() -> None:
    expected = samples(1, (1, 4))
    parity = compare(expected, copy(expected), tolerance=FP32)
    assert parity.conclusive is None


def test_outputs_that_vary_are_conclusive() -> None:
    expected = samples(8, (1, 4))
    assert compare(expected, copy(expected), tolerance=FP32).conclusive is True


def test_all_zero_outputs_are_judged_by_the_absolute_floor() -> None:
    expected = [[np.zeros((1, 4), np.float32)] for _ in range(3)]
    got = copy(expected)
    got[1][0][0, 0] = 5e-7
    assert compare(expected, got, tolerance=FP32).passed  # atol 1e-6
    got[1][0][0, 0] = 5e-6
    parity = compare(expected, got, tolerance=FP32)
    assert not parity.passed
    assert math.isinf(parity.outputs[0].relative)


def test_a_plain_absolute_tolerance_keeps_its_meaning() -> None:
    expected = samples(3, (1, 4), scale=100.0)
    got = copy(expected)
    got[2][0][0, 1] += 2e-3
    assert not compare(expected, got, tolerance=Tolerance.absolute(1e-3)).passed
    assert compare(expected, got, tolerance=Tolerance.absolute(3e-3)).passed


def test_figures_recorded_in_the_bundle_are_decimal_strings() -> None:
    expected = samples(2, (1, 4))
    got = copy(expected)
    got[0][0][0, 0] += 1e-3
    doc = compare(expected, got, tolerance=FP32, names=["y"]).to_dict()
    assert doc["tolerance"] == {"rtol": "1.0e-04", "atol": "1.0e-06", "minTop1": "1.00"}
    (out,) = doc["outputs"]
    assert out["name"] == "y"
    assert isinstance(out["maxAbs"], str)
    assert isinstance(out["snrDb"], str)
    assert float(out["maxAbs"]) == pytest.approx(1e-3, rel=1e-2)


def test_a_different_number_of_outputs_is_a_parity_error() -> None:
    from aoe_pack.errors import ParityError

    expected = samples(2, (1, 4), (1, 2))
    got = [[s[0]] for s in copy(expected)]
    with pytest.raises(ParityError, match="the artifact returns 1 outputs, the source 2"):
        compare(expected, got, tolerance=FP32)
