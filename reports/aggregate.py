"""From result rows to the summary: means with bootstrap intervals, per-group breakdowns, and paired
deltas against the baseline variant. Undetermined scores are counted, never averaged in."""

from __future__ import annotations

from collections import defaultdict

from judges import SCORERS
from reports.stats import bootstrap_ci, bootstrap_statistic, clean, macro_f1, paired_delta
from retrievers.metrics import means


def _corpus_level(metric: str) -> bool:
    """A score of the whole set of answers (macro-F1), not a mean of per-question values."""
    scorer = SCORERS.get(metric)
    return bool(scorer and scorer.corpus_level)


def _labels(rows: list[dict], metric: str) -> tuple[list, list]:
    return [r["scores"][metric].get("label") for r in rows], [r["gold_answers"][0].lower() for r in rows]


def corpus_stats(rows: list[dict], metric: str, *, samples: int, seed: int) -> dict:
    preds, golds = _labels(rows, metric)
    ci = bootstrap_statistic(
        lambda idx: macro_f1([preds[i] for i in idx], [golds[i] for i in idx]),
        len(rows),
        samples=samples,
        seed=seed,
    )
    return {
        "mean": macro_f1(preds, golds) if rows else None,
        "ci95": list(ci) if ci else None,
        "n": len(rows),
        "undetermined": 0,
    }


def corpus_delta(rows: list[dict], base: list[dict], metric: str, *, samples: int, seed: int) -> dict | None:
    """Paired: both variants' macro-F1 on the same resampled questions."""
    if not rows or len(rows) != len(base):
        return None
    (pa, ga), (pb, gb) = _labels(rows, metric), _labels(base, metric)

    def diff(idx):
        return macro_f1([pa[i] for i in idx], [ga[i] for i in idx]) - macro_f1(
            [pb[i] for i in idx], [gb[i] for i in idx]
        )

    lo, hi = bootstrap_statistic(diff, len(rows), samples=samples, seed=seed)
    return {
        "mean": macro_f1(pa, ga) - macro_f1(pb, gb),
        "ci95": [lo, hi],
        "n": len(rows),
        "significant": bool(lo > 0 or hi < 0),
        "test": "paired bootstrap",
    }


def metric_stats(values, *, samples: int, seed: int) -> dict:
    determined = clean(values)
    ci = bootstrap_ci(determined, samples=samples, seed=seed)
    return {
        "mean": float(determined.mean()) if determined.size else None,
        "ci95": list(ci) if ci else None,
        "n": int(determined.size),
        "undetermined": len(values) - int(determined.size),
    }


def summarize(rows: list[dict], config, *, suite_name: str, metrics: list[str] | None = None) -> dict:
    """A metric a row has no score for (a ragas context metric on a closed-book row, the pairwise
    result of the baseline itself) does not apply to it: it is left out, not counted undetermined."""
    metrics = list(config.metrics if metrics is None else metrics)
    seed, samples = config.seed, config.bootstrap_samples
    variants = [v.name for v in config.variants]
    by_variant: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_variant[r["variant"]].append(r)

    def values(rs, m):  # aligned with rs: None where the metric does not apply
        return [r["scores"][m]["value"] if m in r["scores"] else None for r in rs]

    def stats(rs, m):
        if _corpus_level(m):
            return corpus_stats(rs, m, samples=samples, seed=seed)
        applies = [r["scores"][m]["value"] for r in rs if m in r["scores"]]
        return metric_stats(applies, samples=samples, seed=seed)

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
    base = sorted(by_variant[config.baseline], key=lambda r: r["question_id"])
    deltas = {}
    for v in variants:
        if v == config.baseline:
            continue
        other = sorted(by_variant[v], key=lambda r: r["question_id"])
        deltas[v] = {
            m: corpus_delta(other, base, m, samples=samples, seed=seed)
            if _corpus_level(m)
            else paired_delta(values(other, m), values(base, m), samples=samples, seed=seed)
            for m in metrics
        }
    return {
        "suite": suite_name,
        "retrieval": retrieval_summary(rows, metrics[0] if metrics else None),
        "baseline_variant": config.baseline,
        "metrics": metrics,
        "variants": summary_variants,
        "breakdown": breakdown,
        "deltas": deltas,
        "judge_reliability": {},
        "gate": {},
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
        wrong = [r for r in rs if metric and r["scores"].get(metric, {}).get("value") == 0]
        found = {
            k: x
            for k, x in means([r["retrieval"] for r in rs], skip=["gold_in_prompt"]).items()
            if x is not None
        }
        out[v] = found | {
            "n": len(rs),
            "wrong_retrieval_failed": sum(not r["retrieval"]["gold_in_prompt"] for r in wrong),
            "wrong_generation_failed": sum(bool(r["retrieval"]["gold_in_prompt"]) for r in wrong),
        }
    return out
