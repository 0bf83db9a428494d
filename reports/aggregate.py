"""From result rows to the summary: means with bootstrap intervals, per-group breakdowns, and paired
deltas against the baseline variant. Undetermined scores are counted, never averaged in."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from core.values import determined
from judges import SCORERS
from reports.config import RunConfig
from reports.length_control import length_controlled
from reports.rows import per_question, seed_values
from reports.stats import (
    bootstrap_ci,
    bootstrap_p,
    bootstrap_statistic,
    clean,
    hierarchical,
    holm,
    macro_f1,
    paired_delta,
    seed_matrix,
)
from retrievers.metrics import means


def _corpus_level(metric: str) -> bool:
    """A score of the whole set of answers (macro-F1), not a mean of per-question values."""
    scorer = SCORERS.get(metric)
    return bool(scorer and scorer.corpus_level)


def _kind(metric: str) -> str | None:
    """ "binary" or "graded", as the scorer registry says (None for a metric it does not know)."""
    scorer = SCORERS.get(metric)
    return scorer.kind if scorer else None


def _labels(rows: list[dict], metric: str) -> tuple[list[str | None], list[str]]:
    """(predicted labels, gold labels) of the rows that have a gold label."""
    rows = [r for r in rows if r["gold_answers"]]
    return [r["scores"][metric].get("label") for r in rows], [r["gold_answers"][0].lower() for r in rows]


def corpus_stats(rows: list[dict], metric: str, *, samples: int, seed: int) -> dict:
    """A corpus-level metric (macro-F1) with its bootstrap interval. A question without a gold label
    cannot be scored: it is undetermined. An answer without a label is a miss, not undetermined."""
    preds, golds = _labels(rows, metric)
    ci = bootstrap_statistic(
        lambda idx: macro_f1([preds[i] for i in idx], [golds[i] for i in idx]),
        len(golds),
        samples=samples,
        seed=seed,
    )
    return {
        "mean": macro_f1(preds, golds) if golds else None,
        "ci95": list(ci) if ci else None,
        "n": len(golds),
        "undetermined": len(rows) - len(golds),
    }


def corpus_delta(rows: list[dict], base: list[dict], metric: str, *, samples: int, seed: int) -> dict | None:
    """Paired by question id: both variants' macro-F1 on the same resampled questions, with the
    bootstrap p-value from the same resamples."""
    mine = {r["question_id"]: r for r in rows if r["gold_answers"]}
    theirs = {r["question_id"]: r for r in base if r["gold_answers"]}
    ids = sorted(set(mine) & set(theirs))
    if not ids:
        return None
    paired = {r["question_id"] for r in rows} & {r["question_id"] for r in base}
    (pa, ga), (pb, gb) = _labels([mine[q] for q in ids], metric), _labels([theirs[q] for q in ids], metric)

    def diff(idx: np.ndarray) -> float:
        return macro_f1([pa[i] for i in idx], [ga[i] for i in idx]) - macro_f1(
            [pb[i] for i in idx], [gb[i] for i in idx]
        )

    rng = np.random.default_rng(seed)
    draws = np.array([diff(rng.integers(0, len(ids), size=len(ids))) for _ in range(samples)])
    lo, hi = (float(x) for x in np.percentile(draws, [2.5, 97.5]))
    return {
        "mean": macro_f1(pa, ga) - macro_f1(pb, gb),
        "ci95": [lo, hi],
        "n": len(ids),
        "undetermined": len(paired) - len(ids),  # questions without a gold label
        "significant": bool(lo > 0 or hi < 0),
        "p_value": bootstrap_p(draws),
        "test": "paired bootstrap",
    }


def metric_stats(values: Sequence[float | None], *, samples: int, seed: int) -> dict:
    """The mean of the determined values with its bootstrap interval; the others counted undetermined."""
    determined = clean(values)
    ci = bootstrap_ci(determined, samples=samples, seed=seed)
    return {
        "mean": float(determined.mean()) if determined.size else None,
        "ci95": list(ci) if ci else None,
        "n": int(determined.size),
        "undetermined": len(values) - int(determined.size),
    }


def seeded_stats(rows: list[dict], metric: str, *, samples: int, seed: int) -> dict:
    """A variant trained with several seeds: its mean with an interval over seeds and questions."""
    values = seed_values(rows, metric)
    if not values:
        return {"mean": None, "ci95": None, "n": 0, "undetermined": 0}
    matrix, _, questions = seed_matrix(values)
    undetermined = sum(1 for v in values.values() if v is None)
    if np.isnan(matrix).all():
        return {"mean": None, "ci95": None, "n": 0, "undetermined": undetermined}
    h = hierarchical(matrix, samples=samples, seed=seed)
    h.pop("p_value")
    return h | {"n": len(questions), "undetermined": undetermined}


def seeded_delta(rows: list[dict], base: list[dict], metric: str, *, samples: int, seed: int) -> dict | None:
    """(variant - baseline) for a variant with several training seeds: per question, each seed's value
    minus the baseline's (seed-averaged) value, with the two-stage interval over seeds and questions."""
    theirs = per_question(base, metric)
    mine = {k: v for k, v in seed_values(rows, metric).items() if k[1] in theirs}
    diffs: dict[tuple, float | None] = {}
    for (s, q), v in mine.items():
        t = theirs[q]
        if v is not None and t is not None and determined(v) and determined(t):
            diffs[s, q] = v - t
    if not diffs:
        return None
    matrix, _, questions = seed_matrix(diffs)
    h = hierarchical(matrix, samples=samples, seed=seed)
    lo, hi = h["ci95"]
    return {
        "mean": h["mean"],
        "ci95": [lo, hi],
        "n": len(questions),
        "undetermined": len(mine) - len(diffs),  # (seed, question) pairs left out
        "seeds": h["seeds"],
        "seed_sd": h["seed_sd"],
        "p_value": h["p_value"],
        "significant": bool(lo > 0 or hi < 0),
        "test": "hierarchical bootstrap",
    }


