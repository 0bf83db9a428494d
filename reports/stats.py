"""Uncertainty, with one significance rule per kind of metric, the same rule for the bold mark, the
interval and the p-value:

* 0/1 metrics (em, accuracy, the judge's verdict): McNemar's test on the questions that flipped
  (the asymptotic form, without continuity correction) and Tango's score interval for the paired
  difference of proportions, the interval that inverts that very test, so it excludes zero exactly
  when p < 0.05 (the pair Fagerland, Lydersen and Laake recommend, BMC Med Res Methodol 2013).
* graded metrics (f1, pairwise, ragas): the paired percentile bootstrap interval of the mean
  difference, and the bootstrap p-value from the same resamples; significant when the interval
  excludes zero.

Deltas pair questions by id, never by position. Undetermined values (None/NaN) are dropped pairwise
and counted: `paired_delta` reports how many pairs it left out on each side. Holm's step-down
adjustment covers a family of comparisons; `power` says what a gate rule can see at this size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from core.values import determined

ALPHA = 0.05  # two-sided; a gate rule is the one-sided 2.5% half of it
POWER = 0.8


def clean(values: Sequence[float | None]) -> np.ndarray:
    """The determined values, as an array (the undetermined ones are counted by the caller)."""
    return np.array([v for v in values if determined(v)], dtype=float)


def bootstrap_ci(
    values: Sequence[float] | np.ndarray, *, samples: int = 2000, seed: int = 0
) -> tuple[float, float] | None:
    """95% percentile interval of the mean; None for an empty sample."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return None
    means = _resampled_means(x, samples, seed)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def _resampled_means(x: np.ndarray, samples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return x[rng.integers(0, x.size, size=(samples, x.size))].mean(axis=1)


def pair_by_id(
    a: Mapping[Any, float | None], b: Mapping[Any, float | None]
) -> tuple[list[Any], list[Any], list[Any]]:
    """(ids in both, ids only in a, ids only in b), each sorted."""
    both = sorted(set(a) & set(b))
    return both, sorted(set(a) - set(b)), sorted(set(b) - set(a))


def _by_id(values: Mapping[str, float | None] | Sequence[float | None]) -> Mapping[Any, float | None]:
    """Values by question id; a sequence is taken as aligned, position i being question i."""
    return values if isinstance(values, Mapping) else dict(enumerate(values))


def _determined_pairs(
    a: Mapping[Any, float | None], b: Mapping[Any, float | None], ids: list[Any]
) -> list[tuple[float, float]]:
    """(a, b) for each id where both sides have a determined value, in the ids' order."""
    pairs = []
    for q in ids:
        x, y = a[q], b[q]
        if x is not None and y is not None and determined(x) and determined(y):
            pairs.append((x, y))
    return pairs


def paired_delta(
    a: Mapping[str, float | None] | Sequence[float | None],
    b: Mapping[str, float | None] | Sequence[float | None],
    *,
    kind: str | None = None,
    samples: int = 2000,
    seed: int = 0,
) -> dict[str, Any] | None:
    """Mean of (a - b) over the questions both have a determined value for, with the interval and
    p-value of the metric kind's rule ("binary" or "graded"; None: binary when every value is 0 or 1).

    `a` and `b` map question ids to values (sequences are taken as already aligned, position i being
    question i). None when no question pairs up. `undetermined` counts the questions left out because
    either side had no value."""
    a_by_id, b_by_id = _by_id(a), _by_id(b)
    ids, _, _ = pair_by_id(a_by_id, b_by_id)
    pairs = _determined_pairs(a_by_id, b_by_id, ids)
    left_out = {"undetermined": len(ids) - len(pairs)}
    if not pairs:
        return None
    zero_one = all(x in (0, 1) and y in (0, 1) for x, y in pairs)
    if kind is None or (kind == "binary" and not zero_one):  # e.g. a 0/1 metric averaged over seeds
        kind = "binary" if zero_one else "graded"
    d = np.array([x - y for x, y in pairs], dtype=float)
    out = {"mean": float(d.mean()), "n": len(pairs)} | left_out
    if kind == "binary":
        wins = sum(1 for x, y in pairs if x > y)
        losses = sum(1 for x, y in pairs if x < y)
        p = mcnemar(wins, losses)
        lo, hi = tango_interval(wins, losses, len(pairs))
        return out | {
            "ci95": [lo, hi],
            "test": "mcnemar",
            "wins": wins,
            "losses": losses,
            "p_value": p,
            "significant": p < ALPHA,
        }
    means = _resampled_means(d, samples, seed)
    lo, hi = (float(x) for x in np.percentile(means, [2.5, 97.5]))
    return out | {
        "ci95": [lo, hi],
        "test": "paired bootstrap",
        "p_value": bootstrap_p(means),
        # one question says nothing about the spread: never significant on its own
        "significant": bool(len(pairs) > 1 and (lo > 0 or hi < 0)),
    }


def bootstrap_p(draws: np.ndarray) -> float:
    """Two-sided bootstrap p-value of "the difference is zero" from resampled differences, counted
    with the observed sample included ((k + 1) / (B + 1)), so it is never exactly zero."""
    b = draws.size
    below, above = int(np.sum(draws <= 0)), int(np.sum(draws >= 0))
    return min(1.0, 2 * (min(below, above) + 1) / (b + 1))


def mcnemar(b: int, c: int) -> float:
    """Two-sided McNemar p-value from the discordant pairs: `b` questions right only in the first
    variant, `c` right only in the second; z = (b - c) / sqrt(b + c), no continuity correction."""
    if b + c == 0:
        return 1.0
    from scipy.stats import norm

    return float(2 * norm.sf(abs(b - c) / math.sqrt(b + c)))


def _tango(b: int, c: int, n: int, d0: float) -> float:
    """Tango's score statistic for H0: (b - c) / n = d0, with the constrained maximum-likelihood
    estimate of the discordant cell (Tango 1998, Stat Med 17:891); at d0 = 0 it is McNemar's z."""
    a2 = 2 * n
    bq = -b - c + (2 * n - b + c) * d0
    cq = -c * d0 * (1 - d0)
    p21 = (math.sqrt(max(bq * bq - 4 * a2 * cq, 0.0)) - bq) / (2 * a2)
    var = n * (2 * p21 + d0 * (1 - d0))
    diff = b - c - n * d0
    if var <= 0:
        return math.copysign(math.inf, diff) if diff else 0.0
    return diff / math.sqrt(var)


def tango_interval(b: int, c: int, n: int) -> tuple[float, float]:
    """95% score interval of the paired difference of proportions (b - c) / n: every d0 that Tango's
    test does not reject. It inverts the same statistic as `mcnemar`, so it excludes zero exactly when
    that p-value is below 0.05. Found by bisection (the statistic falls as d0 rises)."""
    from scipy.stats import norm

    z = float(norm.ppf(1 - ALPHA / 2))
    d = (b - c) / n

    def bisect(lo: float, hi: float, target: float) -> float:
        for _ in range(80):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if _tango(b, c, n, mid) > target else (lo, mid)
        return (lo + hi) / 2

    eps = 1e-12
    lower = bisect(-1.0, d, z) if _tango(b, c, n, -1 + eps) > z else -1.0
    upper = bisect(d, 1.0, -z) if _tango(b, c, n, 1 - eps) < -z else 1.0
    return lower, upper


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error control), in the input's order.

    Written here (a few lines) rather than adding statsmodels for it."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def power(
    values: Sequence[float],
    blessed: Sequence[float],
    *,
    margin: float | None,
    seed_differences: np.ndarray | None = None,
    alpha: float = ALPHA,
    target: float = POWER,
) -> dict | None:
    """What a gate rule can see at this suite's size.

    The noise of a rerun's paired difference is measured where it can be: `seed_differences`, the
    per-question differences between pairs of training seeds of this run, give it directly (`basis`
    "between seeds"). Otherwise it is bounded by treating the two runs as uncorrelated,
    sqrt(var_a + var_b) (`basis` "uncorrelated bound"): real reruns of one model are positively
    correlated, so the gate then sees better than this says.

    A margin rule fails when the lower bound of the 95% interval falls below -margin. So, with
    se the standard error and z = 1.96:
    * `drop_caught`: the true drop the rule fails with `target` (80%) probability,
      margin - (z - z_0.8) * se (at or below 0: even an unchanged model fails that often);
    * `false_alarm`: the chance that an unchanged model fails, Phi(z - margin / se);
    * `questions_for_margin`: the questions at which an unchanged model passes with 80% probability
      while a drop of the margin still fails 97.5% of the time, ((z + z_0.8) * sd / margin)^2;
    * `min_detectable_drop`: the drop a one-sided 2.5% test tells apart from no change with 80% power,
      (z + z_0.8) * se, whatever the margin."""
    from scipy.stats import norm

    a, b = clean(values), clean(blessed)
    n = min(a.size, b.size)
    if n < 2:
        return None
    if seed_differences is not None and seed_differences.size > 1:
        sd, basis = float(np.std(seed_differences, ddof=1)), "between seeds"
    else:
        sd, basis = math.sqrt(float(a.var(ddof=1)) + float(b.var(ddof=1))), "uncorrelated bound"
    z_alpha, z_power = float(norm.ppf(1 - alpha / 2)), float(norm.ppf(target))
    se = sd / math.sqrt(n)
    out = {
        "n": n,
        "sd_difference": sd,
        "se": se,
        "min_detectable_drop": (z_alpha + z_power) * se,
        "basis": basis,
    }
    if margin is not None:
        out["drop_caught"] = margin - (z_alpha - z_power) * se
        out["questions_for_margin"] = (
            math.ceil(((z_alpha + z_power) * sd / margin) ** 2)
            if margin > 0 and sd > 0
            else (0 if sd == 0 else None)
        )
        out["false_alarm"] = float(norm.cdf(z_alpha - margin / se)) if se > 0 else 0.0
    return out


