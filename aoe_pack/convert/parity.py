"""Compare an artifact's outputs with its source's, on the same inputs.

**Inputs.** The config's ``sampleInputs`` or seeded random samples drawn within
each input's declared ``range``; without one, the default for its dtype
(:data:`DEFAULT_RANGES`). Dynamic dimensions (-1) become 1.

**The rules** (documented for users in ``docs/converting.md``):

* Every output is judged on its own, on the scale of the source's values: it
  passes when its largest absolute error over every element of every sample is
  at most ``atol + rtol * peak``, where ``peak`` is the largest magnitude the
  source produced for that output. A NaN or infinity on one side only is an
  infinite error.
* An output is *class scores* when the config says so (``"kind": "scores"``)
  or, unless it says ``"kind": "values"``, when each row along its last axis
  is a probability distribution over two or more classes (values in [0, 1]
  summing to 1). For class scores, the artifact must pick the source's top-1
  class on at least ``min_top1`` of the *decisive* rows: those where the
  source's margin between its first and second class exceeds
  ``atol + 0.001 * peak``, so that a numerical tie in the source cannot count
  as a disagreement. Values within tolerance can still change the ranking
  where the margin is small; that is what this check catches.
* An output whose source values barely change over the samples (their range
  per element stays below 0.1 % of the peak) makes the check *inconclusive*:
  an artifact that ignored its input would pass. It is reported, not failed;
  real ``sampleInputs`` are the remedy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from aoe_pack.config.model import TensorSpec
from aoe_pack.convert.api import Array, OutputParity, Parity, Runner, SourceModel, Tolerance
from aoe_pack.errors import ParityError

DEFAULT_SAMPLES = 8
DEFAULT_SEED = 20261127

DEFAULT_RANGES: Mapping[str, tuple[float, float]] = {
    "float16": (0.0, 1.0),
    "float32": (0.0, 1.0),
    "float64": (0.0, 1.0),
    "uint8": (0.0, 255.0),
    "int8": (-128.0, 127.0),
    "int32": (0.0, 9.0),
    "int64": (0.0, 9.0),
    "bool": (0.0, 1.0),
}
"""Where seeded samples are drawn when an input declares no ``range``."""

VARIATION = 1e-3
"""An output varies when some element's range over the samples exceeds this share of its peak."""

_SCORE_SLACK = 1e-3


def input_range(spec: TensorSpec) -> tuple[float, float]:
    """The declared range of an input, else the default for its dtype."""
    return spec.value_range or DEFAULT_RANGES.get(spec.dtype, (0.0, 1.0))


def sample_inputs(
    source: SourceModel, *, samples: int = DEFAULT_SAMPLES, seed: int = DEFAULT_SEED
) -> list[dict[str, Array]]:
    """Seeded inputs within each input's range (declared, or the dtype's default)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out: list[dict[str, Array]] = []
    for _ in range(samples):
        feed: dict[str, Array] = {}
        for spec in source.inputs:
            shape = tuple(1 if d < 0 else d for d in spec.shape)
            low, high = input_range(spec)
            dtype = np.dtype(spec.dtype)
            if dtype.kind == "f":
                feed[spec.name] = rng.uniform(low, high, size=shape).astype(dtype)
            elif dtype.kind == "b":
                feed[spec.name] = rng.integers(0, 2, size=shape).astype(dtype)
            else:
                feed[spec.name] = rng.integers(int(low), int(high) + 1, size=shape).astype(dtype)
        out.append(feed)
    return out


def _looks_like_scores(values: list[Any]) -> bool:
    import numpy as np

    if not values or values[0].ndim < 1 or values[0].shape[-1] < 2:
        return False
    for v in values:
        if not np.all(np.isfinite(v)) or v.min() < -_SCORE_SLACK or v.max() > 1 + _SCORE_SLACK:
            return False
        if not np.allclose(v.sum(axis=-1), 1.0, atol=_SCORE_SLACK * v.shape[-1]):
            return False
    return True


def _top1(expected: list[Any], got: list[Any], tie: float) -> tuple[float | None, int]:
    """Agreement of the arg-max over the rows where the source's margin exceeds ``tie``."""
    import numpy as np

    agree = decisive = 0
    for e, g in zip(expected, got, strict=True):
        rows_e = e.reshape(-1, e.shape[-1])
        rows_g = g.reshape(-1, e.shape[-1])
        top2 = np.sort(rows_e, axis=-1)[:, -2:]
        margin = top2[:, 1] - top2[:, 0]
        mask = margin > tie
        decisive += int(mask.sum())
        agree += int((rows_e.argmax(-1) == rows_g.argmax(-1))[mask].sum())
    return (agree / decisive if decisive else None), decisive


