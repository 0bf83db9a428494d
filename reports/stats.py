"""Uncertainty: percentile bootstrap intervals for a mean and for a paired difference of means, and
the exact McNemar test for paired 0/1 outcomes.

Undetermined values (None/NaN) are dropped before resampling and counted by the caller; a paired
difference uses only the questions both variants have a value for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def determined(value: float | None) -> bool:
    """A value that was scored: not None (undetermined) and not NaN."""
    return value is not None and not math.isnan(value)


def clean(values: Sequence[float | None]) -> np.ndarray:
    """The determined values, as an array (the undetermined ones are counted by the caller)."""
    return np.array([v for v in values if determined(v)], dtype=float)


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
    pairs = [(x, y) for x, y in zip(a, b) if determined(x) and determined(y)]
    if not pairs:
        return None
    d = np.array([x - y for x, y in pairs])
    lo, hi = bootstrap_ci(d, samples=samples, seed=seed)
    out = {"mean": float(d.mean()), "ci95": [lo, hi], "n": len(pairs), "significant": bool(lo > 0 or hi < 0)}
    if all(x in (0, 1) and y in (0, 1) for x, y in pairs):  # a 0/1 metric: McNemar decides significance
        wins = sum(1 for x, y in pairs if x > y)
        losses = sum(1 for x, y in pairs if x < y)
        p = mcnemar_exact(wins, losses)
        out |= {"test": "mcnemar", "wins": wins, "losses": losses, "p_value": p, "significant": p < 0.05}
    else:
        out["test"] = "paired bootstrap"
    return out


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs: `b` questions right only in the first
    variant, `c` right only in the second. Under no difference each discordant pair is a fair coin,
    so p = 2 * P(Binomial(b + c, 1/2) <= min(b, c)), capped at 1.

    Written here (a few lines of exact arithmetic) rather than adding scipy or statsmodels for it.
    """
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


def macro_f1(preds: Sequence[str | None], golds: Sequence[str]) -> float:
    """Macro-averaged F1 over the gold labels' classes (as sklearn's f1_score(average="macro") over
    the labels present in gold or prediction). An answer without a label is a miss for its gold
    class and forms no class of its own."""
    labels = sorted(set(golds) | {p for p in preds if p is not None})
    f1s = []
    for c in labels:
        tp = sum(1 for p, g in zip(preds, golds) if p == c and g == c)
        fp = sum(1 for p, g in zip(preds, golds) if p == c and g != c)
        fn = sum(1 for p, g in zip(preds, golds) if p != c and g == c)
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return sum(f1s) / len(f1s) if f1s else 0.0


def bootstrap_statistic(
    statistic, n: int, *, samples: int = 2000, seed: int = 0
) -> tuple[float, float] | None:
    """95% percentile interval of `statistic(indices)` over bootstrap resamples of n items."""
    if n == 0:
        return None
    rng = np.random.default_rng(seed)
    values = [statistic(rng.integers(0, n, size=n)) for _ in range(samples)]
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)