def summarize(
    rows: list[dict], config: RunConfig, *, suite_name: str, metrics: list[str] | None = None
) -> dict[str, Any]:
    """A metric a row has no score for (a ragas context metric on a closed-book row, the pairwise
    result of the baseline itself) does not apply to it: it is left out, not counted undetermined.
    `length_controlled` holds each non-baseline variant's length-controlled pairwise win rate
    (`reports.length_control`); {} without pairwise verdicts."""
    metrics = list(config.metrics if metrics is None else metrics)
    seed, samples = config.seed, config.bootstrap_samples
    variants = [v.name for v in config.variants]
    by_variant: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_variant[r["variant"]].append(r)

    def stats(rs: list[dict], m: str) -> dict:
        return variant_stats(rs, m, samples=samples, seed=seed)

    summary_variants = {v: {m: stats(by_variant[v], m) for m in metrics} for v in variants}
    breakdown: dict[str, dict] = {}
    for field in ("slice", "category"):
        groups = sorted({r[field] for r in rows if r[field]})
        breakdown[field] = {
            g: {
                v: {m: stats([r for r in by_variant[v] if r[field] == g], m) for m in metrics}
                for v in variants
            }
            for g in groups
        }
    base = by_variant[config.baseline]
    deltas = {
        v: {m: variant_delta(by_variant[v], base, m, samples=samples, seed=seed) for m in metrics}
        for v in variants
        if v != config.baseline
    }
    family = adjust_family(deltas)
    return {
        "suite": suite_name,
        "retrieval": retrieval_summary(rows, metrics[0] if metrics else None),
        "baseline_variant": config.baseline,
        "metrics": metrics,
        "variants": summary_variants,
        "breakdown": breakdown,
        "deltas": deltas,
        "multiple_comparisons": family,
        "length_controlled": length_controlled(rows, variants, config.baseline, seed=seed, samples=samples),
        "judge_reliability": {},
        "gate": {},
    }


def _seeded(rows: list[dict]) -> bool:
    """The rows come from a variant trained with several seeds."""
    return len({r.get("seed") for r in rows}) > 1


def variant_stats(rows: list[dict], metric: str, *, samples: int, seed: int) -> dict:
    """One variant's statistics of `metric` over `rows`, by the metric's kind and the variant's seeds:
    corpus-level (macro-F1), over seeds and questions, or a mean over the rows it applies to."""
    if _corpus_level(metric):
        return corpus_stats(rows, metric, samples=samples, seed=seed)
    if _seeded(rows):
        return seeded_stats(rows, metric, samples=samples, seed=seed)
    applies = [r["scores"][metric]["value"] for r in rows if metric in r["scores"]]
    return metric_stats(applies, samples=samples, seed=seed)


def variant_delta(rows: list[dict], base: list[dict], metric: str, *, samples: int, seed: int) -> dict | None:
    """(variant - baseline) on `metric`, paired by question, with the interval and p-value of the rule
    that fits: corpus-level, over seeds and questions, or the metric kind's paired test."""
    if _corpus_level(metric):
        return corpus_delta(rows, base, metric, samples=samples, seed=seed)
    if _seeded(rows):
        return seeded_delta(rows, base, metric, samples=samples, seed=seed)
    return paired_delta(
        per_question(rows, metric), per_question(base, metric), kind=_kind(metric), samples=samples, seed=seed
    )


def adjust_family(deltas: dict) -> dict:
    """Holm-adjust the p-values of every comparison against the baseline (each variant x metric) as
    one family; each delta gets `p_holm` and `significant_holm` beside its raw `p_value`."""
    members = [
        (v, m, d) for v, per in deltas.items() for m, d in per.items() if d and d.get("p_value") is not None
    ]
    adjusted = holm([d["p_value"] for _, _, d in members])
    for (_, _, d), p in zip(members, adjusted, strict=True):
        d["p_holm"] = p
        d["significant_holm"] = p < 0.05
    return {
        "method": "holm",
        "family": "every variant against the baseline variant, on every metric",
        "size": len(members),
        "significant_raw": sum(d["significant"] for _, _, d in members),
        "significant_holm": sum(d["significant_holm"] for _, _, d in members),
    }


def retrieval_summary(rows: list[dict], metric: str | None) -> dict:
    """Per RAG variant: mean retrieval metrics against the gold passages, and where its wrong answers
    failed: at retrieval (no gold passage in the prompt) or at generation (gold present, answer wrong)."""
    by_variant: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r.get("retrieval"):
            by_variant[r["variant"]].append(r)
    out: dict[str, dict] = {}
    for v, rs in by_variant.items():
        seeds = len({r.get("seed") for r in rs})  # several training seeds: counts are per seed
        wrong = [r for r in rs if metric and r["scores"].get(metric, {}).get("value") == 0]
        found = {
            k: x
            for k, x in means([r["retrieval"] for r in rs], skip=["gold_in_prompt"]).items()
            if x is not None
        }
        missed = sum(not r["retrieval"]["gold_in_prompt"] for r in wrong)
        misread = sum(bool(r["retrieval"]["gold_in_prompt"]) for r in wrong)
        out[v] = found | {
            "n": len(rs) // seeds,
            "wrong_retrieval_failed": missed if seeds == 1 else round(missed / seeds, 1),
            "wrong_generation_failed": misread if seeds == 1 else round(misread / seeds, 1),
        }
        if seeds > 1:
            out[v]["seeds"] = seeds
    return out
