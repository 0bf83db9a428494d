"""From result rows to the summary: means with bootstrap intervals, per-group breakdowns, and paired
deltas against the baseline variant. Undetermined scores are counted, never averaged in."""

from __future__ import annotations

from collections import defaultdict

from reports.stats import bootstrap_ci, clean, paired_delta


def metric_stats(values, *, samples: int, seed: int) -> dict:
    determined = clean(values)
    ci = bootstrap_ci(determined, samples=samples, seed=seed)
    return {
        "mean": float(determined.mean()) if determined.size else None,
        "ci95": list(ci) if ci else None,
        "n": int(determined.size),
        "undetermined": len(values) - int(determined.size),
    }


def summarize(rows: list[dict], config, *, suite_name: str) -> dict:
    metrics, seed, samples = list(config.metrics), config.seed, config.bootstrap_samples
    variants = [v.name for v in config.variants]
    by_variant: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_variant[r["variant"]].append(r)

    def values(rs, m):
        return [r["scores"][m]["value"] for r in rs]

    summary_variants = {
        v: {m: metric_stats(values(by_variant[v], m), samples=samples, seed=seed) for m in metrics}
        for v in variants
    }
    breakdown: dict[str, dict] = {}
    for field in ("slice", "category"):
        groups = sorted({r[field] for r in rows if r[field]})
        breakdown[field] = {
            g: {
                v: {
                    m: metric_stats(
                        values([r for r in by_variant[v] if r[field] == g], m), samples=samples, seed=seed
                    )
                    for m in metrics
                }
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
            m: paired_delta(values(other, m), values(base, m), samples=samples, seed=seed) for m in metrics
        }
    return {
        "suite": suite_name,
        "baseline_variant": config.baseline,
        "metrics": metrics,
        "variants": summary_variants,
        "breakdown": breakdown,
        "deltas": deltas,
        "judge_reliability": {},
        "gate": {},
    }
