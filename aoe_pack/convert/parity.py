"""Run a source model and a converted artifact on the same inputs; compare.

Inputs are the config's sample inputs or seeded random ones drawn within the
declared ranges (default [0, 1]); dynamic dimensions (-1) become 1. Each
output pair is compared in the source's layout; ``top1`` is reported when the
first output looks like a classifier (last dimension > 1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aoe_pack.convert.api import Array, Parity, Runner, SourceModel
from aoe_pack.errors import ParityError

DEFAULT_SAMPLES = 8
DEFAULT_SEED = 20261127

_NUMPY_DTYPES = {
    "float32": "float32",
    "float16": "float16",
    "int8": "int8",
    "uint8": "uint8",
    "int32": "int32",
    "int64": "int64",
    "bool": "bool",
}


def sample_inputs(
    source: SourceModel, *, samples: int = DEFAULT_SAMPLES, seed: int = DEFAULT_SEED
) -> list[dict[str, Array]]:
    """Seeded inputs within each declared input's range."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out: list[dict[str, Array]] = []
    for _ in range(samples):
        feed: dict[str, Array] = {}
        for spec in source.inputs:
            shape = tuple(1 if d < 0 else d for d in spec.shape)
            low, high = spec.value_range or (0.0, 1.0)
            dtype = np.dtype(_NUMPY_DTYPES[spec.dtype])
            if dtype.kind == "f":
                feed[spec.name] = rng.uniform(low, high, size=shape).astype(dtype)
            elif dtype.kind == "b":
                feed[spec.name] = rng.integers(0, 2, size=shape).astype(dtype)
            else:
                feed[spec.name] = rng.integers(int(low), int(high) + 1, size=shape).astype(dtype)
        out.append(feed)
    return out


def measure(
    reference: Runner,
    candidate: Runner,
    inputs: Sequence[Mapping[str, Array]],
    *,
    tolerance: float,
) -> Parity:
    """Max/mean absolute error over every output element, and top-1 agreement."""
    import numpy as np

    max_abs, total, count, agree, classifier = 0.0, 0.0, 0, 0, False
    for feed in inputs:
        expected = [np.asarray(x, dtype=np.float64) for x in reference(feed)]
        got = [np.asarray(x, dtype=np.float64) for x in candidate(feed)]
        if len(expected) != len(got):
            raise ParityError(
                f"the artifact returns {len(got)} outputs, the source {len(expected)}"
            )
        for e, g in zip(expected, got, strict=True):
            if e.size != g.size:
                raise ParityError(f"output of {g.shape} does not match the source's {e.shape}")
            e_flat, g_flat = e.reshape(-1), g.reshape(-1)
            with np.errstate(invalid="ignore"):  # inf - inf: handled just below
                diff = np.abs(e_flat - g_flat)
            # NaN compares false with everything, so max() would skip it: a value
            # that is not finite on one side only (or differs) is an infinite error.
            same_nonfinite = ~np.isfinite(e_flat) & (
                (e_flat == g_flat) | (np.isnan(e_flat) & np.isnan(g_flat))
            )
            diff = np.where(same_nonfinite, 0.0, diff)
            diff = np.where(np.isnan(diff), np.inf, diff)
            max_abs = max(max_abs, float(diff.max(initial=0.0)))
            total += float(diff.sum())
            count += diff.size
        first_e, first_g = expected[0], got[0].reshape(expected[0].shape)
        if first_e.ndim >= 1 and first_e.shape[-1] > 1:
            classifier = True
            agree += int(np.array_equal(first_e.argmax(-1), first_g.argmax(-1)))
    return Parity(
        max_abs=max_abs,
        mean_abs=total / count if count else 0.0,
        top1=agree / len(inputs) if classifier and inputs else None,
        samples=len(inputs),
        tolerance=tolerance,
    )


def check(parity: Parity, target_name: str) -> None:
    """Raise ParityError when ``parity`` exceeds its tolerance."""
    if not parity.passed:
        raise ParityError(
            f"{target_name}: max abs error {parity.max_abs:.3e} exceeds the tolerance "
            f"{parity.tolerance:.1e} (mean {parity.mean_abs:.3e})",
            hint='raise this target\'s "tolerance" in the config if the loss is acceptable, '
            "or choose a less aggressive variant",
        )


def as_array_dict(values: Mapping[str, Any]) -> dict[str, Array]:
    """Sample inputs from a config/npz mapping, as numpy arrays."""
    import numpy as np

    return {k: np.asarray(v) for k, v in values.items()}