def seed_differences(matrix: np.ndarray) -> np.ndarray | None:
    """Every question's difference between every pair of seeds of a seeds x questions array, divided
    by sqrt(seeds): the noise of a seed-averaged rerun against another (None with fewer than 2 seeds)."""
    s = matrix.shape[0]
    if s < 2:
        return None
    diffs = [matrix[i] - matrix[j] for i in range(s) for j in range(i + 1, s)]
    flat = np.concatenate(diffs)
    return flat[~np.isnan(flat)] / math.sqrt(s)


def seed_matrix(values: Mapping[tuple, float | None]) -> tuple[np.ndarray, list, list]:
    """{(seed, question id): value} as a seeds x questions array (NaN where undetermined or absent),
    with its seeds and question ids in order."""
    seeds = sorted({s for s, _ in values}, key=str)
    questions = sorted({q for _, q in values})
    m = np.full((len(seeds), len(questions)), np.nan)
    si, qi = {s: i for i, s in enumerate(seeds)}, {q: i for i, q in enumerate(questions)}
    for (s, q), v in values.items():
        if determined(v):
            m[si[s], qi[q]] = v
    return m, seeds, questions


def hierarchical(matrix: np.ndarray, *, samples: int = 2000, seed: int = 0) -> dict:
    """Mean of a seeds x questions array with a two-stage bootstrap interval: resample the seeds, then
    the questions (the same questions for every seed drawn), so the interval covers both the training
    seed and the question sample. Also the spread between seeds (SD of the seed means) and the
    question-only interval of the seed-averaged values, to show which of the two dominates."""
    rng = np.random.default_rng(seed)
    matrix = matrix[~np.isnan(matrix).all(axis=1)]  # a seed with no determined value says nothing
    s, q = matrix.shape
    draws = np.empty(samples)
    with np.errstate(all="ignore"):
        for i in range(samples):
            block = matrix[np.ix_(rng.integers(0, s, s), rng.integers(0, q, q))]
            draws[i] = np.nanmean(block)
        per_seed = np.nanmean(matrix, axis=1)
        per_question = np.nanmean(matrix, axis=0)
    draws = draws[~np.isnan(draws)]
    lo, hi = (float(x) for x in np.percentile(draws, [2.5, 97.5]))
    question_ci = bootstrap_ci(per_question[~np.isnan(per_question)], samples=samples, seed=seed)
    return {
        "mean": float(np.nanmean(matrix)),
        "ci95": [lo, hi],
        "p_value": bootstrap_p(draws),
        "seeds": s,
        "seed_means": [float(x) for x in per_seed],
        "seed_sd": float(np.std(per_seed, ddof=1)) if s > 1 else 0.0,
        "question_ci95": list(question_ci) if question_ci else None,
    }


def macro_f1(preds: Sequence[str | None], golds: Sequence[str]) -> float:
    """Macro-averaged F1 over the gold labels' classes (as sklearn's f1_score(average="macro") over
    the labels present in gold or prediction). An answer without a label is a miss for its gold
    class and forms no class of its own."""
    labels = sorted(set(golds) | {p for p in preds if p is not None})
    f1s = []
    for c in labels:
        tp = sum(1 for p, g in zip(preds, golds, strict=True) if p == c and g == c)
        fp = sum(1 for p, g in zip(preds, golds, strict=True) if p == c and g != c)
        fn = sum(1 for p, g in zip(preds, golds, strict=True) if p != c and g == c)
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return sum(f1s) / len(f1s) if f1s else 0.0


def bootstrap_statistic(
    statistic: Callable[[np.ndarray], float], n: int, *, samples: int = 2000, seed: int = 0
) -> tuple[float, float] | None:
    """95% percentile interval of `statistic(indices)` over bootstrap resamples of n items."""
    if n == 0:
        return None
    rng = np.random.default_rng(seed)
    values = [statistic(rng.integers(0, n, size=n)) for _ in range(samples)]
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)
