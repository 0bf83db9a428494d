"""Values out of result rows, in one place: by (training seed, question), and by question with the
seeds averaged. A question undetermined in any seed is undetermined (never averaged over the seeds
that worked), and a metric that does not apply to a row is simply absent."""

from __future__ import annotations

from collections import defaultdict

from core.values import determined


def seed_values(rows: list[dict], metric: str) -> dict[tuple, float | None]:
    """{(seed, question id): value} of the rows that have `metric` (seed None: no trained adapter)."""
    return {
        (r.get("seed"), r["question_id"]): r["scores"][metric]["value"] for r in rows if metric in r["scores"]
    }


def per_question(rows: list[dict], metric: str) -> dict[str, float | None]:
    """{question id: value}; with several training seeds, the mean over the seeds (None if any seed's
    value is undetermined)."""
    found: dict[str, list] = defaultdict(list)
    for r in rows:
        if metric in r["scores"]:
            found[r["question_id"]].append(r["scores"][metric]["value"])
    out: dict[str, float | None] = {}
    for q, xs in found.items():
        out[q] = xs[0] if len(xs) == 1 else (sum(xs) / len(xs) if all(determined(x) for x in xs) else None)
    return out


def by_variant(rows: list[dict]) -> dict[str, dict[str, dict[str, float | None]]]:
    """{variant: {metric: {question id: value}}} (seeds averaged as `per_question` does)."""
    grouped: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        grouped[r["variant"]].append(r)
    return {
        v: {m: per_question(rs, m) for m in dict.fromkeys(m for r in rs for m in r["scores"])}
        for v, rs in grouped.items()
    }
