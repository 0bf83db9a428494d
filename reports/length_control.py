"""The length-controlled pairwise win rate (AlpacaEval's, Dubois et al. 2024, arXiv:2404.04475).

A judge that prefers longer answers inflates the raw win rate of a variant that writes longer ones.
Per variant, a logistic model of its pairwise verdicts against the baseline is fitted on the length
difference, `tanh((len(answer) - len(baseline's answer)) / std)` in characters (as AlpacaEval), plus
an intercept; the length-controlled (LC) win rate is its prediction at equal length,
`sigmoid(intercept)`. A tie counts as half a win and half a loss; undetermined verdicts are left out
and counted. An L2 penalty on the length coefficient keeps it finite when the verdicts follow length
perfectly. Where the model cannot tell length from quality (the length difference does not vary, or
every verdict is the same) the LC win rate is the raw one, so it is always defined (AlpacaEval's NaN
on custom comparisons, tatsu-lab/alpaca_eval#453, #316, cannot happen here).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import expit, logit

# sklearn's C for the length coefficient: a normal prior of variance 10 on it. sklearn's default (1)
# left the LC win rate of a judge driven by length alone 0.04-0.13 above 0.5 at 40-200 questions in
# a simulation; 10 leaves it within 0.03 (and finite under perfect separation).
PENALTY_C = 10.0


def _pairs(rows: list[dict], variant: str) -> tuple[list[str], np.ndarray, np.ndarray, int]:
    """(question ids, values, length differences) of the variant's determined pairwise verdicts, and
    how many were undetermined."""
    ids, values, deltas, undetermined = [], [], [], 0
    for r in rows:
        score, detail = r["scores"].get("pairwise"), (r.get("judge") or {}).get("pairwise")
        if r["variant"] != variant or score is None or detail is None:
            continue
        value = score.get("value")
        if value is None or (isinstance(value, float) and math.isnan(value)):
            undetermined += 1
            continue
        ids.append(r["question_id"])
        values.append(float(value))
        deltas.append(len(detail["answer"]) - len(detail["against_answer"]))
    return ids, np.array(values), np.array(deltas, dtype=float), undetermined


def _degenerate(values: np.ndarray, std: float) -> bool:
    return std == 0 or bool((values == 1).all() or (values == 0).all())


def fit(values: np.ndarray, deltas: np.ndarray) -> tuple[float, float]:
    """(LC win rate, length coefficient) of verdicts (1 win, 0.5 tie, 0 loss) and their answers'
    length differences, by scikit-learn; (raw win rate, 0) where length cannot be told apart."""
    from sklearn.linear_model import LogisticRegression

    raw, std = float(values.mean()), float(deltas.std())
    if _degenerate(values, std):
        return raw, 0.0
    x = np.tanh(deltas / std)
    # each verdict is a win of weight v and a loss of weight 1 - v (a tie: half of each)
    X = np.concatenate([x, x])[:, None]
    y = np.concatenate([np.ones_like(x), np.zeros_like(x)])
    w = np.concatenate([values, 1 - values])
    keep = w > 0
    model = LogisticRegression(C=PENALTY_C, solver="newton-cholesky", tol=1e-10, max_iter=200)
    model.fit(X[keep], y[keep], sample_weight=w[keep])
    return float(expit(model.intercept_[0])), float(model.coef_[0, 0])


def fit_resamples(values: np.ndarray, deltas: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The LC win rate of `fit` on each bootstrap resample at once, a resample being how many times
    it draws each verdict (a row of `counts`, shape (resamples, verdicts)): the same penalised
    objective by damped Newton steps on all resamples together (one scikit-learn fit per resample
    would take seconds per variant). Tests check it against `fit`."""
    c = counts.astype(float)
    total = c.sum(1)
    raw = (c * values).sum(1) / total
    mean = (c * deltas).sum(1) / total
    std = np.sqrt((c * (deltas - mean[:, None]) ** 2).sum(1) / total)
    drawn = c > 0
    fixed = (std == 0) | ~(drawn & (values < 1)).any(1) | ~(drawn & (values > 0)).any(1)
    x = np.tanh(deltas / np.where(fixed, 1.0, std)[:, None])
    b, w = logit(np.clip(raw, 1e-6, 1 - 1e-6)), np.zeros(len(c))

    def objective(b: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Cross-entropy against the soft label v, plus the penalty."""
        z = b[:, None] + w[:, None] * x
        return (c * (np.logaddexp(0, z) - values * z)).sum(1) + w**2 / (2 * PENALTY_C)

    for _ in range(100):
        p = expit(b[:, None] + w[:, None] * x)
        r, h = c * (p - values), c * p * (1 - p)
        gb, gw = r.sum(1), (r * x).sum(1) + w / PENALTY_C
        hbb, hbw, hww = h.sum(1), (h * x).sum(1), (h * x * x).sum(1) + 1 / PENALTY_C
        det = np.maximum(hbb * hww - hbw**2, 1e-300)
        db, dw = (hww * gb - hbw * gw) / det, (hbb * gw - hbw * gb) / det
        step, before = np.ones(len(c)), objective(b, w)
        for _ in range(40):  # halve the step where it would raise the objective
            worse = objective(b - step * db, w - step * dw) > before + 1e-12
            if not worse.any():
                break
            step[worse] /= 2
        b, w = b - step * db, w - step * dw
        if np.abs(step * db).max() < 1e-12 and np.abs(step * dw).max() < 1e-12:
            break
    return np.where(fixed, raw, expit(b))


def length_controlled_win_rate(rows: list[dict], variant: str, *, seed: int, samples: int) -> dict | None:
    """`{"win_rate", "lc_win_rate", "lc_ci95": [lo, hi], "length_coef", "n", "undetermined"}` of
    `variant`'s pairwise verdicts against the baseline in `rows` (results rows with
    `scores.pairwise` and `judge.pairwise`); None when it has no determined verdict.

    `win_rate` is the raw one (wins + ties/2 over determined verdicts); `lc_ci95` the 95% percentile
    bootstrap interval over `samples` resamples of questions (a question's rows, one per training
    seed, go together), seeded by `seed`. `length_coef` > 0: the judge favoured this variant's
    answers when they were longer. Every number is finite."""
    ids, values, deltas, undetermined = _pairs(rows, variant)
    if not ids:
        return None
    questions = {q: i for i, q in enumerate(dict.fromkeys(ids))}
    of_row = np.array([questions[q] for q in ids])
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(questions), size=(samples, len(questions)))
    per_question = np.stack([np.bincount(d, minlength=len(questions)) for d in draws])
    lcs = fit_resamples(values, deltas, per_question[:, of_row])
    lc, coef = fit(values, deltas)
    lo, hi = (float(x) for x in np.percentile(lcs, [2.5, 97.5]))
    return {
        "win_rate": float(values.mean()),
        "lc_win_rate": lc,
        "lc_ci95": [lo, hi],
        "length_coef": coef,
        "n": len(ids),
        "undetermined": undetermined,
    }


def length_controlled(
    rows: list[dict], variants: list[str], baseline: str, *, seed: int, samples: int
) -> dict:
    """{variant: length_controlled_win_rate(...)} for each non-baseline variant judged pairwise."""
    out = {}
    for v in variants:
        result = None if v == baseline else length_controlled_win_rate(rows, v, seed=seed, samples=samples)
        if result is not None:
            out[v] = result
    return out