def _one_output(
    name: str,
    expected: list[Any],
    got: list[Any],
    tolerance: Tolerance,
    kind: str | None,
) -> OutputParity:
    import numpy as np

    max_abs, total, count = 0.0, 0.0, 0
    signal, noise, peak = 0.0, 0.0, 0.0
    for e, g in zip(expected, got, strict=True):
        with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: handled just below
            diff = np.abs(e - g)
        # NaN compares false with everything, so max() would skip it: a value
        # that is not finite on one side only (or differs) is an infinite error.
        same_nonfinite = ~np.isfinite(e) & ((e == g) | (np.isnan(e) & np.isnan(g)))
        diff = np.where(same_nonfinite, 0.0, diff)
        diff = np.where(np.isnan(diff), np.inf, diff)
        finite_e = np.where(np.isfinite(e), e, 0.0)
        max_abs = max(max_abs, float(diff.max(initial=0.0)))
        total += float(diff.sum())
        count += diff.size
        peak = max(peak, float(np.abs(finite_e).max(initial=0.0)))
        with np.errstate(over="ignore", invalid="ignore"):
            signal += float(np.square(finite_e).sum())
            noise += float(np.square(np.where(same_nonfinite, 0.0, diff)).sum())
    if noise == 0:
        snr = math.inf
    elif math.isfinite(noise) and signal > 0:
        snr = 10 * math.log10(signal / noise)
    else:
        snr = -math.inf
    varies: bool | None = None
    if len(expected) >= 2:
        stacked = np.stack([np.where(np.isfinite(e), e, 0.0) for e in expected])
        spread = float(np.ptp(stacked, axis=0).max(initial=0.0))
        varies = peak > 0 and spread > VARIATION * peak
    allowed = tolerance.allowed(peak)
    scores = kind == "scores" or (kind is None and _looks_like_scores(expected))
    tie = tolerance.atol + VARIATION * peak
    top1, decisive = _top1(expected, got, tie) if scores else (None, 0)
    return OutputParity(
        name=name,
        max_abs=max_abs,
        mean_abs=total / count if count else 0.0,
        peak=peak,
        allowed=allowed,
        snr_db=snr,
        varies=varies,
        scores=scores,
        top1=top1,
        decisive=decisive,
    )


def compare(
    expected: Sequence[Sequence[Array]],
    got: Sequence[Sequence[Array]],
    *,
    tolerance: Tolerance,
    names: Sequence[str] = (),
    kinds: Sequence[str | None] = (),
) -> Parity:
    """Parity of ``got`` against ``expected``: per sample, the outputs in order.

    ``names`` and ``kinds`` describe the outputs (by position; missing entries
    mean no name and automatic detection of class scores).
    """
    import numpy as np

    if len(expected) != len(got):
        raise ParityError(f"the artifact ran {len(got)} samples, the source {len(expected)}")
    if not expected:
        return Parity(samples=0, tolerance=tolerance, outputs=())
    count = len(expected[0])
    per_output_e: list[list[Any]] = [[] for _ in range(count)]
    per_output_g: list[list[Any]] = [[] for _ in range(count)]
    for i, (e_outs, g_outs) in enumerate(zip(expected, got, strict=True)):
        if len(g_outs) != len(e_outs):
            raise ParityError(
                f"the artifact returns {len(g_outs)} outputs, the source {len(e_outs)}"
            )
        for k, (e, g) in enumerate(zip(e_outs, g_outs, strict=True)):
            e64 = np.asarray(e, dtype=np.float64)
            g64 = np.asarray(g, dtype=np.float64)
            if e64.size != g64.size:
                raise ParityError(
                    f"sample {i}, output {k}: the artifact's shape {list(g64.shape)} does not "
                    f"match the source's {list(e64.shape)}"
                )
            per_output_e[k].append(e64)
            per_output_g[k].append(g64.reshape(e64.shape))
    outputs = tuple(
        _one_output(
            names[k] if k < len(names) else "",
            per_output_e[k],
            per_output_g[k],
            tolerance,
            kinds[k] if k < len(kinds) else None,
        )
        for k in range(count)
    )
    return Parity(samples=len(expected), tolerance=tolerance, outputs=outputs)


def run_all(runner: Runner, inputs: Sequence[Mapping[str, Array]]) -> list[list[Array]]:
    """``runner`` on every sample: per sample, its outputs in order."""
    return [list(runner(feed)) for feed in inputs]


def measure(
    reference: Runner,
    candidate: Runner,
    inputs: Sequence[Mapping[str, Array]],
    *,
    tolerance: Tolerance,
    names: Sequence[str] = (),
    kinds: Sequence[str | None] = (),
) -> Parity:
    """Run both in this process on ``inputs`` and compare (tests and plugins' own checks)."""
    return compare(
        run_all(reference, inputs),
        run_all(candidate, inputs),
        tolerance=tolerance,
        names=names,
        kinds=kinds,
    )


def check(parity: Parity, target_name: str) -> None:
    """Raise ParityError when ``parity`` fails its tolerance."""
    why = parity.failure()
    if why is not None:
        raise ParityError(
            f"{target_name}: {why}",
            hint='choose a less aggressive variant, or loosen this target\'s "rtol", '
            '"atol" or "minTop1" in the config if the loss is acceptable',
        )


def as_array_dict(values: Mapping[str, Any]) -> dict[str, Array]:
    """Sample inputs from a config/npz mapping, as numpy arrays."""
    import numpy as np

    return {k: np.asarray(v) for k, v in values.items()}
