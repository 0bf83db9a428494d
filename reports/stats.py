"""Uncertainty: percentile bootstrap intervals for a mean and for a paired difference of means.

Undetermined values (None/NaN) are dropped before resampling and counted by the caller; a paired
difference uses only the questions both variants have a value for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def clean(values: Sequence[float | None]) -> np.ndarray:
    return np.array([v for v in values if v is not None and not math.isnan(v)], dtype=float)


def bootstrap_ci(
    values: Sequence[float], *, samples: int = 2000, seed: int = 0
) -> tuple[float, float] | None:
    """95% percentile interval of the mean; None for an empty sample."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return None
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(samples, x.size))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def paired_delta(
    a: Sequence[float | None], b: Sequence[float | None], *, samples: int = 2000, seed: int = 0
) -> dict | None:
    """Mean of (a - b) over questions where both are determined, with its paired bootstrap interval."""
    pairs = [
        (x, y)
        for x, y in zip(a, b)
        if x is not None and y is not None and not (math.isnan(x) or math.isnan(y))
    ]
    if not pairs:
        return None
    d = np.array([x - y for x, y in pairs])
    lo, hi = bootstrap_ci(d, samples=samples, seed=seed)
    return {"mean": float(d.mean()), "ci95": [lo, hi], "n": len(pairs), "significant": bool(lo > 0 or hi < 0)}
